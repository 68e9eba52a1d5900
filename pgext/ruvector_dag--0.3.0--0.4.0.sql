/* ruvector_dag--0.3.0--0.4.0.sql
 *
 * A table's own MinCut settings.  ruvector_enable_neural_dag(table, config)
 * records the table's settings (config merged over the session's settings at
 * enrollment), and the engine learns with them; the MinCut functions read
 * ruvector.dag_mincut_enabled and ruvector.dag_mincut_threshold from the
 * session instead, so a table enrolled with {"dag_mincut_threshold": 0.9}
 * was analysed at the session's 0.5.  Now they read the table's values (the
 * session's for a table enrolled before the keys existed).  The row is read
 * as the caller, under row security: whoever may see the table's analysis
 * may see its settings.  ruvector_dag_mincut_plan(query) is about no table
 * and keeps the session's settings.
 */

\echo Use "ALTER EXTENSION ruvector_dag UPDATE TO '0.4.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION ruvector_dag_health_report(table_name text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    rel pg_catalog.oid := ruvector_dag._enrolled(table_name);
    cfg pg_catalog.jsonb := (SELECT e.config FROM ruvector_dag.enrolled_tables e
                              WHERE e.relid OPERATOR(pg_catalog.=) rel);
    stats pg_catalog.jsonb;
    cap pg_catalog.record;
    drop_rate pg_catalog.float8 := 0;
    issues pg_catalog.text[] := '{}';
    ring_capacity integer;
    severe bigint;
BEGIN
    IF rel IS NULL THEN
        RETURN pg_catalog.jsonb_build_object('healthy', false, 'error', 'Neural DAG not enabled');
    END IF;
    stats := @extschema@.ruvector_dag_learning_stats(table_name);
    SELECT s.seen, s.dropped INTO cap
      FROM @extschema@.ruvector_dag_capture_stats() s WHERE s.relid OPERATOR(pg_catalog.=) rel;
    SELECT r.capacity INTO ring_capacity FROM @extschema@.ruvector_dag_ring_stats() r;
    IF COALESCE(cap.seen, 0) OPERATOR(pg_catalog.>) 0 THEN
        drop_rate := cap.dropped::pg_catalog.float8 OPERATOR(pg_catalog./) cap.seen;
    END IF;
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

CREATE OR REPLACE FUNCTION ruvector_dag_mincut_criticality(
    table_name text,
    OUT node_id bigint, OUT criticality real, OUT is_bottleneck boolean,
    OUT pattern_id bigint, OUT plan_position integer, OUT parent_position integer, OUT operator text,
    OUT self_cost double precision)
RETURNS SETOF record
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    rel pg_catalog.oid := ruvector_dag._enrolled(table_name);
    cfg pg_catalog.jsonb := (SELECT e.config FROM ruvector_dag.enrolled_tables e
                              WHERE e.relid OPERATOR(pg_catalog.=) rel);
    threshold real := COALESCE((cfg OPERATOR(pg_catalog.->>) 'dag_mincut_threshold')::real,
                               pg_catalog.current_setting('ruvector.dag_mincut_threshold')::real);
BEGIN
    IF rel IS NULL THEN
        RAISE WARNING 'Neural DAG not enabled for table ''%''', table_name;
        RETURN;
    END IF;
    IF NOT COALESCE((cfg OPERATOR(pg_catalog.->>) 'dag_mincut_enabled')::boolean,
                    pg_catalog.current_setting('ruvector.dag_mincut_enabled')::boolean) THEN
        RAISE WARNING 'MinCut not enabled for table ''%''', table_name;
        RETURN;
    END IF;
    RETURN QUERY
        SELECT n.node_id, n.criticality::real, n.criticality OPERATOR(pg_catalog.>) threshold, n.pattern_id,
               n.plan_position, n.parent_position, n.operator, n.self_cost
          FROM ruvector_dag.pattern_nodes n
         WHERE n.relid OPERATOR(pg_catalog.=) rel
         ORDER BY n.criticality DESC, n.node_id;
END;
$$;

CREATE OR REPLACE FUNCTION ruvector_dag_mincut_analysis(table_name text)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    rel pg_catalog.oid := ruvector_dag._enrolled(table_name);
    cfg pg_catalog.jsonb := (SELECT e.config FROM ruvector_dag.enrolled_tables e
                              WHERE e.relid OPERATOR(pg_catalog.=) rel);
    threshold real := COALESCE((cfg OPERATOR(pg_catalog.->>) 'dag_mincut_threshold')::real,
                               pg_catalog.current_setting('ruvector.dag_mincut_threshold')::real);
    result pg_catalog.jsonb;
BEGIN
    IF rel IS NULL THEN
        RETURN pg_catalog.jsonb_build_object('error', 'Neural DAG not enabled');
    END IF;
    IF NOT COALESCE((cfg OPERATOR(pg_catalog.->>) 'dag_mincut_enabled')::boolean,
                    pg_catalog.current_setting('ruvector.dag_mincut_enabled')::boolean) THEN
        RETURN pg_catalog.jsonb_build_object('error', 'MinCut not enabled');
    END IF;
    SELECT pg_catalog.jsonb_build_object(
               -- the bottleneck cut of the pattern seen most often (cost units, or ms with timing)
               'global_mincut', (SELECT n.cut_weight FROM ruvector_dag.pattern_nodes n
                                   JOIN ruvector_dag.patterns p ON p.relid OPERATOR(pg_catalog.=) n.relid
                                                               AND p.pattern_id OPERATOR(pg_catalog.=) n.pattern_id
                                  WHERE n.relid OPERATOR(pg_catalog.=) rel
                                  ORDER BY p.sample_count DESC, n.pattern_id LIMIT 1),
               'bottleneck_count', pg_catalog.count(*) FILTER (WHERE n.criticality OPERATOR(pg_catalog.>) threshold),
               'bottlenecks', COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                   'node_id', n.node_id, 'criticality', n.criticality, 'pattern_id', n.pattern_id,
                   'operator', n.operator, 'plan_position', n.plan_position)
                   ORDER BY n.criticality DESC, n.node_id)
                   FILTER (WHERE n.criticality OPERATOR(pg_catalog.>) threshold), '[]'),
               'threshold', threshold,
               'patterns_analysed', pg_catalog.count(DISTINCT n.pattern_id))
      INTO result
      FROM ruvector_dag.pattern_nodes n
     WHERE n.relid OPERATOR(pg_catalog.=) rel;
    RETURN result;
END;
$$;
