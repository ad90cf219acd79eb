"""
# Decommissioning programme

One DAG per legacy system in `include/programme.yaml`, plus a daily watchdog and the monthly
board report. This file only wires tasks; what each task does lives in `plugins/decommission/`.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference, Param, get_parsing_context, task

from decommission import settings
from decommission.deliver.operators import AwaitIngestOperator, failing_fast
from decommission.errors import scrub
from decommission.evidence.records import decommissioned_on_disk
from decommission.evidence.signoff import SignoffOperator
from decommission.plan.alerts import check_programme
from decommission.plan.programme import Milestone, Plan, System, load_plan_or_problem
from decommission.plan.timetable import MilestoneTimetable

log = logging.getLogger(__name__)
# A task's process parses this file to build its own DAG only (get_parsing_context); the DAG processor,
# which decides which DAGs exist, has checked every mapping, so the task's parse skips those checks.
_ONLY = get_parsing_context().dag_id
PLAN = load_plan_or_problem(
    settings.plan_path(), check_mappings=_ONLY is None
)  # a broken plan still builds the watchdog
for _problem in PLAN.problems:
    log.error("plan problem, no DAG built for it: %s", _problem)

# Tasks that touch another system (source database, archive) retry with backoff.
TOUCHES_OTHERS = {
    "retries": 3,
    "retry_delay": dt.timedelta(seconds=20),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": dt.timedelta(minutes=10),
}


def _stage(plan: Plan, system: System, context: dict[str, Any], name: str, *args: Any, **kwargs: Any) -> Any:
    """Run ``decommission.stages.<name>`` for this run; errors no retry can mend fail at once."""
    from decommission import stages

    with failing_fast():
        try:
            dag_run = context["dag_run"]
            run = stages.start_run(plan, system, dag_run.run_id, context.get("logical_date"), dag_run.conf)
            return stages.perform(run, name, *args, **kwargs)
        except Exception as exc:  # a task's log keeps no message that may quote a source value
            raise scrub(exc) from None


#: the Trigger form's milestone choice, in the words operators use
MILESTONE_CHOICE = {
    "test_delivery": "Testleverans (test_delivery)",
    "production_delivery": "Produktionsleverans (production_delivery)",
    "final_delivery": "Slutleverans (final_delivery)",
}


def _milestone_param(system: System) -> Param:
    """The milestone a manual run acts for: a required choice (a schedule needs a default; the first is harmless)."""
    return Param(
        Milestone.TEST_DELIVERY.value,
        type="string",
        enum=list(MILESTONE_CHOICE),
        values_display=MILESTONE_CHOICE,
        title="Milstolpe",
        description=f"Vilken milstolpe körningen gäller för {system.name}. Schemalagda körningar går på planens datum.",
    )


def _status_doc(system: System) -> str:
    """What the evidence folder says now: a decommissioned system says so (files only, no database at parse)."""
    record = decommissioned_on_disk(system.id)
    if record is None:
        return ""
    if system.reopened is not None:
        return (
            f"**Reopened** by {system.reopened.decided_by} on {system.reopened.date} ({system.reopened.reason}); "
            f"it was decommissioned, contract end {record.get('contract_end_date')}.\n\n"
        )
    return (
        f"**Decommissioned (avvecklad)**: contract-exit record of {record.get('approved_on')}, contract ends "
        f"{record.get('contract_end_date')}. New delivery runs are refused unless the plan reopens the system "
        "(`reopened:` in its plan entry).\n\n"
    )


def _doc(system: System) -> str:
    stones = "\n".join(f"| {m.value} | {d} |" for m, d in system.milestones.items())
    return f"""# Decommission {system.name}

