"""The programme plan: a typed model of ``include/programme.yaml`` and its loader.

A broken entry never stops the others: :func:`load_plan` validates each system on its
own and returns the valid ones together with one :class:`PlanProblem` per fault.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from decommission.errors import PlanError
from decommission.plan.yamlfile import YamlFileError, read_yaml

SYSTEM_ID = re.compile(r"[a-z][a-z0-9_]{1,30}")  # matched whole (fullmatch): no trailing newline
MAX_PLAN_BYTES = 1 << 20
MAPPINGS_DIR = "mappings"
#: the watchdog's start when the plan itself is unusable
WATCHDOG_START = dt.date(2024, 1, 1)


class Milestone(StrEnum):
    """Milestones in the order a system passes them. Only the first three start a DAG run."""

    TEST_DELIVERY = "test_delivery"
    PRODUCTION_DELIVERY = "production_delivery"
    FINAL_DELIVERY = "final_delivery"
    CONTRACT_END = "contract_end"

    @property
    def record_status(self) -> str:
        """The E-ARK SIP RECORDSTATUS of the packages this milestone delivers."""
        return "TEST" if self is Milestone.TEST_DELIVERY else "NEW"

    @property
    def runs_dag(self) -> bool:
        return self is not Milestone.CONTRACT_END


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Respondent(_Model):
    id: str = Field(min_length=1, description="Airflow user name of the respondent")
    name: str = Field(min_length=1)


class SignOff(_Model):
    information_owner: Respondent
    archivist: Respondent

    @model_validator(mode="after")
    def _two_people(self) -> SignOff:
        # the two sign-offs are a four-eyes check: one person in both roles would approve their own approval
        if same_person(self.information_owner.id, self.archivist.id):
            raise ValueError(
                f"the information owner and the archivist are the same user '{self.archivist.id}'; "
                "two different people must sign off"
            )
        return self


def same_person(user_a: str, user_b: str) -> bool:
    """Whether two Airflow user names name one person (compared without case and surrounding blanks)."""
    return user_a.strip().casefold() == user_b.strip().casefold()


class Contract(_Model):
    id: str = Field(min_length=1)
    annual_cost_sek: int = Field(gt=0)
    notice_months: int = Field(ge=0, le=60)
    earliest_end: dt.date


class Source(_Model):
    conn_id: str = Field(min_length=1)
    #: schema that holds the tables (PostgreSQL); None for SQLite
    schema_name: str | None = Field(default=None, alias="schema")
    #: the pool caps concurrent connections to this fragile legacy database
    max_connections: int = Field(default=2, ge=1, le=32)


class Agreement(_Model):
    id: str = Field(min_length=1)
    archive: Literal["mellanarkiv", "slutarkiv"]
    information_type: Literal["vård", "ekonomi", "diarium", "personal"]
    cut_off: dt.date


class Waiver(_Model):
    """An accepted difference: one failing check, the rows it may differ by, who accepted it and why."""

    check: str = Field(min_length=1, description="the check's name, e.g. 'source = extracted'")
    scope: str = Field(min_length=1, description="the table or entity the check is about")
    rows: int = Field(description="the difference accepted: left minus right, exactly")
    by: str = Field(min_length=1, description="who accepted it (name and role)")
    reason: str = Field(min_length=1)
    reference: str = Field(default="", description="decision or case number")


class SampleGoal(_Model):
    """What the read-back sample must be able to catch: damage in ``share`` of the patients, with ``confidence``."""

    share: float = Field(gt=0, lt=1, description="the damaged share of patients to catch, e.g. 0.01")
    confidence: float = Field(gt=0, lt=1, description="the chance to catch it, e.g. 0.95")


class Exclusion(_Model):
    """A table, or one column of it, left out of the archive by a recorded decision (gallringsbeslut)."""

    table: str = Field(min_length=1, description="source table")
    column: str | None = Field(default=None, description="one column; none: the whole table")
    decision: str = Field(min_length=1, description="what was decided and why")
    reference: str = Field(default="", description="the decision's number; a final delivery needs one")
    decided_by: str = Field(min_length=1, description="who decided (name and role)")
    date: dt.date


class AccessLog(_Model):
    """What happens to the legacy system's access logs (public documents a patient may request)."""

    disposition: Literal["archived", "deletion_decision"] = "archived"
    reference: str = Field(default="", description="the table archived, or the deletion decision's number")

    @model_validator(mode="after")
    def _decision_named(self) -> AccessLog:
        if self.disposition == "deletion_decision" and not self.reference:
            raise ValueError("a deletion decision needs its reference (decision number)")
        return self


class Reopening(_Model):
    """A decommissioned system opened again for deliveries, by a recorded decision."""

    reason: str = Field(min_length=1)
    decided_by: str = Field(min_length=1, description="who decided (name and role)")
    date: dt.date
    reference: str = Field(default="", description="the decision's number")


