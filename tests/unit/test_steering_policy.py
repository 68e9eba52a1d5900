"""The steering policy: evidence-guided candidates, Thompson sampling, ban and regression guard."""

from __future__ import annotations

import math

import numpy as np
import pytest
from plans import JOIN, plan

from ruvector_dag.definitions.arms import ARMS, BAN_FACTOR, arm_index
from ruvector_dag.engine import steering
from ruvector_dag.engine.steering import ArmStats, SteeringPolicy, suggested_arms

TRAP = plan(["Nested Loop", "Seq Scan", "Seq Scan"], [-1, 0, 0], [1, 1, 10000], [100, 10, 80])
TRAP["actual_rows"] = [5000, 5000, 10000]  # outer side estimated at 1 row, 5000 in fact


def run(policy: SteeringPolicy, latency_of: dict[int, float], n: int, rng: np.random.Generator,
        *, start: int = 0, pinned: bool = False) -> list[int]:
    """Executions of query 42; the arm of each is the decision after the one before (as the worker publishes)."""
    arm, arms = start, []
    for _ in range(n):
        lat = latency_of.get(arm, latency_of[0]) * float(rng.uniform(0.9, 1.1))
        arms.append(arm)
        change = policy.observe(42, arm, lat, TRAP, pinned=pinned)
        arm = change if change is not None else arm
    return arms


def test_suggested_arms_follow_the_direction_of_the_misestimate() -> None:
    order = suggested_arms(TRAP)
    assert [ARMS[a].name for a in order] == ["hash_only", "no_nestloop", "merge_only"]
    assert suggested_arms(JOIN) == []  # every estimate right: the planner's choice, no exploration
    over = plan(["Hash Join", "Seq Scan", "Hash", "Seq Scan"], [-1, 0, 0, 2], [10, 100000, 10, 10], [1, 1, 1, 1])
    over["actual_rows"] = [10, 50, 10, 10]  # the probe side returned 2000x fewer rows than planned
    assert [ARMS[a].name for a in suggested_arms(over)] == ["no_seqscan"]
    under_index = plan(["Index Scan"], [-1], [10], [1])
    under_index["actual_rows"] = [100000]
    assert [ARMS[a].name for a in suggested_arms(under_index)] == ["no_indexscan", "no_bitmapscan"]


def test_trap_is_fixed_quickly_and_stays_fixed() -> None:
    rng = np.random.default_rng(0)
    policy = SteeringPolicy(seed=1)
    arms = run(policy, {0: 200_000.0, arm_index("hash_only"): 5_000.0, arm_index("no_nestloop"): 5_500.0}, 60, rng)
    assert arms[:steering.BASELINE_RUNS] == [0] * steering.BASELINE_RUNS
    fixed = arms.index(arm_index("hash_only"))
    assert fixed < 10  # within tens of executions, not thousands
    assert np.mean(np.isin(arms[20:], [arm_index("hash_only"), arm_index("no_nestloop")])) > 0.95
    assert arms[-10:].count(0) == 0


def test_no_exploration_without_evidence() -> None:
    rng = np.random.default_rng(5)
    policy = SteeringPolicy(seed=5)
    for _ in range(50):
        assert policy.observe(7, 0, float(rng.uniform(900, 1100)), JOIN) is None
    assert policy.queries[7].candidates == []


def test_regression_guard_and_ban() -> None:
    rng = np.random.default_rng(2)
    policy = SteeringPolicy(seed=3)
    # every alternative is slower; one of them catastrophically
    lat = {0: 1000.0, arm_index("hash_only"): 1500.0, arm_index("no_nestloop"): 50_000.0,
           arm_index("merge_only"): 1300.0}
    arms = run(policy, lat, 200, rng)
    q = policy.queries[42]
    assert arm_index("no_nestloop") in q.banned  # 50x slower once: banned at once
    assert q.stats[arm_index("no_nestloop")].n == 1
    assert {arm_index("hash_only"), arm_index("merge_only")} <= q.banned  # slower: out after GUARD_RUNS
    assert q.stats[arm_index("hash_only")].n <= steering.GUARD_RUNS
    assert arms[-50:] == [0] * 50  # back to the default for good


