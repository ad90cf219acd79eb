"""Manual runs through Airflow's REST API (what the Trigger form posts): named after their milestone, or refused."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "decommission_vas"


@pytest.fixture(scope="module")
def api():
    """Airflow's API on a fresh metadata database holding the parsed DAGs, logged in as the admin."""
    from airflow.api_fastapi.app import create_app
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.utils import db
    from airflow.utils.session import create_session
    from fastapi.testclient import TestClient

    from demo.signoff import token

    db.resetdb()
    manager = DagBundlesManager()
    with create_session() as session:
        manager.sync_bundles_to_db(session=session)
    for bundle in manager.get_all_dag_bundles():
        bundle.initialize()
        bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
        sync_bag_to_db(bag, bundle.name, bundle.version)
    client = TestClient(create_app(apps="core"))
    client.headers["Authorization"] = f"Bearer {token(client, 'admin', 'admin')}"
    return client


def _trigger(api, body: dict):
    return api.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json=body)


@pytest.mark.parametrize(
    ("body", "prefix"),
    [
        (
            {"logical_date": None, "conf": {"milestone": "production_delivery"}},
            "manual__milestone__production_delivery__",
        ),
        (
            {"logical_date": "2026-12-03T00:00:00Z", "conf": {"milestone": "production_delivery"}},
            "manual__milestone__production_delivery__",
        ),
        ({"logical_date": "2025-09-01T00:00:00Z", "conf": {}}, "manual__milestone__final_delivery__"),
        ({"logical_date": "2026-12-04T00:00:00Z", "conf": {}}, "manual__milestone__unplanned__"),  # one run a date
    ],
    ids=["no-logical-date", "later-date", "on-a-milestone-date", "off-the-plan"],
)
def test_a_run_is_named_after_the_milestone_it_acts_for(api, body, prefix):
    response = _trigger(api, body)
    assert response.status_code == 200, response.text
    assert response.json()["dag_run_id"].startswith(prefix)


def test_a_milestone_outside_the_choice_is_refused_at_once(api):
    response = _trigger(api, {"logical_date": None, "conf": {"milestone": "contract_end"}})
    assert response.status_code == 400
    assert "milestone" in response.json()["detail"] and "is not one of" in response.json()["detail"]


def test_the_trigger_form_offers_the_milestone(api):
    params = api.get(f"/api/v2/dags/{DAG_ID}/details").json()
    assert params["dag_display_name"] == "VAS – Vårdadministrativt system"
    milestone = params["params"]["milestone"]
    assert milestone["schema"]["enum"] == ["test_delivery", "production_delivery", "final_delivery"]
    assert milestone["schema"]["title"] == "Milstolpe"
