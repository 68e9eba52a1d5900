"""What the engine learns about one enrolled table.

:class:`TableLearner` is the engine's unit of learning, free of any
PostgreSQL dependency (the worker glue is :mod:`ruvector_dag.runtime.worker`), so
unit tests drive it with synthetic trajectories.

Instant loop (:meth:`TableLearner.process`, every captured statement):

1. latency = planning + execution time; y = log(latency in us).
2. The plan is embedded with the canonical mechanism
   (:data:`CANONICAL_MECHANISM`) and matched against the bank: nearest
   pattern, and whether it is a *hit* (within the pattern's radius).
3. The attention selector picks the mechanism that pools the plan for the
   latency model: Thompson sampling over the mechanisms with the pattern's
   own posterior (a table-wide one before the first cycle), or the
   mechanism forced by ``dag_attention_type``.  Its reward is
   exp(-|prediction error|) in [0, 1]: the mechanism under which the model
   predicts this pattern's latency best wins.
4. Quality (:func:`ruvector_dag.engine.features.quality`) against the running
   typical latency of the same query id.  At or above
   ``dag_quality_threshold`` the trajectory is *learned*: one MicroLoRA
   step at ``dag_learning_rate``, proximal under EWC++ (which watches the
   loss for task boundaries), and the embedding joins the batch of the next
   background cycle.

Background cycle (:meth:`TableLearner.cycle`): the bank's weighted
k-means++ over the batch and the existing patterns (anchored by EWC's
lambda), then consolidation of near-duplicate patterns.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from ..definitions import settings
from ..definitions.errors import InvalidParameter
from ..definitions.seam import AnswerField
from ..definitions.validation import POSITIVE_INT, RATE, Options, validate
from . import features
from .bandit import ThompsonBandit
from .bank import CycleResult, Pattern, ReasoningBank
from .ewc import OnlineEWC
from .lora import MicroLoRA
from .mincut import plan_cut
from .steering import SteeringPolicy
from .trajectory import Trajectory, node_dtype
from .transfer import ArmTransfer, Proposal, TransferConfig, Voter

#: Mechanism of the embedding that identifies patterns (clustering, hits).
CANONICAL_MECHANISM = "topological"
#: The cycle merges patterns at least this similar (cosine of centroids).
CYCLE_CONSOLIDATION_THRESHOLD = 0.99
#: Weight of a new latency in the running typical latency of its query id.
REFERENCE_RATE = 0.1
#: Query ids whose typical latency is remembered (least recently seen go first).
MAX_REFERENCES = 10_000
#: Trajectories of each cycle kept in ruvector_dag.trajectory_history.
HISTORY_PER_CYCLE = 200
#: State format version (ruvector_dag.engine_state.state).
STATE_VERSION = 1


@dataclass(frozen=True)
class LearnerConfig:
    """The per-table settings the learner uses (keys of the enrollment config, without ``dag_``).

    Defaults are the settings' defaults (ruvector_dag/definitions/settings.py, the one definition).
    """

    learning_rate: float = settings.default_of("dag_learning_rate")
    pattern_clusters: int = settings.default_of("dag_pattern_clusters")
    quality_threshold: float = settings.default_of("dag_quality_threshold")
    attention_type: str = settings.default_of("dag_attention_type")
    attention_exploration: float = settings.default_of("dag_attention_exploration")
    ewc_lambda: float = settings.default_of("dag_ewc_lambda")
    ewc_max_lambda: float = settings.default_of("dag_ewc_max_lambda")

    def __post_init__(self) -> None:
        validate("attention_type", self.attention_type, Options(("auto", *features.MECHANISMS)))
        validate("learning_rate", self.learning_rate, RATE)
        validate("pattern_clusters", self.pattern_clusters, POSITIVE_INT)

    @classmethod
    def from_enrollment(cls, config: dict[str, Any]) -> LearnerConfig:
        """From the merged config stored in ruvector_dag.enrolled_tables (keys ``dag_*``)."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            key = f"dag_{f.name}"
            if key in config:
                kwargs[f.name] = type(getattr(cls, f.name))(config[key])
        return cls(**kwargs)


