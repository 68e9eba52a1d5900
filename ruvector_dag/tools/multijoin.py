"""A multi-join workload whose row estimates are wrong at several joins (issue 20's benchmark).

Written before the row-count corrections it measures, as the issue asks:
its data and queries are fixed here, and the mechanism is not tuned to them.

A small sales schema, scale 1 about 1.5 M rows, with the two kinds of error
that whole-query switches cannot fix one at a time:

* **Correlated columns.**  A customer's ``segment``, ``tier``, ``zone`` and
  ``band`` follow from its ``region`` (``region % 10``, ``% 5``, ``% 25``,
  ``% 2``); a product's ``category`` follows from its ``brand``.  The planner
  multiplies the selectivities of ``region = r AND segment = s AND tier = t
  AND zone = z AND band = b`` and expects one customer instead of 2 000;
  ``brand = b AND category = c`` 20 times too few products.
* **Skewed keys.**  Half of the orders belong to 100 "hot" customers (two
  per region); half of the order lines to 200 "hot" products (one per
  brand).  Joining a region's customers to their orders multiplies the
  first error by the skew.

Each query joins three to five tables.  Where the planner's error sits
differs per query, so the join that needs a hash join in one query is best
as an index nested loop in another.  In ``region_tickets`` both occur in one
query: the customers (one expected, 2 000 found) meet the support tickets,
which have no index on the customer (a hash join is wanted: a nested loop
scans every ticket once per customer), and the few hundred tickets found
then look up their orders by primary key (an index nested loop is wanted: a
hash join reads every order).  No whole-query switch gets both; there the
planner's own plan happens to be right, and the switches break one join or
the other.

Every template takes parameters (:func:`params`): a learning set and a
disjoint measuring set of values, drawn from the same distributions, so that
what is learned must carry over to constants never seen.  ``unseen`` is a
template used only when measuring: it shares its customer-order join with
``region_sales``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

TABLES = ("mj_region", "mj_customer", "mj_product", "mj_order", "mj_line", "mj_store", "mj_ticket")

#: Tables the benchmark enrolls (every template reads at least one).
ENROLLED = ("mj_customer", "mj_order", "mj_line", "mj_product", "mj_ticket")

REGIONS = 50
HOT_CUSTOMERS = 100  # ids 1..100: two per region
BRANDS = 200
CATEGORIES = 20

#: The templates, psycopg placeholders; :func:`params` gives their values.
TEMPLATES: dict[str, str] = {
    # Correlated customers x skewed orders: far more orders than planned (hash join wanted), then a
    # selective product filter on lines, correctly estimated per line (index nested loop wanted).
    "region_sales": (
        "SELECT count(*), sum(l.qty) FROM mj_customer c "
        "JOIN mj_order o ON o.customer_id = c.id "
        "JOIN mj_line l ON l.order_id = o.id "
        "JOIN mj_product p ON p.id = l.product_id "
        "WHERE c.region = %(region)s AND c.segment = %(segment)s AND c.tier = %(tier)s AND c.zone = %(zone)s "
        "AND c.band = %(band)s AND p.price < %(price)s"),
    # Correlated products x skewed lines: far more lines than planned; their orders then a small,
    # well-estimated store dimension.
    "brand_lines": (
        "SELECT count(*), sum(l.qty) FROM mj_product p "
        "JOIN mj_line l ON l.product_id = p.id "
        "JOIN mj_order o ON o.id = l.order_id "
        "JOIN mj_store s ON s.id = o.store_id "
        "WHERE p.brand = %(brand)s AND p.category = %(category)s AND s.city = %(city)s"),
    # Both errors in one query: correlated customers and correlated products, joined through the
    # skewed middle; five tables.
    "region_brand": (
        "SELECT count(*), sum(l.qty) FROM mj_region r "
        "JOIN mj_customer c ON c.region = r.id "
        "JOIN mj_order o ON o.customer_id = c.id "
        "JOIN mj_line l ON l.order_id = o.id "
        "JOIN mj_product p ON p.id = l.product_id "
        "WHERE r.name = %(region_name)s AND c.segment = %(segment)s AND c.tier = %(tier)s AND c.zone = %(zone)s "
        "AND c.band = %(band)s AND p.brand = %(brand)s AND p.category = %(category)s"),
    # Correlated customers x unindexed tickets (hash join wanted), then a few hundred tickets' orders
    # by primary key (index nested loop wanted): no whole-query switch gets both.
    "region_tickets": (
        "SELECT count(*), max(o.day) FROM mj_customer c "
        "JOIN mj_ticket t ON t.customer_id = c.id "
        "JOIN mj_order o ON o.id = t.order_id "
        "WHERE c.region = %(region)s AND c.segment = %(segment)s AND c.tier = %(tier)s AND c.zone = %(zone)s "
        "AND c.band = %(band)s AND t.severity = %(severity)s"),
    # A well-estimated query: point lookups. Must not get slower.
    "order_lookup": (
        "SELECT o.id, o.day, count(l.*) FROM mj_order o JOIN mj_line l ON l.order_id = o.id "
        "WHERE o.id = %(order_id)s GROUP BY o.id, o.day"),
}

#: Measured only: shares region_sales' customer-order join (a correction learned there should serve it).
UNSEEN: dict[str, str] = {
    "unseen": (
        "SELECT count(*), max(o.day) FROM mj_customer c "
        "JOIN mj_order o ON o.customer_id = c.id "
        "JOIN mj_store s ON s.id = o.store_id "
        "WHERE c.region = %(region)s AND c.segment = %(segment)s AND c.tier = %(tier)s AND c.zone = %(zone)s "
        "AND c.band = %(band)s AND s.country = %(country)s"),
}


def setup_sql(scale: int = 1) -> str:
    """DDL and data; ``scale`` multiplies orders and lines (300 000 orders, 600 000 lines per unit)."""
    if not isinstance(scale, int) or not 1 <= scale <= 50:
        raise ValueError(f"scale must be an integer in [1, 50], got {scale!r}")
    orders, lines, tickets = 300_000 * scale, 600_000 * scale, 30_000 * scale
    return f"""
        DROP TABLE IF EXISTS {", ".join(TABLES)};
        CREATE TABLE mj_region (id int PRIMARY KEY, name text NOT NULL);
        INSERT INTO mj_region SELECT g, 'region ' || g FROM generate_series(0, {REGIONS - 1}) g;
        -- segment, tier, zone and band follow from region: the planner multiplies their selectivities.
        CREATE TABLE mj_customer (id int PRIMARY KEY, region int NOT NULL, segment int NOT NULL,
                                  tier int NOT NULL, zone int NOT NULL, band int NOT NULL, name text NOT NULL);
        INSERT INTO mj_customer SELECT g, g % {REGIONS}, (g % {REGIONS}) % 10, (g % {REGIONS}) % 5,
                                       (g % {REGIONS}) % 25, (g % {REGIONS}) % 2, 'c' || g
          FROM generate_series(1, 100000) g;
        -- category follows from brand; prices uniform.
        CREATE TABLE mj_product (id int PRIMARY KEY, brand int NOT NULL, category int NOT NULL,
                                 price int NOT NULL);
        INSERT INTO mj_product SELECT g, g % {BRANDS}, (g % {BRANDS}) % {CATEGORIES}, (g::bigint * 7919 % 1000)::int
          FROM generate_series(1, 40000) g;
        CREATE TABLE mj_store (id int PRIMARY KEY, city int NOT NULL, country int NOT NULL);
        INSERT INTO mj_store SELECT g, g % 100, (g % 100) % 10 FROM generate_series(1, 1000) g;
        -- Half of the orders go to the {HOT_CUSTOMERS} hot customers, half uniformly.
        CREATE TABLE mj_order (id int PRIMARY KEY, customer_id int NOT NULL, store_id int NOT NULL,
                               day int NOT NULL);
        INSERT INTO mj_order
          SELECT g,
                 CASE WHEN g % 2 = 0 THEN 1 + (g / 2) % {HOT_CUSTOMERS} ELSE 1 + (g::bigint * 7919 % 100000)::int END,
                 1 + (g::bigint * 104729 % 1000)::int, g % 365
          FROM generate_series(1, {orders}) g;
        -- Half of the lines are of the {BRANDS} hot products (ids 1..{BRANDS}: one per brand).
        CREATE TABLE mj_line (order_id int NOT NULL, product_id int NOT NULL, qty int NOT NULL);
        INSERT INTO mj_line
          SELECT 1 + (g::bigint * 31 % {orders})::int,
                 CASE WHEN g % 2 = 0 THEN 1 + (g / 2) % {BRANDS} ELSE 1 + (g::bigint * 7919 % 40000)::int END,
                 1 + g % 9
          FROM generate_series(1, {lines}) g;
        -- Support tickets: no index on the customer (a nested loop over them scans them all each time).
        CREATE TABLE mj_ticket (id int PRIMARY KEY, customer_id int NOT NULL, order_id int NOT NULL,
                                severity int NOT NULL);
        INSERT INTO mj_ticket SELECT g, 1 + (g::bigint * 7919 % 100000)::int, 1 + (g::bigint * 31 % {orders})::int,
                                     g % 3
          FROM generate_series(1, {tickets}) g;
        CREATE INDEX ON mj_customer (region);
        CREATE INDEX ON mj_order (customer_id);
        CREATE INDEX ON mj_order (store_id);
        CREATE INDEX ON mj_line (order_id);
        CREATE INDEX ON mj_line (product_id);
        CREATE INDEX ON mj_product (brand);
        ANALYZE {", ".join(TABLES)};
    """


def create(execute: Callable[[str], Any], scale: int = 1) -> None:
    """Create the workload's tables through ``execute(sql)``."""
    execute(setup_sql(scale))


