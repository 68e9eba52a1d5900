"""ReasoningBank and the Thompson-sampling selector."""

from __future__ import annotations

import numpy as np
import pytest

from ruvector_dag.definitions.errors import InvalidParameter
from ruvector_dag.engine.bandit import ThompsonBandit
from ruvector_dag.engine.bank import ReasoningBank

DIM = 8


def blobs(centers: np.ndarray, n: int, rng: np.random.Generator, noise: float = 0.01) -> np.ndarray:
    X = np.repeat(centers, n, axis=0) + rng.normal(0, noise, (len(centers) * n, centers.shape[1]))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def unit(rng: np.random.Generator, k: int) -> np.ndarray:
    C = rng.normal(size=(k, DIM))
    return C / np.linalg.norm(C, axis=1, keepdims=True)


def test_cycle_finds_shapes_and_counts_add_up() -> None:
    rng = np.random.default_rng(0)
    X = blobs(unit(rng, 3), 20, rng)
    bank = ReasoningBank(DIM, n_arms=4)
    res = bank.cycle(X, np.full(60, 100.0), np.full(60, 0.5), k=3, anchor_strength=2.0)
    assert res.patterns == 3
    assert sum(p.sample_count for p in bank.patterns.values()) == 60
    assert sorted(np.unique(res.new_labels).tolist()) == sorted(bank.patterns)
    for x in X:
        p, hit = bank.match(x)
        assert hit and p is not None


def test_ids_are_stable_across_cycles() -> None:
    rng = np.random.default_rng(1)
    C = unit(rng, 3)
    bank = ReasoningBank(DIM, n_arms=2)
    bank.cycle(blobs(C, 10, rng), np.ones(30), np.ones(30), k=3, anchor_strength=2.0)
    ids = {int(bank.match(c)[0].id) for c in C}  # type: ignore[union-attr]
    bank.cycle(blobs(C, 10, rng), np.ones(30), np.ones(30), k=3, anchor_strength=2.0)
    assert {int(bank.match(c)[0].id) for c in C} == ids  # type: ignore[union-attr]
    assert sum(p.sample_count for p in bank.patterns.values()) == 60


def test_anchor_strength_protects_old_patterns() -> None:
    """EWC for centroids: old patterns survive a new workload when the anchor is strong."""
    rng = np.random.default_rng(2)
    A, B = unit(rng, 3), unit(rng, 3)
    dist = {}
    for strength in (0.01, 10.0):
        bank = ReasoningBank(DIM, n_arms=2)
        bank.cycle(blobs(A, 20, rng), np.ones(60), np.ones(60), k=3, anchor_strength=strength)
        bank.cycle(blobs(B, 60, rng), np.ones(180), np.ones(180), k=3, anchor_strength=strength)
        C = np.vstack([p.centroid for p in bank.patterns.values()])
        dist[strength] = np.sqrt(((A[:, None] - C[None]) ** 2).sum(-1).min(1)).mean()
    assert dist[10.0] < 0.5 * dist[0.01]


def test_consolidate_merges_and_keeps_counts() -> None:
    rng = np.random.default_rng(3)
    c = unit(rng, 1)[0]
    X = np.vstack([c + 0.001 * rng.normal(size=DIM) for _ in range(10)] + [-c])
    bank = ReasoningBank(DIM, n_arms=2)
    bank.cycle(X, np.arange(11.0), np.ones(11), k=5, anchor_strength=1.0)
    n_before = len(bank.patterns)
    assert n_before >= 2
    retired = bank.consolidate(0.9)
    assert len(bank.patterns) == 2 and len(retired) == n_before - 2
    assert sum(p.sample_count for p in bank.patterns.values()) == 11
    assert sum(p.latency_sum for p in bank.patterns.values()) == pytest.approx(55.0)
    with pytest.raises(InvalidParameter):
        bank.consolidate(1.5)


def test_thompson_finds_the_best_arm() -> None:
    rng = np.random.default_rng(4)
    bandit = ThompsonBandit(4, exploration=0.1)
    means = np.array([0.2, 0.5, 0.8, 0.4])
    pulls = np.zeros(4)
    for _ in range(2000):
        arm = bandit.choose(rng)
        pulls[arm] += 1
        bandit.update(arm, float(rng.random() < means[arm]))
    assert bandit.best() == 2
    assert pulls[2] > 0.7 * pulls.sum()
    assert pulls.min() > 0  # exploration keeps every arm alive


def test_forced_exploration_and_validation() -> None:
    with pytest.raises(InvalidParameter):
        ThompsonBandit(0)
    with pytest.raises(InvalidParameter):
        ThompsonBandit(3, exploration=1.5)
    bandit = ThompsonBandit(3, exploration=1.0)
    rng = np.random.default_rng(5)
    bandit.update(0, 1.0)
    picks = np.bincount([bandit.choose(rng) for _ in range(3000)], minlength=3)
    assert picks.min() > 800  # uniform when exploration = 1
