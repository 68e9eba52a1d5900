"""SQL entry points served by the engine.

Every C-language function declared with the symbol ``rvd_engine_call`` in
``pgext/ruvector_dag--*.sql`` arrives here as ``call(sql_name, args)``.  The
arguments use the wire format documented in ``pgext/src/py_typeio.c``:

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
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from ..definitions.errors import InvalidParameter, NullValueNotAllowed, NumericalFailure, RuvectorError
from ..engine import attention
from ..engine.mechanisms import MECHANISMS, Mechanism, Param

Result = tuple[Any, list[str]]
Handler = Callable[..., Result]

_DTYPES = {"?": np.bool_, "i4": np.int32, "f4": np.float32, "f8": np.float64}


def registered_functions() -> frozenset[str]:
    return frozenset(HANDLERS)


def call(name: str, args: tuple[Any, ...]) -> Result:
    """Dispatch one SQL call (entry point used by the C bridge)."""
    handler = HANDLERS.get(name)
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

def _converted(param: Param, value: Any, mechanism: Mechanism) -> Any:
    """One SQL argument of ``mechanism`` as its Python function takes it."""
    if param.kind == "array":
        return array_arg(value, param.name)
    if param.kind == "optional_array":
        return optional_array_arg(value, param.name)
    if param.kind == "real":
        return scalar_arg(value, param.name)
    if param.kind == "int":
        return int_arg(value, param.name)
    if param.kind == "config":  # a jsonb object of keyword arguments, checked by <name>_config
        return getattr(attention, f"{mechanism.name}_config")(json_arg(value))
    types = array_arg(value, param.name)  # "names"
    if types.ndim > 1:
        raise InvalidParameter(f"{param.name} must be a one-dimensional array")
    return [str(t) for t in types.ravel()]


def _mechanism_handler(mechanism: Mechanism) -> Handler:
    """The SQL entry point of an attention mechanism, derived from its declaration (engine.mechanisms)."""
    compute_fn = getattr(attention, mechanism.name)

    def handler(query: Any, ancestors: Any, *args: Any) -> Result:
        q, k = array_arg(query, "query"), array_arg(ancestors, "ancestors")
        if len(args) != len(mechanism.params):
            raise RuvectorError(f"{mechanism.sql_name}() takes {len(mechanism.params) + 2} arguments")
        positional: list[Any] = []
        keywords: dict[str, Any] = {}
        converted: dict[str, Any] = {}
        for param, value in zip(mechanism.params, args, strict=True):
            converted[param.name] = _converted(param, value, mechanism)
            if param.kind == "config":
                keywords.update(converted[param.name])
            else:
                positional.append(converted[param.name])
        total = _rows(k)
        if mechanism.extra_weights_from is not None:  # n + m weights
            extra = converted[mechanism.extra_weights_from]
            total += _rows(extra) if extra.size else 0
        return _attention_result(lambda: compute_fn(q, k, *positional, **keywords), total, mechanism.name)

    handler.__name__ = f"_{mechanism.name}"
    return handler


# --------------------------------------------------------------------------
# Introspection
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------
# The dispatch table: SQL function name -> handler (read-only)
# --------------------------------------------------------------------------

HANDLERS: Mapping[str, Handler] = MappingProxyType({
    **{m.sql_name: _mechanism_handler(m) for m in MECHANISMS},
    "ruvector_dag_engine_info": _engine_info,
    "_mincut_of_plan": _mincut_of_plan,
})
