"""The attention mechanisms, each declared once: name, SQL arguments and their constraints, kernel, reference, doc.

A mechanism is written in several places: its SQL declaration
(``pgext/ruvector_dag--*.sql``), the SQL dispatch (:mod:`ruvector_dag.runtime.sqlapi`,
whose handlers are derived from :data:`MECHANISMS`), the validated Python
function (:mod:`ruvector_dag.engine.attention`, whose registry of ensemble
members and their defaults is derived from it too), the Numba kernel and the
NumPy reference.  Unit tests check that the SQL scripts declare exactly
these functions, that ``docs/attention.md`` lists exactly these mechanisms
and that each names a kernel and a reference that exist.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from ..definitions.validation import NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE, UNIT, Constraint, Interval

#: Any finite real (a logit bonus may be negative).
FINITE = Interval("real", -math.inf, math.inf, "neither")

#: Length of the extra tangent axis per unit of ln(1 + depth) in hierarchical_lorentz.
LORENTZ_DEPTH_SCALE = 1.0

#: How a SQL argument arrives and is converted: an array (wire format), an optional one,
#: a real, an integer, a jsonb config object (the mechanism's ``<name>_config``), attention type names.
ParamKind = Literal["array", "optional_array", "real", "int", "config", "names"]


@dataclass(frozen=True)
class Param:
    """One SQL argument of a mechanism after (query, ancestors)."""

    name: str
    kind: ParamKind
    constraint: Constraint | None = None  # scalars: what the Python function accepts

    def __post_init__(self) -> None:
        if self.kind not in ("array", "optional_array", "real", "int", "config", "names"):
            raise ValueError(f"unknown parameter kind {self.kind!r} of {self.name}")
        if self.constraint is not None and self.kind not in ("real", "int"):
            raise ValueError(f"{self.name}: only scalars carry a constraint")


@dataclass(frozen=True)
class Mechanism:
    """One attention mechanism (or the ensemble)."""

    name: str
    params: tuple[Param, ...]
    kernel: str  # function of ruvector_dag.engine.kernels.attention
    reference: str  # function of ruvector_dag.engine.attention_reference
    doc: str  # one line
    #: Arguments it runs with as an ensemble member, in the order of the kernel's parameter table
    #: (temperature, p1, p2); None: not a member (the ensemble itself).
    ensemble_defaults: Mapping[str, float] | None = None
    #: Rows of this array argument are weighted too (parallel_branch: n + m weights).
    extra_weights_from: str | None = None
    #: Fixed parameters when the mechanism pools a plan into an embedding (engine/features.py);
    #: None: not a pooling choice of ruvector.dag_attention_type.
    pooling: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate parameter names {names}")
        if self.extra_weights_from is not None and self.extra_weights_from not in names:
            raise ValueError(f"{self.name}: extra_weights_from names no parameter")

    @property
    def sql_name(self) -> str:
        return f"ruvector_attention_{self.name}"

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)


def _defaults(**values: float) -> Mapping[str, float]:
    return MappingProxyType(dict(values))


MECHANISMS: tuple[Mechanism, ...] = (
    Mechanism("topological", (Param("config", "config"),), "topological", "topological",
              "scaled dot-product attention with a positional decay; row 0 is the nearest ancestor",
              _defaults(temperature=1.0, decay_rate=0.1),
              pooling=_defaults(decay_rate=0.1, temperature=1.0)),
    Mechanism("causal_cone", (Param("depths", "array"), Param("decay_rate", "real", NON_NEGATIVE),
                              Param("max_depth", "int", NON_NEGATIVE_INT)),
              "causal_cone", "causal_cone",
              "attention restricted to ancestors within max_depth hops, decaying with depth",
              _defaults(temperature=1.0, decay_rate=0.1),
              pooling=_defaults(decay_rate=0.2, max_depth=4, temperature=1.0)),
    Mechanism("critical_path", (Param("is_critical", "array"), Param("boost", "real", FINITE)),
              "critical_path", "critical_path",
              "an additive logit boost for ancestors on the critical path",
              _defaults(temperature=1.0, boost=1.0),
              pooling=_defaults(boost=2.0, temperature=1.0)),
    Mechanism("mincut_gated", (Param("criticalities", "array"), Param("threshold", "real", UNIT)),
              "mincut_gated", "mincut_gated",
              "softmax gated by each ancestor's min-cut criticality, renormalised",
              _defaults(temperature=1.0, threshold=0.5),
              pooling=_defaults(threshold=0.1, temperature=1.0)),
    # curvature: either sign, its magnitude is used (engine.attention._curvature)
    Mechanism("hierarchical_lorentz", (Param("depths", "array"), Param("curvature", "real"),
                                       Param("temperature", "real", POSITIVE)),
              "hierarchical_lorentz", "hierarchical_lorentz",
              "softmax of minus the hyperbolic (Lorentz) distance; deeper ancestors lie farther out",
              _defaults(temperature=1.0, curvature=1.0, depth_scale=LORENTZ_DEPTH_SCALE),
              pooling=_defaults(curvature=1.0, temperature=1.0)),
    Mechanism("parallel_branch", (Param("parallel_nodes", "array"), Param("common_ancestor_mask", "array"),
                                  Param("cross_weight", "real", UNIT), Param("common_boost", "real", FINITE)),
              "parallel_branch", "parallel_branch",
              "one softmax over the ancestors and the parallel nodes (n + m weights)",
              _defaults(temperature=1.0, cross_weight=0.5, common_boost=1.0),
              extra_weights_from="parallel_nodes",
              pooling=_defaults(cross_weight=0.5, common_boost=1.0, temperature=1.0)),
    Mechanism("temporal_btsp", (Param("timestamps", "array"), Param("window_ms", "real", POSITIVE),
                                Param("boost", "real", FINITE)),
              "temporal_btsp", "temporal_btsp",
              "a logit bonus for ancestors seen within window_ms of the most recent one",
              _defaults(temperature=1.0, window_ms=1000.0, boost=1.0),
              pooling=_defaults(window_ms=2.0, boost=1.0, temperature=1.0)),
    Mechanism("ensemble", (Param("attention_types", "names"), Param("weights", "optional_array")),
              "ensemble", "ensemble",
              "a convex combination of the mechanisms above, each with its ensemble defaults"),
)

#: Ensemble members, in the order of the kernel's mechanism indices (and of the GUC's choices).
MEMBERS: tuple[Mechanism, ...] = tuple(m for m in MECHANISMS if m.ensemble_defaults is not None)


def by_name() -> dict[str, Mechanism]:
    return {m.name: m for m in MECHANISMS}
