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
--
-- The worker (ruvector_dag/runtime/storage.py save_steering_evidence) rewrites
-- these rows with the engine state, at most a minute after what they show
-- (ruvector_dag_learn() saves now).  Only steered queries have a text and a
-- series: those for which an arm was in play (explored, on trial, pinned).

-- Per (query, arm): the 95th percentile of its last 64 latencies (measured,
-- not modelled), its speed-up against the default plan (the default's mean
-- latency over the arm's, both geometric means as mean_latency_us), and how
-- the arm stands.  Rows of before 0.6.0 have NULLs until the worker saves.
ALTER TABLE ruvector_dag.steering_evidence
    ADD COLUMN p95_latency_us DOUBLE PRECISION,
    ADD COLUMN speedup DOUBLE PRECISION,
    ADD COLUMN state TEXT CHECK (state IN ('default', 'trial', 'in play', 'chosen', 'banned'));
COMMENT ON COLUMN ruvector_dag.steering_evidence.state IS
    'default (arm 0), trial (waits for its trial), in play, chosen (the decision in force), banned';

-- The normalized text of each steered query (constants replaced by $n, as
-- pg_stat_statements shows it; NULL when it did not parse or its statement was
-- never offered) and the role that ran the statement it was taken from.
CREATE TABLE ruvector_dag.steered_queries (
    relid OID NOT NULL,
    query_id BIGINT NOT NULL,
    userid OID NOT NULL,
    query TEXT,
    PRIMARY KEY (relid, query_id)
);
-- Not dumped: its userid is a role's OID, which another cluster may give to
-- another role (a restored text would show to it); the worker takes the texts
-- again from the queries' next executions.  (pg_upgrade and physical copies
-- keep role OIDs, and the rows.)

