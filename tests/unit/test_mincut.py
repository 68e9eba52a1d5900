"""Bottleneck cut: Dinic + Picard-Queyranne against brute force and the tree DP; known answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plans import JOIN, plan

from ruvector_dag.definitions.errors import InvalidParameter
from ruvector_dag.engine.mincut import bottleneck_cut, plan_cut, reference_tree, self_costs


def brute_force(n: int, edges: list[tuple[int, int]], w: np.ndarray) -> tuple[float, np.ndarray]:
    """Max-weight antichain by enumeration, and which nodes lie on some optimal one."""
    reach = np.eye(n, dtype=bool)
    for _ in range(n):
        for a, b in edges:
            reach[:, b] |= reach[:, a]
    comparable = reach | reach.T
    best, members = 0.0, []
    for r in range(1, n + 1):
        for subset in itertools.combinations(range(n), r):
            if any(comparable[a, b] for a, b in itertools.combinations(subset, 2)):
                continue
            weight = float(w[list(subset)].sum())
            if weight > best + 1e-9:
                best, members = weight, [subset]
            elif abs(weight - best) <= 1e-9:
                members.append(subset)
    on = np.zeros(n, dtype=bool)
    for subset in members:
        on[list(subset)] = True
    return best, on & (w > 0)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 9), seed=st.integers(0, 100_000), integral=st.booleans())
def test_random_dags_match_brute_force(n: int, seed: int, integral: bool) -> None:
    rng = np.random.default_rng(seed)
    edges = [(a, b) for b in range(n) for a in range(b + 1, n) if rng.random() < 0.35]  # child index > parent
    w = rng.integers(0, 4, n).astype(float) if integral else rng.random(n) * 10
    res = bottleneck_cut(edges, w)
    best, on = brute_force(n, edges, w)
    assert res.weight == pytest.approx(best, abs=1e-7)
    np.testing.assert_array_equal(res.on_cut, on)
    assert ((0 <= res.criticality) & (res.criticality <= 1)).all()


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 200), seed=st.integers(0, 100_000))
def test_random_trees_match_the_dp(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    parent = np.array([-1] + [int(rng.integers(0, i)) for i in range(1, n)])
    w = rng.integers(0, 5, n).astype(float)  # integers: plenty of ties
    edges = [(v, int(parent[v])) for v in range(1, n)]
    got, want = bottleneck_cut(edges, w), reference_tree(parent, w)
    assert got.weight == pytest.approx(want.weight)
    np.testing.assert_array_equal(got.on_cut, want.on_cut)
    np.testing.assert_allclose(got.criticality, want.criticality)


def test_chain_heaviest_operator_carries_the_cut() -> None:
    res = bottleneck_cut([(1, 0), (2, 1), (3, 2)], [1.0, 5.0, 2.0, 1.0])
    assert res.weight == 5.0 and res.criticality.tolist() == [0, 1, 0, 0]


def test_diamond_with_one_heavy_branch() -> None:
    # root 0 joins branches 1 (heavy) and 2 (light), both reading 3
    res = bottleneck_cut([(1, 0), (2, 0), (3, 1), (3, 2)], [1.0, 8.0, 2.0, 1.0])
    assert res.weight == 10.0
    assert int(np.argmax(res.criticality)) == 1 and res.criticality[1] == pytest.approx(0.8)
    assert res.criticality[0] == 0 and res.criticality[3] == 0


def test_star_join_with_one_dominant_dimension() -> None:
    # hash joins 0 <- 1 <- 2 over the fact scan 3 and dimensions 4, 5, 6 (4 dominant)
    parent = np.array([-1, 0, 1, 2, 2, 1, 0])
    w = np.array([1.0, 1.0, 1.0, 10.0, 40.0, 5.0, 3.0])
    res = bottleneck_cut([(v, int(parent[v])) for v in range(1, 7)], w)
    assert res.weight == 58.0
    assert int(np.argmax(res.criticality)) == 4
    assert res.on_cut.tolist() == [False, False, False, True, True, True, True]


def test_one_hash_join_carries_everything() -> None:
    p = plan(["Aggregate", "Hash Join", "Seq Scan", "Hash", "Seq Scan"], [-1, 0, 1, 1, 3],
             [1, 1000, 1000, 100, 100], [1010, 1000, 20, 15, 15])
    res = plan_cut(p)
    assert self_costs(p).tolist() == [10, 965, 20, 0, 15]
    assert res.criticality[1] == 1.0 and res.criticality.sum() == 1.0


def test_ties_every_optimal_cut_counts_and_runs_agree() -> None:
    res = bottleneck_cut([(1, 0), (2, 0)], [4.0, 2.0, 2.0])  # {0} and {1, 2} both weigh 4
    assert res.on_cut.tolist() == [True, True, True]
    assert res.criticality.tolist() == [1.0, 0.5, 0.5]
    again = bottleneck_cut([(1, 0), (2, 0)], [4.0, 2.0, 2.0])
    np.testing.assert_array_equal(res.criticality, again.criticality)


def test_plans_and_degenerate_inputs() -> None:
    res = plan_cut(JOIN)
    assert 0 < res.weight and res.criticality.max() <= 1
    assert bottleneck_cut([], []).weight == 0.0
    assert bottleneck_cut([(1, 0)], [0.0, 0.0]).criticality.tolist() == [0, 0]
    for edges, w in (([(0, 1), (1, 0)], [1.0, 1.0]), ([(0, 5)], [1.0, 1.0]), ([(1, 0)], [1.0, -1.0]),
                     ([(1, 0)], [1.0, float("nan")])):
        with pytest.raises(InvalidParameter):
            bottleneck_cut(edges, w)
