"""Attention mechanisms: Numba kernels vs NumPy reference, properties, validation, failures.

Everything is seeded (NumPy generators, hypothesis with ``derandomize=True``), so a
run is deterministic; the math being tested is in docs/attention.md.
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ruvector_dag.definitions.errors import (
    InvalidParameter,
    NullValueNotAllowed,
    NumericalFailure,
    ProgramLimitExceeded,
    RuvectorError,
)
from ruvector_dag.engine import attention as A
from ruvector_dag.engine import attention_reference as R
from ruvector_dag.engine.kernels import attention as K

BACKENDS = ("numba", "numpy")
MECHANISMS = (*A.ATTENTION_TYPES, "ensemble")
# Mechanisms whose weights do not depend on the order of the ancestors.
EQUIVARIANT = ("causal_cone", "critical_path", "mincut_gated", "hierarchical_lorentz", "parallel_branch",
               "temporal_btsp")

Case = tuple[tuple[Any, ...], dict[str, Any]]
HYPOTHESIS = settings(derandomize=True, database=None, deadline=None, max_examples=40,
                      suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", autouse=True)
def _compiled() -> None:
    A.warm_up()  # compile (or load) the kernels once, outside any timing-sensitive test


def run(name: str, case: Case, backend: str = "numba") -> np.ndarray:
    args, kwargs = case
    return getattr(A, name)(*args, **kwargs, backend=backend)


def vectors(rng: np.random.Generator, n: int, d: int, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    q = (rng.standard_normal(d) * scale).astype(np.float32)
    k = (rng.standard_normal((n, d)) * scale).astype(np.float32)
    return q, k


def random_case(name: str, rng: np.random.Generator, n: int, d: int, scale: float = 1.0) -> Case:
    """Arguments of mechanism ``name`` on random (n, d) inputs with random parameters."""
    q, k = vectors(rng, n, d, scale)
    temp = {"temperature": float(rng.choice([0.25, 1.0, 3.0]))}
    if name == "topological":
        mask = (rng.random(n) < 0.8) if rng.random() < 0.5 else None
        return (q, k), {"decay_rate": float(rng.uniform(0, 1)), "mask": mask, **temp}
    if name == "causal_cone":
        depths = rng.integers(0, 12, n).astype(np.int32)
        return (q, k, depths, float(rng.uniform(0, 1)), int(rng.integers(0, 12))), temp
    if name == "critical_path":
        return (q, k, rng.random(n) < 0.3, float(rng.uniform(-3, 3))), temp
    if name == "mincut_gated":
        return (q, k, rng.random(n), float(rng.uniform(0, 1))), temp
    if name == "hierarchical_lorentz":
        return (q, k, rng.integers(0, 20, n), float(rng.uniform(0.1, 2.0)), temp["temperature"]), {}
    if name == "parallel_branch":
        m = int(rng.integers(0, 5))
        p = (rng.standard_normal((m, d)) * scale).astype(np.float32)
        return (q, k, p, rng.random(n) < 0.3, float(rng.uniform(0, 1)), float(rng.uniform(-2, 2))), temp
    if name == "temporal_btsp":
        ts = rng.uniform(0, 5000, n)
        return (q, k, ts, float(rng.uniform(10, 3000)), float(rng.uniform(-3, 3))), temp
    types = list(rng.choice(A.ATTENTION_TYPES, size=int(rng.integers(1, 5))))
    weights = rng.uniform(0, 2, len(types)) if rng.random() < 0.5 else None
    return (q, k, types, weights), {}


def assert_weights(w: np.ndarray, length: int) -> None:
    assert w.dtype == np.float32 and w.shape == (length,)
    assert np.isfinite(w).all() and (w >= 0).all()
    if w.any():
        assert float(w.sum(dtype=np.float64)) == pytest.approx(1.0, abs=1e-5)


def out_length(name: str, case: Case) -> int:
    args = case[0]
    n = len(args[1])
    return n + len(args[2]) if name == "parallel_branch" else n


# --------------------------------------------------------------------------
# Numba kernels == NumPy reference
# --------------------------------------------------------------------------

SIZES = [(1, 1), (2, 3), (7, 5), (33, 16), (100, 64), (257, 7)]


@pytest.mark.parametrize("name", MECHANISMS)
def test_numba_matches_reference_on_seeded_sweep(name: str) -> None:
    rng = np.random.default_rng(20240611)
    for n, d in SIZES:
        for scale in (0.3, 1.0, 3.0):
            case = random_case(name, rng, n, d, scale)
            fast, ref = run(name, case, "numba"), run(name, case, "numpy")
            assert_weights(fast, out_length(name, case))
            np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-12, err_msg=f"{name} n={n} d={d}")


def _outcome(name: str, case: Case, backend: str) -> np.ndarray | str:
    try:
        return run(name, case, backend)
    except NumericalFailure:
        return "NumericalFailure"


@pytest.mark.parametrize("name", MECHANISMS)
@HYPOTHESIS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40), d=st.integers(1, 24),
       log_scale=st.floats(-3, 1.5))
def test_numba_matches_reference_hypothesis(name: str, seed: int, n: int, d: int, log_scale: float) -> None:
    case = random_case(name, np.random.default_rng(seed), n, d, 10.0**log_scale)
    fast, ref = _outcome(name, case, "numba"), _outcome(name, case, "numpy")
    if isinstance(fast, str) or isinstance(ref, str):
        assert fast == ref
    else:
        np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("name", MECHANISMS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_weights_are_a_distribution(name: str, backend: str) -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        n, d = int(rng.integers(1, 60)), int(rng.integers(1, 20))
        case = random_case(name, rng, n, d)
        assert_weights(run(name, case, backend), out_length(name, case))


def test_known_value() -> None:
    q, k = np.array([1, 0], np.float32), np.eye(2, dtype=np.float32)
    logits = np.array([1 / math.sqrt(2), -0.1])
    want = (np.exp(logits) / np.exp(logits).sum()).astype(np.float32)
    for backend in BACKENDS:
        np.testing.assert_allclose(A.topological(q, k, backend=backend), want, rtol=1e-6)


def test_float64_and_list_inputs_are_read_as_real() -> None:
    rng = np.random.default_rng(3)
    q, k = vectors(rng, 5, 4)
    want = A.topological(q, k)
    np.testing.assert_array_equal(A.topological(q.astype(np.float64), k.astype(np.float64)), want)
    np.testing.assert_array_equal(A.topological(q.tolist(), k.tolist()), want)
    np.testing.assert_array_equal(A.topological(q, np.asfortranarray(k)), want)


# --------------------------------------------------------------------------
# Excluded nodes get exactly zero
# --------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_excluded_nodes_get_exactly_zero(backend: str) -> None:
    q, k = vectors(np.random.default_rng(11), 6, 4)
    mask = np.array([True, False, True, False, True, True])
    w = A.topological(q, k, mask=mask, backend=backend)
    assert (w[~mask] == 0.0).all() and (w[mask] > 0).all()

    depths = np.array([0, 1, 2, 3, 4, 5])
    w = A.causal_cone(q, k, depths, 0.2, 3, backend=backend)
    assert (w[depths > 3] == 0.0).all() and (w[depths <= 3] > 0).all()  # depth == max_depth is inside

    crit = np.array([0.0, 0.2, 0.9, 0.0, 1.0, 0.5])
    w = A.mincut_gated(q, k, crit, 0.5, backend=backend)
    assert (w[crit == 0] == 0.0).all() and (w[crit > 0] > 0).all()

    p = np.ones((3, 4), np.float32)
    w = A.parallel_branch(q, k, p, np.zeros(6, bool), 0.0, 1.0, backend=backend)
    assert w.shape == (9,) and (w[6:] == 0.0).all()
    np.testing.assert_allclose(w[:6], A.topological(q, k, decay_rate=0.0, backend=backend), rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_all_excluded_gives_all_zeros(backend: str) -> None:
    q, k = vectors(np.random.default_rng(12), 4, 3)
    zeros = np.zeros(4, np.float32)
    np.testing.assert_array_equal(A.topological(q, k, mask=[False] * 4, backend=backend), zeros)
    np.testing.assert_array_equal(A.causal_cone(q, k, [3, 4, 5, 6], 0.1, 2, backend=backend), zeros)
    np.testing.assert_array_equal(A.mincut_gated(q, k, [0.0] * 4, 0.3, backend=backend), zeros)


def test_mincut_threshold_zero_disables_the_gate() -> None:
    q, k = vectors(np.random.default_rng(13), 5, 3)
    plain = A.critical_path(q, k, [False] * 5, 0.0)
    np.testing.assert_allclose(A.mincut_gated(q, k, [0.0, 0.1, 0.5, 0.9, 1.0], 0.0), plain, rtol=1e-6)


def test_parallel_branch_without_parallel_nodes() -> None:
    q, k = vectors(np.random.default_rng(14), 5, 3)
    common = np.array([True, False, False, True, False])
    for empty in ([], np.zeros((0, 3), np.float32), np.zeros(0, np.float32)):
        w = A.parallel_branch(q, k, empty, common, 0.5, 1.5)
        assert w.shape == (5,)
        np.testing.assert_allclose(w, A.critical_path(q, k, common, 1.5), rtol=1e-6)


# --------------------------------------------------------------------------
# Literal formulas (the reference against a naive evaluation of the definition)
# --------------------------------------------------------------------------

def test_mincut_equals_gate_after_softmax_then_renormalise() -> None:
    rng = np.random.default_rng(15)
    for _ in range(10):
        q, k = vectors(rng, 12, 5)
        crit = rng.random(12)
        threshold = float(rng.uniform(0.05, 1))
        s = (k.astype(np.float64) @ q.astype(np.float64)) / math.sqrt(5)
        p = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
        gated = p * np.where(crit >= threshold, 1.0, crit / threshold)
        np.testing.assert_allclose(A.mincut_gated(q, k, crit, threshold), gated / gated.sum(), rtol=1e-5)


def _hyperboloid_distance(x: np.ndarray, y: np.ndarray, c: float) -> float:
    """Distance by the textbook route: exponential map at the origin, Minkowski product, arcosh."""

    def expmap(v: np.ndarray) -> np.ndarray:
        r = float(np.linalg.norm(v))
        if r == 0:
            return np.concatenate([[1 / math.sqrt(c)], np.zeros_like(v)])
        return np.concatenate([[math.cosh(math.sqrt(c) * r) / math.sqrt(c)],
                               math.sinh(math.sqrt(c) * r) * v / (math.sqrt(c) * r)])

    px, py = expmap(x), expmap(y)
    minkowski = -px[0] * py[0] + float(px[1:] @ py[1:])
    return math.acosh(max(1.0, -c * minkowski)) / math.sqrt(c)


def test_lorentz_distance_matches_the_hyperboloid_definition() -> None:
    rng = np.random.default_rng(16)
    for _ in range(20):
        d, c = int(rng.integers(1, 6)), float(rng.uniform(0.2, 3))
        q, k = vectors(rng, 6, d, 0.7)
        depths = rng.integers(0, 5, 6)
        got = R.lorentz_distances(q, k, depths, c, A.LORENTZ_DEPTH_SCALE)
        lift = A.LORENTZ_DEPTH_SCALE * np.log1p(depths)
        qx = np.concatenate([q.astype(np.float64), [0.0]])
        want = [_hyperboloid_distance(qx, np.concatenate([k[i].astype(np.float64), [lift[i]]]), c)
                for i in range(6)]
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
        logits = -np.array(want)
        np.testing.assert_allclose(A.hierarchical_lorentz(q, k, depths, c, 1.0),
                                   np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum(),
                                   rtol=1e-5)


def test_lorentz_keeps_accuracy_for_nearby_far_points() -> None:
    # (a, b) and (b, a) have exactly the same radius r, so the exact distance is
    # 2 asinh(sinh(r) sin(theta / 2)) with sin(theta / 2) = |a - b| / (sqrt(2) r).  Far from
    # the origin and close together, the textbook Minkowski product cancels catastrophically.
    a, b = np.float32(7.0710678), np.nextafter(np.float32(7.0710678), np.float32(8))
    q, k = np.array([a, b], np.float32), np.array([[b, a]], np.float32)
    r = math.hypot(float(a), float(b))
    exact = 2 * math.asinh(math.sinh(r) * abs(float(a) - float(b)) / (math.sqrt(2) * r))
    got = R.lorentz_distances(q, k, np.array([0]), 1.0, 1.0)[0]
    assert got == pytest.approx(exact, rel=1e-9)
    naive = _hyperboloid_distance(q.astype(np.float64), k[0].astype(np.float64), 1.0)
    assert abs(naive - exact) > 1e-3 * exact  # the test can tell the difference
    logits = -np.array([exact, float(R.lorentz_distances(q, np.array([[0, 1]], np.float32), [0], 1.0, 1.0)[0])])
    two = np.vstack([k, [[0, 1]]]).astype(np.float32)
    for backend in BACKENDS:  # the far node's weight is ~e^-10: relative errors of the near distance show
        np.testing.assert_allclose(A.hierarchical_lorentz(q, two, [0, 0], 1.0, 1.0, backend=backend),
                                   np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum(), rtol=1e-6)


def test_temporal_bias_follows_the_window() -> None:
    q = np.array([1.0], np.float32)
    k = np.ones((4, 1), np.float32)
    ts = [1000.0, 900.0, 500.0, 0.0]  # t_ref = 1000: deltas 0, 100, 500, 1000
    w = A.temporal_btsp(q, k, ts, 500.0, 2.0).astype(np.float64)
    bias = 2.0 * np.array([1.0, 0.8, 0.0, 0.0])
    np.testing.assert_allclose(w, np.exp(bias) / np.exp(bias).sum(), rtol=1e-6)


# --------------------------------------------------------------------------
# Permutation equivariance
# --------------------------------------------------------------------------

def _permute_case(name: str, case: Case, perm: np.ndarray) -> Case:
    args, kwargs = case
    args = list(args)
    args[1] = args[1][perm]
    if name == "parallel_branch":
        args[3] = args[3][perm]
    elif name != "ensemble":
        args[2] = np.asarray(args[2])[perm]
    if kwargs.get("mask") is not None:
        kwargs = {**kwargs, "mask": kwargs["mask"][perm]}
    return tuple(args), kwargs


@pytest.mark.parametrize("name", EQUIVARIANT)
@pytest.mark.parametrize("backend", BACKENDS)
def test_permutation_equivariance(name: str, backend: str) -> None:
    rng = np.random.default_rng(17)
    for _ in range(10):
        n = int(rng.integers(2, 30))
        case = random_case(name, rng, n, int(rng.integers(1, 10)))
        perm = rng.permutation(n)
        w = run(name, case, backend)
        wp = run(name, _permute_case(name, case, perm), backend)
        if name == "parallel_branch":  # the parallel-node tail is not permuted
            perm = np.concatenate([perm, np.arange(n, len(w))])
        np.testing.assert_allclose(wp, w[perm], rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_topological_is_equivariant_without_decay(backend: str) -> None:
    rng = np.random.default_rng(18)
    q, k = vectors(rng, 9, 4)
    mask = rng.random(9) < 0.7
    perm = rng.permutation(9)
    w = A.topological(q, k, decay_rate=0.0, mask=mask, backend=backend)
    wp = A.topological(q, k[perm], decay_rate=0.0, mask=mask[perm], backend=backend)
    np.testing.assert_allclose(wp, w[perm], rtol=1e-6, atol=1e-12)


def test_topological_is_positional_with_decay() -> None:
    q = np.array([1.0, 2.0], np.float32)
    k = np.tile(np.array([[0.5, -1.0]], np.float32), (5, 1))  # identical ancestors (negative logits)
    w = A.topological(q, k, decay_rate=0.3)
    assert (np.diff(w) < 0).all()  # nearer (earlier) rows get more


@pytest.mark.parametrize("backend", BACKENDS)
def test_ensemble_of_position_free_members_is_equivariant(backend: str) -> None:
    rng = np.random.default_rng(19)
    q, k = vectors(rng, 12, 5)
    types = ["critical_path", "mincut_gated", "parallel_branch", "temporal_btsp"]
    perm = rng.permutation(12)
    w = A.ensemble(q, k, types, [1, 2, 3, 4], backend=backend)
    np.testing.assert_allclose(A.ensemble(q, k[perm], types, [1, 2, 3, 4], backend=backend), w[perm],
                               rtol=1e-6, atol=1e-12)


# --------------------------------------------------------------------------
# Direction of every parameter
# --------------------------------------------------------------------------

def _strictly_decreasing(values: list[float]) -> bool:
    return all(b < a for a, b in itertools.pairwise(values))


@pytest.mark.parametrize("backend", BACKENDS)
def test_more_decay_less_weight_on_far_ancestors(backend: str) -> None:
    rng = np.random.default_rng(20)
    q, k = vectors(rng, 10, 6)
    rates = [0.0, 0.1, 0.5, 1.0, 2.0]
    topo = [A.topological(q, k, decay_rate=r, backend=backend).astype(np.float64) for r in rates]
    for first in range(1, 10):  # the mass beyond any position shrinks
        assert _strictly_decreasing([float(w[first:].sum()) for w in topo])
    depths = rng.permutation([1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    cone = [A.causal_cone(q, k, depths, r, 10, backend=backend).astype(np.float64) for r in rates]
    for level in range(2, 6):
        assert _strictly_decreasing([float(w[depths >= level].sum()) for w in cone])


@pytest.mark.parametrize("backend", BACKENDS)
def test_larger_boost_more_weight_on_critical_nodes(backend: str) -> None:
    rng = np.random.default_rng(21)
    q, k = vectors(rng, 10, 6)
    crit = np.arange(10) % 3 == 0
    masses = [float(A.critical_path(q, k, crit, b, backend=backend)[crit].sum()) for b in (-2, -0.5, 0, 0.5, 3)]
    assert _strictly_decreasing(masses[::-1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_boost_helps_critical_nodes_with_negative_logits(backend: str) -> None:
    # Upstream multiplied the logit by the boost, which pushes negative logits further
    # down: a "boosted" node lost weight.  The additive bias always helps it.
    q = np.array([1.0, 0.0], np.float32)
    k = np.array([[-2.0, 0.0], [-1.0, 0.0], [0.5, 0.0]], np.float32)
    crit = [True, False, False]
    before = A.critical_path(q, k, crit, 0.0, backend=backend)[0]
    after = A.critical_path(q, k, crit, 2.0, backend=backend)[0]
    assert after > before


@pytest.mark.parametrize("backend", BACKENDS)
def test_gate_takes_weight_from_non_critical_nodes(backend: str) -> None:
    rng = np.random.default_rng(22)
    q, k = vectors(rng, 12, 5)
    crit = np.linspace(0.05, 1.0, 12)
    low = crit < 0.5
    masses = [float(A.mincut_gated(q, k, crit, t, backend=backend)[low].sum()) for t in (0.0, 0.1, 0.25, 0.5)]
    assert _strictly_decreasing(masses)


@pytest.mark.parametrize("backend", BACKENDS)
def test_larger_cross_weight_more_weight_on_parallel_nodes(backend: str) -> None:
    rng = np.random.default_rng(23)
    q, k = vectors(rng, 6, 4)
    p = rng.standard_normal((3, 4)).astype(np.float32)
    common = np.array([True, False, True, False, False, False])
    masses = [float(A.parallel_branch(q, k, p, common, cw, 0.5, backend=backend)[6:].sum())
              for cw in (0.0, 0.1, 0.5, 1.0)]
    assert masses[0] == 0.0 and _strictly_decreasing(masses[::-1])
    base = A.parallel_branch(q, k, p, common, 0.5, 0.0, backend=backend)[:6][common].sum()
    assert A.parallel_branch(q, k, p, common, 0.5, 2.0, backend=backend)[:6][common].sum() > base


@pytest.mark.parametrize("backend", BACKENDS)
def test_more_recent_more_weight(backend: str) -> None:
    q = np.array([1.0, -1.0], np.float32)
    k = np.tile(np.array([[0.3, 0.2]], np.float32), (5, 1))
    ts = np.array([100.0, 400.0, 700.0, 900.0, 1000.0])
    w = A.temporal_btsp(q, k, ts, 1000.0, 1.5, backend=backend)
    assert (np.diff(w) > 0).all()
    rng = np.random.default_rng(24)
    q, k = vectors(rng, 8, 5)
    ts = rng.uniform(0, 1000, 8)
    for i in range(8):
        newer = ts.copy()
        newer[i] = min(newer[i] + 150.0, ts.max())
        if newer[i] == ts[i]:
            continue
        assert A.temporal_btsp(q, k, newer, 800.0, 2.0, backend=backend)[i] > \
            A.temporal_btsp(q, k, ts, 800.0, 2.0, backend=backend)[i]


@pytest.mark.parametrize("backend", BACKENDS)
def test_deeper_ancestor_gets_less_lorentz_weight(backend: str) -> None:
    rng = np.random.default_rng(25)
    for _ in range(20):
        n, d = int(rng.integers(2, 8)), int(rng.integers(1, 6))
        q, k = vectors(rng, n, d, float(rng.uniform(0.1, 2)))
        depths = rng.integers(0, 6, n)
        c, t = float(rng.uniform(0.2, 2)), float(rng.uniform(0.5, 2))
        i = int(rng.integers(0, n))
        weights = []
        for extra in (0, 1, 3, 10):
            deeper = depths.copy()
            deeper[i] += extra
            weights.append(float(A.hierarchical_lorentz(q, k, deeper, c, t, backend=backend)[i]))
        assert _strictly_decreasing(weights)
    same = np.array([[0.4, -0.2], [0.4, -0.2]], np.float32)
    w = A.hierarchical_lorentz(np.array([0.4, -0.2], np.float32), same, [1, 3], 1.0, 1.0, backend=backend)
    assert w[0] > w[1]


# --------------------------------------------------------------------------
# Ensemble
# --------------------------------------------------------------------------

def _alone_with_defaults(name: str, q: np.ndarray, k: np.ndarray, backend: str) -> np.ndarray:
    """The mechanism called directly with the ensemble's documented defaults."""
    n = len(k)
    dflt = A.ENSEMBLE_DEFAULTS[name]
    depths = np.arange(1, n + 1)
    calls: dict[str, Callable[[], np.ndarray]] = {
        "topological": lambda: A.topological(q, k, decay_rate=dflt["decay_rate"],
                                             temperature=dflt["temperature"], backend=backend),
        "causal_cone": lambda: A.causal_cone(q, k, depths, dflt["decay_rate"], n,
                                             temperature=dflt["temperature"], backend=backend),
        "critical_path": lambda: A.critical_path(q, k, np.zeros(n, bool), dflt["boost"],
                                                 temperature=dflt["temperature"], backend=backend),
        "mincut_gated": lambda: A.mincut_gated(q, k, np.ones(n), dflt["threshold"],
                                               temperature=dflt["temperature"], backend=backend),
        "hierarchical_lorentz": lambda: A.hierarchical_lorentz(q, k, depths, dflt["curvature"],
                                                               dflt["temperature"], backend=backend),
        "parallel_branch": lambda: A.parallel_branch(q, k, [], np.zeros(n, bool), dflt["cross_weight"],
                                                     dflt["common_boost"], temperature=dflt["temperature"],
                                                     backend=backend),
        "temporal_btsp": lambda: A.temporal_btsp(q, k, np.zeros(n), dflt["window_ms"], dflt["boost"],
                                                 temperature=dflt["temperature"], backend=backend),
    }
    return calls[name]()


