"""The one definition of every ``ruvector.*`` GUC.

The C shim registers these settings in ``_PG_init``; its table
(``pgext/src/guc_defs.h``) is *generated* from this module
(:func:`render_header`) by ``python build.py generate`` and checked by a unit test, so a default, a
range or a context is written down exactly once.  The engine reads the same
table when it merges a table's ``config`` jsonb over the server's settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Any, Literal, NewType, Protocol

from .arms import BAN_FACTOR, SETTLE_MIN_US, SETTLE_RUNS

#: Attention mechanisms the engine implements, in the order the GUC lists them.
ATTENTION_MECHANISMS: tuple[str, ...] = (
    "topological",
    "causal_cone",
    "critical_path",
    "mincut_gated",
    "hierarchical_lorentz",
    "parallel_branch",
    "temporal_btsp",
)


class LearningMode(str, Enum):
    """Values of ``ruvector.dag_learning_mode`` (AQO's modes), in the order of the GUC's choices
    (C: ``RVD_DAG_LEARNING_MODE_<NAME>`` in guc_defs.h)."""

    LEARN = "learn"  # drain the ring and learn
    FROZEN = "frozen"  # learn nothing, leave the ring to fill, keep serving what was learned
    OFF = "off"  # as frozen, and learned decisions are not applied


LEARNING_MODES: tuple[str, ...] = tuple(m.value for m in LearningMode)
#: Values accepted by ``ruvector.dag_attention_type`` ("auto" lets the engine choose).
ATTENTION_TYPE_CHOICES: tuple[str, ...] = ("auto", *ATTENTION_MECHANISMS)

# PostgreSQL GucContext names, as written in C.
Context = Literal["PGC_POSTMASTER", "PGC_SIGHUP", "PGC_SUSET", "PGC_USERSET"]


@dataclass(frozen=True)
class BoolSetting:
    name: str
    default: bool
    context: Context
    short_desc: str
    long_desc: str
    per_table: bool = False  # a table's enrollment config may override it


@dataclass(frozen=True)
class IntSetting:
    name: str
    default: int
    min: int
    max: int
    context: Context
    short_desc: str
    long_desc: str
    unit: str = ""  # "" or "ms"
    per_table: bool = False  # a table's enrollment config may override it


@dataclass(frozen=True)
class RealSetting:
    name: str
    default: float
    min: float
    max: float
    context: Context
    short_desc: str
    long_desc: str
    per_table: bool = False  # a table's enrollment config may override it


@dataclass(frozen=True)
class StringSetting:
    name: str
    default: str
    context: Context
    short_desc: str
    long_desc: str


@dataclass(frozen=True)
class EnumSetting:
    name: str
    default: str
    choices: tuple[str, ...]
    context: Context
    short_desc: str
    long_desc: str
    per_table: bool = False  # a table's enrollment config may override it


Setting = BoolSetting | IntSetting | RealSetting | StringSetting | EnumSetting
# A setting declared ``per_table=True`` may be overridden by a table's enrollment config (the keys
# ruvector_dag_enable accepts, pgext/src/sql_enroll.c): user-settable, not a string (strings have no
# per_table), and not neural_dag_enabled itself.  guc_defs.h carries the flag to C.

PREFIX = "ruvector"

SETTINGS: tuple[Setting, ...] = (
    BoolSetting(
        "neural_dag_enabled", True, "PGC_USERSET",
        "Enable neural DAG learning and plan steering.",
        "When off, no query is captured and no learned decision is applied.",
    ),
    RealSetting(
        "dag_learning_rate", 0.02, 0.0001, 1.0, "PGC_USERSET",
        "Learning rate of the engine's adapters.",
        "SGD step of the latency model and its rank-2 adapter per learned query. "
        "(The specification's 0.002 needs thousands of queries to learn; see docs/design.md.)",
        per_table=True,
    ),
    IntSetting(
        "dag_pattern_clusters", 100, 10, 1000, "PGC_USERSET",
        "Number of k-means clusters used for pattern extraction.",
        "The k of the background cycle's k-means++ over plan embeddings.",
        per_table=True,
    ),
    RealSetting(
        "dag_quality_threshold", 0.3, 0.0, 1.0, "PGC_USERSET",
        "Minimum trajectory quality for learning.",
        "Trajectories whose quality is below this value are not learned.",
        per_table=True,
    ),
    IntSetting(
        "dag_max_trajectories", 10000, 64, 1000000, "PGC_POSTMASTER",
        "Capacity of the shared-memory trajectory ring.",
        "Sizes shared memory at server start, so it can only be set in postgresql.conf.",
    ),
    IntSetting(
        "max_enrolled_tables", 4096, 16, 262144, "PGC_POSTMASTER",
        "Most tables enrolled at once, all databases together.",
        "Sizes shared memory at server start (64 bytes and a learning-statistics entry per table).  "
        "Enrolling past it fails with an error at enrollment; a dropped or disenrolled table frees "
        "its place at once.",
    ),
    IntSetting(
        "max_steered_queries", 4096, 64, 262144, "PGC_POSTMASTER",
        "Most queries with a steering decision in force at once, all databases together.",
        "Sizes shared memory at server start (the decision cache that every planned statement "
        "looks up).  Pins are refused past it; learned decisions beyond it are not applied, and "
        "the worker says so in the server log.",
    ),
    EnumSetting(
        "dag_attention_type", "auto", ATTENTION_TYPE_CHOICES, "PGC_USERSET",
        "Attention mechanism used to pool plan embeddings.",
        "auto lets the engine's bandit choose; any other value forces that mechanism.",
        per_table=True,
    ),
    RealSetting(
        "dag_attention_exploration", 0.1, 0.0, 1.0, "PGC_USERSET",
        "Exploration rate of the attention-type selector.",
        "Probability mass the selector spends on mechanisms other than the best known one.",
        per_table=True,
    ),
    RealSetting(
        "dag_ewc_lambda", 2000.0, 100.0, 50000.0, "PGC_USERSET",
        "EWC regularisation strength.",
        "Higher values prevent forgetting more aggressively.",
        per_table=True,
    ),
    RealSetting(
        "dag_ewc_max_lambda", 15000.0, 100.0, 50000.0, "PGC_USERSET",
        "Upper bound of the adaptive EWC regularisation strength.",
        "EWC++ raises lambda at task boundaries up to this value.",
        per_table=True,
    ),
    BoolSetting(
        "dag_mincut_enabled", True, "PGC_USERSET",
        "Enable MinCut bottleneck analysis.",
        "When enabled, bottleneck operators are identified.",
        per_table=True,
    ),
    RealSetting(
        "dag_mincut_threshold", 0.5, 0.0, 1.0, "PGC_USERSET",
        "Criticality above which an operator is reported as a bottleneck.",
        "Compared with the per-operator criticality in [0, 1].",
        per_table=True,
    ),
    IntSetting(
        "dag_background_interval_ms", 3600000, 60000, 86400000, "PGC_SIGHUP",
        "Interval of the background learning cycle.",
        "How often the background worker runs the heavier learning cycle.",
        unit="ms",
    ),
    IntSetting(
        "dag_worker_cpu_percent", 5, 1, 100, "PGC_SIGHUP",
        "Share of one CPU the background worker's per-statement learning may use.",
        "Above it the worker still drains the ring but learns from a sample: statements of queries "
        "being steered first, then the others in arrival order.  Keeps an always-on engine at "
        "monitoring-class overhead under heavy OLTP load.",
    ),
    EnumSetting(
        "dag_learning_mode", LearningMode.LEARN.value, LEARNING_MODES, "PGC_SIGHUP",
        "What the background worker does with captured trajectories.",
        "learn: drain the ring and learn; frozen: learn nothing, leave the ring to fill, keep serving "
        "what was learned; off: as frozen, and learned decisions are not applied.",
    ),
    BoolSetting(
        "dag_capture_timing", False, "PGC_SUSET",
        "Measure per-operator time of captured statements.",
        "Off: captured statements get row counts only (cheap). On: also per-node timing, as EXPLAIN ANALYZE.",
    ),
    RealSetting(
        "dag_learn_query_rate", 2.0, 0.01, 1000000.0, "PGC_SIGHUP",
        "Executions per second of one query the background worker learns from, at most.",
        "Beyond it more of the same statement is repetition: capture samples it down, even when "
        "ruvector.dag_worker_cpu_percent would allow more.  Queries being steered are exempt.",
    ),
    RealSetting(
        "dag_capture_settled_fraction", 0.125, 0.0, 1.0, "PGC_SIGHUP",
        "Fraction of the executions of a settled, expensive query that are captured.",
        f"Settled: not being steered, {SETTLE_RUNS} executions under its arm averaging "
        f"{SETTLE_MIN_US / 1000:g} ms or more.  Row "
        "instrumentation costs a long analytic query a few per cent; 1 captures every execution.",
    ),
    BoolSetting(
        "dag_steering_trials", True, "PGC_SIGHUP",
        "Try each exploratory steering arm in the background worker before any user's query runs with it.",
        "The worker runs the statement under the default plan and then under the arm, read-only and "
        f"as the role that ran it, and cancels the arm at {BAN_FACTOR:g} times the default's time: an "
        "arm that does not finish is never used.  On, queries whose statement cannot be tried (not a "
        "plain SELECT, parameters of user-defined types, another database than "
        "ruvector.dag_worker_database) are not explored; "
        "off, arms are explored on users' executions, bounded by count only.",
    ),
    BoolSetting(
        "dag_transfer", True, "PGC_SIGHUP",
        "Give a new query the arm the queries of its learned pattern agree on, as its first candidate.",
        "After a query's first execution its plan is matched against the table's learned patterns; "
        "an arm the pattern's steered queries found clearly faster is tried at once (a trial, when "
        "ruvector.dag_steering_trials is on) instead of after the default's baseline.  Backends then "
        "offer the text of each query's first execution in a session, for that trial.",
    ),
    BoolSetting(
        "dag_transfer_patterns", True, "PGC_SIGHUP",
        "Transfer only from the queries of the new query's learned pattern (off: from every query of the table).",
        "An ablation switch (docs/benchmarks.md): the ReasoningBank's part in transfer.",
    ),
    BoolSetting(
        "dag_transfer_lora", False, "PGC_SIGHUP",
        "Weigh transfer's voters by distance in a MicroLoRA-adapted plan embedding (off: the raw one).",
        "The adapter learns to put queries whose winning arms agree close together.  Off by default: "
        "on the benchmark's query families it changed no decision on top of the learned patterns "
        "(docs/benchmarks.md, ablation).",
    ),
    BoolSetting(
        "dag_transfer_ewc", True, "PGC_SIGHUP",
        "Train transfer's MicroLoRA adapter under EWC++ (off: plain SGD); acts only with ruvector.dag_transfer_lora.",
        "EWC++ keeps what the adapter learned on one family of queries when it learns another.",
    ),
    BoolSetting(
        "dag_transfer_attention", False, "PGC_SIGHUP",
        "Transfer in the embedding of the attention mechanism that predicted arms best (off: the canonical one).",
        "Off by default: on the benchmark's query families it changed no decision "
        "(docs/benchmarks.md, ablation), and it embeds each new query's plan seven times.",
    ),
    BoolSetting(
        "dag_trial_privileged_statements", False, "PGC_SIGHUP",
        "Also try the statements of superusers and of members of pg_execute_server_program.",
        "Off (the default), such statements are not tried and so not explored: a trial replays a "
        "statement as its own roles, and these roles can do anything a function they call does.  "
        "See docs/security.md.",
    ),
    StringSetting(
        "dag_trial_trusted_roles", "", "PGC_SIGHUP",
        "Roles whose functions a trial may call, besides superusers' (comma-separated role names).",
        "A trial refuses to call any function that is not built in unless its owner is a superuser "
        "or one of these roles; the statement is then not explored.  See docs/security.md.",
    ),
    RealSetting(
        "dag_capture_sample_rate", 1.0, 0.0, 1.0, "PGC_SUSET",
        "Largest fraction of statements on enrolled tables that are captured.",
        "As auto_explain.sample_rate.  The background worker lowers the fraction further while "
        "statements arrive faster than its CPU budget can learn from them.  Whatever the fraction, "
        "a session captures the first execution of each query, and every execution of the queries "
        "being steered.",
    ),
    StringSetting(
        "dag_worker_database", "postgres", "PGC_POSTMASTER",
        "Database the background worker connects to.",
        "The ruvector_dag extension must be created in this database.",
    ),
    StringSetting(
        "python_path", "", "PGC_SUSET",
        "Extra directories prepended to the embedded interpreter's sys.path.",
        "Colon-separated. Read once, when a process first starts its interpreter.",
    ),
    StringSetting(
        "numba_cache_dir", "", "PGC_SUSET",
        "Directory of the on-disk Numba kernel cache.",
        "Empty means ~/.cache/ruvector_dag of the server's OS user (<tmp>/ruvector_dag_cache-<uid> without "
        "a home), never the data directory. Must be a directory of the server's user, writable by nobody else.",
    ),
)


# --------------------------------------------------------------------------
# Names of the settings the engine's Python reads, typed by accessor
# --------------------------------------------------------------------------
# Snapshot.flag/number/text take these types, not str: a misspelt constant fails at import time
# (and in ruff and mypy), a bare string or a name of the wrong kind fails in mypy, and each
# constant is checked against SETTINGS when this module is imported.  Add one here when Python
# reads another setting.

FlagName = NewType("FlagName", str)
NumberName = NewType("NumberName", str)
TextName = NewType("TextName", str)


def _declared(name: str, *kinds: type) -> str:
    found = [s for s in SETTINGS if s.name == name]
    if not found or not isinstance(found[0], kinds):
        raise AssertionError(f"no {'/'.join(k.__name__ for k in kinds)} named {name!r} in SETTINGS")
    return name


def _flag(name: str) -> FlagName:
    return FlagName(_declared(name, BoolSetting))


def _number(name: str) -> NumberName:
    return NumberName(_declared(name, IntSetting, RealSetting))


def _text(name: str) -> TextName:
    return TextName(_declared(name, StringSetting, EnumSetting))


DAG_STEERING_TRIALS = _flag("dag_steering_trials")
DAG_TRANSFER = _flag("dag_transfer")
DAG_TRANSFER_PATTERNS = _flag("dag_transfer_patterns")
DAG_TRANSFER_LORA = _flag("dag_transfer_lora")
DAG_TRANSFER_EWC = _flag("dag_transfer_ewc")
DAG_TRANSFER_ATTENTION = _flag("dag_transfer_attention")
DAG_WORKER_CPU_PERCENT = _number("dag_worker_cpu_percent")
DAG_LEARN_QUERY_RATE = _number("dag_learn_query_rate")
DAG_CAPTURE_SETTLED_FRACTION = _number("dag_capture_settled_fraction")
DAG_LEARNING_MODE = _text("dag_learning_mode")


#: Settings under which the worker learns from every statement captured, as fast as it can:
#: no CPU budget, no rate cap (the tests, so that counts are exact; reproducible experiments).
EXACT_LEARNING: dict[str, str | int | float] = {
    f"{PREFIX}.{DAG_WORKER_CPU_PERCENT}": 100,
    f"{PREFIX}.{DAG_LEARN_QUERY_RATE}": 1000000.0,
    f"{PREFIX}.{DAG_CAPTURE_SETTLED_FRACTION}": 1.0,
}


def by_name() -> dict[str, Setting]:
    """Settings keyed by their name without the ``ruvector.`` prefix."""
    return {s.name: s for s in SETTINGS}


def default_of(name: str) -> Any:
    """The default of setting ``name`` (without the prefix): what the engine's configurations start from."""
    return by_name()[name].default


def per_table_names() -> tuple[str, ...]:
    """Names of the settings a table may override (keys of an enrollment config), in declaration order."""
    return tuple(s.name for s in SETTINGS if not isinstance(s, StringSetting) and s.per_table)


# --------------------------------------------------------------------------
# Reading the settings in the server: one accessor, one typed snapshot
# --------------------------------------------------------------------------

SettingValue = bool | int | float | str


class SettingSource(Protocol):
    """Where the current values come from: ``_ruvector_pg`` (its ``setting``), or a test's fake."""

    def setting(self, name: str, /) -> str | None: ...


def parse(s: Setting, text: str | None) -> SettingValue:
    """The typed value of ``s`` from its text as PostgreSQL gives it (GetConfigOption: plain numbers,
    on/off, enum names); its default when the server does not know it or the text does not parse."""
    if text is None:
        return s.default
    try:
        if isinstance(s, BoolSetting):
            return text.strip().lower() in ("on", "true", "yes", "1")
        if isinstance(s, IntSetting):
            return int(text)
        if isinstance(s, RealSetting):
            return float(text)
    except ValueError:
        return s.default
    return text


@dataclass(frozen=True)
class Snapshot:
    """The ``ruvector.*`` settings at one moment, typed (names without the prefix).

    Read one with the accessor of its kind and its name constant: ``snapshot.number(DAG_WORKER_CPU_PERCENT)``.
    """

    values: Mapping[str, SettingValue]

    def _get(self, name: str, kind: type) -> SettingValue:
        value = self.values[name]  # (a KeyError names a setting that does not exist)
        assert isinstance(value, kind) or (kind is float and isinstance(value, int)), (name, value)
        return value

    def flag(self, name: FlagName) -> bool:
        return bool(self._get(name, bool))

    def number(self, name: NumberName) -> float:
        return float(self._get(name, float))

    def text(self, name: TextName) -> str:
        return str(self._get(name, str))


def defaults() -> Snapshot:
    """Every setting at its default."""
    return Snapshot(MappingProxyType({s.name: s.default for s in SETTINGS}))


def read(source: SettingSource) -> Snapshot:
    """Every setting's current value, read once (the worker's Python reads settings only through this)."""
    return Snapshot(MappingProxyType({s.name: parse(s, source.setting(f"{PREFIX}.{s.name}")) for s in SETTINGS}))


# --------------------------------------------------------------------------
# guc_defs.h: the C view of these settings
# --------------------------------------------------------------------------

def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _c_real(value: float) -> str:
    text = repr(float(value))
    return text if ("." in text or "e" in text) else text + ".0"


def render_header() -> str:
    """Text of ``pgext/src/guc_defs.h``: the C X-macro table of every setting."""
    lines = [
        "/*",
        " * guc_defs.h",
        " *\t\tGENERATED by `python build.py generate` from ruvector_dag/definitions/settings.py.",
        " *\t\tDo not edit: change settings.py and regenerate (a unit test checks).",
        " *",
        " * Each line is an X-macro; the includer defines RVD_GUC_BOOL, _INT, _REAL,",
        " * _STRING and _ENUM.  per_table (all but _STRING, after the context) is",
        " * true for a setting a table's enrollment config may override.  Enum",
        " * choices are RVD_ENUM_OPTIONS_<name> below.",
        " */",
        "",
    ]
    for s in SETTINGS:
        desc = f"{_c_string(s.short_desc)}, {_c_string(s.long_desc)}"
        if isinstance(s, StringSetting):
            lines.append(f"RVD_GUC_STRING({s.name}, {_c_string(s.default)}, {s.context}, {desc})")
            continue
        ctx = f"{s.context}, {'true' if s.per_table else 'false'}"
        if isinstance(s, BoolSetting):
            lines.append(f"RVD_GUC_BOOL({s.name}, {'true' if s.default else 'false'}, {ctx}, {desc})")
        elif isinstance(s, IntSetting):
            unit = "GUC_UNIT_MS" if s.unit == "ms" else "0"
            lines.append(f"RVD_GUC_INT({s.name}, {s.default}, {s.min}, {s.max}, {ctx}, {unit}, {desc})")
        elif isinstance(s, RealSetting):
            lines.append(
                f"RVD_GUC_REAL({s.name}, {_c_real(s.default)}, {_c_real(s.min)}, {_c_real(s.max)}, "
                f"{ctx}, {desc})"
            )
        else:
            lines.append(f"RVD_GUC_ENUM({s.name}, {s.choices.index(s.default)}, {ctx}, {desc})")
    lines.append("")
    for s in SETTINGS:
        if isinstance(s, EnumSetting):
            entries = ", ".join(f"{{{_c_string(c)}, {i}, false}}" for i, c in enumerate(s.choices))
            lines.append(f"#define RVD_ENUM_OPTIONS_{s.name} {{{entries}, {{NULL, 0, false}}}}")
            for i, c in enumerate(s.choices):
                lines.append(f"#define RVD_{s.name.upper()}_{c.upper()} {i}")
    return "\n".join(lines) + "\n"
