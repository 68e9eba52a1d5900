"""The dashboard's pages: Dash (Flask, Plotly charts) and dash-cytoscape (Cytoscape.js graph layouts).

Four tabs: Overview (enrolled tables, capture over time, the worker and its
CPU budget, the learning mode), Tables (patterns, the learning curve, EWC
tasks), Steering (each steered query, its arms and evidence, its executions
before and after, pin / unpin), Plan (a plan as a DAG coloured by MinCut
criticality, estimated against actual rows, the steered plan beside the
default).

Every callback opens its own connection with the DSN the dashboard was
started with (:class:`data.Reader`), so the role in it decides what is
shown.  Every asset is served by the packages (``serve_locally``): the pages
work offline.  The server listens on 127.0.0.1 and answers only requests
that carry the token printed at start (:func:`guard`), so another local
user cannot act as the DSN's role through it.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from ..definitions.settings import LEARNING_MODES
from .data import DashboardError, PlanView, Reader, Sampler, finite

#: Host names a request may name (a DNS-rebinding page names its own).
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
#: Columns of the steering table, in order.
STEERING_COLUMNS = ("table_name", "query_id", "query", "arm", "state", "executions", "mean_latency_ms",
                    "p95_latency_ms", "speedup", "origin", "source")


def base_path(token: str) -> str:
    """The dashboard's URL path: every page, asset and update lives under the token."""
    return f"/{token}/"


def guard(server: Any, token: str) -> None:
    """Answer only local requests under the token's path (:func:`base_path`).

    The token is in the path, not a cookie: browsers send a cookie of
    127.0.0.1 to every port of it, so any local listener would receive it.
    Another web page cannot guess the path, and a request naming another host
    (DNS rebinding) is refused.
    """
    from flask import abort, request

    prefix = base_path(token)

    @server.before_request
    def _check() -> None:
        if request.host.rsplit(":", 1)[0] not in LOCAL_HOSTS:
            abort(403)
        if not hmac.compare_digest(request.path[:len(prefix)].encode(), prefix.encode()):
            abort(404)


# --------------------------------------------------------------------------
# What the pages draw (pure functions of the data; unit-tested)
# --------------------------------------------------------------------------

def criticality_colour(c: float) -> str:
    """Grey for 0 to red for 1 (MinCut criticality)."""
    c = min(max(float(c or 0.0), 0.0), 1.0)
    return f"rgb({int(170 + 85 * c)}, {int(170 * (1 - c))}, {int(170 * (1 - c))})"


def _rows_text(x: float | None) -> str:
    if x is None:
        return "?"
    return f"{x:,.0f}" if x >= 10 else f"{x:.3g}"


def node_label(view: PlanView, i: int) -> str:
    n = view.nodes[i]
    head = n.operator + (f" on {n.relation}" if n.relation else "")
    rows = f"est {_rows_text(n.plan_rows)}"
    if n.actual_rows is not None:
        rows += f" · actual {_rows_text(n.actual_rows)}"
        factor = n.misestimate
        if factor is not None and factor >= 1.05:
            rows += f" (×{factor:,.0f} off)" if factor >= 10 else f" (×{factor:.1f} off)"
    return f"{head}\n{rows}\ncriticality {view.criticality[i]:.2f}"


def plan_elements(view: PlanView) -> list[dict[str, Any]]:
    """Cytoscape elements of a plan: one node per operator (criticality colour, bottleneck flagged),
    one edge from each operator to the one that consumes its rows."""
    elements: list[dict[str, Any]] = []
    for i, n in enumerate(view.nodes):
        elements.append({"data": {"id": f"n{n.node_id}", "label": node_label(view, i),
                                  "colour": criticality_colour(view.criticality[i]),
                                  "criticality": view.criticality[i], "operator": n.operator,
                                  "misestimate": n.misestimate or 1.0},
                         "classes": "bottleneck" if view.bottleneck[i] else ""})
        if n.parent_id >= 0:
            elements.append({"data": {"id": f"e{n.node_id}", "source": f"n{n.parent_id}",
                                      "target": f"n{n.node_id}"}})
    return elements


#: Dagre (layered DAG drawing, sized nodes never overlap), the plan's root on top.
PLAN_LAYOUT = {"name": "dagre", "rankDir": "TB", "nodeSep": 25, "rankSep": 45}

