"""The overview's FastAPI app: one page, the report files it links, the board report. Read-only.

Mounted by the api-server under ``settings.UI_PREFIX`` (see ``airflow_plugin.py``). Plugin
endpoints get no authentication of their own, so every route depends on Airflow's: the
user of the UI's session cookie (or a bearer token), allowed to read the DAGs concerned,
as for the rest of the UI. Report files are served only when their SHA-256 equals the one
the ledger recorded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Annotated

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from decommission import settings
from decommission.overview.board import board_files
from decommission.overview.state import REPORT_FILES, programme_state
from decommission.overview.words import language_of
from decommission.plan.programme import Milestone, Plan, load_plan_or_problem
from decommission.ui.page import render_overview

MEDIA = {".html": "text/html; charset=utf-8", ".pdf": "application/pdf", ".json": "application/json"}


def dag_id(system_id: str) -> str:
    return f"decommission_{system_id}"


def _plan() -> Plan:
    # read on every request: the page shows the plan as it is now, like the DAG processor's next parse
    return load_plan_or_problem(settings.plan_path())


def _may_read_system(request: Request, user: GetUserDep, system_id: str) -> None:
    """Airflow's own check: the user may read this system's DAG (403 otherwise)."""
    requires_access_dag("GET", param_dag_id=dag_id(system_id))(request, user)


def create_app() -> FastAPI:
    app = FastAPI(title="Programöversikt – avveckling", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse, dependencies=[Depends(requires_access_dag("GET"))])
    def overview(user: GetUserDep, lang: Annotated[str | None, Query()] = None) -> HTMLResponse:
        plan = _plan()
        auth = get_auth_manager()
        visible = {
            s.id
            for s in plan.systems
            if auth.is_authorized_dag(method="GET", details=DagDetails(id=dag_id(s.id)), user=user)
        }
        state = programme_state(plan, _today())
        return HTMLResponse(render_overview(state, language_of(lang), visible=visible))

    @app.get("/systems/{system_id}/{milestone}/{name}", dependencies=[Depends(_may_read_system)])
    def report_file(system_id: str, milestone: str, name: str) -> FileResponse:
        plan = _plan()
        if system_id not in {s.id for s in plan.systems} or milestone not in {m.value for m in Milestone}:
            raise HTTPException(404, f"Inget system '{system_id}' med milstolpen '{milestone}' i planen.")
        key = next((k for k, v in REPORT_FILES.items() if v == name), None)
        if key is None:
            raise HTTPException(404, f"Filen '{name}' visas inte här; bara {', '.join(REPORT_FILES.values())}.")
        state = programme_state(dataclasses.replace(plan, systems=(plan.system(system_id),)), _today())
        report = state.systems[0].reports.get(milestone)
        if report is None or key not in report.problems:
            raise HTTPException(404, f"Liggaren har ingen {name} för {system_id}, {milestone}.")
        return _verified(report.folder / name, report.problems[key])

    @app.get("/board/{name}", dependencies=[Depends(requires_access_dag("GET"))])
    def board_file(name: str) -> FileResponse:
        files = board_files()
        if name not in files:
            raise HTTPException(404, f"Ingen lägesrapport '{name}' i liggaren.")
        path, problem = files[name]
        return _verified(path, problem)

    return app


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _verified(path: Path, problem: str | None) -> FileResponse:
    if problem is not None:
        # the file is not what the ledger recorded: never shown as if it were
        raise HTTPException(409, f"{problem}; den visas inte.")
    return FileResponse(path, media_type=MEDIA.get(path.suffix, "application/octet-stream"))
