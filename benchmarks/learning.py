"""Benchmark of the learning engine (issue 4).

1. k-means: our Numba weighted k-means++ (ruvector_dag.engine.clustering) against
   scikit-learn's KMeans (lloyd and elkan) with the same k, the same number
   of initialisations and the same thread count, on the same data, in one
   run: best of ``--repeat`` after a warm-up; time and inertia.
2. Background cycle: TableLearner.cycle() on 1k, 10k and 100k learned
   trajectories, k = 100, 32-dimensional embeddings; cold (the first cycle,
   no patterns yet) and warm (a cycle after one, warm-started from the
   patterns, the steady state of the worker).
3. Instant loop: microseconds per captured statement (embedding, match,
   selector, MicroLoRA step).
4. Learning curve (plot): prediction error and pattern hit rate as a
   synthetic workload of recurring plan shapes is processed, with a cycle
   every 200 statements.

Data: a mixture of 300 Gaussian clusters of unequal size on the unit sphere
in 32 dimensions (what plan embeddings look like: many recurring shapes).

    python benchmarks/learning.py [--threads 1] [--repeat 3] [--sizes 1000 10000 100000]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))

from common import OUT_DIR, save

from ruvector_dag.definitions import layout
from ruvector_dag.engine import clustering, features
from ruvector_dag.engine.learner import LearnerConfig, TableLearner
from ruvector_dag.engine.trajectory import node_dtype

K = 100
DIM = features.EMBEDDING_DIM
CYCLE_TARGET_MS = 100.0  # 10k trajectories
INERTIA_SLACK = 1.005  # within +0.5 % counts as equal


def embeddings(n: int, rng: np.random.Generator, clusters: int = 300) -> np.ndarray:
    centers = rng.normal(size=(clusters, DIM))
    sizes = rng.integers(1, 50, clusters).astype(float)
    labels = rng.choice(clusters, n, p=sizes / sizes.sum())
    X = centers[labels] + 0.3 * rng.normal(size=(n, DIM))
    out: np.ndarray = X / np.linalg.norm(X, axis=1, keepdims=True)
    return out


def best_of(fn: Any, repeat: int) -> tuple[float, Any]:
    fn()  # warm-up (compilation, caches)
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def kmeans_vs_sklearn(sizes: list[int], n_inits: list[int], repeat: int, threads: int) -> list[dict[str, Any]]:
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    rows = []
    rng = np.random.default_rng(0)
    with threadpool_limits(threads):
        for n in tqdm(sizes, desc="k-means vs scikit-learn", unit="size"):
            X = embeddings(n, rng)
            for n_init in n_inits:
                ours_t, ours = best_of(lambda X=X, n_init=n_init: clustering.kmeans(X, K, n_init=n_init, seed=0),
                                       repeat)
                row: dict[str, Any] = {"n": n, "k": K, "n_init": n_init, "ours_ms": ours_t * 1e3,
                                       "ours_inertia": ours.inertia}
                for algo in ("lloyd", "elkan"):
                    t, km = best_of(lambda X=X, n_init=n_init, algo=algo: KMeans(
                        K, n_init=n_init, init="k-means++", algorithm=algo, random_state=0).fit(X), repeat)
                    row[f"{algo}_ms"] = t * 1e3
                    row[f"{algo}_inertia"] = float(km.inertia_)
                best_sk = min(row["lloyd_ms"], row["elkan_ms"])
                row["time_ratio"] = row["ours_ms"] / best_sk
                row["inertia_ratio"] = ours.inertia / min(row["lloyd_inertia"], row["elkan_inertia"])
                row["target_met"] = row["time_ratio"] <= 1.0 and row["inertia_ratio"] <= INERTIA_SLACK
                rows.append(row)
    return rows


def _plan(ops: list[str], parents: list[int], rows: list[float], costs: list[float]) -> np.ndarray:
    """A captured plan (EXPLAIN pre-order, actual rows = estimates): the exemplar a pattern keeps."""
    code = {name: i + 1 for i, (_, name) in enumerate(layout.OPERATORS)}
    nodes = np.zeros(len(ops), dtype=node_dtype())
    nodes["op"] = [code[o] for o in ops]
    nodes["parent"] = parents
    nodes["plan_rows"] = nodes["actual_rows"] = rows
    nodes["loops"] = 1
    nodes["total_cost"] = costs
    nodes["plan_width"] = 8
    return nodes


#: Three plan shapes the batch's trajectories cycle through (the cycle cuts the exemplars' plans).
PLANS = (
    _plan(["Hash Join", "Seq Scan", "Hash", "Seq Scan"], [-1, 0, 0, 2], [100, 1000, 50, 50], [500, 300, 60, 50]),
    _plan(["Index Scan"], [-1], [1], [8]),
    _plan(["Aggregate", "Seq Scan"], [-1, 0], [1, 20000], [600, 400]),
)


def _fill(learner: TableLearner, X: np.ndarray, lat: np.ndarray) -> None:
    """Put embeddings (and their plans) in the learner's batch as if the instant loop had learned them."""
    b = learner.batch
    b.nodes = [PLANS[i % len(PLANS)] for i in range(len(X))]
    b.X = list(X)
    b.latency_us = list(lat)
    b.quality = [0.5] * len(b.X)
    b.query_id = [0] * len(b.X)
    b.mechanism = ["topological"] * len(b.X)


def _cold_cycle(X: np.ndarray, lat: np.ndarray) -> TableLearner:
    learner = TableLearner(1, LearnerConfig(pattern_clusters=K))
    _fill(learner, X, lat)
    learner.cycle()
    return learner


