"""SQL entry points served by the engine.

Every C-language function declared with the symbol ``rvd_engine_call`` in
``pgext/ruvector_dag--*.sql`` arrives here as ``call(sql_name, args)``.  The
arguments use the wire format documented in ``pgext/src/pybridge.c``:

* ``None`` for SQL NULL; ``bool``/``int``/``float``/``str`` for scalars;
  ``str`` (its text form) for ``jsonb``;
* ``(typecode, shape, payload)`` for arrays, with typecode ``"?"`` (bool),
  ``"i4"``, ``"f4"``, ``"f8"`` and payload the packed elements as ``bytes``
  (``None`` when the array contains NULL elements), or typecode ``"U"`` and
  payload a ``list`` of ``str | None`` for ``text[]``.

:func:`call` returns ``(result, warnings)``: the result converted by C to the
function's declared return type (a float32 buffer for ``real[]``, a JSON
string for ``jsonb``) and a list of warning messages the bridge raises as
SQL WARNINGs once Python has returned.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from ..definitions.errors import InvalidParameter, NullValueNotAllowed, NumericalFailure, RuvectorError
from ..engine import attention

Result = tuple[Any, list[str]]
Handler = Callable[..., Result]

_HANDLERS: dict[str, Handler] = {}

_DTYPES = {"?": np.bool_, "i4": np.int32, "f4": np.float32, "f8": np.float64}


def sql_function(name: str) -> Callable[[Handler], Handler]:
    """Register a handler for the SQL function ``name``."""

    def register(fn: Handler) -> Handler:
        _HANDLERS[name] = fn
        return fn

    return register


def registered_functions() -> frozenset[str]:
    return frozenset(_HANDLERS)


def call(name: str, args: tuple[Any, ...]) -> Result:
    """Dispatch one SQL call (entry point used by the C bridge)."""
    handler = _HANDLERS.get(name)
    if handler is None:
        raise RuvectorError(f"the ruvector_dag engine has no entry point for SQL function {name}()")
    return handler(*args)


# --------------------------------------------------------------------------
# Wire format -> NumPy
# --------------------------------------------------------------------------

def required(value: Any, argname: str) -> Any:
    if value is None:
        raise NullValueNotAllowed(f"{argname} must not be NULL")
    return value


def array_arg(value: Any, argname: str) -> np.ndarray:
    """A wire-format array as a NumPy array of its SQL shape (copy-free view)."""
    code, shape, payload = required(value, argname)
    if payload is None:
        raise NullValueNotAllowed(f"{argname} must not contain NULL elements")
    if code == "U":
        if any(item is None for item in payload):
            raise NullValueNotAllowed(f"{argname} must not contain NULL elements")
        return np.array(payload, dtype=object).reshape(shape if shape else (0,))
    arr: np.ndarray = np.frombuffer(payload, dtype=_DTYPES[code])
    return arr.reshape(shape if shape else (0,))


def optional_array_arg(value: Any, argname: str) -> np.ndarray | None:
    return None if value is None else array_arg(value, argname)


def scalar_arg(value: Any, argname: str) -> float:
    return float(required(value, argname))


def int_arg(value: Any, argname: str) -> int:
    return int(required(value, argname))


def json_arg(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def float32_result(weights: np.ndarray) -> bytes:
    return np.ascontiguousarray(weights, dtype=np.float32).tobytes()


def _uniform(length: int) -> np.ndarray:
    return np.full(length, 1.0 / max(length, 1), dtype=np.float32)


def _attention_result(compute: Callable[[], np.ndarray], fallback_len: int, name: str) -> Result:
    """Run a mechanism; on an internal numerical failure fall back to uniform weights.

    Only :class:`NumericalFailure` (non-finite output from validated, finite
    input) takes the fallback; bad input is an ERROR raised before this point.
    """
    try:
        return float32_result(compute()), []
    except NumericalFailure as exc:
        return float32_result(_uniform(fallback_len)), [
            f"{name} attention failed numerically ({exc}); returning uniform weights"
        ]


def _rows(ancestors: np.ndarray) -> int:
    return int(ancestors.shape[0]) if ancestors.ndim >= 1 else 0


# --------------------------------------------------------------------------
# Attention functions
# --------------------------------------------------------------------------

@sql_function("ruvector_attention_topological")
def _topological(query: Any, ancestors: Any, config: Any) -> Result:
    q = array_arg(query, "query")
    k = array_arg(ancestors, "ancestors")
    params = attention.topological_config(json_arg(config))
    return _attention_result(lambda: attention.topological(q, k, **params), _rows(k), "topological")


@sql_function("ruvector_attention_causal_cone")
def _causal_cone(query: Any, ancestors: Any, depths: Any, decay_rate: Any, max_depth: Any) -> Result:
    q, k = array_arg(query, "query"), array_arg(ancestors, "ancestors")
    d = array_arg(depths, "depths")
    rate, limit = scalar_arg(decay_rate, "decay_rate"), int_arg(max_depth, "max_depth")
    return _attention_result(lambda: attention.causal_cone(q, k, d, rate, limit), _rows(k), "causal_cone")


@sql_function("ruvector_attention_critical_path")
def _critical_path(query: Any, ancestors: Any, is_critical: Any, boost: Any) -> Result:
    q, k = array_arg(query, "query"), array_arg(ancestors, "ancestors")
    crit = array_arg(is_critical, "is_critical")
    b = scalar_arg(boost, "boost")
    return _attention_result(lambda: attention.critical_path(q, k, crit, b), _rows(k), "critical_path")


@sql_function("ruvector_attention_mincut_gated")
def _mincut_gated(query: Any, ancestors: Any, criticalities: Any, threshold: Any) -> Result:
    q, k = array_arg(query, "query"), array_arg(ancestors, "ancestors")
    crit = array_arg(criticalities, "criticalities")
    t = scalar_arg(threshold, "threshold")
    return _attention_result(lambda: attention.mincut_gated(q, k, crit, t), _rows(k), "mincut_gated")


@sql_function("ruvector_attention_hierarchical_lorentz")
def _hierarchical_lorentz(query: Any, ancestors: Any, depths: Any, curvature: Any, temperature: Any) -> Result:
    q, k = array_arg(query, "query"), array_arg(ancestors, "ancestors")
    d = array_arg(depths, "depths")
    c, temp = scalar_arg(curvature, "curvature"), scalar_arg(temperature, "temperature")
    return _attention_result(
        lambda: attention.hierarchical_lorentz(q, k, d, c, temp), _rows(k), "hierarchical_lorentz"
    )


@sql_function("ruvector_attention_parallel_branch")
def _parallel_branch(query: Any, ancestors: Any, parallel_nodes: Any, common_ancestor_mask: Any,
                     cross_weight: Any, common_boost: Any) -> Result:
    q, k = array_arg(query, "query"), array_arg(ancestors, "ancestors")
    p = array_arg(parallel_nodes, "parallel_nodes")
    mask = array_arg(common_ancestor_mask, "common_ancestor_mask")
    cw, cb = scalar_arg(cross_weight, "cross_weight"), scalar_arg(common_boost, "common_boost")
    total = _rows(k) + (_rows(p) if p.size else 0)  # n + m weights
    return _attention_result(
        lambda: attention.parallel_branch(q, k, p, mask, cw, cb), total, "parallel_branch"
    )


@sql_function("ruvector_attention_temporal_btsp")
def _temporal_btsp(query: Any, ancestors: Any, timestamps: Any, window_ms: Any, boost: Any) -> Result:
    q, k = array_arg(query, "query"), array_arg(ancestors, "ancestors")
    ts = array_arg(timestamps, "timestamps")
    w, b = scalar_arg(window_ms, "window_ms"), scalar_arg(boost, "boost")
    return _attention_result(lambda: attention.temporal_btsp(q, k, ts, w, b), _rows(k), "temporal_btsp")


@sql_function("ruvector_attention_ensemble")
def _ensemble(query: Any, ancestors: Any, attention_types: Any, weights: Any) -> Result:
    q, k = array_arg(query, "query"), array_arg(ancestors, "ancestors")
    types = array_arg(attention_types, "attention_types")
    w = optional_array_arg(weights, "weights")
    if types.ndim > 1:
        raise InvalidParameter("attention_types must be a one-dimensional array")
    names = [str(t) for t in types.ravel()]
    return _attention_result(lambda: attention.ensemble(q, k, names, w), _rows(k), "ensemble")


# --------------------------------------------------------------------------
# Introspection
# --------------------------------------------------------------------------

@sql_function("ruvector_dag_engine_info")
def _engine_info() -> Result:
    import numba  # type: ignore[import-untyped]

    from .. import __version__

    info = {
        "engine_version": __version__,
        "python_version": sys.version.split()[0],
        "python_executable": sys.executable,
        "numpy_version": np.__version__,
        "numba_version": numba.__version__,
        "numba_cache_dir": os.environ.get("NUMBA_CACHE_DIR"),
        "pid": os.getpid(),
        "uid": os.getuid(),
        "sys_path": sys.path[:4],
        "attention_mechanisms": list(attention.ATTENTION_TYPES),
    }
    return json.dumps(info), []


# --------------------------------------------------------------------------
# MinCut of an ad-hoc query's plan (ruvector_dag_mincut_plan)
# --------------------------------------------------------------------------

@sql_function("_mincut_of_plan")
def _mincut_of_plan(plan: Any, threshold: Any) -> Result:
    from ..definitions import layout
    from ..engine.mincut import nodes_from_explain, plan_cut, self_costs

    nodes = nodes_from_explain(json.loads(required(plan, "plan")))
    t = float(required(threshold, "threshold"))
    cut = plan_cut(nodes, timing=False)
    own = self_costs(nodes)
    rows = [{"node_id": i, "parent_id": int(n["parent"]), "operator": layout.operator_name(int(n["op"])),
             "self_cost": float(own[i]), "criticality": float(cut.criticality[i]),
             "is_bottleneck": bool(cut.criticality[i] > t)} for i, n in enumerate(nodes)]
    return json.dumps({"cut_weight": cut.weight, "nodes": rows}), []
