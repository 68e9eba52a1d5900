"""The parameter-validation vocabulary (definitions/validation.py) and its use by the engine's classes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ruvector_dag.definitions.errors import InvalidParameter
from ruvector_dag.definitions.validation import POSITIVE_INT, RATE, UNIT, Interval, Options, validate
from ruvector_dag.engine.bandit import ThompsonBandit
from ruvector_dag.engine.ewc import OnlineEWC
from ruvector_dag.engine.learner import LearnerConfig
from ruvector_dag.engine.lora import MicroLoRA


@pytest.mark.parametrize(("constraint", "good", "bad"), [
    (UNIT, [0, 0.5, 1.0, np.float32(0.25)], [-0.1, 1.01, math.nan, True, "0.5", None]),
    (RATE, [1e-9, 1.0], [0.0, 1.5]),
    (POSITIVE_INT, [1, 3.0, np.int64(7)], [0, -1, 2.5, math.inf, False]),
    (Interval("real", -1.0, 1.0, "right"), [1.0, -0.999], [-1.0, 1.0001]),
    (Interval("real", 1.0, None), [1.0, math.inf], [0.999]),
    (Options(("a", "b")), ["a"], ["c", None]),
])
def test_constraints(constraint: object, good: list[object], bad: list[object]) -> None:
    for value in good:
        assert validate("p", value, constraint) is value  # type: ignore[arg-type]
    for value in bad:
        with pytest.raises(InvalidParameter, match=r"^p must be "):
            validate("p", value, constraint)  # type: ignore[arg-type]


def test_messages_name_the_parameter_and_the_allowed_range() -> None:
    with pytest.raises(InvalidParameter, match=r"exploration must be in \[0, 1\], got 1.5") as err:
        ThompsonBandit(3, exploration=1.5)
    assert err.value.sqlstate == "22023"
    with pytest.raises(InvalidParameter, match=r"learning_rate must be in \(0, 1\], got 0"):
        MicroLoRA(4, learning_rate=0.0)
    with pytest.raises(InvalidParameter, match=r"rank must be an integer >= 1, got 0"):
        MicroLoRA(4, rank=0)
    with pytest.raises(InvalidParameter, match=r"decay must be in \(0, 1\), got 1"):
        OnlineEWC(4, decay=1.0)
    with pytest.raises(InvalidParameter, match="attention_type must be one of 'auto', 'topological'"):
        LearnerConfig(attention_type="nope")


def test_empty_or_malformed_constraints_are_refused() -> None:
    with pytest.raises(ValueError):
        Interval("real", 1.0, 0.0)
    with pytest.raises(ValueError):
        Options(())
