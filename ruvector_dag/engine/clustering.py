"""Weighted k-means++ for the background cycle (kernels: ruvector_dag/engine/kernels/kmeans.py).

:func:`kmeans` validates its inputs and runs the Numba kernels;
:func:`kmeans_reference` is the plain NumPy algorithm (same seeding random
numbers, Lloyd's iterations without bounds) that tests hold it to.

Conventions shared by both:

* weights >= 0 (default 1); the objective is sum_i w_i ||x_i - c(x_i)||^2;
  a point of weight 0 is never a seed and does not move a centre, but gets
  a label like every point;
* k is clamped to the number of distinct points of positive weight;
* ``init`` (m <= k rows) warm-starts: those centres are kept as seeds and
  k-means++ adds the rest; n_init is then 1;
* converged when no label changes or the squared centre shift summed over
  centres is <= tol x the mean per-feature variance of the data (as
  scikit-learn);
* ``n_init`` runs use seeds seed, seed + 1, ...; the lowest inertia wins.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..definitions.errors import InvalidParameter
from ..definitions.validation import FINITE_NON_NEGATIVE, POSITIVE_INT, validate
from .kernels import kmeans as _k


@dataclass(frozen=True)
class KMeansResult:
    centers: np.ndarray  # (k', d) float64
    labels: np.ndarray  # (n,) int64
    inertia: float
    n_iter: int


def _validate(X: object, k: int, weights: object, init: object, n_init: int, max_iter: int,
              tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    Xa = np.ascontiguousarray(X, dtype=np.float64)
    if Xa.ndim != 2 or Xa.shape[0] == 0 or Xa.shape[1] == 0:
        raise InvalidParameter(f"X must be a non-empty (n, d) matrix, got shape {Xa.shape}")
    if not np.isfinite(Xa).all():
        raise InvalidParameter("X must be finite")
    validate("k", k, POSITIVE_INT)
    validate("n_init", n_init, POSITIVE_INT)
    validate("max_iter", max_iter, POSITIVE_INT)
    validate("tol", tol, FINITE_NON_NEGATIVE)
    w = (np.ones(Xa.shape[0]) if weights is None
         else np.ascontiguousarray(weights, dtype=np.float64))
    if w.shape != (Xa.shape[0],):
        raise InvalidParameter(f"weights must have shape ({Xa.shape[0]},), got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise InvalidParameter("weights must be finite and >= 0")
    if not (w > 0).any():
        raise InvalidParameter("at least one point must have a positive weight")
    ini = (np.zeros((0, Xa.shape[1])) if init is None
           else np.ascontiguousarray(init, dtype=np.float64).reshape(-1, Xa.shape[1]))
    if ini.shape[0] > k:
        raise InvalidParameter(f"init has {ini.shape[0]} centres, more than k = {k}")
    if not np.isfinite(ini).all():
        raise InvalidParameter("init must be finite")
    return Xa, w, ini


def _tolerance(X: np.ndarray, w: np.ndarray, tol: float) -> float:
    mean = (w @ X) / w.sum()
    return float(tol * ((w @ (X - mean) ** 2) / w.sum()).mean())


def _draws(seed: int, k: int) -> np.ndarray:
    trials = 2 + int(math.log(k)) if k > 1 else 1
    return np.random.default_rng(seed).random((k, trials))


Run = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, float], KMeansResult]


def _best_of(run: Run, X: object, k: int, weights: object, init: object, n_init: int, max_iter: int,
             tol: float, seed: int) -> KMeansResult:
    """Validate, then keep the lowest-inertia result of the n_init runs (1 with init)."""
    Xa, w, ini = _validate(X, k, weights, init, n_init, max_iter, tol)
    limit = _tolerance(Xa, w, tol)
    results = [run(Xa, w, ini, _draws(seed + r, int(k)), int(max_iter), limit)
               for r in range(1 if ini.shape[0] else int(n_init))]
    return min(results, key=lambda res: res.inertia)


def _numba_run(X: np.ndarray, w: np.ndarray, init: np.ndarray, rand: np.ndarray, max_iter: int,
               limit: float) -> KMeansResult:
    centers, seeded = _k.kmeanspp(X, w, rand.shape[0], init, rand)
    labels, C, inertia, it = _k.hamerly(X, w, np.ascontiguousarray(centers[:seeded]), max_iter, limit)
    return KMeansResult(C, labels, float(inertia), int(it))


def kmeans(X: object, k: int, *, weights: object = None, init: object = None, n_init: int = 1,
           max_iter: int = 100, tol: float = 1e-4, seed: int = 0) -> KMeansResult:
    """Weighted k-means++ with Hamerly-accelerated Lloyd iterations (Numba)."""
    return _best_of(_numba_run, X, k, weights, init, n_init, max_iter, tol, seed)


def _reference_seed(X: np.ndarray, w: np.ndarray, k: int, init: np.ndarray, rand: np.ndarray) -> np.ndarray:
    def sample(p: np.ndarray, r: float) -> int:
        csum = np.cumsum(np.where(p > 0, p, 0.0))
        idx = int(np.searchsorted(csum, r, side="right"))
        positive = np.flatnonzero(p > 0)
        return min(idx, int(positive[-1]))

    centers = [c for c in init]
    if centers:
        closest = ((X[:, None, :] - np.array(centers)[None]) ** 2).sum(-1).min(axis=1)
    else:
        first = sample(w, rand[0, 0] * w.sum())
        centers.append(X[first].copy())
        closest = ((X - X[first]) ** 2).sum(axis=1)
    for c in range(len(centers), k):
        pot = w * closest
        total = pot.sum()
        if total <= 0:
            break
        best_pot, best_closest, best = np.inf, closest, -1
        for t in range(rand.shape[1]):
            cand = sample(pot, rand[c, t] * total)
            cc = np.minimum(closest, ((X - X[cand]) ** 2).sum(axis=1))
            cp = float((w * cc).sum())
            if cp < best_pot:
                best_pot, best_closest, best = cp, cc, cand
        centers.append(X[best].copy())
        closest = best_closest
    return np.array(centers)


def _reference_run(Xa: np.ndarray, w: np.ndarray, ini: np.ndarray, rand: np.ndarray, max_iter: int,
                   limit: float) -> KMeansResult:
    C = _reference_seed(Xa, w, rand.shape[0], ini, rand)
    labels = ((Xa[:, None, :] - C[None]) ** 2).sum(-1).argmin(axis=1)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        newC = C.copy()
        for j in range(len(C)):
            mask = labels == j
            if w[mask].sum() > 0:
                newC[j] = (w[mask] @ Xa[mask]) / w[mask].sum()
            else:
                d2 = ((Xa - C[labels]) ** 2).sum(axis=1)
                newC[j] = Xa[int(np.argmax(w * d2))]
        shift = float(((newC - C) ** 2).sum())
        C = newC
        new_labels = ((Xa[:, None, :] - C[None]) ** 2).sum(-1).argmin(axis=1)
        changed = int((new_labels != labels).sum())
        labels = new_labels
        if changed == 0 or shift <= limit:
            break
    inertia = float((w * ((Xa - C[labels]) ** 2).sum(axis=1)).sum())
    return KMeansResult(C, labels.astype(np.int64), inertia, it)


def kmeans_reference(X: object, k: int, *, weights: object = None, init: object = None, n_init: int = 1,
                     max_iter: int = 100, tol: float = 1e-4, seed: int = 0) -> KMeansResult:
    """Plain NumPy weighted k-means++ and Lloyd: the specification of :func:`kmeans`."""
    return _best_of(_reference_run, X, k, weights, init, n_init, max_iter, tol, seed)


def warm_up() -> None:
    """Compile (or load) the kernels on a tiny input."""
    X = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.1]])
    kmeans(X, 2)
    kmeans(X, 2, init=X[:1])
