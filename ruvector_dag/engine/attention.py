"""Attention mechanisms over a query node's ancestors in a DAG (docs/attention.md).

Public API called by the SQL layer (:mod:`ruvector_dag.runtime.sqlapi`): each function
validates its arguments, fills in defaults and dispatches to the fused Numba
kernel (:mod:`ruvector_dag.engine.kernels.attention`) or, with ``backend="numpy"``, to
the plain NumPy reference (:mod:`ruvector_dag.engine.attention_reference`).  Both
return a 1-D float32 vector of weights: finite, non-negative and summing to 1,
or all zeros when every node is excluded.

Errors (all subclasses of :class:`~ruvector_dag.definitions.errors.RuvectorError`) name the
argument exactly as the SQL function does:

* :class:`NullValueNotAllowed` (22004): a required argument or an array element is None;
* :class:`InvalidParameter` (22023): wrong type, shape, length, range, NaN or Infinity;
* :class:`ProgramLimitExceeded` (54000): more than ``MAX_ANCESTORS`` rows,
  ``MAX_DIM`` dimensions or ``MAX_ELEMENTS`` matrix elements;
* :class:`NumericalFailure`: valid finite input whose computation overflowed.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, TypeGuard

import numpy as np
import numpy.typing as npt

from ..definitions.errors import InvalidParameter, NullValueNotAllowed, NumericalFailure, ProgramLimitExceeded
from ..definitions.validation import NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE, UNIT, validate
from . import attention_reference as _ref
from .kernels import attention as _k
from .mechanisms import LORENTZ_DEPTH_SCALE, MEMBERS

#: The ensemble's members (declared in :mod:`.mechanisms`, in the kernel's index order).
ATTENTION_TYPES: tuple[str, ...] = tuple(m.name for m in MEMBERS)
BACKENDS: tuple[str, ...] = ("numba", "numpy")

MAX_ANCESTORS = 65536
MAX_DIM = 16384
MAX_ELEMENTS = 16_777_216  # n * d, and (n + m) * d for parallel_branch
MAX_DEPTH_VALUE = 2**31 - 1  # depths are SQL int4

#: Arguments every ensemble member runs with (docs/attention.md, "ensemble").  The
#: per-ancestor arguments are fixed: depths i + 1 (row i, nearest first) with
#: max_depth n, no mask, no critical node, criticalities 1, no parallel node, no
#: common ancestor, equal timestamps.
ENSEMBLE_DEFAULTS: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {m.name: m.ensemble_defaults for m in MEMBERS if m.ensemble_defaults is not None})

# The same defaults as the (temperature, p1, p2) rows the ensemble kernel reads (declared in that order).
_ENSEMBLE_PARAM_KEYS: tuple[tuple[str, ...], ...] = tuple(tuple(ENSEMBLE_DEFAULTS[m.name]) for m in MEMBERS)

TOPOLOGICAL_CONFIG_KEYS: tuple[str, ...] = ("decay_rate", "temperature", "mask")

Weights = npt.NDArray[np.float32]
#: An array argument; None is accepted by the signature and refused with NullValueNotAllowed.
ArrayArg = npt.ArrayLike | None
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_I32 = np.dtype(np.int32)
_BOOL = np.dtype(np.bool_)
_SQL_TYPE = {_F32: "real", _F64: "float8"}


def _frozen(arr: np.ndarray) -> np.ndarray:
    """``arr`` made C-contiguous and read-only (a view when it can be).

    The kernels are compiled for read-only C-contiguous arrays only: Numba would
    compile (for seconds, inside a query) a second specialisation for writable ones.
    """
    flags = arr.flags
    if not flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
        arr.flags.writeable = False  # our own copy
    elif flags.writeable:
        arr = arr.view()
        arr.flags.writeable = False
    return arr


_NO_MASK = _frozen(np.zeros(0, np.bool_))


def _ensemble_param_table() -> np.ndarray:
    table = np.zeros((len(ATTENTION_TYPES), 3))
    for row, (name, keys) in enumerate(zip(ATTENTION_TYPES, _ENSEMBLE_PARAM_KEYS, strict=True)):
        table[row, : len(keys)] = [ENSEMBLE_DEFAULTS[name][key] for key in keys]
    return _frozen(table)


_ENSEMBLE_PARAMS = _ensemble_param_table()


# --------------------------------------------------------------------------
# Scalar validation
# --------------------------------------------------------------------------

def _real(value: object, name: str) -> float:
    """A finite real number (bool is refused: it is never a meaningful rate or weight)."""
    if type(value) is float:  # the common case, checked without the ABC machinery
        x = value
    elif value is None:
        raise NullValueNotAllowed(f"{name} must not be NULL")
    elif isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InvalidParameter(f"{name} must be a number, not {type(value).__name__}")
    else:
        x = float(value)
    if not math.isfinite(x):
        raise InvalidParameter(f"{name} must be a finite number (got {x})")
    return x


def _non_negative(value: object, name: str) -> float:
    return validate(name, _real(value, name), NON_NEGATIVE)


def _positive(value: object, name: str) -> float:
    return validate(name, _real(value, name), POSITIVE)


def _curvature(value: object) -> float:
    """The magnitude c of the hyperbolic space's curvature -c.  Either sign convention is accepted:
    geometers write the curvature itself (-1.0), the Lorentz model's formulas its magnitude (1.0)."""
    x = _real(value, "curvature")
    if x == 0.0:
        raise InvalidParameter("curvature must not be 0: a hyperbolic space has curvature -c with c > 0 "
                               "(-1.0 and 1.0 both mean c = 1)")
    return abs(x)


