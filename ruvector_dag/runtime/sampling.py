"""What capture keeps: the statement-rate estimate, the capture fraction it sets, and the per-query capture rules."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..definitions.arms import MAX_CAPTURE_RULES, SETTLE_MIN_US, SETTLE_RUNS
from ..definitions.seam import PgModule, RuleFlag

#: Time constant of the arrival-rate estimate behind the capture fraction, and how often it is updated.
RATE_TAU_S = 2.0
RATE_UPDATE_S = 0.5
#: Share of the budget's learning rate that sampling aims the arrivals at (headroom for bursts).
SAMPLE_HEADROOM = 0.8
#: Query ids whose rate is followed (the least frequent are forgotten beyond this).
MAX_RATED_QUERIES = 2000
#: Lowest capture fraction published (the first execution of each query, and steered ones, are always captured).
MIN_SAMPLE_FRACTION = 1e-6
#: Relative change of the capture fraction worth publishing (every statement reads it: write rarely).
FRACTION_STEP = 0.1
#: The capture fraction is logged when it changes by this factor, at most once per SAMPLE_LOG_S.
SAMPLE_LOG_FACTOR = 2.0
SAMPLE_LOG_S = 60.0


def sample_fraction(rate: float, capacity: float) -> float:
    """The capture fraction that brings statements arriving at ``rate``/s down to ``capacity`` records/s."""
    if rate <= capacity * (1.0 + 1e-9):  # (rounding: a useful rate summed from the same rates)
        return 1.0
    return float(max(MIN_SAMPLE_FRACTION, capacity / rate))


def useful_rate(query_rates: dict[int, float], total: float, per_query: float) -> float:
    """Records/s worth learning from: each query's rate, capped at ``per_query``
    (``ruvector.dag_learn_query_rate``: pgbench's 60 000 identical statements/s teach
    nothing that 2/s, 7 200 an hour, do not; steered queries are watched, exempt).

    ``query_rates`` come from the records learned from; ``total`` counts
    those consumed unread too (over the budget), which are taken to follow
    the same mix of queries (all of them count when no query is known yet).
    """
    known = sum(query_rates.values())
    if known <= 0.0:
        return float(total)
    scale = max(1.0, total / known)
    return float(sum(min(r * scale, per_query) for r in query_rates.values()))


def capture_rules(policies: Iterable[Any], settled_fraction: float,
                  limit: int = MAX_CAPTURE_RULES) -> dict[int, float]:
    """Per-query capture fractions for the backends (``SteeringPolicy`` objects in).

    Queries being steered: 1.0, every execution (exploration and the guard
    need them all).  Settled queries, whose arm has SETTLE_RUNS executions
    averaging SETTLE_MIN_US or more: ``settled_fraction``; on a long
    analytic query row instrumentation costs a few per cent, and what its
    executions teach the engine has been learned.  Steered ones first, then
    the slowest settled ones, at most ``limit``.
    """
    steered: list[int] = []
    settled: list[tuple[float, int]] = []
    for policy in policies:
        for qid, q in policy.queries.items():
            if q.exploring(policy.require_trial):
                steered.append(qid)
            elif settled_fraction < 1.0:
                s = q.stats.get(q.arm)
                if s is not None and s.n >= SETTLE_RUNS and math.exp(s.mean) >= SETTLE_MIN_US:
                    settled.append((s.mean, qid))
    rules = {qid: 1.0 for qid in steered[:limit]}
    for _, qid in sorted(settled, reverse=True)[:max(0, limit - len(rules))]:
        rules[qid] = settled_fraction
    return rules


class Sampler:
    """The capture fraction published to the backends, following the statement rate to the budget."""

    def __init__(self, pg: PgModule) -> None:
        self.pg = pg
        self.fraction = 1.0  # capture fraction published to the backends
        self.rate = 0.0  # statements/s on enrolled tables (before sampling), smoothed over RATE_TAU_S
        self.query_rates: dict[int, float] = {}  # the same per query id (of the records learned from)
        self.pending_arrived = 0  # records, seconds and per-query records since the estimates were updated
        self.pending_elapsed = 0.0
        self.pending_queries: dict[int, int] = {}
        self.logged_fraction = 1.0
        self.last_log = -SAMPLE_LOG_S

    def set_fraction(self, fraction: float) -> None:
        self.fraction = fraction
        self.pg.set_sample_fraction(fraction)

    def adapt(self, arrived: int, per_query: dict[int, int], elapsed: float, share: float,
              query_rate: float, cost_s: float) -> None:
        """Follow the statement rate and publish the capture fraction when it moved.

        ``arrived`` records reached the ring in ``elapsed`` seconds while the
        published fraction was in force (``per_query`` of them learned from, by
        query id), so statements arrived at about arrived / fraction / elapsed per
        second (an over-estimate by the records that are always kept, which errs
        on the side of sampling more); the same per query.  The estimates are
        smoothed over RATE_TAU_S.  Capture then keeps what the budget (``share``
        of a CPU at ``cost_s`` per record) can learn from, and no more than is
        worth learning (``useful_rate``, ``query_rate`` executions per second of
        each query).  The fraction follows the estimates without feedback (it is
        not derived from itself), so it cannot oscillate.
        """
        self.pending_arrived += arrived
        self.pending_elapsed += elapsed
        for qid, n in per_query.items():
            self.pending_queries[qid] = self.pending_queries.get(qid, 0) + n
        if self.pending_elapsed < RATE_UPDATE_S:
            return  # the estimates are updated a few times a second, not at every drain
        arrived, elapsed, per_query = self.pending_arrived, self.pending_elapsed, dict(self.pending_queries)
        self.pending_arrived, self.pending_elapsed = 0, 0.0
        self.pending_queries.clear()
        alpha = 1.0 - math.exp(-elapsed / RATE_TAU_S)
        scale = 1.0 / self.fraction / elapsed
        self.rate += alpha * (arrived * scale - self.rate)
        rates = self.query_rates
        for qid in rates.keys() | per_query.keys():
            rates[qid] = rates.get(qid, 0.0) + alpha * (per_query.get(qid, 0) * scale - rates.get(qid, 0.0))
        if len(rates) > MAX_RATED_QUERIES:
            for qid in sorted(rates, key=rates.__getitem__)[:len(rates) - MAX_RATED_QUERIES]:
                del rates[qid]
        capacity = min(SAMPLE_HEADROOM * share / cost_s, useful_rate(rates, self.rate, query_rate))
        target = sample_fraction(self.rate, capacity)
        if abs(target - self.fraction) > FRACTION_STEP * self.fraction or (target == 1.0) != (self.fraction == 1.0):
            self.set_fraction(target)
        now = time.monotonic()
        ratio = max(self.fraction, self.logged_fraction) / min(self.fraction, self.logged_fraction)
        if ratio >= SAMPLE_LOG_FACTOR and now - self.last_log >= SAMPLE_LOG_S:
            self.pg.log(f"capturing {self.fraction:.2%} of statements on enrolled tables "
                        f"(about {self.rate:.0f}/s arrive, {len(rates)} distinct queries; "
                        f"learning from {capacity:.0f}/s)")
            self.logged_fraction, self.last_log = self.fraction, now


class CaptureRules:
    """The per-query capture rules published to the backends, and the statement texts they ask for."""

    def __init__(self, pg: PgModule) -> None:
        self.pg = pg
        self.rules: dict[int, float] = {}  # the capture rules published
        self.wanted: set[int] = set()  # ... and the query ids whose text they ask for
        self.wanted_since: dict[int, float] = {}  # ... since when (Unix microseconds)

    def clear(self) -> None:
        """Publish no rule (a restarted worker starts from none)."""
        self.pg.set_capture_rules(b"", b"", b"")

    def kept(self) -> bytes:
        """Query ids (uint64) captured at every execution: over the budget, skip_ring keeps their records."""
        return np.array(sorted(q for q, f in self.rules.items() if f >= 1.0), dtype=np.uint64).tobytes()

    def publish(self, policies: Iterable[Any], settled_fraction: float, wanted: set[int]) -> None:
        """Tell capture which queries have their own fraction (steered ones: every execution), and
        whose text the worker wants (``wanted``: to try an arm on it)."""
        rules = capture_rules(policies, settled_fraction)
        # a text is asked for by a rule of its own where the query has none, as far as the limit allows
        wanted = (wanted & rules.keys()) | set(sorted(wanted - rules.keys())[:max(0, MAX_CAPTURE_RULES - len(rules))])
        if rules != self.rules or wanted != self.wanted:
            ids = sorted(rules.keys() | wanted)
            flags = bytes((RuleFlag.EVERY if rules.get(i) == 1.0 else 0) | (RuleFlag.WANT_TEXT if i in wanted else 0)
                          for i in ids)
            self.pg.set_capture_rules(np.array(ids, dtype=np.uint64).tobytes(),
                                      np.array([rules.get(i, 1.0) for i in ids], dtype=np.float64).tobytes(), flags)
            self.rules, self.wanted = rules, wanted
            now_us = time.time() * 1e6
            for qid in [q for q in self.wanted_since if q not in wanted]:
                del self.wanted_since[qid]
            for qid in wanted - self.wanted_since.keys():
                self.wanted_since[qid] = now_us
