"""Run the SQL regression files (pgext/sql, pgext/expected) with pg_regress.

This is the same check `make installcheck` runs against an installed
server; here it runs against the session's embedded server of each major.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from ruvector_dag import buildext

PGEXT = buildext.PGEXT_DIR


def regress_tests() -> list[str]:
    makefile = (PGEXT / "Makefile").read_text()
    match = re.search(r"^REGRESS\s*=\s*(.+)$", makefile, re.M)
    assert match, "REGRESS missing from pgext/Makefile"
    return match.group(1).split()


def test_pg_regress(server: Any, tmp_path: Path) -> None:
    pg_config = server.bin_dir / "pg_config"
    pgxs = Path(subprocess.run([str(pg_config), "--pgxs"], capture_output=True, text=True, check=True).stdout.strip())
    pg_regress = pgxs.parent.parent / "test" / "regress" / "pg_regress"
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