class Milestones(_Model):
    test_delivery: dt.date
    production_delivery: dt.date
    final_delivery: dt.date
    contract_end: dt.date

    @model_validator(mode="after")
    def _in_order(self) -> Milestones:
        dates = [(m, getattr(self, m.value)) for m in Milestone]
        for (m1, d1), (m2, d2) in zip(dates, dates[1:], strict=False):
            if d2 <= d1:
                raise ValueError(f"{m2.value} ({d2}) must come after {m1.value} ({d1})")
        return self

    def items(self) -> list[tuple[Milestone, dt.date]]:
        return [(m, getattr(self, m.value)) for m in Milestone]


class System(_Model):
    id: str
    name: str = Field(min_length=1)
    kind: Literal["journal", "lab", "radiology", "specialty"]
    supplier: str = Field(min_length=1)
    contract: Contract
    source: Source
    mapping: str = Field(min_length=1, description="path relative to the plan file")
    agreement: Agreement
    milestones: Milestones
    signoff: SignOff
    partition_patients: int = Field(default=100, ge=1, le=100_000)
    sample_patients: int = Field(default=10, ge=0)
    #: the read-back sample grows to meet this goal (at least sample_patients, one per package)
    sample_goal: SampleGoal | None = None
    late_after_hours: int = Field(default=24, ge=1)
    description: str = ""
    #: differences the information owner and archivist accepted in advance (see reconcile.apply_waivers)
    waivers: tuple[Waiver, ...] = ()
    #: source tables and columns kept out of the archive by a recorded decision (see reconcile.coverage)
    exclusions: tuple[Exclusion, ...] = ()
    report_language: Literal["sv", "en"] = "sv"
    access_log: AccessLog = AccessLog()
    #: a decommissioned system refuses new delivery runs unless the plan reopens it (plan/run.py)
    reopened: Reopening | None = None

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not SYSTEM_ID.fullmatch(value):
            raise ValueError(f"'{value}' must be lower case letters, digits and _ (2-31 chars)")
        return value

    @model_validator(mode="after")
    def _dates_agree(self) -> System:
        if self.agreement.cut_off >= self.milestones.production_delivery:
            raise ValueError(
                f"agreement.cut_off ({self.agreement.cut_off}) must be before "
                f"milestones.production_delivery ({self.milestones.production_delivery})"
            )
        if self.milestones.contract_end < self.contract.earliest_end:
            raise ValueError(
                f"milestones.contract_end ({self.milestones.contract_end}) is before "
                f"contract.earliest_end ({self.contract.earliest_end})"
            )
        return self

    def milestone_on(self, day: dt.date) -> Milestone | None:
        return next((m for m, d in self.milestones.items() if d == day), None)

    @property
    def pool(self) -> str:
        return f"legacy_{self.id}"


class Region(_Model):
    name: str = Field(min_length=1)
    id: str = Field(min_length=1, description="identification code of the records creator")
    archive: str = Field(min_length=1)
    submitter: str = Field(min_length=1)
    owner: str = Field(default="decommission", description="Airflow owner of every DAG")


class Economics(_Model):
    """The programme's own costs in SEK per calendar year (the decision paper's table); see plan/economics.py.

    A recurring cost (the archive's fee, the region's own IT) goes on after its last listed
    year at that year's amount: the archive is kept for ever, only the table stops.
    """

    archive_fee_sek: dict[int, int] = Field(min_length=1, description="the archive's yearly management fee")
    startup_sek: dict[int, int] = Field(default_factory=dict, description="one-off start-up contribution")
    own_it_sek: dict[int, int] = Field(default_factory=dict, description="the region's own IT/MT operations")
    horizon: int | None = Field(default=None, description="last year calculated; default: the last year listed")

    @model_validator(mode="after")
    def _sane(self) -> Economics:
        for name in ("archive_fee_sek", "startup_sek", "own_it_sek"):
            for year, amount in getattr(self, name).items():
                if not 2000 <= year <= 2100:
                    raise ValueError(f"{name}: year {year} is not between 2000 and 2100")
                if amount < 0:
                    raise ValueError(f"{name}: {year}: a cost is never negative (got {amount})")
        if self.horizon is not None and self.horizon < self.first_year:
            raise ValueError(f"horizon {self.horizon} is before the first year listed ({self.first_year})")
        return self

    @property
    def first_year(self) -> int:
        return min(y for m in (self.archive_fee_sek, self.startup_sek, self.own_it_sek) for y in m)

    @property
    def last_year(self) -> int:
        listed = max(y for m in (self.archive_fee_sek, self.startup_sek, self.own_it_sek) for y in m)
        return self.horizon if self.horizon is not None else listed


@dataclass(frozen=True)
class PlanProblem:
    """One fault in the plan: where it is and what is wrong."""

    file: str
    system: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: system '{self.system}': {self.field}: {self.message}"


@dataclass(frozen=True)
class Plan:
    path: Path
    region: Region
    programme_start: dt.date
    systems: tuple[System, ...]
    problems: tuple[PlanProblem, ...]
    #: the optional ``economics`` section; None when the plan has none (or a broken one: a problem says so)
    economics: Economics | None = None

    def system(self, system_id: str) -> System:
        for s in self.systems:
            if s.id == system_id:
                return s
        raise PlanError(f"{self.path}: no valid system '{system_id}' in the plan")

    def mapping_path(self, system: System) -> Path:
        return (self.path.parent / system.mapping).resolve()


