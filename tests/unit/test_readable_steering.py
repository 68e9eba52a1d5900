"""Readable steering (issue 17): measured p95 per (query, arm), each steered query's series and its
normalized text, taken from an offered statement whether trials are on or off."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plans import plan

from ruvector_dag.definitions.arms import ARMS, arm_index
from ruvector_dag.engine import steering
from ruvector_dag.engine.steering import ArmStats, Execution, QuerySteering, SteeringPolicy
from ruvector_dag.runtime import storage, texts, trials
from ruvector_dag.runtime.budget import IdleCpuProbe
from ruvector_dag.runtime.trials import TrialScheduler

TRAP = plan(["Nested Loop", "Seq Scan", "Seq Scan"], [-1, 0, 0], [1, 1, 10000], [100, 10, 80])
TRAP["actual_rows"] = [5000, 5000, 10000]  # suggests hash_only, no_nestloop, merge_only
QID = 42
USERID = 16_385
HASH_ONLY = arm_index("hash_only")
SQL = "SELECT o.id FROM orders o JOIN items i ON i.order_id = o.id WHERE o.region = 'north' AND i.qty > 3"


def offered(text: str = SQL, userid: int = USERID, query_id: int = QID) -> bytes:
    """A statement as take_statements() returns it: opaque bytes, read by the fake's statement_text."""
    return json.dumps({"query_id": query_id, "userid": userid, "text": text}).encode()


def fake_normalize(text: str) -> str | None:
    """What normalize.c does to the texts here (its own cases: pg_regress `steering`); None: not lexed."""
    if "(((" in text:
        return None
    counter = iter(range(1, 100))
    return re.sub(r"'[^']*'|\b\d+\b", lambda _: f"${next(counter)}", text)


# -- p95, measured ----------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=1.0, max_value=1e8, allow_nan=False), min_size=1, max_size=200))
def test_p95_is_numpys_over_the_recent_window(latencies: list[float]) -> None:
    s = ArmStats()
    for v in latencies:
        s.add(np.log(v))
        s.keep(v)
    window = latencies[-steering.RECENT_LATENCIES:]
    assert s.recent == window
    assert s.p95() == pytest.approx(float(np.percentile(window, 95)), rel=1e-12)


def test_p95_is_none_before_any_latency() -> None:
    assert ArmStats().p95() is None


def test_the_policy_keeps_each_arms_latencies() -> None:
    policy = SteeringPolicy(seed=1)
    rng = np.random.default_rng(3)
    seen: list[float] = []
    for i in range(100):
        v = float(rng.lognormal(9.0, 0.5))
        policy.observe(QID, 0, v, TRAP, at_us=i)
        seen.append(v)
    base = policy.queries[QID].stats[0]
    # (the first, cold execution is not one of the default's samples)
    assert base.p95() == pytest.approx(float(np.percentile(seen[1:][-steering.RECENT_LATENCIES:], 95)))


# -- the series ---------------------------------------------------------------


def test_the_series_is_bounded_and_in_time_order() -> None:
    policy = SteeringPolicy(seed=0)
    stamps = list(range(1_000_000, 1_000_000 + 3 * steering.SERIES_LEN))
    tail = stamps[10:]
    random.Random(7).shuffle(tail)  # records drain out of capture order
    shuffled = stamps[:10] + tail
    assert shuffled != stamps
    for at in shuffled:
        policy.observe(QID, 0, 10_000.0, TRAP, at_us=at)
    series = policy.queries[QID].series
    assert len(series) == steering.SERIES_LEN
    assert [e.at_us for e in series] == sorted(e.at_us for e in series)
    assert [e.at_us for e in series] == stamps[-steering.SERIES_LEN:]  # the most recent, whatever the order


def test_only_steered_queries_keep_a_series() -> None:
    right = plan(["Seq Scan"], [-1], [100], [10])  # estimates right: never explored
    right["actual_rows"] = [100]
    policy = SteeringPolicy(seed=0)
    for i in range(20):
        policy.observe(7, 0, 1_000.0, right, at_us=i)
    assert policy.queries[7].series == [] and not policy.queries[7].steered()
    assert policy.steered_queries() == [] and policy.executions() == []


