"""The dashboard in a real browser (issue 19): Debian's headless Chromium driven by selenium.

A server runs the demo's workload (``ruvector-dag demo``'s own code), so the
skewed-join trap is steered.  The dashboard, served as the superuser who ran
the demo, must show the trap's decision with its arm, its executions before
and after, and its plan as a graph with the bottleneck marked, the steered
plan beside it.  Served as a role without privileges, it must show none of
it.  Screenshots go to ``RUVECTOR_SCREENSHOTS`` (docs/img/ when refreshing the
docs' pictures), else to the test's temporary directory.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("dash")
webdriver = pytest.importorskip("selenium.webdriver")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from ruvector_dag.dashboard.app import create_app  # noqa: E402
from ruvector_dag.dashboard.data import Reader, Sampler  # noqa: E402
from ruvector_dag.tools import demo, workloads  # noqa: E402
from ruvector_dag.tools.server import Server, free_port  # noqa: E402

pytestmark = pytest.mark.server

#: One major is enough for the browser (the SQL surface is tested on each): the first one asked for.
PG_VERSION = int(os.environ.get("RUVECTOR_TEST_PG", "16").split(",")[0])
NOBODY = "dash_nobody"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT_S = 30


def _wait(driver: Any, what: Callable[[Any], Any], message: str) -> Any:
    return WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(what, message)


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server on which the demo ran (as ``ruvector-dag demo`` runs it), the trap steered."""
    srv = Server(tmp_path_factory.mktemp("dashboard") / "data", pg_version=PG_VERSION)
    try:
        assert demo.run(srv, statements=200) == 0
        with srv.connect() as conn:
            conn.execute(f"CREATE ROLE {NOBODY} LOGIN")
            deadline = time.monotonic() + 90
            with srv.connect(user=workloads.APP_ROLE) as app:
                while not _trap_arm(conn) and time.monotonic() < deadline:  # a loaded machine: a few more runs
                    app.execute(workloads.QUERIES["skewed"]).fetchall()
                    time.sleep(0.3)
                conn.execute("SELECT ruvector_dag_learn('trap_f')")
            assert _trap_arm(conn), "the demo's trap was not steered"
        yield srv
    finally:
        srv.stop()


def _trap_arm(conn: Any) -> str | None:
    row = conn.execute("SELECT arm FROM ruvector_dag.steering WHERE table_name = 'trap_f'::regclass "
                       "AND state = 'chosen' AND arm <> 'default' LIMIT 1").fetchone()
    return row[0] if row else None


