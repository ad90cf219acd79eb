"""The hospital-shaped demo system ``sjukhus``: two schemas, 21 tables, with known dirt.

Shaped like a hospital database imported into the region years ago: the patient administration
in schema ``adt`` (English names, as the supplier's system had them: patients with date and cause
of death, encounters, transfers between units, the access log, units, staff, admission types) and
the clinical part in schema ``klinik`` (Swedish names: diagnoses in ICD-10-SE and, before 1997,
ICD-9-CM with V and E codes, in one table with a code-system column and a composite key;
procedures in KVÅ and ICD-9-CM volume 3; specimens and lab results under the laboratory's own
five-digit item ids with a dictionary table and reference ranges; vital signs; medication orders
and administrations; orders, referrals and notes). Codes are ``char(n)``, stored with their
padding. Times are Europe/Stockholm wall-clock times; many fall on the days the clocks change,
never in the missing or repeated hour except the rows planted there.

On SQLite the two schemas are two files: ``<target>`` holds ``adt`` and :func:`klinik_path` the
other, which the source connection attaches (``extra.attach``). On PostgreSQL they are two
schemas (``adt`` and ``klinik`` unless named otherwise).

Everything follows from ``random.Random(seed)``; a plan pass fixes identities, row counts and the
exact rows that get dirt, then rows are written in batches. Each dirty row carries one kind of
dirt, only in patients with a valid identifier. The dirt report has the same shape as the other
systems' (:func:`demo.generate.build`).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from decommission.mapping.identity import IdType, classify, make_personnummer, make_reservnummer_sthlm
from decommission.mapping.identity import make_samordningsnummer as make_samordning
from decommission.model import Reason
from demo import sjukhus_vocab as v
from demo.generate import _DAYS, _LAST, DIRT_SUFFIX, FIRST_DAY, SENTINELS, _Sink, _write_json
from demo.writers import PostgresWriter, SqliteWriter, Table, Writer

SYSTEM = "sjukhus"
ADT, KLINIK = "adt", "klinik"
ZONE = "Europe/Stockholm"

# identity kinds of the plan
_PNR, _SAMORD = "personnummer", "samordningsnummer"
_RESERV = ("reservnummer_national", "reservnummer_skane", "reservnummer_orebro", "reservnummer_varmland")
_BAD_CHECKSUM, _BAD_FORMAT, _BAD_STHLM = "bad_checksum", "bad_format", "bad_reserv_sthlm"
_PATIENT_REASON = {
    _BAD_CHECKSUM: Reason.ID_INVALID_CHECKSUM,
    _BAD_FORMAT: Reason.ID_INVALID_FORMAT,
    _BAD_STHLM: Reason.ID_INVALID_CHECKSUM,
}
_IDENTITY_SHARES = ((_BAD_CHECKSUM, 0.015), (_BAD_FORMAT, 0.01), (_BAD_STHLM, 0.005), (_SAMORD, 0.03), ("reserv", 0.03))
_NRID_LETTERS = "ABCDEFGHJKLMNPRSTUXYZ"


def _cols(spec: str) -> tuple[tuple[str, str, str], ...]:
    types = {
        "i": ("INTEGER", "integer"),
        "t": ("TEXT", "text"),
        "ts": ("TEXT", "timestamp"),
        "d": ("TEXT", "date"),
        "c6": ("CHAR(6)", "char(6)"),
        "c7": ("CHAR(7)", "char(7)"),
    }
    return tuple((name, *types[kind]) for name, kind in (item.split(":") for item in spec.split()))


#: schema -> its tables; the first column is the key unless ``primary_key`` says otherwise
TABLES: dict[str, tuple[Table, ...]] = {
    ADT: (
        Table(
            "patient",
            _cols(
                "patient_id:i pnr:t given_name:t family_name:t sex:t birth_date:d protected:i "
                "death_date:d death_cause:c7"
            ),
            None,
        ),
        Table(
            "encounter",
            _cols(
                "encounter_id:i patient_id:i unit_code:c6 admission_type:t admit_source:t discharge_to:t "
                "admit_time:ts discharge_time:ts"
            ),
            "patient_id",
        ),
        Table(
            "transfer",
            _cols("transfer_id:i encounter_id:i patient_id:i event:t unit_code:c6 in_time:ts out_time:ts"),
            "patient_id",
        ),
        Table("access_log", _cols("log_id:i patient_id:i user_id:t action:t logged_at:ts"), "patient_id"),
        Table("care_unit", _cols("unit_code:c6 name:t hsa_id:t"), None),
        Table("staff", _cols("user_id:t name:t title:t"), None),
        Table("admission_type", _cols("code:t description:t"), None),
    ),
    KLINIK: (
        Table(
            "diagnos",
            _cols("vtf_id:i radnr:i kod:c7 kodverk:t rang:t diagnostext:t reg_tid:ts"),
            None,
            primary_key=("vtf_id", "radnr"),
        ),
        Table(
            "atgard",
            _cols("vtf_id:i radnr:i kod:c6 kodverk:t beskrivning:t vardenhet:t start_tid:ts slut_tid:ts"),
            None,
            primary_key=("vtf_id", "radnr"),
        ),
        Table(
            "provtagning", _cols("prov_id:i patient_id:i vtf_id:i provtid:ts provmaterial:t bestallare:t"), "patient_id"
        ),
        Table(
            "labsvar",
            _cols("prov_id:i rad:i analys_id:t varde:t enhet:t ref_lag:t ref_hog:t flagga:t svarstid:ts status:t"),
            None,
            primary_key=("prov_id", "rad"),
        ),
        Table("labanalys", _cols("analys_id:t npu_kod:t namn:t enhet:t ref_lag:t ref_hog:t"), None),
        Table(
            "vitalparameter",
            _cols("obs_id:i patient_id:i vtf_id:i parameter:t varde:t enhet:t mattid:ts avvikande:t"),
            "patient_id",
        ),
        Table("vitalparameter_def", _cols("parameter:t namn:t enhet:t ref_lag:t ref_hog:t"), None),
        Table(
            "ordination",
            _cols(
                "ord_id:i patient_id:i vtf_id:i atc:c7 preparat:t dos:t enhet:t administrationsvag:t frekvens:t "
                "start_tid:ts stopp_tid:ts"
            ),
            "patient_id",
        ),
        Table(
            "administrering",
            _cols("adm_id:i ord_id:i patient_id:i given_tid:ts dos:t enhet:t given_av:t"),
            "patient_id",
        ),
        Table(
            "bestallning",
            _cols(
                "best_id:i patient_id:i vtf_id:i typ:t kod:t beskrivning:t bestallande_enhet:t utforande_enhet:t "
                "status:t bestalld_tid:ts klar_tid:ts"
            ),
            "patient_id",
        ),
        Table(
            "remiss",
            _cols(
                "remiss_id:i patient_id:i fran_enhet:t till_enhet:t fragestallning:t skickad_tid:ts "
                "besvarad_tid:ts status:t"
            ),
            "patient_id",
        ),
        Table(
            "anteckning",
            _cols("ant_id:i patient_id:i vtf_id:i typ:t skriven_tid:ts text:t signerad_av:t makulerad:i"),
            "patient_id",
        ),
        Table("anteckningstyp", _cols("typ:t namn:t"), None),
        Table("kodverk", _cols("kodverk:t namn:t oid:t"), None),
    ),
}
SCHEMA_OF = {t.name: schema for schema, tables in TABLES.items() for t in tables}
_ALL = tuple(t for tables in TABLES.values() for t in tables)

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
_DIRT_KEYS = (
    ("orphan_rows", _R.ORPHAN),
    ("encoding_damage", _R.ENCODING_SUSPECT),
    ("xml_illegal_chars", _R.XML_ILLEGAL_CHAR),
    ("sentinel_dates", _R.SENTINEL_DATE),
    ("soft_deleted", _R.SOFT_DELETED),
    ("invalid_codes", _R.CODE_INVALID),
    ("local_time_adjusted", _R.LOCAL_TIME_ADJUSTED),
)


def klinik_path(target: str | Path) -> Path:
    """The SQLite file of schema ``klinik`` beside ``<target>`` (which holds ``adt``)."""
    target = Path(target)
    return target.with_name(f"{target.stem}.{KLINIK}{target.suffix}")


# ---------------------------------------------------------------- pass 1: the plan
@dataclass(frozen=True)
class _Stay:
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
class _Shape:
    stays: tuple[_Stay, ...]
    referrals: int
    log: int


@dataclass
class _Plan:
    kinds: list[str]
    shapes: list[_Shape]
    dirt: dict[str, dict[int, str]]  # table -> position among valid patients' rows -> reason
    orphans: dict[int, list[str]]
    deaths: set[int]
    users: list[str]


def _stay(rnd: random.Random) -> _Stay:
    ri, u = rnd.randint, rnd.random()
    kind = "EM" if u < 0.45 else "EL" if u < 0.65 else "OP" if u < 0.95 else "TR"
    inpatient = kind != "OP"
    return _Stay(
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


def _dirt_rows(shape: _Shape) -> Counter[str]:
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


def _plan(rnd: random.Random, patients: int) -> _Plan:
    counts = {kind: max(1, round(share * patients)) for kind, share in _IDENTITY_SHARES}
    special = rnd.sample(range(1, patients), sum(counts.values()))
    kinds = [_PNR] * patients
    for kind, n in counts.items():
        for i, index in enumerate(special[:n]):
            kinds[index] = _RESERV[i % len(_RESERV)] if kind == "reserv" else kind
        special = special[n:]
    shapes = [
        _Shape(tuple(_stay(rnd) for _ in range(rnd.randint(1, 3))), int(rnd.random() < 0.3), rnd.randint(1, 4))
        for _ in range(patients)
    ]
    valid = [i for i in range(patients) if kinds[i] not in _PATIENT_REASON]
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
    return _Plan(kinds, shapes, dirt, orphans, deaths, users)


# ---------------------------------------------------------------- time
@cache
def _dst_days() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Day indexes (into ``_DAYS``) of the spring and the autumn clock change in Europe/Stockholm."""
    zone = ZoneInfo(ZONE)
    spring, autumn = [], []
    for index, day in enumerate(_DAYS):
        d = date.fromisoformat(day)
        if d.weekday() != 6:  # the clocks change on a Sunday (in September until 1995, then October)
            continue
        before = datetime(d.year, d.month, d.day, 1, 0, tzinfo=zone).utcoffset()
        after = datetime(d.year, d.month, d.day, 4, 0, tzinfo=zone).utcoffset()
        if before is not None and after is not None and before != after:
            (spring if after > before else autumn).append(index)
    return tuple(spring), tuple(autumn)


