"""ruvector-dag: a PostgreSQL extension that learns from the queries on enrolled tables.

The package holds the learning engine run by the extension's embedded
interpreter, the embedded-server helper (:mod:`ruvector_dag.server`), the build
(:mod:`ruvector_dag.buildext`) and the command line (:mod:`ruvector_dag.cli`).
"""

__version__ = "0.2.0"