def test_a_bad_trial_arm_is_reverted() -> None:
    rng = np.random.default_rng(6)
    policy = SteeringPolicy(seed=6)
    run(policy, {0: 1000.0}, 5, rng)
    bad = arm_index("no_indexscan")
    back = policy.observe(42, bad, 30_000.0, TRAP)  # the administrator's trial: 30x slower
    assert back is not None and back != bad  # reverted (to the default, or to an arm still in play)
    assert bad in policy.queries[42].banned


def test_pinned_arms_are_measured_never_replaced() -> None:
    rng = np.random.default_rng(7)
    policy = SteeringPolicy(seed=7)
    pin = arm_index("serial")
    run(policy, {0: 1000.0}, 5, rng)
    assert run(policy, {0: 1000.0, pin: 50_000.0}, 20, rng, start=pin, pinned=True) == [pin] * 20
    assert policy.queries[42].stats[pin].n == 20


def test_posterior_is_normal_inverse_gamma() -> None:
    """Posterior of the mean: with many samples it concentrates on the sample mean."""
    s = ArmStats()
    ys = np.random.default_rng(8).normal(3.0, 0.2, 400)
    for y in ys:
        s.add(float(y))
    mu, kappa, alpha, beta = s.posterior(mu0=10.0)
    assert kappa == steering.KAPPA0 + 400 and alpha == steering.ALPHA0 + 200
    assert abs(mu - ys.mean()) < 0.02  # the prior's pull is 1/401 of the way to mu0
    mu, kappa, alpha, beta = s.posterior(mu0=3.0)  # a prior that agrees: sigma^2 is the data's
    assert math.isclose(beta / (alpha - 1), ys.var(), rel_tol=0.1)  # posterior mean of sigma^2


def test_state_round_trip() -> None:
    rng = np.random.default_rng(4)
    policy = SteeringPolicy()
    run(policy, {0: 100_000.0, arm_index("hash_only"): 1_000.0}, 30, rng)
    clone = SteeringPolicy()
    clone.load_json(policy.to_json())
    assert clone.to_json() == policy.to_json()
    assert {r["arm"] for r in policy.evidence()} >= {"default", "hash_only"}


def test_forgotten_queries_retire_their_decisions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steering, "MAX_QUERIES", 2)
    rng = np.random.default_rng(9)
    policy = SteeringPolicy(seed=9)
    run(policy, {0: 200_000.0, arm_index("hash_only"): 5_000.0}, 30, rng)
    assert policy.queries[42].arm != 0
    policy.observe(1, 0, 1000.0, JOIN)
    policy.observe(2, 0, 1000.0, JOIN)  # the third query: 42, the oldest, is forgotten
    assert 42 not in policy.queries and policy.retired == [42]


def test_an_arm_that_does_not_help_leaves_play_after_two_runs() -> None:
    rng = np.random.default_rng(10)
    policy = SteeringPolicy(seed=10)
    same = {0: 1000.0, arm_index("hash_only"): 1000.0, arm_index("no_nestloop"): 980.0,
            arm_index("merge_only"): 1010.0}
    arms = run(policy, same, 60, rng)
    q = policy.queries[42]
    assert set(q.candidates) <= q.banned  # none is 5 % faster: all out of play
    assert arms[-30:] == [0] * 30  # the default plan for good


def test_a_cold_first_execution_does_not_bias_the_baseline() -> None:
    """The first execution runs cold (3x here); an arm merely as fast as the warm default must still go."""
    rng = np.random.default_rng(8)
    policy = SteeringPolicy(seed=8)
    neutral = arm_index("hash_only")
    policy.observe(42, 0, 3000.0, TRAP)  # cold
    arms = run(policy, {0: 1000.0, neutral: 1000.0}, 60, rng)
    q = policy.queries[42]
    assert q.stats[0].n == len([a for a in arms if a == 0])  # the cold one is not in the baseline
    assert neutral in q.banned  # not 5 % faster than the warm default: out after GUARD_RUNS
    assert q.stats[neutral].n <= steering.GUARD_RUNS


def _trial_run(policy: SteeringPolicy, latency_of: dict[int, float], trial_of: dict[int, float | None],
               n: int) -> tuple[list[int], list[tuple[int, float]]]:
    """Like run(), with the worker's trials between executions: each wanted trial gets trial_of[arm]."""
    arm, arms, trials = 0, [], []
    for _ in range(n):
        arms.append(arm)
        change = policy.observe(42, arm, latency_of.get(arm, latency_of[0]), TRAP)
        arm = change if change is not None else arm
        for qid, a, default_limit in policy.wanted_trials():
            default = latency_of[0]  # the worker's paired run of the default
            assert default <= default_limit
            limit = steering.trial_limit(default)
            trials.append((a, limit))
            t = trial_of[a]
            change = policy.trial_result(qid, a, None if t is None or t > limit else t, default)
            arm = change if change is not None else arm
    return arms, trials


