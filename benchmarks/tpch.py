"""TPC-H on PostgreSQL: generate the data, load it, and the 22 queries.

    python benchmarks/tpch.py --scale 0.1      # self-check on a vanilla embedded server

Other benchmarks import this module to get a realistic analytic workload (joins
of up to eight tables, correlated subqueries, big aggregates) instead of
pgbench's single-table point queries::

    import tpch

    data = tpch.generate(1, tpch.default_data_dir(1))
    tpch.load(conn, data)
    for name, sql in tpch.QUERIES.items():
        conn.execute(sql).fetchall()

The data come from ``tpchgen-cli`` (``pip install tpchgen-cli``), a fast Rust
port of dbgen whose output matches dbgen's, so the row counts and answers of
the specification's validation queries hold.  It is written as CSV with a
header line, which COPY reads as it is: the ``.tbl`` format ends every line
with a '|' that COPY would take for an extra, empty column.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tqdm import tqdm

DATA_ROOT = Path(__file__).resolve().parent / "data"

# Tables in the order they are created and loaded (small ones first, so a
# broken setup fails in a second rather than after lineitem).
TABLES = ("region", "nation", "part", "supplier", "partsupp", "customer", "orders", "lineitem")

# About 1.07 GB of CSV per unit of scale factor (measured with tpchgen-cli 4.0);
# only used to size the progress bar of generate().
_CSV_BYTES_PER_SF = 1.07e9
_MARKER = "tpchgen.json"
_COPY_BLOCK = 1 << 20

# Standard TPC-H DDL (specification, clause 1.4).  Keys are integer: enough up
# to scale factor ~500, where o_orderkey passes 2**31 - far beyond this machine.
DDL: dict[str, str] = {
    "region": """
        r_regionkey   integer NOT NULL,
        r_name        char(25) NOT NULL,
        r_comment     varchar(152)""",
    "nation": """
        n_nationkey   integer NOT NULL,
        n_name        char(25) NOT NULL,
        n_regionkey   integer NOT NULL,
        n_comment     varchar(152)""",
    "part": """
        p_partkey     integer NOT NULL,
        p_name        varchar(55) NOT NULL,
        p_mfgr        char(25) NOT NULL,
        p_brand       char(10) NOT NULL,
        p_type        varchar(25) NOT NULL,
        p_size        integer NOT NULL,
        p_container   char(10) NOT NULL,
        p_retailprice numeric(15,2) NOT NULL,
        p_comment     varchar(23) NOT NULL""",
    "supplier": """
        s_suppkey     integer NOT NULL,
        s_name        char(25) NOT NULL,
        s_address     varchar(40) NOT NULL,
        s_nationkey   integer NOT NULL,
        s_phone       char(15) NOT NULL,
        s_acctbal     numeric(15,2) NOT NULL,
        s_comment     varchar(101) NOT NULL""",
    "partsupp": """
        ps_partkey    integer NOT NULL,
        ps_suppkey    integer NOT NULL,
        ps_availqty   integer NOT NULL,
        ps_supplycost numeric(15,2) NOT NULL,
        ps_comment    varchar(199) NOT NULL""",
    "customer": """
        c_custkey     integer NOT NULL,
        c_name        varchar(25) NOT NULL,
        c_address     varchar(40) NOT NULL,
        c_nationkey   integer NOT NULL,
        c_phone       char(15) NOT NULL,
        c_acctbal     numeric(15,2) NOT NULL,
        c_mktsegment  char(10) NOT NULL,
        c_comment     varchar(117) NOT NULL""",
    "orders": """
        o_orderkey      integer NOT NULL,
        o_custkey       integer NOT NULL,
        o_orderstatus   char(1) NOT NULL,
        o_totalprice    numeric(15,2) NOT NULL,
        o_orderdate     date NOT NULL,
        o_orderpriority char(15) NOT NULL,
        o_clerk         char(15) NOT NULL,
        o_shippriority  integer NOT NULL,
        o_comment       varchar(79) NOT NULL""",
    "lineitem": """
        l_orderkey      integer NOT NULL,
        l_partkey       integer NOT NULL,
        l_suppkey       integer NOT NULL,
        l_linenumber    integer NOT NULL,
        l_quantity      numeric(15,2) NOT NULL,
        l_extendedprice numeric(15,2) NOT NULL,
        l_discount      numeric(15,2) NOT NULL,
        l_tax           numeric(15,2) NOT NULL,
        l_returnflag    char(1) NOT NULL,
        l_linestatus    char(1) NOT NULL,
        l_shipdate      date NOT NULL,
        l_commitdate    date NOT NULL,
        l_receiptdate   date NOT NULL,
        l_shipinstruct  char(25) NOT NULL,
        l_shipmode      char(10) NOT NULL,
        l_comment       varchar(44) NOT NULL""",
}

# Built after COPY: filling tables without indexes and sorting once is much
# faster than maintaining the indexes row by row.  The primary key of lineitem
# leads with l_orderkey, so it serves as the l_orderkey index too.
INDEXES: tuple[str, ...] = (
    "ALTER TABLE region ADD PRIMARY KEY (r_regionkey)",
    "ALTER TABLE nation ADD PRIMARY KEY (n_nationkey)",
    "ALTER TABLE part ADD PRIMARY KEY (p_partkey)",
    "ALTER TABLE supplier ADD PRIMARY KEY (s_suppkey)",
    "ALTER TABLE partsupp ADD PRIMARY KEY (ps_partkey, ps_suppkey)",
    "ALTER TABLE customer ADD PRIMARY KEY (c_custkey)",
    "ALTER TABLE orders ADD PRIMARY KEY (o_orderkey)",
    "ALTER TABLE lineitem ADD PRIMARY KEY (l_orderkey, l_linenumber)",
    "CREATE INDEX ON lineitem (l_partkey)",
    "CREATE INDEX ON lineitem (l_suppkey)",
    "CREATE INDEX ON orders (o_custkey)",
    "CREATE INDEX ON partsupp (ps_suppkey)",
    "CREATE INDEX ON customer (c_nationkey)",
    "CREATE INDEX ON supplier (s_nationkey)",
    "CREATE INDEX ON nation (n_regionkey)",
)


def default_data_dir(scale: float) -> Path:
    """``benchmarks/data/tpch-sf<scale>``: one cache directory per scale factor."""
    return DATA_ROOT / f"tpch-sf{scale:g}"


def _is_complete(out_dir: Path, scale: float) -> bool:
    marker = out_dir / _MARKER
    if not marker.exists() or not all((out_dir / f"{t}.csv").exists() for t in TABLES):
        return False
    return bool(json.loads(marker.read_text()).get("scale") == scale)


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def generate(scale: float, out_dir: Path) -> Path:
    """Write the eight tables at ``scale`` as ``<out_dir>/<table>.csv``; return ``out_dir``.

    Generation takes about half a minute per scale factor, so the result is
    cached: a directory that already holds a complete set for this scale is
    returned untouched.  The files are made in a sibling temporary directory
    and moved in only once tpchgen-cli succeeded, so an interrupted run never
    leaves a set that looks complete.  A marker file records the scale, since
    file names alone do not tell SF 0.1 from SF 1.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    out_dir = Path(out_dir)
    if _is_complete(out_dir, scale):
        return out_dir
    exe = shutil.which("tpchgen-cli")
    if exe is None:
        raise SystemExit("tpchgen-cli not found: pip install tpchgen-cli")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}-", dir=out_dir.parent) as tmp:
        tmp_dir = Path(tmp)
        cmd = [exe, "csv", "--scale-factor", f"{scale:g}", "--output-dir", str(tmp_dir), "--quiet"]
        # tpchgen-cli draws its bars only on a terminal; poll the bytes written
        # instead, so that logs of non-interactive runs show progress as well.
        expected = max(int(scale * _CSV_BYTES_PER_SF), 1)
        with (
            tqdm(total=expected, unit="B", unit_scale=True, desc=f"tpchgen SF{scale:g}") as bar,
            tempfile.TemporaryFile("w+") as errors,  # a file, not a pipe: nobody reads while it runs
            subprocess.Popen(cmd, stdout=errors, stderr=errors, text=True) as proc,
        ):
            while proc.poll() is None:
                time.sleep(0.5)
                bar.update(min(_dir_bytes(tmp_dir), expected) - bar.n)
            if proc.returncode != 0:
                errors.seek(0)
                raise RuntimeError(f"tpchgen-cli failed ({proc.returncode}):\n{errors.read()}")
            bar.total = bar.n = _dir_bytes(tmp_dir)
            bar.refresh()
        version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
        (tmp_dir / _MARKER).write_text(json.dumps({"scale": scale, "format": "csv", "generator": version}) + "\n")
        out_dir.mkdir(exist_ok=True)
        for name in [f"{t}.csv" for t in TABLES] + [_MARKER]:  # the marker last: it vouches for the rest
            (tmp_dir / name).replace(out_dir / name)
    return out_dir


