"""Synthetic captured plans for the engine's unit tests."""

from __future__ import annotations

import numpy as np

from ruvector_dag.definitions import layout
from ruvector_dag.engine.trajectory import node_dtype

#: EXPLAIN node name -> operator code of the record layout.
OP = {name: i + 1 for i, (_, name) in enumerate(layout.OPERATORS)}


def plan(ops: list[str], parents: list[int], rows: list[float], costs: list[float]) -> np.ndarray:
    """Plan nodes in EXPLAIN pre-order, with actual rows equal to the estimates."""
    nodes = np.zeros(len(ops), dtype=node_dtype())
    nodes["op"] = [OP[o] for o in ops]
    nodes["parent"] = parents
    nodes["plan_rows"] = rows
    nodes["actual_rows"] = rows
    nodes["loops"] = 1
    nodes["total_cost"] = costs
    nodes["plan_width"] = 8
    return nodes


JOIN = plan(["Hash Join", "Seq Scan", "Hash", "Seq Scan"], [-1, 0, 0, 2], [100, 1000, 50, 50], [500, 300, 60, 50])
LOOKUP = plan(["Index Scan"], [-1], [1], [8])
AGG = plan(["Aggregate", "Seq Scan"], [-1, 0], [1, 20000], [600, 400])
