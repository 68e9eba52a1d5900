/* ruvector_dag--0.1.0.sql: first version of the extension's SQL objects. */

\echo Use "CREATE EXTENSION ruvector_dag" to load this file. \quit

-- ---------------------------------------------------------------------------
-- The ruvector type: dense float4 vector with pgvector's text form '[1,2,3]'.
-- ---------------------------------------------------------------------------

CREATE TYPE ruvector;

CREATE FUNCTION ruvector_in(cstring) RETURNS ruvector
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ruvector_out(ruvector) RETURNS cstring
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ruvector_recv(internal) RETURNS ruvector
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ruvector_send(ruvector) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE ruvector (
    INPUT = ruvector_in,
    OUTPUT = ruvector_out,
    RECEIVE = ruvector_recv,
    SEND = ruvector_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = int4,
    STORAGE = external
);
COMMENT ON TYPE ruvector IS 'dense float4 vector; text form [1,2,3] as in pgvector';

CREATE FUNCTION ruvector_from_real_array(real[]) RETURNS ruvector
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ruvector_to_real_array(ruvector) RETURNS real[]
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ruvector_dims(ruvector) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION ruvector_eq(ruvector, ruvector) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE CAST (real[] AS ruvector) WITH FUNCTION ruvector_from_real_array(real[]) AS ASSIGNMENT;
CREATE CAST (ruvector AS real[]) WITH FUNCTION ruvector_to_real_array(ruvector) AS ASSIGNMENT;

CREATE OPERATOR = (
    LEFTARG = ruvector, RIGHTARG = ruvector, PROCEDURE = ruvector_eq,
    COMMUTATOR = =, RESTRICT = eqsel, JOIN = eqjoinsel
);

-- ---------------------------------------------------------------------------
-- Attention mechanisms (docs/attention.md).  Pure functions of their
-- arguments, computed by the engine's Numba kernels in the calling backend.
-- Not STRICT: a NULL argument is an error that names it, not a silent NULL.
-- ---------------------------------------------------------------------------

CREATE FUNCTION ruvector_attention_topological(
    query real[], ancestors real[], config jsonb DEFAULT NULL)
RETURNS real[] AS 'MODULE_PATHNAME', 'rvd_engine_call'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION ruvector_attention_causal_cone(
    query real[], ancestors real[], depths integer[], decay_rate real, max_depth integer)
RETURNS real[] AS 'MODULE_PATHNAME', 'rvd_engine_call'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION ruvector_attention_critical_path(
    query real[], ancestors real[], is_critical boolean[], boost real)
RETURNS real[] AS 'MODULE_PATHNAME', 'rvd_engine_call'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION ruvector_attention_mincut_gated(
    query real[], ancestors real[], criticalities real[], threshold real)
RETURNS real[] AS 'MODULE_PATHNAME', 'rvd_engine_call'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION ruvector_attention_hierarchical_lorentz(
    query real[], ancestors real[], depths integer[], curvature real, temperature real)
RETURNS real[] AS 'MODULE_PATHNAME', 'rvd_engine_call'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION ruvector_attention_parallel_branch(
    query real[], ancestors real[], parallel_nodes real[], common_ancestor_mask boolean[],
    cross_weight real, common_boost real)
RETURNS real[] AS 'MODULE_PATHNAME', 'rvd_engine_call'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION ruvector_attention_temporal_btsp(
    query real[], ancestors real[], timestamps double precision[], window_ms real, boost real)
RETURNS real[] AS 'MODULE_PATHNAME', 'rvd_engine_call'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION ruvector_attention_ensemble(
    query real[], ancestors real[], attention_types text[], weights real[] DEFAULT NULL)
RETURNS real[] AS 'MODULE_PATHNAME', 'rvd_engine_call'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- What the embedded engine runs on: interpreter, packages, kernel cache.
CREATE FUNCTION ruvector_dag_engine_info()
RETURNS jsonb AS 'MODULE_PATHNAME', 'rvd_engine_call'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

-- ---------------------------------------------------------------------------
-- Schema of learned state.
-- ---------------------------------------------------------------------------

CREATE SCHEMA ruvector_dag;

CREATE TABLE ruvector_dag.patterns (
    id BIGSERIAL PRIMARY KEY,
    table_name TEXT NOT NULL,
    pattern_id BIGINT NOT NULL,
    centroid @extschema@.ruvector NOT NULL,
    attention_type TEXT NOT NULL,
    optimal_params JSONB NOT NULL,
    confidence FLOAT NOT NULL,
    sample_count INT NOT NULL,
    avg_latency_us FLOAT NOT NULL,
    avg_quality FLOAT NOT NULL,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW(),
    UNIQUE (table_name, pattern_id)
);

CREATE TABLE ruvector_dag.trajectory_history (
    id BIGSERIAL PRIMARY KEY,
    table_name TEXT NOT NULL,
    trajectory_id BIGINT NOT NULL,
    plan_embedding @extschema@.ruvector NOT NULL,
    attention_type TEXT NOT NULL,
    latency_us BIGINT NOT NULL,
    quality FLOAT NOT NULL,
    recorded_at TIMESTAMPTZ DEFAULT NOW()
);