def _copy_table(conn: Any, table: str, path: Path, progress: bool) -> None:
    """Stream one CSV file through COPY FROM STDIN, which needs no server access to the file."""
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY {table} FROM STDIN (FORMAT csv, HEADER true)") as copy,
        open(path, "rb") as f,
        tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=f"COPY {table}", disable=not progress) as bar,
    ):
        while block := f.read(_COPY_BLOCK):
            copy.write(block)
            bar.update(len(block))


def load(conn: Any, data_dir: Path, *, progress: bool = True) -> None:
    """(Re)create the eight tables in ``conn``'s database from ``data_dir`` (made by :func:`generate`).

    ``conn`` is a psycopg 3 connection in autocommit mode: VACUUM cannot run
    inside a transaction.  Existing TPC-H tables are dropped first, so a load
    always starts from a clean, fully analysed state and query plans do not
    depend on what ran before.
    """
    if not conn.autocommit:
        raise ValueError("load() needs an autocommit connection (VACUUM cannot run in a transaction)")
    data_dir = Path(data_dir)
    missing = [t for t in TABLES if not (data_dir / f"{t}.csv").exists()]
    if missing:
        raise FileNotFoundError(f"{data_dir} lacks {', '.join(f'{t}.csv' for t in missing)}: run generate() first")
    conn.execute("DROP TABLE IF EXISTS " + ", ".join(TABLES) + " CASCADE")
    for table in TABLES:
        conn.execute(f"CREATE TABLE {table} ({DDL[table]}\n)")
    for table in TABLES:
        _copy_table(conn, table, data_dir / f"{table}.csv", progress)
    # Index builds sort in maintenance_work_mem; the 64MB default spills lineitem's to disk.
    conn.execute("SET maintenance_work_mem = '512MB'")
    for stmt in tqdm(INDEXES, desc="indexes", disable=not progress):
        conn.execute(stmt)
    conn.execute("RESET maintenance_work_mem")
    if progress:
        print("VACUUM ANALYZE ...", file=sys.stderr, flush=True)
    conn.execute("VACUUM ANALYZE " + ", ".join(TABLES))


