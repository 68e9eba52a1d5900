"""The engine's side of the background worker.

``pgext/src/worker.c`` starts the embedded interpreter in the worker
process, constructs :class:`Worker` (``seam.WORKER_CLASS``, no arguments)
and calls its methods (``seam.WORKER_*``), each inside a transaction of its
own (an exception rolls it back and is logged; the worker carries on):

``start()``             warm every Numba kernel (so that sessions find them
                        compiled in the on-disk cache) and reload what was
                        learned (``ruvector_dag.engine_state``)
``drain()``             consume the trajectory ring and run the instant loop
                        (:class:`ruvector_dag.engine.learner.TableLearner`)
``background_cycle()``  every ``ruvector.dag_background_interval_ms``: the
                        cycle of every enrolled table; one log line each
``request(...)``        a session's ``ruvector_dag_learn`` and friends
``stop()``              SIGTERM: save everything

PostgreSQL is reached through ``_ruvector_pg`` (``seam.PG_MODULE``), a module
the worker builds in C (``pgext/src/py_pgmodule.c``); it exists only in that
process.  The worker is composed of small parts, each holding its own state:
the CPU budget and idle-CPU probe (:mod:`.budget`), the capture fraction and
capture rules (:mod:`.sampling`), the trial scheduler (:mod:`.trials`) and
the publishing and saving of what was learned (:mod:`.publisher`).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..definitions import seam, settings
from ..definitions.errors import InvalidParameter, NotEnrolled
from ..definitions.seam import DRAIN_TRIALS_WAITING, REQUEST_INT_NOT_GIVEN, AnswerField, PgModule, RequestKind
from ..engine import attention, clustering, features
from ..engine.learner import LearnerConfig, TableLearner
from ..engine.trajectory import decode
from ..engine.transfer import TransferConfig
from . import embedded, kernel_cache, standby, storage
from .budget import CpuBudget, IdleCpuProbe
from .publisher import Publisher
from .sampling import CaptureRules, Sampler
from .trials import TrialScheduler

#: Longest one drain() call runs (it returns to the worker's loop, which handles signals and requests).
DRAIN_MAX_S = 0.25
#: Longest drain before a session's ruvector_dag_learn/extract_patterns cycle: "everything captured so
#: far" is learned first, not only what DRAIN_MAX_S allowed (on a loaded server a cycle would
#: otherwise see a part of the batch).  The session waits for the answer meanwhile.
REQUEST_DRAIN_MAX_S = 20.0
#: Enrollments are re-read when the registry changes, and at least this often (config changes).
REFRESH_S = 5.0
#: ... on a hot standby, where this is also how the primary's newly saved state (its decisions) arrives.
STANDBY_REFRESH_S = 1.0
#: Similarity above which consolidate merges two patterns when the request gives none (seam.REQUEST_REAL_NOT_GIVEN).
CONSOLIDATE_THRESHOLD = 0.95


def warm_up() -> None:
    """Compile (or load from the cache) every Numba kernel the engine runs."""
    attention.warm_up()
    clustering.warm_up()
    features.warm_up()


class Worker:
    """The background worker's engine: one per worker process, constructed by C with no arguments.

    ``pg`` is the ``_ruvector_pg`` module (or a test's fake with the same
    functions, :class:`~ruvector_dag.definitions.seam.PgModule`); by default
    it is imported by :meth:`start`, in the worker process where it exists.
    """

    def __init__(self, pg: PgModule | None = None) -> None:
        self._pg = pg
        self.learners: dict[int, TableLearner] = {}
        self.tables: dict[int, tuple[str, dict[str, Any]]] = {}  # relid: (name, merged config)
        self.generation = -1  # enrollment registry generation the tables were read at
        self.last_refresh = 0.0
        self.standby = False  # the server was in recovery at the last refresh (a hot standby)
        self.budget = CpuBudget()
        self._parts: tuple[Sampler, CaptureRules, TrialScheduler, Publisher] | None = None
        if pg is not None:
            self._attach(pg)

    def _attach(self, pg: PgModule) -> None:
        self._pg = pg
        self._parts = (Sampler(pg), CaptureRules(pg), TrialScheduler(pg, IdleCpuProbe()), Publisher(pg))

    @property
    def pg(self) -> PgModule:
        if self._pg is None:
            raise RuntimeError(f"{type(self).__name__}.start() was not called")
        return self._pg

    def _require_parts(self) -> tuple[Sampler, CaptureRules, TrialScheduler, Publisher]:
        if self._parts is None:
            raise RuntimeError(f"{type(self).__name__}.start() was not called")
        return self._parts

    @property
    def sampler(self) -> Sampler:
        return self._require_parts()[0]

    @property
    def rules(self) -> CaptureRules:
        return self._require_parts()[1]

    @property
    def trials(self) -> TrialScheduler:
        return self._require_parts()[2]

    @property
    def publisher(self) -> Publisher:
        return self._require_parts()[3]

    def read_settings(self) -> settings.Snapshot:
        """The settings now (one snapshot per entry point: every reader of a setting goes through it)."""
        return settings.read(self.pg)

    def _names(self) -> dict[int, str]:
        return {relid: name for relid, (name, _) in self.tables.items()}

    # -- enrollments ---------------------------------------------------------

    def refresh_tables(self, snapshot: settings.Snapshot) -> None:
        """Follow enrollments: new tables get a learner (reloaded if saved), dropped ones lose it.

        On a primary, enrollments restored from another cluster are re-keyed
        first (:func:`storage.rekey_restored`).  On a hot standby the learners
        also follow what the primary saves (:meth:`_follow_primary`); at
        promotion what the standby learned is written to the tables.
        """
        execute = self.publisher.execute
        installed = storage.extension_installed(execute)
        standby = storage.in_recovery(execute)
        if self.standby and not standby:
            self._promoted()
        self.standby = standby
        if installed and not standby:
            for line in storage.rekey_restored(execute):
                self.pg.log(line)
        self.tables = storage.enrolled_tables(execute) if installed else {}
        for relid in list(self.learners):
            if relid not in self.tables:
                del self.learners[relid]
                self.publisher.forget(relid)
        trials_on = snapshot.flag(settings.DAG_STEERING_TRIALS)
        transfer = TransferConfig(enabled=snapshot.flag(settings.DAG_TRANSFER),
                                  patterns=snapshot.flag(settings.DAG_TRANSFER_PATTERNS),
                                  adapter=snapshot.flag(settings.DAG_TRANSFER_LORA),
                                  ewc=snapshot.flag(settings.DAG_TRANSFER_EWC),
                                  attention=snapshot.flag(settings.DAG_TRANSFER_ATTENTION))
        saved_at = storage.state_saved_at(execute) if installed and standby else {}
        for relid, (_, config) in self.tables.items():
            cfg = LearnerConfig.from_enrollment(config)
            learner = self.learners.get(relid)
            if learner is None:
                learner = self._load_learner(relid, cfg, saved_at.get(relid, ""))
                learner.steering.require_trial = trials_on
                self.learners[relid] = learner
                learner.republish_decisions()  # shared memory starts empty: re-publish the decisions learned before
                self.publisher.publish_decisions(learner)
                self.publisher.publish(learner)
            elif learner.config != cfg:
                learner.reconfigure(cfg)
            learner.steering.require_trial = trials_on
            if learner.transfer.config != transfer:
                learner.set_transfer(transfer)
        if standby:
            self._follow_primary(saved_at, trials_on)

    def _load_learner(self, relid: int, cfg: LearnerConfig, primary_saved_at: str) -> TableLearner:
        """A table's learner: the standby's own if it kept one, else the saved state, else a new one."""
        publisher = self.publisher
        if self.standby:
            entry = publisher.standby_tables.get(relid)
            if entry is not None and entry.state:
                try:
                    return TableLearner.from_state_bytes(entry.state, cfg)
                except Exception as exc:  # a file from another version: start from the primary's
                    self.pg.log(f"standby state of table {relid} not reloaded ({exc}); using the primary's")
            publisher.standby_tables[relid] = standby.TableStandbyState(b"", primary_saved_at)
        saved = storage.load_state(publisher.execute, relid)
        return TableLearner.from_state_bytes(saved, cfg) if saved else TableLearner(relid, cfg, seed=relid)

    def _follow_primary(self, saved_at: dict[int, str], trials_on: bool) -> None:
        """Adopt the state the primary saved since (replayed here), keeping the standby's own decisions.

        Every query follows the primary's decision except those the standby
        decided itself (its trials found a faster arm, or its regression guard
        reverted one): for them the standby keeps its own evidence.
        """
        for relid, learner in list(self.learners.items()):
            entry = self.publisher.standby_tables.get(relid)
            primary = saved_at.get(relid, "")
            if entry is None or not primary or primary == entry.base_saved_at:
                continue
            saved = storage.load_state(self.publisher.execute, relid)
            if not saved:
                continue
            new = TableLearner.from_state_bytes(saved, learner.config)
            new.steering.require_trial = trials_on
            new.set_transfer(learner.transfer.config)
            for query_id in entry.local:
                if query_id in learner.steering.queries:
                    new.steering.queries[query_id] = learner.steering.queries[query_id]
            after = new.steering.decisions()
            new.pending_decisions = {**{q: 0 for q in learner.steering.decisions() if q not in after}, **after}
            self.learners[relid] = new
            entry.base_saved_at = primary
            self.publisher.publish_decisions(new)
            self.publisher.publish(new)
            self.publisher.dirty.add(relid)

    def _promoted(self) -> None:
        """The standby became the primary: write what it learned to the tables, drop its file."""
        publisher = self.publisher
        names = self._names()
        publisher.standby_file, kept = None, publisher.standby_file
        publisher.standby_tables = {}
        for relid, learner in self.learners.items():
            publisher.save(learner, names.get(relid, ""), patterns=True)
        if kept is not None:
            kept.remove()
        self.pg.log(f"promoted: the learned state of {len(self.learners)} table(s) written to the tables")

    def _open_standby_file(self) -> None:
        """At start: on a standby, reload its own file; on a primary, remove one left there."""
        publisher, execute = self.publisher, self.publisher.execute
        data_directory = storage.data_directory(execute)
        if not data_directory:
            return
        state_file = standby.StandbyStateFile(data_directory)
        if storage.in_recovery(execute):
            self.standby = True
            publisher.standby_file = state_file
            publisher.standby_tables = state_file.load()
            if publisher.standby_tables:
                self.pg.log(f"hot standby: the standby's own state of {len(publisher.standby_tables)} table(s) "
                            f"reloaded from {state_file.path}")
        elif state_file.remove():
            self.pg.log(f"{state_file.path} removed: a primary's learned state is in its tables")

    # -- entry points called by worker.c (seam.WORKER_*) ---------------------

    def start(self) -> str | None:
        """Warm the kernels and reload the learners; return the line the worker logs."""
        if self._pg is None:
            self._attach(cast(PgModule, importlib.import_module(seam.PG_MODULE)))  # built by py_pgmodule.c
        began = time.perf_counter()
        cache = os.environ.get("NUMBA_CACHE_DIR")
        with kernel_cache.warm_lock(Path(cache)) if cache else contextlib.nullcontext():
            warm_up()  # one compiler per cache directory at a time (kernel_cache)
        warm_ms = (time.perf_counter() - began) * 1000.0
        self.learners.clear()
        self._open_standby_file()
        self.sampler.set_fraction(1.0)  # a restarted worker starts from capturing everything
        self.rules.clear()
        snapshot = self.read_settings()
        self.refresh_tables(snapshot)
        self.rules.publish(self._policies(), snapshot.number(settings.DAG_CAPTURE_SETTLED_FRACTION), set())
        self.publisher.last_save = time.monotonic()
        return (f"engine ready: kernels warmed in {warm_ms:.0f} ms "
                f"({os.environ.get(embedded.CACHE_INFO_VAR, 'cache in memory')}); "
                f"{len(self.learners)} table(s) learning")

    def _policies(self) -> list[Any]:
        return [learner.steering for learner in self.learners.values()]

    def drain(self, max_s: float = DRAIN_MAX_S) -> str | None:
        """Run the instant loop over what the ring holds, within the CPU budget.

        The ring is always emptied, so capture never drops because the worker is
        busy.  What is learned from is bounded by ``ruvector.dag_worker_cpu_percent``
        of one CPU (:class:`~.budget.CpuBudget`): while tokens last, records are
        read and learned; when they run out, records are consumed in C without
        being copied (``skip_ring``), except those of queries being steered, which
        are still learned from until the debt reaches PRIORITY_DEBT_S.  A call
        returns after DRAIN_MAX_S, so the worker's loop stays responsive to
        signals and requests under any load (``max_s``: longer before a
        requested cycle).  Returns DRAIN_TRIALS_WAITING while a trial waits
        for its turn (worker.c then calls again at its next poll even if no
        record arrives).
        """
        pg, budget, publisher = self.pg, self.budget, self.publisher
        now = time.monotonic()
        cpu_start = time.process_time()
        snapshot = self.read_settings()
        generation = pg.generation()
        promoted = self.standby and not storage.in_recovery(publisher.execute)  # asked only on a standby
        if promoted or generation != self.generation or now - self.last_refresh >= (
                STANDBY_REFRESH_S if self.standby else REFRESH_S):
            self.generation, self.last_refresh = generation, now
            self.refresh_tables(snapshot)
        share = snapshot.number(settings.DAG_WORKER_CPU_PERCENT) / 100.0
        elapsed = budget.refill(now, share)
        # over the budget, skip_ring keeps the records of the queries captured at every execution
        keep = self.rules.kept()
        wanted_since = self.rules.wanted_since
        arrived = 0
        per_query: dict[int, int] = {}
        # executions captured since their text was asked for: records captured before (drained late,
        # e.g. while the engine warmed up) could not have offered it
        waited: dict[int, int] = {}
        touched: set[int] = set()  # tables learned from
        counted: set[int] = set()  # tables whose records were only consumed (over the budget)
        while time.monotonic() - now < max_s:
            if budget.available:
                data = pg.read_ring(budget.read_size(pg.READ_RING_MAX))
            else:
                skipped = np.frombuffer(pg.skip_ring(pg.READ_RING_MAX, keep if budget.priority_allowed else b""),
                                        dtype=np.uint32)
                arrived += len(skipped)
                for relid, n in zip(*np.unique(skipped, return_counts=True)):
                    publisher.count_consumed(int(relid), int(n))
                    counted.add(int(relid))
                if len(skipped):
                    continue
                data = pg.read_ring(1)  # empty, or a steered query's record is next
            if not data:
                break
            t0 = time.process_time()
            batch = decode(data)
            arrived += len(batch)
            for t in batch:
                per_query[t.query_id] = per_query.get(t.query_id, 0) + 1
                if t.captured_at_us >= wanted_since.get(t.query_id, math.inf):
                    waited[t.query_id] = waited.get(t.query_id, 0) + 1
                publisher.count_consumed(t.relid)
                learner = self.learners.get(t.relid)
                if learner is None:
                    continue  # enrolled and dropped again since it was captured
                learner.process(t)
                touched.add(t.relid)
            spent = time.process_time() - t0
            budget.learned(spent, len(batch))
            cpu_start += spent  # charged already
        self.sampler.adapt(arrived, per_query, elapsed, share, snapshot.number(settings.DAG_LEARN_QUERY_RATE),
                           budget.cost_s)
        trial_cpu = time.process_time()
        # a trial's CPU is bounded by its own allowance, not the tokens
        wanted, changed = self.trials.run(self.learners.values(), self.rules.wanted, waited, share)
        publisher.dirty.update(changed)
        cpu_start += time.process_time() - trial_cpu
        # now: with sampling, the next record of a query just found may never come otherwise
        self.rules.publish(self._policies(), snapshot.number(settings.DAG_CAPTURE_SETTLED_FRACTION), wanted)
        for relid in self.learners.keys() - touched:
            if self.learners[relid].pending_decisions:
                touched.add(relid)  # a trial's decision
        for relid in touched | (counted & self.learners.keys()):
            if self.standby and relid in publisher.standby_tables:  # decided here: kept over the primary's
                publisher.standby_tables[relid].local.update(self.learners[relid].pending_decisions)
            publisher.publish(self.learners[relid])  # the consumed count too, so trajectories_buffered stays true
            publisher.publish_decisions(self.learners[relid])
        publisher.dirty.update(touched)
        budget.charge(time.process_time() - cpu_start)  # the rest of the call (skipping, bookkeeping) counts too
        if publisher.save_due(time.monotonic()):
            publisher.save_dirty(self.learners, self._names())
        # worker.c drains again at its next poll, records or not
        return DRAIN_TRIALS_WAITING if self.trials.waiting else None

    def _cycle(self, relid: int, k: int | None = None) -> dict[str, Any]:
        learner = self.learners[relid]
        answer, history = learner.cycle(k)
        if answer[AnswerField.SUCCESS]:
            self.publisher.save(learner, self.tables.get(relid, ("", {}))[0], patterns=True, history=history)
        self.publisher.publish(learner)
        return answer

    def background_cycle(self) -> str | None:
        """The periodic cycle of every enrolled table; one log line per table."""
        self.drain()
        lines = []
        skipped: dict[str, int] = {}  # reason: tables (thousands of idle tables make one line, not thousands)
        for relid in sorted(self.learners):
            answer = self._cycle(relid)
            name = self.tables.get(relid, ("?", {}))[0]
            if answer[AnswerField.SUCCESS]:
                lines.append(f"learning cycle for {name}: {answer[AnswerField.TRAJECTORIES_PROCESSED]} trajectories, "
                             f"{answer[AnswerField.PATTERNS_EXTRACTED]} patterns, "
                             f"{answer[AnswerField.DURATION_MS]:.1f} ms")
            else:
                reason = str(answer[AnswerField.REASON])
                skipped[reason] = skipped.get(reason, 0) + 1
        lines += [f"learning cycle skipped for {n} table(s): {reason}" for reason, n in sorted(skipped.items())]
        self.publisher.save_dirty(self.learners, self._names())
        return "\n".join(lines) or None

    def request(self, kind: str, relid: int, int_arg: int, real_arg: float) -> str:
        """Serve a session's request (ruvector_dag_learn and friends, seam.RequestKind); returns JSON."""
        try:
            request = RequestKind(kind)
        except ValueError:
            request = None  # refused below, after the enrollment check (as before)
        mode = self.read_settings().text(settings.DAG_LEARNING_MODE)
        if request in (RequestKind.LEARN, RequestKind.EXTRACT):
            if mode != settings.LearningMode.LEARN:
                drain_answer: dict[str, Any] = {AnswerField.SUCCESS: False, AnswerField.SKIPPED: True,
                                                 AnswerField.REASON: f"ruvector.dag_learning_mode is {mode}",
                                                 AnswerField.TRAJECTORY_COUNT: 0}
                return json.dumps(drain_answer)
            self.drain(REQUEST_DRAIN_MAX_S)
        else:
            self.refresh_tables(self.read_settings())
        if relid not in self.learners:
            raise NotEnrolled(f"table {relid} is not enrolled (or its enrollment is not committed yet)")
        if request in (RequestKind.LEARN, RequestKind.EXTRACT):
            answer = self._cycle(relid, None if int_arg == REQUEST_INT_NOT_GIVEN else int_arg)
        elif request is RequestKind.CONSOLIDATE:
            threshold = CONSOLIDATE_THRESHOLD if math.isnan(real_arg) else real_arg  # NaN: REQUEST_REAL_NOT_GIVEN
            learner = self.learners[relid]
            merged = learner.consolidate(threshold)
            self.publisher.save(learner, self.tables.get(relid, ("", {}))[0], patterns=True)
            self.publisher.publish(learner)
            answer = {AnswerField.MERGED: merged, AnswerField.PATTERNS: len(learner.bank.patterns)}
        else:
            raise InvalidParameter(f"unknown request kind {kind!r}")
        self.publisher.save_dirty(self.learners, self._names())
        return json.dumps(answer)

    def stop(self) -> None:
        """SIGTERM: on a primary, save every learner changed since its last save (every change marks
        it dirty; saving all of them made a server with thousands of enrolled tables slow to stop); on
        a standby, write its file with every learner (one file)."""
        if self._pg is not None and self._parts is not None:
            if self.publisher.standby_file is not None:
                self.publisher.dirty.update(self.learners)
            self.publisher.save_dirty(self.learners, self._names())