@dataclass
class Outcome:
    """What the instant loop did with one trajectory."""

    pattern_id: int | None
    hit: bool
    learned: bool
    mechanism: str
    quality: float
    prediction: float  # predicted log latency, before the update


@dataclass
class Counters:
    processed: int = 0
    learned: int = 0
    hits: int = 0
    latency_sum_us: float = 0.0
    abs_error_sum: float = 0.0  # |log latency error| of the predictions, summed
    cycles: int = 0
    last_cycle_ms: float = 0.0
    last_cycle_at_us: int = 0  # Unix microseconds

    @property
    def avg_latency_us(self) -> float:
        return self.latency_sum_us / self.processed if self.processed else 0.0

    @property
    def prediction_error(self) -> float:
        return self.abs_error_sum / self.processed if self.processed else 0.0


@dataclass
class Batch:
    """Trajectories learned since the last cycle."""

    X: list[np.ndarray] = field(default_factory=list)
    latency_us: list[float] = field(default_factory=list)
    quality: list[float] = field(default_factory=list)
    query_id: list[int] = field(default_factory=list)
    mechanism: list[str] = field(default_factory=list)
    nodes: list[np.ndarray] = field(default_factory=list)  # the plans, for exemplars and MinCut

    def __len__(self) -> int:
        return len(self.X)

    def clear(self) -> None:
        for f in fields(self):
            getattr(self, f.name).clear()


@dataclass(frozen=True)
class HistoryRow:
    trajectory_id: int
    embedding: np.ndarray
    mechanism: str
    latency_us: float
    quality: float
    query_id: int
    pattern_id: int
    max_criticality: float


