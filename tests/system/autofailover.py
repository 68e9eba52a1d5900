"""A pg_auto_failover formation on one machine: a monitor and two data nodes.

Debian's PostgreSQL 15 with its ``postgresql-15-auto-failover`` and
``pg-auto-failover-cli`` packages.  Every node is a long-lived ``pg_autoctl
run`` process, running as the ``postgres`` OS user, with a directory of its
own under ``base_dir``::

    base_dir/monitor, base_dir/a, base_dir/b
        pgdata/          the data directory (pg_autoctl runs initdb / pg_basebackup into it)
        config/ share/ run/   XDG_CONFIG_HOME, XDG_DATA_HOME, XDG_RUNTIME_DIR: pg_autoctl's
                         configuration, state and pid files (keyed by the pgdata path)
        backup/          pg_autoctl's pg_basebackup target (it uses the parent of pgdata)
        log/             the server log (log_directory = '../log', see _server_conf)
        pg_autoctl.log   the output of ``pg_autoctl run``

``base_dir`` must be new (or empty), and stay reachable by the postgres user
while the formation runs: not under pytest's ``tmp_path``, whose
/tmp/pytest-of-<user> every pytest session (also a concurrent one) resets to
mode 0700.  Only the standard library is used, so importing this module needs
no database driver.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

PG_AUTOCTL = Path("/usr/bin/pg_autoctl")
PGBIN = Path(os.environ.get("RUVECTOR_SYSTEM_PGBIN", "/usr/lib/postgresql/15/bin"))
OS_USER = "postgres"
HOST = "127.0.0.1"
DATA_NODES = ("a", "b")


class FormationError(RuntimeError):
    """The formation did not reach the expected state (the message has the states and log tails)."""


@dataclass(frozen=True)
class NodeState:
    """One data node as the monitor reports it (``pg_autoctl show state --json``)."""

    name: str
    host: str
    port: int
    current: str
    assigned: str

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/postgres"

    @property
    def settled(self) -> bool:
        """Whether the node has reached the state the monitor assigned it."""
        return self.current == self.assigned


def _as_postgres() -> dict[str, Any]:
    """subprocess arguments that run the child as the server's OS user when we are root.

    pg_autoctl and PostgreSQL refuse to run as root.  extra_groups=[] drops
    root's supplementary groups, which the child would otherwise keep.
    """
    if os.geteuid() != 0:
        return {}
    return {"user": OS_USER, "group": OS_USER, "extra_groups": []}


def _tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class _Node:
    """The directories, environment and long-lived pg_autoctl process (``run``, ``create --run``) of one node."""

    def __init__(self, home: Path, name: str, port: int) -> None:
        self.home = home
        self.name = name
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def output(self) -> Path:
        return self.home / "pg_autoctl.log"

    def env(self) -> dict[str, str]:
        # A clean environment: nothing of the caller's (PGHOST, PGPORT, XDG_*) leaks into
        # pg_autoctl, which keeps its configuration and state under the XDG directories.
        return {
            "PATH": f"{PGBIN}:/usr/bin:/bin",
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "XDG_DATA_HOME": str(self.home / "share"),
            "XDG_RUNTIME_DIR": str(self.home / "run"),
            "PG_CONFIG": str(PGBIN / "pg_config"),
            "LANG": "C.UTF-8",  # initdb's locale, whatever the caller's is
        }

    def prepare(self) -> None:
        for path, mode in [(self.home, 0o755), (self.home / "config", 0o700), (self.home / "share", 0o700),
                           (self.home / "run", 0o700), (self.home / "log", 0o700)]:
            path.mkdir(mode=mode, exist_ok=True)
            path.chmod(mode)
            if os.geteuid() == 0:
                shutil.chown(path, OS_USER, OS_USER)

    def autoctl(self, *args: str, timeout: float) -> str:
        """Run ``pg_autoctl ARGS`` to completion and return its output; raise FormationError if it fails.

        A session of its own, so that on a timeout the whole process group
        (pg_autoctl starts postgres as a child) can be killed.
        """
        proc = subprocess.Popen([str(PG_AUTOCTL), *args], env=self.env(), cwd=self.home, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True, **_as_postgres())
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _end_group(proc)
            out, _ = proc.communicate()
            raise FormationError(f"pg_autoctl {' '.join(args)} did not finish within {timeout} s:\n"
                                 f"{out.decode(errors='replace')}") from None
        finally:
            _end_group(proc)  # nothing of it may outlive it, also after a failure (normally a no-op)
        text = out.decode(errors="replace")
        if proc.returncode != 0:
            raise FormationError(f"pg_autoctl {' '.join(args)} failed ({proc.returncode}):\n{text}")
        return text

    def run(self, *args: str) -> None:
        """Start ``pg_autoctl ARGS`` (default: ``run``) in the background, its output appended to
        ``pg_autoctl.log``: the node's long-lived service."""
        command = args or ("run", "--pgdata", str(self.pgdata))
        with open(self.output, "ab") as out:
            self.process = subprocess.Popen([str(PG_AUTOCTL), *command], env=self.env(), cwd=self.home, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True, **_as_postgres())

    def exited(self) -> int | None:
        """The exit status of the long-lived pg_autoctl process if it was started and has ended, else None."""
        return self.process.poll() if self.process is not None else None

    def terminate(self) -> None:
        # SIGTERM is what `pg_autoctl stop` sends: the keeper stops postgres (pg_ctl stop --mode fast) and exits.
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait_stopped(self, timeout: float) -> None:
        """Wait for ``pg_autoctl run`` to exit, then make sure nothing it started is left.

        Its postgres service process and the postmaster are in its process
        group and normally exit before it does; if it died without stopping
        them (seen when it lost access to its directories) or does not stop
        within ``timeout``, :func:`_end_group` ends what is left.
        """
        # No `pg_ctl stop` on a left-over postmaster.pid: after a kill it is stale, and its pid may be another
        # process's by now.  Every postmaster we start is in the group of the pg_autoctl that started it.
        if self.process is not None:
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
            _end_group(self.process)
            self.process = None