CREATE INDEX idx_patterns_table
    ON ruvector_dag.patterns (table_name);
CREATE INDEX idx_trajectories_table_time
    ON ruvector_dag.trajectory_history (table_name, recorded_at DESC);

-- Learned state is user data: pg_dump must include it.
SELECT pg_catalog.pg_extension_config_dump('ruvector_dag.patterns', '');
SELECT pg_catalog.pg_extension_config_dump('ruvector_dag.patterns_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ruvector_dag.trajectory_history', '');
SELECT pg_catalog.pg_extension_config_dump('ruvector_dag.trajectory_history_id_seq', '');

-- ---------------------------------------------------------------------------
-- Enrollment (pgext/src/enroll.c).  The table is the durable record; the
-- shared registry the hooks consult is updated when the transaction commits
-- and reloaded from this table by the background worker after a restart.
-- ---------------------------------------------------------------------------

CREATE TABLE ruvector_dag.enrolled_tables (
    relid OID PRIMARY KEY,
    table_name TEXT NOT NULL,
    config JSONB NOT NULL,
    enabled_by OID NOT NULL,
    enabled_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('ruvector_dag.enrolled_tables', '');
GRANT USAGE ON SCHEMA ruvector_dag TO PUBLIC;
GRANT SELECT ON ruvector_dag.enrolled_tables, ruvector_dag.patterns TO PUBLIC;

CREATE FUNCTION ruvector_enable_neural_dag(table_name text, config jsonb DEFAULT NULL)
RETURNS boolean AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

CREATE FUNCTION ruvector_disable_neural_dag(table_name text)
RETURNS boolean AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

CREATE FUNCTION ruvector_neural_dag_enabled(table_name text)
RETURNS boolean AS 'MODULE_PATHNAME' LANGUAGE C STABLE;

-- A dropped table loses its enrollment.
CREATE FUNCTION ruvector_dag._forget_relation(relid oid)
RETURNS void AS 'MODULE_PATHNAME', 'rvd_forget_relation' LANGUAGE C VOLATILE STRICT;

CREATE FUNCTION ruvector_dag._on_sql_drop()
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
END;
$$;

CREATE EVENT TRIGGER ruvector_dag_sql_drop ON sql_drop
    EXECUTE FUNCTION ruvector_dag._on_sql_drop();

-- ---------------------------------------------------------------------------
-- Capture: counters and the buffered trajectories (pgext/src/sql_state.c).
-- ---------------------------------------------------------------------------

CREATE FUNCTION ruvector_dag_capture_stats(
    OUT relid oid, OUT table_name text, OUT seen bigint, OUT stored bigint, OUT dropped bigint)
RETURNS SETOF record AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

CREATE FUNCTION ruvector_dag_ring_stats(
    OUT capacity integer, OUT buffered bigint, OUT written bigint, OUT consumed bigint,
    OUT registry_loaded boolean)
RETURNS record AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

CREATE FUNCTION ruvector_dag_buffered_trajectories(
    max_records integer DEFAULT 1000,
    OUT seq bigint, OUT relid oid, OUT query_id bigint, OUT nesting_level integer,
    OUT captured_at timestamptz, OUT planning_us double precision, OUT execution_us double precision,
    OUT rows_processed bigint, OUT memory_bytes bigint, OUT cache_hit_rate double precision,
    OUT cmd_type text, OUT n_nodes integer, OUT total_nodes integer, OUT truncated boolean,
    OUT nodes jsonb, OUT userid oid)
RETURNS SETOF record AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

-- The same records as raw RvdTrajectory structs (the engine's cffi input).
CREATE FUNCTION ruvector_dag_buffered_records(max_records integer DEFAULT 1000)
RETURNS bytea AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;

CREATE FUNCTION ruvector_dag_capture_reset()
RETURNS void AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ruvector_dag_capture_reset() FROM PUBLIC;

CREATE FUNCTION ruvector_dag_record_layout()
RETURNS jsonb AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE;

CREATE VIEW ruvector_dag.capture AS
    SELECT s.relid::regclass AS table_name, s.seen, s.stored, s.dropped,
           (SELECT count(*) FROM ruvector_dag_buffered_trajectories(r.capacity) b
             WHERE b.relid = s.relid) AS buffered
      FROM ruvector_dag_capture_stats() s, ruvector_dag_ring_stats() r;

-- Delete trajectory history older than retention_days; returns rows deleted.
CREATE FUNCTION ruvector_dag.cleanup_old_trajectories(retention_days integer DEFAULT 7)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    deleted_count integer;
BEGIN
    IF retention_days IS NULL THEN
        RAISE EXCEPTION 'retention_days must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF retention_days < 0 THEN
        RAISE EXCEPTION 'retention_days must be >= 0, got %', retention_days
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM ruvector_dag.trajectory_history
     WHERE recorded_at < now() - make_interval(days => retention_days);
    GET DIAGNOSTICS deleted_count = ROW_COUNT;
    RETURN deleted_count;
END;
$$;
