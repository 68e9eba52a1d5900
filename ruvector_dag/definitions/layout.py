"""The one definition of the trajectory record that C writes and Python reads.

Backends write fixed-size records into a shared-memory ring
(``pgext/src/ring.c``); the engine reads them through cffi.  Both sides use
the C declarations below: the build writes them into
``pgext/src/trajectory_defs.h`` (``python build.py generate``) and
:func:`ffi` hands the very same text to ``cffi.FFI.cdef``.  A test compares the
C compiler's ``sizeof``/``offsetof`` (reported by ``ruvector_dag_record_layout()``)
with cffi's.

Operators are stored as a small stable code (an index into :data:`OPERATORS`)
rather than PostgreSQL's NodeTag, whose numbers change between majors.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

#: Plan nodes per record; larger plans are truncated (flagged, never dropped).
MAX_PLAN_NODES = 64
#: Bumped whenever the record layout changes.
RECORD_VERSION = 3

#: (PostgreSQL NodeTag, EXPLAIN "Node Type"); code = index + 1, 0 = other.
OPERATORS: tuple[tuple[str, str], ...] = (
    ("T_Result", "Result"),
    ("T_ProjectSet", "ProjectSet"),
    ("T_ModifyTable", "ModifyTable"),
    ("T_Append", "Append"),
    ("T_MergeAppend", "Merge Append"),
    ("T_RecursiveUnion", "Recursive Union"),
    ("T_BitmapAnd", "BitmapAnd"),
    ("T_BitmapOr", "BitmapOr"),
    ("T_SeqScan", "Seq Scan"),
    ("T_SampleScan", "Sample Scan"),
    ("T_IndexScan", "Index Scan"),
    ("T_IndexOnlyScan", "Index Only Scan"),
    ("T_BitmapIndexScan", "Bitmap Index Scan"),
    ("T_BitmapHeapScan", "Bitmap Heap Scan"),
    ("T_TidScan", "Tid Scan"),
    ("T_TidRangeScan", "Tid Range Scan"),
    ("T_SubqueryScan", "Subquery Scan"),
    ("T_FunctionScan", "Function Scan"),
    ("T_TableFuncScan", "Table Function Scan"),
    ("T_ValuesScan", "Values Scan"),
    ("T_CteScan", "CTE Scan"),
    ("T_NamedTuplestoreScan", "Named Tuplestore Scan"),
    ("T_WorkTableScan", "WorkTable Scan"),
    ("T_ForeignScan", "Foreign Scan"),
    ("T_CustomScan", "Custom Scan"),
    ("T_NestLoop", "Nested Loop"),
    ("T_MergeJoin", "Merge Join"),
    ("T_HashJoin", "Hash Join"),
    ("T_Material", "Materialize"),
    ("T_Memoize", "Memoize"),
    ("T_Sort", "Sort"),
    ("T_IncrementalSort", "Incremental Sort"),
    ("T_Group", "Group"),
    ("T_Agg", "Aggregate"),
    ("T_WindowAgg", "WindowAgg"),
    ("T_Unique", "Unique"),
    ("T_Gather", "Gather"),
    ("T_GatherMerge", "Gather Merge"),
    ("T_Hash", "Hash"),
    ("T_SetOp", "SetOp"),
    ("T_LockRows", "LockRows"),
    ("T_Limit", "Limit"),
)

#: Flags of a record.
FLAG_TRUNCATED = 1  # the plan had more than MAX_PLAN_NODES nodes
FLAG_TIMING = 2  # per-node actual_ms was measured (ruvector.dag_capture_timing)
FLAG_PINNED = 4  # the arm was pinned by an administrator (the engine learns from it, never replaces it)

CDEF = f"""
typedef struct RvdPlanNode
{{
    uint16_t op;             /* operator code, see OPERATORS; 0 = other */
    int16_t  parent;         /* index of the parent node, -1 for the root */
    uint32_t relid;          /* relation scanned, 0 if none */
    float    plan_rows;      /* planner's row estimate (per loop) */
    float    startup_cost;
    float    total_cost;
    int32_t  plan_width;
    float    actual_rows;    /* rows produced, summed over loops */
    float    loops;          /* times the node was started */
    float    actual_ms;      /* total time in the node, if measured, else -1 */
    uint32_t reserved;
}} RvdPlanNode;