def cycle_times(sizes: list[int], repeat: int) -> list[dict[str, Any]]:
    rows = []
    rng = np.random.default_rng(1)
    for n in tqdm(sizes, desc="background cycle", unit="size"):
        X = embeddings(2 * n, rng)
        lat = rng.lognormal(6, 1, 2 * n)

        cold_t, learner = best_of(lambda X=X, lat=lat, n=n: _cold_cycle(X[:n], lat[:n]), repeat)
        warm_times = []
        for _ in range(repeat):
            _fill(learner, X[n:], lat[n:])
            t = time.perf_counter()
            learner.cycle()
            warm_times.append(time.perf_counter() - t)
        rows.append({"n": n, "k": K, "cold_ms": cold_t * 1e3, "warm_ms": min(warm_times) * 1e3,
                     "patterns": len(learner.bank.patterns)})
    return rows


def workload(n: int, seed: int) -> list[Any]:
    from plans import AGG, JOIN, LOOKUP

    from ruvector_dag.engine.trajectory import Trajectory

    rng = np.random.default_rng(seed)
    shapes = [(LOOKUP, 40.0), (AGG, 4000.0), (JOIN, 900.0)]
    out = []
    for i in range(n):
        k = int(rng.integers(len(shapes)))
        nodes, latency = shapes[k]
        nodes = nodes.copy()
        scale = float(rng.choice([1.0, 10.0, 100.0]))  # three parameterisations per shape
        nodes["actual_rows"] *= scale
        out.append(Trajectory(seq=i, query_id=k, captured_at_us=0, dbid=1, relid=1, userid=1,
                              session_userid=1, nesting_level=0,
                              planning_us=0.0, execution_us=latency * (0.5 + scale ** 0.5) * rng.uniform(0.9, 1.1),
                              rows_processed=1, memory_bytes=0, shared_blks_hit=0, shared_blks_read=0,
                              total_nodes=len(nodes), flags=0, cmd_type=1, nodes=nodes))
    return out


def instant_loop_and_curve(n: int) -> tuple[dict[str, Any], dict[str, list[float]]]:
    trajectories = workload(n, 2)
    learner = TableLearner(1, LearnerConfig(pattern_clusters=20, learning_rate=0.02))
    curve: dict[str, list[float]] = {"processed": [], "abs_error": [], "hit_rate": []}
    errors, hits = [], []
    elapsed = 0.0
    for i, t in enumerate(tqdm(trajectories, desc="instant loop", unit="stmt"), 1):
        began = time.perf_counter()
        out = learner.process(t)
        elapsed += time.perf_counter() - began
        errors.append(abs(out.prediction - np.log(t.execution_us)))
        hits.append(out.hit)
        if i % 200 == 0:
            learner.cycle()
            curve["processed"].append(i)
            curve["abs_error"].append(float(np.mean(errors[-200:])))
            curve["hit_rate"].append(float(np.mean(hits[-200:])))
    return {"statements": n, "us_per_statement": elapsed / n * 1e6}, curve


def plot(curve: dict[str, list[float]], cycles: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.plot(curve["processed"], curve["abs_error"], label="|log latency error| (last 200)")
    a.plot(curve["processed"], curve["hit_rate"], label="pattern hit rate (last 200)")
    a.set_xlabel("statements processed (a cycle every 200)")
    a.set_title("learning curve")
    a.legend()
    ns = [c["n"] for c in cycles]
    b.loglog(ns, [c["cold_ms"] for c in cycles], "o-", label="first cycle (no patterns)")
    b.loglog(ns, [c["warm_ms"] for c in cycles], "o-", label="steady state (warm start)")
    b.axhline(CYCLE_TARGET_MS, color="grey", ls="--", label="target at 10k: 100 ms")
    b.set_xlabel("trajectories in the cycle")
    b.set_ylabel("ms")
    b.set_title(f"background cycle, k = {K}, d = {DIM}")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--n-init", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--statements", type=int, default=3000)
    args = ap.parse_args(argv)

    import numba

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    clustering.warm_up()
    features.warm_up()
    km = kmeans_vs_sklearn(args.sizes, args.n_init, args.repeat, args.threads)
    cycles = cycle_times(args.sizes, args.repeat)
    loop, curve = instant_loop_and_curve(args.statements)

    print(f"\nk-means, k = {K}, d = {DIM}, {args.threads} thread(s), best of {args.repeat}:")
    print(f"{'n':>7} {'n_init':>6} {'ours ms':>9} {'lloyd ms':>9} {'elkan ms':>9} {'time ratio':>10} "
          f"{'inertia ratio':>13}  target")
    for r in km:
        print(f"{r['n']:>7} {r['n_init']:>6} {r['ours_ms']:>9.1f} {r['lloyd_ms']:>9.1f} {r['elkan_ms']:>9.1f} "
              f"{r['time_ratio']:>10.2f} {r['inertia_ratio']:>13.4f}  {'met' if r['target_met'] else 'MISSED'}")
    print(f"\nbackground cycle, k = {K}:")
    print(f"{'n':>7} {'cold ms':>9} {'warm ms':>9} {'patterns':>9}")
    for c in cycles:
        print(f"{c['n']:>7} {c['cold_ms']:>9.1f} {c['warm_ms']:>9.1f} {c['patterns']:>9}")
    print(f"\ninstant loop: {loop['us_per_statement']:.0f} us per statement")
    OUT_DIR.mkdir(exist_ok=True)
    png = Path(__file__).resolve().parents[1] / "docs" / "img" / "learning.png"
    png.parent.mkdir(exist_ok=True)
    plot(curve, cycles, png)
    path = save("learning", {"machine": platform.platform(), "threads": args.threads, "kmeans": km,
                             "cycles": cycles, "instant_loop": loop, "curve": curve})
    print(f"results: {path}\nplot:    {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
