/* ruvector_dag--0.1.0--0.2.0.sql: from capture (0.1.0) to learning and MinCut (0.2.0). */

\echo Use "ALTER EXTENSION ruvector_dag UPDATE TO '0.2.0'" to load this file. \quit

-- Learned rows are keyed by the enrolled relation's oid from 0.2.0 on.  0.1.0
-- never wrote these tables itself; rows someone put there keep their table
-- when its name resolves to an enrolled table, else relid 0 (and the
-- patterns of no known table are dropped: 0.2.0 upserts by relid).
ALTER TABLE ruvector_dag.patterns ADD COLUMN relid OID;
UPDATE ruvector_dag.patterns p SET relid = e.relid
  FROM ruvector_dag.enrolled_tables e WHERE e.table_name = p.table_name;
DELETE FROM ruvector_dag.patterns WHERE relid IS NULL;
ALTER TABLE ruvector_dag.patterns ALTER COLUMN relid SET NOT NULL;
CREATE INDEX idx_patterns_relid
    ON ruvector_dag.patterns (relid);

ALTER TABLE ruvector_dag.trajectory_history
    ADD COLUMN relid OID,
    ADD COLUMN query_id BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN pattern_id BIGINT,
    ADD COLUMN max_criticality FLOAT;
UPDATE ruvector_dag.trajectory_history h SET relid = coalesce(
    (SELECT e.relid FROM ruvector_dag.enrolled_tables e WHERE e.table_name = h.table_name LIMIT 1), 0);
ALTER TABLE ruvector_dag.trajectory_history ALTER COLUMN relid SET NOT NULL;

