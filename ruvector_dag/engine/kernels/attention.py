"""Numba kernels of the attention mechanisms (the math is in ``docs/attention.md``).

These are pure compute routines.  :mod:`ruvector_dag.engine.attention` validates every
argument first and calls them under this contract:

* ``query`` is a C-contiguous float32 vector of length d >= 1; ``ancestors`` and
  ``parallel_nodes`` are C-contiguous float32 matrices with d columns (``ancestors``
  has n >= 1 rows, ``parallel_nodes`` may have 0); per-ancestor arrays have exactly
  n elements: int32 depths (>= 0), bool flags, float32
  criticalities, float64 timestamps; scalars are Python ``float`` (``int`` for
  ``max_depth``), already range-checked and finite.
* Every array argument is read-only.  Numba compiles one specialisation per
  writability flag, so the API freezes its arrays and each kernel ends up with
  exactly one compiled signature, the one ``warm_up`` loads.
* Everything is computed in float64; the result is a new float32 vector.
* A logit of ``-inf`` marks a node that takes no part (masked, outside the cone,
  gated to zero, ``cross_weight`` 0): its weight is exactly 0, and when every node
  is out the result is all zeros.
* A *computed* logit that is not finite (overflow from huge but finite inputs, e.g.
  a tiny temperature or a Lorentz point whose cosh overflows) is a numerical
  failure: the kernel returns all-NaN weights and the API raises
  ``NumericalFailure``.  A NaN in the output therefore means failure and nothing
  else.

Kernels are ``@njit(cache=True)`` without ``parallel`` or ``fastmath``: results are
deterministic and follow IEEE semantics (the reductions use a fixed order).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit  # type: ignore[import-untyped]

F32Vector = npt.NDArray[np.float32]
F32Matrix = npt.NDArray[np.float32]
F64Vector = npt.NDArray[np.float64]
I32Vector = npt.NDArray[np.int32]
BoolVector = npt.NDArray[np.bool_]

#: Mechanism indices used by :func:`ensemble` (the order of ``ATTENTION_TYPES``).
TOPOLOGICAL, CAUSAL_CONE, CRITICAL_PATH, MINCUT_GATED, HIERARCHICAL_LORENTZ, PARALLEL_BRANCH, TEMPORAL_BTSP = range(7)
N_MECHANISMS = 7

_LN2 = math.log(2.0)
# Above this, arcosh(1 + eps) = ln 2 + ln(1 + eps) to within 1e-17 relative, and
# eps * (2 + eps) would overflow long before eps does.
_ARCOSH_LARGE = 1e8


# --------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------

@njit(cache=True)
def _dots(query: F32Vector, rows: F32Matrix) -> F64Vector:
    """``q . r_i`` in float64 for every row.

    Four partial sums: without fastmath LLVM may not reorder a float reduction, so a
    single accumulator would serialise on the add latency.
    """
    n, d = rows.shape
    q = np.empty(d)
    for j in range(d):
        q[j] = query[j]
    out = np.empty(n)
    d4 = d - d % 4
    for i in range(n):
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for j in range(0, d4, 4):
            s0 += q[j] * rows[i, j]
            s1 += q[j + 1] * rows[i, j + 1]
            s2 += q[j + 2] * rows[i, j + 2]
            s3 += q[j + 3] * rows[i, j + 3]
        for j in range(d4, d):
            s0 += q[j] * rows[i, j]
        out[i] = (s0 + s1) + (s2 + s3)
    return out


@njit(cache=True)
def _sum_squares(values: F32Vector, start: float) -> float:
    """start + sum of values[j]^2 in float64 (4 partial sums, as in _dots)."""
    d = values.shape[0]
    d4 = d - d % 4
    s0 = start
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    for j in range(0, d4, 4):
        v0 = np.float64(values[j])
        v1 = np.float64(values[j + 1])
        v2 = np.float64(values[j + 2])
        v3 = np.float64(values[j + 3])
        s0 += v0 * v0
        s1 += v1 * v1
        s2 += v2 * v2
        s3 += v3 * v3
    for j in range(d4, d):
        v0 = np.float64(values[j])
        s0 += v0 * v0
    return (s0 + s1) + (s2 + s3)


@njit(cache=True)
def _checked(value: float) -> float:
    """A computed logit, or NaN (the failure marker) when it is not finite."""
    return value if math.isfinite(value) else math.nan


@njit(cache=True)
def _softmax_inplace(logits: F64Vector) -> bool:
    """Max-subtracted softmax over the active (> -inf) logits, in place.

    Returns False (and leaves ``logits`` undefined) when a logit is NaN or +inf.
    All-inactive input becomes all zeros.
    """
    n = logits.shape[0]
    top = -math.inf
    for i in range(n):
        v = logits[i]
        if math.isnan(v) or v == math.inf:
            return False
        if v > top:
            top = v
    if top == -math.inf:
        logits[:] = 0.0
        return True
    total = 0.0
    for i in range(n):
        e = math.exp(logits[i] - top)  # exp(-inf) == 0 exactly: inactive nodes drop out
        logits[i] = e
        total += e
    for i in range(n):  # total >= 1: the maximum contributes exp(0)
        logits[i] = logits[i] / total
    return True


@njit(cache=True)
def _output(weights: F64Vector, ok: bool) -> F32Vector:
    n = weights.shape[0]
    out = np.empty(n, np.float32)
    if not ok:
        out[:] = np.nan
        return out
    for i in range(n):
        out[i] = weights[i]
    return out


@njit(cache=True)
def _scaled(dot: float, sqrt_d: float, temperature: float) -> float:
    return dot / (sqrt_d * temperature)


@njit(cache=True)
def _arcosh1p(eps: float) -> float:
    """arcosh(1 + eps) for eps >= 0, accurate near 0 (where arcosh itself is not)."""
    if eps < _ARCOSH_LARGE:
        return math.log1p(eps + math.sqrt(eps * (2.0 + eps)))
    return _LN2 + math.log1p(eps)  # also propagates inf / NaN


# --------------------------------------------------------------------------
# Logits of each mechanism (shared by the single kernels and the ensemble)
# --------------------------------------------------------------------------

@njit(cache=True)
def _topological_logits(dots: F64Vector, sqrt_d: float, temperature: float, decay_rate: float,
                        mask: BoolVector, logits: F64Vector) -> None:
    has_mask = mask.shape[0] > 0  # an empty mask means "no mask"
    for i in range(dots.shape[0]):
        if has_mask and not mask[i]:
            logits[i] = -math.inf
        else:
            logits[i] = _checked(_scaled(dots[i], sqrt_d, temperature) - decay_rate * i)


@njit(cache=True)
def _causal_cone_logits(dots: F64Vector, sqrt_d: float, temperature: float, depths: I32Vector,
                        decay_rate: float, max_depth: int, logits: F64Vector) -> None:
    for i in range(dots.shape[0]):
        if depths[i] > max_depth:
            logits[i] = -math.inf
        else:
            logits[i] = _checked(_scaled(dots[i], sqrt_d, temperature) - decay_rate * depths[i])


@njit(cache=True)
def _critical_path_logits(dots: F64Vector, sqrt_d: float, temperature: float, is_critical: BoolVector,
                          boost: float, logits: F64Vector) -> None:
    for i in range(dots.shape[0]):
        bias = boost if is_critical[i] else 0.0
        logits[i] = _checked(_scaled(dots[i], sqrt_d, temperature) + bias)


@njit(cache=True)
def _mincut_gated_logits(dots: F64Vector, sqrt_d: float, temperature: float, criticalities: F32Vector,
                         threshold: float, logits: F64Vector) -> None:
    # Gating the softmax and renormalising equals adding ln(gate) to the logit; the
    # log form cannot underflow the renormalising sum.
    for i in range(dots.shape[0]):
        c = criticalities[i]
        gate = 1.0 if c >= threshold else c / threshold  # threshold 0: every c >= 0 passes
        if gate == 0.0:
            logits[i] = -math.inf
        else:
            logits[i] = _checked(_scaled(dots[i], sqrt_d, temperature) + math.log(gate))


@njit(cache=True)
def _lorentz_logits(query: F32Vector, ancestors: F32Matrix, depths: I32Vector, curvature: float,
                    temperature: float, depth_scale: float, logits: F64Vector) -> None:
    """-d_c(exp_o(q, 0), exp_o(k_i, depth_scale * ln(1 + depth_i))) / temperature.

    Uses cosh(sqrt(c) d) = 1 + 2 sinh^2((a - b)/2) + sinh(a) sinh(b) (1 - cos theta)
    with a, b the geodesic radii: every term is >= 0, so nearby points do not lose
    their distance to cancellation.  1 - cos theta comes from the dot product when
    the directions are far apart (at most a factor 2 of relative precision lost for
    cos theta <= 1/2) and from |u - v|^2 / 2 over the unit directions otherwise.
    """
    n, d = ancestors.shape
    sc = math.sqrt(curvature)
    qn = math.sqrt(_sum_squares(query, 0.0))
    qu = np.zeros(d)
    if qn > 0.0:
        for j in range(d):
            qu[j] = query[j] / qn
    a = sc * qn
    sinh_a = math.sinh(a)
    d4 = d - d % 4
    for i in range(n):
        lift = depth_scale * math.log1p(depths[i])
        # one pass: |k_i|^2 and u . k_i, four partial sums each as in _dots
        k0 = lift * lift
        k1 = 0.0
        k2 = 0.0
        k3 = 0.0
        p0 = 0.0
        p1 = 0.0
        p2 = 0.0
        p3 = 0.0
        for j in range(0, d4, 4):
            v0 = np.float64(ancestors[i, j])
            v1 = np.float64(ancestors[i, j + 1])
            v2 = np.float64(ancestors[i, j + 2])
            v3 = np.float64(ancestors[i, j + 3])
            k0 += v0 * v0
            k1 += v1 * v1
            k2 += v2 * v2
            k3 += v3 * v3
            p0 += qu[j] * v0
            p1 += qu[j + 1] * v1
            p2 += qu[j + 2] * v2
            p3 += qu[j + 3] * v3
        for j in range(d4, d):
            v0 = np.float64(ancestors[i, j])
            k0 += v0 * v0
            p0 += qu[j] * v0
        kn = math.sqrt((k0 + k1) + (k2 + k3))
        cos_theta = ((p0 + p1) + (p2 + p3)) / kn if kn > 0.0 else 0.0  # a zero vector has sinh(b) = 0
        if cos_theta <= 0.5:
            one_minus_cos = 1.0 - cos_theta
        else:
            one_minus_cos = 0.5 * _chord_squared(qu, ancestors, i, lift, kn)
        b = sc * kn
        s = math.sinh(0.5 * (a - b))
        eps = 2.0 * s * s + sinh_a * math.sinh(b) * one_minus_cos
        logits[i] = _checked(-(_arcosh1p(eps) / sc) / temperature)


@njit(cache=True)
def _chord_squared(qu: F64Vector, ancestors: F32Matrix, i: int, lift: float, kn: float) -> float:
    """|u - v|^2 between the query's unit direction and that of (k_i, lift); kn = |(k_i, lift)| > 0."""
    d = qu.shape[0]
    d4 = d - d % 4
    inv = 1.0 / kn
    t = lift * inv  # the query's coordinate on the depth axis is 0
    h0 = t * t
    h1 = 0.0
    h2 = 0.0
    h3 = 0.0
    for j in range(0, d4, 4):
        t0 = qu[j] - ancestors[i, j] * inv
        t1 = qu[j + 1] - ancestors[i, j + 1] * inv
        t2 = qu[j + 2] - ancestors[i, j + 2] * inv
        t3 = qu[j + 3] - ancestors[i, j + 3] * inv
        h0 += t0 * t0
        h1 += t1 * t1
        h2 += t2 * t2
        h3 += t3 * t3
    for j in range(d4, d):
        t0 = qu[j] - ancestors[i, j] * inv
        h0 += t0 * t0
    return (h0 + h1) + (h2 + h3)


