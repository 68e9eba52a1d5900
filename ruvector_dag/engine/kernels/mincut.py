"""Numba kernels of the bottleneck cut (orchestration: ruvector_dag/engine/mincut.py).

The flow network is given as arc pairs: arc 2i goes tail[i] -> head[i]
with residual capacity cap[2i], arc 2i+1 is its reverse with cap[2i+1].

* :func:`dinic` — maximum flow (Dinic 1970: BFS level graph, blocking flow
  by iterative DFS with per-vertex arc pointers); O(V^2 E), exact up to the
  float tolerance ``eps`` under which a residual capacity counts as zero.
* :func:`scc` — strongly connected components of the residual graph
  (Kosaraju, iterative), for the Picard–Queyranne test of which arcs lie on
  *some* minimum cut.
"""

from __future__ import annotations

import numpy as np
from numba import njit  # type: ignore[import-untyped]


@njit(cache=True)
def _adjacency(n_vertices: int, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR lists of outgoing arcs: arcs of vertex v are order[start[v]:start[v+1]]."""
    n_arcs = ends.shape[0] // 2
    counts = np.zeros(n_vertices + 1, np.int64)
    for a in range(2 * n_arcs):
        counts[ends[a ^ 1] + 1] += 1  # tail of arc a is the head of its partner
    for v in range(n_vertices):
        counts[v + 1] += counts[v]
    order = np.empty(2 * n_arcs, np.int64)
    fill = counts[:-1].copy()
    for a in range(2 * n_arcs):
        t = ends[a ^ 1]
        order[fill[t]] = a
        fill[t] += 1
    return counts, order


@njit(cache=True)
def dinic(n_vertices: int, ends: np.ndarray, cap: np.ndarray, source: int, sink: int, eps: float) -> float:
    """Push a maximum flow from source to sink; cap is updated in place to the residual."""
    start, order = _adjacency(n_vertices, ends)
    level = np.empty(n_vertices, np.int64)
    queue = np.empty(n_vertices, np.int64)
    ptr = np.empty(n_vertices, np.int64)
    stack_v = np.empty(n_vertices + 1, np.int64)
    stack_a = np.empty(n_vertices + 1, np.int64)
    total = 0.0
    while True:
        level[:] = -1
        level[source] = 0
        qh, qt = 0, 0
        queue[qt] = source
        qt += 1
        while qh < qt:
            v = queue[qh]
            qh += 1
            for k in range(start[v], start[v + 1]):
                a = order[k]
                w = ends[a]
                if cap[a] > eps and level[w] < 0:
                    level[w] = level[v] + 1
                    queue[qt] = w
                    qt += 1
        if level[sink] < 0:
            return total
        for v in range(n_vertices):
            ptr[v] = start[v]
        # Blocking flow: repeated DFS from the source along the level graph.
        while True:
            depth = 0
            stack_v[0] = source
            found = False
            while depth >= 0:
                v = stack_v[depth]
                if v == sink:
                    found = True
                    break
                advanced = False
                while ptr[v] < start[v + 1]:
                    a = order[ptr[v]]
                    w = ends[a]
                    if cap[a] > eps and level[w] == level[v] + 1:
                        stack_a[depth] = a
                        depth += 1
                        stack_v[depth] = w
                        advanced = True
                        break
                    ptr[v] += 1
                if not advanced:
                    level[v] = -1  # dead end
                    depth -= 1
                    if depth >= 0:
                        ptr[stack_v[depth]] += 1
            if not found:
                break
            push = np.inf
            for i in range(depth):
                if cap[stack_a[i]] < push:
                    push = cap[stack_a[i]]
            for i in range(depth):
                a = stack_a[i]
                cap[a] -= push
                cap[a ^ 1] += push
            total += push


@njit(cache=True)
def scc(n_vertices: int, ends: np.ndarray, cap: np.ndarray, eps: float) -> np.ndarray:
    """Component id of every vertex in the graph of arcs with cap > eps (Kosaraju)."""
    start, order = _adjacency(n_vertices, ends)
    # Reverse adjacency: arc a (t -> h) seen from h.
    rcount = np.zeros(n_vertices + 1, np.int64)
    n2 = ends.shape[0]
    for a in range(n2):
        rcount[ends[a] + 1] += 1
    for v in range(n_vertices):
        rcount[v + 1] += rcount[v]
    rorder = np.empty(n2, np.int64)
    fill = rcount[:-1].copy()
    for a in range(n2):
        h = ends[a]
        rorder[fill[h]] = a
        fill[h] += 1
    # Pass 1: finishing order by iterative DFS on the forward graph.
    seen = np.zeros(n_vertices, np.bool_)
    finish = np.empty(n_vertices, np.int64)
    nf = 0
    stack = np.empty(n_vertices, np.int64)
    it = np.empty(n_vertices, np.int64)
    for s in range(n_vertices):
        if seen[s]:
            continue
        depth = 0
        stack[0] = s
        it[0] = start[s]
        seen[s] = True
        while depth >= 0:
            v = stack[depth]
            pushed = False
            while it[depth] < start[v + 1]:
                a = order[it[depth]]
                it[depth] += 1
                w = ends[a]
                if cap[a] > eps and not seen[w]:
                    seen[w] = True
                    depth += 1
                    stack[depth] = w
                    it[depth] = start[w]
                    pushed = True
                    break
            if not pushed:
                finish[nf] = v
                nf += 1
                depth -= 1
    # Pass 2: DFS on the reversed graph in decreasing finishing order.
    comp = np.full(n_vertices, -1, np.int64)
    c = 0
    for idx in range(n_vertices - 1, -1, -1):
        s = finish[idx]
        if comp[s] >= 0:
            continue
        top = 0
        stack[0] = s
        comp[s] = c
        while top >= 0:
            v = stack[top]
            top -= 1
            for k in range(rcount[v], rcount[v + 1]):
                a = rorder[k]
                t = ends[a ^ 1]
                if cap[a] > eps and comp[t] < 0:
                    comp[t] = c
                    top += 1
                    stack[top] = t
        c += 1
    return comp