def test_trials_appear_in_the_series_as_trials() -> None:
    policy = SteeringPolicy(seed=0, require_trial=True)
    for i in range(steering.BASELINE_RUNS + 1):
        policy.observe(QID, 0, 10_000.0, TRAP, at_us=i)
    policy.trial_result(QID, HASH_ONLY, 4_000.0, 10_000.0, at_us=100)
    policy.trial_result(QID, arm_index("no_nestloop"), None, 10_000.0, at_us=200)
    trial_rows = [e for e in policy.queries[QID].series if e.trial]
    assert trial_rows == [Execution(100, 0, 10_000.0, True), Execution(100, HASH_ONLY, 4_000.0, True),
                          Execution(200, 0, 10_000.0, True), Execution(200, arm_index("no_nestloop"), None, True)]


# -- evidence rows --------------------------------------------------------------


def steered_policy(require_trial: bool = False) -> SteeringPolicy:
    """A trap query whose hash_only arm is 4x faster, after the policy settled."""
    policy = SteeringPolicy(seed=0, require_trial=require_trial)
    arm = 0
    for i in range(200):
        latency = 10_000.0 if arm == 0 else (2_500.0 if arm == HASH_ONLY else 12_000.0)
        decision = policy.observe(QID, arm, latency, TRAP, at_us=i)
        arm = policy.queries[QID].arm if decision is None else decision
    return policy


def test_one_evidence_row_per_arm_with_state_p95_and_speedup() -> None:
    policy = steered_policy()
    rows = {r["arm"]: r for r in policy.evidence()}
    assert rows["default"]["state"] == "default" and rows["default"]["speedup"] == pytest.approx(1.0)
    chosen = rows["hash_only"]
    assert chosen["state"] == "chosen" and chosen["speedup"] == pytest.approx(4.0)
    assert chosen["p95_latency_us"] == pytest.approx(2_500.0)
    assert {r["state"] for a, r in rows.items() if a not in ("default", "hash_only")} <= {"banned", "in play"}


def test_an_arm_waiting_for_its_trial_is_on_trial() -> None:
    policy = SteeringPolicy(seed=0, require_trial=True)
    for i in range(steering.BASELINE_RUNS + 1):
        policy.observe(QID, 0, 10_000.0, TRAP, at_us=i)
    q = policy.queries[QID]
    assert q.state(HASH_ONLY, True) == "trial"
    waiting = [r for r in policy.evidence() if r["arm"] == "hash_only"]
    assert waiting and waiting[0]["state"] == "trial" and waiting[0]["executions"] == 0  # shown before it runs
    policy.trial_result(QID, HASH_ONLY, 4_000.0, 10_000.0, at_us=9)
    assert q.state(HASH_ONLY, True) in ("in play", "chosen")


# -- saved state ------------------------------------------------------------------


def test_the_state_round_trips_through_json() -> None:
    policy = steered_policy()
    policy.describe(QID, "SELECT $1", USERID)
    again = SteeringPolicy()
    again.load_json(json.loads(json.dumps(policy.to_json())))
    q, r = policy.queries[QID], again.queries[QID]
    assert r == q
    assert r.text == "SELECT $1" and r.userid == USERID and r.text_taken
    assert r.series == q.series and all(isinstance(e, Execution) for e in r.series)
    assert r.stats[HASH_ONLY].recent == q.stats[HASH_ONLY].recent


def test_a_state_saved_before_readable_steering_loads() -> None:
    old = {"candidates": [HASH_ONLY], "banned": [], "arm": HASH_ONLY, "embedding": None, "suggested": True,
           "cleared": [HASH_ONLY], "untriable": False, "trials": {str(HASH_ONLY): [4000.0, 10000.0]},
           "stats": {"0": [5, 9.2, 0.1, 9.3], str(HASH_ONLY): [4, 7.8, 0.05, 7.9]}}
    q = QuerySteering.from_json(old)
    assert q.arm == HASH_ONLY and q.stats[0].n == 5 and q.stats[0].recent == []
    assert q.text is None and q.userid == 0 and not q.text_taken and q.series == []
    assert q.wants_text()  # a query steered before the upgrade gets its text from its next execution
    assert q.stats[0].p95() is None