def _unit_interval(value: object, name: str) -> float:
    return validate(name, _real(value, name), UNIT)


def _non_negative_int(value: object, name: str) -> int:
    if type(value) is int:  # the common case, checked without the ABC machinery
        x = value
    elif value is None:
        raise NullValueNotAllowed(f"{name} must not be NULL")
    else:
        x = _integral(value, name)
    validate(name, x, NON_NEGATIVE_INT)
    return min(x, 2**62)  # every depth is < 2**31: larger bounds all mean "no bound"


def _integral(value: object, name: str) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise InvalidParameter(f"{name} must be an integer, not bool")
    if isinstance(value, numbers.Integral):
        x = int(value)
    elif isinstance(value, numbers.Real) and float(value).is_integer():
        x = int(float(value))
    else:
        raise InvalidParameter(f"{name} must be an integer (got {value!r})")
    return x


def _engine(backend: str) -> Any:
    """The kernel module (Numba) or the NumPy reference: both define every mechanism with one signature."""
    return _k if _backend_is_numba(backend) else _ref


def _backend_is_numba(backend: str) -> bool:
    if backend == "numba":
        return True
    if backend == "numpy":
        return False
    raise InvalidParameter(f"unknown backend {backend!r}; expected one of: {', '.join(BACKENDS)}")


# --------------------------------------------------------------------------
# Array validation
# --------------------------------------------------------------------------

def _array(value: object, name: str) -> np.ndarray:
    """Any array-like as an ndarray; None (the value or an element) -> NullValueNotAllowed."""
    if value is None:
        raise NullValueNotAllowed(f"{name} must not be NULL")
    if type(value) is np.ndarray:
        arr = value
    else:
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as exc:  # ragged nesting
            raise InvalidParameter(f"{name} must be a rectangular array") from exc
    if arr.dtype.kind == "O":
        arr = _from_objects(arr, name)
    return arr


def _from_objects(arr: np.ndarray, name: str) -> np.ndarray:
    flat = arr.ravel().tolist()
    if any(item is None for item in flat):
        raise NullValueNotAllowed(f"{name} must not contain NULL elements")
    try:  # mixed Python scalar types: let NumPy pick the common element type
        return np.array(flat).reshape(arr.shape)
    except (ValueError, TypeError) as exc:
        raise InvalidParameter(f"{name} must be a rectangular array") from exc


