"""One definition of each shared thing: settings, SQL names, wire format."""

from __future__ import annotations

import re
import struct

import numpy as np
import pytest

from ruvector_dag.definitions import settings
from ruvector_dag.definitions.errors import NullValueNotAllowed, RuvectorError
from ruvector_dag.runtime import sqlapi
from ruvector_dag.tools import buildext

SQL_SCRIPTS = sorted((buildext.PGEXT_DIR).glob("ruvector_dag--*.sql"))


def test_c_headers_are_generated_from_python() -> None:
    for path, text in buildext.generated_headers().items():
        assert path.read_text() == text, f"{path.name} is stale: run `python build.py generate`"


@pytest.mark.parametrize("s", settings.SETTINGS, ids=lambda s: s.name)
def test_setting_is_consistent(s: settings.Setting) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9_]*", s.name)
    if isinstance(s, (settings.IntSetting, settings.RealSetting)):
        assert s.min <= s.default <= s.max
    if isinstance(s, settings.EnumSetting):
        assert s.default in s.choices and len(set(s.choices)) == len(s.choices)


def test_spec_settings_are_all_present() -> None:
    spec = {"neural_dag_enabled", "dag_learning_rate", "dag_pattern_clusters", "dag_quality_threshold",
            "dag_max_trajectories", "dag_attention_type", "dag_attention_exploration", "dag_ewc_lambda",
            "dag_ewc_max_lambda", "dag_mincut_enabled", "dag_mincut_threshold", "dag_background_interval_ms"}
    assert spec <= set(settings.by_name())


def test_attention_choices_match_engine() -> None:
    from ruvector_dag.engine import attention

    assert tuple(attention.ATTENTION_TYPES) == settings.ATTENTION_MECHANISMS


def test_engine_entry_points_match_install_script() -> None:
    declared: set[str] = set()
    for script in SQL_SCRIPTS:
        text = script.read_text()
        for m in re.finditer(r"CREATE FUNCTION\s+([\w.]+)\s*\((?:(?!CREATE FUNCTION).)*?'rvd_engine_call'",
                             text, re.S):
            declared.add(m.group(1).split(".")[-1])
    assert declared, "no engine functions found in the install script"
    assert declared == set(sqlapi.registered_functions())


def test_unknown_sql_name_is_an_engine_error() -> None:
    with pytest.raises(RuvectorError, match="no entry point"):
        sqlapi.call("ruvector_no_such_function", ())


def test_wire_arrays_decode_with_their_sql_shape() -> None:
    payload = struct.pack("=6f", *range(6))
    arr = sqlapi.array_arg(("f4", (2, 3), payload), "ancestors")
    assert arr is not None and arr.shape == (2, 3) and arr.dtype == np.float32
    assert arr[1, 2] == 5.0
    empty = sqlapi.array_arg(("f4", (), b""), "ancestors")
    assert empty is not None and empty.shape == (0,)
    flags = sqlapi.array_arg(("?", (3,), bytes([1, 0, 1])), "is_critical")
    assert flags is not None and flags.tolist() == [True, False, True]
    names = sqlapi.array_arg(("U", (2,), ["a", "b"]), "attention_types")
    assert names is not None and names.tolist() == ["a", "b"]


@pytest.mark.parametrize("value", [None, ("f4", (2,), None), ("U", (2,), ["a", None])])
def test_wire_nulls_are_refused_naming_the_argument(value: object) -> None:
    with pytest.raises(NullValueNotAllowed, match="depths"):
        sqlapi.array_arg(value, "depths")
