"""The dashboard's pure parts: plan trees in MinCut's order, arm settings, series over time, the guard."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("dash")

from ruvector_dag.dashboard import app as dash_app
from ruvector_dag.dashboard.data import (
    DashboardError,
    PlanNode,
    PlanView,
    Sampler,
    explain_nodes,
    has_parameters,
    parse_arm_settings,
)
from ruvector_dag.definitions.arms import ARMS
from ruvector_dag.engine.mincut import nodes_from_explain


def _tree(draw: Any, depth: int = 0) -> dict[str, Any]:
    node: dict[str, Any] = {"Node Type": draw(st.sampled_from(["Hash Join", "Nested Loop", "Seq Scan",
                                                               "Index Scan", "Sort", "Aggregate"])),
                            "Plan Rows": draw(st.integers(0, 10**6)), "Total Cost": 1.0}
    if depth < 4:
        children = [_tree(draw, depth + 1) for _ in range(draw(st.integers(0, 2)))]
        if children:
            node["Plans"] = children
    return node


plans = st.composite(lambda draw: [{"Plan": _tree(draw)}])()


@settings(max_examples=60, deadline=None)
@given(plans)
def test_nodes_are_numbered_as_mincut_numbers_them(plan: list[dict[str, Any]]) -> None:
    ours = explain_nodes(plan)
    engine = nodes_from_explain(plan)  # the reference: what ruvector_dag._mincut_of_plan scores
    assert [n.parent_id for n in ours] == [int(p) for p in engine["parent"]]
    assert [n.plan_rows for n in ours] == [float(r) for r in engine["plan_rows"]]
    assert [n.node_id for n in ours] == list(range(len(ours)))


def test_actual_rows_and_misestimate() -> None:
    plan = [{"Plan": {"Node Type": "Nested Loop", "Plan Rows": 1, "Actual Rows": 5000, "Actual Loops": 1,
                      "Plans": [{"Node Type": "Seq Scan", "Relation Name": "trap_f", "Plan Rows": 400,
                                 "Actual Rows": 100, "Actual Loops": 1},
                                {"Node Type": "Index Scan", "Index Name": "trap_d_pkey", "Plan Rows": 0,
                                 "Actual Rows": 0, "Actual Loops": 100}]}}]
    nodes = explain_nodes(plan)
    assert [n.relation for n in nodes] == [None, "trap_f", "trap_d_pkey"]
    assert nodes[0].misestimate == pytest.approx(5000.0)
    assert nodes[1].misestimate == pytest.approx(4.0)  # over, counted the same way as under
    assert nodes[2].misestimate == pytest.approx(1.0)  # zero rows both ways is right, not infinitely wrong
    assert explain_nodes([{"Plan": {"Node Type": "Seq Scan", "Plan Rows": 3}}])[0].misestimate is None


def test_not_a_plan_is_refused() -> None:
    with pytest.raises(DashboardError):
        explain_nodes({"no": "plan"})


def test_arm_settings_parse_what_the_server_prints() -> None:
    for arm in ARMS:  # pgext/src/sql_steer.c prints "name = value" joined by ", "
        text = ", ".join(f"{n} = {v}" for n, v in arm.settings)
        assert parse_arm_settings(text) == list(arm.settings)
    with pytest.raises(DashboardError):
        parse_arm_settings("enable_nestloop off")


def test_parameters_are_found() -> None:
    assert has_parameters("SELECT * FROM t WHERE a = $1")
    assert not has_parameters("SELECT '$' FROM t")


class FakeReader:
    """What Sampler reads, from scripted counters."""

    def __init__(self) -> None:
        self.executions = 0
        self.captured = 0
        self.processed = 0
        self.cycles = 0
        self.error_sum = 0.0
        self.pid: int | None = None

    def capture(self) -> list[dict[str, Any]]:
        return [{"table_name": "t", "executions": self.executions, "captured": self.captured, "dropped": 0}]

    def learning_stats(self, table: str) -> dict[str, Any]:
        mean = self.error_sum / self.processed if self.processed else 0.0
        return {"queries_processed": self.processed, "background_cycles": self.cycles,
                "prediction_error": mean, "ewc_tasks": self.cycles // 2}

    def worker(self) -> dict[str, Any] | None:
        return {"pid": self.pid} if self.pid else None


def test_sampler_rates_and_learning_curve() -> None:
    s = Sampler(interval_s=1.0)
    r = FakeReader()
    s.sample(r, now=0.0)  # type: ignore[arg-type]
    errors = [0.9, 0.5, 0.2]
    for i, e in enumerate(errors, start=1):
        r.executions += 100
        r.captured += 50
        r.processed += 40
        r.error_sum += 40 * e  # this cycle's predictions were off by e on average
        r.cycles += 1
        s.sample(r, now=float(i) * 2)  # type: ignore[arg-type]
    rates = s.rates("t")
    assert [p["executions"] for p in rates] == [50.0, 50.0, 50.0]
    assert [p["captured"] for p in rates] == [25.0, 25.0, 25.0]
    curve = s.learning_curve("t")
    assert [p["cycle"] for p in curve] == [1, 2, 3]
    assert [p["error"] for p in curve] == pytest.approx(errors)  # per cycle, not the running mean
    r.executions = 0  # ruvector_dag_capture_reset(): no negative rate
    s.sample(r, now=10.0)  # type: ignore[arg-type]
    assert all(p["executions"] >= 0 for p in s.rates("t"))
    assert s.worker_cpu_percent() == []  # no worker visible: nothing measured, nothing invented
    with pytest.raises(ValueError):
        Sampler(interval_s=0)


def _view() -> PlanView:
    nodes = [PlanNode(0, -1, "Nested Loop", None, 1.0, 5000.0, 1.0),
             PlanNode(1, 0, "Seq Scan", "trap_f", 400.0, 100.0, 1.0)]
    return PlanView("default", nodes, [1.0, 0.2], [True, False], measured=True, total_ms=12.5)


def test_plan_elements_mark_the_bottleneck_and_the_misestimate() -> None:
    els = dash_app.plan_elements(_view())
    nodes = [e for e in els if "source" not in e["data"]]
    edges = [e for e in els if "source" in e["data"]]
    assert [n["classes"] for n in nodes] == ["bottleneck", ""]
    assert edges == [{"data": {"id": "e1", "source": "n0", "target": "n1"}}]
    assert "×5,000 off" in nodes[0]["data"]["label"] and "on trap_f" in nodes[1]["data"]["label"]
    assert nodes[0]["data"]["colour"] != nodes[1]["data"]["colour"]
    assert "1 bottleneck(s)" in dash_app.plan_caption(_view())


def test_series_figure_names_arms_and_trials() -> None:
    points = [{"executed_at": i, "arm": "default", "latency_ms": 100.0, "phase": "before", "trial": False}
              for i in range(3)]
    points += [{"executed_at": 3, "arm": "no_nestloop", "latency_ms": 5.0, "phase": "before", "trial": True},
               {"executed_at": 4, "arm": "no_nestloop", "latency_ms": 5.0, "phase": "after", "trial": False}]
    fig = dash_app.series_figure(points, 42, "no_nestloop")
    assert [t.name for t in fig.data] == ["default", "no_nestloop", "no_nestloop (trial)"]
    assert "no_nestloop" in fig.layout.title.text
    assert json.loads(fig.to_json())["layout"]["shapes"]  # the line where steering began


def test_guard_wants_the_token_path_and_a_local_host() -> None:
    from flask import Flask

    server = Flask("t")
    server.add_url_rule("/s3cret/", "root", lambda: "ok")
    server.add_url_rule("/s3cret/_dash-layout", "layout", lambda: "ok")
    server.add_url_rule("/", "bare", lambda: "ok")
    dash_app.guard(server, "s3cret")
    client = server.test_client()
    assert client.get("/").status_code == 404
    assert client.get("/s3cre/").status_code == 404
    assert client.get("/?token=s3cret").status_code == 404
    assert client.get("/s3cret/").status_code == 200
    assert client.get("/s3cret/_dash-layout").status_code == 200
    assert "Set-Cookie" not in client.get("/s3cret/").headers  # a cookie of 127.0.0.1 goes to every port
    assert client.get("/s3cret/", headers={"Host": "evil.example:8050"}).status_code == 403


def test_command_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from ruvector_dag.tools import cli

    args = cli.build_parser().parse_args(["dashboard", "--dsn", "dbname=x", "--port", "9000"])
    assert (args.dsn, args.port, args.func) == ("dbname=x", 9000, cli.cmd_dashboard)
    args = cli.build_parser().parse_args(["demo", "--no-dashboard"])
    assert args.no_dashboard and args.dashboard_port == 8050

    def missing(_: Any) -> int:
        raise ModuleNotFoundError("No module named 'dash'", name="dash")

    monkeypatch.setattr(cli, "cmd_dashboard", missing)
    assert cli.main(["dashboard", "--dsn", "dbname=x"]) == 1
    assert "pip install -e '.[tools]'" in capsys.readouterr().err


def test_query_ids_survive_the_browser() -> None:
    qid = -9069094832950615466  # a real one: beyond 2^53, a JSON number would come back rounded
    rows = dash_app.steering_table([{"query_id": qid, "arm": "no_nestloop", "state": "chosen", "speedup": 14.69326,
                                     "transfer": {"votes": 1}}])
    back = json.loads(json.dumps(rows))[0]
    assert int(back["query_id"]) == qid and back["speedup"] == 14.693 and json.loads(back["transfer"]) == {"votes": 1}
    assert dash_app.chosen_arms(back and [back]) == {str(qid): "no_nestloop"}
