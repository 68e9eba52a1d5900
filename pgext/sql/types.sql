-- The ruvector type: pgvector's text form, casts, bad input.
CREATE EXTENSION IF NOT EXISTS ruvector_dag;
\set VERBOSITY terse
SELECT '[1,2,3]'::ruvector;
SELECT ' [ 1.5 , -2e-3,4 ] '::ruvector;
SELECT ruvector_dims('[1,2,3,4]');
SELECT ARRAY[1,2,3]::real[]::ruvector;
SELECT '[0.25,0.5]'::ruvector::real[];
SELECT '[1,2]'::ruvector = '[1,2]'::ruvector AS same, '[1,2]'::ruvector = '[1,2,3]'::ruvector AS differ;
SELECT '[]'::ruvector;
SELECT '[1,2'::ruvector;
SELECT '(1,2)'::ruvector;
SELECT '[1,NaN]'::ruvector;
SELECT '[1,-Infinity]'::ruvector;
SELECT ARRAY[[1,2],[3,4]]::real[]::ruvector;
SELECT ARRAY[1,NULL]::real[]::ruvector;
