/* ruvector_dag--0.4.0--0.5.0.sql
 *
 * Pins that survive.  ruvector_dag_pin_arm(query_id, arm) lasted until the
 * server restarted: it lived in shared memory only, so a restart, a crash or
 * a failover lost it, and a standby never had it.  Now a pin is a row of
 * ruvector_dag.pinned_arms, written in the caller's transaction (as
 * enrollments are) and applied to shared memory when it commits; the
 * background worker loads the rows at start and follows them on a hot
 * standby, where they arrive by replication.  Pins are kept by query id,
 * which depends on OIDs: a dump restored into another cluster keeps the rows
 * but their query ids name the old cluster's statements (docs/operations.md).
 *
 * Enrollments remember their cluster (its system identifier, stamped by the
 * worker): a dump restored into another cluster is re-keyed to the tables'
 * new OIDs by table name, and only then (an enrollment of this cluster whose
 * table is gone is never handed to another table that takes its name).
 */

\echo Use "ALTER EXTENSION ruvector_dag UPDATE TO '0.5.0'" to load this file. \quit

CREATE TABLE ruvector_dag.pinned_arms (
    query_id BIGINT PRIMARY KEY CHECK (query_id <> 0),
    arm TEXT NOT NULL,
    pinned_by OID NOT NULL,
    pinned_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('ruvector_dag.pinned_arms', '');
-- Pinned decisions name no table: they are shown to privileged readers only
-- (superusers, pg_read_all_stats), as ruvector_dag_steering_decisions()
-- shows them; a database owner's pg_dump --enable-row-security gets none.
ALTER TABLE ruvector_dag.pinned_arms ENABLE ROW LEVEL SECURITY;
CREATE POLICY may_read ON ruvector_dag.pinned_arms FOR SELECT
    USING (pg_catalog.pg_has_role('pg_read_all_stats', 'MEMBER'));
GRANT SELECT ON ruvector_dag.pinned_arms TO PUBLIC;

ALTER TABLE ruvector_dag.enrolled_tables ADD COLUMN cluster_id BIGINT;
COMMENT ON COLUMN ruvector_dag.enrolled_tables.cluster_id IS
    'system identifier of the cluster the enrollment belongs to (NULL until the worker stamps it)';

-- Plan every statement with this query id (that reads an enrolled table)
-- under the arm, in every session of this database and on its standbys,
-- until unpinned.
COMMENT ON FUNCTION ruvector_dag_pin_arm(bigint, text) IS
    'Plan the query under the arm until unpinned (kept in ruvector_dag.pinned_arms; applied at commit)';

-- The record layout is a constant of the library: safe in parallel workers too
-- (PostgreSQL's opr_sanity flags an IMMUTABLE function that is not PARALLEL SAFE).
ALTER FUNCTION ruvector_dag_record_layout() PARALLEL SAFE;
