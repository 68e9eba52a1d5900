"""Plan embeddings: a captured operator DAG as a fixed-size vector.

Each plan node (``trajectory.node_dtype()``) becomes :data:`NODE_FEATURES`
numbers (:data:`NODE_FEATURE_NAMES`): a coarse operator class, one-hot, and
eight scaled numeric features.  The plan is then pooled with an attention
mechanism (``docs/attention.md``): the root node's features are the query,
every node's features are the keys, and the mechanism's weights give an
attention-weighted mean and standard deviation of the node features.
Their concatenation, L2-normalised, is the embedding (:data:`EMBEDDING_DIM`
= 32).  DAG-derived inputs of the mechanisms (depths, the costliest path,
bottleneck-cut criticalities, the root's children) come from the plan itself; the fixed
parameters are in :data:`MECHANISM_PARAMS`.

The one quality formula of the engine is :func:`quality`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from ..definitions import layout
from ..definitions.errors import InvalidParameter
from ..definitions.settings import ATTENTION_MECHANISMS
from .kernels import attention as _k
from .mechanisms import MECHANISMS as ALL_MECHANISMS
from .mincut import plan_cut

MECHANISMS: tuple[str, ...] = ATTENTION_MECHANISMS
NODE_FEATURES = 16
EMBEDDING_DIM = 2 * NODE_FEATURES

#: Operator classes (one-hot columns 0-7), by EXPLAIN node name.
_CLASSES: Mapping[str, int] = MappingProxyType({
    name: column
    for column, names in (
        (0, ("Seq Scan", "Sample Scan", "Tid Scan", "Tid Range Scan")),
        (1, ("Index Scan", "Index Only Scan", "Bitmap Index Scan", "Bitmap Heap Scan", "BitmapAnd", "BitmapOr")),
        (2, ("Nested Loop",)),
        (3, ("Hash Join", "Hash")),
        (4, ("Merge Join",)),
        (5, ("Aggregate", "Group", "WindowAgg", "Unique", "SetOp")),
        (6, ("Sort", "Incremental Sort", "Merge Append")),
    )
    for name in names
})
#: Operator code (layout.OPERATORS) -> class column; 7 = any other operator.
_OP_CLASS = np.array([7] + [_CLASSES.get(name, 7) for _, name in layout.OPERATORS], dtype=np.int64)

NODE_FEATURE_NAMES: tuple[str, ...] = (
    "class: seq scan", "class: index/bitmap scan", "class: nested loop", "class: hash join/hash",
    "class: merge join", "class: aggregate/group/unique", "class: sort", "class: other",
    "log1p(plan_rows) / 10",
    "log1p(actual rows per loop) / 10",
    "log10((actual rows per loop + 1) / (plan_rows + 1)), clipped to [-6, 6], / 3",
    "log1p(total_cost) / 10",
    "log1p(startup_cost) / 10",
    "depth / max depth of the plan",
    "log1p(loops) / 5",
    "log1p(plan_width) / 5",
)

#: Fixed parameters of each mechanism when it pools a plan (declared with the mechanism).
MECHANISM_PARAMS: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {m.name: m.pooling for m in ALL_MECHANISMS if m.pooling is not None})

_EMPTY_MASK = np.zeros(0, np.bool_)


def node_features(nodes: np.ndarray) -> np.ndarray:
    """(n, NODE_FEATURES) float64 features of plan nodes in EXPLAIN pre-order."""
    n = len(nodes)
    out = np.zeros((n, NODE_FEATURES))
    if n == 0:
        return out
    ops = nodes["op"].astype(np.int64)
    ops[(ops < 0) | (ops >= len(_OP_CLASS))] = 0
    out[np.arange(n), _OP_CLASS[ops]] = 1.0
    plan_rows = np.maximum(nodes["plan_rows"].astype(np.float64), 0.0)
    loops = np.maximum(nodes["loops"].astype(np.float64), 1.0)
    per_loop = np.maximum(nodes["actual_rows"].astype(np.float64), 0.0) / loops
    out[:, 8] = np.log1p(plan_rows) / 10.0
    out[:, 9] = np.log1p(per_loop) / 10.0
    out[:, 10] = np.clip(np.log10((per_loop + 1.0) / (plan_rows + 1.0)), -6.0, 6.0) / 3.0
    out[:, 11] = np.log1p(np.maximum(nodes["total_cost"].astype(np.float64), 0.0)) / 10.0
    out[:, 12] = np.log1p(np.maximum(nodes["startup_cost"].astype(np.float64), 0.0)) / 10.0
    depth = depths(nodes)
    out[:, 13] = depth / max(int(depth.max()), 1)
    out[:, 14] = np.log1p(loops - 1.0) / 5.0
    out[:, 15] = np.log1p(np.maximum(nodes["plan_width"].astype(np.float64), 0.0)) / 5.0
    return out


def depths(nodes: np.ndarray) -> np.ndarray:
    """Depth of every node (root 0); parents precede children in pre-order."""
    parent = nodes["parent"].astype(np.int64)
    d = np.zeros(len(nodes), dtype=np.int32)
    for i in range(1, len(nodes)):
        p = parent[i]
        d[i] = d[p] + 1 if 0 <= p < i else 0
    return d


def critical_path(nodes: np.ndarray) -> np.ndarray:
    """Nodes on the costliest root-to-leaf path (following the child of highest total cost)."""
    n = len(nodes)
    parent = nodes["parent"].astype(np.int64)
    cost = nodes["total_cost"].astype(np.float64)
    on = np.zeros(n, dtype=np.bool_)
    i = 0
    while n:
        on[i] = True
        children = np.flatnonzero(parent == i)
        if len(children) == 0:
            break
        i = int(children[np.argmax(cost[children])])
    return on


def _weights(mechanism: str, feats: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Attention weights of the root over every node of the plan."""
    q = feats[0].astype(np.float32)
    k = np.ascontiguousarray(feats, dtype=np.float32)
    p = MECHANISM_PARAMS[mechanism]
    t = p["temperature"]
    if mechanism == "topological":
        return np.asarray(_k.topological(q, k, p["decay_rate"], t, _EMPTY_MASK), dtype=np.float64)
    if mechanism == "causal_cone":
        return np.asarray(_k.causal_cone(q, k, depths(nodes), p["decay_rate"], int(p["max_depth"]), t),
                          dtype=np.float64)
    if mechanism == "critical_path":
        return np.asarray(_k.critical_path(q, k, critical_path(nodes), p["boost"], t), dtype=np.float64)
    if mechanism == "mincut_gated":
        # Gated by each operator's criticality on the plan's bottleneck cut (ruvector_dag.engine.mincut).
        crit = plan_cut(nodes).criticality.astype(np.float32)
        return np.asarray(_k.mincut_gated(q, k, crit, p["threshold"], t), dtype=np.float64)
    if mechanism == "hierarchical_lorentz":
        return np.asarray(_k.hierarchical_lorentz(q, k, depths(nodes), p["curvature"], t, 1.0), dtype=np.float64)
    if mechanism == "parallel_branch":
        children = np.flatnonzero(nodes["parent"] == 0)
        common = np.zeros(len(nodes), dtype=np.bool_)
        common[0] = True  # the root is the common ancestor of its branches
        w = np.asarray(_k.parallel_branch(q, k, np.ascontiguousarray(k[children]), common, p["cross_weight"],
                                          p["common_boost"], t), dtype=np.float64)
        out = w[: len(nodes)].copy()
        np.add.at(out, children, w[len(nodes):])  # a branch's weight goes to its node
        return out
    if mechanism == "temporal_btsp":
        # Plan order as time: the nodes within the window of the last one (the deepest leaves) are boosted.
        ts = np.arange(len(nodes), dtype=np.float64)
        return np.asarray(_k.temporal_btsp(q, k, ts, p["window_ms"], p["boost"], t), dtype=np.float64)
    raise InvalidParameter(f"unknown attention mechanism {mechanism!r}; expected one of {', '.join(MECHANISMS)}")


