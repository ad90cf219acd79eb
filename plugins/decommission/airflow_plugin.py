"""Registers the milestone timetable with Airflow, so the scheduler can deserialise it."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from decommission.plan.timetable import MilestoneTimetable


class DecommissionPlugin(AirflowPlugin):
    name = "decommission"
    timetables = [MilestoneTimetable]
