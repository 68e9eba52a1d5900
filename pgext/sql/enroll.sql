-- Enrollment and its errors, and a table's own settings (docs/design.md,
-- "Per-table config").  Enrollment is only allowed in the database the
-- background worker serves (ruvector.dag_worker_database, default postgres),
-- so this file works there and cleans up after itself.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ruvector_dag;
RESET client_min_messages;
\c postgres
\set VERBOSITY terse
\set SHOW_CONTEXT never
CREATE TABLE regress_rvd_e (id int PRIMARY KEY, k int);
CREATE VIEW regress_rvd_v AS SELECT * FROM regress_rvd_e;

-- What cannot be enrolled, and why.
SELECT ruvector_enable_neural_dag(NULL);
SELECT ruvector_enable_neural_dag('');
SELECT ruvector_enable_neural_dag('regress_rvd_missing');
SELECT ruvector_enable_neural_dag('regress_rvd_v');
SELECT ruvector_enable_neural_dag('regress_rvd_e', '[1, 2]');
SELECT ruvector_enable_neural_dag('regress_rvd_e', '{"typo": 1}');
SELECT ruvector_enable_neural_dag('regress_rvd_e', '{"dag_learning_rate": "fast"}');
SELECT ruvector_enable_neural_dag('regress_rvd_e', '{"dag_learning_rate": 5}');
SELECT ruvector_enable_neural_dag('regress_rvd_e', '{"dag_pattern_clusters": 2.5}');
SELECT ruvector_enable_neural_dag('regress_rvd_e', '{"dag_attention_type": "fastest"}');
SELECT ruvector_enable_neural_dag('regress_rvd_e', '{"dag_mincut_enabled": 1}');
-- A setting only a superuser or the server sets is not a table's to override.
SELECT ruvector_enable_neural_dag('regress_rvd_e', '{"dag_capture_timing": true}');
SELECT ruvector_enable_neural_dag('regress_rvd_e', '{"neural_dag_enabled": false}');
SELECT ruvector_neural_dag_enabled('regress_rvd_e');
SELECT count(*) FROM ruvector_dag.enrolled_tables WHERE relid = 'regress_rvd_e'::regclass;

-- Enrolled: the config is merged over the session's settings and stored.
SET ruvector.dag_learning_rate = 0.02;
SELECT ruvector_enable_neural_dag('regress_rvd_e', '{"dag_mincut_threshold": 0.9, "dag_pattern_clusters": 12}');
RESET ruvector.dag_learning_rate;
SELECT ruvector_neural_dag_enabled('regress_rvd_e');
SELECT table_name, config->'dag_mincut_threshold' AS threshold, config->'dag_pattern_clusters' AS clusters,
       config->'dag_learning_rate' AS learning_rate, config ? 'dag_worker_database' AS has_server_setting
  FROM ruvector_dag.enrolled_tables WHERE relid = 'regress_rvd_e'::regclass;
-- The table's MinCut settings are its own, whatever the session sets.
SET ruvector.dag_mincut_threshold = 0.1;
SELECT ruvector_dag_mincut_analysis('regress_rvd_e')->'threshold' AS threshold;
RESET ruvector.dag_mincut_threshold;
-- Enrolling again replaces the config (one row per table).
SELECT ruvector_enable_neural_dag('regress_rvd_e', '{"dag_mincut_enabled": false}');
SELECT count(*), bool_and(NOT (config->>'dag_mincut_enabled')::boolean) AS mincut_off
  FROM ruvector_dag.enrolled_tables WHERE relid = 'regress_rvd_e'::regclass;
SELECT ruvector_dag_mincut_analysis('regress_rvd_e');
SELECT count(*) FROM ruvector_dag_mincut_criticality('regress_rvd_e');

-- Disenrolled: gone from the registry; disenrolling twice is no error.
SELECT ruvector_disable_neural_dag('regress_rvd_e');
SELECT ruvector_disable_neural_dag('regress_rvd_e');
SELECT ruvector_neural_dag_enabled('regress_rvd_e');
SELECT ruvector_dag_mincut_analysis('regress_rvd_e');
SELECT ruvector_neural_dag_enabled('regress_rvd_missing');

-- Dropping an enrolled table forgets it.
SELECT ruvector_enable_neural_dag('regress_rvd_e');
DROP VIEW regress_rvd_v;
DROP TABLE regress_rvd_e;
SELECT count(*) FROM ruvector_dag.enrolled_tables WHERE table_name = 'regress_rvd_e';
