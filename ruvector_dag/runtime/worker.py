"""The engine's side of the background worker.

``pgext/src/worker.c`` starts the embedded interpreter in the worker
process and calls the functions below, each inside a transaction of its
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

PostgreSQL is reached through ``_ruvector_pg``, a module the worker
builds in C (``pgext/src/pyworker.c``); it exists only in that process.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import numpy as np

from ..definitions.arms import ARMS, MAX_CAPTURE_RULES, SETTLE_MIN_US, SETTLE_RUNS
from ..definitions.errors import InvalidParameter, NotEnrolled
from ..engine import attention, clustering, features
from ..engine.learner import LearnerConfig, TableLearner
from ..engine.steering import trial_limit
from ..engine.trajectory import decode
from . import storage

#: Learners are saved at least this often while they learn (and after every
#: cycle or request, and at shutdown).
SAVE_INTERVAL_S = 60.0
#: Longest one drain() call runs (it returns to the worker's loop, which handles signals and requests).
DRAIN_MAX_S = 0.25
#: Most CPU seconds of learning the budget can save up while the server is idle (a burst allowance).
TOKENS_MAX_S = 0.1
#: Enrollments are re-read when the registry changes, and at least this often (config changes).
REFRESH_S = 5.0
#: How far into debt the budget goes for the statements of queries being steered.
PRIORITY_DEBT_S = 0.5
#: Time constant of the arrival-rate estimate behind the capture fraction, and how often it is updated.
RATE_TAU_S = 2.0
RATE_UPDATE_S = 0.5
#: Share of the budget's learning rate that sampling aims the arrivals at (headroom for bursts).
SAMPLE_HEADROOM = 0.8
#: Query ids whose rate is followed (the least frequent are forgotten beyond this).
MAX_RATED_QUERIES = 2000
#: Statement texts kept for trials at most (a text is dropped once its query wants no more trials).
MAX_TEXTS = 256
#: Executions of a query captured while its text is wanted, after which it counts as untriable
#: (its backends never offer it: parameters of user-defined types, a text too long, ...).
TEXT_WAIT_RUNS = 5
#: SQLSTATEs of a trial that failed for now (a lock, a cancel, a serialization failure): tried again later.
TRIAL_RETRY_SQLSTATES = frozenset({"55P03", "57014", "40001", "40P01", "53200"})
#: SQLSTATEs of a trial's own refusals (statements.c): their messages are logged
TRIAL_REFUSAL_SQLSTATES = frozenset({"0A000", "42501"})
#: Trials start only while this many CPUs were idle: the worker runs at nice 19, so on a saturated
#: machine a trial would measure the scheduler, not the plan (and ban good arms).
TRIAL_IDLE_CPUS = 0.5
#: ... on average over this time constant (a gap between two bursts of load is not idleness).
IDLE_TAU_S = 2.0
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
#: Flags of a capture rule (RVD_RULE_* in ruvector_dag.h): capture every execution; send the text.
RULE_EVERY = 1
RULE_WANT_TEXT = 2
#: Lowest capture fraction published (the first execution of each query, and steered ones, are always captured).
MIN_SAMPLE_FRACTION = 1e-6
#: Relative change of the capture fraction worth publishing (every statement reads it: write rarely).
FRACTION_STEP = 0.1
#: The capture fraction is logged when it changes by this factor, at most once per SAMPLE_LOG_S.
SAMPLE_LOG_FACTOR = 2.0
SAMPLE_LOG_S = 60.0

_pg: Any = None
_learners: dict[int, TableLearner] = {}
_tables: dict[int, tuple[str, dict[str, Any]]] = {}
_dirty: set[int] = set()
_consumed: dict[int, int] = {}
_tokens = 0.0  # CPU seconds of learning the budget allows now
_cost_s = 2e-4  # running mean CPU seconds per learned record (sizes the reads)
_last_drain = 0.0
_generation = -1  # enrollment registry generation _tables was read at
_last_refresh = 0.0
_last_save = 0.0
_fraction = 1.0  # capture fraction published to the backends
_rate = 0.0  # statements/s on enrolled tables (before sampling), smoothed over RATE_TAU_S
_query_rates: dict[int, float] = {}  # the same per query id (of the records learned from)
_pending_arrived = 0  # records, seconds and per-query records since the estimates were updated
_pending_elapsed = 0.0
_pending_queries: dict[int, int] = {}
_rules: dict[int, float] = {}  # the capture rules published
_wanted: set[int] = set()  # ... and the query ids whose text they ask for
_wanted_since: dict[int, float] = {}  # ... since when (Unix microseconds)
_texts: dict[int, bytes] = {}  # query id: its statement as offered (opaque: for _pg.trial)
_text_waits: dict[int, int] = {}  # executions captured since a query's text was asked for
_trial_ready_at = 0.0  # monotonic time the next trial may start (trials share the CPU budget)
_trials_waiting = False  # a trial's statement is held and waits for its turn (drain() says so)
_cpu_times: tuple[float, float] | None = None  # (all, idle) CPU seconds of the machine at the last drain
_idle_avg = 0.0  # idle CPUs, smoothed over IDLE_TAU_S
_idle_at = 0.0  # monotonic time of that estimate
_trial_backoff: dict[int, tuple[float, float]] = {}  # query id: (not before, last backoff) after a void trial
_logged_fraction = 1.0
_last_sample_log = -SAMPLE_LOG_S


def _execute(sql: str, params: tuple[str | None, ...] = ()) -> list[tuple[str | None, ...]]:
    rows: list[tuple[str | None, ...]] = _pg.execute(sql, params)
    return rows


def _setting(name: str) -> str:
    value: str | None = _pg.setting(name)
    return value or ""


def _warm_up() -> None:
    attention.warm_up()
    clustering.warm_up()
    features.warm_up()


def _refresh_tables() -> None:
    """Follow enrollments: new tables get a learner (reloaded if saved), dropped ones lose it."""
    global _tables
    if not storage.extension_installed(_execute):
        _tables = {}
    else:
        _tables = storage.enrolled_tables(_execute)
    for relid in list(_learners):
        if relid not in _tables:
            del _learners[relid]
            _dirty.discard(relid)
            _pg.forget(relid)
    for relid, (_, config) in _tables.items():
        cfg = LearnerConfig.from_enrollment(config)
        learner = _learners.get(relid)
        if learner is None:
            saved = storage.load_state(_execute, relid)
            learner = TableLearner.from_state_bytes(saved, cfg) if saved else TableLearner(relid, cfg, seed=relid)
            learner.steering.require_trial = _trials_on()
            _learners[relid] = learner
            # Shared memory starts empty: re-publish the decisions learned before.
            for query_id, q in learner.steering.queries.items():
                if q.arm != 0:
                    learner.pending_decisions[query_id] = q.arm
            _publish_decisions(learner)
            _publish(learner)
        elif learner.config != cfg:
            learner.reconfigure(cfg)
        learner.steering.require_trial = _trials_on()


def _trials_on() -> bool:
    return _setting("ruvector.dag_steering_trials") == "on"


def _publish_decisions(learner: TableLearner) -> None:
    pending, learner.pending_decisions = learner.pending_decisions, {}
    for query_id, arm in pending.items():
        try:
            _pg.set_decision(learner.relid, query_id, arm)
        except Exception as exc:  # the shared cache is full: the query keeps its plan, learning goes on
            _pg.log(f"steering decision for query {query_id} not published: {exc}")


def _publish(learner: TableLearner) -> None:
    c = learner.counters
    _pg.publish(learner.relid, _consumed.get(learner.relid, 0), c.processed, c.learned, c.hits,
                c.avg_latency_us, c.prediction_error, len(learner.bank.patterns), learner.ewc.tasks,
                c.cycles, c.last_cycle_ms, c.last_cycle_at_us, learner.current_mechanism())


def _save(relid: int, *, patterns: bool = False, history: list[Any] | None = None) -> None:
    learner = _learners[relid]
    name = _tables.get(relid, ("", {}))[0]
    if patterns:
        storage.save_patterns(_execute, learner, name)
        storage.save_pattern_nodes(_execute, learner)
    if history:
        storage.save_history(_execute, relid, name, history)
    storage.save_state(_execute, learner)
    storage.save_steering_evidence(_execute, learner)
    _dirty.discard(relid)


def _save_dirty() -> None:
    global _last_save
    for relid in list(_dirty):
        _save(relid)
    _last_save = time.monotonic()


# -- entry points called by worker.c ------------------------------------------

def start() -> str:
    """Warm the kernels and reload the learners; return the line the worker logs."""
    global _pg, _last_save
    import _ruvector_pg  # type: ignore[import-not-found]  # built by pyworker.c

    _pg = _ruvector_pg
    began = time.perf_counter()
    _warm_up()
    warm_ms = (time.perf_counter() - began) * 1000.0
    _learners.clear()
    _set_fraction(1.0)  # a restarted worker starts from capturing everything
    _pg.set_capture_rules(b"", b"", b"")
    _refresh_tables()
    _publish_capture_rules(set())
    _last_save = time.monotonic()
    return (f"engine ready: kernels warmed in {warm_ms:.0f} ms "
            f"(cache {os.environ.get('NUMBA_CACHE_DIR', 'in memory')}); "
            f"{len(_learners)} table(s) learning")


def capture_rules(policies: list[Any], settled_fraction: float,
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


def _publish_capture_rules(wanted: set[int]) -> None:
    """Tell capture which queries have their own fraction (steered ones: every execution), and
    whose text the worker wants (``wanted``: to try an arm on it)."""
    global _rules, _wanted
    rules = capture_rules([learner.steering for learner in _learners.values()],
                          float(_setting("ruvector.dag_capture_settled_fraction") or 1.0))
    # a text is asked for by a rule of its own where the query has none, as far as the limit allows
    wanted = (wanted & rules.keys()) | set(sorted(wanted - rules.keys())[:max(0, MAX_CAPTURE_RULES - len(rules))])
    if rules != _rules or wanted != _wanted:
        ids = sorted(rules.keys() | wanted)
        _pg.set_capture_rules(np.array(ids, dtype=np.uint64).tobytes(),
                              np.array([rules.get(i, 1.0) for i in ids], dtype=np.float64).tobytes(),
                              bytes((RULE_EVERY if rules.get(i) == 1.0 else 0) | (RULE_WANT_TEXT if i in wanted else 0)
                                    for i in ids))
        _rules, _wanted = rules, wanted
        now_us = time.time() * 1e6
        for qid in [q for q in _wanted_since if q not in wanted]:
            del _wanted_since[qid]
        for qid in wanted - _wanted_since.keys():
            _wanted_since[qid] = now_us


def idle_cpus(before: tuple[float, float] | None, after: tuple[float, float] | None, ncpu: int) -> float:
    """CPUs idle on average between two readings of :func:`_machine_cpu` (all of them when unknown)."""
    if before is None or after is None or after[0] <= before[0]:
        return float(ncpu)
    return ncpu * (after[1] - before[1]) / (after[0] - before[0])


def _machine_cpu() -> tuple[float, float] | None:
    """(all, idle) CPU time of the machine from /proc/stat (Linux), in jiffies; None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(fields[:8]), fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait


