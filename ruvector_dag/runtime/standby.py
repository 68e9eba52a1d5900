"""What a hot standby learns, kept where a standby may write: a file of its own.

A standby cannot write a table, and its tables are the primary's (replayed
from WAL).  Its worker starts from the primary's learned state
(``ruvector_dag.engine_state``), learns from the standby's own executions in
memory, and keeps that in ``$PGDATA/pg_stat/ruvector_dag_standby.json``,
next to pg_stat_statements' ``pg_stat_statements.stat``:

* written (to a temporary name, fsynced, renamed) whenever the worker would
  have saved to the tables, at most :data:`~.publisher.SAVE_INTERVAL_S`
  apart and at shutdown, so the standby's restart and its crash keep it;
* read when the worker starts in recovery;
* written to the tables and removed at promotion; removed unread by a
  worker that starts on a primary (a primary's tables are the truth; a file
  left there came with a base backup of a standby, or predates a promotion
  the worker did not see).

Per table the file holds the learner's state (the same ``.npz`` bytes as
``engine_state.state``, no pickle), the primary's ``saved_at`` it builds on,
and the query ids the standby decided itself (its trials found a faster arm,
or its regression guard reverted one): those keep the standby's decision
when the primary saves a newer state, every other query follows the primary.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

#: The file, relative to the data directory.
FILE_NAME = Path("pg_stat") / "ruvector_dag_standby.json"
FORMAT_VERSION = 1


@dataclass
class TableStandbyState:
    """One table's learning on this standby."""

    state: bytes  # TableLearner.state_bytes()
    base_saved_at: str  # engine_state.saved_at of the primary's state it started from ("" if none)
    local: set[int] = field(default_factory=set)  # query ids the standby decided itself


class StandbyStateFile:
    """The standby's file: :meth:`load`, :meth:`write`, :meth:`remove`."""

    def __init__(self, data_directory: str | os.PathLike[str]) -> None:
        if not str(data_directory):
            raise ValueError("data_directory must not be empty")
        self.path = Path(data_directory) / FILE_NAME

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> dict[int, TableStandbyState]:
        """The tables in the file; empty if there is none or it cannot be read (the primary's state is used)."""
        try:
            doc = json.loads(self.path.read_text())
            if doc.get("version") != FORMAT_VERSION:
                return {}
            return {int(relid): TableStandbyState(base64.b64decode(t["state"]), str(t["base_saved_at"]),
                                                  {int(q) for q in t["local"]})
                    for relid, t in doc["tables"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    def write(self, tables: dict[int, TableStandbyState]) -> None:
        """Replace the file atomically and durably (a crash leaves the old file or the new one)."""
        doc = {"version": FORMAT_VERSION,
               "tables": {str(relid): {"state": base64.b64encode(t.state).decode(), "base_saved_at": t.base_saved_at,
                                       "local": sorted(t.local)} for relid, t in tables.items()}}
        self.path.parent.mkdir(mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".ruvector_dag_standby-")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(doc, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def remove(self) -> bool:
        try:
            self.path.unlink()
            return True
        except FileNotFoundError:
            return False

