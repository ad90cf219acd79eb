"""The plan pass of the hospital demo generator: identities, row counts per patient, the rows that get dirt.

Cheap and complete before a row is written, so each kind of dirt sits on exactly the rows chosen
here (a share of the valid patients' rows, at least one of each kind).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from decommission.model import Reason

# identity kinds of the plan
PNR, SAMORD = "personnummer", "samordningsnummer"
RESERV = ("reservnummer_national", "reservnummer_skane", "reservnummer_orebro", "reservnummer_varmland")
BAD_CHECKSUM, BAD_FORMAT, BAD_STHLM = "bad_checksum", "bad_format", "bad_reserv_sthlm"
PATIENT_REASON = {
    BAD_CHECKSUM: Reason.ID_INVALID_CHECKSUM,
    BAD_FORMAT: Reason.ID_INVALID_FORMAT,
    BAD_STHLM: Reason.ID_INVALID_CHECKSUM,
}
_IDENTITY_SHARES = ((BAD_CHECKSUM, 0.015), (BAD_FORMAT, 0.01), (BAD_STHLM, 0.005), (SAMORD, 0.03), ("reserv", 0.03))
_R = Reason
#: table -> ((reason, share of the valid patients' rows), ...); every kind appears at least once
_DIRT: dict[str, tuple[tuple[str, float], ...]] = {
    "diagnos": ((_R.CODE_INVALID, 0.03),),
    "atgard": ((_R.CODE_INVALID, 0.02),),
    "labsvar": ((_R.SOFT_DELETED, 0.01), (_R.CODE_INVALID, 0.01)),
    "vitalparameter": ((_R.LOCAL_TIME_ADJUSTED, 0.01),),
    "transfer": ((_R.LOCAL_TIME_ADJUSTED, 0.01),),
    "ordination": ((_R.CODE_INVALID, 0.015),),
    "anteckning": (
        (_R.SOFT_DELETED, 0.01),
        (_R.SENTINEL_DATE, 0.005),
        (_R.XML_ILLEGAL_CHAR, 0.005),
        (_R.ENCODING_SUSPECT, 0.005),
        (_R.LOCAL_TIME_ADJUSTED, 0.005),
    ),
}
#: table -> orphan rows as a share of the valid patients' rows (tables with a patient column of their own)
_ORPHANS = {"anteckning": 0.004, "access_log": 0.004}


@dataclass(frozen=True)
class Stay:
    kind: str  # admission type code
    transfers: int  # unit segments (a discharge row follows them)
    diagnoses: int
    procedures: int
    specimens: tuple[int, ...]  # lab rows per specimen
    vitals: int
    orders: tuple[int, ...]  # administrations per medication order
    requests: int
    notes: int


@dataclass(frozen=True)
class Shape:
    stays: tuple[Stay, ...]
    referrals: int
    log: int


@dataclass
class Plan:
    kinds: list[str]
    shapes: list[Shape]
    dirt: dict[str, dict[int, str]]  # table -> position among valid patients' rows -> reason
    orphans: dict[int, list[str]]
    deaths: set[int]
    users: list[str]


def _stay(rnd: random.Random) -> Stay:
    ri, u = rnd.randint, rnd.random()
    kind = "EM" if u < 0.45 else "EL" if u < 0.65 else "OP" if u < 0.95 else "TR"
    inpatient = kind != "OP"
    return Stay(
        kind=kind,
        transfers=ri(1, 3) if inpatient else 0,
        diagnoses=ri(1, 2),
        procedures=int(rnd.random() < (0.6 if inpatient else 0.2)),
        specimens=tuple(ri(1, 4) for _ in range(ri(0, 2))),
        vitals=ri(1, 4) if inpatient else ri(0, 1),
        orders=tuple(ri(0, 2) for _ in range(ri(0, 2) if inpatient else 0)),
        requests=ri(0, 1),
        notes=ri(1, 2),
    )


def _dirt_rows(shape: Shape) -> Counter[str]:
    out: Counter[str] = Counter()
    for s in shape.stays:
        out["diagnos"] += s.diagnoses
        out["atgard"] += s.procedures
        out["labsvar"] += sum(s.specimens)
        out["vitalparameter"] += s.vitals
        out["transfer"] += s.transfers + (1 if s.transfers else 0)
        out["ordination"] += len(s.orders)
        out["anteckning"] += s.notes
    out["access_log"] += shape.log
    return out


def make_plan(rnd: random.Random, patients: int) -> Plan:
    counts = {kind: max(1, round(share * patients)) for kind, share in _IDENTITY_SHARES}
    special = rnd.sample(range(1, patients), sum(counts.values()))
    kinds = [PNR] * patients
    for kind, n in counts.items():
        for i, index in enumerate(special[:n]):
            kinds[index] = RESERV[i % len(RESERV)] if kind == "reserv" else kind
        special = special[n:]
    shapes = [
        Shape(tuple(_stay(rnd) for _ in range(rnd.randint(1, 3))), int(rnd.random() < 0.3), rnd.randint(1, 4))
        for _ in range(patients)
    ]
    valid = [i for i in range(patients) if kinds[i] not in PATIENT_REASON]
    totals: Counter[str] = Counter()
    for i in valid:
        totals.update(_dirt_rows(shapes[i]))
    for table in _DIRT:  # every kind needs a row to sit on, even at the smallest size
        if not totals[table]:
            raise ValueError(f"too few patients for every kind of dirt (no rows of {table})")
    dirt: dict[str, dict[int, str]] = {}
    for table, kinds_of_dirt in _DIRT.items():
        wanted = [(reason, max(1, round(share * totals[table]))) for reason, share in kinds_of_dirt]
        positions = rnd.sample(range(totals[table]), min(totals[table], sum(n for _, n in wanted)))
        dirt[table] = {}
        for reason, n in wanted:
            dirt[table].update(dict.fromkeys(positions[:n], reason))
            positions = positions[n:]
    orphans: dict[int, list[str]] = {}
    for table, share in _ORPHANS.items():
        for _ in range(max(1, round(share * totals[table]))):
            orphans.setdefault(rnd.randrange(patients), []).append(table)
    deaths = {i for i in valid if rnd.random() < 0.06}
    alphabet = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
    users = sorted({"SE2321000230-" + "".join(rnd.choices(alphabet, k=5)) for _ in range(40)})
    return Plan(kinds, shapes, dirt, orphans, deaths, users)
