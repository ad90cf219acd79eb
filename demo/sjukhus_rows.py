"""The rows of the hospital demo system: one patient's stays, specimens, orders, notes and the rest.

Values as the hospital's system wrote them: Europe/Stockholm wall-clock times (never in the hour
the clocks skip or repeat, except the rows planted there), codes padded to their ``char(n)``
width, reference ranges and flags as text. Each function adds rows to the sink with the reason
the mapping must find on them (None for a clean row).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from decommission.model import Reason
from demo import sjukhus_vocab as v
from demo.generate import _DAYS, _LAST, FIRST_DAY
from demo.sjukhus_plan import PATIENT_REASON, SAMORD, Shape, Stay
from demo.sjukhus_values import Gen


def emit_patient(g: Gen, index: int, kind: str, shape: Shape) -> None:
    r, add, invalid = g.r, g.sink.add, kind in PATIENT_REASON
    patient_id = index + 1
    male = r() < 0.5
    low = date(1950, 1, 1) if kind == SAMORD else date(1920, 1, 1)
    birth = date.fromordinal(low.toordinal() + int(r() * (date(2020, 12, 31).toordinal() - low.toordinal())))
    ident = g.identifier(kind, birth, male)
    first = max(0, birth.toordinal() - FIRST_DAY.toordinal())
    given = g.pick(("Anders", "Erik", "Lars", "Nils", "Olof", "Åke") if male else ("Anna", "Karin", "Märta", "Åsa"))
    family = g.pick(("Lindström", "Öberg", "Niemi", "Labba", "Marklund", "Nyström", "Åström", "Kuoksu"))
    last_moment = datetime.fromisoformat(_DAYS[first])
    rows_after: list[tuple[str, tuple[Any, ...], str | None]] = []
    for stay in shape.stays:
        last_moment = max(last_moment, _emit_stay(g, patient_id, invalid, stay, first, rows_after))
    for _ in range(shape.referrals):
        sent = g.start(first)
        answered = g.later(sent, 60 * 24, 60 * 24 * 30) if r() < 0.7 else None
        rows_after.append(
            (
                "remiss",
                (
                    g.next_id("remiss"),
                    patient_id,
                    g.pick(v.CARE_UNITS)[1],
                    g.pick(v.REFERRAL_TO),
                    g.pick(v.REFERRAL_QUESTIONS),
                    g.wall(sent),
                    None if answered is None else g.wall(answered),
                    "besvarad" if answered else "skickad",
                ),
                None,
            )
        )
    for _ in range(shape.log):
        when = g.wall(g.start(first))
        rows_after.append(
            (
                "access_log",
                (g.next_id("access_log"), patient_id, g.pick(g.plan.users), g.pick(v.ACTIONS), when),
                None,
            )
        )
    death_date = death_cause = None
    if index in g.plan.deaths:
        died = min(last_moment.date() + timedelta(days=int(r() * 30)), date.fromisoformat(_DAYS[_LAST]))
        death_date, death_cause = died.isoformat(), g.padded_code(g.pick(v.ICD10)[0], 7)
    add(
        "patient",
        (
            patient_id,
            ident,
            given,
            family,
            "M" if male else "F",
            birth.isoformat(),
            int(r() < 0.02),
            death_date,
            death_cause,
        ),
        PATIENT_REASON.get(kind),
    )
    for table, row, reason in rows_after:
        add(table, row, reason)


def _emit_stay(
    g: Gen, patient_id: int, invalid: bool, stay: Stay, first: int, out: list[tuple[str, tuple[Any, ...], str | None]]
) -> datetime:
    admit = g.start(first)
    inpatient = stay.kind != "OP"
    discharge = g.later(admit, 60 * 24, 60 * 24 * 14) if inpatient else g.later(admit, 20, 180)
    encounter_id = g.next_id("encounter")
    unit = g.pick(v.WARDS) if inpatient else "MOTT"
    out.append(
        (
            "encounter",
            (
                encounter_id,
                patient_id,
                unit.ljust(6),
                stay.kind,
                g.pick(v.ADMIT_SOURCES) if inpatient else None,
                g.pick(v.DISCHARGE_TO) if inpatient else None,
                g.wall(admit),
                g.wall(discharge),
            ),
            None,
        )
    )
    vis = _Visit(g, patient_id, encounter_id, invalid, stay, admit, discharge, unit, out)
    for part in (_transfers, _coded, _lab, _vitals, _medication, _requests, _notes):
        part(vis)
    return discharge


@dataclass(frozen=True)
class _Visit:
    """One stay being written: what every part of it refers to."""

    g: Gen
    patient_id: int
    encounter_id: int
    invalid: bool
    stay: Stay
    admit: datetime
    discharge: datetime
    unit: str
    out: list[tuple[str, tuple[Any, ...], str | None]]


def _transfers(vis: _Visit) -> None:
    """One row per unit the stay passed through, then the discharge."""
    g, out, stay = vis.g, vis.out, vis.stay
    admit, patient_id, encounter_id = vis.admit, vis.patient_id, vis.encounter_id
    invalid, discharge, unit = vis.invalid, vis.discharge, vis.unit
    minutes = int((discharge - admit).total_seconds() // 60)
    bounds = sorted(g.later(admit, 1, minutes - 1) for _ in range(stay.transfers - 1))
    moments = [admit, *bounds, discharge]
    for i in range(stay.transfers):
        dirt = g.dirt("transfer", invalid)
        into = g.odd_hour() if dirt == Reason.LOCAL_TIME_ADJUSTED else g.wall(moments[i])
        ward = unit if i == 0 else g.pick(v.WARDS)
        out.append(
            (
                "transfer",
                (
                    g.next_id("transfer"),
                    encounter_id,
                    patient_id,
                    "admit" if i == 0 else "transfer",
                    ward.ljust(6),
                    into,
                    g.wall(moments[i + 1]),
                ),
                dirt,
            )
        )
    if stay.transfers:
        dirt = g.dirt("transfer", invalid)
        into = g.odd_hour() if dirt == Reason.LOCAL_TIME_ADJUSTED else g.wall(discharge)
        out.append(("transfer", (g.next_id("transfer"), encounter_id, patient_id, "discharge", None, into, None), dirt))


def _coded(vis: _Visit) -> None:
    """Diagnoses (ICD-9-CM before 1997, ICD-10-SE after) and procedures, padded codes."""
    g, out, stay = vis.g, vis.out, vis.stay
    admit, encounter_id, invalid = vis.admit, vis.encounter_id, vis.invalid
    icd9 = admit.year < v.ICD10_FROM
    for rank in range(1, stay.diagnoses + 1):
        dirt = g.dirt("diagnos", invalid)
        code, text = g.pick(v.ICD9 if icd9 else v.ICD10)
        system = "ICD9" if icd9 else "ICD10"
        if dirt == Reason.CODE_INVALID:
            variant = g.turn("bad_diagnosis", 4)
            if variant == 0:  # an ICD-9 external cause labelled ICD-10
                code, system = "E880.9", "ICD10"
            elif variant == 1:  # an ICD-9 V code labelled ICD-10
                code, system = "V45.81", "ICD10"
            elif variant == 2:  # an ICD-10 code labelled ICD-9: a code outside its system
                code, system = "J18.9", "ICD9"
            else:  # a code system the mapping does not know
                code, system = "486", "ICD8"
        g.icd9 += system == "ICD9"
        out.append(
            (
                "diagnos",
                (
                    encounter_id,
                    rank,
                    g.padded_code(code, 7),
                    system,
                    "huvud" if rank == 1 else "bi",
                    text,
                    g.wall(g.later(admit, 10, 600)),
                ),
                dirt,
            )
        )
    for row in range(1, stay.procedures + 1):
        dirt = g.dirt("atgard", invalid)
        code, system, text = g.pick(v.PROCEDURES_ICD9 if icd9 else v.PROCEDURES)
        if dirt == Reason.CODE_INVALID:
            code = ("NFB4", "81515", "ABC123")[g.turn("bad_procedure", 3)]
        begun = g.later(admit, 60, 60 * 20)
        out.append(
            (
                "atgard",
                (
                    encounter_id,
                    row,
                    g.padded_code(code, 6),
                    system,
                    text,
                    "Sunderby sjukhus, Operationsavdelning",
                    g.wall(begun),
                    g.wall(g.later(begun, 20, 240)),
                ),
                dirt,
            )
        )


def _lab(vis: _Visit) -> None:
    """Specimens and their results under the lab's own item ids, with reference ranges and flags."""
    g, r, out = vis.g, vis.g.r, vis.out
    stay, admit, patient_id = vis.stay, vis.admit, vis.patient_id
    encounter_id, invalid = vis.encounter_id, vis.invalid
    for tests in stay.specimens:
        prov_id, taken = g.next_id("provtagning"), g.later(admit, 5, 60 * 20)
        material = g.pick(v.SPECIMENS)
        out.append(
            ("provtagning", (prov_id, patient_id, encounter_id, g.wall(taken), material, g.pick(g.plan.users)), None)
        )
        items = g.rnd.sample(range(len(v.LAB_ITEMS)), tests)
        for row, item in enumerate(items, start=1):
            dirt = g.dirt("labsvar", invalid)
            item_id, _npu, _name, unit_, low, high, decimals, (lo, hi) = v.LAB_ITEMS[item]
            value = lo + r() * (hi - lo)
            flag = _flag(value, low, high)
            text = f"{value:.{decimals}f}".replace(".", ",")
            if dirt == Reason.CODE_INVALID:
                item_id = g.pick(v.BAD_LAB_ITEMS)
            status = "M" if dirt == Reason.SOFT_DELETED else "S"
            answered = g.wall(g.later(taken, 30, 60 * 6))
            out.append(
                (
                    "labsvar",
                    (prov_id, row, item_id, text, unit_, low or None, high or None, flag, answered, status),
                    dirt,
                )
            )