@cache
def _dst_dates() -> frozenset[date]:
    spring, autumn = _dst_days()
    return frozenset(date.fromisoformat(_DAYS[i]) for i in (*spring, *autumn))


def _wall(moment: datetime) -> str:
    """A wall-clock time as the source writes it; never in the changing hour of a clock-change day."""
    if moment.hour == 2 and moment.date() in _dst_dates():
        moment += timedelta(hours=1)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


# ---------------------------------------------------------------- pass 2: rows
class _Gen:
    def __init__(self, plan: _Plan, sink: _Sink, rnd: random.Random) -> None:
        self.plan, self.sink, self.rnd, self.r = plan, sink, rnd, rnd.random
        self.ids: Counter[str] = Counter()
        self.positions: Counter[str] = Counter()
        self.turns: Counter[str] = Counter()
        self.identifiers: list[str] = []
        self.used: set[str] = set()
        self.orphan_seq = 0
        self.padded = 0  # code values written with their char(n) padding
        self.icd9 = 0
        self.dst_rows = 0  # clean rows on a clock-change day

    def next_id(self, table: str) -> int:
        self.ids[table] += 1
        return self.ids[table]

    def turn(self, what: str, modulo: int) -> int:
        self.turns[what] += 1
        return (self.turns[what] - 1) % modulo

    def dirt(self, table: str, invalid: bool) -> str | None:
        if invalid:
            return None
        position = self.positions[table]
        self.positions[table] = position + 1
        return self.plan.dirt.get(table, {}).get(position)

    def pick(self, seq: Any) -> Any:
        return seq[int(self.r() * len(seq))]

    def start(self, first: int) -> datetime:
        """A moment of care from day ``first``: one stay in twelve begins on a clock-change day."""
        spring, autumn = _dst_days()
        candidates = [d for d in (*spring, *autumn) if d >= first]
        if candidates and self.r() < 1 / 12:
            day = self.pick(candidates)
            hour = self.pick((0, 1, 3, 4, 5, 8, 11, 14, 17, 20, 23))
        else:
            day = first + int(self.r() * (_LAST - 25 - first + 1))
            hour = int(self.r() * 24)
        return datetime.fromisoformat(_DAYS[day]) + timedelta(hours=hour, minutes=int(self.r() * 60))

    def later(self, moment: datetime, lo_minutes: int, hi_minutes: int) -> datetime:
        return moment + timedelta(minutes=lo_minutes + int(self.r() * (hi_minutes - lo_minutes + 1)))

    def wall(self, moment: datetime) -> str:
        text = _wall(moment)
        if datetime.fromisoformat(text).date() in _dst_dates():
            self.dst_rows += 1
        return text

    def odd_hour(self) -> str:
        """A wall-clock time in the spring gap or the repeated autumn hour (in turn)."""
        spring, autumn = _dst_days()
        day = self.pick(spring if self.turn("odd_hour", 2) == 0 else autumn)
        return f"{_DAYS[day]} 02:{int(self.r() * 60):02d}:{int(self.r() * 60):02d}"

    def sentinel(self) -> str:
        return SENTINELS[self.turn("sentinel", 2)]

    def padded_code(self, code: str, width: int) -> str:
        if len(code) < width:
            self.padded += 1
        return code.ljust(width)

    def text(self) -> str:
        n = 2 + int(self.r() * 3)
        return " ".join(self.pick(v.NOTE_PHRASES) for _ in range(n))

    def orphan_key(self) -> int:
        self.orphan_seq += 1
        return len(self.plan.kinds) + 1000 + self.orphan_seq

    def identifier(self, kind: str, birth: date, male: bool) -> str:
        r = self.r
        while True:
            serial = 1 + int(r() * 998)
            serial += (serial % 2 == 0) == male
            if kind == _SAMORD:
                ident = make_samordning(birth, serial)
            elif kind == _BAD_CHECKSUM:
                ident = make_personnummer(birth, serial)
                ident = ident[:11] + str((int(ident[11]) + 1 + int(r() * 9)) % 10)
            elif kind == _BAD_FORMAT:
                ident = make_personnummer(birth, serial)
                ident = ident[:11] if self.turn("bad_format", 2) else ident[:10] + "O" + ident[11]
            elif kind == _BAD_STHLM:  # a Region Stockholm reservnummer with a wrong check digit
                ident = make_reservnummer_sthlm(birth.year, int(r() * 100000))
                ident = ident[:11] + str((int(ident[11]) + 1 + int(r() * 9)) % 10)
            elif kind == "reservnummer_national":
                ident = f"{birth:%Y%m%d}-{self.pick(_NRID_LETTERS)}{self.pick(_NRID_LETTERS)}{int(r() * 100):02d}"
            elif kind == "reservnummer_skane":
                ident = f"{birth:%y%m%d}{self.pick('DEF')}{self.pick('ABCDEFGHJKLMNPRSTUVXYZ')}{int(r() * 2)}"
                ident += self.pick("ABCDEFGHJKLMNPRSTUVXYZ")
            elif kind == "reservnummer_orebro":
                ident = f"{birth:%Y%m%d}T{self.pick('ABCDEFGHJKLMNPRSTUVXYZ')}{int(r() * 10)}{self.pick('ABCDEFGHIJ')}"
            elif kind == "reservnummer_varmland":
                ident = f"{birth:%Y%m%d}S{self.pick('FUXPL')}{int(r() * 10)}{self.pick('ABCDEFGHJKLMN123456789')}"
            else:
                ident = make_personnummer(birth, serial)
            if ident not in self.used:
                self.used.add(ident)
                self.identifiers.append(ident)
                return ident


