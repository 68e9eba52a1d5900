-- The attention mechanisms (docs/attention.md), rounded for stable output.
CREATE EXTENSION IF NOT EXISTS ruvector_dag;
CREATE FUNCTION r4(real[]) RETURNS numeric[] LANGUAGE sql IMMUTABLE
  AS $$ SELECT array_agg(round(x::numeric, 4) ORDER BY i) FROM unnest($1) WITH ORDINALITY AS u(x, i) $$;
SELECT r4(ruvector_attention_topological(ARRAY[1,0]::real[], ARRAY[[1,0],[0,1]]::real[]));
SELECT r4(ruvector_attention_topological('{1,0}', '{{1,0},{0,1},{1,1}}', '{"decay_rate": 0, "mask": [true, false, true]}'));
SELECT r4(ruvector_attention_causal_cone('{1,0}', '{{1,0},{0,1},{1,1}}', '{1,2,5}', 0.5, 3));
SELECT r4(ruvector_attention_critical_path('{1,0}', '{{1,0},{0,1},{1,1}}', '{f,t,f}', 2));
SELECT r4(ruvector_attention_mincut_gated('{1,0}', '{{1,0},{0,1},{1,1}}', '{0.9,0.2,0}', 0.4));
SELECT r4(ruvector_attention_hierarchical_lorentz('{0.1,0}', '{{0.1,0},{0,0.1},{0.2,0.2}}', '{1,1,2}', 1, 1));
SELECT r4(ruvector_attention_parallel_branch('{1,0}', '{{1,0},{0,1}}', '{{1,1}}', '{t,f}', 0.5, 1));
SELECT r4(ruvector_attention_parallel_branch('{1,0}', '{{1,0},{0,1}}', '{}', '{t,f}', 0.5, 1));
SELECT r4(ruvector_attention_temporal_btsp('{1,0}', '{{1,0},{0,1},{1,1}}', '{0,900,1000}', 200, 3));
SELECT r4(ruvector_attention_ensemble('{1,0}', '{{1,0},{0,1},{1,1}}', '{topological,critical_path}'));
SELECT r4(ruvector_attention_ensemble('{1,0}', '{{1,0},{0,1},{1,1}}', '{topological,topological}', '{1,3}'));
-- weights sum to one
SELECT round(sum(x)::numeric, 5) FROM unnest(ruvector_attention_topological('{1,2,3}', '{{3,2,1},{1,2,3},{0,0,1}}')) x;