def _run_delay() -> float | None:
    """Seconds this process has waited for a CPU while runnable (Linux), or None."""
    try:
        with open("/proc/self/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def trial_failure(sqlstate: str, message: str) -> str:
    """How a failed trial is logged: its SQLSTATE, and its message only when it is one of the
    trial's own refusals (0A000, 42501: they name objects, never values); other messages may
    quote the user's constants."""
    if sqlstate in TRIAL_REFUSAL_SQLSTATES:
        return f"{message} (SQLSTATE {sqlstate})"
    return f"SQLSTATE {sqlstate or 'unknown'}"


def _paired_trial(learner: TableLearner, qid: int, arm: int,
                  default_limit_us: float) -> tuple[float | None, float | None, float]:
    """Run the default and then ``arm`` on the statement of ``qid``, back to back under the same
    conditions; (the default's microseconds, the arm's or None if cancelled, the arm's limit).
    The default's time is None when the pair tells nothing: it did not finish within its users'
    BAN_FACTOR x (a machine too busy), or the statement failed (then, unless the failure is a
    passing one, the query is untriable)."""
    statement = _texts[qid]
    limit_us = default_limit_us
    try:
        default_us = _pg.trial(statement, 0, max(1, round(default_limit_us / 1000.0)))
        if default_us is None:
            return None, None, limit_us
        limit_us = trial_limit(default_us)
        return default_us, _pg.trial(statement, arm, max(1, round(limit_us / 1000.0))), limit_us
    except _pg.Error as exc:
        sqlstate = getattr(exc, "sqlstate", "")
        if sqlstate not in TRIAL_RETRY_SQLSTATES:
            learner.steering.untriable(qid)
            _pg.log(f"query {qid} is not explored: its trial failed: {trial_failure(sqlstate, str(exc))}")
        return None, None, limit_us


def _trials(per_query: dict[int, int], share: float) -> set[int]:
    """Take the statement texts offered, run at most one trial, and return the query ids whose
    text is still wanted.

    A trial is a pair (:func:`_paired_trial`: the default, then the arm, each ``_pg.trial``:
    read-only, as the role that ran it, cancelled at its limit).  Trials take at most
    max(``share``, TRIAL_SHARE) of the worker's time on average and start only while
    TRIAL_IDLE_CPUS were idle over IDLE_TAU_S; one that told nothing backs off.  A query whose
    backends never offer its text (``per_query`` counts its executions captured meanwhile) or
    whose text fails to run is untriable.
    """
    global _trial_ready_at, _cpu_times, _idle_avg, _idle_at, _trials_waiting
    cpu_times, now = _machine_cpu(), time.monotonic()
    if cpu_times is None or _cpu_times is None:
        _idle_avg = idle_cpus(None, None, os.cpu_count() or 1)  # unknown: idle (not Linux), or the first reading
    else:
        alpha = 1.0 - math.exp(-max(now - _idle_at, 0.0) / IDLE_TAU_S)
        _idle_avg += alpha * (idle_cpus(_cpu_times, cpu_times, os.cpu_count() or 1) - _idle_avg)
    _cpu_times, _idle_at = cpu_times, now
    for qid, statement in _pg.take_statements():
        _texts.pop(qid, None)  # (re-inserted last: the oldest text goes first beyond MAX_TEXTS)
        _texts[qid] = bytes(statement)
    wanted: dict[int, tuple[TableLearner, int, float]] = {}
    for learner in _learners.values():
        for qid, arm, timeout_us in learner.steering.wanted_trials():
            wanted[qid] = (learner, arm, timeout_us)
    for qid in [q for q in _texts if q not in wanted]:
        del _texts[qid]  # (statements hold users' constants: keep them no longer than needed)
    while len(_texts) > MAX_TEXTS:
        del _texts[next(iter(_texts))]
    for qid in list(_text_waits):
        if qid not in wanted or qid in _texts:
            del _text_waits[qid]
    for qid in _wanted & wanted.keys():
        if qid not in _texts:
            _text_waits[qid] = _text_waits.get(qid, 0) + per_query.get(qid, 0)
            if _text_waits[qid] >= TEXT_WAIT_RUNS:
                wanted[qid][0].steering.untriable(qid)
                _dirty.add(wanted[qid][0].relid)
                _pg.log(f"query {qid} is not explored: its statement cannot be tried")
    for qid in [q for q in _trial_backoff if q not in wanted]:
        del _trial_backoff[qid]
    ready = [qid for qid in wanted if qid in _texts and now >= _trial_backoff.get(qid, (0.0, 0.0))[0]]
    if ready and now >= _trial_ready_at and _idle_avg >= TRIAL_IDLE_CPUS:
        qid = ready[0]
        learner, arm, default_limit_us = wanted[qid]
        began, delay = time.monotonic(), _run_delay()
        default_us, latency, limit_us = _paired_trial(learner, qid, arm, default_limit_us)
        took = time.monotonic() - began
        after = _run_delay()
        waited = after - delay if after is not None and delay is not None else 0.0
        _trial_ready_at = time.monotonic() + took * (1.0 / max(share, TRIAL_SHARE) - 1.0)
        if default_us is None or waited > TRIAL_STARVED_SHARE * took:
            if not learner.steering.queries[qid].untriable:  # (an untriable one: logged by _paired_trial)
                backoff = min(2.0 * _trial_backoff.get(qid, (0.0, TRIAL_BACKOFF_S / 2.0))[1], TRIAL_BACKOFF_MAX_S)
                _trial_backoff[qid] = (time.monotonic() + backoff, backoff)
                why = (f"waited {waited * 1000.0:.0f} ms of {took * 1000.0:.0f} for a CPU" if default_us is not None
                       else f"its default did not finish within {default_limit_us / 1000.0:.0f} ms")
                _pg.log(f"trial of arm {ARMS[arm].name} for query {qid} told nothing ({why}): "
                        f"tried again in {backoff:.0f} s")
        else:
            _trial_backoff.pop(qid, None)
            decision = learner.steering.trial_result(qid, arm, latency, default_us)
            if decision is not None:
                learner.pending_decisions[qid] = decision
            verdict = "banned" if arm in learner.steering.queries[qid].banned else "cleared"
            shown = "did not finish" if latency is None else f"{latency / 1000.0:.1f} ms"
            _pg.log(f"trial of arm {ARMS[arm].name} for query {qid}: {shown} (limit {limit_us / 1000.0:.1f} ms, "
                    f"default {default_us / 1000.0:.1f} ms), {verdict}")
        _dirty.add(learner.relid)
    _trials_waiting = any(qid in _texts for qid in wanted)
    return {qid for qid in wanted if qid not in _texts and not wanted[qid][0].steering.queries[qid].untriable}


def _set_fraction(fraction: float) -> None:
    global _fraction
    _fraction = fraction
    _pg.set_sample_fraction(fraction)


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


def _adapt_sampling(arrived: int, per_query: dict[int, int], elapsed: float, share: float,
                    query_rate: float) -> None:
    """Follow the statement rate and publish the capture fraction when it moved.

    ``arrived`` records reached the ring in ``elapsed`` seconds while the
    published fraction was in force (``per_query`` of them learned from, by
    query id), so statements arrived at about arrived / fraction / elapsed per
    second (an over-estimate by the records that are always kept, which errs
    on the side of sampling more); the same per query.  The estimates are
    smoothed over RATE_TAU_S.  Capture then keeps what the budget can learn
    from, and no more than is worth learning (``useful_rate``, ``query_rate``
    executions per second of each query).  The fraction
    follows the estimates without feedback (it is not derived from itself),
    so it cannot oscillate.
    """
    global _rate, _logged_fraction, _last_sample_log, _pending_arrived, _pending_elapsed
    _pending_arrived += arrived
    _pending_elapsed += elapsed
    for qid, n in per_query.items():
        _pending_queries[qid] = _pending_queries.get(qid, 0) + n
    if _pending_elapsed < RATE_UPDATE_S:
        return  # the estimates are updated a few times a second, not at every drain
    arrived, elapsed, per_query = _pending_arrived, _pending_elapsed, dict(_pending_queries)
    _pending_arrived, _pending_elapsed = 0, 0.0
    _pending_queries.clear()
    alpha = 1.0 - math.exp(-elapsed / RATE_TAU_S)
    scale = 1.0 / _fraction / elapsed
    _rate += alpha * (arrived * scale - _rate)
    for qid in _query_rates.keys() | per_query.keys():
        _query_rates[qid] = _query_rates.get(qid, 0.0) + alpha * (per_query.get(qid, 0) * scale
                                                                  - _query_rates.get(qid, 0.0))
    if len(_query_rates) > MAX_RATED_QUERIES:
        for qid in sorted(_query_rates, key=_query_rates.__getitem__)[:len(_query_rates) - MAX_RATED_QUERIES]:
            del _query_rates[qid]
    capacity = min(SAMPLE_HEADROOM * share / _cost_s, useful_rate(_query_rates, _rate, query_rate))
    target = sample_fraction(_rate, capacity)
    if abs(target - _fraction) > FRACTION_STEP * _fraction or (target == 1.0) != (_fraction == 1.0):
        _set_fraction(target)
    now = time.monotonic()
    ratio = max(_fraction, _logged_fraction) / min(_fraction, _logged_fraction)
    if ratio >= SAMPLE_LOG_FACTOR and now - _last_sample_log >= SAMPLE_LOG_S:
        _pg.log(f"capturing {_fraction:.2%} of statements on enrolled tables "
                f"(about {_rate:.0f}/s arrive, {len(_query_rates)} distinct queries; "
                f"learning from {capacity:.0f}/s)")
        _logged_fraction, _last_sample_log = _fraction, now


def drain() -> str | None:
    """Run the instant loop over what the ring holds, within the CPU budget.

    The ring is always emptied, so capture never drops because the worker is
    busy.  What is learned from is bounded by ``ruvector.dag_worker_cpu_percent``
    of one CPU, a token bucket of CPU seconds: while tokens last, records are
    read and learned; when they run out, records are consumed in C without
    being copied (``skip_ring``), except those of queries being steered, which
    are still learned from until the debt reaches PRIORITY_DEBT_S.  A call
    returns after DRAIN_MAX_S, so the worker's loop stays responsive to
    signals and requests under any load.  Returns "trials" while a trial
    waits for its turn (worker.c then calls again at its next poll even if no
    record arrives).
    """
    global _tokens, _last_drain, _cost_s, _generation, _last_refresh
    now = time.monotonic()
    cpu_start = time.process_time()
    generation = _pg.generation()
    if generation != _generation or now - _last_refresh >= REFRESH_S:
        _generation, _last_refresh = generation, now
        _refresh_tables()
    share = float(_setting("ruvector.dag_worker_cpu_percent")) / 100.0
    elapsed = now - _last_drain
    _tokens = min(_tokens + elapsed * share, TOKENS_MAX_S)
    _last_drain = now
    # over the budget, skip_ring keeps the records of the queries captured at every execution
    keep = np.array(sorted(q for q, f in _rules.items() if f >= 1.0), dtype=np.uint64).tobytes()
    arrived = 0
    per_query: dict[int, int] = {}
    # executions captured since their text was asked for: records captured before (drained late,
    # e.g. while the engine warmed up) could not have offered it
    waited: dict[int, int] = {}
    touched: set[int] = set()  # tables learned from
    counted: set[int] = set()  # tables whose records were only consumed (over the budget)
    while time.monotonic() - now < DRAIN_MAX_S:
        if _tokens > 0.0:
            data = _pg.read_ring(int(min(_pg.READ_RING_MAX, max(1.0, _tokens / _cost_s))))
        else:
            skipped = np.frombuffer(_pg.skip_ring(_pg.READ_RING_MAX, keep if _tokens > -PRIORITY_DEBT_S else b""),
                                    dtype=np.uint32)
            arrived += len(skipped)
            for relid, n in zip(*np.unique(skipped, return_counts=True)):
                _consumed[int(relid)] = _consumed.get(int(relid), 0) + int(n)
                counted.add(int(relid))
            if len(skipped):
                continue
            data = _pg.read_ring(1)  # empty, or a steered query's record is next
        if not data:
            break
        t0 = time.process_time()
        batch = decode(data)
        arrived += len(batch)
        for t in batch:
            per_query[t.query_id] = per_query.get(t.query_id, 0) + 1
            if t.captured_at_us >= _wanted_since.get(t.query_id, math.inf):
                waited[t.query_id] = waited.get(t.query_id, 0) + 1
            _consumed[t.relid] = _consumed.get(t.relid, 0) + 1
            learner = _learners.get(t.relid)
            if learner is None:
                continue  # enrolled and dropped again since it was captured
            learner.process(t)
            touched.add(t.relid)
        spent = time.process_time() - t0
        _tokens -= spent
        _cost_s = 0.9 * _cost_s + 0.1 * max(spent / len(batch), 1e-6)
        cpu_start += spent  # charged already
    _adapt_sampling(arrived, per_query, elapsed, share, float(_setting("ruvector.dag_learn_query_rate")))
    trial_cpu = time.process_time()
    wanted = _trials(waited, share)  # a trial's CPU is bounded by its own allowance, not the tokens
    cpu_start += time.process_time() - trial_cpu
    _publish_capture_rules(wanted)  # now: with sampling, the next record of a query just found may never come otherwise
    for relid in _learners.keys() - touched:
        if _learners[relid].pending_decisions:
            touched.add(relid)  # a trial's decision
    for relid in touched | (counted & _learners.keys()):
        _publish(_learners[relid])  # the consumed count too, so trajectories_buffered stays true
        _publish_decisions(_learners[relid])
    _dirty.update(touched)
    _tokens -= time.process_time() - cpu_start  # the rest of the call (skipping, bookkeeping) counts too
    if time.monotonic() - _last_save >= SAVE_INTERVAL_S:
        _save_dirty()
    return "trials" if _trials_waiting else None  # worker.c drains again at its next poll, records or not


def _cycle(relid: int, k: int | None = None) -> dict[str, Any]:
    learner = _learners[relid]
    answer, history = learner.cycle(k)
    if answer["success"]:
        _save(relid, patterns=True, history=history)
    _publish(learner)
    return answer


def background_cycle() -> str | None:
    """The periodic cycle of every enrolled table; one log line per table."""
    drain()
    lines = []
    for relid in sorted(_learners):
        answer = _cycle(relid)
        name = _tables.get(relid, ("?", {}))[0]
        if answer["success"]:
            lines.append(f"learning cycle for {name}: {answer['trajectories_processed']} trajectories, "
                         f"{answer['patterns_extracted']} patterns, {answer['duration_ms']:.1f} ms")
        else:
            lines.append(f"learning cycle for {name} skipped: {answer['reason']}")
    _save_dirty()
    return "\n".join(lines) or None


def request(kind: str, relid: int, int_arg: int, real_arg: float) -> str:
    """Serve a session's request (ruvector_dag_learn and friends); returns JSON."""
    mode = _setting("ruvector.dag_learning_mode")
    if kind in ("learn", "extract"):
        if mode != "learn":
            drain_answer: dict[str, Any] = {"success": False, "skipped": True,
                                             "reason": f"ruvector.dag_learning_mode is {mode}", "trajectory_count": 0}
            return json.dumps(drain_answer)
        drain()
    else:
        _refresh_tables()
    if relid not in _learners:
        raise NotEnrolled(f"table {relid} is not enrolled (or its enrollment is not committed yet)")
    if kind in ("learn", "extract"):
        answer = _cycle(relid, int_arg if int_arg > 0 else None)
    elif kind == "consolidate":
        threshold = 0.95 if math.isnan(real_arg) else real_arg
        merged = _learners[relid].consolidate(threshold)
        _save(relid, patterns=True)
        _publish(_learners[relid])
        answer = {"merged": merged, "patterns": len(_learners[relid].bank.patterns)}
    else:
        raise InvalidParameter(f"unknown request kind {kind!r}")
    _save_dirty()
    return json.dumps(answer)


def stop() -> None:
    """SIGTERM: save every learner."""
    if _pg is not None:
        for relid in list(_learners):
            _dirty.add(relid)
        _save_dirty()
