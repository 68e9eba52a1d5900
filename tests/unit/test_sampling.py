"""Capture sampling: the fraction the worker publishes follows the statement rate to its CPU budget."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from ruvector_dag.definitions import settings
from ruvector_dag.engine.steering import ArmStats, QuerySteering, SteeringPolicy
from ruvector_dag.runtime import sampling
from ruvector_dag.runtime.budget import idle_cpus
from ruvector_dag.runtime.sampling import Sampler


class FakePg:
    """The two calls of ``_ruvector_pg`` that sampling makes."""

    def __init__(self) -> None:
        self.fractions: list[float] = []
        self.lines: list[str] = []

    def set_sample_fraction(self, f: float) -> None:
        assert 0.0 <= f <= 1.0
        self.fractions.append(f)

    def log(self, line: str) -> None:
        self.lines.append(line)


@pytest.fixture
def pg() -> FakePg:
    return FakePg()


@pytest.fixture
def sampler(pg: FakePg) -> Sampler:
    return Sampler(pg)  # type: ignore[arg-type]  # (a fake of the two calls sampling makes)


#: CPU seconds per learned record: 5000 records/s of learning per CPU (the budget's starting estimate).
COST_S = 2e-4
RATE = float(settings.by_name()["dag_learn_query_rate"].default)


def capacity(share: float) -> float:
    return sampling.SAMPLE_HEADROOM * share / COST_S


def run(sampler: Sampler, statements_per_s: float, seconds: float, share: float, rng: np.random.Generator,
        step: float = 0.05, queries: int = 1000) -> None:
    """Drains every `step` s; each finds the statements that arrived and were sampled (Poisson),
    spread evenly over `queries` distinct query ids."""
    for _ in range(int(seconds / step)):
        arrived = int(rng.poisson(statements_per_s * sampler.fraction * step))
        ids = rng.integers(1, queries + 1, size=arrived)
        per_query = {int(q): int(n) for q, n in zip(*np.unique(ids, return_counts=True))}
        sampler.adapt(arrived, per_query, step, share, RATE, COST_S)


def test_fraction_is_one_below_capacity_and_capacity_over_rate_above() -> None:
    assert sampling.sample_fraction(0.0, 100.0) == 1.0
    assert sampling.sample_fraction(100.0, 100.0) == 1.0
    assert sampling.sample_fraction(1000.0, 100.0) == pytest.approx(0.1)
    assert sampling.sample_fraction(1e12, 100.0) == sampling.MIN_SAMPLE_FRACTION
    rates = np.geomspace(1.0, 1e9, 50)
    fractions = [sampling.sample_fraction(r, 1000.0) for r in rates]
    assert all(a >= b for a, b in itertools.pairwise(fractions))  # never more capture at a higher rate
    assert all(sampling.MIN_SAMPLE_FRACTION <= f <= 1.0 for f in fractions)


@pytest.mark.parametrize("rate", [20_000.0, 50_000.0, 200_000.0])
def test_heavy_load_settles_where_arrivals_match_the_budget(sampler: Sampler, pg: FakePg, rate: float) -> None:
    rng = np.random.default_rng(7)
    share = 0.05
    run(sampler, rate, 20.0, share, rng)
    expected = capacity(share) / rate
    assert sampler.fraction == pytest.approx(expected, rel=0.2)
    # Records reaching the worker now match what its budget learns from.
    assert rate * sampler.fraction == pytest.approx(capacity(share), rel=0.2)
    assert any("capturing" in line for line in pg.lines)  # a DBA sees the sampling in the log


def test_repetition_is_sampled_below_the_budget(sampler: Sampler) -> None:
    """One statement at 50 000/s: the budget could learn from 200/s, but 10/s of the same query are enough."""
    run(sampler, 50_000.0, 30.0, 0.05, np.random.default_rng(2), queries=1)
    # a handful of records per second reach the worker (an estimate from so few wobbles)
    assert RATE / 2 <= 50_000.0 * sampler.fraction <= RATE * 2
    # five statements (pgbench TPC-B): five times as many
    run(sampler, 50_000.0, 30.0, 0.05, np.random.default_rng(2), queries=5)
    assert 5 * RATE / 2 <= 50_000.0 * sampler.fraction <= 5 * RATE * 2


def test_useful_rate_caps_each_query() -> None:
    cap = RATE
    assert sampling.useful_rate({}, 0.0, cap) == 0.0
    assert sampling.useful_rate({}, 500.0, cap) == 500.0  # nothing known yet: everything counts
    assert sampling.useful_rate({1: 0.5, 2: 1e6}, 0.0, cap) == 0.5 + cap
    # records consumed unread follow the mix of those learned from
    assert sampling.useful_rate({1: 1.0, 2: 1.0}, 4.0, cap) == pytest.approx(4.0)
    assert sampling.useful_rate({1: 1.0, 2: 1.0}, 1e6, cap) == pytest.approx(2 * cap)


def test_light_load_captures_everything(sampler: Sampler, pg: FakePg) -> None:
    run(sampler, 100.0, 10.0, 0.05, np.random.default_rng(1))
    assert sampler.fraction == 1.0
    assert pg.fractions == []  # nothing to publish: every statement was and is captured


def test_fraction_comes_back_when_the_load_goes(sampler: Sampler, pg: FakePg) -> None:
    rng = np.random.default_rng(3)
    run(sampler, 50_000.0, 10.0, 0.05, rng)
    assert sampler.fraction < 0.1
    # The load drops to 20 statements/s: while sampling, the worker looks at every poll
    # (200 ms), empty intervals included, so the estimate follows the load down.
    run(sampler, 20.0, 20.0, 0.05, rng, step=0.2)
    assert sampler.fraction == 1.0
    assert pg.fractions[-1] == 1.0


def test_steady_load_publishes_rarely(sampler: Sampler, pg: FakePg) -> None:
    """Every captured statement reads the fraction's cache line: it is written only when it moves."""
    rng = np.random.default_rng(5)
    run(sampler, 50_000.0, 10.0, 0.05, rng)
    before = len(pg.fractions)
    run(sampler, 50_000.0, 30.0, 0.05, rng)  # 600 drains at a steady rate
    assert len(pg.fractions) - before < 30


