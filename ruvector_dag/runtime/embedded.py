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


#: Environment variable holding the kernel cache's description (for the worker's start line).
CACHE_INFO_VAR = "RUVECTOR_DAG_KERNEL_CACHE"


def start(cache_setting: str) -> Callable[[str, tuple[Any, ...]], tuple[Any, list[str]]]:
    """Configure this process for the engine and return the SQL dispatcher.

    ``cache_setting`` is ``ruvector.numba_cache_dir``: where numba keeps
    compiled kernels, empty for the default outside the data directory
    (:mod:`.kernel_cache`).
    """
    from . import kernel_cache  # standard library only: numba is not imported yet

    cache = kernel_cache.prepare(cache_setting)
    os.environ["NUMBA_CACHE_DIR"] = str(cache.path)
    os.environ[CACHE_INFO_VAR] = cache.describe()
    for var in _SINGLE_THREAD_VARS:
        os.environ.setdefault(var, "1")
    if not getattr(sys, "argv", None):
        sys.argv = ["postgres"]  # some libraries index sys.argv[0]

    from . import sqlapi

    return sqlapi.call
