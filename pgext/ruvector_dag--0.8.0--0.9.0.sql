/* ruvector_dag--0.8.0--0.9.0.sql
 *
 * Row-count corrections (issue 20), in progress: planning with a given set
 * of corrections, the benchmark's oracle and the tests' way in.
 */

\echo Use "ALTER EXTENSION ruvector_dag UPDATE TO '0.9.0'" to load this file. \quit

-- EXPLAIN (FORMAT JSON[, ANALYZE]) of a read-only query planned with the row
-- counts of the relation sets whose keys are given scaled by the factors
-- (pgext/src/corrections.c), and the key of each plan node, in the pre-order
-- of EXPLAIN's outer and inner children (0: a node that is not a scan or join
-- of the statement's own tables).  corrected: how many base and join
-- relations were scaled; relations: how many the planner considered.
-- run: EXPLAIN ANALYZE (it runs the query).  Internal: the benchmark's oracle (true counts
-- injected until the plan stops changing) and the regression tests.
CREATE FUNCTION ruvector_dag._explain_with_corrections(
    query text, keys bigint[], factors double precision[], run boolean,
    OUT plan json, OUT node_keys bigint[], OUT corrected integer, OUT relations integer)
RETURNS SETOF record AS 'MODULE_PATHNAME', 'rvd_explain_with_corrections' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION ruvector_dag._explain_with_corrections(text, bigint[], double precision[], boolean) FROM PUBLIC;
