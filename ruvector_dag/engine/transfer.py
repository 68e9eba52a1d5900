"""Transfer of steering through learned patterns: the specification's ``pre_query``.

A query id seen for the first time has no evidence of its own: under
:class:`~ruvector_dag.engine.steering.SteeringPolicy` alone it runs its
default plan BASELINE_RUNS + 1 times before any arm is tried.  Transfer
gives it a first candidate from the queries like it that were steered
before:

1. Its default plan's embedding is matched against the ReasoningBank
   (:class:`~ruvector_dag.engine.bank.ReasoningBank`); unless it is a *hit*
   (within the nearest pattern's radius) nothing is transferred.
2. The *voters* are the other queries of the table that fall in the same
   pattern and have a verdict (:meth:`QuerySteering.verdict`): the arms
   their users measured clearly faster than the default (none, for a query
   settled on the default; none, at once, for a query whose transferred arm
   failed its trial).
3. Each voter counts with a weight that falls with its distance to the new
   query in the adapted embedding (:class:`ArmAdapter`, MicroLoRA on the
   plan embedding) of the attention mechanism that predicted arms best
   (:class:`MechanismSelector`).  The arm with the most weight is proposed
   if its share, with one pseudo-vote for and one against (Laplace), reaches
   :data:`MIN_CONFIDENCE`: what the pattern has earned, and lost with every
   query that disagreed.

A proposal is only a candidate.  The policy tries it after the query's
first default execution (a trial, run by the worker) and applies it to
users only if the trial found it faster; a failed trial is a vote against
the pattern.  Every component can be switched off
(:class:`TransferConfig`) for the ablation of ``benchmarks/transfer.py``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..definitions.arms import ARMS
from ..definitions.errors import InvalidParameter
from ..definitions.settings import default_of
from ..definitions.validation import POSITIVE, POSITIVE_INT, RATE, Interval, validate

#: A proposal needs this (Laplace-smoothed, weighted) share of its voters.  With one voter that
#: agrees: 2/3; one for and one against: 1/2, no transfer.
MIN_CONFIDENCE = 0.6
#: Squared distance (in the adapted embedding) at which a voter's weight has fallen to 1/e.
VOTE_SCALE2 = 0.05


@dataclass(frozen=True)
class TransferConfig:
    """Which parts of transfer are on (defaults: the settings', ruvector.dag_transfer*: patterns only;
    the ablation of benchmarks/transfer.py turns each on and off)."""

    enabled: bool = default_of("dag_transfer")  # propose at all
    patterns: bool = default_of("dag_transfer_patterns")  # voters: the new query's pattern's (else: every voter)
    adapter: bool = default_of("dag_transfer_lora")  # distances in the MicroLoRA-adapted embedding (else: raw)
    ewc: bool = default_of("dag_transfer_ewc")  # the adapter learns under EWC++ (else: plain SGD)
    attention: bool = default_of("dag_transfer_attention")  # the mechanism that predicted best (else: canonical)
    min_confidence: float = MIN_CONFIDENCE

    def __post_init__(self) -> None:
        validate("min_confidence", self.min_confidence, Interval("real", 0.5, 1.0))


@dataclass(frozen=True)
class Proposal:
    """An arm proposed for a new query, and what it rests on (the steering view shows it)."""

    arm: int
    pattern_id: int | None
    mechanism: str
    voters: int  # queries that voted
    votes: float  # weighted votes for the arm
    weight: float  # total weight of the voters
    confidence: float  # (votes + 1) / (weight + 2)

    def to_json(self) -> dict[str, Any]:
        return {"arm": ARMS[self.arm].name, "pattern_id": self.pattern_id, "mechanism": self.mechanism,
                "voters": self.voters, "votes": round(self.votes, 4), "weight": round(self.weight, 4),
                "confidence": round(self.confidence, 4)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Proposal:
        from ..definitions.arms import arm_index

        return cls(arm_index(d["arm"]), None if d.get("pattern_id") is None else int(d["pattern_id"]),
                   str(d.get("mechanism", "topological")), int(d["voters"]), float(d["votes"]),
                   float(d["weight"]), float(d["confidence"]))


@dataclass(frozen=True)
class Voter:
    """A query with a verdict: its embeddings (by mechanism) and the arms that were clearly faster for it."""

    query_id: int
    embeddings: dict[str, np.ndarray]
    good: frozenset[int]


def vote(x: np.ndarray, voters: Sequence[tuple[np.ndarray, frozenset[int]]],
         metric: np.ndarray | None = None) -> tuple[int, float, float, int] | None:
    """The arm most voters' weight is for: (arm, votes, total weight, voters), or None without voters.

    A voter's weight is exp(-|W (x - x_i)|^2 / VOTE_SCALE2), W the adapter's
    map (identity when ``metric`` is None).  Ties go to the lower arm index.
    """
    if not voters:
        return None
    diffs = np.vstack([x - xi for xi, _ in voters])
    if metric is not None:
        diffs = diffs @ metric.T
    w = np.exp(-(diffs ** 2).sum(axis=1) / VOTE_SCALE2)
    tally: dict[int, float] = {}
    for wi, (_, good) in zip(w, voters):
        for a in good:
            tally[a] = tally.get(a, 0.0) + float(wi)
    total = float(w.sum())
    if not tally:
        return 0, 0.0, total, len(voters)
    arm = min(tally, key=lambda a: (-tally[a], a))
    return arm, tally[arm], total, len(voters)


def confidence(votes: float, weight: float) -> float:
    """Laplace-smoothed share of the voters' weight for an arm: (votes + 1) / (weight + 2)."""
    return (votes + 1.0) / (weight + 2.0)


