/* ruvector_dag--0.6.0--0.7.0.sql
 *
 * Transfer through patterns (issue 18): a new query's first candidate arm
 * may come from the steered queries of its learned pattern.  The steering
 * view says where each arm came from.
 */

-- complain if script is sourced in psql, rather than through ALTER EXTENSION
\echo Use "ALTER EXTENSION ruvector_dag UPDATE TO '0.7.0'" to load this file. \quit

-- Where an arm came from: 'plan' (the query's own plan: its misestimates, an
-- administrator's trial, a decision of before) or 'transfer' (the queries of
-- its learned pattern agreed on it; `transfer` then holds the proposal: the
-- pattern, the mechanism whose embedding was compared, the voters and the
-- confidence).  NULL on the default's row.  Rows of before 0.7.0 have NULLs
-- until the worker saves.
ALTER TABLE ruvector_dag.steering_evidence
    ADD COLUMN origin TEXT CHECK (origin IN ('plan', 'transfer')),
    ADD COLUMN transfer JSONB;
COMMENT ON COLUMN ruvector_dag.steering_evidence.origin IS
    'plan (the query''s own evidence) or transfer (its learned pattern''s queries); NULL for the default';
COMMENT ON COLUMN ruvector_dag.steering_evidence.transfer IS
    'for a transferred arm: pattern_id, mechanism, voters, votes, weight, confidence';

DROP VIEW ruvector_dag.steering;
CREATE VIEW ruvector_dag.steering WITH (security_invoker = true) AS
SELECT e.relid::pg_catalog.regclass AS table_name,
       COALESCE(e.query_id, d.query_id) AS query_id,
       q.query,
       COALESCE(e.arm, d.arm) AS arm,
       CASE WHEN d.source OPERATOR(pg_catalog.=) 'pinned' OR e.arm IS NULL THEN 'chosen'
            WHEN e.state IS NOT NULL THEN e.state
            WHEN e.arm OPERATOR(pg_catalog.=) 'default' THEN 'default'
            WHEN e.banned THEN 'banned'
            WHEN e.chosen THEN 'chosen'
            ELSE 'in play' END AS state,
       COALESCE(e.executions, 0) AS executions,
       e.mean_latency_us OPERATOR(pg_catalog./) 1000::pg_catalog.float8 AS mean_latency_ms,
       e.p95_latency_us OPERATOR(pg_catalog./) 1000::pg_catalog.float8 AS p95_latency_ms,
       e.speedup,
       d.source,
       e.pattern_id,
       e.origin,
       e.transfer
  FROM (SELECT s.* FROM ruvector_dag.steering_evidence s
         WHERE EXISTS (SELECT FROM ruvector_dag.steering_evidence o
                        WHERE o.relid OPERATOR(pg_catalog.=) s.relid
                          AND o.query_id OPERATOR(pg_catalog.=) s.query_id
                          AND o.arm OPERATOR(pg_catalog.<>) 'default')) e
  FULL JOIN @extschema@.ruvector_dag_steering_decisions() d
    ON d.query_id OPERATOR(pg_catalog.=) e.query_id AND d.arm OPERATOR(pg_catalog.=) e.arm
  LEFT JOIN ruvector_dag.steered_queries q
    ON q.relid OPERATOR(pg_catalog.=) e.relid AND q.query_id OPERATOR(pg_catalog.=) e.query_id;
GRANT SELECT ON ruvector_dag.steering TO PUBLIC;