def _live_members(pgid: int) -> list[int]:
    """The processes of process group ``pgid`` that are not zombies.

    Zombies do not count: pg_autoctl exits without reaping its postmaster, which
    stays in the group, reparented, until PID 1 reaps it (a second or two here).
    """
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid pgrp ...
        except OSError:
            continue  # it exited meanwhile
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(stat.parent.name))
    return pids


def _end_group(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """End every process left in the process group that ``proc`` leads (started with start_new_session).

    SIGQUIT first: an immediate shutdown for pg_autoctl and for a postmaster
    (which takes its children along; they run in sessions of their own).
    SIGKILL for what is still there after ``grace`` seconds.
    """
    for sig in (signal.SIGQUIT, signal.SIGKILL):
        proc.poll()  # reap the leader if it has exited
        if not _live_members(proc.pid):
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _live_members(proc.pid):
            proc.poll()
            time.sleep(0.1)
    proc.wait()


def _quote(value: str) -> str:
    """A postgresql.conf value: quoted, which every setting type accepts."""
    return "'" + value.replace("'", "''") + "'"


class AutoFailoverFormation:
    """A monitor and two data nodes, ``a`` and ``b``, of one pg_auto_failover formation.

    ``ports`` are the monitor's and the data nodes' (monitor, a, b).  The data
    nodes preload ``preload`` (after pg_auto_failover's own
    ``pg_stat_statements``) and get ``extra_conf``, with default settings
    otherwise.  Use it as a context manager, or call :meth:`start` and
    :meth:`stop`; :meth:`stop` stops every process started, also after a
    failed :meth:`start`.  ``timeout`` bounds each wait (seconds), and
    ``timings`` records how long start, failover and stop took.
    """

    def __init__(self, base_dir: Path, ports: tuple[int, int, int], extra_conf: Mapping[str, str] | None = None,
                 preload: Sequence[str] = ("ruvector_dag",), timeout: float = 60.0) -> None:
        if len(set(ports)) != 3 or not all(1024 <= p <= 65535 for p in ports):
            raise ValueError(f"ports must be three different ports between 1024 and 65535, got {ports}")
        self.base_dir = base_dir
        self.extra_conf = dict(extra_conf or {})
        self.preload = tuple(preload)
        self.timeout = timeout
        self.timings: dict[str, float] = {}
        self.monitor = _Node(base_dir / "monitor", "monitor", ports[0])
        self.nodes = {name: _Node(base_dir / name, name, port) for name, port in zip(DATA_NODES, ports[1:])}

    # --- life cycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Monitor; node a (wait until it is ``single``); node b (wait until a is primary, b secondary)."""
        began = time.monotonic()
        try:
            self._prepare_base_dir()
            self._start_monitor()
            a, b = self.nodes["a"], self.nodes["b"]
            # `create` without --run: initdb, register with the monitor as "single", stop the server; its exit
            # status says whether that worked.
            self._autoctl(a, *self._create_args(a), timeout=self.timeout)
            # Our settings go into the first node's postgresql.conf before its server runs with them; the
            # second node is a pg_basebackup of the first, so it gets the same file (see _server_conf).
            self._append_conf(a, self._server_conf(data_node=True))
            a.run()
            # `create` already reported "single" to the monitor: wait for the server itself (one that cannot
            # start, e.g. a missing preload library, fails here with its log, not in the next node's create).
            self._wait_serving(a)
            self.wait_for({"a": "single"})
            # `create --run`: pg_basebackup of a, then on to `run` in the same process, without stopping and
            # restarting the new standby in between (a second or so less).  A failure ends the process, which
            # the wait below notices.
            b.run(*self._create_args(b), "--run")
            self.wait_for({"a": "primary", "b": "secondary"})
        except BaseException:
            self.stop()
            raise
        self.timings["start"] = time.monotonic() - began

    def stop(self) -> None:
        """Stop every node (data nodes first, then the monitor); safe to call more than once."""
        began = time.monotonic()
        # The data nodes' keepers first: stopped after the monitor, they would retry it until they stop.
        # Both at once: the monitor cannot act on either's absence in this time (its unhealthy timeout is 20 s).
        for group in (list(self.nodes.values()), [self.monitor]):
            for node in group:
                node.terminate()
            for node in group:
                node.wait_stopped(self.timeout)
        self.timings["stop"] = time.monotonic() - began

    def __enter__(self) -> AutoFailoverFormation:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # --- state ----------------------------------------------------------------------------------------------------

    def state(self) -> list[NodeState]:
        """The data nodes as the monitor reports them now."""
        out = self.monitor.autoctl("show", "state", "--pgdata", str(self.monitor.pgdata), "--json",
                                   timeout=self.timeout)
        return [NodeState(name=n["nodename"], host=n["nodehost"], port=int(n["nodeport"]),
                          current=n["current_group_state"], assigned=n["assigned_group_state"])
                for n in json.loads(out)]

    def node_in(self, state: str) -> NodeState:
        """The one data node that is settled in ``state`` (``primary``, ``secondary``)."""
        nodes = [n for n in self.state() if n.settled and n.current == state]
        if len(nodes) != 1:
            raise FormationError(f"expected one {state} node, found {len(nodes)}:\n{self.describe()}")
        return nodes[0]

    def primary_dsn(self) -> str:
        return self.node_in("primary").dsn

    def secondary_dsn(self) -> str:
        return self.node_in("secondary").dsn

    def wait_for(self, expected: Mapping[str, str]) -> list[NodeState]:
        """Wait until each named node has reached (and was assigned) its expected state."""

        def reached() -> list[NodeState] | None:
            try:
                nodes = {n.name: n for n in self.state()}
            except FormationError:
                return None  # the monitor did not answer this time: keep waiting
            ok = all(name in nodes and nodes[name].settled and nodes[name].current == want
                     for name, want in expected.items())
            return list(nodes.values()) if ok else None

        return self._poll(reached, f"nodes in states {dict(expected)}")

    # --- operations -------------------------------------------------------------------------------------------

    def failover(self) -> None:
        """Promote the secondary; wait until it is primary and the old primary has rejoined as its secondary."""
        began = time.monotonic()
        old = self.node_in("primary").name
        new = next(name for name in self.nodes if name != old)
        # --group 0: without it pg_autoctl 2.0's own wait loop queries the monitor with an empty group and logs
        # an error ("invalid input syntax for type integer").  The command returns once the new primary is up.
        self._autoctl(self.monitor, "perform", "failover", "--pgdata", str(self.monitor.pgdata), "--group", "0",
                      "--wait", str(int(self.timeout)), timeout=self.timeout + 10)
        self.wait_for({new: "primary", old: "secondary"})
        self.timings["failover"] = time.monotonic() - began

    def server_log(self, node: str) -> str:
        """The server log of ``node`` (``monitor``, ``a`` or ``b``) since it ran with our settings."""
        target = self.monitor if node == "monitor" else self.nodes[node]
        return "".join(p.read_text(errors="replace") for p in sorted((target.home / "log").glob("*.log")))

    def describe(self) -> str:
        """The monitor's view and the tail of every node's pg_autoctl output, for error messages."""
        try:
            states = "\n".join(f"  {n.name} {n.host}:{n.port} {n.current} (assigned {n.assigned})"
                               for n in self.state())
        except (FormationError, OSError) as e:
            states = f"  (no state from the monitor: {e})"
        parts = [f"monitor state:\n{states}"]
        for node in [self.monitor, *self.nodes.values()]:
            status = node.exited()
            running = "not started" if node.process is None else "running" if status is None else f"exited {status}"
            parts.append(f"--- {node.name} pg_autoctl ({running}), {node.output}:\n{_tail(node.output)}")
            # postgres's output before its logging collector starts (a failed start's FATAL) and its log.
            logs = sorted((node.home / "log").glob("*.log"))
            for log in [node.pgdata / "startup.log", *logs[-1:]]:
                if log.exists():
                    parts.append(f"--- {node.name} server, {log}:\n{_tail(log, 10)}")
        return "\n".join(parts)

    # --- internals ----------------------------------------------------------------------------------------------

    def _prepare_base_dir(self) -> None:
        # pg_autoctl would find (and refuse, or worse, reuse) an old formation's data directories.
        if self.base_dir.exists() and any(self.base_dir.iterdir()):
            raise FormationError(f"{self.base_dir} is not empty: a formation needs a new directory")
        # The postgres user must reach its directories: base_dir and every parent traversable (o+x; pytest's
        # /tmp/pytest-of-root is 0700).
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.base_dir.chmod(0o755)
        for parent in self.base_dir.parents:
            if parent != Path("/"):
                parent.chmod(parent.stat().st_mode | 0o001)
        for node in [self.monitor, *self.nodes.values()]:
            node.prepare()

    def _start_monitor(self) -> None:
        mon = self.monitor
        self._autoctl(mon, "create", "monitor", "--pgdata", str(mon.pgdata), "--pgport", str(mon.port),
                      "--pgctl", str(PGBIN / "pg_ctl"), "--hostname", HOST, "--auth", "trust", "--no-ssl",
                      timeout=self.timeout)
        # pg_autoctl starts postgres with `-h <listen_addresses>`, '*' by default for a monitor (no --listen
        # option there): loopback only, this is one machine.
        self._autoctl(mon, "config", "set", "--pgdata", str(mon.pgdata), "postgresql.listen_addresses", HOST,
                      timeout=self.timeout)
        self._append_conf(mon, self._server_conf(data_node=False))
        mon.run()
        # The data nodes register with the monitor as soon as they are created: wait until it answers.
        self._poll(lambda: self._monitor_answers() or None, "the monitor to answer")

    def _autoctl(self, node: _Node, *args: str, timeout: float) -> str:
        """``node.autoctl``, its error completed with the formation's state and every node's log tail."""
        try:
            return node.autoctl(*args, timeout=timeout)
        except FormationError as e:
            raise FormationError(f"{e}\n{self.describe()}") from None

    def _wait_serving(self, node: _Node) -> None:
        def serving() -> bool | None:
            res = subprocess.run([str(PGBIN / "pg_isready"), "-q", "-h", HOST, "-p", str(node.port), "-t", "2"],
                                 capture_output=True, timeout=10)
            return True if res.returncode == 0 else None

        self._poll(serving, f"the server of node {node.name} to accept connections")

    def _monitor_answers(self) -> bool:
        try:
            self.state()
        except FormationError:
            return False
        return True

    def _create_args(self, node: _Node) -> list[str]:
        """``pg_autoctl create postgres`` for a data node: initdb for the first, pg_basebackup for the second."""
        return ["create", "postgres", "--pgdata", str(node.pgdata), "--pgport", str(node.port),
                "--pgctl", str(PGBIN / "pg_ctl"), "--name", node.name, "--hostname", HOST, "--listen", HOST,
                "--monitor", self.monitor_uri, "--auth", "trust", "--no-ssl"]

    @property
    def monitor_uri(self) -> str:
        return f"postgres://autoctl_node@{HOST}:{self.monitor.port}/pg_auto_failover"

    def _server_conf(self, data_node: bool) -> dict[str, str]:
        """Settings appended to postgresql.conf.

        pg_auto_failover puts its own settings in postgresql-auto-failover.conf,
        included from the *first* line of postgresql.conf, so a setting
        appended to postgresql.conf wins over it.  postgresql.conf is in the
        data directory, so pg_basebackup (new standby) and pg_rewind (old
        primary rejoining) copy it: both data nodes always have these settings.
        """
        conf = {
            # pg_autoctl sizes shared_buffers at a quarter of the machine's memory: too much for a test.
            "shared_buffers": "128MB",
            # Relative to the data directory, so outside it: pg_basebackup and pg_rewind copy the data
            # directory, and a log directory inside it would get the other node's log files (and pg_rewind
            # would overwrite this node's own with the source's copies).
            "log_directory": "../log",
        }
        if data_node:
            # pg_stat_statements: pg_autoctl's own value of the setting (it also creates the extension).
            conf["shared_preload_libraries"] = ",".join(["pg_stat_statements", *self.preload])
            conf.update(self.extra_conf)
        return conf

    @staticmethod
    def _append_conf(node: _Node, settings: Mapping[str, str]) -> None:
        lines = [f"{name} = {_quote(value)}" for name, value in settings.items()]
        with open(node.pgdata / "postgresql.conf", "a") as conf:
            conf.write("\n# tests/system/autofailover.py\n" + "\n".join(lines) + "\n")

    def _poll(self, check: Callable[[], Any], what: str) -> Any:
        """Call ``check`` until it returns something other than None; fail after ``timeout`` or as soon as a
        node's long-lived pg_autoctl process has exited (it would not come back)."""
        deadline = time.monotonic() + self.timeout
        while True:
            result = check()
            if result is not None:
                return result
            dead = [n.name for n in [self.monitor, *self.nodes.values()] if n.exited() is not None]
            if dead or time.monotonic() > deadline:
                why = f"pg_autoctl exited on {', '.join(dead)}" if dead else f"not within {self.timeout} s"
                raise FormationError(f"waiting for {what}: {why}\n{self.describe()}")
            time.sleep(0.2)
