"""Each attention mechanism is declared once (engine/mechanisms.py); everything else agrees with it."""

from __future__ import annotations

import math
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ruvector_dag.engine import attention, attention_reference, mechanisms
from ruvector_dag.engine.kernels import attention as kernels
from ruvector_dag.runtime import sqlapi

ROOT = Path(__file__).resolve().parents[2]
SQL_SCRIPTS = sorted((ROOT / "pgext").glob("ruvector_dag--*.sql"))
DECLARATION = re.compile(r"CREATE FUNCTION\s+(ruvector_attention_\w+)\s*\((.*?)\)\s*RETURNS", re.S)


def sql_declarations() -> dict[str, list[list[str]]]:
    """SQL name: the argument names of each of its declarations (fresh install and upgrade scripts)."""
    found: dict[str, list[list[str]]] = {}
    for script in SQL_SCRIPTS:
        for name, args in DECLARATION.findall(script.read_text()):
            found.setdefault(name, []).append([a.split()[0] for a in args.split(",")])
    return found


def test_sql_scripts_declare_exactly_the_mechanisms() -> None:
    declared = sql_declarations()
    assert set(declared) == {m.sql_name for m in mechanisms.MECHANISMS}
    for m in mechanisms.MECHANISMS:
        for args in declared[m.sql_name]:
            assert args == ["query", "ancestors", *(p.name for p in m.params)], m.sql_name


def test_docs_table_lists_exactly_the_mechanisms() -> None:
    text = (ROOT / "docs" / "attention.md").read_text()
    table = text.split("| mechanism | SQL function | what it computes |", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| \[(\w+)\]\(#\w+\) \| `(\w+)\(", table, re.M)
    assert rows == [(m.name, m.sql_name) for m in mechanisms.MECHANISMS]
    sections = re.findall(r"^## (\w+)$", text, re.M)
    assert all(m.name in sections for m in mechanisms.MECHANISMS)  # each has its section


@pytest.mark.parametrize("m", mechanisms.MECHANISMS, ids=lambda m: m.name)
def test_each_names_a_function_a_kernel_and_a_reference(m: mechanisms.Mechanism) -> None:
    assert callable(getattr(attention, m.name))
    assert callable(getattr(kernels, m.kernel))
    assert callable(getattr(attention_reference, m.reference))
    assert m.sql_name in sqlapi.registered_functions()


def test_ensemble_members_follow_the_kernel_indices_and_the_guc() -> None:
    from ruvector_dag.definitions import settings

    names = tuple(m.name for m in mechanisms.MEMBERS)
    assert names == attention.ATTENTION_TYPES == settings.ATTENTION_MECHANISMS
    assert len(names) == kernels.N_MECHANISMS
    assert [getattr(kernels, n.upper()) for n in names] == list(range(len(names)))


def f4(values: Any) -> tuple[str, tuple[int, ...], bytes]:
    arr = np.asarray(values, dtype=np.float32)
    return ("f4", arr.shape, arr.tobytes())


N = 4
WIRE: dict[str, tuple[Any, ...]] = {
    "topological": ('{"decay_rate": 0.2}',),
    "causal_cone": (("i4", (N,), struct.pack(f"={N}i", 1, 2, 3, 4)), 0.3, 3),
    "critical_path": (("?", (N,), bytes([1, 0, 0, 1])), 1.5),
    "mincut_gated": (f4([0.1, 0.9, 0.5, 1.0]), 0.5),
    "hierarchical_lorentz": (("i4", (N,), struct.pack(f"={N}i", 1, 2, 3, 4)), 1.0, 1.0),
    "parallel_branch": (f4(np.ones((2, 3))), ("?", (N,), bytes([0, 1, 0, 0])), 0.5, 1.0),
    "temporal_btsp": (("f8", (N,), struct.pack(f"={N}d", 0.0, 10.0, 2000.0, 5.0)), 1000.0, 1.0),
    "ensemble": (("U", (2,), ["topological", "critical_path"]), None),
}


@pytest.mark.parametrize("m", mechanisms.MECHANISMS, ids=lambda m: m.name)
def test_the_derived_sql_handler_computes_what_the_function_does(m: mechanisms.Mechanism) -> None:
    rng = np.random.default_rng(0)
    q, k = rng.standard_normal(3).astype(np.float32), rng.standard_normal((N, 3)).astype(np.float32)
    result, warnings = sqlapi.call(m.sql_name, (f4(q), f4(k), *WIRE[m.name]))
    assert warnings == []
    got = np.frombuffer(result, dtype=np.float32)
    expected_len = N + (2 if m.extra_weights_from else 0)
    assert got.shape == (expected_len,) and got.sum() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(Exception, match="query"):
        sqlapi.call(m.sql_name, (None, f4(k), *WIRE[m.name]))


def test_the_sql_handler_passes_the_arguments_through() -> None:
    rng = np.random.default_rng(1)
    q, k = rng.standard_normal(3).astype(np.float32), rng.standard_normal((N, 3)).astype(np.float32)
    result, _ = sqlapi.call("ruvector_attention_causal_cone", (f4(q), f4(k), *WIRE["causal_cone"]))
    direct = attention.causal_cone(q, k, np.array([1, 2, 3, 4], np.int32), 0.3, 3)
    np.testing.assert_array_equal(np.frombuffer(result, dtype=np.float32), direct)
    result, _ = sqlapi.call("ruvector_attention_topological", (f4(q), f4(k), *WIRE["topological"]))
    np.testing.assert_array_equal(np.frombuffer(result, dtype=np.float32), attention.topological(q, k, decay_rate=0.2))


def _violating(constraint: object) -> float:
    """A value outside a scalar's declared constraint."""
    from ruvector_dag.definitions.validation import Interval

    assert isinstance(constraint, Interval)
    if constraint.right is not None and constraint.right != math.inf:
        return float(constraint.right) + 0.5
    if constraint.left is not None and constraint.left != -math.inf:
        return float(constraint.left) - 1.0
    return math.inf


SCALARS = [(m, i, p) for m in mechanisms.MECHANISMS for i, p in enumerate(m.params) if p.constraint is not None]


@pytest.mark.parametrize(("m", "index", "param"), SCALARS, ids=lambda v: getattr(v, "name", str(v)))
def test_declared_constraints_are_the_ones_enforced(m: mechanisms.Mechanism, index: int,
                                                    param: mechanisms.Param) -> None:
    from ruvector_dag.definitions.errors import InvalidParameter

    assert param.constraint is not None
    args = list(WIRE[m.name])
    args[index] = _violating(param.constraint)
    if param.kind == "int" and math.isfinite(args[index]):
        args[index] = int(args[index])
    q, k = f4(np.ones(3)), f4(np.ones((N, 3)))
    with pytest.raises(InvalidParameter, match=param.name):
        sqlapi.call(m.sql_name, (q, k, *args))
    assert param.constraint.is_satisfied_by(WIRE[m.name][index])  # (and the valid example satisfies it)
