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

-- ---------------------------------------------------------------------------
-- Readable steering
-- ---------------------------------------------------------------------------
