"""What the worker tells the server: tables' counters and steering decisions (shared memory), and
learned state saved to the extension's tables (the learners changed since they were last saved), or
on a hot standby, which cannot write them, to the standby's own file (:mod:`.standby`)."""

from __future__ import annotations

import time
from typing import Any

from ..definitions.seam import PgModule
from ..engine.learner import TableLearner
from . import storage
from .standby import StandbyStateFile, TableStandbyState

#: Learners are saved at least this often while they learn (and after every
#: cycle or request, and at shutdown).
SAVE_INTERVAL_S = 60.0


class Publisher:
    """Publishes counters and decisions, and saves the learners marked dirty."""

    def __init__(self, pg: PgModule) -> None:
        self.pg = pg
        self.consumed: dict[int, int] = {}  # relid: records consumed from the ring (learned or not)
        self.dirty: set[int] = set()  # relids of the learners changed since they were saved
        self.last_save = 0.0  # monotonic time of the last save of the dirty learners
        # on a hot standby: where learners are saved instead of the tables, and each table's entry
        self.standby_file: StandbyStateFile | None = None
        self.standby_tables: dict[int, TableStandbyState] = {}

    def execute(self, sql: str, params: tuple[str | None, ...] = ()) -> list[tuple[str | None, ...]]:
        rows: list[tuple[str | None, ...]] = self.pg.execute(sql, params)
        return rows

    def count_consumed(self, relid: int, n: int = 1) -> None:
        self.consumed[relid] = self.consumed.get(relid, 0) + n

    def forget(self, relid: int) -> None:
        """A table left: nothing of it is saved or published any more."""
        self.dirty.discard(relid)
        self.standby_tables.pop(relid, None)
        self.pg.forget(relid)

    def publish_decisions(self, learner: TableLearner) -> None:
        pending, learner.pending_decisions = learner.pending_decisions, {}
        for query_id, arm in pending.items():
            try:
                self.pg.set_decision(learner.relid, query_id, arm)
            except Exception as exc:  # the shared cache is full: the query keeps its plan, learning goes on
                self.pg.log(f"steering decision for query {query_id} not published: {exc}")

    def publish(self, learner: TableLearner) -> None:
        c = learner.counters
        self.pg.publish(learner.relid, self.consumed.get(learner.relid, 0), c.processed, c.learned, c.hits,
                        c.avg_latency_us, c.prediction_error, len(learner.bank.patterns), learner.ewc.tasks,
                        c.cycles, c.last_cycle_ms, c.last_cycle_at_us, learner.current_mechanism())

    def save(self, learner: TableLearner, name: str, *, patterns: bool = False,
             history: list[Any] | None = None) -> None:
        """Save ``learner`` (of the table called ``name``), with its patterns and history if given."""
        if self.standby_file is not None:
            self._keep_on_standby(learner)
            self.standby_file.write(self.standby_tables)
            self.dirty.discard(learner.relid)
            return
        if patterns:
            storage.save_patterns(self.execute, learner, name)
            storage.save_pattern_nodes(self.execute, learner)
        if history:
            storage.save_history(self.execute, learner.relid, name, history)
        storage.save_state(self.execute, learner)
        storage.save_steering_evidence(self.execute, learner)
        self.dirty.discard(learner.relid)

    def save_dirty(self, learners: dict[int, TableLearner], names: dict[int, str]) -> None:
        if self.standby_file is not None:
            if self.dirty:
                for relid in self.dirty:
                    self._keep_on_standby(learners[relid])
                self.standby_file.write(self.standby_tables)
                self.dirty.clear()
        else:
            for relid in list(self.dirty):
                self.save(learners[relid], names.get(relid, ""))
        self.last_save = time.monotonic()

    def _keep_on_standby(self, learner: TableLearner) -> None:
        entry = self.standby_tables.get(learner.relid)
        if entry is None:
            entry = self.standby_tables[learner.relid] = TableStandbyState(b"", "")
        entry.state = learner.state_bytes()

    def save_due(self, now: float) -> bool:
        """Whether the dirty learners are due to be saved (SAVE_INTERVAL_S after the last save)."""
        return now - self.last_save >= SAVE_INTERVAL_S
