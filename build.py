#!/usr/bin/env python3
"""Build the ruvector_dag C shim and install it into PostgreSQL (see `python build.py --help`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ruvector_dag.tools.buildext import main

if __name__ == "__main__":
    sys.exit(main())
