"""The worker's trials of steering arms (runtime.trials.TrialScheduler), against a fake ``_ruvector_pg``."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from plans import plan

from ruvector_dag.definitions.arms import arm_index
from ruvector_dag.engine import steering
from ruvector_dag.engine.steering import SteeringPolicy
from ruvector_dag.runtime import trials
from ruvector_dag.runtime.budget import IdleCpuProbe
from ruvector_dag.runtime.trials import TrialScheduler

TRAP = plan(["Nested Loop", "Seq Scan", "Seq Scan"], [-1, 0, 0], [1, 1, 10000], [100, 10, 80])
TRAP["actual_rows"] = [5000, 5000, 10000]  # suggests hash_only, no_nestloop, merge_only
QID = 42
HASH_ONLY = arm_index("hash_only")


class PgError(Exception):
    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class FakePg:
    """What _trials calls: take_statements, trial, log."""

    Error = PgError

    def __init__(self) -> None:
        self.offered: list[tuple[Any, ...]] = []
        self.results: dict[int, Any] = {}  # arm: microseconds, None (timed out) or an exception
        self.calls: list[tuple[bytes, int, int]] = []
        self.lines: list[str] = []
        self.seconds = 0.0  # how long a trial takes

    def take_statements(self) -> list[tuple[Any, ...]]:
        taken, self.offered = self.offered, []
        return taken

    def statement_text(self, statement: bytes) -> tuple[int, str | None] | None:
        return None  # (the texts of steered queries: tests/unit/test_readable_steering.py)

    def trial(self, statement: bytes, arm: int, timeout_ms: int) -> Any:
        self.calls.append((statement, arm, timeout_ms))
        time.sleep(self.seconds)
        r = self.results.get(arm, 10_000.0)  # the default's 10 ms unless told
        if isinstance(r, Exception):
            raise r
        return r

    def log(self, line: str) -> None:
        self.lines.append(line)


@dataclass
class FakeLearner:
    relid: int = 1
    steering: SteeringPolicy = field(default_factory=lambda: SteeringPolicy(seed=0, require_trial=True))
    pending_decisions: dict[int, int] = field(default_factory=dict)


class Harness:
    """A trial scheduler with the worker's learners and the texts its capture rules ask for."""

    def __init__(self, pg: FakePg) -> None:
        # the machine looks idle and the process never waits for a CPU, unless a test says otherwise
        self.sched = TrialScheduler(pg, IdleCpuProbe(read_cpu=lambda: None), run_delay=lambda: None)  # type: ignore[arg-type]
        self.learners: dict[int, FakeLearner] = {}
        self.asked: set[int] = set()  # as the capture rules would have set it

    def trials(self, per_query: dict[int, int], share: float) -> set[int]:
        wanted, _ = self.sched.run(self.learners.values(), self.asked, per_query, share)
        return wanted


@pytest.fixture
def pg() -> FakePg:
    return FakePg()


@pytest.fixture
def h(pg: FakePg) -> Harness:
    return Harness(pg)


def learner_after_baseline(h: Harness, default_us: float = 10_000.0) -> FakeLearner:
    learner = FakeLearner()
    for _ in range(steering.BASELINE_RUNS + 1):
        learner.steering.observe(QID, 0, default_us, TRAP)
    h.learners = {learner.relid: learner}
    return learner


def offer(pg: FakePg) -> None:
    pg.offered.append((QID, b"the statement as offered (opaque to the engine)"))


def test_text_is_asked_for_then_each_arm_tried_once(pg: FakePg, h: Harness) -> None:
    learner = learner_after_baseline(h)
    assert h.trials({}, 1.0) == {QID}  # no text yet: the capture rule asks for it
    assert pg.calls == []
    offer(pg)
    pg.results = {HASH_ONLY: 4_000.0, arm_index("no_nestloop"): None, arm_index("merge_only"): 20_000.0}
    for _ in range(3):
        assert h.trials({}, 1.0) == set()  # the text is held: nothing more to ask for
    # each arm paired with the default just before it, under the same conditions
    assert [a for _, a, _ in pg.calls] == [0, HASH_ONLY, 0, arm_index("no_nestloop"), 0, arm_index("merge_only")]
    assert all(t == 30 for *_, t in pg.calls)  # 3 x the default's 10 ms (users' mean, then the trial's)
    q = learner.steering.queries[QID]
    assert q.cleared == {HASH_ONLY} and {arm_index("no_nestloop"), arm_index("merge_only")} <= q.banned
    assert learner.pending_decisions.get(QID) in (None, 0, HASH_ONLY)
    h.trials({}, 1.0)
    assert h.sched.texts == {}  # no trial left: the user's constants are not kept (from the next drain)
    assert sum("cleared" in line for line in pg.lines) == 1 and sum("banned" in line for line in pg.lines) == 2


