"""First start of the engine: compiling every Numba kernel, against loading them from the install-time seed.

Before issue 16 the worker compiled every kernel into an empty
``$PGDATA/ruvector_dag_cache`` on a cluster's first start (and on every new
replica and restored backup: the cache was in the data directory, or not
copied at all).  Now ``python build.py`` compiles them once at install time
into the seed (``ruvector_dag/_kernel_seed``), and a server's first start
copies and loads them (``ruvector_dag/runtime/kernel_cache.py``).

Each round runs both, alternately, in fresh processes, each with an empty
cache directory of its own: ``compile`` (no seed: the old first start) and
``seeded`` (prepare() copies the seed, then loads).  The time is what the
worker's start line reports as "kernels warmed in", plus the seed copy.

    python benchmarks/first_start.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, os, sys, time
from pathlib import Path
began = time.perf_counter()
cache_dir, mode = sys.argv[1], sys.argv[2]
from ruvector_dag.runtime import kernel_cache
seeded = kernel_cache.seed(Path(cache_dir)) if mode == "seeded" else 0
os.environ["NUMBA_CACHE_DIR"] = cache_dir
from ruvector_dag.runtime.worker import warm_up
t0 = time.perf_counter()
warm_up()
print(json.dumps({"warm_ms": (time.perf_counter() - t0) * 1000, "total_ms": (time.perf_counter() - began) * 1000,
                  "seeded": seeded}))
"""


def run(mode: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="rvd-first-start-") as cache:
        out = subprocess.run([sys.executable, "-c", CHILD, cache, mode], capture_output=True, text=True, check=True,
                             cwd=str(Path(__file__).resolve().parent.parent))
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (compile, seeded), alternated")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    from ruvector_dag.runtime.kernel_cache import SEED_DIR

    if not any(SEED_DIR.rglob("*.nbi")):
        parser.error(f"no seed in {SEED_DIR}: run python build.py first")
    results: dict[str, list[dict[str, float]]] = {"compile": [], "seeded": []}
    for i in range(args.rounds):
        for mode in ("compile", "seeded") if i % 2 == 0 else ("seeded", "compile"):
            r = run(mode)
            results[mode].append(r)
            print(f"round {i + 1} {mode:8s} warm {r['warm_ms']:8.0f} ms  process {r['total_ms']:8.0f} ms"
                  f"  seeded files {int(r['seeded'])}", flush=True)
    print("\nmedian over rounds:")
    for mode, rs in results.items():
        print(f"  {mode:8s} warm {statistics.median(r['warm_ms'] for r in rs):8.0f} ms"
              f"  process {statistics.median(r['total_ms'] for r in rs):8.0f} ms")
    ratio = (statistics.median(r["warm_ms"] for r in results["compile"])
             / statistics.median(r["warm_ms"] for r in results["seeded"]))
    print(f"  compile / seeded: {ratio:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
