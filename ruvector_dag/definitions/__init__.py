"""The contract between the C shim and the Python engine.

Everything the two sides must agree on is declared here once, in Python:
the GUCs (:mod:`.settings`), the trajectory record (:mod:`.layout`), the
steering arms (:mod:`.arms`), the names the C side imports and calls
(:mod:`.seam`) and the SQLSTATE-carrying exceptions the C bridge reports
(:mod:`.errors`).  ``python build.py generate`` renders the C headers from
these modules.  Nothing here imports the engine, the runtime or the tools.
"""