class ArmAdapter:
    """MicroLoRA on the plan embedding: z = (I + B A) x, rank ``rank``, learned so that queries
    whose winning arms agree lie close together and the others apart.

    Loss of a labelled embedding x of class y (its winning arm, 0 for the
    default) against the class means m_c of the voters (in the raw space;
    adapted means are W m_c since W is linear):

        L = d_y + log sum_c exp(-d_c),   d_c = |W (x - m_c)|^2 / VOTE_SCALE2

    the nearest-class-mean softmax loss (Mensink et al. 2013).  Its gradient
    in W is (2 / VOTE_SCALE2) sum_c (1[c = y] - p_c) W (x - m_c)(x - m_c)^T, and
    B A's gradients follow (dL/dB = G A^T, dL/dA = B^T G).  B starts at zero,
    so the adapter starts as the identity.  Under EWC++ each step is its
    proximal step (:class:`~ruvector_dag.engine.ewc.OnlineEWC`): what the
    adapter learned on one family of queries is kept when it learns another.
    """

    def __init__(self, dim: int, rank: int = 2, learning_rate: float = 0.05, seed: int = 0) -> None:
        validate("dim", dim, POSITIVE_INT)
        validate("rank", rank, POSITIVE_INT)
        validate("learning_rate", learning_rate, RATE)
        self.dim, self.rank, self.learning_rate = int(dim), int(rank), float(learning_rate)
        rng = np.random.default_rng(seed)
        self.A = rng.normal(0.0, 1.0 / math.sqrt(dim), (rank, dim))
        self.B = np.zeros((dim, rank))
        self.steps = 0

    @property
    def n_params(self) -> int:
        return 2 * self.rank * self.dim

    @property
    def param_blocks(self) -> tuple[int, ...]:
        return (self.rank * self.dim, self.dim * self.rank)

    def params(self) -> np.ndarray:
        return np.concatenate([self.A.ravel(), self.B.ravel()])

    def set_params(self, flat: np.ndarray) -> None:
        flat = np.asarray(flat, dtype=np.float64)
        if flat.shape != (self.n_params,):
            raise InvalidParameter(f"expected {self.n_params} parameters, got shape {flat.shape}")
        k = self.rank * self.dim
        self.A = flat[:k].reshape(self.rank, self.dim).copy()
        self.B = flat[k:].reshape(self.dim, self.rank).copy()

    def matrix(self) -> np.ndarray:
        """W = I + B A."""
        return np.eye(self.dim) + self.B @ self.A

    def loss_and_gradient(self, x: np.ndarray, label: int, means: dict[int, np.ndarray]) -> tuple[float, np.ndarray]:
        """L and dL/d[A, B] for one labelled embedding (see the class docstring)."""
        if label not in means or len(means) < 2:
            return 0.0, np.zeros(self.n_params)
        W = self.matrix()
        classes = sorted(means)
        diffs = np.vstack([x - means[c] for c in classes])  # (C, dim)
        proj = diffs @ W.T
        d = (proj ** 2).sum(axis=1) / VOTE_SCALE2
        shift = float(d.min())
        p = np.exp(-(d - shift))
        p /= p.sum()
        y = classes.index(label)
        loss = float(d[y] + math.log(float(np.exp(-(d - shift)).sum())) - shift)
        coef = -p
        coef[y] += 1.0
        G = (2.0 / VOTE_SCALE2) * (proj * coef[:, None]).T @ diffs  # (dim, dim)
        return loss, np.concatenate([(self.B.T @ G).ravel(), (G @ self.A.T).ravel()])

    def update(self, x: np.ndarray, label: int, means: dict[int, np.ndarray], ewc: Any = None) -> float:
        """One step on one labelled embedding (proximal under ``ewc``); the loss before it."""
        loss, grad = self.loss_and_gradient(np.asarray(x, dtype=np.float64), label, means)
        if not grad.any():
            return loss
        from .ewc import sgd_step

        self.set_params(sgd_step(self.params(), np.clip(grad, -10.0, 10.0), self.learning_rate, ewc))
        self.steps += 1
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {"dim": self.dim, "rank": self.rank, "learning_rate": self.learning_rate, "steps": self.steps,
                "A": self.A.copy(), "B": self.B.copy()}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> ArmAdapter:
        adapter = cls(int(state["dim"]), int(state["rank"]), float(state["learning_rate"]))
        adapter.A = np.array(state["A"], dtype=np.float64)
        adapter.B = np.array(state["B"], dtype=np.float64)
        adapter.steps = int(state["steps"])
        return adapter


