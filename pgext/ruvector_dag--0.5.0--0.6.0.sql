/* ruvector_dag--0.5.0--0.6.0.sql
 *
 * What a DBA checks in the first hour (issue 17).
 *
 * Capture counts in the manner of pg_stat_statements: every execution of a
 * statement that reads an enrolled table is counted (`executions`), and
 * apart from it how many were captured, left out by sampling, dropped
 * (ring full) and learned from; the rates use those denominators.
 *
 * Readable steering: the normalized text of each steered query, one row per
 * (query, arm) with its latency figures, and its latency series.
 */

\echo Use "ALTER EXTENSION ruvector_dag UPDATE TO '0.6.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Capture counters (pgext/src/sql_state.c, registry.c)
-- ---------------------------------------------------------------------------

-- executions: statements run that read the table (counted at ExecutorEnd,
-- nested ones too; a statement reading several enrolled tables counts under
-- the first of its range table); captured: their record reached the ring;
-- sampled_out: left out by sampling; dropped: chosen, but the ring was full.
-- executions = captured + sampled_out + dropped.
DROP VIEW ruvector_dag.capture;
DROP FUNCTION ruvector_dag_capture_stats();
CREATE FUNCTION ruvector_dag_capture_stats(
    OUT relid oid, OUT table_name text, OUT executions bigint, OUT captured bigint,
    OUT sampled_out bigint, OUT dropped bigint)
RETURNS SETOF record AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

-- The funnel, per table: executions -> captured -> taken by the worker
-- (buffered: not yet) -> learned from (processed) -> at the quality
-- threshold (learned).  Rates on their own denominators.
CREATE VIEW ruvector_dag.capture WITH (security_invoker = true) AS
    SELECT s.relid::pg_catalog.regclass AS table_name, s.executions, s.captured, s.sampled_out, s.dropped,
           c.buffered, c.queries_processed AS processed, c.learned,
           CASE WHEN s.executions OPERATOR(pg_catalog.>) 0
                THEN s.captured::pg_catalog.float8 OPERATOR(pg_catalog./) s.executions END AS capture_rate,
           CASE WHEN s.captured OPERATOR(pg_catalog.+) s.dropped OPERATOR(pg_catalog.>) 0
                THEN s.dropped::pg_catalog.float8 OPERATOR(pg_catalog./) (s.captured OPERATOR(pg_catalog.+) s.dropped)
           END AS drop_rate
      FROM @extschema@.ruvector_dag_capture_stats() s
      LEFT JOIN LATERAL ruvector_dag._learning_counters(s.relid) c ON true;
GRANT SELECT ON ruvector_dag.capture TO PUBLIC;