CREATE TABLE ruvector_dag.engine_state (
    relid OID PRIMARY KEY,
    state BYTEA NOT NULL,
    saved_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('ruvector_dag.engine_state', '');

CREATE OR REPLACE FUNCTION ruvector_dag._on_sql_drop()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM ruvector_dag._forget_relation(d.objid)
       FROM pg_event_trigger_dropped_objects() d
       JOIN ruvector_dag.enrolled_tables e ON e.relid = d.objid
      WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0;
    -- What was learned about a dropped table describes nothing any more.
    DELETE FROM ruvector_dag.patterns p USING pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0 AND p.relid = d.objid;
    DELETE FROM ruvector_dag.trajectory_history h USING pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0 AND h.relid = d.objid;
    DELETE FROM ruvector_dag.engine_state s USING pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0 AND s.relid = d.objid;
    DELETE FROM ruvector_dag.pattern_nodes n USING pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0 AND n.relid = d.objid;
    DELETE FROM ruvector_dag.steering_evidence v USING pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0 AND v.relid = d.objid;
END;
$$;

-- ---------------------------------------------------------------------------
-- Learning (the engine runs in the background worker; pgext/src/sql_learn.c).
-- ---------------------------------------------------------------------------

-- Post a request to the worker and wait for its JSON answer.
CREATE FUNCTION ruvector_dag._worker_request(kind text, relid oid, int_arg integer, real_arg double precision)
RETURNS jsonb AS 'MODULE_PATHNAME', 'rvd_worker_request' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ruvector_dag._worker_request(text, oid, integer, double precision) FROM PUBLIC;

-- Counters the worker publishes in shared memory after each batch.
CREATE FUNCTION ruvector_dag._learning_counters(
    relid oid,
    OUT consumed bigint, OUT queries_processed bigint, OUT learned bigint, OUT pattern_hits bigint,
    OUT avg_latency_us double precision, OUT prediction_error double precision,
    OUT patterns_stored integer, OUT ewc_tasks integer, OUT background_cycles bigint,
    OUT last_cycle_ms double precision, OUT last_cycle_at timestamptz, OUT attention_type text,
    OUT buffered bigint)
RETURNS record AS 'MODULE_PATHNAME', 'rvd_learning_counters' LANGUAGE C VOLATILE STRICT;

-- The enrolled relation named by table_name, or NULL if it is not enrolled.
-- A name that resolves to no relation raises 42P01 (undefined_table).
CREATE FUNCTION ruvector_dag._enrolled(table_name text)
RETURNS oid
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    rel oid;
BEGIN
    IF table_name IS NULL THEN
        RAISE EXCEPTION 'table_name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    rel := table_name::regclass;   -- 42P01 for a missing table, resolved on the caller's search_path
    IF EXISTS (SELECT 1 FROM ruvector_dag.enrolled_tables e WHERE e.relid = rel) THEN
        RETURN rel;
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION ruvector_dag_patterns(
    table_name text,
    OUT pattern_id bigint, OUT centroid real[], OUT attention_type text, OUT confidence real,
    OUT sample_count integer, OUT avg_latency_us double precision, OUT avg_quality double precision)
RETURNS SETOF record
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    rel oid := ruvector_dag._enrolled(table_name);
BEGIN
    IF rel IS NULL THEN
        RAISE WARNING 'Neural DAG not enabled for table ''%''', table_name;
        RETURN;
    END IF;
    RETURN QUERY
        SELECT p.pattern_id, p.centroid::real[], p.attention_type, p.confidence::real,
               p.sample_count, p.avg_latency_us, p.avg_quality
          FROM ruvector_dag.patterns p
         WHERE p.relid = rel
         ORDER BY p.sample_count DESC, p.pattern_id;
END;
$$;

-- Force a background cycle (k-means++ over what was learned since the last
-- one, with num_clusters clusters if given); returns the patterns extracted.
CREATE FUNCTION ruvector_dag_extract_patterns(table_name text, num_clusters integer DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    rel oid := ruvector_dag._enrolled(table_name);
    answer jsonb;
BEGIN
    IF rel IS NULL THEN
        RAISE EXCEPTION 'Neural DAG not enabled for table ''%''', table_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF num_clusters IS NOT NULL AND (num_clusters < 1 OR num_clusters > 1000) THEN
        RAISE EXCEPTION 'num_clusters must be between 1 and 1000, got %', num_clusters
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    answer := ruvector_dag._request_as_owner('extract', rel, num_clusters, NULL);
    IF NOT (answer->>'success')::boolean THEN
        RAISE WARNING 'Pattern extraction skipped: %', answer->>'reason';
        RETURN 0;
    END IF;
    RETURN (answer->>'patterns_extracted')::integer;
END;
$$;

-- Merge patterns whose centroids have cosine similarity >= the threshold;
-- returns how many patterns were merged away.
CREATE FUNCTION ruvector_dag_consolidate_patterns(table_name text, similarity_threshold real DEFAULT 0.95)
RETURNS integer
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    rel oid := ruvector_dag._enrolled(table_name);
    answer jsonb;
BEGIN
    IF rel IS NULL THEN
        RAISE WARNING 'Neural DAG not enabled for table ''%''', table_name;
        RETURN 0;
    END IF;
    IF similarity_threshold IS NULL OR NOT (similarity_threshold > -1 AND similarity_threshold <= 1) THEN
        RAISE EXCEPTION 'similarity_threshold must be in (-1, 1], got %', coalesce(similarity_threshold::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    answer := ruvector_dag._request_as_owner('consolidate', rel, NULL, similarity_threshold);
    RETURN (answer->>'merged')::integer;
END;
$$;

-- Learn now: everything captured so far, then a background cycle.
CREATE FUNCTION ruvector_dag_learn(table_name text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    rel oid := ruvector_dag._enrolled(table_name);
BEGIN
    IF rel IS NULL THEN
        RETURN jsonb_build_object('success', false, 'error', 'Neural DAG not enabled');
    END IF;
    RETURN ruvector_dag._request_as_owner('learn', rel, NULL, NULL);
END;
$$;

-- Requests are allowed to the enrolled table's owner (as enrollment is);
-- this wrapper checks that and then posts the request with the
-- extension owner's right to call _worker_request.
CREATE FUNCTION ruvector_dag._request_as_owner(kind text, rel oid, int_arg integer, real_arg double precision)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT pg_catalog.pg_has_role(session_user,
            (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = rel), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', rel::regclass
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN ruvector_dag._worker_request(kind, rel, int_arg, real_arg);
END;
$$;

CREATE FUNCTION ruvector_dag_learning_stats(table_name text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    rel oid := ruvector_dag._enrolled(table_name);
    c record;
    cap record;
BEGIN
    IF rel IS NULL THEN
        RETURN jsonb_build_object('enabled', false, 'error', 'Neural DAG not enabled');
    END IF;
    c := ruvector_dag._learning_counters(rel);
    SELECT s.seen, s.stored, s.dropped INTO cap FROM ruvector_dag_capture_stats() s WHERE s.relid = rel;
    RETURN jsonb_build_object(
        'enabled', true,
        'queries_processed', c.queries_processed,
        'pattern_hit_rate', CASE WHEN c.queries_processed > 0
                                 THEN c.pattern_hits::float8 / c.queries_processed ELSE 0 END,
        'avg_latency_us', c.avg_latency_us,
        'patterns_stored', (SELECT count(*) FROM ruvector_dag.patterns p WHERE p.relid = rel),
        'trajectories_buffered', c.buffered,
        'trajectories_dropped', coalesce(cap.dropped, 0),
        'background_cycles', c.background_cycles,
        'ewc_tasks', c.ewc_tasks,
        'trajectories_learned', c.learned,
        'prediction_error', c.prediction_error,
        'attention_type', c.attention_type,
        'last_cycle_ms', c.last_cycle_ms,
        'last_cycle_at', c.last_cycle_at);
END;
$$;

CREATE FUNCTION ruvector_dag_health_report(table_name text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    rel oid := ruvector_dag._enrolled(table_name);
    stats jsonb;
    cap record;
    drop_rate float8 := 0;
    issues text[] := '{}';
    ring_capacity integer;
    severe bigint;
BEGIN
    IF rel IS NULL THEN
        RETURN jsonb_build_object('healthy', false, 'error', 'Neural DAG not enabled');
    END IF;
    stats := ruvector_dag_learning_stats(table_name);
    SELECT s.seen, s.dropped INTO cap FROM ruvector_dag_capture_stats() s WHERE s.relid = rel;
    SELECT r.capacity INTO ring_capacity FROM ruvector_dag_ring_stats() r;
    IF coalesce(cap.seen, 0) > 0 THEN
        drop_rate := cap.dropped::float8 / cap.seen;
    END IF;
    IF drop_rate > 0.1 THEN
        issues := issues || format('High trajectory drop rate: %s%%', round((drop_rate * 100)::numeric, 1));
    END IF;
    IF (stats->>'pattern_hit_rate')::float8 < 0.1 AND (stats->>'queries_processed')::bigint > 1000 THEN
        issues := issues || format('Low pattern hit rate: %s%%',
                                   round(((stats->>'pattern_hit_rate')::float8 * 100)::numeric, 1));
    END IF;
    -- MinCut: operators carrying over 80 % of their plan's bottleneck cut (plans of
    -- one operator are left out: their only operator carries everything by definition).
    IF current_setting('ruvector.dag_mincut_enabled')::boolean THEN
        SELECT count(*) INTO severe FROM ruvector_dag.pattern_nodes n
         WHERE n.relid = rel AND n.criticality > 0.8
           AND EXISTS (SELECT 1 FROM ruvector_dag.pattern_nodes m
                        WHERE m.relid = n.relid AND m.pattern_id = n.pattern_id AND m.plan_position > 0);
        IF severe > 0 THEN
            issues := issues || format('%s severe bottlenecks detected', severe);
        END IF;
    END IF;
    RETURN jsonb_build_object(
        'healthy', cardinality(issues) = 0,
        'issues', to_jsonb(issues),
        'metrics', stats - 'enabled',
        'buffer', jsonb_build_object('size', stats->'trajectories_buffered', 'capacity', ring_capacity,
                                     'drop_rate', drop_rate));
END;
$$;

-- ---------------------------------------------------------------------------
-- MinCut bottleneck analysis (ruvector_dag/mincut.py, docs/design.md).
-- Each learned pattern keeps an exemplar plan; the worker stores its
-- operators with their criticality on the plan's bottleneck cut.
-- node_id = pattern_id * 1000 + the operator's position in EXPLAIN order.
-- ---------------------------------------------------------------------------

CREATE TABLE ruvector_dag.pattern_nodes (
    relid OID NOT NULL,
    pattern_id BIGINT NOT NULL,
    node_id BIGINT NOT NULL,
    plan_position INT NOT NULL,
    parent_position INT NOT NULL,
    operator TEXT NOT NULL,
    self_cost FLOAT NOT NULL,
    criticality FLOAT NOT NULL,
    cut_weight FLOAT NOT NULL,
    PRIMARY KEY (relid, node_id)
);
SELECT pg_catalog.pg_extension_config_dump('ruvector_dag.pattern_nodes', '');
GRANT SELECT ON ruvector_dag.pattern_nodes TO PUBLIC;

CREATE FUNCTION ruvector_dag_mincut_criticality(
    table_name text,
    OUT node_id bigint, OUT criticality real, OUT is_bottleneck boolean,
    OUT pattern_id bigint, OUT plan_position integer, OUT parent_position integer, OUT operator text,
    OUT self_cost double precision)
RETURNS SETOF record
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    rel oid := ruvector_dag._enrolled(table_name);
    threshold real := current_setting('ruvector.dag_mincut_threshold')::real;
BEGIN
    IF rel IS NULL THEN
        RAISE WARNING 'Neural DAG not enabled for table ''%''', table_name;
        RETURN;
    END IF;
    IF NOT current_setting('ruvector.dag_mincut_enabled')::boolean THEN
        RAISE WARNING 'MinCut not enabled for table ''%''', table_name;
        RETURN;
    END IF;
    RETURN QUERY
        SELECT n.node_id, n.criticality::real, n.criticality > threshold, n.pattern_id, n.plan_position,
               n.parent_position, n.operator, n.self_cost
          FROM ruvector_dag.pattern_nodes n
         WHERE n.relid = rel
         ORDER BY n.criticality DESC, n.node_id;
END;
$$;

CREATE FUNCTION ruvector_dag_mincut_analysis(table_name text)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    rel oid := ruvector_dag._enrolled(table_name);
    threshold real := current_setting('ruvector.dag_mincut_threshold')::real;
    result jsonb;
BEGIN
    IF rel IS NULL THEN
        RETURN jsonb_build_object('error', 'Neural DAG not enabled');
    END IF;
    IF NOT current_setting('ruvector.dag_mincut_enabled')::boolean THEN
        RETURN jsonb_build_object('error', 'MinCut not enabled');
    END IF;
    SELECT jsonb_build_object(
               -- the bottleneck cut of the pattern seen most often (cost units, or ms with timing)
               'global_mincut', (SELECT n.cut_weight FROM ruvector_dag.pattern_nodes n
                                   JOIN ruvector_dag.patterns p ON p.relid = n.relid AND p.pattern_id = n.pattern_id
                                  WHERE n.relid = rel ORDER BY p.sample_count DESC, n.pattern_id LIMIT 1),
               'bottleneck_count', count(*) FILTER (WHERE n.criticality > threshold),
               'bottlenecks', coalesce(jsonb_agg(jsonb_build_object(
                   'node_id', n.node_id, 'criticality', n.criticality, 'pattern_id', n.pattern_id,
                   'operator', n.operator, 'plan_position', n.plan_position)
                   ORDER BY n.criticality DESC, n.node_id) FILTER (WHERE n.criticality > threshold), '[]'),
               'threshold', threshold,
               'patterns_analysed', count(DISTINCT n.pattern_id))
      INTO result
      FROM ruvector_dag.pattern_nodes n
     WHERE n.relid = rel;
    RETURN result;
END;
$$;

CREATE FUNCTION ruvector_dag._check_read_only_query(query text)
RETURNS void AS 'MODULE_PATHNAME', 'rvd_check_read_only_query' LANGUAGE C VOLATILE;

CREATE FUNCTION ruvector_dag._mincut_of_plan(plan jsonb, threshold real)
RETURNS jsonb AS 'MODULE_PATHNAME', 'rvd_engine_call' LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- Criticality of each operator of the plan PostgreSQL chooses for query
-- (planned with EXPLAIN, never executed).
CREATE FUNCTION ruvector_dag_mincut_plan(
    query text,
    OUT node_id integer, OUT parent_id integer, OUT operator text, OUT self_cost double precision,
    OUT criticality real, OUT is_bottleneck boolean)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    plan json;
    result jsonb;
BEGIN
    PERFORM ruvector_dag._check_read_only_query(query);
    IF NOT current_setting('ruvector.dag_mincut_enabled')::boolean THEN
        RAISE WARNING 'MinCut not enabled';
        RETURN;
    END IF;
    -- A single SELECT (checked above): EXPLAIN plans it and executes nothing.
    EXECUTE 'EXPLAIN (FORMAT JSON, COSTS ON) ' || query INTO plan;
    result := ruvector_dag._mincut_of_plan(plan::jsonb, current_setting('ruvector.dag_mincut_threshold')::real);
    RETURN QUERY
        SELECT r.node_id, r.parent_id, r.operator, r.self_cost, r.criticality::real, r.is_bottleneck
          FROM jsonb_to_recordset(result->'nodes') AS r(node_id integer, parent_id integer, operator text,
               self_cost double precision, criticality double precision, is_bottleneck boolean)
         ORDER BY r.node_id;
END;
$$;

-- ---------------------------------------------------------------------------
-- Plan steering (pgext/src/steer.c, ruvector_dag/steering.py).
-- ---------------------------------------------------------------------------

CREATE FUNCTION ruvector_dag_steering_arms(OUT arm_id integer, OUT arm text, OUT settings text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'rvd_steering_arms' LANGUAGE C STABLE;

CREATE FUNCTION ruvector_dag_steering_decisions(OUT query_id bigint, OUT arm text, OUT source text)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'rvd_steering_decisions' LANGUAGE C VOLATILE;

-- Plan every statement with this query id (that reads an enrolled table)
-- under the arm, in every session of this database, until unpinned or restart.
CREATE FUNCTION ruvector_dag_pin_arm(query_id bigint, arm text)
RETURNS void AS 'MODULE_PATHNAME', 'rvd_pin_arm' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ruvector_dag_pin_arm(bigint, text) FROM PUBLIC;

CREATE FUNCTION ruvector_dag_unpin(query_id bigint)
RETURNS boolean AS 'MODULE_PATHNAME', 'rvd_unpin' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ruvector_dag_unpin(bigint) FROM PUBLIC;

-- Plan the statement under the arm on trial: the engine measures it against
-- the default plan and keeps it only if it is not slower (the regression
-- guard reverts it otherwise).
CREATE FUNCTION ruvector_dag_try_arm(query_id bigint, arm text)
RETURNS void AS 'MODULE_PATHNAME', 'rvd_try_arm' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ruvector_dag_try_arm(bigint, text) FROM PUBLIC;

-- What the engine measured per (query, arm), saved by the background worker
-- with the engine state (at most a minute old; ruvector_dag_learn() saves now).
CREATE TABLE ruvector_dag.steering_evidence (
    relid OID NOT NULL,
    query_id BIGINT NOT NULL,
    arm TEXT NOT NULL,
    executions INT NOT NULL,
    mean_latency_us DOUBLE PRECISION,      -- geometric mean (latencies are compared in log space)
    sd_log_latency DOUBLE PRECISION,
    banned BOOLEAN NOT NULL,               -- by the one-shot ban or the regression guard
    chosen BOOLEAN NOT NULL,               -- the engine's current decision for the query
    pattern_id BIGINT,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (relid, query_id, arm)
);
SELECT pg_catalog.pg_extension_config_dump('ruvector_dag.steering_evidence', '');

-- The decisions in force with their evidence: one row per decision.
CREATE VIEW ruvector_dag.steering AS
SELECT d.query_id, d.arm, d.source,
       (SELECT e.relid::regclass FROM ruvector_dag.steering_evidence e
         WHERE e.query_id = d.query_id LIMIT 1) AS table_name,
       (SELECT jsonb_object_agg(e.arm, jsonb_build_object(
                   'executions', e.executions,
                   'mean_latency_us', round(e.mean_latency_us::numeric, 1),
                   'banned', e.banned) ORDER BY e.arm)
          FROM ruvector_dag.steering_evidence e WHERE e.query_id = d.query_id) AS evidence
  FROM ruvector_dag_steering_decisions() d;