@njit(cache=True)
def _parallel_branch_logits(dots: F64Vector, parallel_dots: F64Vector, sqrt_d: float, temperature: float,
                            common_ancestor_mask: BoolVector, cross_weight: float, common_boost: float,
                            logits: F64Vector) -> None:
    n = dots.shape[0]
    for i in range(n):
        bias = common_boost if common_ancestor_mask[i] else 0.0
        logits[i] = _checked(_scaled(dots[i], sqrt_d, temperature) + bias)
    log_cross = math.log(cross_weight) if cross_weight > 0.0 else 0.0
    for j in range(parallel_dots.shape[0]):
        if cross_weight == 0.0:
            logits[n + j] = -math.inf
        else:
            logits[n + j] = _checked(_scaled(parallel_dots[j], sqrt_d, temperature) + log_cross)


@njit(cache=True)
def _temporal_btsp_logits(dots: F64Vector, sqrt_d: float, temperature: float, timestamps: F64Vector,
                          window_ms: float, boost: float, logits: F64Vector) -> None:
    t_ref = timestamps.max()
    for i in range(dots.shape[0]):
        recency = 1.0 - (t_ref - timestamps[i]) / window_ms
        if recency < 0.0:
            recency = 0.0
        logits[i] = _checked(_scaled(dots[i], sqrt_d, temperature) + boost * recency)


