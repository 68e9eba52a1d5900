-- Every ruvector.* setting, its default, and PostgreSQL's range checks.
\set VERBOSITY terse
SELECT name, boot_val, unit, context, vartype, min_val, max_val
  FROM pg_settings WHERE name LIKE 'ruvector.%' ORDER BY name;
SELECT enumvals FROM pg_settings WHERE name = 'ruvector.dag_attention_type';
SET ruvector.dag_learning_rate = 0.01;
SHOW ruvector.dag_learning_rate;
RESET ruvector.dag_learning_rate;
SET ruvector.dag_learning_rate = 5;
SET ruvector.dag_pattern_clusters = 1;
SET ruvector.dag_attention_type = 'critical_path';
SHOW ruvector.dag_attention_type;
SET ruvector.dag_attention_type = 'fastest';
SET ruvector.dag_max_trajectories = 10;
SET ruvector.dag_background_interval_ms = 60000;
SET ruvector.typo_setting = 1;
