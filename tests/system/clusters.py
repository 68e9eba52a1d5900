"""Clusters of Debian's PostgreSQL 15 for the system tests: copies, standbys, fresh ones.

Every server runs as the ``postgres`` OS user, as Debian runs it, in a data
directory of its own under a directory the test owns, on 127.0.0.1 and a
port of its own.  Nothing here is global: a :class:`Cluster` is its data
directory and port.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import psycopg

PGBIN = Path(os.environ.get("RUVECTOR_SYSTEM_PGBIN", "/usr/lib/postgresql/15/bin"))
OS_USER = "postgres"


def as_postgres(*cmd: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command as the server's OS user (the tests run as root)."""
    kwargs: dict[str, Any] = {"user": OS_USER, "group": OS_USER} if os.geteuid() == 0 else {}
    res = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, cwd="/", **kwargs)
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


def workdir(path: Path) -> Path:
    """A directory the server's user owns (and can reach: its parents are made traversable)."""
    path.mkdir(parents=True, exist_ok=True)
    for parent in [path, *path.parents]:
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o005 if parent != path else 0o755)
    if os.geteuid() == 0:
        shutil.chown(path, OS_USER, OS_USER)
    return path


class Cluster:
    """One data directory, served on ``port``: :meth:`start`, :meth:`stop`, :meth:`connect`."""

    def __init__(self, pgdata: Path, port: int) -> None:
        if not 1024 <= port <= 65535:
            raise ValueError(f"port must be between 1024 and 65535, got {port}")
        self.pgdata = pgdata
        self.port = port
        self.log = pgdata.parent / f"{pgdata.name}.log"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def connect(self, dbname: str = "postgres", user: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}", autocommit=True)

    def execute(self, sql: str, params: Any = None) -> list[Any]:
        with self.connect() as c:
            cur = c.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def initdb(self, **settings: str) -> Cluster:
        as_postgres(str(PGBIN / "initdb"), "-D", str(self.pgdata), "--auth=trust", "-U", "postgres")
        self.configure(shared_preload_libraries="'ruvector_dag'", **settings)
        return self

    def configure(self, **settings: str) -> None:
        """Settings of this copy (appended to postgresql.conf: the last one wins)."""
        lines = [f"port = {self.port}", "listen_addresses = '127.0.0.1'",
                 f"unix_socket_directories = '{self.pgdata.parent}'"]
        lines += [f"{k} = {v}" for k, v in settings.items()]
        conf = self.pgdata / "postgresql.conf"
        with open(conf, "a") as out:
            out.write("\n# system test\n" + "\n".join(lines) + "\n")

    def start(self) -> Cluster:
        as_postgres(str(PGBIN / "pg_ctl"), "-D", str(self.pgdata), "-l", str(self.log), "-w", "-t", "120", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        as_postgres(str(PGBIN / "pg_ctl"), "-D", str(self.pgdata), "-m", mode, "-w", "stop", check=False)

    def promote(self) -> None:
        as_postgres(str(PGBIN / "pg_ctl"), "-D", str(self.pgdata), "-w", "promote")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for_log(self, needle: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_text()
            if needle in text:
                return text
            time.sleep(0.2)
        tail = self.log_text()[-3000:]
        raise AssertionError(f"{needle!r} not in the log of {self.pgdata} within {timeout} s:\n{tail}")


def base_backup(source_port: int, target: Path, fmt: str, *extra: str) -> None:
    """pg_basebackup of the server on ``source_port`` into ``target`` (plain or tar, WAL streamed)."""
    if fmt not in ("plain", "tar"):
        raise ValueError(f"fmt must be plain or tar, got {fmt!r}")
    as_postgres(str(PGBIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(source_port), "-U", "postgres",
                "-D", str(target), "-F", fmt[0], "-X", "stream", "-c", "fast", *extra)


def extract_tar_backup(backup: Path, pgdata: Path) -> list[str]:
    """A tar-format base backup unpacked into a data directory (by the server's user, with tar, as a DBA
    would); returns the member names of base.tar."""
    with tarfile.open(backup / "base.tar") as tar:
        names = tar.getnames()
    as_postgres("mkdir", "-m", "700", str(pgdata))
    as_postgres("tar", "-xf", str(backup / "base.tar"), "-C", str(pgdata))
    as_postgres("tar", "-xf", str(backup / "pg_wal.tar"), "-C", str(pgdata / "pg_wal"))
    return names


def wait_replayed(primary: Any, standby: Any, timeout: float = 60) -> None:
    """Until the standby has replayed everything the primary wrote so far (connections' execute)."""
    lsn = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if standby.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]:
            return
        time.sleep(0.1)
    raise AssertionError(f"the standby did not replay up to {lsn} within {timeout} s")
