"""The engine's side of the background worker.

The worker process (``pgext/src/worker.c``) starts the embedded interpreter
once, right after it reloads the enrollments, and calls :func:`start`.
Compiling the Numba kernels there fills the on-disk cache
(``$PGDATA/ruvector_dag_cache``) before any session needs them, so a
session's first engine call loads compiled kernels instead of compiling them.
"""

from __future__ import annotations

import os
import time

from . import attention


def start() -> str:
    """Warm every kernel; return the line the worker logs."""
    began = time.perf_counter()
    attention.warm_up()
    elapsed_ms = (time.perf_counter() - began) * 1000.0
    return (f"engine ready: attention kernels warmed in {elapsed_ms:.0f} ms "
            f"(cache {os.environ.get('NUMBA_CACHE_DIR', 'in memory')})")
