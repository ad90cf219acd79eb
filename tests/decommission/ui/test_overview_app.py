"""The overview as the api-server serves it: Airflow's login and rights, verified report files, Swedish."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from tests.decommission.overview.programme_fixture import TOTALS, build

NBSP = "\u00a0"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """Airflow's whole API app (the plugin mounts the overview in it), on a fresh metadata database."""
    from airflow.api_fastapi.app import create_app
    from airflow.utils import db
    from fastapi.testclient import TestClient

    db.resetdb()
    return TestClient(create_app(apps="all"))


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path))
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROGRAMME_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.sqlite")})
    )
    build(tmp_path)
    return tmp_path


def _login(api, user: str = "admin", password: str = "admin") -> dict[str, str]:
    from demo.signoff import token

    return {"Authorization": f"Bearer {token(api, user, password)}"}


class TestAccess:
    def test_no_login_no_page(self, api, home):
        assert api.get("/decommission/").status_code == 401
        assert api.get("/decommission/systems/vas/final_delivery/report.pdf").status_code == 401

    def test_the_ui_session_cookie_is_a_login(self, api, home):
        from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

        from demo.signoff import token

        api.cookies.set(COOKIE_NAME_JWT_TOKEN, token(api, "operator", "user"))
        try:
            assert api.get("/decommission/").status_code == 200
        finally:
            api.cookies.clear()

    def test_the_plugin_shows_in_the_ui_navigation(self, api, home):
        plugins = api.get("/api/v2/plugins", headers=_login(api)).json()["plugins"]
        (ours,) = [p for p in plugins if p["name"] == "decommission"]
        (view,) = ours["external_views"]
        assert view["href"] == "/decommission/" and view["url_route"] == "programoversikt"
        assert ours["fastapi_apps"][0]["url_prefix"] == "/decommission"


class TestPage:
    def test_swedish_page_with_every_system(self, api, home):
        page = api.get("/decommission/", headers=_login(api)).text
        assert '<html lang="sv">' in page and "Programöversikt – avveckling av äldre vårdinformationssystem" in page
        for name in ("VAS – Vårdadministrativt system", "Klinisk kemi – laboratoriesystem", "Anestesijournal"):
            assert name in page
        for label in ("avvecklad", "väntar på signering", "avvikelse"):
            assert label in page
        assert f"3{NBSP}092" in page and f"4{NBSP}200{NBSP}000{NBSP}kr" in page
        assert "Karin Lindström (verksamhetschef)" in page
        assert "väntar på Olof Öberg (regionarkivarie)" in page

    def test_figures_equal_result_json(self, api, home):
        page = api.get("/decommission/", headers=_login(api)).text
        for system_id, totals in TOTALS.items():
            row = re.search(rf'<tr data-system="{system_id}">(.*?)</tr>\s*(?=<tr data-system|</tbody>)', page, re.S)
            cells = dict(re.findall(r'data-field="(source|archived)">([^<]*)<', row.group(1)))
            assert cells == {k: f"{totals[k]:,}".replace(",", NBSP) for k in ("source", "archived")}

    def test_no_server_path_and_no_identifier(self, api, home):
        page = api.get("/decommission/", headers=_login(api)).text
        assert str(home) not in page and "/reconciliation/" not in page
        assert not re.search(r"\b\d{8}-?\d{4}\b", page)  # nothing shaped like a personnummer

    def test_english_on_request(self, api, home):
        page = api.get("/decommission/?lang=en", headers=_login(api)).text
        assert '<html lang="en">' in page and "decommissioned" in page and "3,092" in page


class TestReportFiles:
    def test_a_report_link_serves_the_recorded_file(self, api, home):
        response = api.get("/decommission/systems/vas/final_delivery/report.pdf", headers=_login(api))
        assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
        on_disk = (home / "vas" / "reconciliation" / "final_delivery" / "report.pdf").read_bytes()
        assert response.content == on_disk
        result = api.get("/decommission/systems/vas/final_delivery/result.json", headers=_login(api)).json()
        assert result["totals"] == TOTALS["vas"]

    def test_a_file_changed_after_recording_is_refused(self, api, home):
        path = home / "lab" / "reconciliation" / "final_delivery" / "report.html"
        path.write_text("<html>bättre siffror</html>")
        response = api.get("/decommission/systems/lab/final_delivery/report.html", headers=_login(api))
        assert response.status_code == 409
        assert response.json()["detail"] == (
            "report.html har ändrats efter att den registrerades i liggaren; den visas inte."
        )
        page = api.get("/decommission/", headers=_login(api)).text
        assert "/decommission/systems/lab/final_delivery/report.html" not in page

    @pytest.mark.parametrize(
        "path",
        [
            "/decommission/systems/vas/final_delivery/annex-findings.csv",
            "/decommission/systems/vas/final_delivery/..%2F..%2Fledger.sqlite",
            "/decommission/systems/nosuch/final_delivery/report.pdf",
            "/decommission/systems/vas/contract_end/report.pdf",
        ],
        ids=["not-a-report", "traversal", "unknown-system", "no-such-report"],
    )
    def test_only_recorded_report_files(self, api, home, path):
        assert api.get(path, headers=_login(api)).status_code == 404

    def test_bytes_served_match_the_ledger(self, api, home):
        from decommission.ledger import Ledger

        recorded = [
            e.payload["files"]["pdf"]
            for e in Ledger.sqlite(home / "ledger.sqlite").entries(system_id="vas", kind="reconciliation")
        ]
        served = api.get("/decommission/systems/vas/final_delivery/report.pdf", headers=_login(api)).content
        assert hashlib.sha256(served).hexdigest() == recorded[-1]


class TestBoardReport:
    def test_the_latest_board_report_is_linked_and_served(self, api, home):
        import datetime as dt

        from decommission.ledger import Ledger
        from decommission.overview.board import write_board_report
        from decommission.plan.programme import load_plan
        from tests.decommission.overview.programme_fixture import PLAN

        out = write_board_report(
            load_plan(PLAN), dt.date(2025, 9, 15), run_id="r1", ledger=Ledger.sqlite(home / "ledger.sqlite")
        )
        page = api.get("/decommission/", headers=_login(api)).text
        assert 'href="board/lagesrapport-2025-09.pdf"' in page and "Senaste lägesrapport (2025-09)" in page
        response = api.get("/decommission/board/lagesrapport-2025-09.pdf", headers=_login(api))
        assert response.status_code == 200 and hashlib.sha256(response.content).hexdigest() == out["pdf_sha256"]
        assert api.get("/decommission/board/nosuch.pdf", headers=_login(api)).status_code == 404
