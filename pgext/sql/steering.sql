-- Plan steering by hand: pin, try and unpin an arm for one statement, and
-- what EXPLAIN shows of it (docs/design.md, "Plan steering").  Statements
-- are steered when they read an enrolled table, so this runs in the worker's
-- database (postgres).  Query ids depend on table oids: they are kept in
-- psql variables and never printed.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ruvector_dag;
RESET client_min_messages;
\c postgres
\set VERBOSITY terse
\set SHOW_CONTEXT never
CREATE TABLE regress_rvd_s (id int PRIMARY KEY, k int);
INSERT INTO regress_rvd_s SELECT g, g % 10 FROM generate_series(1, 10000) g;
ANALYZE regress_rvd_s;
SELECT ruvector_enable_neural_dag('regress_rvd_s');
-- EXPLAIN VERBOSE's "Query Identifier" is the key of a steering decision.
CREATE FUNCTION pg_temp.query_id(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    plan json;
BEGIN
    EXECUTE 'EXPLAIN (VERBOSE, FORMAT JSON) ' || q INTO plan;
    RETURN (plan->0->>'Query Identifier')::bigint;
END $$;
SELECT pg_temp.query_id('SELECT sum(k) FROM regress_rvd_s WHERE id > 100') AS qid \gset

SELECT ruvector_dag_steering_arms();
EXPLAIN (COSTS OFF) SELECT sum(k) FROM regress_rvd_s WHERE id > 100;

-- Pinned: every session plans the statement under the arm, with the same rows.
SELECT ruvector_dag_pin_arm(:qid, 'no_seqscan');
SELECT arm, source FROM ruvector_dag_steering_decisions() WHERE query_id = :qid;
EXPLAIN (COSTS OFF) SELECT sum(k) FROM regress_rvd_s WHERE id > 100;
SELECT sum(k) FROM regress_rvd_s WHERE id > 100;
-- Another constant is the same statement; another shape is not.
EXPLAIN (COSTS OFF) SELECT sum(k) FROM regress_rvd_s WHERE id > 7;
EXPLAIN (COSTS OFF) SELECT sum(id) FROM regress_rvd_s WHERE id > 100;
-- The session's own settings are untouched.
SHOW enable_seqscan;
-- With capture off for the session, no decision applies.
SET ruvector.neural_dag_enabled = off;
EXPLAIN (COSTS OFF) SELECT sum(k) FROM regress_rvd_s WHERE id > 100;
RESET ruvector.neural_dag_enabled;
-- A pinned statement is not the engine's to try (55000; the message names the query id).
\set VERBOSITY sqlstate
SELECT ruvector_dag_try_arm(:qid, 'no_bitmapscan');
\set VERBOSITY terse
-- Pinning again replaces the arm.
SELECT ruvector_dag_pin_arm(:qid, 'serial');
SELECT arm, source FROM ruvector_dag_steering_decisions() WHERE query_id = :qid;
-- A pin is a row (0.5.0): it survives restarts and reaches standbys.
SELECT query_id = :qid AS pinned, arm FROM ruvector_dag.pinned_arms;
SELECT ruvector_dag_unpin(:qid);
SELECT ruvector_dag_unpin(:qid);
SELECT count(*) FROM ruvector_dag.pinned_arms;
EXPLAIN (COSTS OFF) SELECT sum(k) FROM regress_rvd_s WHERE id > 100;
-- A pin takes effect at commit: a rolled-back pin (or unpin) never did.
BEGIN;
SELECT ruvector_dag_pin_arm(:qid, 'no_seqscan');
SELECT count(*) FROM ruvector_dag_steering_decisions() WHERE query_id = :qid;
ROLLBACK;
SELECT count(*) FROM ruvector_dag_steering_decisions() WHERE query_id = :qid;
SELECT count(*) FROM ruvector_dag.pinned_arms;

-- On trial: planned under the arm until the engine judges it.
SELECT ruvector_dag_try_arm(:qid, 'no_seqscan');
SELECT arm, source FROM ruvector_dag_steering_decisions() WHERE query_id = :qid;
EXPLAIN (COSTS OFF) SELECT sum(k) FROM regress_rvd_s WHERE id > 100;
SELECT ruvector_dag_unpin(:qid);

-- Bad input.
SELECT ruvector_dag_pin_arm(:qid, 'fastest');
SELECT ruvector_dag_pin_arm(NULL, 'serial');
SELECT ruvector_dag_pin_arm(:qid, NULL);
SELECT ruvector_dag_pin_arm(0, 'serial');
SELECT ruvector_dag_try_arm(:qid, '');
SELECT ruvector_dag_try_arm(0, 'serial');
SELECT ruvector_dag_unpin(NULL);
-- Only a superuser steers by hand (docs/security.md).
CREATE ROLE regress_rvd_steerer;
SET ROLE regress_rvd_steerer;
SELECT ruvector_dag_pin_arm(:qid, 'serial');
SELECT ruvector_dag_try_arm(:qid, 'serial');
SELECT ruvector_dag_unpin(:qid);
RESET ROLE;
DROP ROLE regress_rvd_steerer;
SELECT count(*) FROM ruvector_dag_steering_decisions() WHERE query_id = :qid;
SELECT ruvector_disable_neural_dag('regress_rvd_s');
DROP TABLE regress_rvd_s;

-- The steering view names a steered query by its text with the constants as
-- $n (pgext/src/normalize.c, PostgreSQL's own scanner): numbers, strings in
-- every form, dollar quoting; parameters stay and constants come after them;
-- identifiers, keywords, comments and quoted names are left as they are.
SELECT ruvector_dag._normalized_query(q) FROM (VALUES
  ('SELECT * FROM t WHERE a = 42 AND b = ''x'' AND c IN (1, 2.5, .5, 1e3)'),
  ('SELECT $1, $2 FROM t WHERE note = E''it''''s\n'' OR b = B''101'' OR x = X''ff'' OR n = N''n'''),
  ('SELECT U&''d\0061t'', $$dollar ''quoted''$$, $tag$ x $tag$ FROM "Table 7" t7 -- 42 in a comment'),
  ('SELECT interval ''1 day'', -5, t.col2 FROM t /* 7 */ WHERE t.id = $3 LIMIT 10'),
  ('SELECT 1')) v(q);
-- Lexed under the statement's own settings: with standard_conforming_strings
-- off, 'a\'' is one string; lexed as if on, hunter2 would come out as a bare
-- word (the worker passes the settings the statement ran under).
SET standard_conforming_strings = off;
SET escape_string_warning = off;
SELECT ruvector_dag._normalized_query('SELECT 1 WHERE pw = ''a\\'''' OR note = ''x hunter2 \\''''');
RESET escape_string_warning;
RESET standard_conforming_strings;
-- A text the scanner refuses: an error (the worker keeps no text then).
SELECT ruvector_dag._normalized_query('SELECT ''unterminated');
-- Internal: not for PUBLIC.
CREATE ROLE regress_rvd_reader;
SET ROLE regress_rvd_reader;
SELECT ruvector_dag._normalized_query('SELECT 1');
RESET ROLE;
DROP ROLE regress_rvd_reader;
