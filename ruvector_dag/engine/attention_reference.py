"""Plain NumPy reference of every attention mechanism (docs/attention.md).

The same math as the Numba kernels in :mod:`ruvector_dag.engine.kernels.attention`,
written for clarity: whole-array NumPy, float64 throughout, one small function
per formula.  It is the executable specification the kernels are tested
against, and the ``backend="numpy"`` of :mod:`ruvector_dag.engine.attention`.

Arguments are assumed valid (the public API validates them): ``query`` is a
float32 vector of length d, ``ancestors`` an (n, d) float32 matrix, and the
per-ancestor arrays have n elements.  Like the kernels, a function returns
all-NaN weights when a computed logit is not finite (numerical failure) and all
zeros when every node is excluded.  Floating-point warnings are silenced in
the public functions: overflow is expected there and reported through NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

F32Array = npt.NDArray[np.float32]
F64Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.integer]
BoolArray = npt.NDArray[np.bool_]

# Overflow to inf/NaN is part of the contract (it becomes NumericalFailure), not a warning.
_QUIET = np.errstate(over="ignore", invalid="ignore", divide="ignore")


# --------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------

def scaled_dot_logits(query: F32Array, rows: F32Array, temperature: float) -> F64Array:
    """s_i = (q . k_i) / (sqrt(d) * temperature), in float64."""
    q = query.astype(np.float64)
    k = rows.astype(np.float64).reshape(-1, q.shape[0])
    return (k @ q) / (math.sqrt(q.shape[0]) * temperature)


def checked(logits: F64Array) -> F64Array:
    """Computed logits, with NaN (the failure marker) where they are not finite."""
    return np.where(np.isfinite(logits), logits, np.nan)


def softmax(logits: F64Array) -> F64Array:
    """Max-subtracted softmax; -inf = excluded node (weight 0); NaN/+inf anywhere = failure (all NaN)."""
    if np.isnan(logits).any() or np.isposinf(logits).any():
        return np.full(logits.shape, np.nan)
    active = logits > -np.inf
    if not active.any():
        return np.zeros(logits.shape)
    e = np.exp(logits - logits[active].max())
    return e / e.sum()


def as_weights(weights: F64Array) -> F32Array:
    return weights.astype(np.float32)


def arcosh1p(eps: F64Array) -> F64Array:
    """arcosh(1 + eps), accurate for small eps; the large branch avoids overflowing eps**2."""
    with np.errstate(over="ignore", invalid="ignore"):
        small = np.log1p(eps + np.sqrt(eps * (2.0 + eps)))
    return np.where(eps < 1e8, small, math.log(2.0) + np.log1p(eps))


# --------------------------------------------------------------------------
# Logits of each mechanism
# --------------------------------------------------------------------------

def topological_logits(query: F32Array, ancestors: F32Array, decay_rate: float, temperature: float,
                       mask: BoolArray | None) -> F64Array:
    """s_i - decay_rate * i; masked-out rows are excluded."""
    position = np.arange(ancestors.shape[0], dtype=np.float64)
    logits = checked(scaled_dot_logits(query, ancestors, temperature) - decay_rate * position)
    return logits if mask is None else np.where(mask, logits, -np.inf)


def causal_cone_logits(query: F32Array, ancestors: F32Array, depths: IntArray, decay_rate: float,
                       max_depth: int, temperature: float) -> F64Array:
    """s_i - decay_rate * depth_i inside the cone (depth_i <= max_depth), excluded outside."""
    depth = np.asarray(depths, dtype=np.float64)
    logits = checked(scaled_dot_logits(query, ancestors, temperature) - decay_rate * depth)
    return np.where(np.asarray(depths) > max_depth, -np.inf, logits)


def critical_path_logits(query: F32Array, ancestors: F32Array, is_critical: BoolArray, boost: float,
                         temperature: float) -> F64Array:
    """s_i + boost * [i is critical]."""
    bias = np.where(is_critical, boost, 0.0)
    return checked(scaled_dot_logits(query, ancestors, temperature) + bias)


def mincut_gates(criticalities: F64Array, threshold: float) -> F64Array:
    """g_i = 1 if c_i >= threshold else c_i / threshold (threshold 0: every gate is 1)."""
    c = np.asarray(criticalities, dtype=np.float64)
    if threshold == 0.0:
        return np.ones_like(c)
    return np.where(c >= threshold, 1.0, c / threshold)


def mincut_gated_logits(query: F32Array, ancestors: F32Array, criticalities: F64Array, threshold: float,
                        temperature: float) -> F64Array:
    """s_i + ln g_i: softmax, gate, renormalise == softmax of the log-gated logits."""
    gates = mincut_gates(criticalities, threshold)
    with np.errstate(divide="ignore"):
        log_gates = np.log(gates)
    logits = checked(scaled_dot_logits(query, ancestors, temperature) + log_gates)
    return np.where(gates == 0.0, -np.inf, logits)


def lorentz_lift(depths: IntArray, depth_scale: float) -> F64Array:
    """Coordinate of each ancestor on the extra depth axis: depth_scale * ln(1 + depth)."""
    return depth_scale * np.log1p(np.asarray(depths, dtype=np.float64))


def lorentz_distances(query: F32Array, ancestors: F32Array, depths: IntArray, curvature: float,
                      depth_scale: float) -> F64Array:
    """d_c(exp_o(q, 0), exp_o(k_i, lift_i)) on the hyperboloid of curvature -curvature.

    Closed form from the tangent vectors (radii a, b; unit directions u, v):
    cosh(sqrt(c) d) = 1 + 2 sinh^2((a - b)/2) + sinh(a) sinh(b) |u - v|^2 / 2.
    (The kernel takes 1 - cos(theta) = |u - v|^2 / 2 from the dot product when
    cos(theta) <= 1/2, where that is as accurate; the reference always uses |u - v|^2.)
    """
    q = query.astype(np.float64)
    k = ancestors.astype(np.float64)
    lift = lorentz_lift(depths, depth_scale)
    sc = math.sqrt(curvature)
    qn = math.sqrt(float(q @ q))
    kn = np.sqrt(lift * lift + np.einsum("ij,ij->i", k, k))
    qu = q / qn if qn > 0.0 else np.zeros_like(q)
    inv = np.divide(1.0, kn, out=np.zeros_like(kn), where=kn > 0.0)  # a zero vector has no direction
    ku, lu = k * inv[:, None], lift * inv
    chord2 = ((qu[None, :] - ku) ** 2).sum(axis=1) + lu * lu  # |u - v|^2; the query has 0 on the depth axis
    a, b = sc * qn, sc * kn
    with np.errstate(over="ignore", invalid="ignore"):  # overflow -> inf/NaN -> reported as a failure
        s = np.sinh(0.5 * (a - b))
        eps = 2.0 * s * s + np.sinh(a) * np.sinh(b) * (0.5 * chord2)
        return arcosh1p(eps) / sc


def hierarchical_lorentz_logits(query: F32Array, ancestors: F32Array, depths: IntArray, curvature: float,
                                temperature: float, depth_scale: float) -> F64Array:
    """-d_c(q, k_i) / temperature."""
    with np.errstate(over="ignore", invalid="ignore"):
        return checked(-lorentz_distances(query, ancestors, depths, curvature, depth_scale) / temperature)


def parallel_branch_logits(query: F32Array, ancestors: F32Array, parallel_nodes: F32Array,
                           common_ancestor_mask: BoolArray, cross_weight: float, common_boost: float,
                           temperature: float) -> F64Array:
    """[s_i + common_boost * [i common]]_ancestors followed by [s_j + ln cross_weight]_parallel."""
    own = checked(scaled_dot_logits(query, ancestors, temperature) + np.where(common_ancestor_mask, common_boost, 0.0))
    if parallel_nodes.size == 0:
        return own
    if cross_weight == 0.0:
        cross = np.full(parallel_nodes.shape[0], -np.inf)
    else:
        cross = checked(scaled_dot_logits(query, parallel_nodes, temperature) + math.log(cross_weight))
    return np.concatenate([own, cross])


def temporal_btsp_logits(query: F32Array, ancestors: F32Array, timestamps: F64Array, window_ms: float,
                         boost: float, temperature: float) -> F64Array:
    """s_i + boost * max(0, 1 - (max(t) - t_i) / window_ms)."""
    t = np.asarray(timestamps, dtype=np.float64)
    recency = np.maximum(0.0, 1.0 - (t.max() - t) / window_ms)
    return checked(scaled_dot_logits(query, ancestors, temperature) + boost * recency)


# --------------------------------------------------------------------------
# Mechanisms
# --------------------------------------------------------------------------

@_QUIET
def topological(query: F32Array, ancestors: F32Array, decay_rate: float, temperature: float,
                mask: BoolArray | None) -> F32Array:
    return as_weights(softmax(topological_logits(query, ancestors, decay_rate, temperature, mask)))


@_QUIET
def causal_cone(query: F32Array, ancestors: F32Array, depths: IntArray, decay_rate: float, max_depth: int,
                temperature: float) -> F32Array:
    return as_weights(softmax(causal_cone_logits(query, ancestors, depths, decay_rate, max_depth, temperature)))


@_QUIET
def critical_path(query: F32Array, ancestors: F32Array, is_critical: BoolArray, boost: float,
                  temperature: float) -> F32Array:
    return as_weights(softmax(critical_path_logits(query, ancestors, is_critical, boost, temperature)))


@_QUIET
def mincut_gated(query: F32Array, ancestors: F32Array, criticalities: F64Array, threshold: float,
                 temperature: float) -> F32Array:
    return as_weights(softmax(mincut_gated_logits(query, ancestors, criticalities, threshold, temperature)))


@_QUIET
def hierarchical_lorentz(query: F32Array, ancestors: F32Array, depths: IntArray, curvature: float,
                         temperature: float, depth_scale: float) -> F32Array:
    logits = hierarchical_lorentz_logits(query, ancestors, depths, curvature, temperature, depth_scale)
    return as_weights(softmax(logits))


@_QUIET
def parallel_branch(query: F32Array, ancestors: F32Array, parallel_nodes: F32Array,
                    common_ancestor_mask: BoolArray, cross_weight: float, common_boost: float,
                    temperature: float) -> F32Array:
    logits = parallel_branch_logits(query, ancestors, parallel_nodes, common_ancestor_mask, cross_weight,
                                    common_boost, temperature)
    return as_weights(softmax(logits))


@_QUIET
def temporal_btsp(query: F32Array, ancestors: F32Array, timestamps: F64Array, window_ms: float, boost: float,
                  temperature: float) -> F32Array:
    return as_weights(softmax(temporal_btsp_logits(query, ancestors, timestamps, window_ms, boost, temperature)))


def member_weights_with_defaults(name: str, query: F32Array, ancestors: F32Array,
                                 defaults: Mapping[str, float]) -> F64Array:
    """Float64 weights of one ensemble member run on (query, ancestors) with its default arguments.

    Per-ancestor defaults: depths i + 1 (max_depth n), no mask, no critical node,
    criticalities 1, no parallel node, no common ancestor, equal timestamps.
    """
    n = ancestors.shape[0]
    temperature = defaults["temperature"]
    depths = np.arange(1, n + 1)
    if name == "topological":
        logits = topological_logits(query, ancestors, defaults["decay_rate"], temperature, None)
    elif name == "causal_cone":
        logits = causal_cone_logits(query, ancestors, depths, defaults["decay_rate"], n, temperature)
    elif name == "critical_path":
        logits = critical_path_logits(query, ancestors, np.zeros(n, bool), defaults["boost"], temperature)
    elif name == "mincut_gated":
        logits = mincut_gated_logits(query, ancestors, np.ones(n), defaults["threshold"], temperature)
    elif name == "hierarchical_lorentz":
        logits = hierarchical_lorentz_logits(query, ancestors, depths, defaults["curvature"], temperature,
                                             defaults["depth_scale"])
    elif name == "parallel_branch":
        logits = parallel_branch_logits(query, ancestors, np.zeros((0, query.shape[0]), np.float32),
                                        np.zeros(n, bool), defaults["cross_weight"], defaults["common_boost"],
                                        temperature)
    elif name == "temporal_btsp":
        logits = temporal_btsp_logits(query, ancestors, np.zeros(n), defaults["window_ms"], defaults["boost"],
                                      temperature)
    else:
        raise ValueError(f"unknown attention type {name!r}")
    return softmax(logits)


@_QUIET
def ensemble(query: F32Array, ancestors: F32Array, members: Sequence[tuple[str, float]],
             defaults: Mapping[str, Mapping[str, float]]) -> F32Array:
    """sum_t w_t * weights_t over (name, normalised weight) pairs with w_t > 0, in the given order."""
    total = np.zeros(ancestors.shape[0])
    for name, weight in members:
        if weight == 0.0:
            continue
        total = total + weight * member_weights_with_defaults(name, query, ancestors, defaults[name])
    return as_weights(total)
