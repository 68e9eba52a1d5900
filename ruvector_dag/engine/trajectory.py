"""Decoding trajectory records written by the C shim.

The shim copies each captured statement into a fixed-size ``RvdTrajectory``
(declared once in :mod:`ruvector_dag.definitions.layout`).  The engine receives them as
raw bytes — from the ring in the background worker, or from
``ruvector_dag_buffered_records()`` — and decodes them here with cffi.  The
per-node arrays become one NumPy structured array whose field offsets are
cffi's, so the C layout is never re-declared in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from ..definitions import layout

#: NumPy type of each RvdPlanNode field (by its C type in layout.CDEF).
_NUMPY_TYPES = {
    "uint16_t": np.uint16, "int16_t": np.int16, "uint32_t": np.uint32, "int32_t": np.int32,
    "float": np.float32, "double": np.float64, "uint64_t": np.uint64, "int64_t": np.int64,
    "uint8_t": np.uint8,
}

#: PostgreSQL epoch (2000-01-01) minus the Unix epoch, in microseconds.
POSTGRES_EPOCH_US = 946_684_800_000_000


@cache
def node_dtype() -> np.dtype:
    """Structured dtype of RvdPlanNode with cffi's offsets and size."""
    ffi = layout.ffi()
    names, formats, offsets = [], [], []
    for field, ctype in ffi.typeof("RvdPlanNode").fields:
        names.append(field)
        formats.append(_NUMPY_TYPES[ctype.type.cname])
        offsets.append(ctype.offset)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                     "itemsize": ffi.sizeof("RvdPlanNode")})


@dataclass(frozen=True)
class Trajectory:
    """One captured statement: its metrics and its operator DAG (nodes in EXPLAIN's pre-order)."""

    seq: int
    query_id: int
    captured_at_us: int  # Unix epoch, microseconds
    dbid: int
    relid: int
    userid: int
    session_userid: int
    nesting_level: int
    planning_us: float
    execution_us: float
    rows_processed: int
    memory_bytes: int
    shared_blks_hit: int
    shared_blks_read: int
    total_nodes: int
    flags: int
    cmd_type: int
    nodes: np.ndarray  # node_dtype(), one row per stored node
    arm: int = 0  # steering arm the plan was made under (definitions.arms.ARMS)

    @property
    def truncated(self) -> bool:
        return bool(self.flags & layout.FLAG_TRUNCATED)

    @property
    def pinned(self) -> bool:
        """The arm was pinned by an administrator (ruvector_dag_pin_arm)."""
        return bool(self.flags & layout.FLAG_PINNED)

    @property
    def cache_hit_rate(self) -> float | None:
        total = self.shared_blks_hit + self.shared_blks_read
        return None if total == 0 else self.shared_blks_hit / total

    @property
    def operators(self) -> list[str]:
        return [layout.operator_name(int(op)) for op in self.nodes["op"]]


def decode(buffer: bytes | memoryview) -> list[Trajectory]:
    """Decode consecutive RvdTrajectory records (as the shim lays them out)."""
    ffi = layout.ffi()
    size = ffi.sizeof("RvdTrajectory")
    data = memoryview(buffer).cast("B")
    if len(data) % size != 0:
        raise ValueError(f"{len(data)} bytes is not a whole number of {size}-byte trajectory records")
    records = ffi.from_buffer("RvdTrajectory[]", data)
    nodes_offset = ffi.offsetof("RvdTrajectory", "nodes")
    dtype = node_dtype()
    out = []
    for i in range(len(data) // size):
        r: Any = records[i]
        if r.version != layout.RECORD_VERSION:
            raise ValueError(f"record {i} has layout version {r.version}, expected {layout.RECORD_VERSION}")
        n = min(int(r.n_nodes), layout.MAX_PLAN_NODES)
        nodes = np.frombuffer(data, dtype=dtype, count=n, offset=i * size + nodes_offset).copy()
        out.append(Trajectory(
            seq=int(r.seq), query_id=int(r.query_id), captured_at_us=int(r.captured_at) + POSTGRES_EPOCH_US,
            dbid=int(r.dbid), relid=int(r.relid), userid=int(r.userid), session_userid=int(r.session_userid),
            nesting_level=int(r.nesting_level),
            planning_us=float(r.planning_us), execution_us=float(r.execution_us),
            rows_processed=int(r.rows_processed), memory_bytes=int(r.memory_bytes),
            shared_blks_hit=int(r.shared_blks_hit), shared_blks_read=int(r.shared_blks_read),
            total_nodes=int(r.total_nodes), flags=int(r.flags), cmd_type=int(r.cmd_type), nodes=nodes,
            arm=int(r.arm),
        ))
    return out
