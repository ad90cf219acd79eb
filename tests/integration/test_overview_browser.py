"""A manager's view, in a real browser: Debian's headless Chromium against a real Airflow api-server.

The api-server mounts the overview (the plugin); the browser logs in with the UI's own session
cookie, opens the overview inside the Airflow UI and on its own, checks the figures shown
against ``result.json`` and the ledger, follows a report link and saves screenshots under
``out/screenshots/``. Nothing is downloaded: playwright drives the system's ``chromium``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack.processes import AirflowProcesses
from r7sim.process import free_port
from tests.decommission.overview.programme_fixture import TOTALS, build

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "out" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NBSP = "\u00a0"


@pytest.fixture(scope="module")
def api_server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine: apt-get install chromium (.ci/run does)")
    base = tmp_path_factory.mktemp("browser")
    home, airflow_home = base / "out", base / "airflow"
    home.mkdir()
    build(home)
    from decommission import embedded

    saved = dict(os.environ)
    port = free_port()
    env = embedded.configure(home=home, airflow_home=airflow_home, sources={}, archive_port=1)
    os.environ.clear()
    os.environ.update(saved)  # configure() sets this process's environment too; the test's own stays
    env = {**saved, **env, "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__WORKERS": "1"}
    processes = AirflowProcesses(Path(sys.executable).parent / "airflow", env, base / "logs")
    try:
        processes.run("db-migrate", "db", "migrate", timeout=300)
        processes.run("reserialize", "dags", "reserialize", timeout=300)  # the DAGs, for the Trigger form
        processes.start("api-server", "api-server", "--port", str(port))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        while True:
            processes.check_running()
            try:
                if httpx.get(f"{url}/api/v2/monitor/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the api-server did not answer within 240 s:\n{processes.tails()}")
            time.sleep(1)
        yield url, home
    finally:
        processes.stop_all()


@pytest.fixture(scope="module")
def browser(api_server):
    """Open a tab logged in as a demo user: ``browser("operator")``."""
    from playwright.sync_api import sync_playwright

    url, _home = api_server
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])

        def tab(user: str, password: str = "user"):
            token = httpx.post(f"{url}/auth/token", json={"username": user, "password": password}).json()
            context = chromium.new_context(viewport={"width": 1600, "height": 1100}, locale="sv-SE")
            # the UI's own session: the cookie its login sets, which the overview's routes accept as Airflow's login
            context.add_cookies([{"name": "_token", "value": token["access_token"], "url": url}])
            return context.new_page()

        yield tab
        chromium.close()


@pytest.fixture(scope="module")
def page(browser):
    return browser("verksamhetschef")


def test_overview_shows_every_system_with_the_ledgers_figures(api_server, page):
    url, home = api_server
    page.goto(f"{url}/decommission/")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "overview.png"), full_page=True)
    assert page.title() == "Programöversikt – avveckling av äldre vårdinformationssystem"
    for system_id, totals in TOTALS.items():
        row = page.locator(f'tr[data-system="{system_id}"]')
        result = json.loads((home / system_id / "reconciliation").glob("*/result.json").__next__().read_bytes())
        assert result["totals"]["source"] == totals["source"]
        for field in ("source", "archived"):
            shown = row.locator(f'td[data-field="{field}"]').inner_text().replace(NBSP, " ")
            assert shown == f"{totals[field]:,}".replace(",", " "), (system_id, field, shown)
    statuses = {s: page.locator(f'tr[data-system="{s}"] [data-field="status"]').inner_text() for s in TOTALS}
    assert statuses == {"vas": "avvecklad", "lab": "väntar på signering", "anestesi": "avvikelse"}
    signed = page.locator('tr[data-system="vas"] [data-field="signatures"]').inner_text()
    assert "Karin Lindström (verksamhetschef)" in signed and "Olof Öberg (regionarkivarie)" in signed
    assert "väntar på signering" in page.locator('[data-testid="risks"]').inner_text()
    assert page.locator('[data-testid="economics"] tr[data-year="2023"] [data-field="archive_total"]').inner_text() == (
        f"2{NBSP}920{NBSP}tkr"
    )


def test_a_report_link_opens_the_verified_report(api_server, page):
    url, home = api_server
    page.goto(f"{url}/decommission/")
    link = page.locator('tr[data-system="vas"] a[data-field="report-html"]')
    assert link.get_attribute("href") == "/decommission/systems/vas/final_delivery/report.html"
    link.click()
    page.wait_for_load_state()
    assert page.url == f"{url}/decommission/systems/vas/final_delivery/report.html"
    on_disk = (home / "vas" / "reconciliation" / "final_delivery" / "report.html").read_text(encoding="utf-8")
    assert page.content().count("Avstämningsrapport vas final_delivery") == on_disk.count(
        "Avstämningsrapport vas final_delivery"
    )
    page.screenshot(path=str(SHOTS / "overview-report-link.png"))


def test_the_overview_inside_the_airflow_ui(api_server, page):
    url, _home = api_server
    page.goto(f"{url}/plugin/programoversikt")
    frame = page.frame_locator("iframe")
    frame.locator('tr[data-system="vas"]').wait_for(timeout=60_000)
    page.screenshot(path=str(SHOTS / "overview-in-airflow-ui.png"))
    assert frame.locator('tr[data-system="vas"] [data-field="status"]').inner_text() == "avvecklad"


def test_without_login_there_is_nothing_to_see(api_server):
    url, _home = api_server
    assert httpx.get(f"{url}/decommission/").status_code == 401


def test_the_trigger_form_offers_the_milestone_and_names_the_run(api_server, browser):
    url, _home = api_server
    tab = browser("operator")
    tab.goto(f"{url}/dags/decommission_vas")
    tab.get_by_text("VAS – Vårdadministrativt system").first.wait_for(timeout=60_000)
    tab.get_by_role("button", name="Trigger").first.click()
    dialog = tab.locator('[role="dialog"][data-state="open"]')
    choice = dialog.get_by_text("Testleverans (test_delivery)")  # the milestone field, its default shown
    choice.wait_for(timeout=30_000)
    assert "Milstolpe" in dialog.inner_text()
    box = dialog.get_by_role("combobox").first  # the select's own input, as a keyboard user reaches it
    box.focus()
    box.press("ArrowDown")
    tab.get_by_role("option", name="Produktionsleverans (production_delivery)").click()
    dialog.get_by_text("Produktionsleverans (production_delivery)", exact=True).wait_for()
    tab.screenshot(path=str(SHOTS / "trigger-form.png"))
    dialog.get_by_role("button", name="Trigger", exact=True).click()
    admin = httpx.post(f"{url}/auth/token", json={"username": "admin", "password": "admin"}).json()["access_token"]
    runs: list = []
    deadline = time.monotonic() + 60
    while not runs and time.monotonic() < deadline:
        time.sleep(1)
        runs = httpx.get(
            f"{url}/api/v2/dags/decommission_vas/dagRuns", headers={"Authorization": f"Bearer {admin}"}
        ).json()["dag_runs"]
    (run,) = runs
    assert run["conf"]["milestone"] == "production_delivery"
    assert run["dag_run_id"].startswith("manual__milestone__production_delivery__")