# -- texts --------------------------------------------------------------------------


def test_an_offered_statement_gives_its_role_and_normalized_text() -> None:
    pg = FakePg()
    learner = Learner(require_trial=False)
    explored(learner)
    assert texts.take_texts(pg, [learner], [(QID, offered())]) == {learner.relid}
    q = learner.steering.queries[QID]
    assert q.userid == USERID and q.text is not None
    assert "'north'" not in q.text and " 3" not in q.text and "$1" in q.text and "$2" in q.text


def test_an_unreadable_statement_has_no_text() -> None:
    pg = FakePg()
    learner = Learner(require_trial=False)
    explored(learner)
    texts.take_texts(pg, [learner], [(QID, b"not a statement")])
    q = learner.steering.queries[QID]
    assert q.text_taken and q.text is None  # taken: not asked for again at every execution


class FakePg:
    """take_statements, statement_text, trial (which must not run here), log."""

    class Error(Exception):
        pass

    def __init__(self) -> None:
        self.offered: list[tuple[int, bytes]] = []
        self.calls: list[tuple[bytes, int, int]] = []
        self.lines: list[str] = []

    def take_statements(self) -> list[tuple[int, bytes]]:
        taken, self.offered = self.offered, []
        return taken

    def statement_text(self, statement: bytes) -> tuple[int, str | None] | None:
        try:
            d = json.loads(statement)
        except ValueError:
            return None
        return int(d["userid"]), fake_normalize(d["text"])

    def trial(self, statement: bytes, arm: int, timeout_ms: int) -> Any:
        self.calls.append((statement, arm, timeout_ms))
        return 10_000.0

    def log(self, line: str) -> None:
        self.lines.append(line)


class Learner:
    def __init__(self, require_trial: bool) -> None:
        self.relid = 1
        self.steering = SteeringPolicy(seed=0, require_trial=require_trial)
        self.pending_decisions: dict[int, int] = {}


def scheduler(pg: FakePg) -> TrialScheduler:
    return TrialScheduler(pg, IdleCpuProbe(read_cpu=lambda: None), run_delay=lambda: None)  # type: ignore[arg-type]


def explored(learner: Learner, runs: int = steering.BASELINE_RUNS + 1) -> None:
    for i in range(runs):
        learner.steering.observe(QID, 0, 10_000.0, TRAP, at_us=i)


def test_with_trials_off_a_steered_querys_text_is_wanted_and_nothing_is_tried() -> None:
    pg, learner = FakePg(), Learner(require_trial=False)
    sched = scheduler(pg)
    explored(learner)
    assert learner.steering.queries[QID].steered()
    wanted, _ = sched.run([learner], set(), {}, 1.0)
    assert wanted == {QID}  # its text: the capture rule asks for it although no trial is wanted
    pg.offered.append((QID, offered()))
    wanted, changed = sched.run([learner], {QID}, {QID: 1}, 1.0)
    q = learner.steering.queries[QID]
    assert q.text is not None and "$1" in q.text and q.userid == USERID
    assert changed == {learner.relid} and wanted == set()
    assert pg.calls == [] and sched.texts == {} and not sched.waiting  # the text only: nothing held, nothing run
    for _ in range(3):
        pg.offered.append((QID, offered()))  # (a backend that offered before the rule changed)
        sched.run([learner], set(), {QID: 1}, 1.0)
    assert pg.calls == [] and sched.texts == {}


def test_with_trials_on_the_offered_statement_also_gives_the_text() -> None:
    pg, learner = FakePg(), Learner(require_trial=True)
    sched = scheduler(pg)
    explored(learner)
    assert sched.run([learner], set(), {}, 1.0)[0] == {QID}
    pg.offered.append((QID, offered()))
    sched.run([learner], {QID}, {}, 1.0)
    assert [a for _, a, _ in pg.calls] == [0, HASH_ONLY]  # the trial, as before
    assert learner.steering.queries[QID].text is not None


