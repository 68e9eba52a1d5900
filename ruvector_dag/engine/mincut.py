"""Bottleneck analysis of an operator DAG by an exact cut (issue 5).

Graph.  Nodes are plan operators; an edge goes from each child to its
parent (data flows towards the root).  A super-source S feeds every leaf
(scan) and every root feeds the sink T.  Each operator v is split into
v_in -> v_out, and that arc carries a *lower bound* w(v) >= 0, the
operator's own cost: its total cost minus its children's, or, when per-node
timing was captured, its own time.  Every other bound is 0 .. infinity.

Cut.  The minimum S-T flow that satisfies the lower bounds equals, by the
min-flow max-cut theorem, the maximum over S-T cuts of the lower bounds
crossing forwards minus the upper bounds crossing backwards.  Upper bounds
are infinite, so an optimal cut has no backward arc: it crosses every
path from a scan to the root exactly once, and what it crosses is a set of
operators no one of which feeds another (an antichain).  So

    W* = max total own cost of operators that no operator among them feeds

is the *bottleneck cut*: the largest amount of work the plan holds side by
side, which every row reaching the root has passed through or alongside.
A chain's cut is its heaviest operator; a hash join doing most of the work
is a cut by itself; a star join's cut is its scans, the dominant dimension
carrying most of it.

Computation (exact).  A feasible flow is built by routing each w(v) along
one scan-to-root path through v; then a maximum flow pushed from T back to
S in the residual graph (Dinic, :mod:`ruvector_dag.engine.kernels.mincut`) removes
everything the lower bounds do not require: W* = feasible - removed.  This
reduction is itself a max-flow/min-cut problem, and its minimum cuts are
exactly the bottleneck cuts.  Picard and Queyranne (1980): an arc lies on
*some* minimum cut iff it is saturated and its ends are in different strong
components of the final residual graph.

Criticality of operator v: w(v) / W* if v lies on some bottleneck cut,
else 0.  It is in [0, 1] (a single operator is an antichain, so w(v) <= W*),
1 for an operator that carries the whole cut alone, 0 for one on no
bottleneck cut, and a pure function of the graph (ties included: every
operator on any optimal cut gets its share), hence deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..definitions.errors import InvalidParameter
from .kernels import mincut as _k

#: Residual capacities below this fraction of the total cost count as zero.
RELATIVE_EPS = 1e-9


@dataclass(frozen=True)
class CutResult:
    weight: float  # W*, the bottleneck cut's total own cost
    criticality: np.ndarray  # (n,) in [0, 1]
    on_cut: np.ndarray  # (n,) bool: on some bottleneck cut
    timing: bool = False  # weights were measured own times (plan_cut), not costs


def self_costs(nodes: np.ndarray, *, timing: bool = False) -> np.ndarray:
    """Own cost of each plan node: its total minus its children's (own time when timing was captured)."""
    field = "actual_ms" if timing else "total_cost"
    total = np.maximum(nodes[field].astype(np.float64), 0.0)
    parent = nodes["parent"].astype(np.int64)
    own = total.copy()
    for i in range(len(nodes)):
        p = parent[i]
        if 0 <= p < len(nodes) and p != i:
            own[p] -= total[i]
    return np.maximum(own, 0.0)


def _edges_from_parents(parent: np.ndarray) -> np.ndarray:
    n = len(parent)
    children = np.arange(n)
    mask = (parent >= 0) & (parent < n) & (parent != children)
    return np.stack([children[mask], parent[mask]], axis=1).astype(np.int64)


def _validate(edges: np.ndarray, w: np.ndarray, n: int) -> list[int]:
    """Check the inputs; return a topological order (children before parents)."""
    if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any():
        raise InvalidParameter("weights must be finite, >= 0, one per node")
    if edges.size and (edges.min() < 0 or edges.max() >= n):
        raise InvalidParameter("edge endpoints must be node indices")
    # Acyclic: Kahn's algorithm.
    indeg = np.zeros(n, np.int64)
    np.add.at(indeg, edges[:, 1], 1)
    out: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        out[int(a)].append(int(b))
    ready = [v for v in range(n) if indeg[v] == 0]
    order: list[int] = []
    while ready:
        v = ready.pop()
        order.append(v)
        for b in out[v]:
            indeg[b] -= 1
            if indeg[b] == 0:
                ready.append(b)
    if len(order) != n:
        raise InvalidParameter("the operator graph has a cycle")
    return order


