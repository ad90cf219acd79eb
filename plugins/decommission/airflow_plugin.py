"""Registers the milestone timetable (so the scheduler can deserialise it) and the programme overview.

The overview is a FastAPI app the api-server mounts under ``settings.UI_PREFIX`` and the UI's
navigation shows (``external_views``); its routes check Airflow's own login and DAG rights.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from decommission.plan.timetable import MilestoneTimetable
from decommission.settings import UI_PREFIX
from decommission.ui.lazy import LazyOverviewApp


class DecommissionPlugin(AirflowPlugin):
    name = "decommission"
    timetables = [MilestoneTimetable]
    fastapi_apps = [{"app": LazyOverviewApp(), "url_prefix": UI_PREFIX, "name": "Programöversikt"}]
    external_views = [
        {
            "name": "Programöversikt",
            "href": f"{UI_PREFIX}/",
            "url_route": "programoversikt",
            "destination": "nav",
            "nav_top_level": True,  # for managers, the first thing to find
        }
    ]
