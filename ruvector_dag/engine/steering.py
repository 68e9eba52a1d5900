"""Plan steering: the planning choices ("arms") a query can be planned with.

The arms are declared once, with C, in :mod:`ruvector_dag.definitions.arms`
(``python build.py generate`` writes ``pgext/src/steering_defs.h`` from them), and the planner hook
(``pgext/src/plan.c``) plans a statement that has a decision with that
arm's settings applied in a GUC nest level it always restores.

The arms follow Bao (Marcus et al., SIGMOD 2021): the default plan, and the
planner's join and scan switches alone and in the combinations that force
one join method; plus serial execution.  Each arm only *disables* methods, so
every arm still returns the same rows: the planner falls back to another
method (or, when none is left, uses the disabled one at a penalty).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# The arms and the policy constants the settings' descriptions quote are part of the contract with C.
from ..definitions.arms import ARMS, BAN_FACTOR, arm_index

# --------------------------------------------------------------------------
# Learning decisions (the engine side; the worker publishes them to directives.c)
# --------------------------------------------------------------------------

#: Executions under the default plan before any arm is tried.
BASELINE_RUNS = 3
#: Arms explored per query at most (the first of its suggested arms).
EXPLORED_ARMS = 4
#: Regression guard: an arm stays in play only while it is measured this much faster than the
#: default (5 %), judged once it has GUARD_RUNS executions (an arm that does not help costs that many).
MIN_GAIN = 0.05
GUARD_RUNS = 2
#: Normal-inverse-gamma prior of an arm's log latency: mean = the default's mean, kappa0
#: pseudo-observations, and sigma^2 ~ InvGamma(ALPHA0, BETA0) (prior mean BETA0 / (ALPHA0 - 1) = 0.25,
#: latencies within a factor e^0.5 = 1.6 of each other).
KAPPA0 = 1.0
ALPHA0 = 2.0
BETA0 = 0.25
#: A plan node's row estimate is "wrong" beyond this factor (an order of magnitude).
MISESTIMATE = 10.0
#: Queries tracked per table (the oldest is forgotten first).
MAX_QUERIES = 1000
#: A trial (the worker's run of an arm on the statement itself, before any user's execution is
#: planned with it) is cancelled at BAN_FACTOR times the default's run just before it, and never
#: sooner than this: the statement timeout's resolution, and the noise of a sub-millisecond query.
TRIAL_MIN_TIMEOUT_US = 10_000.0
#: A trial this many times slower than its paired default bans its arm too: no user would gain from it.
TRIAL_SLOWER = 1.25
#: Latencies kept per (query, arm), the most recent: its p95 is measured on them (a DBA reads the tail
#: users saw, not one derived from the log-normal the policy assumes).
RECENT_LATENCIES = 64
#: Executions kept per steered query, the most recent: its before/after series.
SERIES_LEN = 256

#: Arms a misestimate suggests, by (where the wrong estimate feeds, direction).
_SUGGESTIONS: dict[str, tuple[str, ...]] = {
    # the outer side of a nested loop has far more rows than planned: the classic trap
    "nestloop_outer_under": ("hash_only", "no_nestloop", "merge_only"),
    # a merge join's input is far larger than planned: the sort spills, a hash join may not
    "merge_input_under": ("hash_only", "no_mergejoin"),
    # an index or bitmap scan returns far more rows than planned: scan the table instead
    "index_under": ("no_indexscan", "no_bitmapscan"),
    # a sequential scan returns far fewer rows than planned: an index may serve
    "seqscan_over": ("no_seqscan",),
    # a hash join's input is far smaller than planned: a nested loop over an index may serve
    "hash_over": ("no_hashjoin",),
}


def _misestimates(nodes: Any) -> list[tuple[float, str]]:
    """(severity, kind) of each plan node whose row estimate was wrong by MISESTIMATE or more."""
    from ..definitions.layout import operator_name

    found: list[tuple[float, str]] = []
    first_child: dict[int, int] = {}
    for i, node in enumerate(nodes):
        first_child.setdefault(int(node["parent"]), i)
    for i, node in enumerate(nodes):
        loops = max(float(node["loops"]), 1.0)
        ratio = (float(node["actual_rows"]) / loops + 1.0) / (float(node["plan_rows"]) + 1.0)
        if MISESTIMATE > ratio > 1.0 / MISESTIMATE:
            continue
        op = operator_name(int(node["op"]))
        parent = int(node["parent"])
        parent_op = operator_name(int(nodes[parent]["op"])) if 0 <= parent < len(nodes) else ""
        if ratio >= MISESTIMATE:
            if parent_op == "Nested Loop" and first_child.get(parent) == i:
                kind = "nestloop_outer_under"
            elif parent_op == "Merge Join" or (parent_op == "Sort" and op != "Sort"):
                kind = "merge_input_under"
            elif op in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan"):
                kind = "index_under"
            else:
                continue
        else:
            if op == "Seq Scan":
                kind = "seqscan_over"
            elif parent_op in ("Hash", "Hash Join") or op == "Hash Join":
                kind = "hash_over"
            else:
                continue
        found.append((max(ratio, 1.0 / ratio), kind))
    return found


def suggested_arms(nodes: Any) -> list[int]:
    """Arms worth trying for a plan, most promising first, from where its row estimates were wrong.

    Only what the plan shows is tried: a plan whose estimates were all within
    MISESTIMATE of the truth is the planner's to choose, and gets no
    exploration at all.  Underestimates come first (they are the traps:
    a nested loop run a thousand times instead of ten), then overestimates,
    each group by how wrong the estimate was.
    """
    found = _misestimates(nodes)
    found.sort(key=lambda f: (not f[1].endswith("_under"), -f[0]))
    names: list[str] = []
    for _, kind in found:
        names.extend(n for n in _SUGGESTIONS[kind] if n not in names)
    return [arm_index(n) for n in names]


def signed_id(query_id: int) -> int:
    """A query id as SQL's bigint shows it (pg_stat_statements' queryid)."""
    return query_id - (1 << 64) if query_id >= 1 << 63 else query_id


def _now_us() -> int:
    return int(time.time() * 1_000_000)


def trial_limit(default_us: float) -> float:
    """Microseconds at which a trial is cancelled, given the default's time: BAN_FACTOR times it, at
    least TRIAL_MIN_TIMEOUT_US.  The hard bound on what an exploratory plan can cost."""
    return max(BAN_FACTOR * float(default_us), TRIAL_MIN_TIMEOUT_US)


@dataclass
class ArmStats:
    """Running mean and sum of squares of log latency under one arm (Welford), and its recent latencies."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    worst: float = float("-inf")  # slowest single execution
    recent: list[float] = field(default_factory=list)  # microseconds of the last RECENT_LATENCIES, oldest first

    def add(self, y: float) -> None:
        self.worst = max(self.worst, y)
        self.n += 1
        d = y - self.mean
        self.mean += d / self.n
        self.m2 += d * (y - self.mean)

    def keep(self, latency_us: float) -> None:
        """Remember one execution's latency for :meth:`p95` (the oldest goes beyond RECENT_LATENCIES)."""
        self.recent.append(float(latency_us))
        del self.recent[:-RECENT_LATENCIES]

    def p95(self) -> float | None:
        """95th percentile of the recent latencies (microseconds, numpy's linear interpolation); None
        before any (an arm saved before they were kept, or banned by its trial)."""
        import numpy as np

        return float(np.percentile(self.recent, 95)) if self.recent else None

    def posterior(self, mu0: float) -> tuple[float, float, float, float]:
        """Normal-inverse-gamma posterior (mu_n, kappa_n, alpha_n, beta_n) with prior mean mu0."""
        kappa = KAPPA0 + self.n
        mu = (KAPPA0 * mu0 + self.n * self.mean) / kappa
        alpha = ALPHA0 + self.n / 2.0
        beta = BETA0 + 0.5 * self.m2 + KAPPA0 * self.n * (self.mean - mu0) ** 2 / (2.0 * kappa)
        return mu, kappa, alpha, beta