@pytest.mark.parametrize("name", A.ATTENTION_TYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_ensemble_of_one_type_equals_that_type(name: str, backend: str) -> None:
    q, k = vectors(np.random.default_rng(26), 9, 6)
    np.testing.assert_array_equal(A.ensemble(q, k, [name], backend=backend),
                                  _alone_with_defaults(name, q, k, backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_ensemble_weights_are_respected(backend: str) -> None:
    rng = np.random.default_rng(27)
    q, k = vectors(rng, 10, 4)
    topo = A.ensemble(q, k, ["topological"], backend=backend).astype(np.float64)
    lor = A.ensemble(q, k, ["hierarchical_lorentz"], backend=backend).astype(np.float64)
    mixed = A.ensemble(q, k, ["topological", "hierarchical_lorentz"], [1.0, 3.0], backend=backend)
    np.testing.assert_allclose(mixed, 0.25 * topo + 0.75 * lor, rtol=1e-6)
    uniform = A.ensemble(q, k, ["topological", "hierarchical_lorentz"], backend=backend)
    np.testing.assert_allclose(uniform, 0.5 * topo + 0.5 * lor, rtol=1e-6)
    # duplicates add up; zero weights drop a member; the scale of the weights does not matter
    np.testing.assert_array_equal(A.ensemble(q, k, ["topological", "topological"], backend=backend),
                                  A.ensemble(q, k, ["topological"], backend=backend))
    np.testing.assert_allclose(
        A.ensemble(q, k, ["topological", "hierarchical_lorentz", "topological"], [1, 3, 1], backend=backend),
        A.ensemble(q, k, ["topological", "hierarchical_lorentz"], [2, 3], backend=backend), rtol=1e-6)
    np.testing.assert_array_equal(
        A.ensemble(q, k, ["topological", "hierarchical_lorentz"], [5, 0], backend=backend), topo.astype(np.float32))
    np.testing.assert_allclose(  # huge weights are scaled before they are added up
        A.ensemble(q, k, ["topological", "topological", "hierarchical_lorentz"], [1e308] * 3, backend=backend),
        A.ensemble(q, k, ["topological", "hierarchical_lorentz"], [2, 1], backend=backend), rtol=1e-6)
    assert A.ensemble(q, k, ["parallel_branch"], backend=backend).shape == (10,)


# --------------------------------------------------------------------------
# Validation: exception class and the SQL argument name
# --------------------------------------------------------------------------

Q = np.array([0.5, -1.0, 2.0], np.float32)
KK = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], np.float32)
OK4 = [True, False, False, True]
BIG = np.broadcast_to(np.float32(0), (A.MAX_ANCESTORS + 1, 3))  # no memory: limits are checked first

BAD: list[tuple[str, Callable[[], object], type[Exception], str]] = [
    ("query-null", lambda: A.topological(None, KK), NullValueNotAllowed, "query must not be NULL"),
    ("ancestors-null", lambda: A.topological(Q, None), NullValueNotAllowed, "ancestors must not be NULL"),
    ("query-empty", lambda: A.topological([], KK), InvalidParameter, "query must not be empty"),
    ("query-2d", lambda: A.topological(KK, KK), InvalidParameter, "query must be a one-dimensional"),
    ("query-text", lambda: A.topological(["a", "b", "c"], KK), InvalidParameter, "query must contain numbers"),
    ("query-null-element", lambda: A.topological([1.0, None, 0.0], KK), NullValueNotAllowed, "query"),
    ("query-nan", lambda: A.topological([np.nan, 0, 1], KK), InvalidParameter, "query contains NaN or Infinity"),
    ("query-inf", lambda: A.topological([np.inf, 0, 1], KK), InvalidParameter, "query contains NaN or Infinity"),
    ("query-out-of-real", lambda: A.topological([1e39, 0, 1], KK), InvalidParameter,
     "query contains values outside the range of real"),
    ("query-too-long", lambda: A.topological(np.zeros(A.MAX_DIM + 1), np.zeros((1, A.MAX_DIM + 1))),
     ProgramLimitExceeded, "query"),
    ("ancestors-empty", lambda: A.topological(Q, []), InvalidParameter, "ancestors must have at least one row"),
    ("ancestors-no-rows", lambda: A.topological(Q, np.zeros((0, 3))), InvalidParameter, "ancestors"),
    ("ancestors-1d", lambda: A.topological(Q, [1.0, 0.0, 0.0]), InvalidParameter, "ancestors must be a two"),
    ("ancestors-3d", lambda: A.topological(Q, np.zeros((2, 2, 3))), InvalidParameter, "ancestors"),
    ("ancestors-dim", lambda: A.topological(Q[:2], KK), InvalidParameter, "ancestors has dimension 3 but query has 2"),
    ("ancestors-ragged", lambda: A.topological(Q, [[1, 0, 0], [1]]), InvalidParameter, "ancestors"),
    ("ancestors-inf", lambda: A.topological(Q, [[1, 0, np.inf]]), InvalidParameter,
     "ancestors contains NaN or Infinity"),
    ("ancestors-rows", lambda: A.topological(Q, BIG), ProgramLimitExceeded, "ancestors has 65537 rows"),
    ("ancestors-elements", lambda: A.topological(np.zeros(9000), np.broadcast_to(np.float32(0), (2000, 9000))),
     ProgramLimitExceeded, "ancestors"),
    ("decay-nan", lambda: A.topological(Q, KK, decay_rate=math.nan), InvalidParameter, "decay_rate"),
    ("decay-negative", lambda: A.topological(Q, KK, decay_rate=-1.0), InvalidParameter, "decay_rate"),
    ("decay-text", lambda: A.topological(Q, KK, decay_rate="fast"), InvalidParameter, "decay_rate"),
    ("decay-bool", lambda: A.topological(Q, KK, decay_rate=True), InvalidParameter, "decay_rate"),
    ("decay-null", lambda: A.topological(Q, KK, decay_rate=None), NullValueNotAllowed, "decay_rate"),
    ("temperature-zero", lambda: A.topological(Q, KK, temperature=0.0), InvalidParameter, "temperature"),
    ("temperature-inf", lambda: A.topological(Q, KK, temperature=math.inf), InvalidParameter, "temperature"),
    ("mask-length", lambda: A.topological(Q, KK, mask=[True]), InvalidParameter,
     "mask has 1 elements but ancestors has 4 rows"),
    ("mask-type", lambda: A.topological(Q, KK, mask=[0.5, 1, 1, 1]), InvalidParameter, "mask must contain booleans"),
    ("mask-null-element", lambda: A.topological(Q, KK, mask=[True, None, True, True]), NullValueNotAllowed, "mask"),
    ("backend", lambda: A.topological(Q, KK, backend="cuda"), InvalidParameter, "backend"),
    ("depths-length", lambda: A.causal_cone(Q, KK, [1, 2, 3], 0.3, 3), InvalidParameter,
     "depths has 3 elements but ancestors has 4 rows"),
    ("depths-negative", lambda: A.causal_cone(Q, KK, [1, -2, 3, 4], 0.3, 3), InvalidParameter, "depths"),
    ("depths-negative-int32", lambda: A.causal_cone(Q, KK, np.array([1, -2, 3, 4], np.int32), 0.3, 3),
     InvalidParameter, "depths"),
    ("depths-fraction", lambda: A.causal_cone(Q, KK, [1, 2.5, 3, 4], 0.3, 3), InvalidParameter, "depths"),
    ("depths-huge", lambda: A.causal_cone(Q, KK, [1, 2, 3, 2**40], 0.3, 3), InvalidParameter, "depths"),
    ("depths-bool", lambda: A.causal_cone(Q, KK, OK4, 0.3, 3), InvalidParameter, "depths"),
    ("depths-null", lambda: A.causal_cone(Q, KK, None, 0.3, 3), NullValueNotAllowed, "depths"),
    ("depths-null-element", lambda: A.causal_cone(Q, KK, [1, None, 3, 4], 0.3, 3), NullValueNotAllowed, "depths"),
    ("cone-decay-nan", lambda: A.causal_cone(Q, KK, [1, 2, 3, 4], math.nan, 3), InvalidParameter, "decay_rate"),
    ("cone-decay-negative", lambda: A.causal_cone(Q, KK, [1, 2, 3, 4], -1, 3), InvalidParameter, "decay_rate"),
    ("cone-decay-null", lambda: A.causal_cone(Q, KK, [1, 2, 3, 4], None, 3),
     NullValueNotAllowed, "decay_rate"),
    ("max-depth-negative", lambda: A.causal_cone(Q, KK, [1, 2, 3, 4], 0.3, -1), InvalidParameter, "max_depth"),
    ("max-depth-fraction", lambda: A.causal_cone(Q, KK, [1, 2, 3, 4], 0.3, 1.5),
     InvalidParameter, "max_depth"),
    ("max-depth-null", lambda: A.causal_cone(Q, KK, [1, 2, 3, 4], 0.3, None),
     NullValueNotAllowed, "max_depth"),
    ("critical-length", lambda: A.critical_path(Q, KK, [True, False], 1.0), InvalidParameter,
     "is_critical has 2 elements but ancestors has 4 rows"),
    ("critical-type", lambda: A.critical_path(Q, KK, [2, 0, 0, 1], 1.0), InvalidParameter, "is_critical"),
    ("critical-null-element", lambda: A.critical_path(Q, KK, [True, None, False, True], 1.0),
     NullValueNotAllowed, "is_critical"),
    ("boost-inf", lambda: A.critical_path(Q, KK, OK4, math.inf), InvalidParameter, "boost"),
    ("boost-null", lambda: A.critical_path(Q, KK, OK4, None), NullValueNotAllowed, "boost"),
    ("criticalities-range", lambda: A.mincut_gated(Q, KK, [0.1, 0.2, 0.3, 1.5], 0.5), InvalidParameter,
     "criticalities must contain values between 0 and 1"),
    ("criticalities-negative", lambda: A.mincut_gated(Q, KK, [0.1, -0.2, 0.3, 1], 0.5), InvalidParameter,
     "criticalities"),
    ("criticalities-nan", lambda: A.mincut_gated(Q, KK, [0.1, np.nan, 0.3, 1], 0.5), InvalidParameter,
     "criticalities contains NaN or Infinity"),
    ("criticalities-length", lambda: A.mincut_gated(Q, KK, [0.1, 0.2, 0.3], 0.5), InvalidParameter,
     "criticalities has 3 elements but ancestors has 4 rows"),
    ("threshold-range", lambda: A.mincut_gated(Q, KK, [0.1, 0.2, 0.3, 0.4], 2.0), InvalidParameter, "threshold"),
    ("threshold-negative", lambda: A.mincut_gated(Q, KK, [0.1, 0.2, 0.3, 0.4], -0.1), InvalidParameter,
     "threshold"),
    ("curvature-zero", lambda: A.hierarchical_lorentz(Q, KK, [1, 1, 1, 1], 0.0, 1.0), InvalidParameter,
     "curvature"),
    ("lorentz-temperature", lambda: A.hierarchical_lorentz(Q, KK, [1, 1, 1, 1], 1.0, -1.0), InvalidParameter,
     "temperature"),
    ("lorentz-depths", lambda: A.hierarchical_lorentz(Q, KK, [1, 1], 1.0, 1.0), InvalidParameter,
     "depths has 2 elements"),
    ("parallel-dim", lambda: A.parallel_branch(Q, KK, [[1.0, 2.0]], OK4, 0.5, 1.0), InvalidParameter,
     "parallel_nodes has dimension 2 but query has 3"),
    ("parallel-1d", lambda: A.parallel_branch(Q, KK, [1.0, 2.0, 3.0], OK4, 0.5, 1.0), InvalidParameter,
     "parallel_nodes"),
    ("parallel-nan", lambda: A.parallel_branch(Q, KK, [[1.0, np.nan, 3.0]], OK4, 0.5, 1.0), InvalidParameter,
     "parallel_nodes contains NaN or Infinity"),
    ("parallel-null", lambda: A.parallel_branch(Q, KK, None, OK4, 0.5, 1.0), NullValueNotAllowed, "parallel_nodes"),
    ("parallel-limit", lambda: A.parallel_branch(Q, KK, BIG, OK4, 0.5, 1.0), ProgramLimitExceeded, "parallel_nodes"),
    ("common-length", lambda: A.parallel_branch(Q, KK, [[1, 2, 3]], [True, False], 0.5, 1.0), InvalidParameter,
     "common_ancestor_mask has 2 elements but ancestors has 4 rows"),
    ("common-null", lambda: A.parallel_branch(Q, KK, [[1, 2, 3]], None, 0.5, 1.0), NullValueNotAllowed,
     "common_ancestor_mask"),
    ("cross-weight-range", lambda: A.parallel_branch(Q, KK, [[1, 2, 3]], OK4, 1.5, 1.0), InvalidParameter,
     "cross_weight"),
    ("cross-weight-negative", lambda: A.parallel_branch(Q, KK, [[1, 2, 3]], OK4, -0.5, 1.0), InvalidParameter,
     "cross_weight"),
    ("common-boost-nan", lambda: A.parallel_branch(Q, KK, [[1, 2, 3]], OK4, 0.5, math.nan), InvalidParameter,
     "common_boost"),
    ("timestamps-length", lambda: A.temporal_btsp(Q, KK, [1.0, 2.0, 3.0], 100.0, 1.0), InvalidParameter,
     "timestamps has 3 elements but ancestors has 4 rows"),
    ("timestamps-inf", lambda: A.temporal_btsp(Q, KK, [1.0, 2.0, 3.0, math.inf], 100.0, 1.0), InvalidParameter,
     "timestamps contains NaN or Infinity"),
    ("timestamps-null", lambda: A.temporal_btsp(Q, KK, None, 100.0, 1.0), NullValueNotAllowed, "timestamps"),
    ("window-zero", lambda: A.temporal_btsp(Q, KK, [1.0, 2.0, 3.0, 4.0], 0.0, 1.0), InvalidParameter, "window_ms"),
    ("btsp-boost-nan", lambda: A.temporal_btsp(Q, KK, [1.0, 2.0, 3.0, 4.0], 10.0, math.nan), InvalidParameter,
     "boost"),
    ("types-unknown", lambda: A.ensemble(Q, KK, ["topological", "softmax"]), InvalidParameter,
     'unknown attention type "softmax"; expected one of: topological, causal_cone, critical_path'),
    ("types-empty", lambda: A.ensemble(Q, KK, []), InvalidParameter, "attention_types"),
    ("types-null", lambda: A.ensemble(Q, KK, None), NullValueNotAllowed, "attention_types"),
    ("types-null-element", lambda: A.ensemble(Q, KK, ["topological", None]),
     NullValueNotAllowed, "attention_types"),
    ("types-string", lambda: A.ensemble(Q, KK, "topological"), InvalidParameter, "attention_types"),
    ("types-2d", lambda: A.ensemble(Q, KK, np.array([["topological"]])), InvalidParameter, "attention_types"),
    ("weights-length", lambda: A.ensemble(Q, KK, ["topological"], [1.0, 2.0]), InvalidParameter,
     "weights has 2 elements but attention_types has 1"),
    ("weights-negative", lambda: A.ensemble(Q, KK, ["topological", "causal_cone"], [1.0, -2.0]),
     InvalidParameter, "weights"),
    ("weights-zero", lambda: A.ensemble(Q, KK, ["topological", "causal_cone"], [0.0, 0.0]), InvalidParameter,
     "weights"),
    ("weights-nan", lambda: A.ensemble(Q, KK, ["topological"], [math.nan]), InvalidParameter, "weights"),
]


@pytest.mark.parametrize(("call", "exc", "needle"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_refused(call: Callable[[], object], exc: type[Exception], needle: str) -> None:
    with pytest.raises(exc) as err:
        call()
    assert type(err.value) is exc  # not merely a subclass: the SQLSTATE differs
    assert needle in str(err.value)


def test_error_sqlstates() -> None:
    assert (InvalidParameter.sqlstate, NullValueNotAllowed.sqlstate, ProgramLimitExceeded.sqlstate) == (
        "22023", "22004", "54000")


def test_validation_precedes_the_backend() -> None:
    for backend in BACKENDS:
        with pytest.raises(InvalidParameter, match="decay_rate"):
            A.causal_cone(Q, KK, [1, 2, 3, 4], -1.0, 3, backend=backend)


# --------------------------------------------------------------------------
# topological_config (the SQL function's jsonb)
# --------------------------------------------------------------------------

def test_topological_config_defaults_and_values() -> None:
    assert A.topological_config(None) == {"decay_rate": 0.1, "temperature": 1.0, "mask": None}
    assert A.topological_config({}) == {"decay_rate": 0.1, "temperature": 1.0, "mask": None}
    got = A.topological_config({"decay_rate": 0, "temperature": 2, "mask": [True, False]})
    assert got == {"decay_rate": 0.0, "temperature": 2.0, "mask": [True, False]}
    assert A.topological_config({"mask": None})["mask"] is None
    w = A.topological(Q, KK, **A.topological_config({"decay_rate": 0.5, "mask": [True, False, True, True]}))
    assert w[1] == 0.0


@pytest.mark.parametrize(("config", "needle"), [
    ({"foo": 1}, 'config key "foo" is not recognised; allowed: decay_rate, temperature, mask'),
    ({"decay_rate": "fast"}, '"decay_rate"'),
    ({"decay_rate": True}, '"decay_rate"'),
    ({"decay_rate": -0.5}, '"decay_rate"'),
    ({"decay_rate": 10**400}, '"decay_rate"'),
    ({"temperature": 0}, '"temperature"'),
    ({"temperature": math.nan}, '"temperature"'),
    ({"mask": [1, 0]}, '"mask"'),
    ({"mask": "yes"}, '"mask"'),
    ([1, 2], "config must be a JSON object"),
])
def test_topological_config_refuses(config: Any, needle: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        A.topological_config(config)
    assert type(err.value) is InvalidParameter and needle in str(err.value)


def test_config_mask_length_is_checked_by_topological() -> None:
    with pytest.raises(InvalidParameter, match="mask has 1 elements but ancestors has 4 rows"):
        A.topological(Q, KK, **A.topological_config({"mask": [True]}))


# --------------------------------------------------------------------------
# Numerical failure
# --------------------------------------------------------------------------

HUGE_Q = np.array([3e38, 3e38], np.float32)
HUGE_K = np.array([[3e38, -3e38], [1.0, 2.0]], np.float32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_lorentz_overflow_is_a_numerical_failure(backend: str) -> None:
    with pytest.raises(NumericalFailure, match="overflowed on finite input") as err:
        A.hierarchical_lorentz(HUGE_Q, HUGE_K, [1, 2], 1.0, 1.0, backend=backend)
    assert isinstance(err.value, RuvectorError) and not isinstance(err.value, InvalidParameter)


@pytest.mark.parametrize("backend", BACKENDS)
def test_other_overflows_are_numerical_failures(backend: str) -> None:
    q, k = np.array([100.0, 100.0], np.float32), np.array([[100.0, 100.0], [200.0, -100.0]], np.float32)
    with pytest.raises(NumericalFailure, match="overflowed"):
        A.topological(q, k, temperature=1e-308, backend=backend)
    with pytest.raises(NumericalFailure, match="overflowed"):
        A.ensemble(HUGE_Q, HUGE_K, ["topological", "hierarchical_lorentz"], backend=backend)
    # a member that is not evaluated cannot fail
    assert A.ensemble(HUGE_Q, HUGE_K, ["topological", "hierarchical_lorentz"], [1, 0], backend=backend).shape == (2,)
    # an excluded node cannot fail either (its logit would be inf, the other one's is finite)
    w = A.topological(HUGE_Q, np.vstack([HUGE_Q, [1.0, 1.0]]).astype(np.float32), temperature=1e-250,
                      mask=[False, True], backend=backend)
    np.testing.assert_array_equal(w, [0.0, 1.0])


def test_kernels_signal_failure_with_all_nan() -> None:
    q, k = A._query_and_ancestors(HUGE_Q, HUGE_K)
    depths = A._depth_vector([1, 2], "depths", 2)
    assert np.isnan(K.hierarchical_lorentz(q, k, depths, 1.0, 1.0, 1.0)).all()
    assert np.isnan(R.hierarchical_lorentz(q, k, depths, 1.0, 1.0, 1.0)).all()


# --------------------------------------------------------------------------
# One compiled signature per kernel
# --------------------------------------------------------------------------

_AFTER_WARM_UP = """
import numpy as np
from ruvector_dag.engine import attention as A
from ruvector_dag.definitions.errors import InvalidParameter
from ruvector_dag.engine.kernels import attention as K

KERNELS = ("topological", "causal_cone", "critical_path", "mincut_gated", "hierarchical_lorentz",
           "parallel_branch", "temporal_btsp", "ensemble", "all_finite", "all_finite_pair", "all_within")
A.warm_up()
before = {name: len(getattr(K, name).signatures) for name in KERNELS}
rng = np.random.default_rng(28)
q = rng.standard_normal(4).astype(np.float32)
k = rng.standard_normal((6, 4)).astype(np.float32)
readonly_q = np.frombuffer(q.tobytes(), np.float32)  # what the SQL bridge passes
readonly_k = np.frombuffer(k.tobytes(), np.float32).reshape(6, 4)
for qq, kk in ((q, k), (readonly_q, readonly_k), (q.astype(np.float64).tolist(), np.asfortranarray(k))):
    A.topological(qq, kk, mask=np.ones(6, np.int64))
    A.causal_cone(qq, kk, np.frombuffer(np.arange(6, dtype=np.int32).tobytes(), np.int32), 0.1, 3)
    A.causal_cone(qq, kk, [1.0, 2, 3, 4, 5, 6], 0.1, np.int64(3))
    A.critical_path(qq, kk, np.frombuffer(bytes([1, 0, 1, 0, 0, 0]), np.bool_), 1)
    A.mincut_gated(qq, kk, np.frombuffer(np.linspace(0, 1, 6, dtype=np.float32).tobytes(), np.float32), 0.5)
    A.mincut_gated(qq, kk, np.linspace(0, 1, 6), np.float32(0.5))
    A.hierarchical_lorentz(qq, kk, np.arange(6, dtype=np.uint8), 1, 1)
    A.parallel_branch(qq, kk, k[:2].astype(np.float64), [0, 1, 0, 1, 0, 1], 0.5, 1)
    A.parallel_branch(qq, kk, np.zeros(0, np.float32), np.zeros(6, bool), 0.5, 1)
    A.temporal_btsp(qq, kk, np.arange(6, dtype=np.float32), 10, 1)
    A.ensemble(qq, kk, np.array(["topological", "temporal_btsp"], dtype=object), np.array([1, 2], np.float32))
    for bad in ([np.nan] * 4, [[np.inf] * 4] * 6):  # the error paths scan again
        try:
            A.topological(bad if len(bad) == 4 else qq, kk if len(bad) == 4 else bad)
        except InvalidParameter:
            pass
after = {name: len(getattr(K, name).signatures) for name in KERNELS}
assert after == before, (before, after)
assert all(count == 1 for name, count in after.items() if not name.startswith("all_")), after
print("ok")
"""


def test_warm_up_compiles_every_signature_later_calls_use() -> None:
    # A fresh interpreter, so that only warm_up() can have compiled anything: a call
    # of any input kind must then find its kernel signature already there (a second
    # specialisation would mean seconds of compilation inside a query).
    done = subprocess.run([sys.executable, "-c", _AFTER_WARM_UP], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_lorentz_takes_either_sign_of_the_curvature() -> None:
    """Geometers write a hyperbolic space's curvature (-1.0), the Lorentz model's formulas its magnitude
    (1.0): both mean the same space (issue 17); 0 is no hyperbolic space and is refused with the reason."""
    positive = A.hierarchical_lorentz(Q, KK, [1, 2, 3, 4], 2.5, 1.0)
    negative = A.hierarchical_lorentz(Q, KK, [1, 2, 3, 4], -2.5, 1.0)
    np.testing.assert_array_equal(positive, negative)
    with pytest.raises(InvalidParameter, match=r"-1\.0 and 1\.0 both mean c = 1"):
        A.hierarchical_lorentz(Q, KK, [1, 2, 3, 4], 0.0, 1.0)