{_status_doc(system)}
Supplier **{system.supplier}**, contract {system.contract.id} ({system.contract.annual_cost_sek:,} SEK a year,
{system.contract.notice_months} months' notice). Delivery agreement {system.agreement.id} to
{system.agreement.archive}, cut-off {system.agreement.cut_off}.

| milestone | date |
|---|---|
{stones}

A manual run acts for the milestone chosen in the Trigger form (or `{{"milestone": ...}}` in its
conf) and is named after it. Each delivery milestone extracts, maps, packages (E-ARK SIP, eHealth1), delivers, waits for
the archive's receipts, reconciles and reports. The test delivery sends TEST packages; the
final delivery ends in sign-off by {system.signoff.information_owner.name} and
{system.signoff.archivist.name} (only of a PASS), then the evidence pack and the
contract-exit record. A package the archive rejects still gets its report (FAIL). Retry a failed task from
the grid; every stage replaces its own output, so a retry is safe.
"""


def build_system_dag(plan: Plan, system: System) -> DAG:
    timetable = MilestoneTimetable({m.value: d.isoformat() for m, d in system.milestones.items() if m.runs_dag})
    with DAG(
        dag_id=f"decommission_{system.id}",
        dag_display_name=system.name,
        params={"milestone": _milestone_param(system)},
        schedule=timetable,
        start_date=dt.datetime.combine(plan.programme_start, dt.time(), tzinfo=dt.UTC),
        catchup=True,  # a milestone missed while the scheduler was down still runs
        max_active_runs=1,
        default_args={"owner": plan.region.owner, "retries": 1, "retry_delay": dt.timedelta(seconds=30)},
        tags=["decommission", system.kind, system.id],
        doc_md=_doc(system),
        deadline=DeadlineAlert(
            reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
            interval=dt.timedelta(hours=system.late_after_hours),
            callback=AsyncCallback(
                "decommission.plan.alerts.milestone_late",
                kwargs={"system_id": system.id, "late_after_hours": system.late_after_hours},
            ),
        ),
    ) as dag:

        def stage(name: str, context: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            return _stage(plan, system, context, name, *args, **kwargs)

        @task(**TOUCHES_OTHERS)
        def preflight(**context: Any) -> dict[str, Any]:
            return stage("preflight", context)

        @task(pool=system.pool, **TOUCHES_OTHERS)
        def plan_partitions(**context: Any) -> list[dict[str, Any]]:
            return stage("plan_partitions", context)

        @task(pool=system.pool, **TOUCHES_OTHERS)
        def extract(partition: dict[str, Any], **context: Any) -> dict[str, Any]:
            return stage("extract", context, partition)

        @task
        def map_partition(extracted: dict[str, Any], **context: Any) -> dict[str, Any]:
            return stage("map_stage", context, extracted)

        @task
        def package(mapped: dict[str, Any], **context: Any) -> dict[str, Any]:
            return stage("package_stage", context, mapped)

        @task
        def validate(package: dict[str, Any], **context: Any) -> dict[str, Any]:
            return stage("validate_stage", context, package)

        @task(pool=system.pool, **TOUCHES_OTHERS)
        def reconcile_partition(mapped: dict[str, Any], **context: Any) -> dict[str, Any]:
            return stage("reconcile_partition", context, mapped)

        @task(**TOUCHES_OTHERS)
        def submit(package: dict[str, Any], **context: Any) -> dict[str, Any]:
            override = context["dag_run"].conf.get("override_test_approval")
            return stage("submit", context, package, override=override)

        def keep_receipts(context: Any, receipts: dict[str, Any]) -> dict[str, Any]:
            return stage("keep_ingest_receipts", context, receipts)

        # all_done: a package the archive rejected fails await_ingest, yet the report must show why
        @task(trigger_rule="all_done", **TOUCHES_OTHERS)
        def reconcile(mapped: list[dict[str, Any]], packages: list[dict[str, Any]], **context: Any) -> dict:
            return stage("reconcile_stage", context, list(mapped), list(packages))

        @task
        def report(result: dict[str, Any], **context: Any) -> dict[str, Any]:
            return stage("report_stage", context, result)

        # raw and mapped rows go once the archive holds the partition's package, verified (after the report)
        @task
        def remove_staging(**context: Any) -> dict[str, Any]:
            return stage("remove_staging", context)

        @task.short_circuit
        def is_final_delivery(**context: Any) -> bool:
            return stage("is_final", context)

        # both read their evidence from the ledger and the files it vouches for, never from XCom
        @task
        def evidence_pack(**context: Any) -> dict:
            return stage("build_evidence_pack", context)

        @task
        def contract_exit(**context: Any) -> dict:
            return stage("contract_exit", context)

        def signoff(task_id: str, role: str, who: Any) -> SignoffOperator:
            from decommission.evidence.signoff import signoff_intro, signoff_subject

            return SignoffOperator(
                task_id=task_id,
                system_id=system.id,
                role=role,
                subject=signoff_subject(system, role),
                body=signoff_intro(system),  # the verified verdict and hashes are added when asking
                assigned_users=[{"id": who.id, "name": who.name}],  # matched on the id; the UI shows the name
                ignore_downstream_trigger_rules=True,  # a rejection stops the evidence pack and the contract exit
                execution_timeout=None,
            )

        checked = preflight()
        partitions = plan_partitions()
        checked >> partitions
        extracted = extract.expand(partition=partitions)
        mapped = map_partition.expand(extracted=extracted)
        packages = validate.expand(package=package.expand(mapped=mapped))
        submitted = submit.expand(package=packages)
        await_ingest = AwaitIngestOperator(
            task_id="await_ingest",
            packages=packages,
            on_receipts=keep_receipts,
            conn_id=settings.ARCHIVE_CONN_ID,
            wait=dt.timedelta(hours=system.late_after_hours),
        )
        submitted >> await_ingest
        # each partition's source rows counted again side by side; reconcile adds them up (and counts any
        # partition whose count is missing itself, so it runs even when some of these failed)
        tallies = reconcile_partition.expand(mapped=mapped)
        await_ingest >> tallies
        result = reconcile(mapped, packages)
        [await_ingest, tallies] >> result
        reported = report(result)
        owner = signoff("signoff_information_owner", "information_owner", system.signoff.information_owner)
        archivist = signoff("signoff_archivist", "archivist", system.signoff.archivist)
        reported >> is_final_delivery() >> owner >> archivist
        reported >> remove_staging()
        pack = evidence_pack()
        exit_record = contract_exit()
        [reported, archivist] >> pack
        [reported, archivist, pack] >> exit_record
    return dag


def build_watchdog(plan: Plan) -> DAG:
    with DAG(
        dag_id="decommission_watchdog",
        dag_display_name="Bevakning av milstolpar och avtal",
        schedule="@daily",
        start_date=dt.datetime.combine(plan.programme_start, dt.time(), tzinfo=dt.UTC),
        catchup=False,
        default_args={"owner": plan.region.owner, "retries": 0},
        tags=["decommission", "watchdog"],
        doc_md="# Watchdog\n\nEvery day: lists plan problems and milestones whose date has passed "
        "without a successful run of the system's DAG, and fails (red in the grid) when it finds any. "
        "It also alerts on notice deadlines within 90 days and on final deliveries whose notice period "
        "would end a contract after the plan's contract end.",
    ) as dag:

        @task
        def check_milestones(**context: Any) -> dict[str, Any]:
            ti = context["ti"]
            today = context["data_interval_end"].date()

            def successful(dag_id: str, at: dt.datetime) -> int:
                return ti.get_dr_count(dag_id=dag_id, logical_dates=[at], states=["success"])

            from decommission.plan.run import decommissioned_ids

            return check_programme(plan, today, successful, decommissioned=decommissioned_ids())

        check_milestones()
    return dag


def build_board_report(plan: Plan) -> DAG:
    with DAG(
        dag_id="decommission_board_report",
        dag_display_name="Lägesrapport till styrelsen",
        schedule="0 6 1 * *",  # the first of every month, before the management group meets
        start_date=dt.datetime.combine(plan.programme_start, dt.time(), tzinfo=dt.UTC),
        catchup=False,
        default_args={"owner": plan.region.owner, "retries": 1, "retry_delay": dt.timedelta(minutes=5)},
        tags=["decommission", "board"],
        doc_md="# Lägesrapport\n\nEvery month: *Lägesrapport – avveckling av äldre vårdinformationssystem* "
        "(PDF and HTML) from the plan, the ledger and the verified reports: timeline, status, economics, risks "
        "and decisions needed. Written to `<home>/programme/board/` and recorded in the ledger with its SHA-256; "
        "the programme overview links the latest.",
    ) as dag:

        @task
        def board_report(**context: Any) -> dict[str, Any]:
            from decommission import stages

            with failing_fast():
                # a run triggered without a logical date has no interval: it reports as of its trigger
                when = context.get("data_interval_end") or context["dag_run"].run_after
                return stages.board_report(plan, when.date(), context["dag_run"].run_id)

        board_report()
    return dag


# A task's process builds only its own DAG: the other systems' DAGs cost it time and nothing else.
for _system in PLAN.systems:
    if _ONLY is None or _ONLY == f"decommission_{_system.id}":
        globals()[f"decommission_{_system.id}"] = build_system_dag(PLAN, _system)
if _ONLY in (None, "decommission_watchdog"):
    decommission_watchdog = build_watchdog(PLAN)
if PLAN.systems and _ONLY in (None, "decommission_board_report"):  # a plan with no system has nothing to report
    decommission_board_report = build_board_report(PLAN)