def _vitals(vis: _Visit) -> None:
    """Vital signs with the flag the ward set."""
    g, r, out = vis.g, vis.g.r, vis.out
    stay, admit, patient_id = vis.stay, vis.admit, vis.patient_id
    encounter_id, invalid = vis.encounter_id, vis.invalid
    for _ in range(stay.vitals):
        dirt = g.dirt("vitalparameter", invalid)
        parameter, _name, unit_, low, high, decimals, (lo, hi) = g.pick(v.VITALS)
        value = lo + r() * (hi - lo)
        when = g.odd_hour() if dirt == Reason.LOCAL_TIME_ADJUSTED else g.wall(g.later(admit, 5, 60 * 24))
        out.append(
            (
                "vitalparameter",
                (
                    g.next_id("vitalparameter"),
                    patient_id,
                    encounter_id,
                    parameter,
                    f"{value:.{decimals}f}".replace(".", ","),
                    unit_,
                    when,
                    "J" if _flag(value, low, high) else "N",
                ),
                dirt,
            )
        )


def _medication(vis: _Visit) -> None:
    """Medication orders and the administrations that carry them out."""
    g, r, out = vis.g, vis.g.r, vis.out
    stay, admit, patient_id = vis.stay, vis.admit, vis.patient_id
    encounter_id, invalid = vis.encounter_id, vis.invalid
    for administrations in stay.orders:
        dirt = g.dirt("ordination", invalid)
        atc, product, dose, unit_, route, frequency = g.pick(v.MEDICINES)
        if dirt == Reason.CODE_INVALID:
            atc = g.pick(v.BAD_ATC)
        ord_id, begun = g.next_id("ordination"), g.later(admit, 30, 60 * 12)
        stopped = g.later(begun, 60 * 12, 60 * 24 * 10) if r() < 0.8 else None
        out.append(
            (
                "ordination",
                (
                    ord_id,
                    patient_id,
                    encounter_id,
                    g.padded_code(atc, 7),
                    product,
                    dose,
                    unit_,
                    route,
                    frequency,
                    g.wall(begun),
                    None if stopped is None else g.wall(stopped),
                ),
                dirt,
            )
        )
        for _ in range(administrations):
            given = g.wall(g.later(begun, 10, 60 * 24 * 2))
            out.append(
                (
                    "administrering",
                    (g.next_id("administrering"), ord_id, patient_id, given, dose, unit_, g.pick(g.plan.users)),
                    # an administration carries its order's code: an invalid one is invalid here too
                    Reason.CODE_INVALID if dirt == Reason.CODE_INVALID else None,
                )
            )


