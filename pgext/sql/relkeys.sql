-- The key a relation set's row-count correction is learned and applied under
-- (pgext/src/relkey.c, issue 20): one join has one key in every query that
-- holds it, whatever its constants, aliases or FROM order; another clause,
-- join type or table makes another key.  Keys are OID-based hashes: the tests
-- compare them, never print them.
CREATE TABLE rk_c (id int PRIMARY KEY, region int, segment int);
CREATE TABLE rk_o (id int PRIMARY KEY, customer_id int, store_id int);
CREATE TABLE rk_s (id int PRIMARY KEY, city int);

CREATE FUNCTION rk(q text, rels text) RETURNS bigint LANGUAGE sql AS
$$ SELECT key FROM ruvector_dag._relation_keys(q) WHERE query_level = 1 AND relations = rels $$;

-- the relation sets the planner considers, in the order it builds them
SELECT query_level, relations, key IS NOT NULL AS has_key
  FROM ruvector_dag._relation_keys('SELECT * FROM rk_c c JOIN rk_o o ON o.customer_id = c.id
                                    JOIN rk_s s ON s.id = o.store_id WHERE c.region = 7 AND s.city = 1');

-- one join, two queries, other constants: one key
SELECT rk('SELECT * FROM rk_c c JOIN rk_o o ON o.customer_id = c.id WHERE c.region = 3', 'c,o')
     = rk('SELECT * FROM rk_c c JOIN rk_o o ON o.customer_id = c.id JOIN rk_s s ON s.id = o.store_id
           WHERE c.region = 7 AND s.city = 1', 'c,o') AS same_join_same_key;
-- aliases and the FROM order do not matter
SELECT rk('SELECT * FROM rk_c c JOIN rk_o o ON o.customer_id = c.id WHERE c.region = 3', 'c,o')
     = rk('SELECT * FROM rk_o x, rk_c y WHERE y.region = 5 AND x.customer_id = y.id', 'x,y') AS order_free;
-- a base relation: constants abstracted, the clause kept
SELECT rk('SELECT * FROM rk_c c WHERE c.region = 3', 'c') = rk('SELECT * FROM rk_c c WHERE c.region = 9', 'c')
       AS constants_abstracted,
       rk('SELECT * FROM rk_c c WHERE c.region = 3', 'c') <> rk('SELECT * FROM rk_c c WHERE c.segment = 3', 'c')
       AS other_column_other_key,
       rk('SELECT * FROM rk_c c WHERE c.region = 3', 'c') <> rk('SELECT * FROM rk_c c WHERE c.region < 3', 'c')
       AS other_operator_other_key,
       rk('SELECT * FROM rk_c c WHERE c.region = 3', 'c') <> rk('SELECT * FROM rk_c c', 'c')
       AS restriction_counts;
-- another join clause, another key
SELECT rk('SELECT * FROM rk_c c JOIN rk_o o ON o.customer_id = c.id', 'c,o')
    <> rk('SELECT * FROM rk_c c JOIN rk_o o ON o.store_id = c.id', 'c,o') AS other_join_clause;
-- an outer join is another relation than the inner join of the same clause (PostgreSQL 16 also puts
-- the outer join's own relid in the join's relids: the key leaves it out, and still tells them apart)
SELECT rk('SELECT * FROM rk_c c LEFT JOIN rk_o o ON o.customer_id = c.id', 'c,o') IS NOT NULL AS left_join_keyed,
       rk('SELECT * FROM rk_c c LEFT JOIN rk_o o ON o.customer_id = c.id', 'c,o')
    <> rk('SELECT * FROM rk_c c JOIN rk_o o ON o.customer_id = c.id', 'c,o') AS outer_is_not_inner;
-- a semi-join (EXISTS) likewise
SELECT rk('SELECT * FROM rk_c c WHERE EXISTS (SELECT FROM rk_o o WHERE o.customer_id = c.id)', 'c,o')
    <> rk('SELECT * FROM rk_c c JOIN rk_o o ON o.customer_id = c.id', 'c,o') AS semi_is_not_inner;
-- a set with something but plain tables has no key; its tables keep theirs
SELECT relations, key IS NOT NULL AS has_key
  FROM ruvector_dag._relation_keys('SELECT * FROM rk_c c JOIN generate_series(1, 3) g ON g = c.id')
 WHERE query_level = 1 ORDER BY relations;
-- only read-only SELECTs are planned; no NULL, no empty text (each error's SQLSTATE echoed)
SELECT * FROM ruvector_dag._relation_keys('DELETE FROM rk_c');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ruvector_dag._relation_keys(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ruvector_dag._relation_keys('');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ruvector_dag._relation_keys('SELECT 1; SELECT 2');
\echo :LAST_ERROR_SQLSTATE
-- internal: not for PUBLIC
CREATE ROLE rk_nobody;
SET ROLE rk_nobody;
SELECT * FROM ruvector_dag._relation_keys('SELECT 1');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE rk_nobody;
DROP FUNCTION rk(text, text);
DROP TABLE rk_c, rk_o, rk_s;

-- Planning with given corrections (ruvector_dag._explain_with_corrections): the row counts of the
-- relation sets with those keys are scaled, the others are left alone, and each plan node names its key.
CREATE TABLE rk_c (id int PRIMARY KEY, region int, segment int);
CREATE TABLE rk_o (id int PRIMARY KEY, customer_id int, store_id int);
INSERT INTO rk_c SELECT g, g % 50, g % 10 FROM generate_series(1, 5000) g;
INSERT INTO rk_o SELECT g, 1 + g % 5000, g % 100 FROM generate_series(1, 20000) g;
ANALYZE rk_c, rk_o;
CREATE FUNCTION rk_rows(q text, keys bigint[], factors float8[]) RETURNS TABLE (node text, plan_rows float8, keyed boolean)
LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
    SELECT * INTO r FROM ruvector_dag._explain_with_corrections(q, keys, factors, false);
    RETURN QUERY
        WITH RECURSIVE n(p, pos) AS (
            SELECT (r.plan -> 0 -> 'Plan'), ARRAY[1]
            UNION ALL
            SELECT c.value, n.pos || c.ordinality::int FROM n, json_array_elements(n.p -> 'Plans') WITH ORDINALITY c)
        SELECT (n.p ->> 'Node Type'), (n.p ->> 'Plan Rows')::float8, r.node_keys[row_number() OVER (ORDER BY n.pos)] <> 0
          FROM n ORDER BY n.pos;
END $$;
SELECT * FROM rk_rows('SELECT * FROM rk_c c WHERE c.region = 3', '{}', '{}');
SELECT * FROM rk_rows('SELECT * FROM rk_c c WHERE c.region = 3',
                      ARRAY[(SELECT key FROM ruvector_dag._relation_keys('SELECT * FROM rk_c c WHERE c.region = 9')
                              WHERE relations = 'c')], '{10}');
SELECT corrected, relations FROM ruvector_dag._explain_with_corrections('SELECT * FROM rk_c c WHERE c.region = 3',
       ARRAY[(SELECT key FROM ruvector_dag._relation_keys('SELECT * FROM rk_c c WHERE c.region = 9') WHERE relations = 'c')],
       '{10}', false);
-- a join's correction: its rows scaled, its inputs' not
SELECT * FROM rk_rows('SELECT count(*) FROM rk_c c JOIN rk_o o ON o.customer_id = c.id WHERE c.region = 3',
                      ARRAY[(SELECT key FROM ruvector_dag._relation_keys(
                               'SELECT * FROM rk_c c JOIN rk_o o ON o.customer_id = c.id WHERE c.region = 3')
                              WHERE relations = 'c,o')], '{0.01}');
-- bad input (each error's SQLSTATE echoed)
SELECT * FROM ruvector_dag._explain_with_corrections('SELECT 1', '{1,2}', '{1}', false);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ruvector_dag._explain_with_corrections('SELECT 1', '{1}', '{0}', false);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ruvector_dag._explain_with_corrections('SELECT 1', '{1}', '{NaN}', false);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ruvector_dag._explain_with_corrections('UPDATE rk_c SET region = 1', '{}', '{}', true);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ruvector_dag._explain_with_corrections('SELECT 1', '{1}', '{Infinity}', false);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ruvector_dag._explain_with_corrections('SELECT 1', '{1}', '{-2}', false);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ruvector_dag._explain_with_corrections('SELECT 1', '{NULL}', '{1}', false);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ruvector_dag._explain_with_corrections(NULL, '{}', '{}', false);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ruvector_dag._explain_with_corrections('SELECT 1', NULL, '{}', false);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ruvector_dag._explain_with_corrections('', '{}', '{}', false);
\echo :LAST_ERROR_SQLSTATE
DROP FUNCTION rk_rows(text, bigint[], float8[]);
DROP TABLE rk_c, rk_o;
