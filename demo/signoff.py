"""Answer sign-off requests through Airflow's REST API, as the assigned user would in the UI.

Used by the demo and the tests. ``client`` is any httpx-style client whose base URL is
the Airflow API server (a real one, or FastAPI's TestClient around ``create_app``).
"""

from __future__ import annotations

from typing import Any

APPROVE, REJECT = "Approve", "Reject"


def token(client: Any, username: str, password: str) -> str:
    response = client.post("/auth/token", json={"username": username, "password": password})
    response.raise_for_status()
    return response.json()["access_token"]


def answer(
    client: Any, *, dag_id: str, run_id: str, task_id: str, username: str, password: str, option: str = APPROVE
) -> Any:
    """PATCH the HITL details of one waiting task as ``username``; returns the response (200, 403, 409...)."""
    headers = {"Authorization": f"Bearer {token(client, username, password)}"}
    return client.patch(
        f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails",
        json={"chosen_options": [option], "params_input": {}},
        headers=headers,
    )


def waiting(dag_id: str | None = None) -> list[tuple[str, str, str]]:
    """(dag_id, run_id, task_id) of every task awaiting a human answer, from the metadata DB."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        query = session.query(TaskInstance.dag_id, TaskInstance.run_id, TaskInstance.task_id).filter(
            TaskInstance.state == TaskInstanceState.AWAITING_INPUT
        )
        if dag_id:
            query = query.filter(TaskInstance.dag_id == dag_id)
        return [tuple(row) for row in query.all()]