def test_a_query_not_steered_is_not_asked_for() -> None:
    pg, learner = FakePg(), Learner(require_trial=False)
    right = plan(["Seq Scan"], [-1], [100], [10])
    right["actual_rows"] = [100]
    for i in range(10):
        learner.steering.observe(7, 0, 1_000.0, right, at_us=i)
    pg.offered.append((7, offered(query_id=7)))
    wanted, changed = scheduler(pg).run([learner], set(), {}, 1.0)
    assert wanted == set() and changed == set() and learner.steering.queries[7].text is None


def test_a_text_never_offered_stops_being_asked_for() -> None:
    pg, learner = FakePg(), Learner(require_trial=False)
    sched = scheduler(pg)
    explored(learner)
    for _ in range(trials.TEXT_WAIT_RUNS - 1):
        assert sched.run([learner], {QID}, {QID: 1}, 1.0)[0] == {QID}
    wanted, changed = sched.run([learner], {QID}, {QID: 1}, 1.0)
    q = learner.steering.queries[QID]
    assert wanted == set() and changed == {learner.relid}
    assert q.text_taken and q.text is None and pg.lines == []  # nothing logged: not an error
    assert not learner.steering.queries[QID].untriable  # (trials off: nothing to say about trials)


def test_an_unparsable_text_is_none_and_not_asked_again() -> None:
    pg, learner = FakePg(), Learner(require_trial=False)
    sched = scheduler(pg)
    explored(learner)
    pg.offered.append((QID, offered("SELECT 1 FROM orders WHERE x = SOMENEWSYNTAX (((")))
    wanted, _ = sched.run([learner], {QID}, {}, 1.0)
    q = learner.steering.queries[QID]
    assert q.text_taken and q.text is None and q.userid == USERID and wanted == set() and pg.lines == []


# -- what the worker saves -------------------------------------------------------------


class Recorder:
    def __init__(self, readable: bool) -> None:
        self.readable = readable
        self.sql: list[tuple[str, tuple[str | None, ...]]] = []

    def __call__(self, sql: str, params: tuple[str | None, ...]) -> list[tuple[str | None, ...]]:
        self.sql.append((sql, params))
        if "relname = 'steering_executions'" in sql:
            return [("1",)] if self.readable else []
        return []


class SavedLearner:
    relid = 99

    def __init__(self, policy: SteeringPolicy) -> None:
        self.steering = policy

    def pattern_of(self, embedding: Any) -> int | None:
        return None


def test_the_worker_saves_texts_series_and_the_new_evidence_columns() -> None:
    policy = steered_policy()
    policy.describe(QID, "SELECT $1", USERID)
    execute = Recorder(readable=True)
    storage.save_steering_evidence(execute, SavedLearner(policy))  # type: ignore[arg-type]
    inserts = {sql.split()[2]: json.loads(params[1] or "[]") for sql, params in execute.sql
               if sql.startswith("INSERT")}
    assert set(inserts) == {"ruvector_dag.steering_evidence", "ruvector_dag.steered_queries",
                            "ruvector_dag.steering_executions"}
    assert {"p95_latency_us", "speedup", "state"} <= set(inserts["ruvector_dag.steering_evidence"][0])
    assert inserts["ruvector_dag.steered_queries"] == [{"query_id": QID, "userid": USERID, "query": "SELECT $1"}]
    series = inserts["ruvector_dag.steering_executions"]
    assert len(series) == len(policy.queries[QID].series) and series[-1]["executed_at_us"] == 199
    assert {r["arm"] for r in series} <= {a.name for a in ARMS}
    deletes = [sql for sql, _ in execute.sql if sql.startswith("DELETE")]
    assert len(deletes) == 3  # each table holds what the learner knows now


def test_before_0_6_0_the_worker_saves_the_evidence_as_before() -> None:
    execute = Recorder(readable=False)
    storage.save_steering_evidence(execute, SavedLearner(steered_policy()))  # type: ignore[arg-type]
    written = " ".join(sql for sql, _ in execute.sql)
    assert "steered_queries" not in written and "steering_executions (" not in written and "p95" not in written
    assert "INSERT INTO ruvector_dag.steering_evidence" in written
