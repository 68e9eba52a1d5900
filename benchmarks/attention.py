"""Benchmark of the attention mechanisms (docs/attention.md).

Engine part: per-call time of each of the 8 mechanisms at 10, 100 and 1000
ancestors x 64 dimensions, Numba backend vs NumPy reference in the same run,
through the public API (validation included).  Inputs are shaped exactly as the
SQL layer hands them over (read-only arrays decoded from bytes, int4 depths,
float4 criticalities, ...).  Each figure is the median, over ``--repeat``
batches, of the mean time of a batch of calls; the two backends alternate batch
by batch so that machine noise hits both alike.

SQL part (``--dsn``): calls per second of ``SELECT ruvector_attention_<name>(...)``
over one connection, for ``--sql-seconds`` per mechanism and size.

    python benchmarks/attention.py [--repeat N] [--json out.json] [--dsn DSN]
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ruvector_dag.engine import attention

MECHANISMS: tuple[str, ...] = (*attention.ATTENTION_TYPES, "ensemble")
SIZES: tuple[int, ...] = (10, 100, 1000)
DIM = 64
TARGET_US = 50.0  # per call at 100 x 64, Numba backend, validation included
TARGET_RATIO = 3.0  # Numba vs NumPy reference at 100 x 64
BATCH_SECONDS = 0.02

Inputs = dict[str, Any]


# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------

def _as_sql_array(values: np.ndarray) -> np.ndarray:
    """The array as ``sqlapi.array_arg`` decodes it: a read-only view over a bytes payload."""
    return np.frombuffer(values.tobytes(), dtype=values.dtype).reshape(values.shape)


def make_inputs(n: int, d: int, seed: int = 0) -> Inputs:
    """Random arguments for every mechanism at n ancestors x d dimensions (m = n // 10 parallel nodes)."""
    rng = np.random.default_rng(seed)
    m = max(1, n // 10)
    return {
        "query": rng.standard_normal(d).astype(np.float32),
        "ancestors": rng.standard_normal((n, d)).astype(np.float32),
        "depths": np.arange(1, n + 1, dtype=np.int32),
        "is_critical": rng.random(n) < 0.3,
        "criticalities": rng.random(n).astype(np.float32),
        "parallel_nodes": rng.standard_normal((m, d)).astype(np.float32),
        "common_ancestor_mask": rng.random(n) < 0.2,
        "timestamps": np.sort(rng.uniform(0.0, 10_000.0, n)),
        "attention_types": list(attention.ATTENTION_TYPES),
    }


def engine_call(name: str, x: Inputs, backend: str) -> Callable[[], object]:
    """A zero-argument call of mechanism ``name`` with SQL-shaped inputs."""
    q, k = _as_sql_array(x["query"]), _as_sql_array(x["ancestors"])
    depths, crit = _as_sql_array(x["depths"]), _as_sql_array(x["is_critical"])
    criticalities = _as_sql_array(x["criticalities"])
    parallel, common = _as_sql_array(x["parallel_nodes"]), _as_sql_array(x["common_ancestor_mask"])
    timestamps = _as_sql_array(x["timestamps"])
    calls: dict[str, Callable[[], object]] = {
        "topological": lambda: attention.topological(q, k, backend=backend),
        "causal_cone": lambda: attention.causal_cone(q, k, depths, 0.1, 10, backend=backend),
        "critical_path": lambda: attention.critical_path(q, k, crit, 1.5, backend=backend),
        "mincut_gated": lambda: attention.mincut_gated(q, k, criticalities, 0.5, backend=backend),
        "hierarchical_lorentz": lambda: attention.hierarchical_lorentz(q, k, depths, 1.0, 1.0, backend=backend),
        "parallel_branch": lambda: attention.parallel_branch(q, k, parallel, common, 0.5, 2.0, backend=backend),
        "temporal_btsp": lambda: attention.temporal_btsp(q, k, timestamps, 500.0, 1.5, backend=backend),
        "ensemble": lambda: attention.ensemble(q, k, x["attention_types"], backend=backend),
    }
    return calls[name]


# --------------------------------------------------------------------------
# Engine timing
# --------------------------------------------------------------------------

def _calls_per_batch(fn: Callable[[], object]) -> int:
    """Enough calls for a batch to last about BATCH_SECONDS (after warming the call up)."""
    for _ in range(3):
        fn()
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - start >= BATCH_SECONDS / 4 or number >= 1 << 20:
            return max(1, int(number * BATCH_SECONDS / max(time.perf_counter() - start, 1e-9)))
        number *= 2


def _batch_us(fn: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number * 1e6


def time_pair(fast: Callable[[], object], ref: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median per-call microseconds of two calls measured in alternating batches."""
    n_fast, n_ref = _calls_per_batch(fast), _calls_per_batch(ref)
    fast_us, ref_us = [], []
    for _ in range(repeat):
        fast_us.append(_batch_us(fast, n_fast))
        ref_us.append(_batch_us(ref, n_ref))
    return statistics.median(fast_us), statistics.median(ref_us)


def engine_benchmark(sizes: Sequence[int], dim: int, repeat: int) -> list[dict[str, Any]]:
    attention.warm_up()
    rows = []
    for n in sizes:
        x = make_inputs(n, dim)
        for name in MECHANISMS:
            numba_us, numpy_us = time_pair(engine_call(name, x, "numba"), engine_call(name, x, "numpy"), repeat)
            rows.append({"mechanism": name, "ancestors": n, "dim": dim, "numba_us": numba_us,
                         "numpy_us": numpy_us, "ratio": numpy_us / numba_us})
    return rows


def print_engine_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'mechanism':22s} {'n x d':>10s} {'numba us':>10s} {'numpy us':>10s} {'ratio':>7s}")
    for r in rows:
        size = f"{r['ancestors']}x{r['dim']}"
        print(f"{r['mechanism']:22s} {size:>10s} {r['numba_us']:10.1f} {r['numpy_us']:10.1f} {r['ratio']:6.1f}x")


def check_targets(rows: list[dict[str, Any]], n: int = 100) -> dict[str, Any]:
    at = [r for r in rows if r["ancestors"] == n]
    if not at:
        return {}
    worst_us = max(at, key=lambda r: r["numba_us"])
    worst_ratio = min(at, key=lambda r: r["ratio"])
    return {
        "size": f"{n}x{at[0]['dim']}",
        "max_numba_us": worst_us["numba_us"], "max_numba_us_mechanism": worst_us["mechanism"],
        "min_ratio": worst_ratio["ratio"], "min_ratio_mechanism": worst_ratio["mechanism"],
        "latency_ok": worst_us["numba_us"] <= TARGET_US, "ratio_ok": worst_ratio["ratio"] >= TARGET_RATIO,
    }


# --------------------------------------------------------------------------
# SQL calls per second (needs the extension installed in the database at DSN)
# --------------------------------------------------------------------------

_SQL: dict[str, str] = {
    "topological": "SELECT ruvector_attention_topological(%s::real[], %s::real[])",
    "causal_cone": "SELECT ruvector_attention_causal_cone(%s::real[], %s::real[], %s::int[], %s::real, %s::int)",
    "critical_path": "SELECT ruvector_attention_critical_path(%s::real[], %s::real[], %s::bool[], %s::real)",
    "mincut_gated": "SELECT ruvector_attention_mincut_gated(%s::real[], %s::real[], %s::real[], %s::real)",
    "hierarchical_lorentz":
        "SELECT ruvector_attention_hierarchical_lorentz(%s::real[], %s::real[], %s::int[], %s::real, %s::real)",
    "parallel_branch": "SELECT ruvector_attention_parallel_branch(%s::real[], %s::real[], %s::real[], "
                       "%s::bool[], %s::real, %s::real)",
    "temporal_btsp":
        "SELECT ruvector_attention_temporal_btsp(%s::real[], %s::real[], %s::float8[], %s::real, %s::real)",
    "ensemble": "SELECT ruvector_attention_ensemble(%s::real[], %s::real[], %s::text[], %s::real[])",
}


def sql_arguments(name: str, x: Inputs) -> tuple[Any, ...]:
    """The SQL function's arguments (same values as the engine benchmark) as Python lists."""
    q, k = x["query"].tolist(), x["ancestors"].tolist()
    args: dict[str, tuple[Any, ...]] = {
        "topological": (q, k),
        "causal_cone": (q, k, x["depths"].tolist(), 0.1, 10),
        "critical_path": (q, k, x["is_critical"].tolist(), 1.5),
        "mincut_gated": (q, k, x["criticalities"].tolist(), 0.5),
        "hierarchical_lorentz": (q, k, x["depths"].tolist(), 1.0, 1.0),
        "parallel_branch": (q, k, x["parallel_nodes"].tolist(), x["common_ancestor_mask"].tolist(), 0.5, 2.0),
        "temporal_btsp": (q, k, x["timestamps"].tolist(), 500.0, 1.5),
        "ensemble": (q, k, x["attention_types"], None),
    }
    return args[name]


def sql_calls_per_second(dsn: str, sizes: Sequence[int] = SIZES, dim: int = DIM, seconds: float = 2.0
                         ) -> list[dict[str, Any]]:
    """Calls per second of each SQL attention function, looping ``seconds`` per mechanism and size."""
    import psycopg  # only this part needs a server

    rows = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for n in sizes:
            x = make_inputs(n, dim)
            for name in MECHANISMS:
                sql, params = _SQL[name], sql_arguments(name, x)
                conn.execute(sql, params, prepare=True).fetchone()  # warm: plan, engine import, kernels
                calls, start = 0, time.perf_counter()
                while (elapsed := time.perf_counter() - start) < seconds:
                    conn.execute(sql, params, prepare=True).fetchone()
                    calls += 1
                rows.append({"mechanism": name, "ancestors": n, "dim": dim, "calls": calls,
                             "calls_per_second": calls / elapsed,
                             "server_calls_per_second": server_calls_per_second(conn, sql, params, seconds)})
    return rows


def server_calls_per_second(conn: Any, sql: str, params: tuple[Any, ...], seconds: float) -> float:
    """Calls per second inside the server: the arguments sit in a table, one statement calls the
    function many times, so client-side adaptation and parsing of the arrays are not counted."""
    types = re.findall(r"%s::([\w\[\]]+)", sql)
    columns = ", ".join(f"%s::{t} AS p{i}" for i, t in enumerate(types))
    conn.execute("DROP TABLE IF EXISTS pg_temp.bench_args")
    conn.execute(f"CREATE TEMP TABLE bench_args AS SELECT {columns}", params)
    call = sql.removeprefix("SELECT ")
    for i in range(len(types)):
        call = call.replace("%s", f"a.p{i}", 1)
    batch, total, calls = 1, 0.0, 0
    while total < seconds:
        start = time.perf_counter()
        conn.execute(f"SELECT count({call}) FROM bench_args a, generate_series(1, {batch})").fetchone()
        total += time.perf_counter() - start
        calls += batch
        batch = min(batch * 2, 4096)
    return calls / total


def print_sql_table(rows: list[dict[str, Any]]) -> None:
    print(f"\n{'mechanism':22s} {'n x d':>10s} {'client calls/s':>15s} {'server calls/s':>15s}")
    for r in rows:
        size = f"{r['ancestors']}x{r['dim']}"
        print(f"{r['mechanism']:22s} {size:>10s} {r['calls_per_second']:15.0f} {r['server_calls_per_second']:15.0f}")


# --------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="timing batches per figure (median taken)")
    parser.add_argument("--sizes", type=lambda s: [int(v) for v in s.split(",")], default=list(SIZES),
                        help="comma-separated ancestor counts (default 10,100,1000)")
    parser.add_argument("--dim", type=int, default=DIM)
    parser.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    parser.add_argument("--dsn", help="PostgreSQL DSN: also measure SQL calls per second")
    parser.add_argument("--sql-seconds", type=float, default=2.0, help="seconds per SQL measurement")
    args = parser.parse_args(argv)

    engine = engine_benchmark(args.sizes, args.dim, args.repeat)
    print_engine_table(engine)
    targets = check_targets(engine)
    if targets:
        print(f"\ntargets at {targets['size']}: max numba {targets['max_numba_us']:.1f} us "
              f"({targets['max_numba_us_mechanism']}; target <= {TARGET_US:g}) -> "
              f"{'ok' if targets['latency_ok'] else 'MISSED'}; min ratio {targets['min_ratio']:.1f}x "
              f"({targets['min_ratio_mechanism']}; target >= {TARGET_RATIO:g}x) -> "
              f"{'ok' if targets['ratio_ok'] else 'MISSED'}")
    sql = sql_calls_per_second(args.dsn, args.sizes, args.dim, args.sql_seconds) if args.dsn else []
    if sql:
        print_sql_table(sql)
    if args.json:
        import numba

        result = {"engine": engine, "targets": targets, "sql": sql,
                  "environment": {"python": platform.python_version(), "numpy": np.__version__,
                                  "numba": numba.__version__, "machine": platform.machine(),
                                  "processor": platform.processor()}}
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
