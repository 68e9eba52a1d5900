-- What a non-superuser table owner may do, and what other roles may not
-- (docs/security.md).  Enrollment is only allowed in the database the
-- background worker serves (ruvector.dag_worker_database, default postgres),
-- so the enrolling part runs there and cleans up after itself.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ruvector_dag;
RESET client_min_messages;
\set VERBOSITY terse
\set SHOW_CONTEXT never
CREATE ROLE regress_rvd_owner;
CREATE ROLE regress_rvd_other;
CREATE ROLE regress_rvd_monitor IN ROLE pg_read_all_stats;
-- Here, in contrib_regression: nothing can be enrolled.
CREATE TABLE regress_rvd_here (id int);
ALTER TABLE regress_rvd_here OWNER TO regress_rvd_owner;
SET ROLE regress_rvd_owner;
SELECT ruvector_enable_neural_dag('regress_rvd_here');
RESET ROLE;
DROP TABLE regress_rvd_here;

\c postgres
\set VERBOSITY terse
\set SHOW_CONTEXT never
GRANT CREATE ON SCHEMA public TO regress_rvd_owner;
-- Nobody enrolls system catalogs or the tables of extensions, not even a superuser.
SELECT ruvector_enable_neural_dag('pg_class');
SELECT ruvector_enable_neural_dag('information_schema.sql_features');
SELECT ruvector_enable_neural_dag('ruvector_dag.patterns');

-- The owner enrolls its table, and it is captured.
SET ROLE regress_rvd_owner;
CREATE TABLE regress_rvd_t (id int PRIMARY KEY, k int);
INSERT INTO regress_rvd_t SELECT g, g % 10 FROM generate_series(1, 1000) g;
SELECT ruvector_enable_neural_dag('regress_rvd_t', '{"dag_learning_rate": 0.05}');
SELECT ruvector_neural_dag_enabled('regress_rvd_t');
SELECT count(*) FROM regress_rvd_t WHERE k = 3;
SELECT table_name, enabled_by::regrole FROM ruvector_dag.enrolled_tables
 WHERE relid = 'regress_rvd_t'::regclass;
SELECT table_name, captured > 0 AS captured FROM ruvector_dag_capture_stats()
 WHERE relid = 'regress_rvd_t'::regclass;
SELECT table_name, captured > 0 AS captured FROM ruvector_dag.capture
 WHERE table_name = 'regress_rvd_t'::regclass;
-- It may ask the worker to learn, within bounds.
SELECT ruvector_dag_learn('regress_rvd_t') ? 'success' AS answered;
SELECT ruvector_dag_extract_patterns('regress_rvd_t', 5000);
SELECT ruvector_dag_consolidate_patterns('regress_rvd_t', 1.5);
SELECT (ruvector_dag_learning_stats('regress_rvd_t'))->>'enabled' AS enabled;
-- The internal functions are not its to call.
SELECT count(*) FROM ruvector_dag_buffered_trajectories();
SELECT length(ruvector_dag_buffered_records());
SELECT ruvector_dag._worker_request('extract', 'regress_rvd_t'::regclass, 5000, NULL);
SELECT ruvector_dag._forget_relation('regress_rvd_t'::regclass);
SELECT ruvector_dag.cleanup_old_trajectories(0);
SELECT ruvector_dag_capture_reset();
SELECT ruvector_dag_pin_arm(1, 'default');
RESET ROLE;

-- Another role sees no rows about the table, and cannot change it.
SET ROLE regress_rvd_other;
SELECT ruvector_enable_neural_dag('regress_rvd_t');
SELECT ruvector_disable_neural_dag('regress_rvd_t');
SELECT ruvector_dag_learn('regress_rvd_t');
SELECT count(*) FROM ruvector_dag_capture_stats() WHERE relid = 'regress_rvd_t'::regclass;
SELECT count(*) FROM ruvector_dag.capture WHERE table_name = 'regress_rvd_t'::regclass;
SELECT count(*) FROM ruvector_dag.enrolled_tables WHERE relid = 'regress_rvd_t'::regclass;
SELECT count(*) FROM ruvector_dag.patterns WHERE relid = 'regress_rvd_t'::regclass;
SELECT count(*) FROM ruvector_dag.engine_state WHERE relid = 'regress_rvd_t'::regclass;
SELECT ruvector_dag._learning_counters('regress_rvd_t'::regclass) IS NULL AS hidden;
SELECT ruvector_dag_learning_stats('regress_rvd_t');
SELECT count(*) FROM ruvector_dag_patterns('regress_rvd_t');
SELECT count(*) FROM ruvector_dag_buffered_trajectories();
RESET ROLE;

-- A member of pg_read_all_stats sees them.
SET ROLE regress_rvd_monitor;
SELECT table_name, captured > 0 AS captured FROM ruvector_dag_capture_stats()
 WHERE relid = 'regress_rvd_t'::regclass;
SELECT count(*) FROM ruvector_dag.enrolled_tables WHERE relid = 'regress_rvd_t'::regclass;
SELECT ruvector_dag_learn('regress_rvd_t');
RESET ROLE;

-- The owner disenrolls its table; dropping it forgets the rest.
SET ROLE regress_rvd_owner;
SELECT ruvector_disable_neural_dag('regress_rvd_t');
DROP TABLE regress_rvd_t;
RESET ROLE;
REVOKE CREATE ON SCHEMA public FROM regress_rvd_owner;
DROP ROLE regress_rvd_owner, regress_rvd_other, regress_rvd_monitor;
