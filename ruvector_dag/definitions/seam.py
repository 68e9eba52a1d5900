"""The seam between the C shim and the Python engine: every name one side calls on the other.

C imports the start-up module and the worker's class by name, calls their
methods by name, builds a module (``_ruvector_pg``) for the worker with the
functions listed here, and passes request kinds, drain statuses, capture-rule
flags and decision sources as plain strings and integers.  They are declared
once, here; ``python build.py generate`` renders ``pgext/src/seam_defs.h``
(:func:`render_header`) and C never types one of them itself.  A unit test
checks that the header is current, that :class:`PgModule` and
:data:`PG_FUNCTIONS` agree, that the modules named here import and that the
worker has the methods named here.
"""

from __future__ import annotations

from enum import Enum, IntEnum, IntFlag
from typing import NamedTuple, Protocol

# --------------------------------------------------------------------------
# Python modules and callables the C side imports or calls
# --------------------------------------------------------------------------

#: Imported first in every process that runs the engine (py_main.c); start(cache_dir) -> SQL dispatcher.
EMBEDDED_MODULE = "ruvector_dag.runtime.embedded"
EMBEDDED_START = "start"
#: The background worker's engine (py_worker.c): C constructs WORKER_CLASS() with no arguments.
WORKER_MODULE = "ruvector_dag.runtime.worker"
WORKER_CLASS = "Worker"
WORKER_START = "start"
WORKER_DRAIN = "drain"
WORKER_BACKGROUND_CYCLE = "background_cycle"
WORKER_REQUEST = "request"
WORKER_STOP = "stop"
#: Every method C calls on the worker.
WORKER_METHODS: tuple[str, ...] = (WORKER_START, WORKER_DRAIN, WORKER_BACKGROUND_CYCLE, WORKER_REQUEST, WORKER_STOP)

# --------------------------------------------------------------------------
# The module C gives the worker's Python: name, exception, constants, functions
# --------------------------------------------------------------------------

PG_MODULE = "_ruvector_pg"
PG_ERROR = "Error"
PG_READ_RING_MAX = "READ_RING_MAX"
PG_RECORD_SIZE = "RECORD_SIZE"


class PgFunction(NamedTuple):
    """One function of ``_ruvector_pg``: its name, its CPython calling convention, its docstring."""

    name: str
    flags: str  # METH_VARARGS or METH_NOARGS
    doc: str


PG_FUNCTIONS: tuple[PgFunction, ...] = (
    PgFunction("read_ring", "METH_VARARGS", "Consume up to max trajectory records of this database."),
    PgFunction("skip_ring", "METH_VARARGS", "Consume records unread, stopping before kept query ids."),
    PgFunction("execute", "METH_VARARGS", "Run one SQL statement in a subtransaction."),
    PgFunction("setting", "METH_VARARGS", "Current value of a setting, or None."),
    PgFunction("generation", "METH_NOARGS", "Generation of the enrollment registry."),
    PgFunction("publish", "METH_VARARGS", "Publish a table's learning counters."),
    PgFunction("forget", "METH_VARARGS", "Drop a table's learning counters."),
    PgFunction("set_decision", "METH_VARARGS", "Set a learned steering decision."),
    PgFunction("set_capture_rules", "METH_VARARGS", "Replace the per-query capture fractions."),
    PgFunction("take_statements", "METH_NOARGS", "The statement texts offered for trials."),
    PgFunction("trial", "METH_VARARGS", "Run a statement once under an arm, with a time limit."),
    PgFunction("set_sample_fraction", "METH_VARARGS", "Set the fraction of other statements captured."),
    PgFunction("log", "METH_VARARGS", "Write a LOG line."),
)


class PgModule(Protocol):
    """What the worker's Python may use of ``_ruvector_pg`` (tests pass a fake with the same calls).

    The methods are those of :data:`PG_FUNCTIONS`, in the same order (a unit test checks).
    """

    Error: type[Exception]  # raised by execute and trial; carries .sqlstate
    READ_RING_MAX: int
    RECORD_SIZE: int

    def read_ring(self, max_records: int, /) -> bytes: ...
    def skip_ring(self, max_records: int, keep: bytes, /) -> bytes: ...  # relids (uint32) of the records skipped
    def execute(self, sql: str, params: tuple[str | None, ...] = (), /) -> list[tuple[str | None, ...]]: ...
    def setting(self, name: str, /) -> str | None: ...
    def generation(self) -> int: ...
    def publish(self, relid: int, consumed: int, processed: int, learned: int, hits: int, avg_latency_us: float,
                prediction_error: float, patterns: int, ewc_tasks: int, cycles: int, last_cycle_ms: float,
                last_cycle_at_us: int, mechanism: str, /) -> None: ...
    def forget(self, relid: int, /) -> None: ...
    def set_decision(self, relid: int, query_id: int, arm: int, /) -> None: ...
    def set_capture_rules(self, ids: bytes, fractions: bytes, flags: bytes, /) -> None: ...
    def take_statements(self) -> list[tuple[int, bytes]]: ...
    def trial(self, statement: bytes, arm: int, timeout_ms: int, /) -> float | None: ...
    def set_sample_fraction(self, fraction: float, /) -> None: ...
    def log(self, message: str, /) -> None: ...