def test_a_larger_budget_captures_more(pg: FakePg) -> None:
    seen: dict[float, float] = {}
    for share in (0.01, 0.05, 0.2):
        sampler = Sampler(pg)  # type: ignore[arg-type]
        run(sampler, 100_000.0, 20.0, share, np.random.default_rng(11))
        seen[share] = sampler.fraction
    assert seen[0.01] < seen[0.05] < seen[0.2]


def _policy_with(queries: dict[int, tuple[list[int], set[int], int, float]]) -> SteeringPolicy:
    """query id -> (candidates, banned, executions under the default, latency in us)."""
    policy = SteeringPolicy()
    for qid, (candidates, banned, n, latency_us) in queries.items():
        stats = ArmStats()
        for _ in range(n):
            stats.add(math.log(latency_us))
        policy.queries[qid] = QuerySteering(candidates, {0: stats}, banned)
    return policy


def test_capture_rules_watch_steered_and_thin_out_settled_expensive_queries() -> None:
    policy = _policy_with({
        1: ([3, 4], set(), 2, 50_000.0),  # being steered: every execution
        2: ([], set(), 12, 80_000.0),  # settled, slow: its own fraction
        3: ([], set(), 12, 1_000.0),  # settled, fast: instrumentation costs it nothing worth saving
        4: ([], set(), 5, 80_000.0),  # slow, not enough executions yet
        5: ([3], {3}, 12, 30_000.0),  # its only arm banned: settled
    })
    rules = sampling.capture_rules([policy], 0.125)
    assert rules == {1: 1.0, 2: 0.125, 5: 0.125}
    assert sampling.capture_rules([policy], 1.0) == {1: 1.0}  # settled_fraction 1: only the steered
    # at most `limit`: steered first, then the slowest settled
    assert sampling.capture_rules([policy], 0.125, limit=2) == {1: 1.0, 2: 0.125}


def test_idle_cpus_from_two_readings() -> None:
    assert idle_cpus(None, (100.0, 50.0), 2) == 2.0  # unknown: assume idle
    assert idle_cpus((100.0, 50.0), (300.0, 150.0), 2) == pytest.approx(1.0)  # half of 2 CPUs idle
    assert idle_cpus((100.0, 50.0), (300.0, 50.0), 2) == 0.0  # saturated: no trials