# The 22 queries with the specification's validation parameters (clause 2.4,
# "Validation" substitution values).  Q15's view is a CTE so that every query
# is one read-only statement.  Q11's FRACTION is the SF 1 value 0.0001; the
# specification scales it as 0.0001 / SF, so at other scales Q11 returns more
# (SF < 1) or fewer rows than the reference answer set would.
QUERIES: dict[str, str] = {
    "q1": """
select
    l_returnflag,
    l_linestatus,
    sum(l_quantity) as sum_qty,
    sum(l_extendedprice) as sum_base_price,
    sum(l_extendedprice * (1 - l_discount)) as sum_disc_price,
    sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) as sum_charge,
    avg(l_quantity) as avg_qty,
    avg(l_extendedprice) as avg_price,
    avg(l_discount) as avg_disc,
    count(*) as count_order
from lineitem
where l_shipdate <= date '1998-12-01' - interval '90' day
group by l_returnflag, l_linestatus
order by l_returnflag, l_linestatus""",
    "q2": """
select s_acctbal, s_name, n_name, p_partkey, p_mfgr, s_address, s_phone, s_comment
from part, supplier, partsupp, nation, region
where p_partkey = ps_partkey
    and s_suppkey = ps_suppkey
    and p_size = 15
    and p_type like '%BRASS'
    and s_nationkey = n_nationkey
    and n_regionkey = r_regionkey
    and r_name = 'EUROPE'
    and ps_supplycost = (
        select min(ps_supplycost)
        from partsupp, supplier, nation, region
        where p_partkey = ps_partkey
            and s_suppkey = ps_suppkey
            and s_nationkey = n_nationkey
            and n_regionkey = r_regionkey
            and r_name = 'EUROPE'
    )
order by s_acctbal desc, n_name, s_name, p_partkey
limit 100""",
    "q3": """
select l_orderkey, sum(l_extendedprice * (1 - l_discount)) as revenue, o_orderdate, o_shippriority
from customer, orders, lineitem
where c_mktsegment = 'BUILDING'
    and c_custkey = o_custkey
    and l_orderkey = o_orderkey
    and o_orderdate < date '1995-03-15'
    and l_shipdate > date '1995-03-15'
group by l_orderkey, o_orderdate, o_shippriority
order by revenue desc, o_orderdate
limit 10""",
    "q4": """
select o_orderpriority, count(*) as order_count
from orders
where o_orderdate >= date '1993-07-01'
    and o_orderdate < date '1993-07-01' + interval '3' month
    and exists (select * from lineitem where l_orderkey = o_orderkey and l_commitdate < l_receiptdate)
group by o_orderpriority
order by o_orderpriority""",
    "q5": """
select n_name, sum(l_extendedprice * (1 - l_discount)) as revenue
from customer, orders, lineitem, supplier, nation, region
where c_custkey = o_custkey
    and l_orderkey = o_orderkey
    and l_suppkey = s_suppkey
    and c_nationkey = s_nationkey
    and s_nationkey = n_nationkey
    and n_regionkey = r_regionkey
    and r_name = 'ASIA'
    and o_orderdate >= date '1994-01-01'
    and o_orderdate < date '1994-01-01' + interval '1' year
group by n_name
order by revenue desc""",
    "q6": """
select sum(l_extendedprice * l_discount) as revenue
from lineitem
where l_shipdate >= date '1994-01-01'
    and l_shipdate < date '1994-01-01' + interval '1' year
    and l_discount between 0.06 - 0.01 and 0.06 + 0.01
    and l_quantity < 24""",
    "q7": """
select supp_nation, cust_nation, l_year, sum(volume) as revenue
from (
    select
        n1.n_name as supp_nation,
        n2.n_name as cust_nation,
        extract(year from l_shipdate) as l_year,
        l_extendedprice * (1 - l_discount) as volume
    from supplier, lineitem, orders, customer, nation n1, nation n2
    where s_suppkey = l_suppkey
        and o_orderkey = l_orderkey
        and c_custkey = o_custkey
        and s_nationkey = n1.n_nationkey
        and c_nationkey = n2.n_nationkey
        and (
            (n1.n_name = 'FRANCE' and n2.n_name = 'GERMANY')
            or (n1.n_name = 'GERMANY' and n2.n_name = 'FRANCE')
        )
        and l_shipdate between date '1995-01-01' and date '1996-12-31'
) as shipping
group by supp_nation, cust_nation, l_year
order by supp_nation, cust_nation, l_year""",
    "q8": """
select o_year, sum(case when nation = 'BRAZIL' then volume else 0 end) / sum(volume) as mkt_share
from (
    select
        extract(year from o_orderdate) as o_year,
        l_extendedprice * (1 - l_discount) as volume,
        n2.n_name as nation
    from part, supplier, lineitem, orders, customer, nation n1, nation n2, region
    where p_partkey = l_partkey
        and s_suppkey = l_suppkey
        and l_orderkey = o_orderkey
        and o_custkey = c_custkey
        and c_nationkey = n1.n_nationkey
        and n1.n_regionkey = r_regionkey
        and r_name = 'AMERICA'
        and s_nationkey = n2.n_nationkey
        and o_orderdate between date '1995-01-01' and date '1996-12-31'
        and p_type = 'ECONOMY ANODIZED STEEL'
) as all_nations
group by o_year
order by o_year""",
    "q9": """
select nation, o_year, sum(amount) as sum_profit
from (
    select
        n_name as nation,
        extract(year from o_orderdate) as o_year,
        l_extendedprice * (1 - l_discount) - ps_supplycost * l_quantity as amount
    from part, supplier, lineitem, partsupp, orders, nation
    where s_suppkey = l_suppkey
        and ps_suppkey = l_suppkey
        and ps_partkey = l_partkey
        and p_partkey = l_partkey
        and o_orderkey = l_orderkey
        and s_nationkey = n_nationkey
        and p_name like '%green%'
) as profit
group by nation, o_year
order by nation, o_year desc""",
    "q10": """
select
    c_custkey, c_name, sum(l_extendedprice * (1 - l_discount)) as revenue,
    c_acctbal, n_name, c_address, c_phone, c_comment
from customer, orders, lineitem, nation
where c_custkey = o_custkey
    and l_orderkey = o_orderkey
    and o_orderdate >= date '1993-10-01'
    and o_orderdate < date '1993-10-01' + interval '3' month
    and l_returnflag = 'R'
    and c_nationkey = n_nationkey
group by c_custkey, c_name, c_acctbal, c_phone, n_name, c_address, c_comment
order by revenue desc
limit 20""",
    "q11": """
select ps_partkey, sum(ps_supplycost * ps_availqty) as value
from partsupp, supplier, nation
where ps_suppkey = s_suppkey
    and s_nationkey = n_nationkey
    and n_name = 'GERMANY'
group by ps_partkey
having sum(ps_supplycost * ps_availqty) > (
    select sum(ps_supplycost * ps_availqty) * 0.0001
    from partsupp, supplier, nation
    where ps_suppkey = s_suppkey
        and s_nationkey = n_nationkey
        and n_name = 'GERMANY'
)
order by value desc""",
    "q12": """
select
    l_shipmode,
    sum(case when o_orderpriority = '1-URGENT' or o_orderpriority = '2-HIGH' then 1 else 0 end) as high_line_count,
    sum(case when o_orderpriority <> '1-URGENT' and o_orderpriority <> '2-HIGH' then 1 else 0 end) as low_line_count
from orders, lineitem
where o_orderkey = l_orderkey
    and l_shipmode in ('MAIL', 'SHIP')
    and l_commitdate < l_receiptdate
    and l_shipdate < l_commitdate
    and l_receiptdate >= date '1994-01-01'
    and l_receiptdate < date '1994-01-01' + interval '1' year
group by l_shipmode
order by l_shipmode""",
    "q13": """
select c_count, count(*) as custdist
from (
    select c_custkey, count(o_orderkey)
    from customer left outer join orders on c_custkey = o_custkey and o_comment not like '%special%requests%'
    group by c_custkey
) as c_orders (c_custkey, c_count)
group by c_count
order by custdist desc, c_count desc""",
    "q14": """
select
    100.00 * sum(case when p_type like 'PROMO%' then l_extendedprice * (1 - l_discount) else 0 end)
        / sum(l_extendedprice * (1 - l_discount)) as promo_revenue
from lineitem, part
where l_partkey = p_partkey
    and l_shipdate >= date '1995-09-01'
    and l_shipdate < date '1995-09-01' + interval '1' month""",
    "q15": """
with revenue0 (supplier_no, total_revenue) as (
    select l_suppkey, sum(l_extendedprice * (1 - l_discount))
    from lineitem
    where l_shipdate >= date '1996-01-01'
        and l_shipdate < date '1996-01-01' + interval '3' month
    group by l_suppkey
)
select s_suppkey, s_name, s_address, s_phone, total_revenue
from supplier, revenue0
where s_suppkey = supplier_no
    and total_revenue = (select max(total_revenue) from revenue0)
order by s_suppkey""",
    "q16": """
select p_brand, p_type, p_size, count(distinct ps_suppkey) as supplier_cnt
from partsupp, part
where p_partkey = ps_partkey
    and p_brand <> 'Brand#45'
    and p_type not like 'MEDIUM POLISHED%'
    and p_size in (49, 14, 23, 45, 19, 3, 36, 9)
    and ps_suppkey not in (select s_suppkey from supplier where s_comment like '%Customer%Complaints%')
group by p_brand, p_type, p_size
order by supplier_cnt desc, p_brand, p_type, p_size""",
    "q17": """
select sum(l_extendedprice) / 7.0 as avg_yearly
from lineitem, part
where p_partkey = l_partkey
    and p_brand = 'Brand#23'
    and p_container = 'MED BOX'
    and l_quantity < (select 0.2 * avg(l_quantity) from lineitem where l_partkey = p_partkey)""",
    "q18": """
select c_name, c_custkey, o_orderkey, o_orderdate, o_totalprice, sum(l_quantity)
from customer, orders, lineitem
where o_orderkey in (select l_orderkey from lineitem group by l_orderkey having sum(l_quantity) > 300)
    and c_custkey = o_custkey
    and o_orderkey = l_orderkey
group by c_name, c_custkey, o_orderkey, o_orderdate, o_totalprice
order by o_totalprice desc, o_orderdate
limit 100""",
    "q19": """
select sum(l_extendedprice * (1 - l_discount)) as revenue
from lineitem, part
where (
        p_partkey = l_partkey
        and p_brand = 'Brand#12'
        and p_container in ('SM CASE', 'SM BOX', 'SM PACK', 'SM PKG')
        and l_quantity >= 1 and l_quantity <= 1 + 10
        and p_size between 1 and 5
        and l_shipmode in ('AIR', 'AIR REG')
        and l_shipinstruct = 'DELIVER IN PERSON'
    ) or (
        p_partkey = l_partkey
        and p_brand = 'Brand#23'
        and p_container in ('MED BAG', 'MED BOX', 'MED PKG', 'MED PACK')
        and l_quantity >= 10 and l_quantity <= 10 + 10
        and p_size between 1 and 10
        and l_shipmode in ('AIR', 'AIR REG')
        and l_shipinstruct = 'DELIVER IN PERSON'
    ) or (
        p_partkey = l_partkey
        and p_brand = 'Brand#34'
        and p_container in ('LG CASE', 'LG BOX', 'LG PACK', 'LG PKG')
        and l_quantity >= 20 and l_quantity <= 20 + 10
        and p_size between 1 and 15
        and l_shipmode in ('AIR', 'AIR REG')
        and l_shipinstruct = 'DELIVER IN PERSON'
    )""",
    "q20": """
select s_name, s_address
from supplier, nation
where s_suppkey in (
        select ps_suppkey
        from partsupp
        where ps_partkey in (select p_partkey from part where p_name like 'forest%')
            and ps_availqty > (
                select 0.5 * sum(l_quantity)
                from lineitem
                where l_partkey = ps_partkey
                    and l_suppkey = ps_suppkey
                    and l_shipdate >= date '1994-01-01'
                    and l_shipdate < date '1994-01-01' + interval '1' year
            )
    )
    and s_nationkey = n_nationkey
    and n_name = 'CANADA'
order by s_name""",
    "q21": """
select s_name, count(*) as numwait
from supplier, lineitem l1, orders, nation
where s_suppkey = l1.l_suppkey
    and o_orderkey = l1.l_orderkey
    and o_orderstatus = 'F'
    and l1.l_receiptdate > l1.l_commitdate
    and exists (
        select * from lineitem l2
        where l2.l_orderkey = l1.l_orderkey and l2.l_suppkey <> l1.l_suppkey
    )
    and not exists (
        select * from lineitem l3
        where l3.l_orderkey = l1.l_orderkey
            and l3.l_suppkey <> l1.l_suppkey
            and l3.l_receiptdate > l3.l_commitdate
    )
    and s_nationkey = n_nationkey
    and n_name = 'SAUDI ARABIA'
group by s_name
order by numwait desc, s_name
limit 100""",
    "q22": """
select cntrycode, count(*) as numcust, sum(c_acctbal) as totacctbal
from (
    select substring(c_phone from 1 for 2) as cntrycode, c_acctbal
    from customer
    where substring(c_phone from 1 for 2) in ('13', '31', '23', '29', '30', '18', '17')
        and c_acctbal > (
            select avg(c_acctbal)
            from customer
            where c_acctbal > 0.00
                and substring(c_phone from 1 for 2) in ('13', '31', '23', '29', '30', '18', '17')
        )
        and not exists (select * from orders where o_custkey = c_custkey)
) as custsale
group by cntrycode
order by cntrycode""",
}


