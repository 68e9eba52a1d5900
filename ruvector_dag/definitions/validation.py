"""One vocabulary for the constraints on parameters (after scikit-learn's ``_param_validation``).

A constraint is an :class:`Interval` (integers or reals between bounds, each
bound open, closed or absent) or :class:`Options` (a set of allowed values).
:func:`validate` checks a value against one and raises
:class:`~ruvector_dag.definitions.errors.InvalidParameter` (SQLSTATE 22023)
with a message naming the parameter and what is allowed, e.g. ``exploration
must be in [0, 1], got 1.5``.  The engine's classes declare their parameters'
constraints with these instead of writing each check (and its message) by hand.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, TypeVar, cast

from .errors import InvalidParameter

T = TypeVar("T")

Closed = Literal["left", "right", "both", "neither"]


def _show(x: object) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


@dataclass(frozen=True)
class Interval:
    """Numbers of ``kind`` ("integer" or "real") in the interval from ``left`` to ``right``.

    ``None`` is an absent bound; ``closed`` says which present bounds belong to
    the interval.  NaN belongs to no interval; an infinite real only to an
    interval unbounded on that side.  bool is never a number here.
    """

    kind: Literal["integer", "real"]
    left: float | None
    right: float | None
    closed: Closed = "both"
    # Derived once: the check runs on every call of an attention function (a few microseconds each).
    _left_closed: bool = field(init=False, repr=False, compare=False)
    _right_closed: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in ("integer", "real"):
            raise ValueError(f"kind must be 'integer' or 'real', not {self.kind!r}")
        if self.closed not in ("left", "right", "both", "neither"):
            raise ValueError(f"closed must be left, right, both or neither, not {self.closed!r}")
        if self.left is not None and self.right is not None and not self.left <= self.right:
            raise ValueError(f"empty interval: {self.left} > {self.right}")
        object.__setattr__(self, "_left_closed", self.closed in ("left", "both"))
        object.__setattr__(self, "_right_closed", self.closed in ("right", "both"))

    def is_satisfied_by(self, value: object) -> bool:
        kind = type(value)
        # float and int are checked without the numbers ABCs (bool is neither: type(True) is bool)
        if kind is float or kind is int:
            x = float(cast(float, value))
            if self.kind == "integer" and kind is float and not (math.isfinite(x) and x.is_integer()):
                return False
        else:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                return False
            if self.kind == "integer" and not (isinstance(value, numbers.Integral)
                                               or (math.isfinite(value) and float(value).is_integer())):
                return False
            x = float(value)
        if x != x:  # NaN
            return False
        left, right = self.left, self.right
        if left is not None and (x < left or (x == left and not self._left_closed)):
            return False
        return right is None or not (x > right or (x == right and not self._right_closed))

    def __str__(self) -> str:
        what = "an integer " if self.kind == "integer" else ""
        if self.left is not None and self.right is not None:
            lb = "[" if self.closed in ("left", "both") else "("
            rb = "]" if self.closed in ("right", "both") else ")"
            return f"{what}in {lb}{_show(self.left)}, {_show(self.right)}{rb}"
        if self.left is not None:
            return f"{what}{'>=' if self.closed in ('left', 'both') else '>'} {_show(self.left)}"
        if self.right is not None:
            return f"{what}{'<=' if self.closed in ('right', 'both') else '<'} {_show(self.right)}"
        return "an integer" if self.kind == "integer" else "a number"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values."""

    values: tuple[object, ...]

    def __init__(self, values: Iterable[object]) -> None:
        object.__setattr__(self, "values", tuple(values))
        if not self.values:
            raise ValueError("Options needs at least one value")

    def is_satisfied_by(self, value: object) -> bool:
        return value in self.values

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


Constraint = Interval | Options

#: Shorthands for the usual constraints.
POSITIVE_INT = Interval("integer", 1, None)
NON_NEGATIVE_INT = Interval("integer", 0, None)
POSITIVE = Interval("real", 0.0, None, "neither")
NON_NEGATIVE = Interval("real", 0.0, None)
FINITE_NON_NEGATIVE = Interval("real", 0.0, math.inf, "left")
UNIT = Interval("real", 0.0, 1.0)  # [0, 1]
RATE = Interval("real", 0.0, 1.0, "right")  # (0, 1]
FINITE = Interval("real", -math.inf, math.inf, "neither")


def validate(name: str, value: T, constraint: Constraint) -> T:
    """``value`` if it satisfies ``constraint``; else InvalidParameter naming ``name`` and what is allowed."""
    if not constraint.is_satisfied_by(value):
        shown = _show(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else repr(value)
        raise InvalidParameter(f"{name} must be {constraint}, got {shown}")
    return value
