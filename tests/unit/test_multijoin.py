"""The multi-join workload's parameters: disjoint learning and measuring values, consistent with its correlations."""

from __future__ import annotations

import pytest

from ruvector_dag.tools import multijoin


@pytest.mark.parametrize("template", [*multijoin.TEMPLATES, *multijoin.UNSEEN])
def test_phases_use_disjoint_values_consistent_with_the_correlations(template: str) -> None:
    learn = multijoin.params(template, "learning", 30)
    measure = multijoin.params(template, "measuring", 30)
    assert learn == multijoin.params(template, "learning", 30)  # deterministic
    for key in ("region", "brand", "city", "country"):
        assert not {p[key] for p in learn} & {p[key] for p in measure}, key
    for p in learn + measure:
        assert (p["segment"], p["tier"], p["zone"], p["band"]) == (p["region"] % 10, p["region"] % 5, p["region"] % 25,
                                                                     p["region"] % 2)  # the data's own rule
        assert p["category"] == p["brand"] % multijoin.CATEGORIES
        assert p["region_name"] == f"region {p['region']}"


def test_templates_take_only_known_parameters() -> None:
    keys = set(multijoin.params("region_sales", "learning", 1)[0])
    for sql in [*multijoin.TEMPLATES.values(), *multijoin.UNSEEN.values()]:
        named = {part.split(")s")[0] for part in sql.split("%(")[1:]}
        assert named <= keys, named - keys


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        multijoin.params("region_sales", "later", 1)
    with pytest.raises(ValueError):
        multijoin.params("nope", "learning", 1)
    with pytest.raises(ValueError):
        multijoin.setup_sql(0)
