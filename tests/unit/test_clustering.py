"""Weighted k-means: the Numba kernels against the NumPy reference, and their properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ruvector_dag.definitions.errors import InvalidParameter
from ruvector_dag.engine.clustering import kmeans, kmeans_reference


def blobs(seed: int, k: int = 4, n: int = 40, d: int = 6, noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, (k, d))
    labels = rng.integers(0, k, n * k)
    return centers[labels] + rng.normal(0, noise, (n * k, d)), labels


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 8), n=st.integers(5, 60), d=st.integers(1, 8))
def test_numba_matches_reference(seed: int, k: int, n: int, d: int) -> None:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = rng.random(n) + 0.1
    got = kmeans(X, k, weights=w, seed=seed)
    want = kmeans_reference(X, k, weights=w, seed=seed)
    assert got.inertia == pytest.approx(want.inertia, rel=1e-9, abs=1e-9)
    np.testing.assert_array_equal(got.labels, want.labels)
    np.testing.assert_allclose(got.centers, want.centers, atol=1e-9)


def test_recovers_separated_blobs_and_beats_its_seeding() -> None:
    X, truth = blobs(1)
    res = kmeans(X, 4, seed=3)
    # same partition as the truth, up to renaming
    pairs = {(int(a), int(b)) for a, b in zip(res.labels, truth)}
    assert len(pairs) == 4
    seeded = kmeans(X, 4, seed=3, max_iter=1)
    assert res.inertia <= seeded.inertia + 1e-12


def test_weights() -> None:
    X = np.array([[0.0], [1.0], [10.0], [11.0], [100.0]])
    w = np.array([1.0, 1.0, 1.0, 1.0, 0.0])
    res = kmeans(X, 2, weights=w)
    assert sorted(res.centers.ravel().tolist()) == [0.5, 10.5]  # the weightless point neither seeds nor pulls
    assert res.labels[4] == int(np.argmin(np.abs(res.centers.ravel() - 100.0)))
    heavy = kmeans(X[:2], 1, weights=np.array([1.0, 9.0]))
    assert heavy.centers[0, 0] == pytest.approx(0.9)


def test_k_clamped_to_distinct_points_and_deterministic() -> None:
    X = np.repeat(np.array([[0.0, 1.0], [1.0, 0.0]]), 50, axis=0)
    res = kmeans(X, 10)
    assert res.centers.shape == (2, 2) and res.inertia == 0.0
    X2, _ = blobs(7)
    a, b = kmeans(X2, 5, seed=11, n_init=3), kmeans(X2, 5, seed=11, n_init=3)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.centers, b.centers)


def test_warm_start_keeps_optimal_centres() -> None:
    X, _ = blobs(2)
    first = kmeans(X, 4)
    again = kmeans(X, 4, init=first.centers)
    np.testing.assert_allclose(again.centers, first.centers)
    assert again.n_iter == 1


@pytest.mark.parametrize("kwargs", [
    {"X": np.zeros((0, 2)), "k": 1}, {"X": np.array([[np.nan]]), "k": 1}, {"X": np.ones((3, 2)), "k": 0},
    {"X": np.ones((3, 2)), "k": 1, "weights": np.zeros(3)}, {"X": np.ones((3, 2)), "k": 1, "weights": -np.ones(3)},
    {"X": np.ones((3, 2)), "k": 1, "init": np.ones((2, 2))}, {"X": np.ones(3), "k": 1},
])
def test_bad_input(kwargs: dict) -> None:
    with pytest.raises(InvalidParameter):
        kmeans(**kwargs)
