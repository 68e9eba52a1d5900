"""The C shim's files are layered: no include cycle, no call cycle.

pgext/src is ordered in layers (see the map at the top of ruvector_dag.h):
a file may include the headers of, and call, only files below it.  Two
graphs are checked:

- the include graph: `#include "..."` lines of pgext/src/*.c and *.h that
  name another file of pgext/src;
- the call graph between .c files: each .c is compiled to an object (in a
  temporary directory, never installed) and `nm` lists what it defines and
  what it leaves undefined; an undefined symbol defined by another project
  object is an edge (functions and variables alike).

Both must be acyclic.  The call graph needs a compiler and a pg_config
(PG_CONFIG in the environment, pg_config on PATH, or Debian's
/usr/lib/postgresql/*/bin/pg_config); without them that test is skipped,
saying why.  The Makefile's OBJS lists the objects in layer order (callees
first), and headers carry include guards covering all of them.
"""

from __future__ import annotations

import functools
import glob
import graphlib
import os
import re
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "pgext" / "src"

# guc_defs.h is an X-macro table, included several times on purpose (and
# generated): it has no guard.
UNGUARDED = {"guc_defs.h"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of graph as a list of nodes (first == last), or None (graphlib finds it)."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as err:
        cycle: list[str] = err.args[1]
        return cycle[::-1]  # graphlib lists it against the edges' direction
    return None


def include_graph(src: Path = SRC) -> dict[str, set[str]]:
    files = {p.name: p for p in list(src.glob("*.c")) + list(src.glob("*.h"))}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        graph[name] = {inc for inc in INCLUDE.findall(path.read_text()) if inc in files and inc != name}
    return graph


def _pg_config() -> str | None:
    candidates = [os.environ.get("PG_CONFIG"), shutil.which("pg_config"),
                  *sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_config"), reverse=True)]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    return None


def _run(cmd: list[str]) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


@functools.cache
def call_graph(src: Path = SRC) -> dict[str, set[str]]:
    """Edges between .c files of src: a calls (or reads) something b defines."""
    pg_config = _pg_config()
    if pg_config is None:
        pytest.skip("no pg_config (set PG_CONFIG): cannot compile the C files for the call graph")
    cc = _run([pg_config, "--cc"]).split()[0]
    if shutil.which(cc) is None or shutil.which("nm") is None:
        pytest.skip(f"no compiler ({cc}) or no nm: cannot build the call graph")
    cflags = [f for f in _run([pg_config, "--cflags"]).split() if not f.startswith("-W")]
    includes = ["-I", str(src), "-I", _run([pg_config, "--includedir-server"]),
                "-I", sysconfig.get_paths()["include"]]
    defs = ['-DRVD_PYTHON_EXECUTABLE="python3"', '-DRVD_PYTHON_PATHS=""']
    defined: dict[str, str] = {}
    undefined: dict[str, set[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for c in sorted(src.glob("*.c")):
            obj = Path(tmp) / (c.stem + ".o")
            subprocess.run([cc, *cflags, "-w", *includes, *defs, "-c", str(c), "-o", str(obj)],
                           check=True, capture_output=True, text=True)
            undefined[c.name] = set()
            for line in _run(["nm", str(obj)]).splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == "U":
                    undefined[c.name].add(parts[1])
                elif len(parts) == 3 and parts[1].isupper() and parts[1] not in "UW":
                    defined[parts[2]] = c.name
    return {
        name: {defined[s] for s in syms if s in defined and defined[s] != name}
        for name, syms in undefined.items()
    }


def test_include_graph_is_acyclic():
    cycle = _find_cycle(include_graph())
    assert cycle is None, "include cycle: " + " -> ".join(cycle)


def test_call_graph_is_acyclic():
    cycle = _find_cycle(call_graph())
    assert cycle is None, "call cycle between C files: " + " -> ".join(cycle)


def test_makefile_lists_objects_in_layers():
    """OBJS in pgext/Makefile is the layering: each object calls only objects listed before it."""
    makefile = (SRC.parent / "Makefile").read_text()
    objs = re.search(r"^OBJS\s*=((?:.*\\\n)*.*)$", makefile, re.MULTILINE).group(1)
    order = [Path(o).stem + ".c" for o in re.findall(r"src/(\w+)\.o", objs)]
    assert sorted(order) == sorted(p.name for p in SRC.glob("*.c")), "OBJS and pgext/src/*.c differ"
    graph = call_graph()
    late = [f"{a} -> {b}" for a in order for b in sorted(graph[a]) if order.index(b) > order.index(a)]
    assert late == [], "calls to objects listed later in OBJS: " + ", ".join(late)


def test_headers_are_guarded():
    for h in sorted(SRC.glob("*.h")):
        if h.name in UNGUARDED:
            continue
        text = h.read_text()
        # Strip comments, then the first directive must open the guard and the last close it.
        code = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
        code = re.sub(r"//[^\n]*", "", code)
        lines = [ln.strip() for ln in code.splitlines() if ln.strip()]
        assert len(lines) >= 3, h.name
        m = re.match(r"#\s*ifndef\s+(\w+)$", lines[0])
        assert m, f"{h.name}: does not open with an include guard"
        assert re.match(rf"#\s*define\s+{m.group(1)}\b", lines[1]), f"{h.name}: guard not defined"
        assert re.match(r"#\s*endif\b", lines[-1]), f"{h.name}: guard does not cover the whole file"
        # ... and the guard's #endif is the last one: count nesting.
        depth = 0
        for i, ln in enumerate(lines):
            if re.match(r"#\s*if", ln):
                depth += 1
            elif re.match(r"#\s*endif\b", ln):
                depth -= 1
                assert depth > 0 or i == len(lines) - 1, f"{h.name}: guard closes before the end"