def params(template: str, phase: str, n: int, seed: int = 0) -> list[dict[str, int | str]]:
    """``n`` parameter sets of a template for ``phase`` ("learning" or "measuring").

    The two phases draw from disjoint values (even regions and brands to learn,
    odd ones to measure; other values alike), always consistent with the
    correlations (a region's own segment and tier), so that each phase hits
    the same estimation errors with constants the other never used.
    """
    if phase not in ("learning", "measuring"):
        raise ValueError(f"phase must be 'learning' or 'measuring', got {phase!r}")
    if template not in TEMPLATES and template not in UNSEEN:
        raise ValueError(f"unknown template {template!r}")
    rng = random.Random(f"{template}/{phase}/{seed}")
    parity = 0 if phase == "learning" else 1
    out: list[dict[str, int | str]] = []
    for _ in range(n):
        region = rng.randrange(parity, REGIONS, 2)
        brand = rng.randrange(parity, BRANDS, 2)
        out.append({
            "region": region, "segment": region % 10, "tier": region % 5, "zone": region % 25, "band": region % 2,
            "region_name": f"region {region}", "severity": rng.randrange(3),
            "brand": brand, "category": brand % CATEGORIES, "price": 100 + 50 * rng.randrange(2),
            "city": rng.randrange(parity, 100, 2), "country": rng.randrange(parity, 10, 2),
            "order_id": 1 + rng.randrange(300_000),
        })
    return out
