"""Trials of steering arms: the statement texts held for them, their schedule on idle CPU, their backoff.

A trial is a pair (:meth:`TrialScheduler.paired_trial`: the default, then
the arm, each ``pg.trial``: read-only, as the role that ran it, cancelled at
its limit), run on the statement text a backend offered when the capture
rules asked for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from ..definitions.arms import ARMS
from ..definitions.seam import PgModule, sqlstate_of
from ..engine.steering import trial_limit
from .budget import IdleCpuProbe, run_delay
from .texts import take_texts, texts_wanted

#: Statement texts kept for trials at most (a text is dropped once its query wants no more trials).
MAX_TEXTS = 256
#: A statement no trial wants yet is kept this long (seconds) after it arrived: a new query's first
#: execution offers its text unasked (ruvector.dag_transfer), and its record may be learned, and a
#: transferred arm proposed for it, only after the text was taken.
FRESH_TEXT_S = 30.0
#: Executions of a query captured while its text is wanted, after which it counts as untriable
#: (its backends never offer it: parameters of user-defined types, a text too long, ...).
TEXT_WAIT_RUNS = 5
#: SQLSTATEs of a trial that failed for now (a lock, a cancel, a serialization failure): tried again later.
TRIAL_RETRY_SQLSTATES = frozenset({"55P03", "57014", "40001", "40P01", "53200"})
#: SQLSTATEs of a trial's own refusals (trials.c): their messages are logged
TRIAL_REFUSAL_SQLSTATES = frozenset({"0A000", "42501"})
#: Trials start only while this many CPUs were idle: the worker runs at nice 19, so on a saturated
#: machine a trial would measure the scheduler, not the plan (and ban good arms).
#: (... on average over budget.IDLE_TAU_S: a gap between two bursts of load is not idleness.)
TRIAL_IDLE_CPUS = 0.5
#: A trial that told nothing (its default did not finish, or it was starved of CPU) is tried again
#: after this, doubled at each such attempt up to TRIAL_BACKOFF_MAX_S.
TRIAL_BACKOFF_S = 30.0
TRIAL_BACKOFF_MAX_S = 600.0
#: ... and a trial that spent more than this share of its time waiting for a CPU (Linux's
#: /proc/self/schedstat) counts for nothing: it is tried again later.
TRIAL_STARVED_SHARE = 0.5
#: Trials take at most this share of the worker's time (or ruvector.dag_worker_cpu_percent, if more):
#: they run on idle CPU only, and each is bounded (3x the default's time, per arm, once per query).
TRIAL_SHARE = 0.25


def trial_failure(sqlstate: str, message: str) -> str:
    """How a failed trial is logged: its SQLSTATE, and its message only when it is one of the
    trial's own refusals (0A000, 42501: they name objects, never values); other messages may
    quote the user's constants."""
    if sqlstate in TRIAL_REFUSAL_SQLSTATES:
        return f"{message} (SQLSTATE {sqlstate})"
    return f"SQLSTATE {sqlstate or 'unknown'}"