def bottleneck_cut(edges: np.ndarray | list[tuple[int, int]], weights: np.ndarray | list[float]) -> CutResult:
    """The bottleneck cut of a DAG whose edges go (child, parent); see the module docstring."""
    w = np.asarray(weights, dtype=np.float64).ravel()
    n = len(w)
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    order = _validate(e, w, n)
    if n == 0 or w.sum() <= 0.0:
        return CutResult(0.0, np.zeros(n), np.zeros(n, dtype=np.bool_))
    has_child = np.zeros(n, np.bool_)
    has_parent = np.zeros(n, np.bool_)
    has_child[e[:, 1]] = True
    has_parent[e[:, 0]] = True
    first_child = np.full(n, -1, np.int64)
    first_parent = np.full(n, -1, np.int64)
    for a, b in e[::-1]:  # the first listed edge wins
        first_child[b] = a
        first_parent[a] = b

    # Vertices: S = 0, T = 1, v_in = 2 + 2v, v_out = 3 + 2v.  Original arcs:
    # node arcs (lower bound w), edges, S -> leaves, roots -> T.
    leaves = np.flatnonzero(~has_child)
    roots = np.flatnonzero(~has_parent)
    tail = np.concatenate([2 + 2 * np.arange(n), 3 + 2 * e[:, 0], np.zeros(len(leaves), np.int64), 3 + 2 * roots])
    head = np.concatenate([3 + 2 * np.arange(n), 2 + 2 * e[:, 1], 2 + 2 * leaves, np.ones(len(roots), np.int64)])
    lower = np.concatenate([w, np.zeros(len(e) + len(leaves) + len(roots))])
    arc_of_edge = {(int(a), int(b)): n + i for i, (a, b) in enumerate(e)}
    leaf_arc = {int(v): n + len(e) + i for i, v in enumerate(leaves)}
    root_arc = {int(v): n + len(e) + len(leaves) + i for i, v in enumerate(roots)}

    # Feasible flow: w(v) along one scan -> v -> root path, the path following
    # first children down and first parents up.  Summed per arc in O(n):
    # up[u] = what leaves u upwards (its own w and what climbs through it),
    # down[u] = what u passes to its first child (its own w and what descends).
    up = w.copy()
    for u in order:  # children first
        if first_parent[u] >= 0:
            up[first_parent[u]] += up[u]
    down = w.copy()
    for u in reversed(order):  # parents first
        if first_child[u] >= 0:
            down[first_child[u]] += down[u]
    flow = np.zeros(len(tail))
    flow[:n] = up + down - w  # through u: its own once, what climbs, what descends
    for u in range(n):
        if first_parent[u] >= 0:
            flow[arc_of_edge[(u, int(first_parent[u]))]] += up[u]
        else:
            flow[root_arc[u]] += up[u]
        if first_child[u] >= 0:
            flow[arc_of_edge[(int(first_child[u]), u)]] += down[u]
        else:
            flow[leaf_arc[u]] += down[u]
    feasible = float(flow[len(tail) - len(roots):].sum())

    # Reduction: push flow T -> S; arc (a -> b) may lose flow - lower (as b -> a)
    # and gain without limit (a -> b).  Arc pair i: 2i = b -> a, 2i+1 = a -> b.
    big = 4.0 * feasible + 1.0
    ends = np.empty(2 * len(tail), np.int64)
    ends[0::2] = tail
    ends[1::2] = head
    cap = np.empty(2 * len(tail))
    cap[0::2] = flow - lower
    cap[1::2] = big
    eps = RELATIVE_EPS * feasible
    removed = _k.dinic(2 * n + 2, ends, cap, 1, 0, eps)
    weight = feasible - removed
    comp = _k.scc(2 * n + 2, ends, cap, eps)
    v_out, v_in = 3 + 2 * np.arange(n), 2 + 2 * np.arange(n)
    on_cut = (cap[0:2 * n:2] <= eps) & (comp[v_out] != comp[v_in]) & (w > 0)
    crit = np.where(on_cut, np.clip(w / weight, 0.0, 1.0), 0.0) if weight > 0 else np.zeros(n)
    return CutResult(float(weight), crit, on_cut)