# --------------------------------------------------------------------------
# Kernels (one fused call per mechanism)
# --------------------------------------------------------------------------

@njit(cache=True)
def topological(query: F32Vector, ancestors: F32Matrix, decay_rate: float, temperature: float,
                mask: BoolVector) -> F32Vector:
    """``mask`` of length 0 means no mask."""
    logits = _dots(query, ancestors)
    _topological_logits(logits, math.sqrt(query.shape[0]), temperature, decay_rate, mask, logits)
    return _output(logits, _softmax_inplace(logits))


@njit(cache=True)
def causal_cone(query: F32Vector, ancestors: F32Matrix, depths: I32Vector, decay_rate: float, max_depth: int,
                temperature: float) -> F32Vector:
    logits = _dots(query, ancestors)
    _causal_cone_logits(logits, math.sqrt(query.shape[0]), temperature, depths, decay_rate, max_depth, logits)
    return _output(logits, _softmax_inplace(logits))


@njit(cache=True)
def critical_path(query: F32Vector, ancestors: F32Matrix, is_critical: BoolVector, boost: float,
                  temperature: float) -> F32Vector:
    logits = _dots(query, ancestors)
    _critical_path_logits(logits, math.sqrt(query.shape[0]), temperature, is_critical, boost, logits)
    return _output(logits, _softmax_inplace(logits))


