"""The ReasoningBank: learned query patterns of one table.

A pattern is a cluster of plan embeddings (:mod:`ruvector_dag.engine.features`):
queries whose operator DAGs look alike.  The bank

* recognises a new trajectory (:meth:`ReasoningBank.match`): the nearest
  centroid, a *hit* when the embedding lies within the pattern's radius;
* extracts patterns in the background cycle (:meth:`ReasoningBank.cycle`):
  weighted k-means++ over the embeddings learned since the last cycle
  together with the existing patterns, which enter as pseudo-points whose
  weight is their EWC anchor (below);
* consolidates patterns whose centroids have cosine similarity above a
  threshold (:meth:`ReasoningBank.consolidate`).

EWC for centroids.  A centroid is the mean of its members; under a unit
Gaussian model the Fisher information of a mean estimated from n samples
is n.  EWC's penalty (lambda / lambda_ref) * n / 2 * ||mu - mu*||^2 added to
the k-means objective over the new points has the same minimiser as
k-means with the old centroid mu* as one more point of weight
(lambda / lambda_ref) * n.  So a pattern seen often, under a large lambda,
keeps its place when the workload moves on; under a small lambda the new
workload pulls it away (it is *forgotten*).  lambda is EWC++'s adaptive
value (:class:`ruvector_dag.engine.ewc.OnlineEWC`), the same one that protects
the latency model.

Pattern ids are stable: a cluster inherits the id of the heaviest old
pattern it absorbed; patterns merged into it retire their ids; a cluster
of new points only gets a fresh id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..definitions import seam
from ..definitions.validation import NON_NEGATIVE, POSITIVE_INT, validate
from . import clustering
from .bandit import ThompsonBandit

#: Cosine similarity above which consolidate merges two patterns: (-1, 1] (declared in the seam: C checks
#: ruvector_dag_consolidate_patterns' argument against the same bounds).
SIMILARITY_THRESHOLD = seam.SIMILARITY_THRESHOLD

#: Squared distance under which any embedding counts as a hit, however
#: tight the pattern (cosine >= 0.99 for unit vectors).
MIN_HIT_RADIUS2 = 0.02
#: A hit lies within this many root-mean-square member distances of the centroid.
HIT_RADIUS_FACTOR = 2.0
#: Confidence reaches 63 % of its cohesion at this many samples.
CONFIDENCE_SAMPLES = 10.0


@dataclass
class Pattern:
    """One learned pattern and its running statistics."""

    id: int
    centroid: np.ndarray
    sample_count: int
    latency_sum: float
    quality_sum: float
    spread: float  # mean squared distance of members to the centroid
    cohesion: float  # mean cosine similarity of members to the centroid
    bandit: ThompsonBandit
    exemplar: np.ndarray | None = None  # plan nodes of the member nearest the centroid (MinCut)

    @property
    def avg_latency_us(self) -> float:
        return self.latency_sum / self.sample_count if self.sample_count else 0.0

    @property
    def avg_quality(self) -> float:
        return self.quality_sum / self.sample_count if self.sample_count else 0.0

    @property
    def confidence(self) -> float:
        """(1 - exp(-n / 10)) x cohesion: grows with evidence, shrinks with a loose cluster."""
        return float((1.0 - np.exp(-self.sample_count / CONFIDENCE_SAMPLES)) * min(max(self.cohesion, 0.0), 1.0))

    @property
    def hit_radius2(self) -> float:
        return max(HIT_RADIUS_FACTOR**2 * self.spread, MIN_HIT_RADIUS2)


@dataclass(frozen=True)
class CycleResult:
    patterns: int  # patterns after the cycle
    new_labels: np.ndarray  # pattern id of every new point
    retired: list[int]  # ids merged away
    inertia: float


@dataclass
class ReasoningBank:
    """Patterns of one table, keyed by stable id."""

    dim: int
    n_arms: int
    exploration: float = 0.1
    patterns: dict[int, Pattern] = field(default_factory=dict)
    next_id: int = 1
    _ids: np.ndarray = field(init=False, repr=False)
    _centroids: np.ndarray = field(init=False, repr=False)
    _radius2: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        validate("dim", self.dim, POSITIVE_INT)
        validate("n_arms", self.n_arms, POSITIVE_INT)
        self._reindex()

    def _reindex(self) -> None:
        ps = list(self.patterns.values())
        self._ids = np.array([p.id for p in ps], dtype=np.int64)
        self._centroids = (np.vstack([p.centroid for p in ps]) if ps else np.zeros((0, self.dim)))
        self._radius2 = np.array([p.hit_radius2 for p in ps], dtype=np.float64)

    def new_bandit(self) -> ThompsonBandit:
        return ThompsonBandit(self.n_arms, exploration=self.exploration)

    def match(self, x: np.ndarray) -> tuple[Pattern | None, bool]:
        """Nearest pattern to embedding x, and whether x lies within its radius (a hit)."""
        if len(self._ids) == 0:
            return None, False
        d2 = ((self._centroids - x) ** 2).sum(axis=1)
        i = int(np.argmin(d2))
        return self.patterns[int(self._ids[i])], bool(d2[i] <= self._radius2[i])

    def nearest_ids(self, X: np.ndarray) -> np.ndarray:
        """Id of the nearest pattern of each row of X (n, dim), as :meth:`match` finds it, in one
        product (|x|^2 - 2 x.c + |c|^2): transfer matches a thousand voters per new query."""
        if len(self._ids) == 0:
            return np.zeros(len(X), dtype=np.int64)
        C = self._centroids
        d2 = (X * X).sum(axis=1)[:, None] - 2.0 * X @ C.T + (C * C).sum(axis=1)[None, :]
        return self._ids[np.argmin(d2, axis=1)]

    def cycle(self, X: np.ndarray, latency_us: np.ndarray, quality: np.ndarray, *, k: int,
              anchor_strength: float, seed: int = 0, plans: list[np.ndarray] | None = None) -> CycleResult:
        """Re-extract patterns from new embeddings X and the existing patterns.

        anchor_strength = lambda / lambda_ref: an old pattern of n samples
        enters k-means as a point of weight anchor_strength * n.  plans (one
        per row of X) give a new pattern its exemplar plan: the member
        nearest its centroid.
        """
        X = np.asarray(X, dtype=np.float64).reshape(-1, self.dim)
        latency_us = np.asarray(latency_us, dtype=np.float64)
        quality = np.asarray(quality, dtype=np.float64)
        n_new = X.shape[0]
        validate("k", k, POSITIVE_INT)
        validate("anchor_strength", anchor_strength, NON_NEGATIVE)
        old = list(self.patterns.values())
        if n_new == 0 and not old:
            return CycleResult(0, np.zeros(0, np.int64), [], 0.0)
        old_w = np.array([p.sample_count * anchor_strength for p in old], dtype=np.float64)
        points = np.vstack([X] + [p.centroid[None, :] for p in old]) if old else X
        weights = np.concatenate([np.ones(n_new), old_w])
        # Warm start from the heaviest old patterns (at most k of them).
        order = np.argsort(-old_w, kind="stable")[:k]
        init = np.vstack([old[j].centroid for j in order if old_w[j] > 0]) if old else None
        if init is not None and len(init) == 0:
            init = None
        result = clustering.kmeans(points, k, weights=weights, init=init, seed=seed)
        labels = result.labels
        new_labels = labels[:n_new]
        old_labels = labels[n_new:]

        merged: dict[int, Pattern] = {}
        retired: list[int] = []
        cluster_id: dict[int, int] = {}
        # Per cluster sums over the new points, vectorised (one pass each).
        k_out = result.centers.shape[0]
        own = result.centers[new_labels]
        sq = ((X - own) ** 2).sum(axis=1)
        norms = np.linalg.norm(X, axis=1) * np.linalg.norm(own, axis=1)
        cos = np.divide((X * own).sum(axis=1), norms, out=np.zeros(n_new), where=norms > 0)
        ss_new = np.bincount(new_labels, weights=sq, minlength=k_out)
        cos_new_sum = np.bincount(new_labels, weights=cos, minlength=k_out)
        lat_new = np.bincount(new_labels, weights=latency_us, minlength=k_out)
        qual_new = np.bincount(new_labels, weights=quality, minlength=k_out)
        count_new = np.bincount(new_labels, minlength=k_out)
        by_cluster = np.lexsort((sq, new_labels))  # per cluster, nearest member first
        nearest = np.full(k_out, -1, np.int64)
        firsts: np.ndarray = (np.flatnonzero(np.r_[True, np.diff(new_labels[by_cluster]) != 0]) if n_new
                              else np.zeros(0, np.int64))
        for i in firsts:
            nearest[new_labels[by_cluster[i]]] = by_cluster[i]
        old_by_cluster: dict[int, list[Pattern]] = {}
        for j, c in enumerate(old_labels):
            old_by_cluster.setdefault(int(c), []).append(old[j])
        for c in range(k_out):
            members_old = old_by_cluster.get(c, [])
            if count_new[c] == 0 and not members_old:
                continue
            center = result.centers[c]
            if members_old:
                heir = max(members_old, key=lambda p: (p.sample_count, -p.id))
                pid = heir.id
                retired.extend(p.id for p in members_old if p.id != pid)
            else:
                pid = self.next_id
                self.next_id += 1
            cluster_id[c] = pid
            bandit = self.new_bandit()
            for p in members_old:
                bandit.merge(p.bandit)
            n = sum(p.sample_count for p in members_old) + int(count_new[c])
            # Spread by the parallel-axis theorem: an old pattern's members sit
            # at its spread around its centroid, which sits d^2 from the new one.
            ss = float(ss_new[c]) + sum(
                p.sample_count * (p.spread + float(((p.centroid - center) ** 2).sum())) for p in members_old)
            cos_sum = float(cos_new_sum[c]) + sum(p.sample_count * p.cohesion for p in members_old)
            merged[pid] = Pattern(
                id=pid, centroid=center.copy(), sample_count=n,
                latency_sum=float(lat_new[c]) + sum(p.latency_sum for p in members_old),
                quality_sum=float(qual_new[c]) + sum(p.quality_sum for p in members_old),
                spread=ss / n if n else 0.0, cohesion=cos_sum / n if n else 0.0, bandit=bandit,
                exemplar=next((p.exemplar for p in sorted(members_old, key=lambda p: -p.sample_count)
                               if p.exemplar is not None),
                              plans[nearest[c]] if plans is not None and nearest[c] >= 0 else None))
        self.patterns = dict(sorted(merged.items()))
        self._reindex()
        ids = np.array([cluster_id[int(c)] for c in new_labels], dtype=np.int64)
        return CycleResult(len(self.patterns), ids, retired, result.inertia)

    def consolidate(self, threshold: float) -> list[int]:
        """Merge patterns whose centroids have cosine similarity >= threshold.

        Greedy, heaviest first: each pattern absorbs every lighter one close
        enough to it.  Returns the ids merged away.
        """
        validate("similarity threshold", threshold, SIMILARITY_THRESHOLD)
        order = sorted(self.patterns.values(), key=lambda p: (-p.sample_count, p.id))
        alive: list[Pattern] = []
        unit = np.zeros((len(order), self.dim))  # unit centroids of the alive patterns, row per alive
        retired: list[int] = []
        for p in order:
            norm = float(np.linalg.norm(p.centroid))
            u = p.centroid / norm if norm > 0 else p.centroid
            sims = unit[:len(alive)] @ u
            hit = np.flatnonzero(sims >= threshold) if norm > 0 else np.zeros(0, np.int64)
            if len(hit) == 0:
                unit[len(alive)] = u
                alive.append(p)
                continue
            slot = int(hit[0])
            target = alive[slot]
            n = target.sample_count + p.sample_count
            center = (target.centroid * target.sample_count + p.centroid * p.sample_count) / n
            ss = sum(q.sample_count * (q.spread + float(((q.centroid - center) ** 2).sum())) for q in (target, p))
            target.cohesion = (target.cohesion * target.sample_count + p.cohesion * p.sample_count) / n
            target.centroid = center
            target.spread = ss / n
            target.sample_count = n
            target.latency_sum += p.latency_sum
            target.quality_sum += p.quality_sum
            target.bandit.merge(p.bandit)
            if target.exemplar is None:
                target.exemplar = p.exemplar
            tn = float(np.linalg.norm(center))
            unit[slot] = center / tn if tn > 0 else center
            retired.append(p.id)
        self.patterns = {p.id: p for p in sorted(alive, key=lambda p: p.id)}
        self._reindex()
        return retired
