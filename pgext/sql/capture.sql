-- Capture counts: every execution of a statement that reads an enrolled
-- table is counted, as pg_stat_statements counts calls; those sampling keeps
-- are captured into the trajectory ring, others are not (docs/operations.md,
-- "Capture counters").
-- Runs in the worker's database (postgres), where tables can be enrolled.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ruvector_dag;
RESET client_min_messages;
\c postgres
\set VERBOSITY terse
\set SHOW_CONTEXT never
CREATE TABLE regress_rvd_c (id int PRIMARY KEY, k int);
CREATE TABLE regress_rvd_other (id int);
INSERT INTO regress_rvd_c SELECT g, g % 10 FROM generate_series(1, 100) g;
SELECT ruvector_enable_neural_dag('regress_rvd_c');
CREATE TEMP TABLE counts AS
  SELECT executions, captured, sampled_out, dropped FROM ruvector_dag_capture_stats()
   WHERE relid = 'regress_rvd_c'::regclass;
SELECT * FROM counts;

-- Five statements on the table: five executions, five captured.
SELECT count(*) FROM regress_rvd_c;
SELECT k FROM regress_rvd_c WHERE id = 7;
SELECT k, count(*) FROM regress_rvd_c GROUP BY k ORDER BY k LIMIT 2;
SELECT count(*) FROM regress_rvd_c a JOIN regress_rvd_c b USING (id) WHERE a.k = 3;
UPDATE regress_rvd_c SET k = k WHERE id = 1;
-- Not counted: other tables, statements that touch no table, utility statements.
SELECT count(*) FROM regress_rvd_other;
SELECT 1 AS one;
ANALYZE regress_rvd_c;
CREATE VIEW delta AS
  SELECT s.executions - c.executions AS executions, s.captured - c.captured AS captured,
         s.sampled_out - c.sampled_out AS sampled_out, s.dropped - c.dropped AS dropped
    FROM ruvector_dag_capture_stats() s, counts c WHERE s.relid = 'regress_rvd_c'::regclass;
SELECT * FROM delta;
SELECT v.captured - (SELECT captured FROM counts) AS captured_in_view, v.capture_rate > 0 AS has_rate
  FROM ruvector_dag.capture v WHERE table_name = 'regress_rvd_c'::regclass;

-- Sampling at 0: executions are still counted, as sampled out (a session
-- keeps its first execution of a query: the first of the three).
-- Instrumentation another extension asks for (here EXPLAIN ANALYZE;
-- auto_explain.log_analyze alike) does not make a statement captured.
-- EXPLAIN alone runs nothing.
SET ruvector.dag_capture_sample_rate = 0;
SELECT count(*) FROM regress_rvd_c WHERE k = 4;
SELECT count(*) FROM regress_rvd_c WHERE k = 5;
\o /dev/null
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM regress_rvd_c WHERE k = 6;
\o
EXPLAIN (COSTS OFF) SELECT count(*) FROM regress_rvd_c WHERE k = 6;
RESET ruvector.dag_capture_sample_rate;
SELECT * FROM delta;

-- Capture off for the session: nothing more is counted.
SET ruvector.neural_dag_enabled = off;
SELECT count(*) FROM regress_rvd_c;
RESET ruvector.neural_dag_enabled;
SELECT * FROM delta;

-- The ring holds what was captured until the worker takes it; its capacity is the setting.
SELECT capacity = current_setting('ruvector.dag_max_trajectories')::int AS capacity_is_the_setting
  FROM ruvector_dag_ring_stats();
-- The record layout the worker decodes (generated from ruvector_dag's definitions).
SELECT count(*) > 0 AS described FROM ruvector_dag_record_layout();

-- Disenrolled: no longer counted, and gone from the statistics.
SELECT ruvector_disable_neural_dag('regress_rvd_c');
SELECT count(*) FROM regress_rvd_c;
SELECT count(*) FROM ruvector_dag_capture_stats() WHERE relid = 'regress_rvd_c'::regclass;
DROP VIEW delta;
DROP TABLE regress_rvd_c, regress_rvd_other;