PLAN_STYLESHEET = [
    {"selector": "node", "style": {"label": "data(label)", "background-color": "data(colour)",
                                   "shape": "round-rectangle", "width": 290, "height": 80, "text-wrap": "wrap",
                                   "text-valign": "center",
                                   "font-size": 15, "color": "#111", "border-width": 1, "border-color": "#666"}},
    {"selector": ".bottleneck", "style": {"border-width": 5, "border-color": "#d00000"}},
    {"selector": "edge", "style": {"curve-style": "bezier", "target-arrow-shape": "triangle",
                                   "source-arrow-shape": "none", "width": 2, "line-color": "#999",
                                   "target-arrow-color": "#999"}},
]


def plan_caption(view: PlanView) -> str:
    worst = max((n.misestimate or 1.0 for n in view.nodes), default=1.0)
    parts = [f"arm {view.arm}", f"{len(view.nodes)} operators", f"{sum(view.bottleneck)} bottleneck(s)"]
    if view.measured:
        parts.append(f"worst misestimate ×{worst:,.0f}" if worst >= 10 else f"worst misestimate ×{worst:.1f}")
    if view.total_ms is not None:
        parts.append(f"ran in {view.total_ms:.1f} ms")
    if not view.measured:
        parts.append("estimates only")
    return " · ".join(parts)


def operator_rows(view: PlanView) -> list[dict[str, Any]]:
    """The plan's operators as table rows (what the graph draws, readable and copyable)."""
    return [{"node": n.node_id, "parent": n.parent_id if n.parent_id >= 0 else None, "operator": n.operator,
             "relation": n.relation, "est_rows": n.plan_rows, "actual_rows": n.actual_rows,
             "misestimate": round(n.misestimate, 2) if n.misestimate is not None else None,
             "criticality": round(view.criticality[i], 3), "bottleneck": "yes" if view.bottleneck[i] else ""}
            for i, n in enumerate(view.nodes)]


OPERATOR_COLUMNS = ("node", "parent", "operator", "relation", "est_rows", "actual_rows", "misestimate",
                    "criticality", "bottleneck")


def steering_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steering view's rows as the browser's table holds them."""
    out = []
    for row in rows:
        shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}
        shown["transfer"] = json.dumps(row["transfer"]) if row.get("transfer") else None
        # Query ids are 64-bit: as JSON numbers the browser would round them (2^53), so text.
        shown["query_id"] = str(row["query_id"])
        out.append(shown)
    return out


def chosen_arms(rows: list[dict[str, Any]]) -> dict[str, str]:
    """The arm in force per steered query (state 'chosen'), from the steering view's rows."""
    return {str(r["query_id"]): str(r["arm"]) for r in rows if r.get("state") == "chosen"}


def series_figure(points: list[dict[str, Any]], query_id: int | str, chosen: str | None) -> Any:
    """A steered query's executions: one marker series per arm (trials as crosses), a line where
    steering began, log latency."""
    import plotly.graph_objects as go  # type: ignore[import-untyped]

    fig = go.Figure()
    for arm in sorted({p["arm"] for p in points}, key=lambda a: (a != "default", a)):
        for trial in (False, True):
            pts = [p for p in points if p["arm"] == arm and bool(p["trial"]) == trial]
            if pts:
                fig.add_trace(go.Scatter(
                    x=[p["executed_at"] for p in pts], y=[p["latency_ms"] for p in pts], mode="markers",
                    name=f"{arm} (trial)" if trial else arm,
                    marker={"symbol": "x" if trial else "circle", "size": 9 if trial else 7}))
    after = [p["executed_at"] for p in points if p["phase"] == "after"]
    if after:
        fig.add_vline(x=after[0], line_dash="dash", line_color="#444")
        fig.add_annotation(x=after[0], yref="paper", y=1.0, text="steered", showarrow=False, xanchor="left")
    title = f"query {query_id}: executions before and after"
    if chosen:
        title += f" (arm in force: {chosen})"
    fig.update_layout(title=title, xaxis_title="executed at", yaxis_title="latency (ms, log scale)",
                      yaxis_type="log", legend_title="arm", margin={"t": 50})
    return fig


def _when(ts: float) -> datetime:
    return datetime.fromtimestamp(ts)


