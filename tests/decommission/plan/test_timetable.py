from __future__ import annotations

import pendulum
import pytest
from airflow.timetables.base import DataInterval, TimeRestriction
from airflow.utils.types import DagRunType

from decommission.plan.timetable import MilestoneTimetable

STONES = {"production_delivery": "2025-06-02", "test_delivery": "2025-03-03", "final_delivery": "2025-09-01"}


def utc(*args: int) -> pendulum.DateTime:
    return pendulum.datetime(*args, tz="UTC")


@pytest.fixture
def timetable() -> MilestoneTimetable:
    return MilestoneTimetable(STONES)


class TestMilestoneTimetable:
    def test_first_run_is_the_first_milestone(self, timetable):
        info = timetable.next_dagrun_info(
            last_automated_data_interval=None, restriction=TimeRestriction(utc(2025, 1, 1), None, True)
        )
        assert info.logical_date == utc(2025, 3, 3)

    def test_next_run_follows_the_last(self, timetable):
        info = timetable.next_dagrun_info(
            last_automated_data_interval=DataInterval.exact(utc(2025, 3, 3)),
            restriction=TimeRestriction(utc(2025, 1, 1), None, True),
        )
        assert info.logical_date == utc(2025, 6, 2)

    def test_missed_milestones_still_run_with_catchup(self, timetable):
        # the scheduler was down over all three dates: each still gets its run, in order
        last, seen = None, []
        while info := timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=TimeRestriction(utc(2025, 1, 1), None, True)
        ):
            seen.append(info.logical_date.date().isoformat())
            last = info.data_interval
        assert seen == ["2025-03-03", "2025-06-02", "2025-09-01"]

    def test_nothing_after_the_last_milestone(self, timetable):
        info = timetable.next_dagrun_info(
            last_automated_data_interval=DataInterval.exact(utc(2025, 9, 1)),
            restriction=TimeRestriction(utc(2025, 1, 1), None, True),
        )
        assert info is None

    def test_run_id_names_the_milestone(self, timetable):
        run_id = timetable.generate_run_id(
            run_type=DagRunType.SCHEDULED,
            run_after=utc(2025, 6, 2),
            data_interval=DataInterval.exact(utc(2025, 6, 2)),
        )
        assert run_id == "milestone__production_delivery__2025-06-02"

    def test_manual_run_keeps_its_own_date(self, timetable):
        # never moved to a milestone the run may not act for (plan/run.py resolves the milestone)
        assert timetable.infer_manual_data_interval(run_after=utc(2025, 7, 1)).start == utc(2025, 7, 1)

    def test_manual_run_is_named_after_the_milestone_its_conf_names(self, timetable):

        def trigger(conf):  # as the REST API holds it while the run id is made
            return timetable.generate_run_id(
                run_type=DagRunType.MANUAL,
                run_after=utc(2026, 12, 3),
                data_interval=DataInterval.exact(utc(2025, 9, 1)),
            )

        assert trigger({"milestone": "production_delivery"}).startswith("manual__milestone__production_delivery__")
        assert trigger({}).startswith("manual__milestone__final_delivery__")  # the date's milestone
        assert trigger({"milestone": "nonsense"}).startswith("manual__milestone__final_delivery__")

    def test_manual_run_off_the_plan_is_unplanned(self, timetable):

        run_id = timetable.generate_run_id(
            run_type=DagRunType.MANUAL, run_after=utc(2026, 12, 3), data_interval=DataInterval.exact(utc(2026, 12, 3))
        )
        assert run_id.startswith("manual__milestone__unplanned__")

    def test_serialize_round_trip(self, timetable):
        again = MilestoneTimetable.deserialize(timetable.serialize())
        assert again.milestones == timetable.milestones
        assert list(again.milestones) == ["test_delivery", "production_delivery", "final_delivery"]