def embed(nodes: np.ndarray, mechanism: str = "topological") -> np.ndarray:
    """The (EMBEDDING_DIM,) unit-length embedding of a plan pooled with ``mechanism``."""
    if mechanism not in MECHANISM_PARAMS:
        raise InvalidParameter(f"unknown attention mechanism {mechanism!r}; expected one of {', '.join(MECHANISMS)}")
    out = np.zeros(EMBEDDING_DIM)
    if len(nodes) == 0:
        return out
    feats = node_features(nodes)
    w = _weights(mechanism, feats, nodes)
    total = w.sum()
    w = w / total if total > 0 and np.isfinite(total) else np.full(len(nodes), 1.0 / len(nodes))
    mean = w @ feats
    std = np.sqrt(np.maximum(w @ (feats - mean) ** 2, 0.0))
    out[:NODE_FEATURES] = mean
    out[NODE_FEATURES:] = std
    norm = float(np.linalg.norm(out))
    return out / norm if norm > 0 else out


def quality(latency_us: float, reference_us: float) -> float:
    """The engine's one quality formula: r / (r + latency), in (0, 1].

    Falls monotonically with latency; 0.5 when the latency equals the
    reference (the running typical latency of the same query).
    """
    if not (latency_us >= 0.0 and math.isfinite(latency_us)):
        raise InvalidParameter(f"latency_us must be finite and >= 0, got {latency_us}")
    if not (reference_us > 0.0 and math.isfinite(reference_us)):
        raise InvalidParameter(f"reference_us must be finite and > 0, got {reference_us}")
    return reference_us / (reference_us + latency_us)


def warm_up() -> None:
    """Embed a tiny plan with every mechanism (loads the kernels' compiled signatures)."""
    from .trajectory import node_dtype

    nodes = np.zeros(3, dtype=node_dtype())
    nodes["op"] = [1, 9, 9]
    nodes["parent"] = [-1, 0, 0]
    nodes["plan_rows"] = [10, 5, 5]
    nodes["total_cost"] = [3, 1, 1]
    for m in MECHANISMS:
        embed(nodes, m)