typedef struct RvdTrajectory
{{
    uint64_t seq;            /* ring sequence number, from 1 */
    uint64_t query_id;       /* pg_stat_statements-compatible query id, 0 if none */
    int64_t  captured_at;    /* TimestampTz: microseconds since 2000-01-01 */
    uint32_t dbid;
    uint32_t relid;          /* the enrolled relation the plan reads */
    uint32_t userid;         /* current_user of the execution */
    uint32_t session_userid; /* its session_user */
    int32_t  nesting_level;  /* 0 = top level */
    double   planning_us;    /* 0 for cached plans */
    double   execution_us;
    uint64_t rows_processed;
    uint64_t memory_bytes;   /* executor memory allocated */
    uint64_t shared_blks_hit;
    uint64_t shared_blks_read;
    uint16_t n_nodes;        /* nodes stored */
    uint16_t total_nodes;    /* nodes in the plan */
    uint16_t flags;          /* FLAG_* */
    uint8_t  cmd_type;       /* CmdType: 1 select, 2 update, 3 insert, 4 delete, 5 merge */
    uint8_t  version;        /* RECORD_VERSION */
    uint16_t arm;            /* steering arm the plan was made under (arms.ARMS), 0 = default */
    uint16_t reserved;
    RvdPlanNode nodes[{MAX_PLAN_NODES}];
}} RvdTrajectory;
"""


def struct_fields(struct: str) -> list[str]:
    """Field names of ``struct`` (RvdTrajectory or RvdPlanNode) in CDEF, in order."""
    body = CDEF.split(f"typedef struct {struct}")[1].split("}")[0]
    return re.findall(r"^\s*\w+\s+(\w+)(?:\[\w+\])?;", body, re.M)


def render_header() -> str:
    """Text of pgext/src/trajectory_defs.h."""
    fields = "".join(
        f"#define RVD_{name.upper()}_FIELDS(X) " + " ".join(f"X({f})" for f in struct_fields(struct)) + "\n"
        for struct, name in (("RvdTrajectory", "trajectory"), ("RvdPlanNode", "plan_node"))
    )
    ops = "\n".join(f"\tRVD_OP({tag}, {name!r})".replace("'", '"') for tag, name in OPERATORS)
    return (
        "/*\n * trajectory_defs.h\n"
        " *\t\tGENERATED by `python build.py generate` from ruvector_dag/definitions/layout.py.\n"
        " *\t\tDo not edit: the Python engine reads these records through cffi\n"
        " *\t\twith the same declarations (a test compares the layouts).\n */\n"
        "#ifndef RVD_TRAJECTORY_DEFS_H\n#define RVD_TRAJECTORY_DEFS_H\n\n"
        "#include <stdint.h>\n\n"
        f"#define RVD_MAX_PLAN_NODES {MAX_PLAN_NODES}\n"
        f"#define RVD_RECORD_VERSION {RECORD_VERSION}\n"
        f"#define RVD_FLAG_TRUNCATED {FLAG_TRUNCATED}\n"
        f"#define RVD_FLAG_TIMING {FLAG_TIMING}\n"
        f"#define RVD_FLAG_PINNED {FLAG_PINNED}\n"
        f"{CDEF}\n"
        "/* Field lists, for ruvector_dag_record_layout() (C offsets vs cffi's). */\n"
        f"{fields}\n"
        "/* Operator table: RVD_OP(NodeTag, EXPLAIN name); code = position + 1. */\n"
        f"#define RVD_OPERATOR_LIST \\\n{ops.replace(chr(10), ' ' + chr(92) + chr(10))}\n\n"
        "#endif\n"
    )


def operator_name(code: int) -> str:
    return OPERATORS[code - 1][1] if 1 <= code <= len(OPERATORS) else "Other"


@cache
def ffi() -> Any:
    """A cffi FFI that knows RvdTrajectory and RvdPlanNode."""
    import cffi  # type: ignore[import-untyped]

    f = cffi.FFI()
    f.cdef(CDEF)
    return f