def _state_part(meta: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
    """One part's state dict as state_bytes split it: its scalars (in meta) and its arrays (``prefix.*``)."""
    state: dict[str, Any] = dict(meta[prefix])
    state.update({k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith(prefix + ".")})
    return state


def _pack(plans: Sequence[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """Plans (or None) as one node array and offsets (-1 marks None): savable without pickle."""
    parts = [p for p in plans if p is not None]
    nodes = np.concatenate(parts) if parts else np.zeros(0, dtype=node_dtype())
    offsets, at = [], 0
    for p in plans:
        offsets.append((at, -1) if p is None else (at, at + len(p)))
        at += 0 if p is None else len(p)
    return nodes, np.array(offsets, dtype=np.int64).reshape(-1, 2)


def _unpack(nodes: np.ndarray, offsets: np.ndarray) -> list[np.ndarray | None]:
    return [None if end < 0 else nodes[start:end].copy() for start, end in offsets]


class TableLearner:
    """Latency model, pattern bank and attention selector of one table."""

    def __init__(self, relid: int, config: LearnerConfig | None = None, seed: int = 0) -> None:
        self.relid = relid
        self.config = config or LearnerConfig()
        self.mechanisms: tuple[str, ...] = tuple(features.MECHANISMS)
        self.model = MicroLoRA(dim=features.EMBEDDING_DIM, rank=2, learning_rate=self.config.learning_rate,
                               seed=seed)
        self.ewc = OnlineEWC(self.model.n_params, lambda_=self.config.ewc_lambda,
                             lambda_max=max(self.config.ewc_max_lambda, self.config.ewc_lambda),
                             blocks=self.model.param_blocks)
        self.bank = ReasoningBank(features.EMBEDDING_DIM, n_arms=len(self.mechanisms),
                                  exploration=self.config.attention_exploration)
        self.selector = ThompsonBandit(len(self.mechanisms), exploration=self.config.attention_exploration)
        self.references: dict[int, float] = {}
        self.counters = Counters()
        self.batch = Batch()
        self.rng = np.random.default_rng(seed)
        self.trajectories_seen = 0  # ids for trajectory_history
        self.steering = SteeringPolicy(seed)
        self.transfer = ArmTransfer(features.EMBEDDING_DIM, self.mechanisms, CANONICAL_MECHANISM, seed=seed)
        self.set_transfer(TransferConfig())
        self.pending_decisions: dict[int, int] = {}  # query id -> arm, for the worker to publish

    def set_transfer(self, config: TransferConfig) -> None:
        """Transfer's switches (ruvector.dag_transfer*): what a new query's first candidate may come from."""
        self.transfer.config = config
        self.steering.proposer = self._propose if config.enabled else None

    def voters(self) -> list[Voter]:
        """The steered queries with a verdict and embeddings: what transfer proposes from."""
        out = []
        for qid, q in self.steering.queries.items():
            good = q.verdict()
            if good is None:
                continue
            # (a query not steered saves only its canonical embedding: a vote for the default all the same)
            embeddings = q.embeddings or ({CANONICAL_MECHANISM: q.embedding} if q.embedding is not None else None)
            if embeddings:
                out.append(Voter(qid, {m: np.asarray(x) for m, x in embeddings.items()}, good))
        return out

    def _propose(self, query_id: int, q: Any) -> Proposal | None:
        if not q.embeddings:  # (computed by observe() before it asks: only a state of before 0.7.0 lacks them)
            return None
        voters = [v for v in self.voters() if v.query_id != query_id]
        return self.transfer.propose(self.bank, {m: np.asarray(x) for m, x in q.embeddings.items()}, voters)

    def learn_verdicts(self) -> None:
        """Transfer learns from the queries whose verdict appeared (the policy notes them)."""
        pending, self.steering.verdicts = self.steering.verdicts, []
        if not pending:
            return
        voters = self.voters()
        by_id = {v.query_id: v for v in voters}
        for qid in pending:
            if qid in by_id:
                self.transfer.learn(self.bank, by_id[qid], voters)

    def republish_decisions(self) -> None:
        """Queue every decision in force for publishing again (shared memory starts empty)."""
        self.pending_decisions.update(self.steering.decisions())

    # -- configuration ------------------------------------------------------

    def reconfigure(self, config: LearnerConfig) -> None:
        """Apply changed settings without losing what was learned."""
        self.config = config
        self.model.learning_rate = config.learning_rate
        self.ewc.lambda_max = max(config.ewc_max_lambda, config.ewc_lambda)
        self.ewc.lambda_ = min(max(self.ewc.lambda_, config.ewc_lambda), self.ewc.lambda_max)
        self.bank.exploration = config.attention_exploration
        self.selector.exploration = config.attention_exploration
        for p in self.bank.patterns.values():
            p.bandit.exploration = config.attention_exploration

    # -- instant loop -------------------------------------------------------

    def _choose(self, bandit: ThompsonBandit) -> int:
        forced = self.config.attention_type
        if forced != "auto":
            return self.mechanisms.index(forced)
        return bandit.choose(self.rng)

    def _quality(self, query_id: int, latency_us: float) -> float:
        log_lat = math.log(max(latency_us, 1.0))
        ref = self.references.pop(query_id, None)  # re-inserted last: LRU order
        q = features.quality(max(latency_us, 1.0), math.exp(ref) if ref is not None else max(latency_us, 1.0))
        self.references[query_id] = log_lat if ref is None else (1 - REFERENCE_RATE) * ref + REFERENCE_RATE * log_lat
        if len(self.references) > MAX_REFERENCES:
            del self.references[next(iter(self.references))]
        return q

    def pattern_of(self, embedding: Any) -> int | None:
        """Id of the learned pattern nearest to a plan embedding (None while there are none)."""
        pattern, _ = self.bank.match(np.asarray(embedding, dtype=np.float64))
        return pattern.id if pattern is not None else None

    def process(self, t: Trajectory) -> Outcome:
        latency = max(t.planning_us + t.execution_us, 0.0)
        y = math.log(max(latency, 1.0))
        x0 = features.embed(t.nodes, CANONICAL_MECHANISM)
        pattern, hit = self.bank.match(x0)
        bandit = pattern.bandit if pattern is not None else self.selector
        arm = self._choose(bandit)
        mechanism = self.mechanisms[arm]
        x = x0 if mechanism == CANONICAL_MECHANISM else features.embed(t.nodes, mechanism)
        prediction = float(self.model.predict(x))
        error = abs(prediction - y)
        bandit.update(arm, math.exp(-error))
        if bandit is not self.selector:
            self.selector.update(arm, math.exp(-error))  # the table-wide view, for new patterns
        quality = self._quality(t.query_id, latency)
        if t.cmd_type == 1 and t.nesting_level == 0:  # steer top-level SELECTs only
            nodes = t.nodes
            decision = self.steering.observe(
                t.query_id, t.arm, latency, nodes, pinned=t.pinned, embedding=x0, at_us=t.captured_at_us,
                embeddings=lambda: {m: x0 if m == CANONICAL_MECHANISM else features.embed(nodes, m)
                                    for m in (self.mechanisms if self.transfer.config.attention
                                              else (CANONICAL_MECHANISM,))})
            if decision is not None:
                self.pending_decisions[t.query_id] = decision
            while self.steering.retired:
                self.pending_decisions[self.steering.retired.pop()] = 0
            self.learn_verdicts()

        c = self.counters
        c.processed += 1
        c.hits += int(hit)
        c.latency_sum_us += latency
        c.abs_error_sum += error if c.processed > 1 else 0.0  # the first has nothing to predict from
        learned = quality >= self.config.quality_threshold
        if learned:
            before = self.model.params()
            loss = self.model.update(x, y, self.ewc)
            self.ewc.observe_loss(loss, before)
            c.learned += 1
            b = self.batch
            b.X.append(x0)
            b.latency_us.append(latency)
            b.quality.append(quality)
            b.query_id.append(t.query_id)
            b.mechanism.append(mechanism)
            b.nodes.append(t.nodes)
        return Outcome(pattern.id if pattern is not None else None, hit, learned, mechanism, quality, prediction)

    # -- background cycle ---------------------------------------------------

    def cycle(self, k: int | None = None) -> tuple[dict[str, Any], list[HistoryRow]]:
        """Extract patterns from the batch; returns the spec's answer and a history sample."""
        n = len(self.batch)
        if n == 0 and k is not None and self.bank.patterns:
            return self._reextract(k), []
        if n == 0:
            return ({AnswerField.SUCCESS: False, AnswerField.SKIPPED: True,
                     AnswerField.REASON: "no trajectories learned since the last cycle",
                     AnswerField.TRAJECTORY_COUNT: 0}, [])
        began = time.perf_counter()
        X = np.vstack(self.batch.X)
        lat = np.asarray(self.batch.latency_us)
        qual = np.asarray(self.batch.quality)
        result: CycleResult = self.bank.cycle(X, lat, qual, k=k or self.config.pattern_clusters,
                                              anchor_strength=self.ewc.lambda_ / self.ewc.lambda_ref,
                                              seed=self.counters.cycles, plans=self.batch.nodes)
        retired = set(result.retired)
        merged = self.bank.consolidate(CYCLE_CONSOLIDATION_THRESHOLD)
        retired.update(merged)
        # A pattern merged away hands its trajectories to the one that absorbed it.
        labels = result.new_labels.copy()
        if merged:
            for i, pid in enumerate(labels):
                if int(pid) not in self.bank.patterns:
                    labels[i] = self.bank.match(X[i])[0].id  # type: ignore[union-attr]
        self.learn_verdicts()
        self.transfer.end_cycle()
        self.ewc.end_cycle(self.model.params())  # (the first patterns are the first task)

        take: np.ndarray = self.rng.choice(n, size=min(n, HISTORY_PER_CYCLE), replace=False)
        history = [HistoryRow(self.trajectories_seen + int(i) + 1, X[i], self.batch.mechanism[i], float(lat[i]),
                              float(qual[i]), int(self.batch.query_id[i]), int(labels[i]),
                              float(plan_cut(self.batch.nodes[i]).criticality.max(initial=0.0)))
                   for i in sorted(take)]
        self.trajectories_seen += n
        self.batch.clear()
        elapsed_ms = (time.perf_counter() - began) * 1000.0
        c = self.counters
        c.cycles += 1
        c.last_cycle_ms = elapsed_ms
        c.last_cycle_at_us = int(time.time() * 1e6)
        return ({AnswerField.SUCCESS: True, AnswerField.TRAJECTORIES_PROCESSED: n,
                 AnswerField.PATTERNS_EXTRACTED: len(self.bank.patterns), AnswerField.PATTERNS_RETIRED: len(retired),
                 AnswerField.DURATION_MS: round(elapsed_ms, 3), AnswerField.EWC_TASKS: self.ewc.tasks,
                 AnswerField.EWC_LAMBDA: self.ewc.lambda_}, history)

    def _reextract(self, k: int) -> dict[str, Any]:
        """Re-extract the patterns into k clusters from what was learned, when nothing new arrived
        (``ruvector_dag_extract_patterns(t, k)``, issue 17): each pattern enters weighted k-means as
        a point of weight its sample count (the trajectories it summarises), so k clusters of the
        table's history come out; ids stay with the heaviest pattern of each cluster."""
        began = time.perf_counter()
        empty = np.zeros((0, self.bank.dim))
        before = len(self.bank.patterns)
        result = self.bank.cycle(empty, np.zeros(0), np.zeros(0), k=k, anchor_strength=1.0,
                                 seed=self.counters.cycles)
        elapsed_ms = (time.perf_counter() - began) * 1000.0
        c = self.counters
        c.cycles += 1
        c.last_cycle_ms = elapsed_ms
        c.last_cycle_at_us = int(time.time() * 1e6)
        return {AnswerField.SUCCESS: True, AnswerField.TRAJECTORIES_PROCESSED: 0,
                AnswerField.PATTERNS_EXTRACTED: len(self.bank.patterns),
                AnswerField.PATTERNS_RETIRED: max(before - len(self.bank.patterns), len(result.retired)),
                AnswerField.DURATION_MS: round(elapsed_ms, 3), AnswerField.EWC_TASKS: self.ewc.tasks,
                AnswerField.EWC_LAMBDA: self.ewc.lambda_}

    def consolidate(self, threshold: float) -> int:
        return len(self.bank.consolidate(threshold))

    def best_mechanism(self, pattern: Pattern) -> str:
        forced = self.config.attention_type
        return forced if forced != "auto" else self.mechanisms[pattern.bandit.best()]

    def current_mechanism(self) -> str:
        forced = self.config.attention_type
        return forced if forced != "auto" else self.mechanisms[self.selector.best()]

    # -- persistence --------------------------------------------------------

    def state_bytes(self) -> bytes:
        """Everything learned, as an .npz archive (no pickle: safe to load)."""
        arrays: dict[str, np.ndarray] = {}
        meta: dict[str, Any] = {"version": STATE_VERSION, "relid": self.relid,
                                "config": asdict(self.config), "counters": asdict(self.counters),
                                "trajectories_seen": self.trajectories_seen, "next_id": self.bank.next_id,
                                "rng": self.rng.bit_generator.state, "steering": self.steering.to_json()}
        transfer = self.transfer.state_dict()
        meta["transfer.selector"] = {"hits": transfer["hits"], "misses": transfer["misses"]}
        for prefix, state in (("model", self.model.state_dict()), ("ewc", self.ewc.state_dict()),
                              ("transfer_adapter", transfer["adapter"]), ("transfer_ewc", transfer["ewc"])):
            scalars = {}
            for key, value in state.items():
                if isinstance(value, np.ndarray):
                    arrays[f"{prefix}.{key}"] = value
                else:
                    scalars[key] = value
            meta[prefix] = scalars
        ps = list(self.bank.patterns.values())
        arrays["bank.ids"] = np.array([p.id for p in ps], dtype=np.int64)
        arrays["bank.centroids"] = (np.vstack([p.centroid for p in ps]) if ps
                                    else np.zeros((0, features.EMBEDDING_DIM)))
        arrays["bank.stats"] = np.array([[p.sample_count, p.latency_sum, p.quality_sum, p.spread, p.cohesion]
                                         for p in ps], dtype=np.float64).reshape(-1, 5)
        arrays["bank.alpha"] = np.array([p.bandit.alpha for p in ps]).reshape(-1, len(self.mechanisms))
        arrays["bank.beta"] = np.array([p.bandit.beta for p in ps]).reshape(-1, len(self.mechanisms))
        arrays["bank.exemplars"], arrays["bank.exemplar_offsets"] = _pack([p.exemplar for p in ps])
        arrays["selector.alpha"] = self.selector.alpha
        arrays["selector.beta"] = self.selector.beta
        arrays["references.keys"] = np.array(list(self.references.keys()), dtype=np.uint64)
        arrays["references.values"] = np.array(list(self.references.values()), dtype=np.float64)
        b = self.batch
        arrays["batch.X"] = np.vstack(b.X) if b.X else np.zeros((0, features.EMBEDDING_DIM))
        arrays["batch.latency_us"] = np.asarray(b.latency_us, dtype=np.float64)
        arrays["batch.quality"] = np.asarray(b.quality, dtype=np.float64)
        arrays["batch.query_id"] = np.asarray(b.query_id, dtype=np.uint64)
        meta["batch.mechanism"] = list(b.mechanism)
        arrays["batch.nodes"], arrays["batch.node_offsets"] = _pack(b.nodes)
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        out = io.BytesIO()
        np.savez_compressed(out, **arrays)  # type: ignore[arg-type]
        return out.getvalue()

    @classmethod
    def from_state_bytes(cls, data: bytes, config: LearnerConfig | None = None) -> TableLearner:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode())
        if meta.get("version") != STATE_VERSION:
            raise InvalidParameter(f"engine state version {meta.get('version')} is not {STATE_VERSION}")
        learner = cls(int(meta["relid"]), LearnerConfig(**meta["config"]))
        for prefix, klass in (("model", MicroLoRA), ("ewc", OnlineEWC)):
            setattr(learner, prefix, klass.from_state_dict(_state_part(meta, arrays, prefix)))
        patterns: dict[int, Pattern] = {}
        exemplars = _unpack(arrays["bank.exemplars"], arrays["bank.exemplar_offsets"])
        for i, pid in enumerate(arrays["bank.ids"]):
            n, lat, qual, spread, cohesion = arrays["bank.stats"][i]
            bandit = learner.bank.new_bandit()
            bandit.alpha = arrays["bank.alpha"][i].copy()
            bandit.beta = arrays["bank.beta"][i].copy()
            patterns[int(pid)] = Pattern(int(pid), arrays["bank.centroids"][i].copy(), int(n), float(lat),
                                         float(qual), float(spread), float(cohesion), bandit, exemplars[i])
        learner.bank.patterns = patterns
        learner.bank.next_id = int(meta["next_id"])
        learner.bank._reindex()
        learner.selector.alpha = arrays["selector.alpha"].copy()
        learner.selector.beta = arrays["selector.beta"].copy()
        learner.references = dict(zip((int(k) for k in arrays["references.keys"]),
                                      (float(v) for v in arrays["references.values"])))
        learner.counters = Counters(**meta["counters"])
        learner.trajectories_seen = int(meta["trajectories_seen"])
        learner.rng.bit_generator.state = meta["rng"]
        learner.steering.load_json(meta.get("steering", {}))
        if "transfer.selector" in meta:  # (states saved before 0.7.0 start transfer afresh)
            learner.transfer.load_state_dict({"adapter": _state_part(meta, arrays, "transfer_adapter"),
                                              "ewc": _state_part(meta, arrays, "transfer_ewc"),
                                              **meta["transfer.selector"]})
        b = learner.batch
        b.X = list(arrays["batch.X"])
        b.latency_us = [float(v) for v in arrays["batch.latency_us"]]
        b.quality = [float(v) for v in arrays["batch.quality"]]
        b.query_id = [int(v) for v in arrays["batch.query_id"]]
        b.mechanism = list(meta["batch.mechanism"])
        b.nodes = [x for x in _unpack(arrays["batch.nodes"], arrays["batch.node_offsets"]) if x is not None]
        if config is not None:
            learner.reconfigure(config)
        return learner