-- The recent executions of each steered query (its last 256, users' and the
-- worker's trials): the series before and after it was steered.
CREATE TABLE ruvector_dag.steering_executions (
    relid OID NOT NULL,
    query_id BIGINT NOT NULL,
    executed_at TIMESTAMPTZ NOT NULL,
    arm TEXT NOT NULL,
    latency_us DOUBLE PRECISION,           -- NULL: a trial cancelled at its limit
    trial BOOLEAN NOT NULL                 -- the worker's trial, not a user's execution
);
CREATE INDEX ON ruvector_dag.steering_executions (query_id, executed_at);
SELECT pg_catalog.pg_extension_config_dump('ruvector_dag.steering_executions', '');

-- Texts are shown as pg_stat_statements shows them: to superusers (who bypass
-- row security), members of pg_read_all_stats, and the role that ran the
-- statement; nobody else sees the row (a text may name what its role alone
-- may know).  The series follows the evidence: whoever may read the table.
ALTER TABLE ruvector_dag.steered_queries ENABLE ROW LEVEL SECURITY;
CREATE POLICY may_read ON ruvector_dag.steered_queries FOR SELECT
    USING (pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')
           OR userid OPERATOR(pg_catalog.=) (SELECT r.oid FROM pg_catalog.pg_roles r
                                              WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER));
ALTER TABLE ruvector_dag.steering_executions ENABLE ROW LEVEL SECURITY;
CREATE POLICY may_read ON ruvector_dag.steering_executions FOR SELECT USING (ruvector_dag.may_read(relid));
GRANT SELECT ON ruvector_dag.steered_queries, ruvector_dag.steering_executions TO PUBLIC;

-- A dropped table's texts and series go with the rest of what was learned about it.
CREATE OR REPLACE FUNCTION ruvector_dag._on_sql_drop()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM ruvector_dag._forget_relation(d.objid)
       FROM pg_catalog.pg_event_trigger_dropped_objects() d
       JOIN ruvector_dag.enrolled_tables e ON e.relid OPERATOR(pg_catalog.=) d.objid
      WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
        AND d.objsubid OPERATOR(pg_catalog.=) 0;
    -- What was learned about a dropped table describes nothing any more.
    DELETE FROM ruvector_dag.patterns p USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid OPERATOR(pg_catalog.=) 0 AND p.relid OPERATOR(pg_catalog.=) d.objid;
    DELETE FROM ruvector_dag.trajectory_history h USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid OPERATOR(pg_catalog.=) 0 AND h.relid OPERATOR(pg_catalog.=) d.objid;
    DELETE FROM ruvector_dag.engine_state s USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid OPERATOR(pg_catalog.=) 0 AND s.relid OPERATOR(pg_catalog.=) d.objid;
    DELETE FROM ruvector_dag.pattern_nodes n USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid OPERATOR(pg_catalog.=) 0 AND n.relid OPERATOR(pg_catalog.=) d.objid;
    DELETE FROM ruvector_dag.steering_evidence v USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid OPERATOR(pg_catalog.=) 0 AND v.relid OPERATOR(pg_catalog.=) d.objid;
    DELETE FROM ruvector_dag.steered_queries q USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid OPERATOR(pg_catalog.=) 0 AND q.relid OPERATOR(pg_catalog.=) d.objid;
    DELETE FROM ruvector_dag.steering_executions x USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid OPERATOR(pg_catalog.=) 0 AND x.relid OPERATOR(pg_catalog.=) d.objid;
END;
$$;

-- One row per (steered query, arm), and one per decision in force that has no
-- evidence the caller may read (a pin of a query not run yet).  It was one row
-- per decision with the evidence in a jsonb column; `evidence` is gone, its
-- figures are columns now.  `source` (pinned, learned, trial) is on the row of
-- the arm in force; a pinned arm is 'chosen'.  Rows saved before 0.6.0 get
-- their state from banned/chosen until the worker saves again.
DROP VIEW ruvector_dag.steering;
CREATE VIEW ruvector_dag.steering WITH (security_invoker = true) AS
SELECT e.relid::pg_catalog.regclass AS table_name,
       COALESCE(e.query_id, d.query_id) AS query_id,
       q.query,
       COALESCE(e.arm, d.arm) AS arm,
       CASE WHEN d.source OPERATOR(pg_catalog.=) 'pinned' OR e.arm IS NULL THEN 'chosen'
            WHEN e.state IS NOT NULL THEN e.state
            WHEN e.arm OPERATOR(pg_catalog.=) 'default' THEN 'default'
            WHEN e.banned THEN 'banned'
            WHEN e.chosen THEN 'chosen'
            ELSE 'in play' END AS state,
       COALESCE(e.executions, 0) AS executions,
       e.mean_latency_us OPERATOR(pg_catalog./) 1000::pg_catalog.float8 AS mean_latency_ms,
       e.p95_latency_us OPERATOR(pg_catalog./) 1000::pg_catalog.float8 AS p95_latency_ms,
       e.speedup,
       d.source,
       e.pattern_id
  FROM (SELECT s.* FROM ruvector_dag.steering_evidence s
         WHERE EXISTS (SELECT FROM ruvector_dag.steering_evidence o
                        WHERE o.relid OPERATOR(pg_catalog.=) s.relid
                          AND o.query_id OPERATOR(pg_catalog.=) s.query_id
                          AND o.arm OPERATOR(pg_catalog.<>) 'default')) e
  FULL JOIN @extschema@.ruvector_dag_steering_decisions() d
    ON d.query_id OPERATOR(pg_catalog.=) e.query_id AND d.arm OPERATOR(pg_catalog.=) e.arm
  LEFT JOIN ruvector_dag.steered_queries q
    ON q.relid OPERATOR(pg_catalog.=) e.relid AND q.query_id OPERATOR(pg_catalog.=) e.query_id;
GRANT SELECT ON ruvector_dag.steering TO PUBLIC;

-- The executions of a steered query, oldest first: 'before' the first user's
-- execution under an arm other than the default, 'after' from it on (the
-- worker's trials are marked and do not move the boundary).  Read as the
-- caller: row security shows the series of the tables the caller may read.
CREATE FUNCTION ruvector_dag_steering_series(query_id bigint)
RETURNS TABLE (executed_at timestamptz, arm text, latency_ms double precision, phase text, trial boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT x.executed_at, x.arm, x.latency_us OPERATOR(pg_catalog./) 1000::pg_catalog.float8,
           CASE WHEN f.steered_at IS NULL OR x.executed_at OPERATOR(pg_catalog.<) f.steered_at
                THEN 'before' ELSE 'after' END,
           x.trial
      FROM ruvector_dag.steering_executions x
      CROSS JOIN LATERAL (
          SELECT pg_catalog.min(y.executed_at) AS steered_at
            FROM ruvector_dag.steering_executions y
           WHERE y.relid OPERATOR(pg_catalog.=) x.relid
             AND y.query_id OPERATOR(pg_catalog.=) x.query_id
             AND y.arm OPERATOR(pg_catalog.<>) 'default' AND NOT y.trial) f
     WHERE x.query_id OPERATOR(pg_catalog.=) $1
     ORDER BY x.executed_at, x.relid;
$$;
COMMENT ON FUNCTION ruvector_dag_steering_series(bigint) IS
    'Recent executions of a steered query, before and after it was steered (ruvector_dag.steering_executions)';

-- A text as the steering view shows it (constants as $n; pgext/src/normalize.c),
-- for the regression tests.  Internal: not for PUBLIC.
CREATE FUNCTION ruvector_dag._normalized_query(query text)
RETURNS text AS 'MODULE_PATHNAME', 'rvd_normalized_query' LANGUAGE C STABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION ruvector_dag._normalized_query(text) FROM PUBLIC;
