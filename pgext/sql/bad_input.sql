-- Bad input: each refused with an ERROR naming the argument.
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT ruvector_attention_topological(NULL, '{{1,0}}');
SELECT ruvector_attention_topological('{1,0}', '{}');
SELECT ruvector_attention_topological('{1,0,0}', '{{1,0}}');
SELECT ruvector_attention_topological('{NaN,0}', '{{1,0}}');
SELECT ruvector_attention_topological('{1,0}', '{{1,0}}', '{"decay": 1}');
SELECT ruvector_attention_causal_cone('{1,0}', '{{1,0},{0,1}}', '{1}', 0.5, 2);
SELECT ruvector_attention_critical_path('{1,0}', '{{1,0},{0,1}}', '{t,NULL}', 1);
SELECT ruvector_attention_mincut_gated('{1,0}', '{{1,0},{0,1}}', '{0.5,2}', 0.5);
SELECT ruvector_attention_hierarchical_lorentz('{1,0}', '{{1,0},{0,1}}', '{1,1}', 0, 1);
SELECT ruvector_attention_parallel_branch('{1,0}', '{{1,0},{0,1}}', '{{1,0,0}}', '{t,f}', 0.5, 1);
SELECT ruvector_attention_temporal_btsp('{1,0}', '{{1,0},{0,1}}', '{1,2}', 'Infinity', 1);
SELECT ruvector_attention_ensemble('{1,0}', '{{1,0},{0,1}}', '{topological,nonsense}');
SELECT ruvector_dag.cleanup_old_trajectories(-3);
