"""TableLearner: the instant loop, the cycle and the saved state, on synthetic trajectories."""

from __future__ import annotations

import numpy as np
from plans import AGG, JOIN, LOOKUP

from ruvector_dag.engine import features
from ruvector_dag.engine.learner import LearnerConfig, TableLearner
from ruvector_dag.engine.trajectory import Trajectory

SHAPES = {0: LOOKUP, 1: AGG, 2: JOIN}


def traj(kind: int, latency: float, query_id: int | None = None) -> Trajectory:
    nodes = SHAPES[kind]
    return Trajectory(seq=0, query_id=kind if query_id is None else query_id, captured_at_us=0, dbid=1, relid=42,
                      userid=10, session_userid=10, nesting_level=0, planning_us=0.0, execution_us=latency,
                      rows_processed=1, memory_bytes=0, shared_blks_hit=0, shared_blks_read=0,
                      total_nodes=len(nodes), flags=0, cmd_type=1, nodes=nodes)


LAT = {0: 40.0, 1: 4000.0, 2: 900.0}


def workload(learner: TableLearner, n: int, rng: np.random.Generator) -> None:
    for _ in range(n):
        k = int(rng.integers(3))
        learner.process(traj(k, LAT[k] * float(rng.uniform(0.9, 1.1))))


def test_cycle_then_hits_and_counts() -> None:
    rng = np.random.default_rng(0)
    learner = TableLearner(42, LearnerConfig(pattern_clusters=10))
    workload(learner, 90, rng)
    assert learner.counters.hits == 0
    answer, history = learner.cycle()
    assert answer["success"] and answer["patterns_extracted"] == 3
    assert sum(p.sample_count for p in learner.bank.patterns.values()) == learner.counters.learned == 90
    assert len(history) == 90 and {h.pattern_id for h in history} == set(learner.bank.patterns)
    workload(learner, 30, rng)
    assert learner.counters.hits == 30
    assert learner.cycle()[0]["success"] and learner.cycle()[0]["skipped"]


def test_slow_outliers_are_not_learned() -> None:
    learner = TableLearner(42, LearnerConfig(quality_threshold=0.3))
    for _ in range(10):
        learner.process(traj(0, 40.0))
    out = learner.process(traj(0, 40.0 * 10))  # 10x its usual latency: quality ~0.09
    assert not out.learned and out.quality < 0.3
    assert learner.counters.processed == 11 and learner.counters.learned == 10


def test_forced_attention_type_and_selector() -> None:
    rng = np.random.default_rng(1)
    forced = TableLearner(42, LearnerConfig(attention_type="critical_path"))
    assert {forced.process(traj(1, 4000.0)).mechanism for _ in range(20)} == {"critical_path"}
    auto = TableLearner(42, LearnerConfig(attention_exploration=0.2))
    workload(auto, 300, rng)
    used = {auto.process(traj(2, 900.0)).mechanism for _ in range(100)}
    assert len(used) > 1  # the bandit explores
    assert auto.current_mechanism() in features.MECHANISMS


def test_prediction_improves_and_state_round_trips() -> None:
    rng = np.random.default_rng(2)
    learner = TableLearner(42, LearnerConfig(learning_rate=0.05))
    workload(learner, 30, rng)
    early = learner.counters.prediction_error
    workload(learner, 600, rng)
    late_err = np.mean([abs(learner.process(traj(k, LAT[k])).prediction - np.log(LAT[k])) for k in (0, 1, 2)])
    assert late_err < 0.5 * early
    learner.cycle()
    workload(learner, 7, rng)  # a batch not yet clustered is saved too
    clone = TableLearner.from_state_bytes(learner.state_bytes())
    for key, value in learner.model.state_dict().items():
        assert np.array_equal(np.asarray(clone.model.state_dict()[key]), np.asarray(value)), key
    np.testing.assert_array_equal(clone.ewc.importance, learner.ewc.importance)
    assert clone.counters == learner.counters and len(clone.batch) == 7
    assert list(clone.bank.patterns) == list(learner.bank.patterns)
    t = traj(2, 900.0)
    assert clone.process(t) == learner.process(t)  # same RNG state, same decisions


def test_extract_with_k_reextracts_what_was_learned() -> None:
    """ruvector_dag_extract_patterns(t, k) with no trajectory since the last cycle: the table's patterns
    re-extracted into k clusters, their samples kept (issue 17: it returned 0 and left 4 patterns)."""
    rng = np.random.default_rng(3)
    learner = TableLearner(42, LearnerConfig(pattern_clusters=10))
    workload(learner, 90, rng)
    assert learner.cycle()[0]["patterns_extracted"] == 3
    assert learner.cycle()[0]["skipped"]  # the periodic cycle: nothing new, nothing to do
    samples = sum(p.sample_count for p in learner.bank.patterns.values())
    answer, history = learner.cycle(2)
    assert answer["success"] and answer["patterns_extracted"] == len(learner.bank.patterns) == 2
    assert answer["trajectories_processed"] == 0 and history == []
    assert sum(p.sample_count for p in learner.bank.patterns.values()) == samples
    # consolidate works the same way on what was learned: merges and says how many
    assert learner.consolidate(-0.99) == 1 and len(learner.bank.patterns) == 1
    assert sum(p.sample_count for p in learner.bank.patterns.values()) == samples
