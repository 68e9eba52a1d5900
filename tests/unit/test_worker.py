"""The worker's entry points (runtime.worker.Worker), against a fake ``_ruvector_pg``.

The fake answers the worker's SQL as a database with the extension and one
enrolled table (relid 7) would; the ring is empty.  What runs against a real
server (trials, the ring, the budget under load) is in tests/integration.
"""

from __future__ import annotations

import json
import math
import time
from types import SimpleNamespace
from typing import Any

import pytest

from ruvector_dag.definitions.errors import InvalidParameter, NotEnrolled
from ruvector_dag.definitions.seam import DRAIN_TRIALS_WAITING, RequestKind
from ruvector_dag.runtime import worker as worker_module
from ruvector_dag.runtime.worker import Worker

RELID = 7


class PgError(Exception):
    sqlstate = "XX000"


class FakePg:
    """Every function of ``_ruvector_pg`` (seam.PG_FUNCTIONS), recording the calls that change something."""

    Error = PgError
    READ_RING_MAX = 64
    RECORD_SIZE = 0

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        self.settings = settings or {}
        self.sql: list[str] = []
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def read_ring(self, max_records: int) -> bytes:
        return b""

    def skip_ring(self, max_records: int, keep: bytes) -> bytes:
        self.calls.append(("skip_ring", (max_records,)))
        return b""

    def execute(self, sql: str, params: tuple[str | None, ...] = ()) -> list[tuple[str | None, ...]]:
        self.sql.append(sql)
        if "pg_catalog.pg_extension" in sql:
            return [("1",)]
        if "to_regclass" in sql:
            return []  # nothing restored from another cluster
        if "ruvector_dag.enrolled_tables" in sql:
            return [(str(RELID), "orders", "{}")]
        return []

    def setting(self, name: str) -> str | None:
        return self.settings.get(name)

    def generation(self) -> int:
        return 1

    def _record(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))

    def publish(self, *args: Any) -> None:
        self._record("publish", *args)

    def forget(self, relid: int) -> None:
        self._record("forget", relid)

    def set_decision(self, relid: int, query_id: int, arm: int) -> None:
        self._record("set_decision", relid, query_id, arm)

    def set_capture_rules(self, ids: bytes, fractions: bytes, flags: bytes) -> None:
        self._record("set_capture_rules", ids, fractions, flags)

    def take_statements(self) -> list[tuple[int, bytes]]:
        return []

    def statement_text(self, statement: bytes) -> tuple[int, str | None] | None:
        return None  # (the texts of steered queries: tests/unit/test_readable_steering.py)

    def trial(self, statement: bytes, arm: int, timeout_ms: int) -> float | None:
        raise AssertionError("no trial is wanted here")

    def set_sample_fraction(self, fraction: float) -> None:
        self._record("set_sample_fraction", fraction)

    def log(self, message: str) -> None:
        self._record("log", message)


@pytest.fixture
def pg(monkeypatch: pytest.MonkeyPatch) -> FakePg:
    monkeypatch.setattr(worker_module, "warm_up", lambda: None)  # (the kernels: tested elsewhere)
    return FakePg()


@pytest.fixture
def started(pg: FakePg) -> Worker:
    w = Worker(pg)  # type: ignore[arg-type]
    line = w.start()
    assert line is not None and "1 table(s) learning" in line
    return w


def test_c_constructs_it_with_no_arguments() -> None:
    w = Worker()
    with pytest.raises(RuntimeError, match="start"):
        w.drain()
    w.stop()  # never started: nothing to save, no error


def test_start_captures_everything_and_publishes_the_tables(started: Worker, pg: FakePg) -> None:
    names = [name for name, _ in pg.calls]
    assert ("set_sample_fraction", (1.0,)) in pg.calls
    assert ("set_capture_rules", (b"", b"", b"")) in pg.calls
    assert "publish" in names and RELID in started.learners


def test_drain_of_an_empty_ring(started: Worker, pg: FakePg) -> None:
    assert started.drain() in (None, DRAIN_TRIALS_WAITING)
    assert not any(name == "skip_ring" for name, _ in pg.calls)  # within the budget: nothing skipped


def test_requests(started: Worker, pg: FakePg) -> None:
    answer = json.loads(started.request(RequestKind.CONSOLIDATE.value, RELID, 0, math.nan))
    assert answer == {"merged": 0, "patterns": 0}
    assert any("ruvector_dag.engine_state" in sql for sql in pg.sql)  # saved
    answer = json.loads(started.request(RequestKind.LEARN.value, RELID, 0, math.nan))
    assert "success" in answer
    with pytest.raises(NotEnrolled):
        started.request(RequestKind.EXTRACT.value, RELID + 1, 0, math.nan)
    with pytest.raises(InvalidParameter, match="unknown request kind"):
        started.request("bogus", RELID, 0, math.nan)


def test_learn_is_skipped_unless_learning(pg: FakePg) -> None:
    pg.settings["ruvector.dag_learning_mode"] = "frozen"
    w = Worker(pg)  # type: ignore[arg-type]
    w.start()
    answer = json.loads(w.request(RequestKind.LEARN.value, RELID, 0, math.nan))
    assert answer["skipped"] and "frozen" in answer["reason"]


def test_workers_share_no_state(pg: FakePg) -> None:
    a, b = Worker(pg), Worker(FakePg())  # type: ignore[arg-type]
    a.start()
    assert a.learners and not b.learners
    assert a.publisher is not b.publisher and a.budget is not b.budget


def test_stop_saves_the_learners_changed_since_their_last_save(started: Worker, pg: FakePg) -> None:
    pg.sql.clear()
    started.stop()  # nothing learned since start: nothing to write (thousands of tables stop fast)
    assert not any(sql.startswith("INSERT INTO ruvector_dag.engine_state") for sql in pg.sql)
    started.publisher.dirty.add(RELID)  # (what learning a record, a trial or a decision does)
    started.stop()
    assert any(sql.startswith("INSERT INTO ruvector_dag.engine_state") for sql in pg.sql)


def test_a_requested_cycle_learns_everything_captured_first(started: Worker, pg: FakePg,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """ruvector_dag_learn on a loaded server: the cycle sees every buffered record, not DRAIN_MAX_S's share.

    (A CI flake of test_ewc_protects_what_was_learned: the cycle that anchors EWC ran on part of
    set A, the rest of A was learned after the anchor, and EWC protected nothing.)
    """
    buffered = 40
    learned: list[int] = []
    pg.read_ring = lambda max_records: b"r" if len(learned) + pending() < buffered else b""  # type: ignore[method-assign]
    reads: list[int] = []

    def pending() -> int:
        return len(reads) - len(learned)

    def decode(data: bytes) -> list[Any]:
        reads.append(1)
        return [SimpleNamespace(relid=RELID, query_id=len(reads), captured_at_us=0)]

    def slow_process(self: Any, t: Any) -> None:
        time.sleep(worker_module.DRAIN_MAX_S / 10)  # 40 records take 4x what one drain() may spend
        learned.append(t.query_id)

    monkeypatch.setattr(worker_module, "decode", decode)
    monkeypatch.setattr(worker_module.TableLearner, "process", slow_process)
    started.drain()
    assert 0 < len(learned) < buffered  # the worker's loop: bounded, it comes back for the rest
    cycled: list[int] = []
    monkeypatch.setattr(worker_module.TableLearner, "cycle",
                        lambda self, k=None: (cycled.append(len(learned)), ({"success": False}, []))[1])
    started.request(RequestKind.EXTRACT.value, RELID, 3, math.nan)
    assert cycled == [buffered]
