"""Start-up of the engine inside a PostgreSQL process.

The C bridge (``pgext/src/py_main.c``) imports this module first, before
anything heavy, and calls :func:`start`: process-wide environment that numba
and the BLAS libraries read at import time must be in place before they are
imported.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

#: Thread pools a database server must not grow: every backend is a process,
#: and a pool per process multiplies by max_connections.
_SINGLE_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def start(cache_dir: str) -> Callable[[str, tuple[Any, ...]], tuple[Any, list[str]]]:
    """Configure this process for the engine and return the SQL dispatcher.

    ``cache_dir`` is where numba keeps compiled kernels; it must be writable
    by the server user (the default is inside the data directory).
    """
    os.environ["NUMBA_CACHE_DIR"] = cache_dir
    for var in _SINGLE_THREAD_VARS:
        os.environ.setdefault(var, "1")
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
    except OSError:
        # numba falls back to compiling in memory; slower, never wrong.
        pass
    if not getattr(sys, "argv", None):
        sys.argv = ["postgres"]  # some libraries index sys.argv[0]

    from . import sqlapi

    return sqlapi.call