class Execution(NamedTuple):
    """One execution of a steered query, for its before/after series."""

    at_us: int  # Unix epoch, microseconds (a record's captured_at_us; a trial's end)
    arm: int
    latency_us: float | None  # None: a trial cancelled at its limit
    trial: bool  # the worker's trial, not a user's execution


@dataclass
class QuerySteering:
    """What is known about one recurring query."""

    candidates: list[int]
    stats: dict[int, ArmStats]
    banned: set[int]
    arm: int = 0  # the arm last published for it (0: no decision)
    embedding: list[float] | None = None  # its plan's embedding: which learned pattern it falls in
    suggested: bool = False  # candidates come from a default plan's estimates
    cleared: set[int] = field(default_factory=set)  # arms that finished their trial in time
    untriable: bool = False  # its statement cannot be tried: its untried arms stay out of play
    # per arm tried: (its trial's microseconds or None if cancelled, the default's just before)
    trials: dict[int, tuple[float | None, float]] = field(default_factory=dict)
    # Readable steering (kept for steered queries only): its normalized text (constants as $n; None
    # if its statement did not parse), the role that ran that statement, whether one was taken at all
    text: str | None = None
    userid: int = 0
    text_taken: bool = False
    series: list[Execution] = field(default_factory=list)  # the last SERIES_LEN executions, oldest first
    # Transfer (engine/transfer.py): its default plan's embedding under every mechanism, the proposal
    # its first candidate came from, its first (cold) default execution's microseconds, and whether its
    # verdict was learned from
    embeddings: dict[str, list[float]] | None = None
    transferred: dict[str, Any] | None = None
    first_us: float | None = None
    voted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"candidates": self.candidates, "banned": sorted(self.banned), "arm": self.arm,
                "embedding": self.embedding, "suggested": self.suggested,
                "cleared": sorted(self.cleared), "untriable": self.untriable,
                "trials": {str(a): list(t) for a, t in self.trials.items()},
                "stats": {str(a): [s.n, s.mean, s.m2, s.worst, s.recent] for a, s in self.stats.items()},
                "text": self.text, "userid": self.userid, "text_taken": self.text_taken,
                "series": [list(e) for e in self.series],
                "embeddings": self.embeddings if self.steered() else None, "transferred": self.transferred,
                "first_us": self.first_us, "voted": self.voted}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> QuerySteering:
        """The state :meth:`to_json` saved, or one saved before 0.6.0 (no recent latencies, text, series)."""
        return cls([int(a) for a in d["candidates"]],
                   {int(a): ArmStats(int(v[0]), float(v[1]), float(v[2]), float(v[3]),
                                     [float(x) for x in v[4]] if len(v) > 4 else [])
                    for a, v in d["stats"].items()},
                   {int(a) for a in d["banned"]}, int(d["arm"]), d.get("embedding"), bool(d.get("suggested")),
                   {int(a) for a in d.get("cleared", [])}, bool(d.get("untriable")),
                   {int(a): (None if t[0] is None else float(t[0]), float(t[1]))
                    for a, t in d.get("trials", {}).items()},
                   d.get("text"), int(d.get("userid") or 0), bool(d.get("text_taken")),
                   [Execution(int(e[0]), int(e[1]), None if e[2] is None else float(e[2]), bool(e[3]))
                    for e in d.get("series", [])],
                   d.get("embeddings"), d.get("transferred"),
                   None if d.get("first_us") is None else float(d["first_us"]), bool(d.get("voted")))

    def steered(self) -> bool:
        """Whether the query is or was steered: an arm was in play for it (explored, on trial, a
        decision of before) or users ran it under one (a pin).  Only those keep a text and a series."""
        return bool(self.candidates) or bool(self.trials) or any(a != 0 for a in self.stats)

    def wants_text(self) -> bool:
        """Whether the worker asks for its statement: steered, and none taken yet."""
        return not self.text_taken and self.steered()

    def describe(self, text: str | None, userid: int) -> None:
        """Keep the normalized text of the statement taken (None: it did not parse) and its role."""
        self.text, self.userid, self.text_taken = text, int(userid), True

    def record(self, execution: Execution) -> None:
        """Add an execution to the series of a steered query, in time order, the oldest dropped
        beyond SERIES_LEN.  (Records drain out of capture order across backends, trials interleave.)"""
        if not self.steered():
            return
        bisect.insort(self.series, execution, key=lambda e: e.at_us)
        del self.series[:-SERIES_LEN]

    def own_baseline(self) -> ArmStats | None:
        """The default's statistics from its users' executions, once there are BASELINE_RUNS (None before)."""
        base = self.stats.get(0)
        return base if base is not None and base.n >= BASELINE_RUNS else None

    def trial_faster(self, arm: int) -> bool:
        """Whether ``arm``'s trial ran clearly (MIN_GAIN) faster than the default just before it."""
        latency_us, default_us = self.trials.get(arm, (None, 0.0))
        return latency_us is not None and latency_us * (1.0 + MIN_GAIN) <= default_us

    def transferred_arm(self) -> int | None:
        """The arm transfer proposed as its first candidate, if any."""
        return arm_index(self.transferred["arm"]) if self.transferred else None

    def verdict(self) -> frozenset[int] | None:
        """What this query tells about its plan shape, for transfer: the arms its users measured
        clearly faster than the default (not banned after GUARD_RUNS executions) with those its trials
        found clearly faster, once one such is known; none if it settled
        on the default (its arms all banned, or none suggested, after its baseline) or at once if
        its transferred arm failed (a vote against the pattern); None while undecided."""
        # (judged by the guard only against a baseline: a pin, an administrator's trial before it, are not)
        judged = self.baseline() is not None
        good = frozenset(a for a, s in self.stats.items()
                         if judged and a != 0 and a not in self.banned and s.n >= GUARD_RUNS)
        # ... and the arms whose trial ran clearly faster than the default just before it (the arm users
        # got is one of several that fix a trap: the others' trials are evidence too)
        good |= frozenset(a for a in self.trials if a not in self.banned and self.trial_faster(a))
        if good:
            return good
        t = self.transferred_arm()
        if t is not None and t in self.banned:
            return frozenset()
        if self.suggested and self.own_baseline() is not None and \
                not any(a not in self.banned for a in self.candidates):
            return frozenset()
        return None

    def early_arm(self) -> int | None:
        """The transferred arm, if its trial ran clearly faster (MIN_GAIN) than the default just before
        it and it is not banned: the one arm users may get before the default's baseline."""
        t = self.transferred_arm()
        return t if t is not None and t not in self.banned and self.trial_faster(t) else None

    def baseline(self) -> ArmStats | None:
        """The default's statistics the guard and the sampling compare arms with: its users'
        executions once there are BASELINE_RUNS; before, for a query whose transferred arm was
        tried, the defaults its trials measured (run just before each arm) with its users' ones."""
        import math

        own = self.own_baseline()
        if own is not None or self.early_arm() is None:
            return own
        pseudo = ArmStats()
        for _, default_us in self.trials.values():
            pseudo.add(math.log(max(default_us, 1.0)))
        base = self.stats.get(0)
        for y in (base.recent if base is not None else []):
            pseudo.add(math.log(max(y, 1.0)))
        return pseudo

    def state(self, arm: int, require_trial: bool) -> str:
        """How ``arm`` stands for this query, as ruvector_dag.steering shows it."""
        if arm == 0:
            return "default"
        if arm in self.banned:
            return "banned"
        if arm == self.arm:
            return "chosen"
        if require_trial and not self.tried(arm):
            return "trial"  # waiting for its trial: no user's execution is planned with it yet
        return "in play"

    def tried(self, arm: int) -> bool:
        """Whether users may be planned with ``arm``: the default, an arm that passed its
        trial, or one users have run already (an administrator's trial, a decision of before)."""
        return arm == 0 or arm in self.cleared or arm in self.stats

    def exploring(self, require_trial: bool) -> bool:
        """Whether every execution of this query is worth a record: an arm is in play, and users
        run it or the default's baseline is still being measured (a query whose arms only wait
        for their trials needs its text, not its executions)."""
        live = set(self.candidates) - self.banned
        if not require_trial or not live:
            return bool(live)
        if any(self.tried(a) for a in live):
            return True
        return not self.untriable and self.own_baseline() is None