# --------------------------------------------------------------------------
# Values that cross the seam
# --------------------------------------------------------------------------

class RequestKind(str, Enum):
    """Requests a session posts to the worker (ruvector_dag_learn and friends)."""

    LEARN = "learn"
    EXTRACT = "extract"
    CONSOLIDATE = "consolidate"


#: Size of the request kind's buffer in shared memory (with its terminating NUL).
REQUEST_KIND_LEN = 32
#: What drain() returns while a trial's statement waits for its turn (C drains again at its next poll).
DRAIN_TRIALS_WAITING = "trials"


class RuleFlag(IntFlag):
    """Flags of a capture rule (RvdCaptureRule.flags)."""

    EVERY = 1  # capture every execution of the query
    WANT_TEXT = 2  # offer its statement text to the worker (for a trial)


class DecisionSource(IntEnum):
    """Where a steering decision came from."""

    PINNED = 1  # an administrator's ruvector_dag_pin_arm
    LEARNED = 2  # the engine, from users' executions
    TRIAL = 3  # the engine, from the worker's trial of the arm


# --------------------------------------------------------------------------
# seam_defs.h
# --------------------------------------------------------------------------

#: Column the trailing comments of the header's #define lines start at.
_COMMENT_COLUMN = 51


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _define(name: str, value: str | int, comment: str = "") -> str:
    line = f"#define {name} {_c_string(value) if isinstance(value, str) else value}"
    return f"{line.ljust(_COMMENT_COLUMN - 1)} /* {comment} */" if comment else line


def render_header() -> str:
    """Text of ``pgext/src/seam_defs.h``."""
    lines = [
        "/*",
        " * seam_defs.h",
        " *\t\tGENERATED by `python build.py generate` from ruvector_dag/definitions/seam.py. Do not edit.",
        " */",
        "#ifndef RVD_SEAM_DEFS_H",
        "#define RVD_SEAM_DEFS_H",
        "/* Python modules and callables the C side imports or calls */",
        _define("RVD_PY_EMBEDDED_MODULE", EMBEDDED_MODULE),
        _define("RVD_PY_EMBEDDED_START", EMBEDDED_START, "start(cache_dir) -> SQL dispatcher"),
        _define("RVD_PY_WORKER_MODULE", WORKER_MODULE),
        _define("RVD_PY_WORKER_CLASS", WORKER_CLASS, f"{WORKER_CLASS}() takes no arguments from C"),
        _define("RVD_PY_WORKER_START", WORKER_START, "-> str | None"),
        _define("RVD_PY_WORKER_DRAIN", WORKER_DRAIN, "-> str | None (RVD_DRAIN_* or None)"),
        _define("RVD_PY_WORKER_BACKGROUND_CYCLE", WORKER_BACKGROUND_CYCLE),
        _define("RVD_PY_WORKER_REQUEST", WORKER_REQUEST, "request(kind, relid, int_arg, real_arg) -> str"),
        _define("RVD_PY_WORKER_STOP", WORKER_STOP),
        "/* The module C gives the worker's Python: name, exception, constants */",
        _define("RVD_PG_MODULE", PG_MODULE),
        _define("RVD_PG_ERROR", PG_ERROR),
        _define("RVD_PG_READ_RING_MAX", PG_READ_RING_MAX),
        _define("RVD_PG_RECORD_SIZE", PG_RECORD_SIZE),
        f"/* X-macro of {PG_MODULE}'s functions; the includer defines",
        " * RVD_PG_FUNCTION(name, flags, doc) and implements rvd_pg_<name>. */",
        "#define RVD_PG_FUNCTIONS \\",
    ]
    rows = [f"\tRVD_PG_FUNCTION({f.name}, {f.flags}, {_c_string(f.doc)})" for f in PG_FUNCTIONS]
    lines += [row + " \\" for row in rows[:-1]] + rows[-1:]
    lines.append("/* Requests a session posts to the worker (ruvector_dag_learn and friends) */")
    lines += [_define(f"RVD_REQUEST_{k.name}", k.value) for k in RequestKind]
    lines.append(_define("RVD_REQUEST_KIND_LEN", REQUEST_KIND_LEN))
    lines.append("/* What drain() may return besides None */")
    lines.append(_define("RVD_DRAIN_TRIALS_WAITING", DRAIN_TRIALS_WAITING))
    lines.append("/* Capture-rule flags (RvdCaptureRule.flags) */")
    lines += [_define(f"RVD_RULE_{f.name}", f.value) for f in RuleFlag]
    lines.append("/* Sources of a steering decision */")
    lines += [_define(f"RVD_DECISION_{s.name}", s.value) for s in DecisionSource]
    lines.append("#endif")
    return "\n".join(lines) + "\n"
