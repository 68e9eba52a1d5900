"""The learning engine: plan features, attention, clustering, the pattern bank,
LoRA and EWC, the bandit, min-cut criticality, plan steering and the per-table
learner.  Pure NumPy/Numba: no PostgreSQL, no tools' dependencies.
"""