@njit(cache=True)
def mincut_gated(query: F32Vector, ancestors: F32Matrix, criticalities: F32Vector, threshold: float,
                 temperature: float) -> F32Vector:
    logits = _dots(query, ancestors)
    _mincut_gated_logits(logits, math.sqrt(query.shape[0]), temperature, criticalities, threshold, logits)
    return _output(logits, _softmax_inplace(logits))


@njit(cache=True)
def hierarchical_lorentz(query: F32Vector, ancestors: F32Matrix, depths: I32Vector, curvature: float,
                         temperature: float, depth_scale: float) -> F32Vector:
    logits = np.empty(ancestors.shape[0])
    _lorentz_logits(query, ancestors, depths, curvature, temperature, depth_scale, logits)
    return _output(logits, _softmax_inplace(logits))


@njit(cache=True)
def parallel_branch(query: F32Vector, ancestors: F32Matrix, parallel_nodes: F32Matrix,
                    common_ancestor_mask: BoolVector, cross_weight: float, common_boost: float,
                    temperature: float) -> F32Vector:
    """Weights of the n ancestors followed by those of the m parallel nodes."""
    dots = _dots(query, ancestors)
    parallel_dots = _dots(query, parallel_nodes)
    logits = np.empty(dots.shape[0] + parallel_dots.shape[0])
    _parallel_branch_logits(dots, parallel_dots, math.sqrt(query.shape[0]), temperature, common_ancestor_mask,
                            cross_weight, common_boost, logits)
    return _output(logits, _softmax_inplace(logits))


@njit(cache=True)
def temporal_btsp(query: F32Vector, ancestors: F32Matrix, timestamps: F64Vector, window_ms: float, boost: float,
                  temperature: float) -> F32Vector:
    logits = _dots(query, ancestors)
    _temporal_btsp_logits(logits, math.sqrt(query.shape[0]), temperature, timestamps, window_ms, boost, logits)
    return _output(logits, _softmax_inplace(logits))