def _serve(srv: Server, user: str | None, sampler: Sampler) -> tuple[str, str]:
    """Serve a dashboard as ``user`` in a thread; its base URL and token."""
    def connect() -> Any:
        return srv.connect(user=user) if user else srv.connect()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    token = secrets.token_urlsafe(12)
    port = free_port()
    app = create_app(connect, sampler, token)
    threading.Thread(target=lambda: app.run(host="127.0.0.1", port=port, debug=False), daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"{base}/{token}/", timeout=2).read()
            return base, token
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module")
def sampled(demo_server: Server) -> Sampler:
    """Counters sampled while the workload and learning cycles go on, as the dashboard's thread does."""
    sampler = Sampler(interval_s=1.0)
    with demo_server.connect() as conn:
        for _ in range(4):
            sampler.sample(Reader(conn))
            for i in range(20):
                conn.execute("SELECT count(*) FROM demo_orders WHERE customer_id = %s", (i,)).fetchall()
            conn.execute("SELECT ruvector_dag_learn('demo_orders')")
            time.sleep(1.0)
        sampler.sample(Reader(conn))
    return sampler


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("CI"):
            pytest.fail("CI must install chromium and chromium-driver (apt-get, .ci/run)")
        pytest.skip("no chromium / chromedriver (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1250",
                "--disable-gpu"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = os.environ.get("RUVECTOR_SCREENSHOTS")
    path = Path(out) if out else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _tab(driver: Any, label: str) -> None:
    driver.find_element(By.XPATH, f"//div[contains(@class, 'tab') and normalize-space()='{label}']").click()


def _table_rows(driver: Any, table_id: str) -> list[dict[str, str]]:
    """The visible rows of a Dash DataTable, as {column id: text}."""
    rows = []
    for tr in driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr"):
        cells = tr.find_elements(By.CSS_SELECTOR, "td[data-dash-column]")
        if cells:
            rows.append({c.get_attribute("data-dash-column"): c.text for c in cells})
    return rows


def test_the_page_wants_its_token(demo_server: Server, sampled: Sampler) -> None:
    base, token = _serve(demo_server, None, sampled)
    for wrong in ("/", f"/?token={token}", f"/{token[:-1]}/"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}{wrong}", timeout=5)
        assert refused.value.code == 404
    page = urllib.request.urlopen(f"{base}/{token}/", timeout=5).read().decode()
    assert "cdn." not in page and "unpkg.com" not in page  # every asset from the package: works offline


def test_the_dba_sees_the_trap_steered_and_its_plan(demo_server: Server, sampled: Sampler, browser: Any,
                                                     shots: Path) -> None:
    with demo_server.connect() as conn:
        arm = _trap_arm(conn)
        conn.execute("SET ruvector.neural_dag_enabled = off")  # PostgreSQL's own plan, as the page draws it
        reference = [(r[0], round(r[1], 3), r[2]) for r in conn.execute(
            "SELECT operator, criticality, is_bottleneck FROM ruvector_dag_mincut_plan(%s)",
            (workloads.QUERIES["skewed"],)).fetchall()]
    assert arm
    base, token = _serve(demo_server, None, sampled)
    browser.get(f"{base}/{token}/")

    # Overview: the enrolled tables, the capture chart sampled over time, the learning mode.
    _wait(browser, lambda d: "Enrolled tables (" in d.find_element(By.ID, "overview-summary").text, "no overview")
    summary = browser.find_element(By.ID, "overview-summary").text
    assert "demo_orders" in summary and "trap_f" in summary and "Learning mode: learn" in summary
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#overview-rates .scatterlayer .trace"),
          "no capture chart")
    time.sleep(0.5)
    browser.save_screenshot(str(shots / "dashboard-overview.png"))

    # Tables: patterns and the learning curve of demo_orders.
    _tab(browser, "Tables")
    _wait(browser, lambda d: _table_rows(d, "patterns-table"), "no patterns")
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#learning-curve .scatterlayer .trace"),
          "no learning curve")

    # Steering: the trap's row names its chosen arm; its chart shows the executions before and after.
    _tab(browser, "Steering")
    _wait(browser, lambda d: any(r.get("table_name") == "trap_f" for r in _table_rows(d, "steering-table")),
          "no steered trap")
    rows = _table_rows(browser, "steering-table")
    chosen = [i for i, r in enumerate(rows) if r["table_name"] == "trap_f" and r["state"] == "chosen"]
    assert chosen and rows[chosen[0]]["arm"] == arm
    assert float(rows[chosen[0]]["speedup"]) > 1.5
    browser.find_elements(By.CSS_SELECTOR, "#steering-table tbody tr td.dash-select-cell input")[chosen[0]].click()
    _wait(browser, lambda d: f"arm in force: {arm}" in d.find_element(By.ID, "series").text, "no series chart")
    traces = browser.find_elements(By.CSS_SELECTOR, "#series .scatterlayer .trace")
    assert len(traces) >= 2  # the default's executions and the arm's
    assert "steered" in browser.find_element(By.ID, "series").text  # the line where steering began
    time.sleep(0.5)
    browser.save_screenshot(str(shots / "dashboard-steering.png"))

    # Plan: the trap's plan as a graph, bottleneck marked; the steered plan beside it.
    browser.find_element(By.ID, "to-plan").click()
    _wait(browser, lambda d: "$" in (d.find_element(By.ID, "plan-query").get_attribute("value") or ""),
          "the steered text did not arrive")
    browser.find_element(By.ID, "plan-draw").click()
    _wait(browser, lambda d: "operators" in d.find_element(By.ID, "plan-default-caption").text, "no plan drawn")
    default = _table_rows(browser, "plan-default-table")
    steered = _table_rows(browser, "plan-steered-table")
    assert len(default) >= 3 and any(r["bottleneck"] == "yes" for r in default)
    assert steered and [r["operator"] for r in steered] != [r["operator"] for r in default]
    assert f"arm {arm}" in browser.find_element(By.ID, "plan-steered-caption").text

    # A typed query, run for actual rows: the trap's misestimate shows.
    textarea = browser.find_element(By.ID, "plan-query")
    textarea.send_keys(Keys.CONTROL, "a")  # (clear() bypasses React: the old text would come back)
    textarea.send_keys(Keys.DELETE)
    textarea.send_keys(workloads.QUERIES["skewed"])
    browser.find_element(By.CSS_SELECTOR, "#plan-analyze input").click()
    browser.find_element(By.ID, "plan-draw").click()
    _wait(browser, lambda d: "worst misestimate" in d.find_element(By.ID, "plan-default-caption").text,
          "no measured plan: " + browser.find_element(By.ID, "plan-error").text)
    measured = _table_rows(browser, "plan-default-table")
    # The same operators, criticality and bottleneck as the extension's own ruvector_dag_mincut_plan.
    assert [(r["operator"], round(float(r["criticality"]), 3), r["bottleneck"] == "yes") for r in measured] \
        == reference
    assert all(r["actual_rows"] for r in measured)
    assert max(float(r["misestimate"]) for r in measured) > 5  # the trap: PostgreSQL's estimate is far off
    time.sleep(1.0)  # the layout settles
    browser.save_screenshot(str(shots / "dashboard-plan.png"))