# --------------------------------------------------------------------------
# The application
# --------------------------------------------------------------------------

def create_app(connect: Callable[[], Any], sampler: Sampler | None = None, token: str | None = None) -> Any:
    """The Dash application.

    ``connect()`` opens a psycopg connection (autocommit) as the dashboard's
    role; ``sampler`` holds the series over time (its owner samples it);
    ``token``, when given, is required of every request (:func:`guard`).
    """
    import dash_cytoscape as cyto  # type: ignore[import-untyped]
    import plotly.graph_objects as go
    import psycopg
    from dash import Dash, Input, Output, State, ctx, dash_table, dcc, html, no_update

    sampler = sampler or Sampler()
    cyto.load_extra_layouts()  # dagre, from the package's own bundle (served locally like the rest)

    @contextmanager
    def reader() -> Iterator[Reader]:
        with connect() as conn:
            yield Reader(conn)

    def refusal(exc: Exception) -> str:
        """The server's own words for a refusal (or ours)."""
        if isinstance(exc, psycopg.Error):
            diag = exc.diag
            return f"{diag.message_primary or exc} (SQLSTATE {diag.sqlstate})" if diag.sqlstate else str(exc)
        return str(exc)

    app = Dash(__name__, title="ruvector-dag", serve_locally=True, suppress_callback_exceptions=True,
               update_title="", url_base_pathname=base_path(token) if token else "/")
    if token:
        guard(app.server, token)

    def operator_table(table_id: str) -> Any:
        return dash_table.DataTable(  # type: ignore[attr-defined]
            id=table_id, data=[], columns=[{"name": c, "id": c} for c in OPERATOR_COLUMNS],
            style_cell={"fontSize": 11},
            style_data_conditional=[{"if": {"filter_query": '{bottleneck} = "yes"'}, "color": "#d00000",
                                     "fontWeight": "bold"}])

    graph_style = {"width": "49%", "height": "620px", "display": "inline-block", "border": "1px solid #ddd"}
    app.layout = html.Div(style={"fontFamily": "sans-serif", "margin": "0 1em"}, children=[
        html.H2("ruvector-dag", style={"marginBottom": 0}),
        html.Div(id="whoami", style={"color": "#555", "marginBottom": "0.5em"}),
        dcc.Interval(id="tick", interval=int(sampler.interval_s * 1000)),
        dcc.Tabs(id="tabs", value="overview", children=[
            dcc.Tab(label="Overview", value="overview", children=[
                html.Div(id="overview-summary"),
                dcc.Graph(id="overview-rates"),
                dcc.Graph(id="overview-cpu"),
                html.Div([html.Span("Learning mode: "),
                          dcc.RadioItems(id="mode-choice", options=list(LEARNING_MODES), inline=True,
                                         style={"display": "inline-block"}),
                          html.Button("Apply", id="mode-apply"),
                          html.Span(id="mode-message", style={"marginLeft": "1em"})]),
            ]),
            dcc.Tab(label="Tables", value="tables", children=[
                dcc.Dropdown(id="table-choice", placeholder="an enrolled table", clearable=False),
                html.Div(id="table-stats"),
                dcc.Graph(id="learning-curve"),
                html.H4("Learned patterns"),
                dash_table.DataTable(id="patterns-table", page_size=15, sort_action="native"),  # type: ignore[attr-defined]
            ]),
            dcc.Tab(label="Steering", value="steering", children=[
                dash_table.DataTable(  # type: ignore[attr-defined]
                    id="steering-table", row_selectable="single", page_size=15, sort_action="native",
                    columns=[{"name": c, "id": c} for c in STEERING_COLUMNS],
                    style_cell={"maxWidth": "420px", "overflow": "hidden", "textOverflow": "ellipsis",
                                "fontSize": 12},
                    style_data_conditional=[
                        {"if": {"filter_query": '{state} = "chosen"'}, "backgroundColor": "#e6f4ea"},
                        {"if": {"filter_query": '{state} = "banned"'}, "color": "#999"}]),
                html.Div([html.Button("Pin this arm", id="pin"), html.Button("Unpin", id="unpin"),
                          html.Button("Show its plan", id="to-plan"),
                          html.Span(id="steer-message", style={"marginLeft": "1em"})],
                         style={"margin": "0.5em 0"}),
                dcc.Graph(id="series"),
                html.Pre(id="evidence", style={"background": "#f6f6f6", "padding": "0.5em"}),
            ]),
            dcc.Tab(label="Plan", value="plan", children=[
                dcc.Dropdown(id="plan-source", placeholder="a steered query (or type one below)"),
                dcc.Textarea(id="plan-query", style={"width": "100%", "height": 90},
                             placeholder="a read-only query (SELECT ...)"),
                html.Div([html.Span("steered plan under arm: "),
                          dcc.Dropdown(id="plan-arm", clearable=True, style={"width": "16em",
                                                                             "display": "inline-block"}),
                          dcc.Checklist(id="plan-analyze", options=[
                              {"label": " run it for actual rows (EXPLAIN ANALYZE, read only)", "value": "analyze"}],
                                        value=[], inline=True, style={"display": "inline-block", "marginLeft": "1em"}),
                          html.Button("Draw", id="plan-draw", style={"marginLeft": "1em"})]),
                html.Div(id="plan-error", style={"color": "darkred"}),
                html.Div([html.Div(id="plan-default-caption", style={"width": "49%", "display": "inline-block"}),
                          html.Div(id="plan-steered-caption", style={"width": "49%", "display": "inline-block"})]),
                cyto.Cytoscape(id="plan-default", elements=[], stylesheet=PLAN_STYLESHEET, style=graph_style,
                               layout=PLAN_LAYOUT),
                cyto.Cytoscape(id="plan-steered", elements=[], stylesheet=PLAN_STYLESHEET, style=graph_style,
                               layout=PLAN_LAYOUT),
                html.Div([
                    html.Div(operator_table("plan-default-table"), style={"width": "49%", "display": "inline-block",
                                                                          "verticalAlign": "top"}),
                    html.Div(operator_table("plan-steered-table"), style={"width": "49%", "display": "inline-block",
                                                                          "verticalAlign": "top",
                                                                          "marginLeft": "1%"})]),
            ]),
        ]),
    ])

    # -- overview --------------------------------------------------------------

    @app.callback(Output("whoami", "children"), Input("tabs", "value"), prevent_initial_call=False)
    def whoami(_: str) -> Any:
        with reader() as r:
            line = (f"database {r.database} as role {r.role} · ruvector_dag {r.version} in schema {r.schema} · "
                    "the role's privileges decide what is shown")
            if not r.is_superuser:
                return line
        return [line, html.Div(
            "Connected as a superuser: texts you type on the Plan page are planned (and, if you tick it, run) "
            "with superuser rights. A monitoring role (pg_read_all_stats) sees the same pages.",
            id="superuser-warning", style={"color": "#8a4b00", "fontWeight": "bold"})]

    @app.callback(Output("overview-summary", "children"),
                  Output("overview-rates", "figure"), Output("overview-cpu", "figure"),
                  Output("mode-choice", "value"), Input("tick", "n_intervals"), Input("tabs", "value"))
    def overview(_: Any, tab: str) -> Any:
        if tab != "overview":  # (before connecting: a hidden page costs the server nothing)
            return no_update, no_update, no_update, no_update
        with reader() as r:
            settings = r.settings()
            capture = r.capture()
            worker = r.worker()
        mode = settings.get("ruvector.dag_learning_mode", "?")
        budget = settings.get("ruvector.dag_worker_cpu_percent", "?")
        worker_text = (f"connected (pid {worker['pid']}, {worker['state'] or 'idle'}, since "
                       f"{worker['backend_start']:%Y-%m-%d %H:%M:%S})" if worker else
                       "not connected (or not visible to this role)")
        table = dash_table.DataTable(  # type: ignore[attr-defined]
            id="capture-table", data=[{k: (round(v, 4) if isinstance(v, float) else v) for k, v in c.items()}
                                      for c in capture],
            columns=[{"name": k, "id": k} for k in ("table_name", "executions", "captured", "sampled_out",
                                                     "dropped", "buffered", "processed", "learned",
                                                     "capture_rate", "drop_rate")])
        summary = html.Div([
            html.P([html.B("Learning mode: "), mode, " · ", html.B("worker: "), worker_text, " · ",
                    html.B("CPU budget: "), f"{budget} % of one CPU", " · ",
                    html.B("steering: "), settings.get("ruvector.neural_dag_enabled", "?"), " · ",
                    html.B("trials: "), settings.get("ruvector.dag_steering_trials", "?"), " · ",
                    html.B("transfer: "), settings.get("ruvector.dag_transfer", "?")]),
            html.H4(f"Enrolled tables ({len(capture)})"), table])
        rates = go.Figure()
        for c in capture:
            series = sampler.rates(c["table_name"])
            for key, dash in (("executions", "solid"), ("captured", "dot"), ("dropped", "dash")):
                rates.add_trace(go.Scatter(x=[_when(p["at"]) for p in series], y=[p[key] for p in series],
                                           mode="lines", line={"dash": dash}, name=f"{c['table_name']} {key}"))
        rates.update_layout(title=f"Executions, captured and dropped per second (sampled every "
                                  f"{sampler.interval_s:g} s since the dashboard started)",
                            yaxis_title="per second", margin={"t": 50})
        cpu = go.Figure()
        use = sampler.worker_cpu_percent()
        cpu.add_trace(go.Scatter(x=[_when(p["at"]) for p in use], y=[p["percent"] for p in use], mode="lines",
                                 name="worker CPU"))
        if finite(budget) is not None:
            cpu.add_hline(y=float(budget), line_dash="dash", line_color="#d00000",
                          annotation_text=f"budget {budget} %")
        cpu.update_layout(title="The worker's CPU use, % of one CPU" + ("" if use else
                          " (not measured: the server is not on this host, or the worker is not connected)"),
                          margin={"t": 50})
        # The radio follows the server only when the page opens, not under a person's choice.
        return summary, rates, cpu, mode if ctx.triggered_id in (None, "tabs") else no_update

    @app.callback(Output("mode-message", "children"), Input("mode-apply", "n_clicks"),
                  State("mode-choice", "value"), prevent_initial_call=True)
    def set_mode(_: Any, mode: str | None) -> str:
        if not mode:
            return ""
        try:
            with reader() as r:
                r.set_learning_mode(mode)
            return f"learning mode set to {mode} (ALTER SYSTEM, reloaded)"
        except (psycopg.Error, DashboardError) as exc:
            return f"refused: {refusal(exc)}"

    # -- per table -------------------------------------------------------------

    @app.callback(Output("table-choice", "options"), Output("table-choice", "value"),
                  Input("tabs", "value"), State("table-choice", "value"))
    def tables(tab: str, current: str | None) -> Any:
        if tab != "tables":
            return no_update, no_update
        with reader() as r:
            names = [c["table_name"] for c in r.capture()]
        return names, current if current in names else (names[0] if names else None)

    @app.callback(Output("table-stats", "children"), Output("learning-curve", "figure"),
                  Output("patterns-table", "data"), Output("patterns-table", "columns"),
                  Input("table-choice", "value"), Input("tick", "n_intervals"), State("tabs", "value"))
    def table_page(table: str | None, _: Any, tab: str) -> Any:
        if not table or (ctx.triggered_id == "tick" and tab != "tables"):
            return no_update, no_update, no_update, no_update
        with reader() as r:
            stats = r.learning_stats(table)
            health = r.health(table)
            patterns = r.patterns(table)
        keys = ("queries_processed", "trajectories_learned", "patterns_stored", "pattern_hit_rate", "background_cycles",
                "ewc_tasks", "prediction_error", "attention_type", "last_cycle_ms", "last_cycle_at")
        issues = "; ".join(health.get("issues") or []) or "none"
        info = html.Div([html.P([html.B("healthy: "), str(health.get("healthy")), " · ", html.B("issues: "), issues]),
                         html.P(" · ".join(f"{k} {stats[k]:.4g}" if isinstance(stats.get(k), float) else
                                           f"{k} {stats.get(k)}" for k in keys if k in stats))])
        curve = sampler.learning_curve(table)
        fig = go.Figure()
        fig.add_trace(go.Scatter(x=[p["cycle"] for p in curve], y=[p["error"] for p in curve], mode="lines+markers",
                                 name="prediction error"))
        fig.add_trace(go.Scatter(x=[p["cycle"] for p in curve], y=[p["ewc_tasks"] for p in curve], mode="lines",
                                 name="EWC tasks", yaxis="y2", line={"dash": "dot"}))
        fig.update_layout(title="Learning curve: mean |log latency error| of each cycle's predictions"
                                + ("" if curve else " (appears as cycles run while the dashboard is open)"),
                          xaxis_title="learning cycle", yaxis_title="prediction error",
                          yaxis2={"title": "EWC tasks", "overlaying": "y", "side": "right"}, margin={"t": 50})
        shown = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in p.items()} for p in patterns]
        columns = [{"name": k, "id": k} for k in ("pattern_id", "attention_type", "confidence", "sample_count",
                                                   "avg_latency_ms", "avg_quality")]
        return info, fig, shown, columns

    # -- steering --------------------------------------------------------------

    def steering_rows() -> list[dict[str, Any]]:
        with reader() as r:
            return steering_table(r.steering())

    @app.callback(Output("steering-table", "data"), Output("steer-message", "children"),
                  Input("tabs", "value"), Input("pin", "n_clicks"), Input("unpin", "n_clicks"),
                  State("steering-table", "data"), State("steering-table", "selected_rows"))
    def steering(tab: str, _pin: Any, _unpin: Any, rows: list[dict[str, Any]] | None,
                 selected: list[int] | None) -> Any:
        message = ""
        if ctx.triggered_id in ("pin", "unpin"):
            if not rows or not selected:
                return no_update, "select a row first"
            row = rows[selected[0]]
            try:
                with reader() as r:
                    if ctx.triggered_id == "pin":
                        r.pin(int(row["query_id"]), str(row["arm"]))
                        message = f"pinned query {row['query_id']} to {row['arm']}"
                    else:
                        message = (f"unpinned query {row['query_id']}" if r.unpin(int(row["query_id"]))
                                   else f"query {row['query_id']} was not pinned")
            except (psycopg.Error, DashboardError) as exc:
                return no_update, f"refused: {refusal(exc)}"
        elif tab != "steering":
            return no_update, no_update
        return steering_rows(), message

    @app.callback(Output("series", "figure"), Output("evidence", "children"),
                  Input("steering-table", "selected_rows"), State("steering-table", "data"),
                  prevent_initial_call=True)
    def series(selected: list[int] | None, rows: list[dict[str, Any]] | None) -> Any:
        if not selected or not rows:
            return go.Figure(), ""
        row = rows[selected[0]]
        qid = str(row["query_id"])
        with reader() as r:
            points = r.series(int(qid))
        chosen = chosen_arms(rows).get(qid)
        evidence = [r for r in rows if str(r["query_id"]) == qid]
        def shown(v: Any, unit: str = "") -> str:
            return "-" if v is None else f"{v}{unit}"

        text = "\n".join(
            f"{e['arm']:<14} {e['state']:<8} executions {e['executions']:<5} "
            f"mean {shown(e['mean_latency_ms'], ' ms'):<11} p95 {shown(e['p95_latency_ms'], ' ms'):<11} "
            f"speed-up {shown(e['speedup']):<7} origin {shown(e['origin'])}"
            + (f"  transfer {e['transfer']}" if e.get("transfer") else "") for e in evidence)
        return series_figure(points, qid, chosen), f"{row['query']}\n\n{text}"

    def plan_choices() -> tuple[list[dict[str, str]], list[str]]:
        """The steered queries with a text the role may read, and the arms, for the plan page's lists."""
        with reader() as r:
            rows = r.steering()
            arms = [a for a in r.arms() if a != "default"]
        queries: dict[str, str] = {}
        for row in rows:
            if row.get("query"):
                queries.setdefault(str(row["query_id"]), f"{row['query_id']}: {row['query'][:140]}")
        return [{"label": v, "value": k} for k, v in queries.items()], arms

    @app.callback(Output("tabs", "value"), Output("plan-source", "options", allow_duplicate=True),
                  Output("plan-arm", "options", allow_duplicate=True), Output("plan-source", "value"),
                  Input("to-plan", "n_clicks"), State("steering-table", "data"),
                  State("steering-table", "selected_rows"), prevent_initial_call=True)
    def to_plan(_: Any, rows: list[dict[str, Any]] | None, selected: list[int] | None) -> Any:
        if not rows or not selected:
            return no_update, no_update, no_update, no_update
        # The lists come with the choice: the dropdown keeps a value only if it is one of its options.
        return ("plan", *plan_choices(), str(rows[selected[0]]["query_id"]))

    # -- plan ------------------------------------------------------------------

    @app.callback(Output("plan-source", "options"), Output("plan-arm", "options"), Input("tabs", "value"))
    def plan_lists(tab: str) -> Any:
        if tab != "plan":
            return no_update, no_update
        return plan_choices()

    @app.callback(Output("plan-query", "value"), Output("plan-arm", "value"), Input("plan-source", "value"),
                  prevent_initial_call=True)
    def plan_source(query_id: str | None) -> Any:
        if query_id is None:
            return no_update, no_update
        with reader() as r:
            rows = [row for row in r.steering() if str(row["query_id"]) == str(query_id)]
        text = next((row["query"] for row in rows if row.get("query")), None)
        chosen = chosen_arms(rows).get(str(query_id))
        return text or no_update, chosen if chosen and chosen != "default" else None

    @app.callback(Output("plan-default", "elements"), Output("plan-steered", "elements"),
                  Output("plan-default-caption", "children"), Output("plan-steered-caption", "children"),
                  Output("plan-default-table", "data"), Output("plan-steered-table", "data"),
                  Output("plan-error", "children"), Input("plan-draw", "n_clicks"), State("plan-query", "value"),
                  State("plan-arm", "value"), State("plan-analyze", "value"), prevent_initial_call=True)
    def draw(_: Any, query: str | None, arm: str | None, analyze: list[str] | None) -> Any:
        if not query or not query.strip():
            return [], [], "", "", [], [], "type a query, or choose a steered one"
        run = "analyze" in (analyze or [])
        try:
            with reader() as r:
                # A steered text another role ran is planned as that role, never run; edited, it is yours.
                author = r.steered_texts().get(query)
                as_role = author if author is not None and author != r.role else None
            views: list[PlanView | None] = []
            for plan_arm in ("default", arm):
                if plan_arm is None:
                    views.append(None)
                    continue
                with reader() as r:  # a fresh session per plan: a text can change its session's settings
                    views.append(r.plan(query, plan_arm, analyze=run, as_role=as_role))
        except (psycopg.Error, DashboardError) as exc:
            return [], [], "", "", [], [], f"refused: {refusal(exc)}"
        default, steered = views
        assert default is not None
        note = ""
        if as_role:
            note = f" · planned as {as_role}, who ran this text"
        if run and not default.measured:
            note += " · not run: a text with $n placeholders has only a generic plan"
        return (plan_elements(default), plan_elements(steered) if steered else [],
                "PostgreSQL's own plan: " + plan_caption(default) + note,
                ("steered: " + plan_caption(steered)) if steered else "choose an arm to draw the steered plan",
                operator_rows(default), operator_rows(steered) if steered else [], "")

    return app


