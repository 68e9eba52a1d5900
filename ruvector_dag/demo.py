"""``ruvector-dag demo``: the main job on the embedded server.

Starts the embedded PostgreSQL with ruvector_dag preloaded, creates a small
sample schema, enrolls it, runs a mixed workload with a progress bar, and
prints what the extension saw: capture counters, a captured operator DAG,
and attention weights over that DAG computed by the engine in the server.
"""

from __future__ import annotations

import math
import random
from typing import Any

from tqdm import tqdm

SCHEMA = """
DROP TABLE IF EXISTS demo_orders, demo_customers;
CREATE TABLE demo_customers (id int PRIMARY KEY, region text, tier int);
CREATE TABLE demo_orders (id int PRIMARY KEY, customer_id int, amount numeric, day int);
INSERT INTO demo_customers SELECT g, 'region-' || (g % 8), g % 3 FROM generate_series(1, 2000) g;
INSERT INTO demo_orders SELECT g, 1 + (g * 7919) % 2000, (g % 113) * 2.5, g % 60
  FROM generate_series(1, 50000) g;
CREATE INDEX ON demo_orders (customer_id);
ANALYZE demo_customers, demo_orders;
"""

WORKLOAD = [
    ("point lookup", "SELECT * FROM demo_orders WHERE id = %s", lambda r: (r.randint(1, 50000),)),
    ("customer orders", "SELECT sum(amount) FROM demo_orders WHERE customer_id = %s",
     lambda r: (r.randint(1, 2000),)),
    ("regional revenue",
     "SELECT c.region, sum(o.amount) FROM demo_orders o JOIN demo_customers c ON c.id = o.customer_id "
     "WHERE o.day = %s GROUP BY c.region", lambda r: (r.randint(0, 59),)),
]


def _table(rows: list[tuple[Any, ...]], headers: list[str]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    sep = "  ".join("-" * w for w in widths)
    body = "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells)
    return f"{line}\n{sep}\n{body}"


def run(server: Any, statements: int = 600, seed: int = 7) -> int:
    print(f"starting PostgreSQL {server.pg_version} with ruvector_dag in {server.pgdata} ...")
    server.start()
    rng = random.Random(seed)
    with server.connect() as conn:
        conn.execute(SCHEMA)
        conn.execute("SELECT ruvector_enable_neural_dag('demo_orders')")
        conn.execute("SELECT ruvector_dag_capture_reset()")
        for _ in tqdm(range(statements), desc="workload", unit="stmt"):
            _, sql, params = rng.choice(WORKLOAD)
            conn.execute(sql, params(rng)).fetchall()

        print("\nCapture (ruvector_dag.capture):")
        rows = conn.execute("SELECT table_name::text, seen, stored, dropped, buffered FROM ruvector_dag.capture"
                            ).fetchall()
        print(_table(rows, ["table", "seen", "stored", "dropped", "buffered"]))

        print("\nCaptured statements by plan shape:")
        shapes = conn.execute(
            "SELECT string_agg(n->>'op', ' > ' ORDER BY ord) AS shape, count(*) OVER () AS _ "
            "FROM ruvector_dag_buffered_trajectories(100000) t, "
            "LATERAL jsonb_array_elements(t.nodes) WITH ORDINALITY AS e(n, ord) GROUP BY t.seq").fetchall()
        counts: dict[str, int] = {}
        for shape, _ in shapes:
            counts[shape] = counts.get(shape, 0) + 1
        print(_table(sorted(((s, c) for s, c in counts.items()), key=lambda x: -x[1]), ["operator DAG", "count"]))

        rec = conn.execute(
            "SELECT execution_us, planning_us, rows_processed, cache_hit_rate, nodes "
            "FROM ruvector_dag_buffered_trajectories(100000) WHERE n_nodes >= 4 ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if rec is not None:
            nodes = rec[4]
            print(f"\nOne captured join ({rec[0]:.0f} us executing, {rec[1]:.0f} us planning, "
                  f"{rec[2]} rows, cache hit rate {rec[3] or 0:.2f}):")
            print(_table([(i, n["op"], n["parent"], f"{n['plan_rows']:.0f}", f"{n['actual_rows']:.0f}",
                           f"{n['total_cost']:.1f}") for i, n in enumerate(nodes)],
                         ["node", "operator", "parent", "est. rows", "actual rows", "cost"]))
            # features of each node: log rows and log cost
            def feat(n: dict[str, Any]) -> list[float]:
                return [math.log1p(max(n["actual_rows"], 0)), math.log1p(n["total_cost"])]

            feats = [feat(n) for n in nodes[1:]]
            query = feat(nodes[0])
            crit = ["t" if n["op"].endswith("Join") or n["op"] == "Hash" else "f" for n in nodes[1:]]
            weights = conn.execute(
                "SELECT ruvector_attention_critical_path(%s::real[], %s::real[], %s::boolean[], 1.0)",
                (query, feats, "{" + ",".join(crit) + "}")).fetchone()[0]
            print("\ncritical-path attention of the root over its ancestors (computed in the server):")
            print(_table([(n["op"], f"{w:.3f}") for n, w in zip(nodes[1:], weights)], ["ancestor", "weight"]))
    print(f"\nThe server is still running: psql '{server.dsn}'  (stop: ruvector-dag server stop)")
    return 0