def run_queries(conn: Any, names: Iterable[str] | None = None) -> dict[str, tuple[int, float]]:
    """Run queries once each (all 22 by default); return ``{name: (rows, seconds)}``.

    The time includes fetching the result, as a client would see it.
    """
    results: dict[str, tuple[int, float]] = {}
    for name in names if names is not None else QUERIES:
        start = time.perf_counter()
        rows = conn.execute(QUERIES[name]).fetchall()
        results[name] = (len(rows), time.perf_counter() - start)
    return results


def main(argv: list[str] | None = None) -> int:
    """Self-check: generate, load into a vanilla embedded server, run the 22 queries once."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1, help="TPC-H scale factor (default 0.1)")
    parser.add_argument("--data-dir", type=Path, help="CSV cache (default benchmarks/data/tpch-sf<scale>)")
    parser.add_argument("--pg-version", type=int, default=16)
    parser.add_argument("--statement-timeout", type=float, default=0, help="seconds per query, 0 for none")
    args = parser.parse_args(argv)

    from ruvector_dag.tools.server import Server

    timings: dict[str, float] = {}
    start = time.perf_counter()
    data_dir = generate(args.scale, args.data_dir or default_data_dir(args.scale))
    timings["generate"] = time.perf_counter() - start
    failed = []
    with (
        tempfile.TemporaryDirectory(prefix="tpch-pgdata-") as tmp,
        Server(Path(tmp) / "pgdata", pg_version=args.pg_version, settings={"shared_preload_libraries": ""},
               extension=False, build=False) as srv,
        srv.connect(autocommit=True) as conn,
    ):
        start = time.perf_counter()
        load(conn, data_dir)
        timings["load"] = time.perf_counter() - start
        conn.execute(f"SET statement_timeout = {int(args.statement_timeout * 1000)}")
        total = 0.0
        for name in QUERIES:
            try:
                rows, seconds = run_queries(conn, [name])[name]
            except Exception as exc:  # report every query, not just the first failure
                failed.append(name)
                print(f"{name:>4}  FAILED  {type(exc).__name__}: {str(exc).strip().splitlines()[0]}", flush=True)
                continue
            total += seconds
            print(f"{name:>4}  {rows:7d} rows  {seconds:8.3f} s", flush=True)
        timings["queries"] = total
    print(f"SF{args.scale:g}: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