def label_of(good: frozenset[int]) -> int:
    """The class a voter is learned as: its lowest good arm (0: the default was right)."""
    return min(good) if good else 0


def class_means(voters: Iterable[Voter], mechanism: str) -> dict[int, np.ndarray]:
    """Raw mean embedding of each class of voters, under ``mechanism``."""
    groups: dict[int, list[np.ndarray]] = {}
    for v in voters:
        groups.setdefault(label_of(v.good), []).append(v.embeddings[mechanism])
    return {c: np.mean(xs, axis=0) for c, xs in groups.items()}


@dataclass
class MechanismSelector:
    """Which attention mechanism's embedding predicts the winning arm best: a Beta posterior of
    each mechanism's accuracy, updated when a query gets its verdict by whether the leave-one-out
    vote of the other voters under that mechanism predicted it."""

    mechanisms: tuple[str, ...]
    hits: dict[str, float] = field(default_factory=dict)
    misses: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.mechanisms:
            raise InvalidParameter("a mechanism selector needs at least one mechanism")
        for m in self.mechanisms:
            self.hits.setdefault(m, 0.0)
            self.misses.setdefault(m, 0.0)

    def accuracy(self, mechanism: str) -> float:
        """Posterior mean accuracy (Beta(1, 1) prior)."""
        return (self.hits[mechanism] + 1.0) / (self.hits[mechanism] + self.misses[mechanism] + 2.0)

    def best(self, default: str) -> str:
        """The mechanism of highest posterior mean (``default`` on ties: the canonical one first)."""
        return max(self.mechanisms, key=lambda m: (self.accuracy(m), m == default))

    def update(self, mechanism: str, correct: bool) -> None:
        if correct:
            self.hits[mechanism] += 1.0
        else:
            self.misses[mechanism] += 1.0


def predicted(arm: int, good: frozenset[int]) -> bool:
    """Whether proposing ``arm`` (0: nothing) was right for a query whose clearly faster arms are ``good``."""
    return arm in good if arm != 0 else not good


validate("VOTE_SCALE2", VOTE_SCALE2, POSITIVE)