def _requests(vis: _Visit) -> None:
    """Orders to other units (lab, radiology, physiotherapy)."""
    g, r, out = vis.g, vis.g.r, vis.out
    stay, admit, patient_id = vis.stay, vis.admit, vis.patient_id
    encounter_id = vis.encounter_id
    for _ in range(stay.requests):
        kind, text, performer = g.pick(v.ORDER_TYPES)
        ordered = g.later(admit, 10, 60 * 24)
        status = g.pick(v.ORDER_STATUS)
        done = g.wall(g.later(ordered, 30, 60 * 24 * 3)) if status == "klar" else None
        out.append(
            (
                "bestallning",
                (
                    g.next_id("bestallning"),
                    patient_id,
                    encounter_id,
                    kind,
                    None if kind == "fys" else f"{kind.upper()}{100 + int(r() * 900)}",
                    text,
                    g.pick(v.CARE_UNITS)[1],
                    performer,
                    status,
                    g.wall(ordered),
                    done,
                ),
                None,
            )
        )


def _notes(vis: _Visit) -> None:
    """The stay's notes."""
    g, r, out = vis.g, vis.g.r, vis.out
    stay, admit, patient_id = vis.stay, vis.admit, vis.patient_id
    encounter_id, invalid = vis.encounter_id, vis.invalid
    for i in range(stay.notes):
        dirt = g.dirt("anteckning", invalid)
        typ = "INSKR" if i == 0 else g.pick(("DAG", "OMV", "OP", "UTSKR"))
        when, text, deleted = g.wall(g.later(admit, 30, 60 * 24)), g.text(), 0
        if dirt == Reason.SOFT_DELETED:
            deleted = 1
        elif dirt == Reason.SENTINEL_DATE:
            when = g.sentinel()
        elif dirt == Reason.XML_ILLEGAL_CHAR:
            at = int(r() * len(text))
            text = text[:at] + g.pick(("\x01", "\x0b", "\x1f", "\ufffe")) + text[at:]
        elif dirt == Reason.ENCODING_SUSPECT:
            text = text.replace("ä", "Ã¤").replace("ö", "Ã¶").replace("å", "Ã¥") + " Ã¥ter"
        elif dirt == Reason.LOCAL_TIME_ADJUSTED:
            when = g.odd_hour()
        out.append(
            (
                "anteckning",
                (g.next_id("anteckning"), patient_id, encounter_id, typ, when, text, g.pick(g.plan.users), deleted),
                dirt,
            )
        )