class TrialScheduler:
    """Statement texts held for trials, and when the next trial may run.

    ``learners`` given to :meth:`run` are ``TableLearner`` objects (``relid``,
    ``steering``, ``pending_decisions``).  The CPU probes are injectable for tests.
    """

    def __init__(self, pg: PgModule, idle: IdleCpuProbe | None = None,
                 run_delay: Callable[[], float | None] = run_delay) -> None:
        self.pg = pg
        self.idle = idle if idle is not None else IdleCpuProbe()
        self.run_delay = run_delay
        self.texts: dict[int, bytes] = {}  # query id: its statement as offered (opaque: for pg.trial)
        self.arrived: dict[int, float] = {}  # query id: when its statement was taken (monotonic)
        self.text_waits: dict[int, int] = {}  # executions captured since a query's text was asked for
        self.describe_waits: dict[int, int] = {}  # ... the same for the text of a steered query (texts.py)
        self.ready_at = 0.0  # monotonic time the next trial may start (trials share the CPU budget)
        self.waiting = False  # a trial's statement is held and waits for its turn (drain() says so)
        self.backoff: dict[int, tuple[float, float]] = {}  # query id: (not before, last backoff) after a void trial

    def paired_trial(self, learner: Any, qid: int, arm: int,
                     default_limit_us: float) -> tuple[float | None, float | None, float]:
        """Run the default and then ``arm`` on the statement of ``qid``, back to back under the same
        conditions; (the default's microseconds, the arm's or None if cancelled, the arm's limit).
        The default's time is None when the pair tells nothing: it did not finish within its users'
        BAN_FACTOR x (a machine too busy), or the statement failed (then, unless the failure is a
        passing one, the query is untriable)."""
        statement = self.texts[qid]
        limit_us = default_limit_us
        try:
            default_us = self.pg.trial(statement, 0, max(1, round(default_limit_us / 1000.0)))
            if default_us is None:
                return None, None, limit_us
            limit_us = trial_limit(default_us)
            return default_us, self.pg.trial(statement, arm, max(1, round(limit_us / 1000.0))), limit_us
        except self.pg.Error as exc:
            sqlstate = sqlstate_of(exc)
            if sqlstate not in TRIAL_RETRY_SQLSTATES:
                learner.steering.untriable(qid)
                self.pg.log(f"query {qid} is not explored: its trial failed: {trial_failure(sqlstate, str(exc))}")
            return None, None, limit_us

    def run(self, learners: Iterable[Any], asked: set[int], per_query: dict[int, int],
            share: float) -> tuple[set[int], set[int]]:
        """Take the statement texts offered, run at most one trial; return the query ids whose text
        is still wanted, and the relids of the learners changed.

        Every statement taken also gives its query's normalized text to the
        learners that want it (:mod:`.texts`: steered queries, trials on or
        off); that is all a statement is used for unless a trial waits for it.

        Trials take at most max(``share``, TRIAL_SHARE) of the worker's time on average and start
        only while TRIAL_IDLE_CPUS were idle over IDLE_TAU_S; one that told nothing backs off.  A
        query whose backends never offer its text (``per_query`` counts its executions captured
        since ``asked``, the texts the capture rules ask for) or whose text fails to run is untriable.
        """
        learners = list(learners)
        now = time.monotonic()
        idle = self.idle.update(now)
        texts = self.texts
        taken = [(qid, bytes(statement)) for qid, statement in self.pg.take_statements()]
        changed = take_texts(self.pg, learners, taken)
        for qid, statement in taken:
            texts.pop(qid, None)  # (re-inserted last: the oldest text goes first beyond MAX_TEXTS)
            texts[qid] = statement
            self.arrived[qid] = now
        wanted: dict[int, tuple[Any, int, float]] = {}
        for learner in learners:
            for qid, arm, timeout_us in learner.steering.wanted_trials():
                wanted[qid] = (learner, arm, timeout_us)
        for qid in [q for q in texts if q not in wanted]:
            # (statements hold users' constants: keep them no longer than needed; a query no learner
            # knows yet is a new one whose record has not been learned: FRESH_TEXT_S)
            if now - self.arrived.get(qid, 0.0) >= FRESH_TEXT_S or \
                    any(qid in learner.steering.queries for learner in learners):
                del texts[qid]
        while len(texts) > MAX_TEXTS:
            del texts[next(iter(texts))]
        for qid in [q for q in self.arrived if q not in texts]:
            del self.arrived[qid]
        for qid in list(self.text_waits):
            if qid not in wanted or qid in texts:
                del self.text_waits[qid]
        for qid in asked & wanted.keys():
            if qid not in texts:
                self.text_waits[qid] = self.text_waits.get(qid, 0) + per_query.get(qid, 0)
                if self.text_waits[qid] >= TEXT_WAIT_RUNS:
                    wanted[qid][0].steering.untriable(qid)
                    changed.add(wanted[qid][0].relid)
                    self.pg.log(f"query {qid} is not explored: its statement cannot be tried")
        for qid in [q for q in self.backoff if q not in wanted]:
            del self.backoff[qid]
        ready = [qid for qid in wanted if qid in texts and now >= self.backoff.get(qid, (0.0, 0.0))[0]]
        if ready and now >= self.ready_at and idle >= TRIAL_IDLE_CPUS:
            qid = ready[0]
            learner, arm, default_limit_us = wanted[qid]
            self._trial(learner, qid, arm, default_limit_us, share)
            changed.add(learner.relid)
        # (a text no trial wants yet is held FRESH_TEXT_S at most: the worker comes back to drop it)
        self.waiting = any(qid in texts for qid in wanted) or any(qid not in wanted for qid in texts)
        for_trials = {qid for qid in wanted if qid not in texts and not wanted[qid][0].steering.is_untriable(qid)}
        changed |= self._texts_not_offered(learners, asked, per_query)
        return for_trials | texts_wanted(learners), changed

    def _texts_not_offered(self, learners: list[Any], asked: set[int], per_query: dict[int, int]) -> set[int]:
        """Stop asking for the text of a steered query whose backends did not offer its statement in
        TEXT_WAIT_RUNS executions (a superuser's, parameters of user-defined types, ...): it is kept
        as NULL, and the executions stop paying for an offer refused each time.  Returns the relids
        of the learners changed."""
        changed: set[int] = set()
        wanted = texts_wanted(learners)
        for qid in [q for q in self.describe_waits if q not in wanted]:
            del self.describe_waits[qid]
        for qid in asked & wanted:
            self.describe_waits[qid] = self.describe_waits.get(qid, 0) + per_query.get(qid, 0)
            if self.describe_waits[qid] >= TEXT_WAIT_RUNS:
                del self.describe_waits[qid]
                for learner in learners:
                    if learner.steering.describe(qid, None, 0):
                        changed.add(learner.relid)
        return changed

    def _trial(self, learner: Any, qid: int, arm: int, default_limit_us: float, share: float) -> None:
        """One paired trial, its verdict logged, the next one scheduled."""
        began, delay = time.monotonic(), self.run_delay()
        default_us, latency, limit_us = self.paired_trial(learner, qid, arm, default_limit_us)
        took = time.monotonic() - began
        after = self.run_delay()
        waited = after - delay if after is not None and delay is not None else 0.0
        self.ready_at = time.monotonic() + took * (1.0 / max(share, TRIAL_SHARE) - 1.0)
        if default_us is None or waited > TRIAL_STARVED_SHARE * took:
            if not learner.steering.is_untriable(qid):  # (an untriable one: logged by paired_trial)
                backoff = min(2.0 * self.backoff.get(qid, (0.0, TRIAL_BACKOFF_S / 2.0))[1], TRIAL_BACKOFF_MAX_S)
                self.backoff[qid] = (time.monotonic() + backoff, backoff)
                why = (f"waited {waited * 1000.0:.0f} ms of {took * 1000.0:.0f} for a CPU" if default_us is not None
                       else f"its default did not finish within {default_limit_us / 1000.0:.0f} ms")
                self.pg.log(f"trial of arm {ARMS[arm].name} for query {qid} told nothing ({why}): "
                            f"tried again in {backoff:.0f} s")
        else:
            self.backoff.pop(qid, None)
            decision = learner.steering.trial_result(qid, arm, latency, default_us)
            if decision is not None:
                learner.pending_decisions[qid] = decision
            verdict = "banned" if learner.steering.is_banned(qid, arm) else "cleared"
            shown = "did not finish" if latency is None else f"{latency / 1000.0:.1f} ms"
            self.pg.log(f"trial of arm {ARMS[arm].name} for query {qid}: {shown} (limit {limit_us / 1000.0:.1f} ms, "
                        f"default {default_us / 1000.0:.1f} ms), {verdict}")
