"""Decoding the shim's trajectory records (cffi layout, NumPy node arrays)."""

from __future__ import annotations

import numpy as np
import pytest

from ruvector_dag.definitions import layout
from ruvector_dag.engine import trajectory


def _records(n_nodes: list[int]) -> bytes:
    ffi = layout.ffi()
    recs = ffi.new(f"RvdTrajectory[{len(n_nodes)}]")
    for i, n in enumerate(n_nodes):
        r = recs[i]
        r.seq, r.query_id, r.captured_at, r.relid = i + 1, 1000 + i, 5_000_000, 16384
        r.execution_us, r.rows_processed, r.shared_blks_hit, r.shared_blks_read = 12.5, 7, 3, 1
        r.n_nodes = r.total_nodes = n
        r.version = layout.RECORD_VERSION
        for j in range(n):
            node = r.nodes[j]
            node.op, node.parent, node.plan_rows, node.actual_rows, node.loops = j + 1, j - 1, 10.0 * j, j, 1
    return bytes(ffi.buffer(recs))


def test_node_dtype_matches_cffi_layout() -> None:
    ffi = layout.ffi()
    dtype = trajectory.node_dtype()
    assert dtype.itemsize == ffi.sizeof("RvdPlanNode")
    assert list(dtype.names or ()) == layout.struct_fields("RvdPlanNode")
    for name in layout.struct_fields("RvdPlanNode"):
        assert dtype.fields[name][1] == ffi.offsetof("RvdPlanNode", name)


def test_decode_round_trip() -> None:
    out = trajectory.decode(_records([3, 0, layout.MAX_PLAN_NODES]))
    assert [t.seq for t in out] == [1, 2, 3]
    first = out[0]
    assert first.query_id == 1000 and first.relid == 16384 and first.execution_us == 12.5
    assert first.captured_at_us == trajectory.POSTGRES_EPOCH_US + 5_000_000
    assert first.cache_hit_rate == pytest.approx(0.75)
    assert first.nodes["parent"].tolist() == [-1, 0, 1]
    np.testing.assert_array_equal(first.nodes["plan_rows"], [0, 10, 20])
    assert first.operators == [layout.operator_name(c) for c in (1, 2, 3)]
    assert len(out[1].nodes) == 0 and len(out[2].nodes) == layout.MAX_PLAN_NODES
    assert not first.truncated


def test_decode_refuses_partial_or_foreign_records() -> None:
    data = _records([1])
    with pytest.raises(ValueError, match="whole number"):
        trajectory.decode(data[:-1])
    ffi = layout.ffi()
    rec = ffi.new("RvdTrajectory *")
    rec.version = layout.RECORD_VERSION + 1
    with pytest.raises(ValueError, match="layout version"):
        trajectory.decode(bytes(ffi.buffer(rec)))
    assert trajectory.decode(b"") == []