def _ndim_error(name: str, wanted: str, arr: np.ndarray) -> InvalidParameter:
    return InvalidParameter(f"{name} must be a {wanted} array, not {arr.ndim}-dimensional")


def _numbers(arr: np.ndarray, name: str) -> None:
    if arr.dtype.kind not in "fiu":
        raise InvalidParameter(f"{name} must contain numbers (got {arr.dtype} elements)")


def _as_dtype(arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Read-only C-contiguous ``dtype`` version of a numeric array (no copy when it already is one)."""
    if arr.dtype == dtype:
        return _frozen(arr)
    if arr.dtype.itemsize > dtype.itemsize or arr.dtype.kind != "f":
        with np.errstate(over="ignore"):  # narrowing: out-of-range values become inf, reported by the caller
            out = np.ascontiguousarray(arr, dtype=dtype)
    else:
        out = np.ascontiguousarray(arr, dtype=dtype)
    out.flags.writeable = False
    return out


def _not_finite(arr: np.ndarray, out: np.ndarray, name: str) -> InvalidParameter:
    """The error for an array with a non-finite element (before or after conversion)."""
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        return InvalidParameter(f"{name} contains NaN or Infinity")
    return InvalidParameter(f"{name} contains values outside the range of {_SQL_TYPE[out.dtype]}")


def _as_float(arr: np.ndarray, name: str, dtype: np.dtype) -> np.ndarray:
    """:func:`_as_dtype`, checked finite."""
    out = _as_dtype(arr, dtype)
    if not _k.all_finite(out):
        raise _not_finite(arr, out, name)
    return out


def _as_float_within(arr: np.ndarray, name: str, dtype: np.dtype, low: float, high: float) -> np.ndarray:
    """:func:`_as_float` with every element in [low, high] (one scan checks both)."""
    out = _as_dtype(arr, dtype)
    if not _k.all_within(out, low, high):
        if not _k.all_finite(out):
            raise _not_finite(arr, out, name)
        raise InvalidParameter(f"{name} must contain values between {low:g} and {high:g}")
    return out


def _query_array(value: object) -> np.ndarray:
    """``query`` checked for shape and size; converted but not yet scanned for NaN."""
    arr = _array(value, "query")
    _numbers(arr, "query")
    if arr.ndim != 1:
        raise _ndim_error("query", "one-dimensional", arr)
    size = arr.shape[0]
    if size == 0:
        raise InvalidParameter("query must not be empty")
    if size > MAX_DIM:
        raise ProgramLimitExceeded(f"query has {size} elements; the limit is {MAX_DIM}")
    return arr


def _matrix_array(value: object, name: str, dim: int, *, allow_empty: bool, extra_rows: int = 0) -> np.ndarray:
    """Rows of the query's dimension (``ancestors``, ``parallel_nodes``), checked for shape and limits."""
    arr = _array(value, name)
    ndim = arr.ndim
    if arr.size == 0 and (ndim == 1 or (ndim == 2 and arr.shape[0] == 0)):
        if allow_empty:
            return _empty_rows(dim)
        raise InvalidParameter(f"{name} must have at least one row")
    _numbers(arr, name)
    if ndim != 2:
        raise _ndim_error(name, "two-dimensional", arr)
    rows, cols = arr.shape
    if cols != dim:
        raise InvalidParameter(f"{name} has dimension {cols} but query has {dim}")
    if rows > MAX_ANCESTORS:
        raise ProgramLimitExceeded(f"{name} has {rows} rows; the limit is {MAX_ANCESTORS}")
    if (rows + extra_rows) * cols > MAX_ELEMENTS:
        raise ProgramLimitExceeded(
            f"{name} has {(rows + extra_rows) * cols} elements in all; the limit is {MAX_ELEMENTS}")
    return arr


@functools.lru_cache(maxsize=64)
def _empty_rows(dim: int) -> np.ndarray:
    """A read-only (0, dim) float32 matrix (the same object for a recent dimension)."""
    return _frozen(np.zeros((0, dim), _F32))


def _is_f32(value: object, ndim: int) -> TypeGuard[np.ndarray]:
    return type(value) is np.ndarray and value.dtype == _F32 and value.ndim == ndim


def _query_and_ancestors(query: object, ancestors: object) -> tuple[np.ndarray, np.ndarray]:
    """Validated float32 ``query`` and ``ancestors`` (shapes and limits first, then one NaN scan)."""
    if (_is_f32(query, 1) and _is_f32(ancestors, 2) and 0 < query.shape[0] <= MAX_DIM
            and ancestors.shape[1] == query.shape[0] and 0 < ancestors.shape[0] <= MAX_ANCESTORS
            and ancestors.size <= MAX_ELEMENTS):
        # Fast path for the common case (float32 arrays, as the SQL layer passes them); any
        # other input takes the general path, which also words the errors.
        q_in, k_in = query, ancestors
    else:
        q_in = _query_array(query)
        k_in = _matrix_array(ancestors, "ancestors", q_in.shape[0], allow_empty=False)
    q, k = _as_dtype(q_in, _F32), _as_dtype(k_in, _F32)
    if not _k.all_finite_pair(q, k):
        if not _k.all_finite(q):
            raise _not_finite(q_in, q, "query")
        raise _not_finite(k_in, k, "ancestors")
    return q, k


def _per_ancestor(value: object, name: str, n: int) -> np.ndarray:
    """A one-dimensional array with one element per ancestor row."""
    arr = _array(value, name)
    if arr.ndim != 1:
        raise _ndim_error(name, "one-dimensional", arr)
    if arr.shape[0] != n:
        raise InvalidParameter(f"{name} has {arr.shape[0]} elements but ancestors has {n} rows")
    return arr


def _bool_vector(value: object, name: str, n: int) -> np.ndarray:
    if type(value) is np.ndarray and value.dtype == _BOOL and value.shape == (n,):
        return _frozen(value)  # fast path: already what the kernels take
    arr = _per_ancestor(value, name, n)
    if arr.dtype != _BOOL:
        # 0/1 integers are accepted as booleans; anything else is a type error
        if arr.dtype.kind not in "iu" or not np.isin(arr, (0, 1)).all():
            raise InvalidParameter(f"{name} must contain booleans (got {arr.dtype} elements)")
        arr = arr.astype(_BOOL)
    return _frozen(arr)


def _depth_vector(value: object, name: str, n: int) -> np.ndarray:
    """int32 depths (the SQL type: no copy on the SQL path), each in [0, 2**31 - 1]."""
    arr = _per_ancestor(value, name, n)
    if arr.dtype == _I32:  # every int32 is <= MAX_DEPTH_VALUE: only the sign needs a check
        depths = _frozen(arr)
        if not _k.all_within(depths, 0.0, float(MAX_DEPTH_VALUE)):
            raise InvalidParameter(f"{name} must not contain negative values")
        return depths
    kind = arr.dtype.kind
    if kind == "f":  # integral floats (e.g. from JSON or Python arithmetic) are accepted
        if not (np.isfinite(arr).all() and (arr == np.trunc(arr)).all()):
            raise InvalidParameter(f"{name} must contain integers")
    elif kind not in "iu":
        raise InvalidParameter(f"{name} must contain integers (got {arr.dtype} elements)")
    if arr.min() < 0:
        raise InvalidParameter(f"{name} must not contain negative values")
    if arr.max() > MAX_DEPTH_VALUE:
        raise InvalidParameter(f"{name} must contain integers between 0 and {MAX_DEPTH_VALUE}")
    return _frozen(arr.astype(_I32))


def _float_vector(value: object, name: str, n: int) -> np.ndarray:
    arr = _per_ancestor(value, name, n)
    _numbers(arr, name)
    return _as_float(arr, name, _F64)


def _unit_vector(value: object, name: str, n: int) -> np.ndarray:
    arr = _per_ancestor(value, name, n)
    _numbers(arr, name)
    return _as_float_within(arr, name, _F32, 0.0, 1.0)  # SQL real[]: no copy on the SQL path


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------

def _result(weights: np.ndarray) -> Weights:
    # Kernels and reference return all-NaN weights exactly when the computation failed.
    # (The SQL layer's WARNING names the mechanism; the message says what went wrong.)
    if math.isnan(weights[0]):
        raise NumericalFailure("a logit overflowed on finite input (vector magnitudes or temperature too extreme)")
    return weights


# --------------------------------------------------------------------------
# Mechanisms
# --------------------------------------------------------------------------

def topological(query: ArrayArg, ancestors: ArrayArg, *, decay_rate: float = 0.1,
                temperature: float = 1.0, mask: ArrayArg = None, backend: str = "numba") -> Weights:
    """Scaled dot-product attention with a positional decay; row 0 is the nearest ancestor."""
    q, k = _query_and_ancestors(query, ancestors)
    rate = _non_negative(decay_rate, "decay_rate")
    temp = _positive(temperature, "temperature")
    flags = None if mask is None else _bool_vector(mask, "mask", k.shape[0])
    if _backend_is_numba(backend):
        out = _k.topological(q, k, rate, temp, _NO_MASK if flags is None else flags)
    else:
        out = _ref.topological(q, k, rate, temp, flags)
    return _result(out)


def causal_cone(query: ArrayArg, ancestors: ArrayArg, depths: ArrayArg, decay_rate: float,
                max_depth: int, *, temperature: float = 1.0, backend: str = "numba") -> Weights:
    """Attention restricted to ancestors within ``max_depth`` hops, decaying with depth."""
    q, k = _query_and_ancestors(query, ancestors)
    dep = _depth_vector(depths, "depths", k.shape[0])
    rate = _non_negative(decay_rate, "decay_rate")
    limit = _non_negative_int(max_depth, "max_depth")
    temp = _positive(temperature, "temperature")
    out = _engine(backend).causal_cone(q, k, dep, rate, limit, temp)
    return _result(out)


def critical_path(query: ArrayArg, ancestors: ArrayArg, is_critical: ArrayArg, boost: float, *,
                  temperature: float = 1.0, backend: str = "numba") -> Weights:
    """Attention with an additive logit ``boost`` for ancestors on the critical path."""
    q, k = _query_and_ancestors(query, ancestors)
    crit = _bool_vector(is_critical, "is_critical", k.shape[0])
    b = _real(boost, "boost")
    temp = _positive(temperature, "temperature")
    out = _engine(backend).critical_path(q, k, crit, b, temp)
    return _result(out)


def mincut_gated(query: ArrayArg, ancestors: ArrayArg, criticalities: ArrayArg, threshold: float,
                 *, temperature: float = 1.0, backend: str = "numba") -> Weights:
    """Attention gated after the softmax by each ancestor's min-cut criticality, renormalised."""
    q, k = _query_and_ancestors(query, ancestors)
    crit = _unit_vector(criticalities, "criticalities", k.shape[0])
    t = _unit_interval(threshold, "threshold")
    temp = _positive(temperature, "temperature")
    out = _engine(backend).mincut_gated(q, k, crit, t, temp)
    return _result(out)


def hierarchical_lorentz(query: ArrayArg, ancestors: ArrayArg, depths: ArrayArg, curvature: float,
                         temperature: float, *, backend: str = "numba") -> Weights:
    """Softmax of minus the hyperbolic (Lorentz model) distance; deeper ancestors lie farther out."""
    q, k = _query_and_ancestors(query, ancestors)
    dep = _depth_vector(depths, "depths", k.shape[0])
    c = _curvature(curvature)
    temp = _positive(temperature, "temperature")
    out = _engine(backend).hierarchical_lorentz(q, k, dep, c, temp, LORENTZ_DEPTH_SCALE)
    return _result(out)


def parallel_branch(query: ArrayArg, ancestors: ArrayArg, parallel_nodes: ArrayArg,
                    common_ancestor_mask: ArrayArg, cross_weight: float, common_boost: float, *,
                    temperature: float = 1.0, backend: str = "numba") -> Weights:
    """One softmax over the n ancestors and the m parallel nodes; returns n + m weights in that order."""
    q, k = _query_and_ancestors(query, ancestors)
    p_in = _matrix_array(parallel_nodes, "parallel_nodes", q.shape[0], allow_empty=True, extra_rows=k.shape[0])
    p = _as_float(p_in, "parallel_nodes", _F32)
    common = _bool_vector(common_ancestor_mask, "common_ancestor_mask", k.shape[0])
    cw = _unit_interval(cross_weight, "cross_weight")
    cb = _real(common_boost, "common_boost")
    temp = _positive(temperature, "temperature")
    out = _engine(backend).parallel_branch(q, k, p, common, cw, cb, temp)
    return _result(out)


def temporal_btsp(query: ArrayArg, ancestors: ArrayArg, timestamps: ArrayArg, window_ms: float,
                  boost: float, *, temperature: float = 1.0, backend: str = "numba") -> Weights:
    """Attention with a logit bonus for ancestors seen within ``window_ms`` of the most recent one."""
    q, k = _query_and_ancestors(query, ancestors)
    ts = _float_vector(timestamps, "timestamps", k.shape[0])
    w = _positive(window_ms, "window_ms")
    b = _real(boost, "boost")
    temp = _positive(temperature, "temperature")
    out = _engine(backend).temporal_btsp(q, k, ts, w, b, temp)
    return _result(out)


def _type_names(attention_types: Any) -> list[str]:
    if attention_types is None:
        raise NullValueNotAllowed("attention_types must not be NULL")
    if isinstance(attention_types, (str, bytes)):
        raise InvalidParameter("attention_types must be an array of mechanism names, not a single string")
    if isinstance(attention_types, np.ndarray):
        if attention_types.ndim != 1:
            raise _ndim_error("attention_types", "one-dimensional", attention_types)
        items = attention_types.tolist()
    else:
        items = list(attention_types)
    if not items:
        raise InvalidParameter("attention_types must name at least one mechanism")
    if any(item is None for item in items):
        raise NullValueNotAllowed("attention_types must not contain NULL elements")
    for item in items:
        if not isinstance(item, str) or item not in ATTENTION_TYPES:
            raise InvalidParameter(
                f"unknown attention type \"{item}\"; expected one of: {', '.join(ATTENTION_TYPES)}")
    return items


_TYPE_INDEX: dict[str, int] = {name: i for i, name in enumerate(ATTENTION_TYPES)}


def _ensemble_weights(weights: object, count: int) -> list[float]:
    arr = _array(weights, "weights")
    if arr.ndim != 1:
        raise _ndim_error("weights", "one-dimensional", arr)
    if arr.shape[0] != count:
        raise InvalidParameter(f"weights has {arr.shape[0]} elements but attention_types has {count}")
    _numbers(arr, "weights")
    raw: list[float] = _as_float(arr, "weights", _F64).tolist()
    if min(raw) < 0.0:
        raise InvalidParameter("weights must not be negative")
    return raw


def _member_weights(names: list[str], weights: object) -> np.ndarray:
    """Normalised weight of each mechanism (ATTENTION_TYPES order); duplicate names add up."""
    raw = [1.0] * len(names) if weights is None else _ensemble_weights(weights, len(names))
    largest = max(raw)
    if largest <= 0.0:
        raise InvalidParameter("weights must not all be zero")
    per_type = [0.0] * len(ATTENTION_TYPES)
    for name, w in zip(names, raw, strict=True):
        per_type[_TYPE_INDEX[name]] += w / largest  # scaled first: a sum of huge weights cannot overflow
    total = sum(per_type)
    member = np.array([w / total for w in per_type])
    member.flags.writeable = False
    return member


def ensemble(query: ArrayArg, ancestors: ArrayArg, attention_types: Sequence[str] | ArrayArg,
             weights: ArrayArg = None, *, backend: str = "numba") -> Weights:
    """Convex combination of mechanisms run with ``ENSEMBLE_DEFAULTS``; always n weights."""
    q, k = _query_and_ancestors(query, ancestors)
    member = _member_weights(_type_names(attention_types), weights)
    if _backend_is_numba(backend):
        out = _k.ensemble(q, k, member, _ENSEMBLE_PARAMS)
    else:
        pairs = [(name, float(w)) for name, w in zip(ATTENTION_TYPES, member.tolist(), strict=True)]
        out = _ref.ensemble(q, k, pairs, ENSEMBLE_DEFAULTS)
    return _result(out)


# --------------------------------------------------------------------------
# SQL helpers
# --------------------------------------------------------------------------

def _config_number(config: Mapping[str, Any], key: str, *, strictly_positive: bool) -> float:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidParameter(f"config key \"{key}\" must be a number (got {value!r})")
    try:
        x = float(value)
    except OverflowError:  # a JSON integer beyond the float range
        x = math.inf
    if not math.isfinite(x):
        raise InvalidParameter(f"config key \"{key}\" must be a finite number (got {value!r})")
    if x < 0.0 or (strictly_positive and x == 0.0):
        raise InvalidParameter(f"config key \"{key}\" must be {'> 0' if strictly_positive else '>= 0'} (got {x:g})")
    return x


def topological_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """Keyword arguments of :func:`topological` from the SQL function's ``config`` jsonb.

    Allowed keys: ``decay_rate`` (number >= 0), ``temperature`` (number > 0) and
    ``mask`` (array of booleans, one per ancestor row, or null for no mask; its
    length is checked by :func:`topological`).  Missing keys take the defaults.
    """
    params: dict[str, Any] = {"decay_rate": 0.1, "temperature": 1.0, "mask": None}
    if config is None:
        return params
    if not isinstance(config, dict):
        raise InvalidParameter(f"config must be a JSON object (got {type(config).__name__})")
    for key in config:
        if key not in TOPOLOGICAL_CONFIG_KEYS:
            raise InvalidParameter(
                f"config key \"{key}\" is not recognised; allowed: {', '.join(TOPOLOGICAL_CONFIG_KEYS)}")
    if "decay_rate" in config:
        params["decay_rate"] = _config_number(config, "decay_rate", strictly_positive=False)
    if "temperature" in config:
        params["temperature"] = _config_number(config, "temperature", strictly_positive=True)
    mask = config.get("mask")
    if mask is not None:
        if not isinstance(mask, list) or not all(isinstance(m, bool) for m in mask):
            raise InvalidParameter(f"config key \"mask\" must be an array of booleans (got {mask!r})")
        params["mask"] = mask
    return params


def warm_up() -> None:
    """Run every kernel once on tiny inputs so Numba loads (or compiles) them now.

    Goes through the public functions, so the argument types are exactly those of
    later calls (one compiled signature per kernel); the scans that only run when
    an input is bad are loaded too.
    """
    q = np.array([0.5, -0.25], np.float32)
    k = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    depths = np.array([1, 2], np.int32)  # SQL int4[]
    topological(q, k)
    topological(q, k, mask=[True, False])
    causal_cone(q, k, depths, 0.1, 2)
    critical_path(q, k, [True, False], 1.0)
    mincut_gated(q, k, [1.0, 0.5], 0.5)
    hierarchical_lorentz(q, k, depths, 1.0, 1.0)
    parallel_branch(q, k, k, [True, False], 0.5, 1.0)
    parallel_branch(q, k, [], [True, False], 0.5, 1.0)
    temporal_btsp(q, k, [0.0, 1.0], 1000.0, 1.0)
    ensemble(q, k, list(ATTENTION_TYPES), [1.0] * len(ATTENTION_TYPES))
    _k.all_finite(_frozen(q))
    _k.all_finite(_frozen(np.zeros(1, np.float32)).reshape(1, 1))
