"""The worker on a hot standby (runtime.worker.Worker, runtime.standby), against a fake ``_ruvector_pg``.

The fake serves the primary's replicated tables (one enrolled table, its saved
state and when it was saved), says whether the server is in recovery, and
records every statement that would write.  A standby must write none; it
follows the primary's saved state except for the queries it decided itself,
keeps its own learning in a file across restarts, and writes it to the tables
at promotion.  The same against real servers: tests/system/test_system_replication.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_worker import RELID, FakePg

from ruvector_dag.engine.learner import LearnerConfig, TableLearner
from ruvector_dag.engine.steering import QuerySteering
from ruvector_dag.runtime import standby
from ruvector_dag.runtime import worker as worker_module
from ruvector_dag.runtime.worker import Worker

WRITES = ("INSERT", "UPDATE", "DELETE")


def primary_state(decisions: dict[int, int]) -> bytes:
    learner = TableLearner(RELID, LearnerConfig.from_enrollment({}), seed=RELID)
    for query_id, arm in decisions.items():
        learner.steering.queries[query_id] = QuerySteering(candidates=[arm], stats={}, banned=set(), arm=arm)
    return learner.state_bytes()


class ReplicaPg(FakePg):
    """A server with the primary's tables; ``recovery`` says whether it is a standby."""

    def __init__(self, data_directory: Path, state: bytes, saved_at: str) -> None:
        super().__init__()
        self.data_directory = data_directory
        self.recovery = True
        self.state, self.saved_at = state, saved_at
        self.writes: list[str] = []

    def execute(self, sql: str, params: tuple[str | None, ...] = ()) -> list[tuple[str | None, ...]]:
        self.sql.append(sql)
        if sql.lstrip().upper().startswith(WRITES):
            assert not self.recovery, f"a standby wrote: {sql}"
            self.writes.append(sql)
            return []
        if "pg_is_in_recovery" in sql:
            return [("true" if self.recovery else "false",)]
        if "data_directory" in sql:
            return [(str(self.data_directory),)]
        if "pg_catalog.pg_extension" in sql:
            return [("1",)]
        if "to_regclass" in sql:
            return []
        if "saved_at::text" in sql:
            return [(str(RELID), self.saved_at)]
        if "SELECT state FROM ruvector_dag.engine_state" in sql:
            return [("\\x" + self.state.hex(),)]
        if "ruvector_dag.enrolled_tables" in sql:
            return [(str(RELID), "orders", "{}")]
        return []

    def decisions_published(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for name, args in self.calls:
            if name == "set_decision":
                out[args[1]] = args[2]
        return out


@pytest.fixture
def replica(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ReplicaPg:
    monkeypatch.setattr(worker_module, "warm_up", lambda: None)
    (tmp_path / "pg_stat").mkdir()
    return ReplicaPg(tmp_path, primary_state({101: 1}), "2026-12-04 10:00:00+00")


def started(pg: ReplicaPg) -> Worker:
    w = Worker(pg)  # type: ignore[arg-type]
    w.start()
    return w


def test_a_standby_applies_the_primary_decisions_and_writes_nothing(replica: ReplicaPg) -> None:
    w = started(replica)
    assert w.standby and replica.decisions_published() == {101: 1}
    w.drain()
    w.stop()
    assert replica.writes == []
    assert (replica.data_directory / standby.FILE_NAME).exists()  # its own learning: a file of its own


def test_it_follows_the_primary_except_where_it_decided_itself(replica: ReplicaPg) -> None:
    w = started(replica)
    # the standby's own trials decided query 202 (drain() records such decisions as local)
    learner = w.learners[RELID]
    learner.steering.queries[202] = QuerySteering(candidates=[2], stats={}, banned=set(), arm=2)
    w.publisher.standby_tables[RELID].local.add(202)
    # the primary saves a newer state: 101 moves to arm 3, and it decided 202 otherwise
    replica.state, replica.saved_at = primary_state({101: 3, 202: 1}), "2026-12-04 10:01:00+00"
    w.last_refresh = 0.0  # due
    w.drain()
    assert w.learners[RELID].steering.decisions() == {101: 3, 202: 2}
    assert replica.decisions_published()[101] == 3
    # nothing newer: nothing adopted again
    calls = len(replica.calls)
    w.last_refresh = 0.0
    w.drain()
    assert not any(name == "set_decision" for name, _ in replica.calls[calls:])


def test_its_learning_survives_its_restart(replica: ReplicaPg) -> None:
    w = started(replica)
    w.learners[RELID].steering.queries[202] = QuerySteering(candidates=[2], stats={}, banned=set(), arm=2)
    w.publisher.standby_tables[RELID].local.add(202)
    w.stop()  # or a crash after its last save: the file is written atomically at each save
    again = started(replica)
    assert again.learners[RELID].steering.decisions() == {101: 1, 202: 2}
    assert again.publisher.standby_tables[RELID].local == {202}
    assert replica.writes == []


def test_promotion_writes_the_tables_and_removes_the_file(replica: ReplicaPg) -> None:
    w = started(replica)
    w.learners[RELID].steering.queries[202] = QuerySteering(candidates=[2], stats={}, banned=set(), arm=2)
    w.stop()
    path = replica.data_directory / standby.FILE_NAME
    assert path.exists()
    replica.recovery = False  # pg_ctl promote
    w.drain()
    assert not w.standby and not path.exists()
    assert any("ruvector_dag.engine_state" in sql for sql in replica.writes)
    assert any("ruvector_dag.steering_evidence" in sql for sql in replica.writes)
    assert any(name == "log" and "promoted" in args[0] for name, args in replica.calls)
    # from now on it saves to the tables, like any primary
    w.request("learn", RELID, -1, float("nan"))
    assert not path.exists()


def test_a_primary_removes_a_standby_file_it_finds(replica: ReplicaPg) -> None:
    path = replica.data_directory / standby.FILE_NAME
    path.write_text('{"version": 1, "tables": {}}')
    replica.recovery = False
    w = started(replica)
    assert not w.standby and not path.exists()


@pytest.mark.parametrize("content", ["", "not json", '{"version": 99, "tables": {}}', '{"version": 1}'])
def test_an_unreadable_file_falls_back_to_the_primary_state(replica: ReplicaPg, content: Any) -> None:
    (replica.data_directory / standby.FILE_NAME).write_text(content)
    w = started(replica)
    assert w.learners[RELID].steering.decisions() == {101: 1}