def _emit(g: _Gen, index: int, kind: str, shape: _Shape) -> None:
    r, add, invalid = g.r, g.sink.add, kind in _PATIENT_REASON
    patient_id = index + 1
    male = r() < 0.5
    low = date(1950, 1, 1) if kind == _SAMORD else date(1920, 1, 1)
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
        _PATIENT_REASON.get(kind),
    )
    for table, row, reason in rows_after:
        add(table, row, reason)


def _emit_stay(
    g: _Gen, patient_id: int, invalid: bool, stay: _Stay, first: int, out: list[tuple[str, tuple[Any, ...], str | None]]
) -> datetime:
    r = g.r
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
    # transfers: one row per unit, then the discharge
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
    return discharge


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


def _orphan(g: _Gen, table: str) -> None:
    key, moment = g.orphan_key(), g.start(0)
    if table == "anteckning":
        row: tuple[Any, ...] = (g.next_id(table), key, None, "DAG", g.wall(moment), g.text(), g.pick(g.plan.users), 0)
    else:
        row = (g.next_id(table), key, g.pick(g.plan.users), "VIEW", g.wall(moment))
    g.sink.add(table, row, Reason.ORPHAN)


def _reference_rows(g: _Gen) -> None:
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


class _Routed(Writer):
    """One writer per schema: each table's rows go to its schema's."""

    def __init__(self, writers: dict[str, Writer]) -> None:
        self.writers = writers

    def write(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        self.writers[SCHEMA_OF[table]].write(table, rows)

    def finish(self) -> None:
        for w in self.writers.values():
            w.finish()

    def abort(self) -> None:
        for w in self.writers.values():
            w.abort()


def build(target: str, url: str | None, *, seed: int, patients: int, schemas: tuple[str, str] | None = None) -> dict:
    """Build the hospital system; return its dirt report (the shape of :func:`demo.generate.build`'s).

    :param target: the SQLite file of ``adt`` (``klinik`` goes to :func:`klinik_path`), or the URL
    :param url: a ``postgresql://`` URL (then ``target`` is not a file)
    :param schemas: PostgreSQL schema names of ``adt`` and ``klinik`` (default: those names)
    """
    names = dict(zip((ADT, KLINIK), schemas or (ADT, KLINIK), strict=True))
    writers: dict[str, Writer] = {}
    try:
        for schema, tables in TABLES.items():
            if url is not None:
                writers[schema] = PostgresWriter(url, names[schema], tables)
            else:
                path = Path(target) if schema == ADT else klinik_path(target)
                writers[schema] = SqliteWriter(path, tables)
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    writer = _Routed(writers)
    master = random.Random(seed)
    plan_rnd, row_rnd = (random.Random(master.getrandbits(64)) for _ in range(2))
    try:
        plan = _plan(plan_rnd, patients)
        sink = _Sink(writer, _ALL)
        g = _Gen(plan, sink, row_rnd)
        _reference_rows(g)
        for index, (kind, shape) in enumerate(zip(plan.kinds, plan.shapes, strict=True)):
            _emit(g, index, kind, shape)
            for table in plan.orphans.get(index, ()):
                _orphan(g, table)
        sink.flush()
        _check_identities(g)
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    report = _report(seed, patients, plan, sink, g, names)
    if url is None:
        _write_json(Path(str(target) + DIRT_SUFFIX), report)
    return report


def _check_identities(g: _Gen) -> None:
    """The identity classifier must agree with what was generated (type, reason and scheme)."""
    found = classify(pd.Series(g.identifiers, dtype=object))
    rows = zip(found["id_type"].tolist(), found["reason"].tolist(), found["scheme"].tolist(), strict=True)
    for kind, (id_type, reason, scheme) in zip(g.plan.kinds, rows, strict=True):
        if kind in _PATIENT_REASON:
            ok = id_type == IdType.INVALID.value and reason == _PATIENT_REASON[kind]
            ok = ok and (kind != _BAD_STHLM or scheme == "reservnummer_stockholm")
        elif kind in _RESERV:
            ok = id_type == IdType.RESERVNUMMER.value and scheme == kind
        else:
            ok = id_type == kind and reason is None
        if not ok:
            raise RuntimeError("generated identifiers disagree with decommission.mapping.identity.classify")


def _report(seed: int, patients: int, plan: _Plan, sink: _Sink, g: _Gen, names: dict[str, str]) -> dict:
    kinds = Counter(plan.kinds)
    total: Counter[str] = Counter()
    for counter in sink.reasons.values():
        total.update(counter)
    return {
        "system": SYSTEM,
        "seed": seed,
        "patients": patients,
        "schemas": {names[schema]: [t.name for t in tables] for schema, tables in TABLES.items()},
        "tables": {t.name: sink.rows[t.name] for t in _ALL},
        "identities": {
            "personnummer": kinds[_PNR],
            "samordningsnummer": kinds[_SAMORD],
            "reservnummer": sum(kinds[k] for k in _RESERV),
            "reservnummer_by_scheme": {k: kinds[k] for k in _RESERV},
        },
        "dirt": {
            "invalid_personnummer_checksum": kinds[_BAD_CHECKSUM],
            "invalid_personnummer_format": kinds[_BAD_FORMAT],
            "invalid_reservnummer_checksum": kinds[_BAD_STHLM],
            **{key: total[reason] for key, reason in _DIRT_KEYS},
        },
        "clean_but_hard": {
            "padded_codes": g.padded,
            "icd9_diagnoses": g.icd9,
            "rows_on_clock_change_days": g.dst_rows,
            "deaths": len(plan.deaths),
        },
        "expected_findings": {
            t.name: {reason: sink.reasons[t.name][reason] for reason in Reason.ORDER if sink.reasons[t.name][reason]}
            for t in _ALL
            if sink.reasons[t.name]
        },
        "corrections": [],
        "placeholder_patients": g.orphan_seq,
    }