def test_a_role_without_privileges_sees_nothing_of_it(demo_server: Server, sampled: Sampler, browser: Any,
                                                      shots: Path) -> None:
    base, token = _serve(demo_server, NOBODY, sampled)
    browser.get(f"{base}/{token}/")
    _wait(browser, lambda d: "Enrolled tables (0)" in d.find_element(By.ID, "overview-summary").text,
          "an unprivileged role saw enrolled tables")
    assert f"as role {NOBODY}" in browser.find_element(By.ID, "whoami").text
    _tab(browser, "Steering")
    time.sleep(2.0)  # the table's callback has answered (it would have rows by now)
    assert not any("trap" in " ".join(r.values()) for r in _table_rows(browser, "steering-table"))
    _tab(browser, "Plan")
    textarea = browser.find_element(By.ID, "plan-query")
    textarea.send_keys(workloads.QUERIES["skewed"])
    browser.find_element(By.ID, "plan-draw").click()
    _wait(browser, lambda d: "permission denied" in d.find_element(By.ID, "plan-error").text,
          "an unprivileged role planned the trap")
    browser.save_screenshot(str(shots / "dashboard-unprivileged.png"))


def test_another_roles_text_is_planned_as_that_role(demo_server: Server, sampled: Sampler, browser: Any) -> None:
    """Attack: a role plants a function in a statement of its own that gets steered.  Declared IMMUTABLE,
    the planner runs it, so plain EXPLAIN of that text by a superuser would run it with superuser rights
    (pg_read_file, pg_terminate_backend, set_config of the session ...).  The probe fails the plan if it
    finds itself a superuser.  The superuser's dashboard must plan that text as the role that ran it,
    and never run it."""
    text = "SELECT count(*) FROM trap_f f WHERE f.id > app_code.rvd_probe()"
    with demo_server.connect() as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS app_code AUTHORIZATION {workloads.APP_ROLE}")
    with demo_server.connect(user=workloads.APP_ROLE) as app:
        app.execute("""
            CREATE OR REPLACE FUNCTION app_code.rvd_probe() RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
            BEGIN
                IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
                    RAISE EXCEPTION 'the probe ran with superuser rights';
                END IF;
                RETURN 1;
            END $$""")
        assert app.execute(text).fetchone()[0] > 0
    with demo_server.connect() as conn:  # as the worker keeps a steered text of ruvector_app's
        with pytest.raises(Exception, match="superuser rights"):
            conn.execute(f"EXPLAIN {text}")  # what the dashboard did before: the hole
        conn.execute("INSERT INTO ruvector_dag.steered_queries (relid, query_id, userid, query) "
                     "VALUES ('trap_f'::regclass, 4242, (SELECT oid FROM pg_roles WHERE rolname = %s), %s) "
                     "ON CONFLICT (relid, query_id) DO UPDATE SET query = EXCLUDED.query",
                     (workloads.APP_ROLE, text))
    base, token = _serve(demo_server, None, sampled)  # the DSN's role: the superuser
    browser.get(f"{base}/{token}/")
    _wait(browser, lambda d: d.find_elements(By.ID, "superuser-warning"), "no warning for a superuser DSN")
    _tab(browser, "Plan")
    textarea = browser.find_element(By.ID, "plan-query")
    textarea.send_keys(text)
    browser.find_element(By.ID, "plan-draw").click()
    _wait(browser, lambda d: (f"planned as {workloads.APP_ROLE}" in d.find_element(By.ID, "plan-default-caption").text
                              or d.find_element(By.ID, "plan-error").text), "nothing drawn")
    assert browser.find_element(By.ID, "plan-error").text == ""
    browser.find_element(By.CSS_SELECTOR, "#plan-analyze input").click()
    browser.find_element(By.ID, "plan-draw").click()
    _wait(browser, lambda d: "never run" in d.find_element(By.ID, "plan-error").text, "another role's text ran")
