/* ruvector_dag--0.7.0--0.8.0.sql
 *
 * Row-count corrections (issue 20), in progress: the key of a relation set.
 */

\echo Use "ALTER EXTENSION ruvector_dag UPDATE TO '0.8.0'" to load this file. \quit

-- Every base and join relation the planner considers for a read-only query,
-- with the key its row-count correction is learned and applied under
-- (pgext/src/relkey.c): one join has one key in every query that holds it.
-- Planned with EXPLAIN, never run.  Internal: for the regression tests.
CREATE FUNCTION ruvector_dag._relation_keys(
    query text, OUT query_level integer, OUT relations text, OUT key bigint, OUT estimated_rows double precision)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'rvd_relation_keys' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ruvector_dag._relation_keys(text) FROM PUBLIC;
