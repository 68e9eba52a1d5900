"""Plan embeddings and the quality formula."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from plans import AGG, JOIN, LOOKUP, plan

from ruvector_dag.definitions import layout
from ruvector_dag.definitions.errors import InvalidParameter
from ruvector_dag.engine import features
from ruvector_dag.engine.trajectory import node_dtype


def test_features_shape_and_names() -> None:
    f = features.node_features(JOIN)
    assert f.shape == (4, features.NODE_FEATURES) == (4, len(features.NODE_FEATURE_NAMES))
    assert f[:, :8].sum(axis=1).tolist() == [1, 1, 1, 1]  # one operator class each
    assert f[0, 3] == 1 and f[1, 0] == 1  # hash join, seq scan
    assert features.depths(JOIN).tolist() == [0, 1, 1, 2]
    assert features.critical_path(JOIN).tolist() == [True, True, False, False]


@pytest.mark.parametrize("mechanism", features.MECHANISMS)
def test_embedding_unit_length_and_deterministic(mechanism: str) -> None:
    for nodes in (JOIN, LOOKUP, AGG):
        e = features.embed(nodes, mechanism)
        assert e.shape == (features.EMBEDDING_DIM,)
        assert np.linalg.norm(e) == pytest.approx(1.0)
        np.testing.assert_array_equal(e, features.embed(nodes, mechanism))


def test_mechanisms_pool_differently_and_shapes_differ() -> None:
    embs = {m: features.embed(JOIN, m) for m in features.MECHANISMS}
    distinct = {tuple(np.round(e, 6)) for e in embs.values()}
    assert len(distinct) >= 5
    a, b = features.embed(LOOKUP), features.embed(AGG)
    assert float(a @ b) < 0.95


def test_big_plan_and_empty_plan() -> None:
    n = layout.MAX_PLAN_NODES
    big = plan(["Append"] + ["Seq Scan"] * (n - 1), [-1] + [0] * (n - 1), [10] * n, [5] * n)
    for m in features.MECHANISMS:
        assert np.isfinite(features.embed(big, m)).all()
    assert not features.embed(np.zeros(0, dtype=node_dtype())).any()
    with pytest.raises(InvalidParameter):
        features.embed(JOIN, "nope")


def test_quality_formula() -> None:
    assert features.quality(100.0, 100.0) == 0.5
    assert features.quality(0.0, 100.0) == 1.0
    qs = [features.quality(lat, 100.0) for lat in (1, 10, 100, 1000, 10000)]
    assert all(a > b for a, b in itertools.pairwise(qs)) and all(0 < q <= 1 for q in qs)
    for bad in ((-1.0, 1.0), (1.0, 0.0), (float("nan"), 1.0)):
        with pytest.raises(InvalidParameter):
            features.quality(*bad)