CREATE OR REPLACE FUNCTION ruvector_dag_learning_stats(table_name text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    rel pg_catalog.oid := ruvector_dag._enrolled(table_name);
    c pg_catalog.record;
    cap pg_catalog.record;
BEGIN
    IF rel IS NULL THEN
        RETURN pg_catalog.jsonb_build_object('enabled', false, 'error', 'Neural DAG not enabled');
    END IF;
    c := ruvector_dag._learning_counters(rel);
    SELECT s.executions, s.captured, s.sampled_out, s.dropped INTO cap
      FROM @extschema@.ruvector_dag_capture_stats() s WHERE s.relid OPERATOR(pg_catalog.=) rel;
    RETURN pg_catalog.jsonb_build_object(
        'enabled', true,
        'executions', COALESCE(cap.executions, 0),
        'trajectories_captured', COALESCE(cap.captured, 0),
        'trajectories_sampled_out', COALESCE(cap.sampled_out, 0),
        'trajectories_dropped', COALESCE(cap.dropped, 0),
        'trajectories_buffered', c.buffered,
        'trajectories_consumed', c.consumed,
        'queries_processed', c.queries_processed,
        'trajectories_learned', c.learned,
        'capture_rate', CASE WHEN COALESCE(cap.executions, 0) OPERATOR(pg_catalog.>) 0
                             THEN cap.captured::pg_catalog.float8 OPERATOR(pg_catalog./) cap.executions
                             ELSE 0 END,
        'drop_rate', CASE WHEN COALESCE(cap.captured OPERATOR(pg_catalog.+) cap.dropped, 0) OPERATOR(pg_catalog.>) 0
                          THEN cap.dropped::pg_catalog.float8
                               OPERATOR(pg_catalog./) (cap.captured OPERATOR(pg_catalog.+) cap.dropped)
                          ELSE 0 END,
        'pattern_hit_rate', CASE WHEN c.queries_processed OPERATOR(pg_catalog.>) 0
                                 THEN c.pattern_hits::pg_catalog.float8 OPERATOR(pg_catalog./) c.queries_processed
                                 ELSE 0 END,
        'avg_latency_us', c.avg_latency_us,
        'patterns_stored', (SELECT pg_catalog.count(*) FROM ruvector_dag.patterns p
                             WHERE p.relid OPERATOR(pg_catalog.=) rel),
        'background_cycles', c.background_cycles,
        'ewc_tasks', c.ewc_tasks,
        'prediction_error', c.prediction_error,
        'attention_type', c.attention_type,
        'last_cycle_ms', c.last_cycle_ms,
        'last_cycle_at', c.last_cycle_at);
END;
$$;

-- The drop rate on its denominator (statements chosen for capture).
CREATE OR REPLACE FUNCTION ruvector_dag_health_report(table_name text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    rel pg_catalog.oid := ruvector_dag._enrolled(table_name);
    cfg pg_catalog.jsonb := (SELECT e.config FROM ruvector_dag.enrolled_tables e
                              WHERE e.relid OPERATOR(pg_catalog.=) rel);
    stats pg_catalog.jsonb;
    drop_rate pg_catalog.float8 := 0;
    issues pg_catalog.text[] := '{}';
    ring_capacity integer;
    severe bigint;
BEGIN
    IF rel IS NULL THEN
        RETURN pg_catalog.jsonb_build_object('healthy', false, 'error', 'Neural DAG not enabled');
    END IF;
    stats := @extschema@.ruvector_dag_learning_stats(table_name);
    SELECT r.capacity INTO ring_capacity FROM @extschema@.ruvector_dag_ring_stats() r;
    -- dropped among the statements chosen for capture (those sampling left out were never meant to arrive)
    drop_rate := (stats OPERATOR(pg_catalog.->>) 'drop_rate')::pg_catalog.float8;
    IF drop_rate OPERATOR(pg_catalog.>) 0.1 THEN
        issues := issues OPERATOR(pg_catalog.||) pg_catalog.format('High trajectory drop rate: %s%%',
            pg_catalog.round((drop_rate OPERATOR(pg_catalog.*) 100)::numeric, 1));
    END IF;
    IF (stats OPERATOR(pg_catalog.->>) 'pattern_hit_rate')::pg_catalog.float8 OPERATOR(pg_catalog.<) 0.1
       AND (stats OPERATOR(pg_catalog.->>) 'queries_processed')::bigint OPERATOR(pg_catalog.>) 1000 THEN
        issues := issues OPERATOR(pg_catalog.||) pg_catalog.format('Low pattern hit rate: %s%%',
            pg_catalog.round(((stats OPERATOR(pg_catalog.->>) 'pattern_hit_rate')::pg_catalog.float8
                              OPERATOR(pg_catalog.*) 100)::numeric, 1));
    END IF;
    -- MinCut: operators carrying over 80 % of their plan's bottleneck cut (plans of
    -- one operator are left out: their only operator carries everything by definition).
    IF COALESCE((cfg OPERATOR(pg_catalog.->>) 'dag_mincut_enabled')::boolean,
                    pg_catalog.current_setting('ruvector.dag_mincut_enabled')::boolean) THEN
        SELECT pg_catalog.count(*) INTO severe FROM ruvector_dag.pattern_nodes n
         WHERE n.relid OPERATOR(pg_catalog.=) rel AND n.criticality OPERATOR(pg_catalog.>) 0.8
           AND EXISTS (SELECT FROM ruvector_dag.pattern_nodes m
                        WHERE m.relid OPERATOR(pg_catalog.=) n.relid
                          AND m.pattern_id OPERATOR(pg_catalog.=) n.pattern_id
                          AND m.plan_position OPERATOR(pg_catalog.>) 0);
        IF severe OPERATOR(pg_catalog.>) 0 THEN
            issues := issues OPERATOR(pg_catalog.||) pg_catalog.format('%s severe bottlenecks detected', severe);
        END IF;
    END IF;
    RETURN pg_catalog.jsonb_build_object(
        'healthy', pg_catalog.cardinality(issues) OPERATOR(pg_catalog.=) 0,
        'issues', pg_catalog.to_jsonb(issues),
        'metrics', stats OPERATOR(pg_catalog.-) 'enabled',
        'buffer', pg_catalog.jsonb_build_object('size', stats OPERATOR(pg_catalog.->) 'trajectories_buffered',
                                                'capacity', ring_capacity, 'drop_rate', drop_rate));
END;
$$;

-- ---------------------------------------------------------------------------
-- Readable steering
-- ---------------------------------------------------------------------------