def test_with_trials_no_user_runs_an_arm_that_failed_its_trial() -> None:
    """require_trial: an arm is planned for users only once the worker's trial of it finished within
    TRIAL_SLOWER x the default's mean; the trial is cancelled at BAN_FACTOR x (the hard bound)."""
    policy = SteeringPolicy(seed=2, require_trial=True)
    hash_only, no_nestloop, merge_only = (arm_index(a) for a in ("hash_only", "no_nestloop", "merge_only"))
    latency = {0: 10_000.0, hash_only: 4_000.0}
    trial_of: dict[int, float | None] = {hash_only: 4_200.0, no_nestloop: 10_000_000.0, merge_only: 14_000.0}
    arms, trials = _trial_run(policy, latency, trial_of, 40)
    q = policy.queries[42]
    assert no_nestloop not in arms and merge_only not in arms  # failed trials: never a user's plan
    assert {no_nestloop, merge_only} <= q.banned and q.cleared == {hash_only}
    assert q.trials[no_nestloop] == (None, 10_000.0)  # cancelled at its limit
    assert q.trials[merge_only] == (14_000.0, 10_000.0)  # finished, 1.4x the default: banned all the same
    # every trial's limit is the ban threshold: BAN_FACTOR x the default's (paired) time
    assert all(math.isclose(t, BAN_FACTOR * 10_000.0, rel_tol=1e-9) for _, t in trials)
    assert hash_only in arms[:12] and arms[-5:] == [hash_only] * 5  # the trap is still fixed
    # without trials the same query explores on users' executions: the 1000x arm is run once
    blind = SteeringPolicy(seed=2)
    blind_arms, blind_trials = _trial_run(blind, {**latency, no_nestloop: 10_000_000.0, merge_only: 14_000.0},
                                          trial_of, 40)
    assert blind_trials == [] and (no_nestloop in blind_arms or merge_only in blind_arms)


def test_untriable_queries_are_not_explored() -> None:
    policy = SteeringPolicy(seed=3, require_trial=True)
    for _ in range(steering.BASELINE_RUNS + 1):
        assert policy.observe(42, 0, 10_000.0, TRAP) is None
    assert [a for _, a, _ in policy.wanted_trials()] == [arm_index("hash_only")]
    assert not policy.queries[42].exploring(True)  # waiting for a trial: its text, not every execution
    assert policy.queries[42].exploring(False)
    policy.untriable(42)
    assert policy.wanted_trials() == [] and not policy.queries[42].exploring(True)
    for _ in range(20):
        assert policy.observe(42, 0, 10_000.0, TRAP) is None  # the default plan, for good
    clone = SteeringPolicy(require_trial=True)
    clone.load_json(policy.to_json())
    assert clone.queries[42].untriable and clone.queries[42].to_json() == policy.queries[42].to_json()


def test_trial_timeout_has_a_floor() -> None:
    policy = SteeringPolicy(require_trial=True)
    for _ in range(steering.BASELINE_RUNS + 1):
        policy.observe(42, 0, 100.0, TRAP)  # 0.1 ms: 3x would be below the timer's resolution
    assert [t for _, _, t in policy.wanted_trials()] == [steering.TRIAL_MIN_TIMEOUT_US]
    assert steering.trial_limit(100.0) == steering.TRIAL_MIN_TIMEOUT_US
    assert steering.trial_limit(1e6) == BAN_FACTOR * 1e6


def test_a_query_is_watched_during_its_baseline_and_once_an_arm_is_cleared() -> None:
    policy = SteeringPolicy(seed=4, require_trial=True)
    policy.observe(42, 0, 10_000.0, TRAP)
    assert policy.queries[42].exploring(True)  # its baseline needs every execution
    for _ in range(steering.BASELINE_RUNS):
        policy.observe(42, 0, 10_000.0, TRAP)
    assert not policy.queries[42].exploring(True)
    policy.trial_result(42, arm_index("hash_only"), 3_000.0, 10_000.0)
    assert policy.queries[42].exploring(True)  # users may run hash_only now: the guard needs them all
