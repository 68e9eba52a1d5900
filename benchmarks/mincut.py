"""Benchmark of the bottleneck cut (issue 5): criticality of every operator.

Plans of 10, 100 and 1000 operators (random trees whose parents are near
their children, as deep as real plans, and random DAGs with 1.5 edges per
node), own costs log-normal.  Per plan: ``mincut.bottleneck_cut`` (Numba
Dinic + strong components, the engine's path), and the tree DP
(``mincut.reference_tree``) for comparison on trees.  Median of ``--repeat``
runs after a warm-up.

    python benchmarks/mincut.py [--repeat 50]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import save

from ruvector_dag.engine import mincut

SIZES = (10, 100, 1000)
TARGET_MS = 10.0  # at 100 nodes


def median_ms(fn: Any, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args(argv)
    mincut.warm_up()
    rng = np.random.default_rng(0)
    rows = []
    for n in tqdm(SIZES, desc="bottleneck cut", unit="size"):
        parent = np.array([-1] + [int(rng.integers(max(0, i - 4), i)) for i in range(1, n)])
        tree = np.stack([np.arange(1, n), parent[1:]], axis=1)
        w = rng.lognormal(3, 1.5, n)
        extra = [(int(a), int(rng.integers(0, a))) for a in rng.integers(1, n, n // 2)] if n > 1 else []
        dag = np.unique(np.vstack([tree, np.array(extra, dtype=np.int64).reshape(-1, 2)]), axis=0)
        rows.append({
            "nodes": n,
            "tree_ms": median_ms(lambda tree=tree, w=w: mincut.bottleneck_cut(tree, w), args.repeat),
            "tree_dp_ms": median_ms(lambda parent=parent, w=w: mincut.reference_tree(parent, w), args.repeat),
            "dag_edges": len(dag),
            "dag_ms": median_ms(lambda dag=dag, w=w: mincut.bottleneck_cut(dag, w), args.repeat),
        })
    print(f"\nbottleneck cut, median of {args.repeat}:")
    print(f"{'nodes':>6} {'tree ms':>9} {'tree DP ms':>11} {'DAG edges':>10} {'DAG ms':>9}")
    for r in rows:
        print(f"{r['nodes']:>6} {r['tree_ms']:>9.3f} {r['tree_dp_ms']:>11.3f} {r['dag_edges']:>10} {r['dag_ms']:>9.3f}")
    at100 = next(r for r in rows if r["nodes"] == 100)
    met = max(at100["tree_ms"], at100["dag_ms"]) <= TARGET_MS
    print(f"target <= {TARGET_MS} ms at 100 nodes: {'met' if met else 'MISSED'}")
    print("results:", save("mincut", {"machine": platform.platform(), "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
