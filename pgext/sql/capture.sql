-- Capture counts: every statement that reads an enrolled table is stored in
-- the trajectory ring and counted, others are not (docs/design.md, "Capture").
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
  SELECT stored, dropped FROM ruvector_dag_capture_stats() WHERE relid = 'regress_rvd_c'::regclass;
SELECT stored, dropped FROM counts;

-- Five statements on the table: five stored.
SELECT count(*) FROM regress_rvd_c;
SELECT k FROM regress_rvd_c WHERE id = 7;
SELECT k, count(*) FROM regress_rvd_c GROUP BY k ORDER BY k LIMIT 2;
SELECT count(*) FROM regress_rvd_c a JOIN regress_rvd_c b USING (id) WHERE a.k = 3;
UPDATE regress_rvd_c SET k = k WHERE id = 1;
-- Not counted: other tables, statements that touch no table, utility statements.
SELECT count(*) FROM regress_rvd_other;
SELECT 1 AS one;
ANALYZE regress_rvd_c;
SELECT s.stored - c.stored AS stored, s.dropped - c.dropped AS dropped, s.seen - c.stored - c.dropped AS seen
  FROM ruvector_dag_capture_stats() s, counts c WHERE s.relid = 'regress_rvd_c'::regclass;
SELECT stored - (SELECT stored FROM counts) AS stored_in_view
  FROM ruvector_dag.capture WHERE table_name = 'regress_rvd_c'::regclass;

-- Capture off for the session: nothing more is counted.
SET ruvector.neural_dag_enabled = off;
SELECT count(*) FROM regress_rvd_c;
RESET ruvector.neural_dag_enabled;
SELECT s.stored - c.stored AS stored
  FROM ruvector_dag_capture_stats() s, counts c WHERE s.relid = 'regress_rvd_c'::regclass;

-- The ring holds what was stored until the worker takes it; its capacity is the setting.
SELECT capacity = current_setting('ruvector.dag_max_trajectories')::int AS capacity_is_the_setting
  FROM ruvector_dag_ring_stats();
-- The record layout the worker decodes (generated from ruvector_dag's definitions).
SELECT count(*) > 0 AS described FROM ruvector_dag_record_layout();

-- Disenrolled: no longer counted, and gone from the statistics.
SELECT ruvector_disable_neural_dag('regress_rvd_c');
SELECT count(*) FROM regress_rvd_c;
SELECT count(*) FROM ruvector_dag_capture_stats() WHERE relid = 'regress_rvd_c'::regclass;
DROP TABLE regress_rvd_c, regress_rvd_other;