def _problems_from(error: ValidationError, file: str, system: str) -> list[PlanProblem]:
    out = []
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(entry)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] not in ("missing", "extra_forbidden") and "input" in e:
            msg = f"{msg} (got {e['input']!r})"
        out.append(PlanProblem(file, system, where, msg))
    return out


def load_plan(path: str | Path, *, check_mappings: bool = True) -> Plan:
    """Read and validate the plan; raise :class:`PlanError` only when nothing usable is left.

    :param check_mappings: also load each system's mapping spec; a broken one drops the system.
    """
    path = Path(path)
    file = str(path)
    try:
        raw = read_yaml(path, max_bytes=MAX_PLAN_BYTES, what="plan")
    except FileNotFoundError as exc:
        raise PlanError(f"{file}: plan file not found") from exc
    except YamlFileError as exc:
        raise PlanError(str(exc)) from exc
    if not isinstance(raw, dict):
        raise PlanError(f"{file}: the plan must be a mapping with 'region', 'programme' and 'systems'")
    region = _top(Region, raw, "region", file)
    start = _top(_Start, raw, "programme", file).start
    entries = raw.get("systems")
    if not isinstance(entries, list) or not entries:
        raise PlanError(f"{file}: 'systems' must be a non-empty list")

    systems: list[System] = []
    problems: list[PlanProblem] = []
    # an id twice is an impostor or a copy: neither entry is built, so no one inherits the other's contract
    ids = Counter(_label(e, i) for i, e in enumerate(entries))
    for index, entry in enumerate(entries):
        label = _label(entry, index)
        if ids[label] > 1:
            problems.append(
                PlanProblem(file, label, "id", f"the system id appears {ids[label]} times; no entry with it is built")
            )
            continue
        try:
            system = System.model_validate(entry)
        except ValidationError as exc:
            problems += _problems_from(exc, file, label)
            continue
        if system.milestones.test_delivery < start:
            problems.append(
                PlanProblem(file, label, "milestones.test_delivery", f"before the programme start ({start})")
            )
            continue
        if check_mappings:
            problem = _check_mapping(path, system)
            if problem:
                problems.append(problem)
                continue
        systems.append(system)
    economics = _economics(raw.get("economics"), file, problems)
    return Plan(path, region, start, tuple(systems), tuple(problems), economics)


def _economics(raw: Any, file: str, problems: list[PlanProblem]) -> Economics | None:
    """The optional economics section; a broken one is a plan problem, never a reason to stop deliveries."""
    if raw is None:
        return None
    try:
        return Economics.model_validate(raw)
    except ValidationError as exc:
        problems += _problems_from(exc, file, "(economics)")
        return None


class _Start(_Model):
    start: dt.date
    end: dt.date | None = None


def _top(model: type[_Model], raw: dict, key: str, file: str) -> Any:
    try:
        return model.model_validate(raw.get(key))
    except ValidationError as exc:
        problems = [f"{file}: {key}.{p.field}: {p.message}" for p in _problems_from(exc, file, key)]
        raise PlanError("; ".join(problems)) from exc


def _label(entry: Any, index: int) -> str:
    if isinstance(entry, dict) and isinstance(entry.get("id"), str):
        return entry["id"]
    return f"systems[{index}]"


def _check_mapping(plan_path: Path, system: System) -> PlanProblem | None:
    from decommission.plan.mapping_spec import load_spec  # the spec module imports nothing of ours back

    folder = (plan_path.parent / MAPPINGS_DIR).resolve()
    target = (plan_path.parent / system.mapping).resolve()
    if not target.is_relative_to(folder):
        # the spec is copied into every package: it must be one of the region's own mapping files
        return PlanProblem(str(plan_path), system.id, "mapping", f"must name a file under {folder}")
    try:
        load_spec(target)
    except Exception as exc:  # noqa: BLE001 - every fault becomes a plan problem
        return PlanProblem(str(plan_path), system.id, "mapping", str(exc))
    return None


def load_plan_or_problem(path: str | Path, *, check_mappings: bool = True) -> Plan:
    """The plan, or, when nothing of it is usable, an empty plan whose one problem says why.

    The DAG file uses this: a broken file must still build the watchdog, which names the problem.
    """
    try:
        return load_plan(path, check_mappings=check_mappings)
    except PlanError as exc:
        region = Region.model_construct(name="?", id="?", archive="?", submitter="?", owner="decommission")
        problem = PlanProblem(str(path), "(plan)", "(file)", str(exc))
        return Plan(Path(path), region, WATCHDOG_START, (), (problem,))


def pools(plan: Plan) -> dict[str, dict[str, Any]]:
    """One Airflow pool per legacy source, sized by its ``max_connections`` (``airflow pools import`` form)."""
    return {
        s.pool: {
            "slots": s.source.max_connections,
            "description": f"connections to {s.name}",
            "include_deferred": False,
        }
        for s in plan.systems
    }
