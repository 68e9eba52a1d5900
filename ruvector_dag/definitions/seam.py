"""The seam between the C shim and the Python engine: every name one side calls on the other.

C imports the start-up module and the worker's class by name, calls their
methods by name, builds a module (``_ruvector_pg``) for the worker with the
functions listed here, and passes request kinds and their arguments, the
worker's JSON answers, drain statuses, capture-rule flags, decision sources
and the SQLSTATE attribute of exceptions as plain strings and numbers.  They
are declared once, here; ``python build.py generate`` renders
``pgext/src/seam_defs.h`` (:func:`render_header`) and C never types one of
them itself.  A unit test checks that the header is current, that
:class:`PgModule` and :data:`PG_FUNCTIONS` agree, that the modules named here
import, that the worker has the methods named here, and that neither side
types a name declared here as a literal.
"""

from __future__ import annotations

import math
from enum import Enum, IntEnum, IntFlag
from typing import NamedTuple, Protocol

from .settings import IntSetting
from .settings import by_name as _settings_by_name
from .validation import Interval

# --------------------------------------------------------------------------
# Python modules and callables the C side imports or calls
# --------------------------------------------------------------------------

#: Imported first in every process that runs the engine (py_main.c); start(numba_cache_dir setting) -> SQL dispatcher.
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

#: Attribute of an exception holding its five-character SQLSTATE, both ways: py_elog.c reads it from
#: an engine exception (definitions/errors.py declares it on RuvectorError), py_pgmodule.c sets it on
#: the PG_ERROR it raises for a PostgreSQL ERROR.
SQLSTATE_ATTRIBUTE = "sqlstate"


def sqlstate_of(exc: BaseException) -> str:
    """The SQLSTATE an exception carries, or "" (Python reads the attribute only through this)."""
    return str(getattr(exc, SQLSTATE_ATTRIBUTE, ""))


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
    PgFunction("statement_text", "METH_VARARGS", "The role and normalized text of a taken statement."),
    PgFunction("trial", "METH_VARARGS", "Run a statement once under an arm, with a time limit."),
    PgFunction("set_sample_fraction", "METH_VARARGS", "Set the fraction of other statements captured."),
    PgFunction("log", "METH_VARARGS", "Write a LOG line."),
)


class PgModule(Protocol):
    """What the worker's Python may use of ``_ruvector_pg`` (tests pass a fake with the same calls).

    The methods are those of :data:`PG_FUNCTIONS`, in the same order (a unit test checks).
    """

    Error: type[Exception]  # raised by execute and trial; carries SQLSTATE_ATTRIBUTE (sqlstate_of)
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
    def statement_text(self, statement: bytes, /) -> tuple[int, str | None] | None: ...
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

# A request's arguments: request(kind, relid, int_arg, real_arg).  int_arg is LEARN's and EXTRACT's
# num_clusters, real_arg CONSOLIDATE's similarity_threshold; C checks the bounds before posting
# (sql_learn.c), so the worker sees a value in bounds or the "not given" marker.

#: int_arg when the caller gave none (the worker then uses the table's dag_pattern_clusters).
REQUEST_INT_NOT_GIVEN = -1
#: real_arg when the caller gave none (the worker then uses its default threshold); test with isnan.
REQUEST_REAL_NOT_GIVEN = math.nan
#: Bounds of num_clusters: 1 up to ruvector.dag_pattern_clusters' own maximum.
_PATTERN_CLUSTERS = _settings_by_name()["dag_pattern_clusters"]
assert isinstance(_PATTERN_CLUSTERS, IntSetting)
CLUSTERS_MIN = 1
CLUSTERS_MAX = _PATTERN_CLUSTERS.max
#: Cosine similarity above which consolidation merges two patterns: (-1, 1] (engine/bank.py validates
#: with it, C checks real_arg with its bounds; the C comparison is open left, closed right).
SIMILARITY_THRESHOLD = Interval("real", -1.0, 1.0, "right")


class AnswerField(str, Enum):
    """Keys of the JSON objects the worker answers a request with (request() returns one; the SQL
    functions return it as jsonb or read a field of it, sql_learn.c).  Build answers with these."""

    SUCCESS = "success"  # bool: the cycle ran (LEARN, EXTRACT; C's own refusal too)
    SKIPPED = "skipped"  # bool: the cycle had nothing to do, or learning is not on
    REASON = "reason"  # text: why it was skipped
    ERROR = "error"  # text: why C refused without asking the worker (table not enrolled)
    TRAJECTORY_COUNT = "trajectory_count"  # int: trajectories of a skipped cycle (0)
    TRAJECTORIES_PROCESSED = "trajectories_processed"  # int
    PATTERNS_EXTRACTED = "patterns_extracted"  # int: patterns in the bank after the cycle
    PATTERNS_RETIRED = "patterns_retired"  # int
    DURATION_MS = "duration_ms"  # float
    EWC_TASKS = "ewc_tasks"  # int
    EWC_LAMBDA = "ewc_lambda"  # float
    MERGED = "merged"  # int: CONSOLIDATE's patterns merged away
    PATTERNS = "patterns"  # int: CONSOLIDATE's patterns left