def plan_cut(nodes: np.ndarray, *, timing: bool | None = None) -> CutResult:
    """The bottleneck cut of a captured plan (nodes in EXPLAIN pre-order, parent links)."""
    if timing is None:
        timing = bool(len(nodes)) and bool((nodes["actual_ms"] >= 0).all()) and bool(nodes["actual_ms"].sum() > 0)
    res = bottleneck_cut(_edges_from_parents(nodes["parent"].astype(np.int64)), self_costs(nodes, timing=timing))
    return CutResult(res.weight, res.criticality, res.on_cut, timing)


def reference_tree(parent: np.ndarray, weights: np.ndarray) -> CutResult:
    """Dynamic programming over a tree (every captured plan is one): the specification of :func:`bottleneck_cut`.

    best(v) = max(w(v), sum of best over v's children); v lies on an optimal
    cut iff taking v is optimal for its subtree and descending is optimal at
    every ancestor.
    """
    parent = np.asarray(parent, dtype=np.int64)
    w = np.asarray(weights, dtype=np.float64)
    n = len(w)
    children: list[list[int]] = [[] for _ in range(n)]
    roots = []
    for v in range(n):
        if 0 <= parent[v] < n and parent[v] != v:
            children[int(parent[v])].append(v)
        else:
            roots.append(v)
    best = np.zeros(n)
    below = np.zeros(n)
    order: list[int] = []
    stack = list(roots)
    while stack:
        v = stack.pop()
        order.append(v)
        stack.extend(children[v])
    for v in reversed(order):
        below[v] = sum(best[c] for c in children[v])
        best[v] = max(w[v], below[v])
    total = float(sum(best[r] for r in roots))
    tol = RELATIVE_EPS * max(float(w.sum()), 1.0) * 10
    on = np.zeros(n, dtype=np.bool_)
    descend_ok = np.zeros(n, dtype=np.bool_)
    for v in order:  # parents before children
        p = parent[v]
        reachable = (not (0 <= p < n and p != v)) or descend_ok[p]
        on[v] = reachable and w[v] > 0 and w[v] >= below[v] - tol
        descend_ok[v] = reachable and below[v] >= w[v] - tol
    crit = np.where(on, w / total, 0.0) if total > 0 else np.zeros(n)
    return CutResult(total, np.clip(crit, 0.0, 1.0), on)


def warm_up() -> None:
    bottleneck_cut([(1, 0), (2, 0)], [1.0, 2.0, 3.0])


def nodes_from_explain(plan_json: object) -> np.ndarray:
    """Plan nodes (trajectory.node_dtype(), EXPLAIN pre-order) from EXPLAIN (FORMAT JSON) output."""
    from ..definitions import layout
    from .explain import explain_preorder
    from .trajectory import node_dtype

    codes = {name: i + 1 for i, (_, name) in enumerate(layout.OPERATORS)}
    rows = explain_preorder(plan_json)
    out = np.zeros(len(rows), dtype=node_dtype())
    for i, (node, parent) in enumerate(rows):
        out[i]["op"] = codes.get(str(node.get("Node Type", "")), 0)
        out[i]["parent"] = parent
        out[i]["plan_rows"] = float(node.get("Plan Rows", 0) or 0)  # type: ignore[arg-type]
        out[i]["startup_cost"] = float(node.get("Startup Cost", 0) or 0)  # type: ignore[arg-type]
        out[i]["total_cost"] = float(node.get("Total Cost", 0) or 0)  # type: ignore[arg-type]
        out[i]["plan_width"] = int(node.get("Plan Width", 0) or 0)  # type: ignore[call-overload]
        out[i]["actual_ms"] = -1.0
    return out