def serve(dsn: str, port: int, token: str, announce: Callable[[str], None], interval_s: float = 5.0) -> None:
    """Run the dashboard on 127.0.0.1:port until interrupted, sampling the counters every ``interval_s``.

    The port is bound before ``announce(url)`` is called with the address: a
    port taken by someone else fails here (OSError), and the token is never
    printed for a server that is not ours.
    """
    import logging
    import threading

    import psycopg

    def connect() -> Any:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=10)

    with connect() as conn:  # a wrong DSN, or no extension, fails here with the server's words
        superuser = Reader(conn).is_superuser
    sampler = Sampler(interval_s=interval_s)
    stop = threading.Event()

    def sample_forever() -> None:
        while not stop.is_set():
            try:
                with connect() as conn:
                    sampler.sample(Reader(conn))
                sampler.last_error = None
            except Exception as exc:  # the server went away: keep trying, show the last error
                sampler.last_error = str(exc)
            stop.wait(sampler.interval_s)

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    app = create_app(connect, sampler, token)
    httpd = make_server("127.0.0.1", port, app.server, threaded=True)  # binds now (not app.run: its banner)
    thread = threading.Thread(target=sample_forever, name="ruvector-dag-sampler", daemon=True)
    thread.start()
    announce(f"http://127.0.0.1:{httpd.server_port}{base_path(token)}")
    if superuser:
        announce("  warning: the DSN's role is a superuser; the Plan page plans typed texts with its rights "
                 "(a monitoring role with pg_read_all_stats sees the same pages)")
    try:
        httpd.serve_forever()
    finally:
        stop.set()
        httpd.server_close()