@njit(cache=True)
def _member_logits(kind: int, query: F32Vector, ancestors: F32Matrix, dots: F64Vector, params: F64Vector,
                   logits: F64Vector) -> None:
    """Logits of one ensemble member run on (query, ancestors) with its default arguments.

    ``params`` = (temperature, p1, p2) as documented at :func:`ensemble`; the
    per-ancestor arguments are the defaults of docs/attention.md (depths i + 1, no
    mask, no critical node, criticalities 1, no parallel node, equal timestamps).
    """
    n = dots.shape[0]
    sqrt_d = math.sqrt(query.shape[0])
    temperature = params[0]
    depths = np.arange(1, n + 1, 1, dtype=np.int32)  # row i (nearest first) is i + 1 hops away
    if kind == TOPOLOGICAL:
        _topological_logits(dots, sqrt_d, temperature, params[1], np.zeros(0, np.bool_), logits)
    elif kind == CAUSAL_CONE:
        _causal_cone_logits(dots, sqrt_d, temperature, depths, params[1], n, logits)
    elif kind == CRITICAL_PATH:
        _critical_path_logits(dots, sqrt_d, temperature, np.zeros(n, np.bool_), params[1], logits)
    elif kind == MINCUT_GATED:
        _mincut_gated_logits(dots, sqrt_d, temperature, np.ones(n, np.float32), params[1], logits)
    elif kind == HIERARCHICAL_LORENTZ:
        _lorentz_logits(query, ancestors, depths, params[1], temperature, params[2], logits)
    elif kind == PARALLEL_BRANCH:
        _parallel_branch_logits(dots, np.zeros(0), sqrt_d, temperature, np.zeros(n, np.bool_), params[1],
                                params[2], logits)
    else:
        _temporal_btsp_logits(dots, sqrt_d, temperature, np.zeros(n), params[1], params[2], logits)


@njit(cache=True)
def ensemble(query: F32Vector, ancestors: F32Matrix, member_weights: F64Vector, params: npt.NDArray[np.float64]
             ) -> F32Vector:
    """sum_t member_weights[t] * weights of mechanism t (indices as ``ATTENTION_TYPES``).

    ``member_weights`` (length 7) is already normalised; members with weight 0 are not
    evaluated.  ``params[t]`` = (temperature, p1, p2):

    topological (T, decay_rate, -), causal_cone (T, decay_rate, -) with max_depth n,
    critical_path (T, boost, -), mincut_gated (T, threshold, -),
    hierarchical_lorentz (T, curvature, depth_scale),
    parallel_branch (T, cross_weight, common_boost), temporal_btsp (T, window_ms, boost).
    The dot products are computed once and shared by the members.
    """
    n = ancestors.shape[0]
    dots = _dots(query, ancestors)
    total = np.zeros(n)
    logits = np.empty(n)
    for kind in range(N_MECHANISMS):
        w = member_weights[kind]
        if w == 0.0:
            continue
        _member_logits(kind, query, ancestors, dots, params[kind], logits)
        if not _softmax_inplace(logits):
            return _output(total, False)
        for i in range(n):
            total[i] += w * logits[i]
    return _output(total, True)


# --------------------------------------------------------------------------
# Scans the validator uses (one pass, no temporary arrays)
# --------------------------------------------------------------------------

@njit(cache=True)
def all_finite(values: npt.NDArray[np.floating]) -> bool:
    """True when no element is NaN or +-inf (a branch-free scan the compiler vectorises)."""
    bad = False
    for v in values.flat:
        bad |= not math.isfinite(v)
    return not bad


@njit(cache=True)
def all_finite_pair(first: npt.NDArray[np.floating], second: npt.NDArray[np.floating]) -> bool:
    """all_finite of both arrays in one call (query and ancestors are always checked together)."""
    bad = False
    for v in first.flat:
        bad |= not math.isfinite(v)
    for v in second.flat:
        bad |= not math.isfinite(v)
    return not bad


@njit(cache=True)
def all_within(values: npt.NDArray[np.number], low: float, high: float) -> bool:
    """True when every element lies in [low, high] (NaN never does); branch-free like all_finite."""
    bad = False
    for v in values.flat:
        bad |= not ((v >= low) & (v <= high))
    return not bad