def test_a_statement_never_offered_is_untriable(pg: FakePg, h: Harness) -> None:
    learner = learner_after_baseline(h)
    h.trials({}, 1.0)
    h.asked = {QID}  # as the capture rules would have set it
    for _ in range(trials.TEXT_WAIT_RUNS):
        h.trials({QID: 1}, 1.0)
    assert learner.steering.queries[QID].untriable
    assert h.trials({QID: 1}, 1.0) == set() and pg.calls == []


def test_a_default_that_does_not_finish_tells_nothing(pg: FakePg, h: Harness) -> None:
    learner = learner_after_baseline(h)
    offer(pg)
    pg.results = {0: None}  # the machine is too busy for the default to finish within 3x its users' mean
    h.trials({}, 1.0)
    q = learner.steering.queries[QID]
    assert [a for _, a, _ in pg.calls] == [0] and not q.trials and not q.banned
    assert "told nothing" in pg.lines[-1] and "tried again in 30 s" in pg.lines[-1]
    h.trials({}, 1.0)
    assert len(pg.calls) == 1  # backing off: not before 30 s, then 60, 120, ...


def test_the_arm_is_judged_against_its_paired_default(pg: FakePg, h: Harness) -> None:
    learner = learner_after_baseline(h)
    offer(pg)
    pg.results = {0: 40_000.0, HASH_ONLY: 45_000.0}  # a slow moment: both 4x their users' times
    h.trials({}, 1.0)
    q = learner.steering.queries[QID]
    assert HASH_ONLY in q.cleared and pg.calls[1][2] == 120  # the arm's limit: 3 x the paired default


def test_failed_trials(pg: FakePg, h: Harness) -> None:
    learner = learner_after_baseline(h)
    offer(pg)
    pg.results = {HASH_ONLY: PgError("could not obtain lock", "55P03")}
    h.trials({}, 1.0)
    q = learner.steering.queries[QID]
    assert not q.untriable and HASH_ONLY not in q.banned | q.cleared  # a lock: tried again later
    assert QID in h.sched.backoff
    h.sched.backoff.clear()
    pg.results = {HASH_ONLY: PgError("permission denied for table t", "42501")}
    h.trials({}, 1.0)
    assert q.untriable and HASH_ONLY not in q.cleared  # not explored at all
    assert "permission denied for table t (SQLSTATE 42501)" in pg.lines[-1]


@pytest.mark.parametrize("arm_or_default", ["default", "arm"])
def test_a_trial_cancelled_by_a_recovery_conflict_bans_nothing(pg: FakePg, h: Harness, arm_or_default: str) -> None:
    """On a hot standby, replay cancels a statement that holds it up (40001, "canceling statement due to
    conflict with recovery"): the trial told nothing, it is tried again later (docs/operations.md)."""
    learner = learner_after_baseline(h)
    offer(pg)
    conflict = PgError("canceling statement due to conflict with recovery", "40001")
    pg.results = {0 if arm_or_default == "default" else HASH_ONLY: conflict}
    h.trials({}, 1.0)
    q = learner.steering.queries[QID]
    assert not q.untriable and HASH_ONLY not in q.banned | q.cleared
    assert QID in h.sched.backoff


def test_a_failed_trial_logs_no_values(pg: FakePg, h: Harness) -> None:
    learner = learner_after_baseline(h)
    offer(pg)
    pg.results = {HASH_ONLY: PgError('invalid input syntax for type integer: "s3cret"', "22P02")}
    h.trials({}, 1.0)
    assert learner.steering.queries[QID].untriable
    assert pg.lines[-1].endswith("its trial failed: SQLSTATE 22P02") and "s3cret" not in "".join(pg.lines)


def test_a_starved_trial_counts_for_nothing(pg: FakePg, h: Harness) -> None:
    learner = learner_after_baseline(h)
    offer(pg)
    delays = iter([0.0, 10.0])  # ten seconds waiting for a CPU during the trial
    h.sched.run_delay = lambda: next(delays)
    pg.results = {HASH_ONLY: None}
    h.trials({}, 1.0)
    q = learner.steering.queries[QID]
    assert HASH_ONLY not in q.banned and not q.trials and "told nothing (waited 10000 ms" in pg.lines[-1]


def test_trials_wait_for_an_idle_cpu_and_share_the_budget(pg: FakePg, h: Harness) -> None:
    learner_after_baseline(h)
    offer(pg)
    ticks = itertools.count(1)
    h.sched.idle.cpu_times = (0.0, 0.0)
    h.sched.idle.read_cpu = lambda: (100.0 * (k := next(ticks)), 10.0 * k)  # 10 % idle
    h.sched.idle.cpu_count = lambda: 2
    h.trials({}, 1.0)
    h.trials({}, 1.0)
    assert pg.calls == [] and h.sched.idle.average < trials.TRIAL_IDLE_CPUS  # 0.2 CPUs idle: no trial
    h.sched.idle.read_cpu = lambda: None
    pg.seconds = 0.02
    h.trials({}, 0.05)  # one paired trial (0.04 s), then the next waits 1/TRIAL_SHARE - 1 = 3 times that
    h.trials({}, 0.05)
    assert len(pg.calls) == 2 and h.sched.ready_at - time.monotonic() > 0.08
