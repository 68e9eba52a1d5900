/* ruvector_dag--0.2.0--0.3.0.sql: least privilege (docs/security.md).
 *
 * One base script and deltas, as pg_stat_statements ships them: CREATE
 * EXTENSION runs ruvector_dag--0.1.0.sql and then every update script up to
 * default_version, so a fresh install and an updated one are the same by
 * construction (tests/integration/test_upgrade.py checks an update with data).
 *
 * Following PostgreSQL's "Security Considerations for Extensions": every
 * SECURITY DEFINER function sets search_path = pg_catalog, pg_temp; the
 * bodies of the SQL-language functions, which run as the caller and must
 * resolve the caller's table names on the caller's search_path, name every
 * function, operator and type with its schema (@extschema@, ruvector_dag,
 * pg_catalog); internal functions are not executable by PUBLIC.
 */

\echo Use "ALTER EXTENSION ruvector_dag UPDATE TO '0.3.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Who may read rows about a table: superusers, members of pg_read_all_stats
-- and the table's owner.  The C functions filter with the same rule
-- (pgext/src/enroll.c rvd_may_read_relation); the policies below call it.
-- ---------------------------------------------------------------------------

CREATE FUNCTION ruvector_dag.may_read(relid oid)
RETURNS boolean AS 'MODULE_PATHNAME', 'rvd_may_read' LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- Each table of learned state holds rows about enrolled tables: readable by
-- everyone, row by row as may_read() allows.  Superusers (the background
-- worker, the extension's SECURITY DEFINER functions) bypass row security.
ALTER TABLE ruvector_dag.enrolled_tables ENABLE ROW LEVEL SECURITY;
ALTER TABLE ruvector_dag.patterns ENABLE ROW LEVEL SECURITY;
ALTER TABLE ruvector_dag.pattern_nodes ENABLE ROW LEVEL SECURITY;
ALTER TABLE ruvector_dag.trajectory_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE ruvector_dag.engine_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE ruvector_dag.steering_evidence ENABLE ROW LEVEL SECURITY;
CREATE POLICY may_read ON ruvector_dag.enrolled_tables FOR SELECT USING (ruvector_dag.may_read(relid));
CREATE POLICY may_read ON ruvector_dag.patterns FOR SELECT USING (ruvector_dag.may_read(relid));
CREATE POLICY may_read ON ruvector_dag.pattern_nodes FOR SELECT USING (ruvector_dag.may_read(relid));
CREATE POLICY may_read ON ruvector_dag.trajectory_history FOR SELECT USING (ruvector_dag.may_read(relid));
CREATE POLICY may_read ON ruvector_dag.engine_state FOR SELECT USING (ruvector_dag.may_read(relid));
CREATE POLICY may_read ON ruvector_dag.steering_evidence FOR SELECT USING (ruvector_dag.may_read(relid));
GRANT SELECT ON ruvector_dag.enrolled_tables, ruvector_dag.patterns, ruvector_dag.pattern_nodes,
    ruvector_dag.trajectory_history, ruvector_dag.engine_state, ruvector_dag.steering_evidence TO PUBLIC;
-- pg_dump by the database owner reads the dumped sequences (docs/security.md).
GRANT SELECT ON SEQUENCE ruvector_dag.patterns_id_seq, ruvector_dag.trajectory_history_id_seq
    TO pg_database_owner;

-- The views read as their caller (row security and the C functions' filters
-- apply to the caller, not to the views' owner).
CREATE OR REPLACE VIEW ruvector_dag.capture WITH (security_invoker = true) AS
    SELECT s.relid::pg_catalog.regclass AS table_name, s.seen, s.stored, s.dropped,
           (ruvector_dag._learning_counters(s.relid)).buffered AS buffered
      FROM @extschema@.ruvector_dag_capture_stats() s;
ALTER VIEW ruvector_dag.steering SET (security_invoker = true);
GRANT SELECT ON ruvector_dag.capture, ruvector_dag.steering TO PUBLIC;

-- ---------------------------------------------------------------------------
-- Internal functions: not for PUBLIC.  Those that stay executable by PUBLIC
-- are called by the SQL wrappers on the caller's behalf and check in C or
-- read only what row security lets the caller see: _enrolled,
-- _learning_counters (NULL for a table the caller may not read about),
-- _check_read_only_query and _mincut_of_plan (pure functions of their
-- arguments).  See docs/security.md.
-- ---------------------------------------------------------------------------

REVOKE ALL ON FUNCTION ruvector_dag._forget_relation(oid) FROM PUBLIC;
REVOKE ALL ON FUNCTION ruvector_dag._on_sql_drop() FROM PUBLIC;
REVOKE ALL ON FUNCTION ruvector_dag_buffered_trajectories(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION ruvector_dag_buffered_records(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION ruvector_dag.cleanup_old_trajectories(integer) FROM PUBLIC;

-- Requests to the worker: the table's owner (the calling role) and the
-- arguments' bounds are checked in C (pgext/src/sql_learn.c), in the
-- wrappers and in _worker_request alike.  _request_as_owner authorized on
-- session_user and let a table without owner pass: gone.
CREATE OR REPLACE FUNCTION ruvector_dag_learn(table_name text)
RETURNS jsonb AS 'MODULE_PATHNAME', 'rvd_learn' LANGUAGE C VOLATILE;

CREATE OR REPLACE FUNCTION ruvector_dag_extract_patterns(table_name text, num_clusters integer DEFAULT NULL)
RETURNS integer AS 'MODULE_PATHNAME', 'rvd_extract_patterns' LANGUAGE C VOLATILE;

CREATE OR REPLACE FUNCTION ruvector_dag_consolidate_patterns(table_name text, similarity_threshold real DEFAULT 0.95)
RETURNS integer AS 'MODULE_PATHNAME', 'rvd_consolidate_patterns' LANGUAGE C VOLATILE;

DROP FUNCTION ruvector_dag._request_as_owner(text, oid, integer, double precision);

-- ---------------------------------------------------------------------------
-- SQL-language functions, every name qualified.
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION ruvector_dag._enrolled(table_name text)
RETURNS oid
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    rel pg_catalog.oid;
BEGIN
    IF table_name IS NULL THEN
        RAISE EXCEPTION 'table_name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    rel := table_name::pg_catalog.regclass;   -- 42P01 for a missing table, resolved on the caller's search_path
    IF EXISTS (SELECT FROM ruvector_dag.enrolled_tables e WHERE e.relid OPERATOR(pg_catalog.=) rel) THEN
        RETURN rel;
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION ruvector_dag_patterns(
    table_name text,
    OUT pattern_id bigint, OUT centroid real[], OUT attention_type text, OUT confidence real,
    OUT sample_count integer, OUT avg_latency_us double precision, OUT avg_quality double precision)
RETURNS SETOF record
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    rel pg_catalog.oid := ruvector_dag._enrolled(table_name);
BEGIN
    IF rel IS NULL THEN
        RAISE WARNING 'Neural DAG not enabled for table ''%''', table_name;
        RETURN;
    END IF;
    RETURN QUERY
        SELECT p.pattern_id, p.centroid::real[], p.attention_type, p.confidence::real,
               p.sample_count, p.avg_latency_us, p.avg_quality
          FROM ruvector_dag.patterns p
         WHERE p.relid OPERATOR(pg_catalog.=) rel
         ORDER BY p.sample_count DESC, p.pattern_id;
END;
$$;

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
    SELECT s.seen, s.stored, s.dropped INTO cap
      FROM @extschema@.ruvector_dag_capture_stats() s WHERE s.relid OPERATOR(pg_catalog.=) rel;
    RETURN pg_catalog.jsonb_build_object(
        'enabled', true,
        'queries_processed', c.queries_processed,
        'pattern_hit_rate', CASE WHEN c.queries_processed OPERATOR(pg_catalog.>) 0
                                 THEN c.pattern_hits::pg_catalog.float8 OPERATOR(pg_catalog./) c.queries_processed
                                 ELSE 0 END,
        'avg_latency_us', c.avg_latency_us,
        'patterns_stored', (SELECT pg_catalog.count(*) FROM ruvector_dag.patterns p
                             WHERE p.relid OPERATOR(pg_catalog.=) rel),
        'trajectories_buffered', c.buffered,
        'trajectories_dropped', COALESCE(cap.dropped, 0),
        'background_cycles', c.background_cycles,
        'ewc_tasks', c.ewc_tasks,
        'trajectories_learned', c.learned,
        'prediction_error', c.prediction_error,
        'attention_type', c.attention_type,
        'last_cycle_ms', c.last_cycle_ms,
        'last_cycle_at', c.last_cycle_at);
END;
$$;

CREATE OR REPLACE FUNCTION ruvector_dag_health_report(table_name text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    rel pg_catalog.oid := ruvector_dag._enrolled(table_name);
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
    IF pg_catalog.current_setting('ruvector.dag_mincut_enabled')::boolean THEN
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
    threshold real := pg_catalog.current_setting('ruvector.dag_mincut_threshold')::real;
BEGIN
    IF rel IS NULL THEN
        RAISE WARNING 'Neural DAG not enabled for table ''%''', table_name;
        RETURN;
    END IF;
    IF NOT pg_catalog.current_setting('ruvector.dag_mincut_enabled')::boolean THEN
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
    threshold real := pg_catalog.current_setting('ruvector.dag_mincut_threshold')::real;
    result pg_catalog.jsonb;
BEGIN
    IF rel IS NULL THEN
        RETURN pg_catalog.jsonb_build_object('error', 'Neural DAG not enabled');
    END IF;
    IF NOT pg_catalog.current_setting('ruvector.dag_mincut_enabled')::boolean THEN
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

CREATE OR REPLACE FUNCTION ruvector_dag_mincut_plan(
    query text,
    OUT node_id integer, OUT parent_id integer, OUT operator text, OUT self_cost double precision,
    OUT criticality real, OUT is_bottleneck boolean)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    plan pg_catalog.json;
    result pg_catalog.jsonb;
BEGIN
    PERFORM ruvector_dag._check_read_only_query(query);
    IF NOT pg_catalog.current_setting('ruvector.dag_mincut_enabled')::boolean THEN
        RAISE WARNING 'MinCut not enabled';
        RETURN;
    END IF;
    -- A single SELECT (checked above): EXPLAIN plans it, as the caller and on
    -- the caller's search_path, and executes nothing.
    EXECUTE 'EXPLAIN (FORMAT JSON, COSTS ON) ' OPERATOR(pg_catalog.||) query INTO plan;
    result := ruvector_dag._mincut_of_plan(plan::pg_catalog.jsonb,
                                           pg_catalog.current_setting('ruvector.dag_mincut_threshold')::real);
    RETURN QUERY
        SELECT r.node_id, r.parent_id, r.operator, r.self_cost, r.criticality::real, r.is_bottleneck
          FROM pg_catalog.jsonb_to_recordset(result OPERATOR(pg_catalog.->) 'nodes')
               AS r(node_id integer, parent_id integer, operator pg_catalog.text,
                    self_cost double precision, criticality double precision, is_bottleneck boolean)
         ORDER BY r.node_id;
END;
$$;