class SteeringPolicy:
    """Thompson sampling over arms per query id, with a regression guard.

    The log latency of a query under an arm is modelled as Normal with
    unknown mean and variance, under a normal-inverse-gamma prior centred on
    the default plan's mean: after every execution each arm's posterior is
    sampled (sigma^2 from its inverse gamma, then the mean from its normal)
    and the arm with the fastest draw is the query's next decision.  The arms
    in play are the default, the arms the plan's misestimates suggest
    (:func:`suggested_arms`, at most EXPLORED_ARMS) and any arm an
    administrator put on trial.

    Safety: nothing is explored before BASELINE_RUNS default executions
    (the query's first execution, usually cold, is not one of them: it
    would inflate the baseline and let neutral arms pass the guard), or
    for a plan whose estimates were right.  With ``require_trial`` (the
    worker's setting) an arm reaches no user's execution before it passed a
    *trial*: the worker runs the statement itself under the default and then
    under the arm, cancelled at BAN_FACTOR times the default's time
    (:meth:`wanted_trials`, :meth:`trial_result`); one that does not finish,
    or is TRIAL_SLOWER slower, is banned having cost no user anything, and a
    query whose statement cannot be tried is not explored.  An arm is banned
    as soon as one user's execution takes BAN_FACTOR times the default's
    mean too (data and parameters change),
    and by the regression guard once, after GUARD_RUNS executions, its
    mean is not MIN_GAIN faster than the default's (stricter than "slower
    with confidence": an arm that does not help leaves play after two
    executions, and a decision for it reverts), so a query's steady state
    is the default plan unless an arm is measured clearly faster.  Pinned
    arms are measured but never replaced.
    """

    def __init__(self, seed: int = 0, *, require_trial: bool = False,
                 proposer: Callable[[int, QuerySteering], Any] | None = None) -> None:
        import numpy as np

        self.require_trial = bool(require_trial)
        # transfer (engine/transfer.py): proposer(query id, its state) -> a Proposal or None, asked once
        # per new query after its first default execution; None: no transfer
        self.proposer = proposer
        self.verdicts: list[int] = []  # queries whose verdict appeared since the last look (transfer learns)
        self.queries: dict[int, QuerySteering] = {}
        self.rng = np.random.default_rng(seed)
        self.retired: list[int] = []  # forgotten queries whose published decision must be removed

    def observe(self, query_id: int, arm: int, latency_us: float, nodes: Any, *,
                pinned: bool = False, embedding: Any = None, at_us: int | None = None,
                embeddings: Callable[[], dict[str, Any]] | None = None) -> int | None:
        """Record one execution under ``arm`` (captured at ``at_us``, Unix microseconds: now if not
        given); return the arm to publish if the decision must change."""
        import math

        if query_id == 0 or not 0 <= arm < len(ARMS):
            return None
        q = self.queries.pop(query_id, None)
        first = q is None
        if q is None:
            q = QuerySteering([], {}, set())
            if len(self.queries) >= MAX_QUERIES:
                oldest = next(iter(self.queries))
                if self.queries.pop(oldest).arm != 0:
                    self.retired.append(oldest)
        self.queries[query_id] = q  # re-inserted last: LRU order
        if embedding is not None and q.embedding is None:
            q.embedding = [float(v) for v in embedding]
        if arm == 0 and not q.suggested:
            q.candidates = [a for a in suggested_arms(nodes) if a not in q.candidates][:EXPLORED_ARMS]
            q.suggested = True
            if first:
                q.first_us = float(latency_us)
                self._transfer(query_id, q, embeddings)
        elif arm != 0 and arm not in q.candidates and not pinned:
            q.candidates.append(arm)  # a trial, or a decision from before a restart
        if not (first and arm == 0):
            # A query's first execution is usually its cold one (nothing of it in the buffer
            # cache yet): in the default's baseline it would make neutral arms look faster.
            s = q.stats.setdefault(arm, ArmStats())
            s.add(math.log(max(latency_us, 1.0)))
            s.keep(latency_us)
        q.record(Execution(_now_us() if at_us is None else int(at_us), arm, float(latency_us), False))
        base = q.baseline()
        if base is None:
            best = 0
        else:
            self._guard(q, base)
            early = q.own_baseline() is None  # (the pseudo-baseline: only the early arm competes)
            best = self._thompson(q, base, only=(q.early_arm(),) if early else None)
        self._note_verdict(query_id, q)
        if pinned:
            return None
        if best != q.arm or best != arm:
            q.arm = best
            return best
        return None

    def _transfer(self, query_id: int, q: QuerySteering, embeddings: Callable[[], dict[str, Any]] | None) -> None:
        """A new query: ask transfer for a first candidate (it goes to trial after this execution)."""
        if self.proposer is None:
            return
        if embeddings is not None:
            q.embeddings = {m: [float(v) for v in x] for m, x in embeddings().items()}
        proposal = self.proposer(query_id, q)
        if proposal is None:
            return
        q.candidates = [proposal.arm, *(a for a in q.candidates if a != proposal.arm)][:EXPLORED_ARMS]
        q.transferred = proposal.to_json()

    def _note_verdict(self, query_id: int, q: QuerySteering) -> None:
        if not q.voted and q.verdict() is not None:
            q.voted = True
            self.verdicts.append(query_id)

    @staticmethod
    def _guard(q: QuerySteering, base: ArmStats) -> None:
        """Ban an arm that was catastrophic once, or is not MIN_GAIN faster after GUARD_RUNS executions."""
        import math

        for a, s in q.stats.items():
            if a == 0 or a in q.banned or s.n == 0:
                continue
            if s.worst > base.mean + math.log(BAN_FACTOR) or (
                    s.n >= GUARD_RUNS and s.mean > base.mean - math.log1p(MIN_GAIN)):
                q.banned.add(a)

    def _thompson(self, q: QuerySteering, base: ArmStats, only: tuple[int | None, ...] | None = None) -> int:
        """The fastest posterior draw among the default and the arms in play (``only``: those alone)."""
        import math

        best, best_draw = 0, math.inf
        for a in [0, *q.candidates]:
            if a in q.banned or (self.require_trial and not q.tried(a)) or (a != 0 and only is not None
                                                                             and a not in only):
                continue
            mu, kappa, alpha, beta = q.stats.get(a, ArmStats()).posterior(base.mean)
            sigma2 = beta / float(self.rng.gamma(alpha))
            draw = float(self.rng.normal(mu, math.sqrt(sigma2 / kappa)))
            if draw < best_draw:
                best, best_draw = a, draw
        return best

    def wanted_trials(self) -> list[tuple[int, int, float]]:
        """(query id, arm, the default's time limit in microseconds) of the trials exploration waits for.

        One per query: its first candidate not tried yet, once the default
        has its BASELINE_RUNS executions.  A trial is paired: the worker runs
        the default plan first, cancelled at BAN_FACTOR times its users'
        mean (beyond that the machine is too busy to measure anything), then
        the arm, cancelled at :func:`trial_limit` of the default's trial time.
        """
        import math

        wanted: list[tuple[int, int, float]] = []
        if not self.require_trial:
            return wanted
        for query_id, q in self.queries.items():
            base = q.own_baseline()
            if q.untriable:
                continue
            if base is None:
                # before its baseline, only a transferred arm is tried, right after the first execution
                t = q.transferred_arm()
                if t is not None and q.first_us is not None and t not in q.banned and not q.tried(t):
                    wanted.append((query_id, t, trial_limit(q.first_us)))
                continue
            for a in q.candidates:
                if a not in q.banned and not q.tried(a):
                    wanted.append((query_id, a, trial_limit(math.exp(base.mean))))
                    break
        return wanted

    def trial_result(self, query_id: int, arm: int, latency_us: float | None, default_us: float, *,
                     at_us: int | None = None) -> int | None:
        """Record a trial of ``arm`` (None: cancelled at its limit) paired with the default's
        ``default_us`` just before; return the arm to publish if the decision must change.  An arm
        that finished within TRIAL_SLOWER times the default's trial is cleared for users, any other
        is banned.  The times are kept as evidence, not as samples (the worker is not a client);
        the series shows both runs, marked as trials, at ``at_us`` (now if not given)."""
        q = self.queries.get(query_id)
        if q is None or arm == 0 or arm not in q.candidates:
            return None
        q.trials[arm] = (latency_us, float(default_us))
        at = _now_us() if at_us is None else int(at_us)
        q.record(Execution(at, 0, float(default_us), True))
        q.record(Execution(at, arm, None if latency_us is None else float(latency_us), True))
        if latency_us is None or latency_us > TRIAL_SLOWER * default_us:
            q.banned.add(arm)
        else:
            q.cleared.add(arm)
        self._note_verdict(query_id, q)
        base = q.own_baseline()
        if base is None:
            # A transferred arm tried before the baseline: users get it at once if its trial was
            # clearly faster; the guard then judges it against the trials' defaults (baseline()).
            if arm == q.early_arm() and q.arm != arm:
                q.arm = arm
                return arm
            return None
        best = self._thompson(q, base)
        if best != q.arm:
            q.arm = best
            return best
        return None

    def untriable(self, query_id: int) -> None:
        """The statement of ``query_id`` cannot be tried: its untried arms stay out of play."""
        q = self.queries.get(query_id)
        if q is not None:
            q.untriable = True

    def is_untriable(self, query_id: int) -> bool:
        """Whether the statement of ``query_id`` was found untriable (a query not tracked is not)."""
        q = self.queries.get(query_id)
        return q is not None and q.untriable

    def is_banned(self, query_id: int, arm: int) -> bool:
        """Whether ``arm`` is banned for ``query_id``."""
        q = self.queries.get(query_id)
        return q is not None and arm in q.banned

    def texts_wanted(self) -> set[int]:
        """Query ids whose statement the worker asks for: steered ones whose text it has not taken."""
        return {query_id for query_id, q in self.queries.items() if q.wants_text()}

    def describe(self, query_id: int, text: str | None, userid: int) -> bool:
        """Keep the normalized text of ``query_id``'s statement if it is wanted; whether it was."""
        q = self.queries.get(query_id)
        if q is None or not q.wants_text():
            return False
        q.describe(text, userid)
        return True

    def decisions(self) -> dict[int, int]:
        """The arm in force of every query steered away from the default."""
        return {query_id: q.arm for query_id, q in self.queries.items() if q.arm != 0}

    def evidence(self, pattern_of: Any = None) -> list[dict[str, Any]]:
        """One row per (query, arm) seen: what the decisions rest on.

        ``pattern_of(embedding) -> pattern id or None`` names the learned
        pattern each query falls in now (patterns change every cycle).
        """
        import math

        rows = []
        for query_id, q in self.queries.items():
            pattern = pattern_of(q.embedding) if pattern_of is not None and q.embedding is not None else None
            # arms users ran, arms banned by their trial before any user did, and the arms in play
            # nobody ran yet (waiting for their trial: the DBA sees what is coming)
            arms = {**{a: ArmStats() for a in q.candidates}, **{a: ArmStats() for a in q.trials}, **q.stats}
            base = q.stats.get(0)
            transferred = q.transferred_arm()
            for a, s in sorted(arms.items()):
                rows.append({"query_id": signed_id(query_id), "arm": ARMS[a].name, "executions": s.n,
                             "mean_latency_us": math.exp(s.mean) if s.n else None,
                             "sd_log_latency": math.sqrt(s.m2 / (s.n - 1)) if s.n > 1 else None,
                             "banned": a in q.banned, "chosen": a == q.arm, "pattern_id": pattern,
                             "p95_latency_us": s.p95(), "state": q.state(a, self.require_trial),
                             # geometric means: the ratio of the medians under the log-normal model
                             "speedup": math.exp(base.mean - s.mean) if base is not None and base.n and s.n
                             else None,
                             "origin": None if a == 0 else "transfer" if a == transferred else "plan",
                             "transfer": q.transferred if a == transferred else None})
        return rows

    def steered_queries(self) -> list[dict[str, Any]]:
        """One row per steered query: its normalized text (None: not taken yet, or unparsable) and the role."""
        return [{"query_id": signed_id(query_id), "userid": q.userid, "query": q.text}
                for query_id, q in self.queries.items() if q.steered()]

    def executions(self) -> list[dict[str, Any]]:
        """The series of every steered query, one row per execution (oldest first per query)."""
        return [{"query_id": signed_id(query_id), "executed_at_us": e.at_us, "arm": ARMS[e.arm].name,
                 "latency_us": e.latency_us, "trial": e.trial}
                for query_id, q in self.queries.items() for e in q.series]

    def to_json(self) -> dict[str, Any]:
        return {str(k): v.to_json() for k, v in self.queries.items()}

    def load_json(self, d: dict[str, Any]) -> None:
        self.queries = {int(k): QuerySteering.from_json(v) for k, v in d.items()}
