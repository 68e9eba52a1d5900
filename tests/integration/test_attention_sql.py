"""The eight attention functions through SQL: results, bad input, fallback."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
import pytest

from ruvector_dag.engine import attention

Q = "'{0.5,-1,2}'::real[]"
K = "'{{1,0,0},{0,1,0},{0,0,1},{1,1,1}}'::real[]"
q = np.array([0.5, -1, 2], dtype=np.float32)
k = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], dtype=np.float32)

# (SQL call, the same computation in the engine's NumPy reference)
CASES: list[tuple[str, Any]] = [
    (f"ruvector_attention_topological({Q}, {K})",
     lambda: attention.topological(q, k, backend="numpy")),
    (f"ruvector_attention_topological({Q}, {K}, "
     "'{\"decay_rate\": 0.5, \"temperature\": 2, \"mask\": [true, false, true, true]}')",
     lambda: attention.topological(q, k, decay_rate=0.5, temperature=2.0, mask=[True, False, True, True],
                                   backend="numpy")),
    (f"ruvector_attention_causal_cone({Q}, {K}, '{{1,2,3,4}}', 0.3, 3)",
     lambda: attention.causal_cone(q, k, [1, 2, 3, 4], 0.3, 3, backend="numpy")),
    (f"ruvector_attention_critical_path({Q}, {K}, '{{f,t,f,t}}', 1.5)",
     lambda: attention.critical_path(q, k, [False, True, False, True], 1.5, backend="numpy")),
    (f"ruvector_attention_mincut_gated({Q}, {K}, '{{0.9,0.1,0.6,0}}', 0.5)",
     lambda: attention.mincut_gated(q, k, [0.9, 0.1, 0.6, 0.0], 0.5, backend="numpy")),
    (f"ruvector_attention_hierarchical_lorentz({Q}, {K}, '{{1,2,1,3}}', 1.0, 0.7)",
     lambda: attention.hierarchical_lorentz(q, k, [1, 2, 1, 3], 1.0, 0.7, backend="numpy")),
    (f"ruvector_attention_parallel_branch({Q}, {K}, '{{{{1,2,3}},{{0,0,1}}}}', '{{t,f,f,t}}', 0.5, 1.0)",
     lambda: attention.parallel_branch(q, k, np.array([[1, 2, 3], [0, 0, 1]], dtype=np.float32),
                                       [True, False, False, True], 0.5, 1.0, backend="numpy")),
    (f"ruvector_attention_parallel_branch({Q}, {K}, '{{}}', '{{t,f,f,t}}', 0.5, 1.0)",
     lambda: attention.parallel_branch(q, k, np.zeros((0, 3), dtype=np.float32),
                                       [True, False, False, True], 0.5, 1.0, backend="numpy")),
    (f"ruvector_attention_temporal_btsp({Q}, {K}, '{{1000,1900,2000,500}}', 500, 2.0)",
     lambda: attention.temporal_btsp(q, k, [1000.0, 1900.0, 2000.0, 500.0], 500.0, 2.0, backend="numpy")),
    (f"ruvector_attention_ensemble({Q}, {K}, '{{topological,critical_path}}')",
     lambda: attention.ensemble(q, k, ["topological", "critical_path"], backend="numpy")),
    (f"ruvector_attention_ensemble({Q}, {K}, '{{topological,causal_cone}}', '{{3,1}}')",
     lambda: attention.ensemble(q, k, ["topological", "causal_cone"], [3.0, 1.0], backend="numpy")),
]


def test_acceptance_example(conn: Any) -> None:
    w = conn.execute("SELECT ruvector_attention_topological(ARRAY[1,0]::real[], ARRAY[[1,0],[0,1]]::real[])"
                     ).fetchone()[0]
    expected = attention.topological(np.array([1, 0], np.float32), np.eye(2, dtype=np.float32), backend="numpy")
    np.testing.assert_allclose(w, expected, rtol=1e-5)
    assert w[0] > w[1] and sum(w) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(("sql", "reference"), CASES, ids=[c[0].split("(")[0] + f"-{i}" for i, c in enumerate(CASES)])
def test_sql_matches_engine_reference(conn: Any, sql: str, reference: Any) -> None:
    got = np.array(conn.execute(f"SELECT {sql}").fetchone()[0], dtype=np.float64)
    want = np.asarray(reference(), dtype=np.float64)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert np.all(got >= 0) and got.sum() == pytest.approx(1.0, abs=1e-5)


def test_functions_are_immutable_and_parallel_safe(conn: Any) -> None:
    rows = conn.execute(
        "SELECT proname, provolatile, proparallel FROM pg_proc WHERE proname LIKE 'ruvector_attention_%'"
    ).fetchall()
    assert len(rows) == 8
    assert all(r[1] == "i" and r[2] == "s" for r in rows), rows


BAD: list[tuple[str, str, str]] = [
    # (call, sqlstate, text the message must contain)
    (f"ruvector_attention_topological(NULL, {K})", "22004", "query"),
    (f"ruvector_attention_topological({Q}, NULL)", "22004", "ancestors"),
    (f"ruvector_attention_topological({Q}, '{{}}')", "22023", "ancestors"),
    (f"ruvector_attention_topological({Q}, '{{1,0,0}}')", "22023", "ancestors"),
    (f"ruvector_attention_topological('{{1,0}}', {K})", "22023", "ancestors"),
    (f"ruvector_attention_topological('{{}}', {K})", "22023", "query"),
    (f"ruvector_attention_topological('{{NaN,0,1}}', {K})", "22023", "query"),
    (f"ruvector_attention_topological({Q}, '{{{{1,0,Infinity}}}}')", "22023", "ancestors"),
    (f"ruvector_attention_topological('{{1,NULL,0}}', {K})", "22004", "query"),
    (f"ruvector_attention_topological({Q}, {K}, '{{\"foo\": 1}}')", "22023", "foo"),
    (f"ruvector_attention_topological({Q}, {K}, '{{\"decay_rate\": \"fast\"}}')", "22023", "decay_rate"),
    (f"ruvector_attention_topological({Q}, {K}, '{{\"temperature\": 0}}')", "22023", "temperature"),
    (f"ruvector_attention_topological({Q}, {K}, '{{\"mask\": [true]}}')", "22023", "mask"),
    (f"ruvector_attention_topological({Q}, {K}, '[1,2]')", "22023", "config"),
    (f"ruvector_attention_topological({Q}, array_fill(0::real, ARRAY[70000,3]))", "54000", "ancestors"),
    (f"ruvector_attention_causal_cone({Q}, {K}, '{{1,2,3}}', 0.3, 3)", "22023", "depths"),
    (f"ruvector_attention_causal_cone({Q}, {K}, '{{1,-2,3,4}}', 0.3, 3)", "22023", "depths"),
    (f"ruvector_attention_causal_cone({Q}, {K}, '{{1,2,3,4}}', 'NaN', 3)", "22023", "decay_rate"),
    (f"ruvector_attention_causal_cone({Q}, {K}, '{{1,2,3,4}}', -1, 3)", "22023", "decay_rate"),
    (f"ruvector_attention_causal_cone({Q}, {K}, '{{1,2,3,4}}', NULL, 3)", "22004", "decay_rate"),
    (f"ruvector_attention_causal_cone({Q}, {K}, '{{1,2,3,4}}', 0.3, -1)", "22023", "max_depth"),
    (f"ruvector_attention_causal_cone({Q}, {K}, NULL, 0.3, 3)", "22004", "depths"),
    (f"ruvector_attention_critical_path({Q}, {K}, '{{t,f}}', 1)", "22023", "is_critical"),
    (f"ruvector_attention_critical_path({Q}, {K}, '{{t,f,NULL,t}}', 1)", "22004", "is_critical"),
    (f"ruvector_attention_critical_path({Q}, {K}, '{{t,f,f,t}}', 'Infinity')", "22023", "boost"),
    (f"ruvector_attention_mincut_gated({Q}, {K}, '{{0.1,0.2,0.3,1.5}}', 0.5)", "22023", "criticalities"),
    (f"ruvector_attention_mincut_gated({Q}, {K}, '{{0.1,0.2,0.3}}', 0.5)", "22023", "criticalities"),
    (f"ruvector_attention_mincut_gated({Q}, {K}, '{{0.1,0.2,0.3,0.4}}', 2)", "22023", "threshold"),
    (f"ruvector_attention_hierarchical_lorentz({Q}, {K}, '{{1,1,1,1}}', 0, 1)", "22023", "curvature"),
    (f"ruvector_attention_hierarchical_lorentz({Q}, {K}, '{{1,1,1,1}}', 1, -1)", "22023", "temperature"),
    (f"ruvector_attention_hierarchical_lorentz({Q}, {K}, '{{1,1}}', 1, 1)", "22023", "depths"),
    (f"ruvector_attention_parallel_branch({Q}, {K}, '{{{{1,2}}}}', '{{t,f,f,t}}', 0.5, 1)", "22023",
     "parallel_nodes"),
    (f"ruvector_attention_parallel_branch({Q}, {K}, '{{{{1,2,3}}}}', '{{t,f}}', 0.5, 1)", "22023",
     "common_ancestor_mask"),
    (f"ruvector_attention_parallel_branch({Q}, {K}, '{{{{1,2,3}}}}', '{{t,f,f,t}}', 1.5, 1)", "22023",
     "cross_weight"),
    (f"ruvector_attention_temporal_btsp({Q}, {K}, '{{1,2,3}}', 100, 1)", "22023", "timestamps"),
    (f"ruvector_attention_temporal_btsp({Q}, {K}, '{{1,2,3,Infinity}}', 100, 1)", "22023", "timestamps"),
    (f"ruvector_attention_temporal_btsp({Q}, {K}, '{{1,2,3,4}}', 0, 1)", "22023", "window_ms"),
    (f"ruvector_attention_ensemble({Q}, {K}, '{{topological,softmax}}')", "22023", "softmax"),
    (f"ruvector_attention_ensemble({Q}, {K}, '{{}}')", "22023", "attention_types"),
    (f"ruvector_attention_ensemble({Q}, {K}, '{{topological,NULL}}')", "22004", "attention_types"),
    (f"ruvector_attention_ensemble({Q}, {K}, '{{topological}}', '{{1,2}}')", "22023", "weights"),
    (f"ruvector_attention_ensemble({Q}, {K}, '{{topological,causal_cone}}', '{{1,-2}}')", "22023", "weights"),
]


@pytest.mark.parametrize(("sql", "sqlstate", "needle"), BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_input_is_refused(conn: Any, sql: str, sqlstate: str, needle: str) -> None:
    with pytest.raises(psycopg.Error) as err:
        conn.execute(f"SELECT {sql}")
    assert err.value.sqlstate == sqlstate, str(err.value)
    assert needle in str(err.value), str(err.value)
    # the session is intact after the error
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_numerical_failure_falls_back_to_uniform_with_warning(conn: Any) -> None:
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(f"{d.severity}: {d.message_primary}"))
    w = conn.execute(
        "SELECT ruvector_attention_hierarchical_lorentz('{3e38,3e38}', '{{3e38,-3e38},{1,2}}', '{1,2}', 1, 1)"
    ).fetchone()[0]
    assert w == pytest.approx([0.5, 0.5])
    assert any(n.startswith("WARNING") and "uniform" in n for n in notices), notices


def test_many_calls_in_one_statement(conn: Any) -> None:
    rows = conn.execute(
        "SELECT ruvector_attention_critical_path(ARRAY[g::real, 1], '{{1,0},{0,1}}', '{t,f}', 1) "
        "FROM generate_series(1, 200) g").fetchall()
    assert len(rows) == 200 and all(abs(sum(r[0]) - 1) < 1e-5 for r in rows)