#: What drain() returns while a trial's statement waits for its turn (C drains again at its next poll).
DRAIN_TRIALS_WAITING = "trials"


class RuleFlag(IntFlag):
    """Flags of a capture rule (RvdCaptureRule.flags)."""

    EVERY = 1  # capture every execution of the query
    WANT_TEXT = 2  # offer its statement text to the worker (for a trial)


class DecisionSource(IntEnum):
    """Who set a steering decision (RvdDecision.source, directives.h), and who may replace it."""

    PINNED = 1  # an administrator (ruvector_dag_pin_arm); the engine never replaces it
    LEARNED = 2  # the engine: the worker publishes it (_ruvector_pg.set_decision)
    TRIAL = 3  # an administrator (ruvector_dag_try_arm) for the engine to judge: replaced like its own exploratory arm


# --------------------------------------------------------------------------
# seam_defs.h
# --------------------------------------------------------------------------

#: Column the trailing comments of the header's #define lines start at.
_COMMENT_COLUMN = 51


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _c_value(value: str | int | float) -> str:
    if isinstance(value, str):
        return _c_string(value)
    if isinstance(value, float):
        return "NAN" if math.isnan(value) else f"({value!r})" if value < 0 else repr(value)
    return f"({value})" if value < 0 else str(value)


def _define(name: str, value: str | int | float, comment: str = "") -> str:
    line = f"#define {name} {_c_value(value)}"
    return f"{line.ljust(_COMMENT_COLUMN - 1)} /* {comment} */" if comment else line


#: The comment of each decision source in seam_defs.h.
_DECISION_COMMENTS = {
    DecisionSource.PINNED: "administrator's pin; never replaced by the engine",
    DecisionSource.LEARNED: "the engine's, published by the worker",
    DecisionSource.TRIAL: "administrator's try_arm; the engine judges it",
}


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
        _define("RVD_PY_EMBEDDED_START", EMBEDDED_START, "start(numba_cache_dir setting) -> SQL dispatcher"),
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
        _define("RVD_PY_SQLSTATE_ATTRIBUTE", SQLSTATE_ATTRIBUTE, "an exception's SQLSTATE, both ways"),
        f"/* X-macro of {PG_MODULE}'s functions; the includer defines",
        " * RVD_PG_FUNCTION(name, flags, doc) and implements rvd_pg_<name>. */",
        "#define RVD_PG_FUNCTIONS \\",
    ]
    rows = [f"\tRVD_PG_FUNCTION({f.name}, {f.flags}, {_c_string(f.doc)})" for f in PG_FUNCTIONS]
    lines += [row + " \\" for row in rows[:-1]] + rows[-1:]
    lines.append("/* Requests a session posts to the worker (ruvector_dag_learn and friends) */")
    lines += [_define(f"RVD_REQUEST_{k.name}", k.value) for k in RequestKind]
    lines.append(_define("RVD_REQUEST_KIND_LEN", REQUEST_KIND_LEN))
    lines.append("/* A request's arguments: \"not given\" markers and bounds (C checks them before posting) */")
    lines.append(_define("RVD_REQUEST_INT_NOT_GIVEN", REQUEST_INT_NOT_GIVEN, "int_arg: num_clusters not given"))
    lines.append(_define("RVD_REQUEST_REAL_NOT_GIVEN", REQUEST_REAL_NOT_GIVEN, "real_arg not given: test with isnan()"))
    lines.append(_define("RVD_CLUSTERS_MIN", CLUSTERS_MIN, "num_clusters, inclusive"))
    lines.append(_define("RVD_CLUSTERS_MAX", CLUSTERS_MAX, "inclusive: dag_pattern_clusters' max"))
    assert SIMILARITY_THRESHOLD.closed == "right" and SIMILARITY_THRESHOLD.left is not None \
        and SIMILARITY_THRESHOLD.right is not None
    lines.append(_define("RVD_SIMILARITY_MIN", float(SIMILARITY_THRESHOLD.left), "similarity_threshold, exclusive"))
    lines.append(_define("RVD_SIMILARITY_MAX", float(SIMILARITY_THRESHOLD.right), "similarity_threshold, inclusive"))
    lines.append("/* Keys of the worker's JSON answers */")
    lines += [_define(f"RVD_ANSWER_{f.name}", f.value) for f in AnswerField]
    lines.append("/* What drain() may return besides None */")
    lines.append(_define("RVD_DRAIN_TRIALS_WAITING", DRAIN_TRIALS_WAITING))
    lines.append("/* Capture-rule flags (RvdCaptureRule.flags) */")
    lines += [_define(f"RVD_RULE_{f.name}", f.value) for f in RuleFlag]
    lines.append("/* Who set a steering decision (RvdDecision.source) */")
    lines += [_define(f"RVD_DECISION_{s.name}", s.value, _DECISION_COMMENTS[s]) for s in DecisionSource]
    lines.append("#endif")
    return "\n".join(lines) + "\n"