def _flag(value: float, low: str, high: str) -> str | None:
    """H or L as the lab writes it, against the reference range as written (``<5`` reads as high 5)."""
    lo, hi = _number(low), _number(high)
    if hi is not None and value > hi:
        return "H"
    if lo is not None and value < lo:
        return "L"
    return None


def _number(written: str) -> float | None:
    return float(written.lstrip("<>").replace(",", ".")) if written else None


def emit_orphan(g: Gen, table: str) -> None:
    key, moment = g.orphan_key(), g.start(0)
    if table == "anteckning":
        row: tuple[Any, ...] = (g.next_id(table), key, None, "DAG", g.wall(moment), g.text(), g.pick(g.plan.users), 0)
    else:
        row = (g.next_id(table), key, g.pick(g.plan.users), "VIEW", g.wall(moment))
    g.sink.add(table, row, Reason.ORPHAN)


def emit_reference_rows(g: Gen) -> None:
    add = g.sink.add
    for code, name, hsa in v.CARE_UNITS:
        add("care_unit", (code.ljust(6), name, hsa), None)
    for user in g.plan.users:
        add("staff", (user, f"Personal {user[-5:]}", g.pick(v.STAFF_TITLES)), None)
    for code, text in v.ADMISSION_TYPES:
        add("admission_type", (code, text), None)
    for item_id, npu, name, unit, low, high, _d, _range in v.LAB_ITEMS:
        add("labanalys", (item_id, npu, name, unit, low or None, high or None), None)
    for parameter, name, unit, low, high, _d, _range in v.VITALS:
        add("vitalparameter_def", (parameter, name, unit, low, high), None)
    for typ, name in v.NOTE_TYPES:
        add("anteckningstyp", (typ, name), None)
    for code, name, oid in v.CODE_SYSTEMS:
        add("kodverk", (code, name, oid), None)