class ArmTransfer:
    """Transfer of one table: proposes arms for new queries from its voters, and learns from verdicts.

    ``bank`` is the table's ReasoningBank (the pattern gate); voters come from
    its :class:`~ruvector_dag.engine.steering.SteeringPolicy`.
    """

    #: Voters an adapter epoch runs over at most (the most recent ones).
    EPOCH_VOTERS = 64

    def __init__(self, dim: int, mechanisms: Sequence[str], canonical: str, config: TransferConfig | None = None,
                 seed: int = 0) -> None:
        from .ewc import OnlineEWC

        if canonical not in mechanisms:
            raise InvalidParameter(f"canonical mechanism {canonical!r} is not one of {', '.join(mechanisms)}")
        self.config = config or TransferConfig()
        self.canonical = canonical
        self.adapter = ArmAdapter(dim, seed=seed)
        self.ewc = OnlineEWC(self.adapter.n_params, blocks=self.adapter.param_blocks)
        self.selector = MechanismSelector(tuple(mechanisms))
        self.rng = np.random.default_rng(seed)

    def mechanism(self) -> str:
        return self.selector.best(self.canonical) if self.config.attention else self.canonical

    def _metric(self) -> np.ndarray | None:
        return self.adapter.matrix() if self.config.adapter and self.adapter.steps else None

    def _gate(self, bank: Any, x: np.ndarray, voters: Sequence[Voter]) -> tuple[int | None, list[Voter]] | None:
        """The pattern of canonical embedding ``x`` and the voters in it; None if x is no hit."""
        if not self.config.patterns:
            return None, list(voters)
        pattern, hit = bank.match(x)
        if pattern is None or not hit or not voters:
            return None if pattern is None or not hit else (pattern.id, [])
        ids = bank.nearest_ids(np.vstack([v.embeddings[self.canonical] for v in voters]))
        return pattern.id, [v for v, pid in zip(voters, ids) if int(pid) == pattern.id]

    def propose(self, bank: Any, embeddings: dict[str, np.ndarray], voters: Sequence[Voter]) -> Proposal | None:
        """An arm for a query with these default-plan embeddings, or None (nothing earned enough)."""
        if not self.config.enabled or self.canonical not in embeddings:
            return None
        gated = self._gate(bank, embeddings[self.canonical], voters)
        if gated is None:
            return None
        pattern_id, pool = gated
        mechanism = self.mechanism()
        if mechanism not in embeddings:
            mechanism = self.canonical
        decided = self._decide(embeddings[mechanism], pool, mechanism, self._metric())
        if decided is None or decided[0] == 0:
            return None
        arm, votes, weight, n, conf = decided
        return Proposal(arm, pattern_id, mechanism, n, votes, weight, conf)

    def _decide(self, x: np.ndarray, pool: Sequence[Voter], mechanism: str,
                metric: np.ndarray | None) -> tuple[int, float, float, int, float] | None:
        """The vote of ``pool`` (those with an embedding under ``mechanism``: voters seen while the
        attention selection was off have only the canonical one) on embedding x: (arm, votes,
        weight, voters, confidence), arm 0 when no arm reaches min_confidence; None without voters."""
        result = vote(x, [(v.embeddings[mechanism], v.good) for v in pool if mechanism in v.embeddings], metric)
        if result is None:
            return None
        arm, votes, weight, n = result
        conf = confidence(votes, weight)
        return (arm if conf >= self.config.min_confidence else 0), votes, weight, n, conf

    def learn(self, bank: Any, voter: Voter, voters: Sequence[Voter]) -> None:
        """A query got its verdict: score each mechanism's prediction of it, and train the adapter."""
        others = [v for v in voters if v.query_id != voter.query_id]
        gated = self._gate(bank, voter.embeddings[self.canonical], others)
        pool = gated[1] if gated is not None else []
        if pool and self.config.attention:
            metric = self._metric()
            for m in self.selector.mechanisms:
                if m in voter.embeddings:
                    decided = self._decide(voter.embeddings[m], pool, m, metric)
                    self.selector.update(m, predicted(decided[0] if decided is not None else 0, voter.good))
        if self.config.adapter:
            self._epoch([*others, voter])

    def _epoch(self, voters: Sequence[Voter]) -> None:
        mechanism = self.mechanism()
        recent = [v for v in voters if mechanism in v.embeddings][-self.EPOCH_VOTERS:]
        means = class_means(recent, mechanism)
        if len(means) < 2:
            return
        ewc = self.ewc if self.config.ewc else None
        for i in self.rng.permutation(len(recent)):
            v = recent[int(i)]
            before = self.adapter.params()
            loss = self.adapter.update(v.embeddings[mechanism], label_of(v.good), means, ewc)
            if ewc is not None:
                ewc.observe_loss(loss, before)

    def end_cycle(self) -> None:
        """The background cycle: EWC's anchor moves to what the adapter knows now."""
        if self.config.ewc and self.adapter.steps:
            self.ewc.end_cycle(self.adapter.params())

    def state_dict(self) -> dict[str, Any]:
        return {"adapter": self.adapter.state_dict(), "ewc": self.ewc.state_dict(),
                "hits": dict(self.selector.hits), "misses": dict(self.selector.misses)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from .ewc import OnlineEWC

        self.adapter = ArmAdapter.from_state_dict(state["adapter"])
        self.ewc = OnlineEWC.from_state_dict(state["ewc"])
        for m in self.selector.mechanisms:
            self.selector.hits[m] = float(state["hits"].get(m, 0.0))
            self.selector.misses[m] = float(state["misses"].get(m, 0.0))
