"""EXPLAIN (FORMAT JSON) output as a list of operators in pre-order: the one walk of a plan document.

MinCut numbers a plan's operators in this order (:func:`.mincut.nodes_from_explain`,
``ruvector_dag._mincut_of_plan``); the dashboard pairs its rows with them by position.
"""

from __future__ import annotations

from typing import Any

from ..definitions.errors import InvalidParameter


def explain_preorder(plan_json: Any) -> list[tuple[dict[str, Any], int]]:
    """(operator, index of its parent or -1) for every operator, pre-order, children in EXPLAIN's order."""
    doc = plan_json[0] if isinstance(plan_json, list) and plan_json else plan_json
    root = doc.get("Plan") if isinstance(doc, dict) else None
    if not isinstance(root, dict):
        raise InvalidParameter("not the output of EXPLAIN (FORMAT JSON): no \"Plan\" object")
    rows: list[tuple[dict[str, Any], int]] = []
    stack: list[tuple[dict[str, Any], int]] = [(root, -1)]
    while stack:
        node, parent = stack.pop()
        index = len(rows)
        rows.append((node, parent))
        children = node.get("Plans") or []
        if not isinstance(children, list):
            raise InvalidParameter("\"Plans\" must be a list")
        stack.extend((c, index) for c in reversed(children) if isinstance(c, dict))
    return rows
