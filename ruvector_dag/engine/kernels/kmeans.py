"""Numba kernels of weighted k-means (orchestration: ruvector_dag/engine/clustering.py).

* :func:`kmeanspp` — greedy k-means++ seeding (Arthur & Vassilvitskii 2007,
  with scikit-learn's ``n_local_trials`` candidates per step), sampling
  proportional to weight x squared distance, so a point of weight 0 is
  never a seed.  Seeding stops early when every remaining point coincides
  with a seed (fewer distinct points than k).
* :func:`hamerly` — Lloyd's iterations accelerated with Hamerly's bounds
  (Hamerly 2010): per point an upper bound on the distance to its centre
  and a lower bound on the distance to any other; a point is only
  re-examined when the bounds no longer prove its assignment.  On clustered
  data (plan embeddings are) most points are skipped after two iterations.

Random numbers are drawn by the caller and passed in, so the NumPy
reference (clustering.kmeans_reference) reproduces the same seeds.
"""

from __future__ import annotations

import numpy as np
from numba import njit  # type: ignore[import-untyped]


@njit(cache=True, fastmath=True)
def _sqdist(X: np.ndarray, i: int, C: np.ndarray, j: int) -> float:
    s = 0.0
    for t in range(X.shape[1]):
        d = X[i, t] - C[j, t]
        s += d * d
    return s


@njit(cache=True)
def _sample(weighted: np.ndarray, r: float) -> int:
    """First index whose cumulative weight exceeds r (never a zero-weight index)."""
    acc = 0.0
    last = -1
    for i in range(weighted.shape[0]):
        if weighted[i] > 0.0:
            acc += weighted[i]
            last = i
            if acc > r:
                return i
    return last


@njit(cache=True)
def kmeanspp(X: np.ndarray, w: np.ndarray, k: int, init: np.ndarray, rand: np.ndarray) -> tuple[np.ndarray, int]:
    """Seed k centres (the first len(init) given); returns (centres, how many were seeded)."""
    n, d = X.shape
    trials = rand.shape[1]
    centers = np.zeros((k, d))
    closest = np.full(n, np.inf)
    m = init.shape[0]
    for j in range(m):
        centers[j] = init[j]
        for i in range(n):
            dd = _sqdist(X, i, centers, j)
            if dd < closest[i]:
                closest[i] = dd
    if m == 0:
        total = w.sum()
        first = _sample(w, rand[0, 0] * total)
        centers[0] = X[first]
        for i in range(n):
            closest[i] = _sqdist(X, i, centers, 0)
        m = 1
    pot = np.empty(n)
    best_closest = np.empty(n)
    cand_closest = np.empty(n)
    for c in range(m, k):
        for i in range(n):
            pot[i] = w[i] * closest[i]
        total = pot.sum()
        if total <= 0.0:
            return centers, c  # every point coincides with a seed
        best_pot = np.inf
        best = -1
        for t in range(trials):
            cand = _sample(pot, rand[c, t] * total)
            centers[c] = X[cand]
            cand_pot = 0.0
            for i in range(n):
                dd = _sqdist(X, i, centers, c)
                v = dd if dd < closest[i] else closest[i]
                cand_closest[i] = v
                cand_pot += w[i] * v
            if cand_pot < best_pot:
                best_pot = cand_pot
                best = cand
                best_closest[:] = cand_closest
        centers[c] = X[best]
        closest[:] = best_closest
    return centers, k


@njit(cache=True)
def _center_separation(C: np.ndarray, s: np.ndarray) -> None:
    """s[j] = half the distance from centre j to its nearest other centre."""
    k = C.shape[0]
    for j in range(k):
        best = np.inf
        for jj in range(k):
            if jj != j:
                dd = _sqdist(C, j, C, jj)
                if dd < best:
                    best = dd
        s[j] = 0.5 * np.sqrt(best) if k > 1 else np.inf


@njit(cache=True)
def _nearest_two(X: np.ndarray, i: int, C: np.ndarray) -> tuple[int, float, float]:
    best, second = np.inf, np.inf
    arg = 0
    for j in range(C.shape[0]):
        dd = _sqdist(X, i, C, j)
        if dd < best:
            second = best
            best = dd
            arg = j
        elif dd < second:
            second = dd
    return arg, np.sqrt(best), np.sqrt(second)


@njit(cache=True)
def hamerly(X: np.ndarray, w: np.ndarray, centers: np.ndarray, max_iter: int,
            tol: float) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Weighted Lloyd with Hamerly's bounds; returns (labels, centres, inertia, iterations)."""
    n, d = X.shape
    k = centers.shape[0]
    C = centers.copy()
    labels = np.zeros(n, dtype=np.int64)
    upper = np.zeros(n)
    lower = np.zeros(n)
    for i in range(n):
        a, u, l2 = _nearest_two(X, i, C)
        labels[i] = a
        upper[i] = u
        lower[i] = l2
    s = np.empty(k)
    sums = np.zeros((k, d))
    wsum = np.zeros(k)
    shift = np.zeros(k)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        # Update step.
        sums[:] = 0.0
        wsum[:] = 0.0
        for i in range(n):
            a = labels[i]
            wsum[a] += w[i]
            for t in range(d):
                sums[a, t] += w[i] * X[i, t]
        total_shift = 0.0
        for j in range(k):
            if wsum[j] > 0.0:
                moved = 0.0
                for t in range(d):
                    v = sums[j, t] / wsum[j]
                    diff = v - C[j, t]
                    moved += diff * diff
                    C[j, t] = v
                shift[j] = np.sqrt(moved)
                total_shift += moved
            else:
                # Empty: re-seed at the point contributing most to the inertia.
                far, far_v = -1, -1.0
                for i in range(n):
                    v = w[i] * upper[i] * upper[i]
                    if v > far_v:
                        far_v = v
                        far = i
                moved = 0.0
                for t in range(d):
                    diff = X[far, t] - C[j, t]
                    moved += diff * diff
                    C[j, t] = X[far, t]
                shift[j] = np.sqrt(moved)
                total_shift += moved
        # Bounds follow the centres.
        max_shift, second_shift, arg_max = 0.0, 0.0, -1
        for j in range(k):
            if shift[j] > max_shift:
                second_shift = max_shift
                max_shift = shift[j]
                arg_max = j
            elif shift[j] > second_shift:
                second_shift = shift[j]
        for i in range(n):
            upper[i] += shift[labels[i]]
            lower[i] -= second_shift if labels[i] == arg_max else max_shift
        # Assignment step, skipping points the bounds settle.
        _center_separation(C, s)
        changed = 0
        for i in range(n):
            a = labels[i]
            bound = s[a] if s[a] > lower[i] else lower[i]
            if upper[i] <= bound:
                continue
            upper[i] = np.sqrt(_sqdist(X, i, C, a))
            if upper[i] <= bound:
                continue
            na, u, l2 = _nearest_two(X, i, C)
            if na != a:
                changed += 1
            labels[i] = na
            upper[i] = u
            lower[i] = l2
        if changed == 0 or total_shift <= tol:
            break
    inertia = 0.0
    for i in range(n):
        inertia += w[i] * _sqdist(X, i, C, labels[i])
    return labels, C, inertia, it
