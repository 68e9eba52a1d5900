"""ruvector-dag: a PostgreSQL extension that learns from the queries on enrolled tables.

Subpackages:

* :mod:`ruvector_dag.definitions`: the contract with the C shim (settings, record
  layout, arms, the seam's names, SQLSTATE-carrying errors); C headers are generated from it
* :mod:`ruvector_dag.engine`: the learning engine (NumPy + Numba)
* :mod:`ruvector_dag.runtime`: what runs inside the server (start-up, SQL dispatch,
  storage, the background worker)
* :mod:`ruvector_dag.tools`: the build, the embedded-server helper, the command line, the demo
"""

__version__ = "0.2.0"
