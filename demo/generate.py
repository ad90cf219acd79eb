"""Build synthetic legacy care databases with known dirt: ``vas``, ``lab``, ``anestesi``.

Everything is derived from ``random.Random(seed)``, never from the clock: the same
system, seed and size give the same database content. Generation runs in two passes:
a cheap plan (identity kind and row counts per patient, then the exact rows that get
dirt) and a streaming pass that writes rows in batches. Each dirty row carries exactly
one kind of dirt, only on rows of patients with a valid identifier; rows of patients
with an invalid identifier are otherwise clean (the patient is archived whole, flagged).
The returned dirt report's ``expected_findings`` is the tally of the reason each row
must get from the mapping engine; ``corrections`` the rows planted for the demo's
correction list (``include/mappings/corrections/<system>.yaml``); :func:`expected_outcome` splits
the findings into archived flagged, corrected and disposed by the mapping spec's
dispositions, as the reconciliation must count them.

Value formats: vas times ``YYYY-MM-DD HH:MM:SS`` (TEXT in SQLite, TIMESTAMP in
PostgreSQL), Europe/Stockholm wall-clock, hours 06-23 only (never the DST gap or
overlap); lab ``inkom`` ``YYYY-MM-DDTHH:MM:SS`` text and ``svarstid`` epoch seconds
(UTC); anestesi ``op_datum`` ``YYYY-MM-DD HH:MM`` text, whose sentinels are therefore
``1900-01-01 00:00`` / ``9999-12-31 00:00``. Clinical dates lie in 1995-01-01 ..
2024-06-30.

The vocabulary lives in :mod:`demo.vocab`, the attachment bytes in :mod:`demo.files` and
the SQLite and PostgreSQL targets in :mod:`demo.writers`.

Command line: ``python -m demo.generate --system vas --target out/demo/sources/vas.sqlite``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

# `python -m demo.generate` or `python demo/generate.py` from a plain checkout: the product's
# package lives in plugins/, the demo package at the repository root
for _path in (Path(__file__).resolve().parents[1] / "plugins", Path(__file__).resolve().parents[1]):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from decommission.mapping.identity import (  # noqa: E402 - needs the path above
    IdType,
    classify,
    make_personnummer,
    make_reservnummer_carelink,
    make_reservnummer_sthlm,
    make_reservnummer_vgr,
    make_samordningsnummer,
)
from decommission.mapping.rules import RULE_REASON  # noqa: E402
from decommission.model import Disposition, Reason  # noqa: E402
from decommission.plan.mapping_spec import MappingSpec  # noqa: E402
from demo.files import jpeg, pdf, tiff  # noqa: E402
from demo.vocab import (  # noqa: E402
    ANA_FORMS,
    ANA_PHRASES,
    ANALYSES,
    ASA,
    ATTACHMENTS,
    BAD_ATC,
    BAD_ICD,
    BAD_NPU,
    CONTACT_TYPES,
    DAMAGE,
    EVENTS,
    FAMILY,
    ICD,
    MEDICINES,
    MEN,
    NOTE_TEMPLATES,
    PHRASES,
    UNITS,
    WOMEN,
    XML_ILLEGAL,
)
from demo.writers import PostgresWriter, SqliteWriter, Table, Writer  # noqa: E402

__all__ = ["HOSPITAL", "MIN_PATIENTS", "SYSTEMS", "build", "expected_outcome", "main"]

SYSTEMS = ("vas", "lab", "anestesi")
#: the hospital-shaped system of two schemas (:mod:`demo.sjukhus`)
HOSPITAL = "sjukhus"
#: Fewer patients cannot hold every kind of dirt plus the clean majority.
MIN_PATIENTS = 10
FIRST_DAY = date(1995, 1, 1)
LAST_DAY = date(2024, 6, 30)
SENTINELS = ("1900-01-01 00:00:00", "9999-12-31 00:00:00")
DIRT_SUFFIX = ".dirt.json"

_DAYS = [date.fromordinal(o).isoformat() for o in range(FIRST_DAY.toordinal(), LAST_DAY.toordinal() + 1)]
_LAST = len(_DAYS) - 1
_PG_URL = re.compile(r"^postgres(?:ql)?(?:\+[a-z0-9_]+)?://", re.IGNORECASE)
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# identity kinds of the plan
_PNR, _SAMORD = "personnummer", "samordningsnummer"
_R_STHLM, _R_VGR, _R_CARELINK = "reserv_sthlm", "reserv_vgr", "reserv_carelink"
_BAD_CHECKSUM, _BAD_FORMAT = "bad_checksum", "bad_format"
_RESERV = (_R_STHLM, _R_VGR, _R_CARELINK)
_ANY_RESERV = "reservnummer"  # in the shares below: the three regional formats in turn
_PATIENT_REASON = {_BAD_CHECKSUM: Reason.ID_INVALID_CHECKSUM, _BAD_FORMAT: Reason.ID_INVALID_FORMAT}
_IDENTITY_SHARES = ((_BAD_CHECKSUM, 0.015), (_BAD_FORMAT, 0.01), (_SAMORD, 0.03), (_ANY_RESERV, 0.02))


# ---------------------------------------------------------------- schemas and dirt
def _cols(spec: str) -> tuple[tuple[str, str, str], ...]:
    types = {
        "i": ("INTEGER", "integer"),
        "b": ("INTEGER", "bigint"),
        "t": ("TEXT", "text"),
        "ts": ("TEXT", "timestamp"),
        "blob": ("BLOB", "bytea"),
    }
    return tuple((name, *types[kind]) for name, kind in (item.split(":") for item in spec.split()))


_SCHEMAS: dict[str, tuple[Table, ...]] = {
    "vas": (
        Table("patient", _cols("pat_id:i personnr:t fornamn:t efternamn:t kon:t skyddad_id:i sparr:i"), None),
        Table(
            "vardkontakt", _cols("kontakt_id:i pat_id:i vardenhet:t kontakttyp:t start_tid:ts slut_tid:ts"), "pat_id"
        ),
        Table(
            "journalanteckning",
            _cols("ant_id:i pat_id:i kontakt_id:i skriven_tid:ts sokord:t anteckning:t signerad_av:t makulerad:i"),
            "pat_id",
        ),
        Table("diagnos", _cols("diag_id:i pat_id:i kontakt_id:i icd10:t diagnos_tid:ts makulerad:i"), "pat_id"),
        Table("lakemedel", _cols("lm_id:i pat_id:i atc:t preparat:t dosering:t ordinerad_tid:ts"), "pat_id"),
        Table(
            "labsvar", _cols("svar_id:i pat_id:i kontakt_id:i npu_kod:t analys:t varde:t enhet:t provtid:ts"), "pat_id"
        ),
        Table("bilaga", _cols("bilaga_id:i pat_id:i ant_id:i filnamn:t mimetyp:t innehall:blob"), "pat_id", 200),
        Table("atkomstlogg", _cols("logg_id:i pat_id:i anvandare:t tid:ts handelse:t"), "pat_id"),
    ),
    "lab": (
        Table("lab_patient", _cols("lid:i pnr:t namn:t kon:t"), None),
        Table("remiss", _cols("remiss_id:i lid:i avdelning:t inkom:t"), "lid"),
        Table(
            "prov",
            _cols("prov_id:i remiss_id:i lid:i npu:t analysnamn:t resultat:t enhet:t svarstid:b status:t"),
            "lid",
        ),
    ),
    "anestesi": (
        Table("ana_patient", _cols("id:i personnummer:t fornamn:t efternamn:t"), None),
        Table(
            "operation",
            _cols("op_id:i patient:i op_datum:t asa_klass:t anestesiform:t anteckning:t makulerad:i"),
            "patient",
        ),
    ),
}
_R = Reason
# table -> ((reason, share of the valid patients' rows), ...); every listed kind appears at least once
_DIRT: dict[str, dict[str, tuple[tuple[str, float], ...]]] = {
    "vas": {
        "journalanteckning": (
            (_R.SOFT_DELETED, 0.008),
            (_R.SENTINEL_DATE, 0.004),
            (_R.XML_ILLEGAL_CHAR, 0.004),
            (_R.ENCODING_SUSPECT, 0.006),
        ),
        "diagnos": ((_R.CODE_INVALID, 0.01), (_R.SOFT_DELETED, 0.01)),
        "lakemedel": ((_R.CODE_INVALID, 0.01), (_R.SENTINEL_DATE, 0.005)),
        "labsvar": ((_R.CODE_INVALID, 0.008),),
        "bilaga": ((_R.EMPTY_ATTACHMENT, 0.01),),
    },
    "lab": {"prov": ((_R.SOFT_DELETED, 0.01), (_R.CODE_INVALID, 0.006), (_R.XML_ILLEGAL_CHAR, 0.004))},
    "anestesi": {"operation": ((_R.ENCODING_SUSPECT, 0.01), (_R.SOFT_DELETED, 0.01), (_R.SENTINEL_DATE, 0.006))},
}
# table -> orphan rows as a share of the valid patients' rows
_ORPHANS: dict[str, dict[str, float]] = {
    "vas": {"journalanteckning": 0.003, "diagnos": 0.005, "labsvar": 0.004},
    "lab": {"prov": 0.004},
    "anestesi": {},
}
#: rows planted for the demo's correction list: (table, key, column, value written, corrected value, reason);
#: include/mappings/corrections/<system>.yaml corrects them (a test checks the two agree)
_CORRECTIONS: dict[str, tuple[tuple[str, int, str, str, str, str], ...]] = {
    "vas": (("diagnos", 1, "icd10", "J18,9", "J18.9", _R.CODE_INVALID),),
}
_DIRT_KEYS = (
    ("orphan_rows", _R.ORPHAN),
    ("encoding_damage", _R.ENCODING_SUSPECT),
    ("xml_illegal_chars", _R.XML_ILLEGAL_CHAR),
    ("sentinel_dates", _R.SENTINEL_DATE),
    ("soft_deleted", _R.SOFT_DELETED),
    ("empty_attachments", _R.EMPTY_ATTACHMENT),
    ("invalid_codes", _R.CODE_INVALID),
)


# ---------------------------------------------------------------- pass 1: the plan
@dataclass
class _Plan:
    kinds: list[str]  # identity kind per patient
    shapes: list[tuple[int, ...]]  # row counts per patient, see _shape
    dirt: dict[str, dict[int, str]]  # table -> position among valid patients' rows -> reason
    orphans: dict[int, list[str]]  # patient index -> tables that get an orphan row after it
    users: list[str]  # HSA-like user ids


def _shape(system: str, rnd: random.Random) -> tuple[int, ...]:
    """Row counts of one patient. vas: contacts, notes, diagnoses, medications, lab results,
    attachments, log entries; lab: tests per referral; anestesi: operations."""
    ri = rnd.randint
    if system == "vas":
        u = rnd.random()
        attachments = 2 if u < 0.025 else 1 if u < 0.275 else 0
        return (ri(1, 7), ri(4, 16), ri(1, 4), ri(1, 4), ri(1, 9), attachments, ri(2, 8))
    if system == "lab":
        return tuple(ri(1, 7) for _ in range(ri(1, 5)))
    return (ri(1, 3),)


def _dirt_rows(system: str, shape: tuple[int, ...]) -> dict[str, int]:
    """Rows per dirt-bearing table of one patient."""
    if system == "vas":
        return {
            "journalanteckning": shape[1],
            "diagnos": shape[2],
            "lakemedel": shape[3],
            "labsvar": shape[4],
            "bilaga": shape[5],
        }
    if system == "lab":
        return {"prov": sum(shape)}
    return {"operation": shape[0]}


def _plan(system: str, rnd: random.Random, patients: int) -> _Plan:
    counts = {kind: max(1, round(share * patients)) for kind, share in _IDENTITY_SHARES}
    # the first patient keeps a valid personnummer: their first diagnosis is the planted correction
    special = rnd.sample(range(1, patients), sum(counts.values()))
    kinds = [_PNR] * patients
    for kind, n in counts.items():
        for i, index in enumerate(special[:n]):
            kinds[index] = _RESERV[i % 3] if kind == _ANY_RESERV else kind
        special = special[n:]
    shapes = [_shape(system, rnd) for _ in range(patients)]
    valid = [i for i in range(patients) if kinds[i] not in _PATIENT_REASON]
    if system == "vas" and not any(shapes[i][5] for i in valid):  # at least one attachment can be empty
        shapes[valid[0]] = (*shapes[valid[0]][:5], 1, shapes[valid[0]][6])
    totals: Counter[str] = Counter()
    for i in valid:
        totals.update(_dirt_rows(system, shapes[i]))
    dirt: dict[str, dict[int, str]] = {}
    for table, kinds_of_dirt in _DIRT[system].items():
        wanted = [(reason, max(1, round(share * totals[table]))) for reason, share in kinds_of_dirt]
        first = 1 if any(c[0] == table for c in _CORRECTIONS.get(system, ())) else 0  # the planted row: no dirt
        positions = rnd.sample(range(first, totals[table]), sum(n for _, n in wanted))
        dirt[table] = {}
        for reason, n in wanted:
            dirt[table].update(dict.fromkeys(positions[:n], reason))
            positions = positions[n:]
    orphans: dict[int, list[str]] = {}
    for table, share in _ORPHANS[system].items():
        for _ in range(max(1, round(share * totals[table]))):
            orphans.setdefault(rnd.randrange(patients), []).append(table)
    alphabet = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
    users = sorted({"SE2321000230-" + "".join(rnd.choices(alphabet, k=5)) for _ in range(60)})
    return _Plan(kinds, shapes, dirt, orphans, users)


# ---------------------------------------------------------------- pass 2: rows
@dataclass
class _Person:
    ident: str
    given: str
    family: str
    male: bool
    first_day: int  # index into _DAYS of the first day with care


class _Sink:
    """Buffers rows per table, writes them in batches and tallies reasons."""

    def __init__(self, writer: Writer, tables: Sequence[Table]) -> None:
        self.writer = writer
        self.batch = {t.name: t.batch for t in tables}
        self.buffers: dict[str, list[tuple[Any, ...]]] = {t.name: [] for t in tables}
        self.rows: Counter[str] = Counter()
        self.reasons: dict[str, Counter[str]] = {t.name: Counter() for t in tables}

    def add(self, table: str, row: tuple[Any, ...], reason: str | None) -> None:
        buffer = self.buffers[table]
        buffer.append(row)
        self.rows[table] += 1
        if reason is not None:
            self.reasons[table][reason] += 1
        if len(buffer) >= self.batch[table]:
            self.writer.write(table, buffer)
            self.buffers[table] = []

    def flush(self) -> None:
        for table, buffer in self.buffers.items():
            if buffer:
                self.writer.write(table, buffer)
            self.buffers[table] = []


class Counters:
    """What every demo generator counts: ids per table, each table's row positions (where the plan put its
    dirt), the turn of each kind of dirt's variant, the identifiers handed out. ``plan.dirt`` maps a
    table to {row position: reason}."""

    plan: Any

    def __init__(self) -> None:
        self.ids: Counter[str] = Counter()
        self.positions: Counter[str] = Counter()
        self.turns: Counter[str] = Counter()  # rotates the variant of a kind of dirt
        self.used: set[str] = set()
        self.identifiers: list[str] = []
        self.orphan_seq = 0

    def next_id(self, table: str) -> int:
        self.ids[table] += 1
        return self.ids[table]

    def turn(self, what: str, modulo: int) -> int:
        self.turns[what] += 1
        return (self.turns[what] - 1) % modulo

    def dirt(self, table: str, invalid: bool) -> str | None:
        """The reason planted in this table's next row (None: clean); a row of an invalid patient takes no turn."""
        if invalid:
            return None
        position = self.positions[table]
        self.positions[table] = position + 1
        return self.plan.dirt.get(table, {}).get(position)


class _Gen(Counters):
    """Pass-2 state: random streams, id counters, dirt positions, value makers."""

    def __init__(self, system: str, plan: _Plan, sink: _Sink, rnd: random.Random, blobs: random.Random) -> None:
        super().__init__()
        self.system, self.plan, self.sink = system, plan, sink
        self.rnd, self.r, self.blobs = rnd, rnd.random, blobs

    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.r() * len(seq))]

    def day(self, first: int, last: int = _LAST - 5) -> int:
        return first + int(self.r() * (last - first + 1))

    def clock(self, lo: int = 7, hi: int = 21) -> tuple[int, int, int]:
        r = self.r
        return lo + int(r() * (hi - lo + 1)), int(r() * 60), int(r() * 60)

    def ts(self, day: int, lo: int = 7, hi: int = 21) -> str:
        h, m, s = self.clock(lo, hi)
        return f"{_DAYS[day]} {h:02d}:{m:02d}:{s:02d}"

    def sentinel(self, minutes_only: bool = False) -> str:
        value = SENTINELS[self.turn("sentinel", 2)]
        return value[:16] if minutes_only else value

    def person(self, kind: str, style: str) -> _Person:
        r = self.r
        male = r() < 0.5
        low = date(1950, 1, 1) if kind == _SAMORD else date(1925, 1, 1)
        while True:
            birth = date.fromordinal(low.toordinal() + int(r() * (date(2023, 12, 31).toordinal() - low.toordinal())))
            serial = 1 + int(r() * 998)
            serial += (serial % 2 == 0) == male  # odd serial for men, even for women
            ident = self._identifier(kind, birth, serial, style)
            if ident not in self.used:
                break
        self.used.add(ident)
        self.identifiers.append(ident)
        given = self.pick(MEN if male else WOMEN)
        return _Person(ident, given, self.pick(FAMILY), male, max(0, birth.toordinal() - FIRST_DAY.toordinal()))

    def _identifier(self, kind: str, birth: date, serial: int, style: str) -> str:
        r = self.r
        if kind == _R_STHLM:
            return make_reservnummer_sthlm(birth.year, int(r() * 100000))
        if kind == _R_VGR:
            return make_reservnummer_vgr(birth, "KMX"[int(r() * 26) % 3], 6 + int(r() * 1000) % 84)
        if kind == _R_CARELINK:
            number = make_reservnummer_carelink(birth.year, birth.month, 32 + int(r() * 28), serial)
        elif kind == _SAMORD:
            number = make_samordningsnummer(birth, serial)
        elif kind == _BAD_CHECKSUM:
            number = make_personnummer(birth, serial)
            number = number[:11] + str((int(number[11]) + 1 + int(r() * 9)) % 10)
        elif kind == _BAD_FORMAT:
            number = make_personnummer(birth, serial)
            variant = self.turn("bad_format", 3)
            if variant == 0:  # serial 000 with a correct check digit
                number = make_personnummer(birth, 0)
            elif variant == 1:  # a digit lost
                number = number[:11]
            else:  # letter O for a zero, after the date (never the Västra Götaland letter place)
                number = number[:10] + "O" + number[11]
        else:
            number = make_personnummer(birth, serial)
        return number[:8] + "-" + number[8:] if style == "hyphen" else number

    def text(self, phrases: Sequence[tuple[str, Sequence[str]]], minimum: int) -> str:
        r = self.r
        parts = []
        for heading, pool in phrases:
            u = r()
            wanted = 1 if u < 0.25 else 2 if u < 0.8 else 3
            chosen: list[int] = []
            while len(chosen) < wanted:  # distinct sentences within a section
                i = int(r() * len(pool))
                if i not in chosen:
                    chosen.append(i)
            parts.append(f"{heading}: {' '.join(self._fill(pool[i]) for i in chosen)}")
        text = "\n".join(parts)
        while len(text) < minimum:
            text += " " + self._fill(self.pick(phrases[-1][1]))
        return text

    def note(self) -> tuple[str, str]:
        template = self.pick(NOTE_TEMPLATES)
        return template[0], self.text([(h, PHRASES[h]) for h in template], 200)

    def _fill(self, sentence: str) -> str:
        if "{" not in sentence:
            return sentence
        r = self.r
        return sentence.format(
            n=2 + int(r() * 9),
            side="höger" if r() < 0.5 else "vänster",
            bts=110 + int(r() * 60),
            btd=60 + int(r() * 35),
            puls=52 + int(r() * 60),
            sat=88 + int(r() * 12),
            crp=5 + int(r() * 250),
            temp=f"{36 + r() * 3.5:.1f}".replace(".", ","),
        )

    def damage_encoding(self, text: str) -> str:
        if not any(ch in text for ch in "åäö"):
            text += " Åter för kontroll på måndag."
        return text.translate(DAMAGE[self.turn("encoding", 3)])

    def damage_xml(self, text: str) -> str:
        at = int(self.r() * (len(text) + 1))
        return text[:at] + self.pick(XML_ILLEGAL) + text[at:]

    def lab_value(self, analysis: tuple[Any, ...]) -> str:
        low, high, decimals = analysis[3], analysis[4], analysis[5]
        return f"{low + self.r() * (high - low):.{decimals}f}".replace(".", ",")

    def orphan_key(self) -> int:
        self.orphan_seq += 1
        return len(self.plan.kinds) + 1000 + self.orphan_seq

    def attachment(self) -> tuple[str, str, bytes]:
        mimetype, names = self.pick(ATTACHMENTS)
        size = 1024 + int(self.r() * 19 * 1024)
        maker = {"application/pdf": pdf, "image/tiff": tiff, "image/jpeg": jpeg}[mimetype]
        return self.pick(names), mimetype, maker(self.blobs, size)


def _emit_vas(g: _Gen, index: int, kind: str, shape: tuple[int, ...]) -> None:
    r, add, invalid = g.r, g.sink.add, kind in _PATIENT_REASON
    p = g.person(kind, "compact")
    pat_id = index + 1
    add(
        "patient",
        (pat_id, p.ident, p.given, p.family, "M" if p.male else "K", int(r() < 0.02), int(r() < 0.03)),
        _PATIENT_REASON.get(kind),
    )
    n_contacts, n_notes, n_diag, n_med, n_lab, n_att, n_log = shape
    contacts = []
    for _ in range(n_contacts):
        kontakt_id, day, typ = g.next_id("vardkontakt"), g.day(p.first_day), g.pick(CONTACT_TYPES)
        h, m, s = g.clock()
        if typ == "Slutenvård":
            end = g.ts(min(day + 1 + int(r() * 10), _LAST))
        elif typ == "Öppenvård":
            minute = h * 60 + m + 15 + int(r() * 76)
            end = f"{_DAYS[day]} {minute // 60:02d}:{minute % 60:02d}:{s:02d}"
        else:
            end = None
        add(
            "vardkontakt",
            (kontakt_id, pat_id, g.pick(UNITS), typ, f"{_DAYS[day]} {h:02d}:{m:02d}:{s:02d}", end),
            None,
        )
        contacts.append((kontakt_id, day))
    clean_notes = []
    for _ in range(n_notes):
        ant_id, dirt = g.next_id("journalanteckning"), g.dirt("journalanteckning", invalid)
        kontakt_id, day = _contact_or_none(g, contacts, p, 0.8)
        when, (sokord, text), deleted = g.ts(day), g.note(), 0
        if dirt == Reason.SOFT_DELETED:
            deleted = 1
        elif dirt == Reason.SENTINEL_DATE:
            when = g.sentinel()
        elif dirt == Reason.XML_ILLEGAL_CHAR:
            text = g.damage_xml(text)
        elif dirt == Reason.ENCODING_SUSPECT:
            text = g.damage_encoding(text)
        add(
            "journalanteckning",
            (ant_id, pat_id, kontakt_id, when, sokord, text, g.pick(g.plan.users), deleted),
            dirt,
        )
        if dirt is None:
            clean_notes.append(ant_id)
    for _ in range(n_diag):
        diag_id, dirt = g.next_id("diagnos"), g.dirt("diagnos", invalid)
        kontakt_id, day = _contact_or_none(g, contacts, p, 0.7)
        code = g.pick(BAD_ICD) if dirt == Reason.CODE_INVALID else g.pick(ICD)
        if diag_id == 1:  # the planted correction (patient 1 is valid, position 0 carries no dirt)
            code, dirt = _CORRECTIONS["vas"][0][3], _CORRECTIONS["vas"][0][5]
        add("diagnos", (diag_id, pat_id, kontakt_id, code, g.ts(day), int(dirt == Reason.SOFT_DELETED)), dirt)
    for _ in range(n_med):
        lm_id, dirt = g.next_id("lakemedel"), g.dirt("lakemedel", invalid)
        atc, product, dose = g.pick(MEDICINES)
        atc = g.pick(BAD_ATC) if dirt == Reason.CODE_INVALID else atc
        when = g.sentinel() if dirt == Reason.SENTINEL_DATE else g.ts(g.day(p.first_day))
        add("lakemedel", (lm_id, pat_id, atc, product, dose, when), dirt)
    for _ in range(n_lab):
        svar_id, dirt = g.next_id("labsvar"), g.dirt("labsvar", invalid)
        kontakt_id, day = _contact_or_none(g, contacts, p, 0.6)
        analysis = g.pick(ANALYSES)
        code = g.pick(BAD_NPU) if dirt == Reason.CODE_INVALID else analysis[0]
        add(
            "labsvar",
            (svar_id, pat_id, kontakt_id, code, analysis[1], g.lab_value(analysis), analysis[2], g.ts(day)),
            dirt,
        )
    for _ in range(n_att):
        bilaga_id, dirt = g.next_id("bilaga"), g.dirt("bilaga", invalid)
        ant_id = g.pick(clean_notes) if clean_notes and r() < 0.9 else None
        name, mimetype, content = g.attachment()
        add("bilaga", (bilaga_id, pat_id, ant_id, name, mimetype, b"" if dirt else content), dirt)
    for _ in range(n_log):
        when = g.ts(g.day(p.first_day, _LAST), 6, 22)
        add("atkomstlogg", (g.next_id("atkomstlogg"), pat_id, g.pick(g.plan.users), when, g.pick(EVENTS)), None)


def _contact_or_none(g: _Gen, contacts: list[tuple[int, int]], p: _Person, share: float) -> tuple[int | None, int]:
    if contacts and g.r() < share:
        kontakt_id, day = g.pick(contacts)
        return kontakt_id, day + int(g.r() * 4)
    return None, g.day(p.first_day)


def _orphan_vas(g: _Gen, table: str) -> None:
    key, day = g.orphan_key(), g.day(0)
    if table == "journalanteckning":
        sokord, text = g.note()
        row: tuple[Any, ...] = (g.next_id(table), key, None, g.ts(day), sokord, text, g.pick(g.plan.users), 0)
    elif table == "diagnos":
        row = (g.next_id(table), key, None, g.pick(ICD), g.ts(day), 0)
    else:
        analysis = g.pick(ANALYSES)
        row = (g.next_id(table), key, None, analysis[0], analysis[1], g.lab_value(analysis), analysis[2], g.ts(day))
    g.sink.add(table, row, Reason.ORPHAN)


def _emit_lab(g: _Gen, index: int, kind: str, shape: tuple[int, ...]) -> None:
    r, add, invalid = g.r, g.sink.add, kind in _PATIENT_REASON
    p = g.person(kind, "hyphen")  # reservnummer of Stockholm and Västra Götaland keep their own form
    lid = index + 1
    add("lab_patient", (lid, p.ident, f"{p.family}, {p.given}", "M" if p.male else "F"), _PATIENT_REASON.get(kind))
    for tests in shape:
        remiss_id, day = g.next_id("remiss"), g.day(p.first_day)
        h, m, s = g.clock(7, 16)
        add("remiss", (remiss_id, lid, g.pick(UNITS), f"{_DAYS[day]}T{h:02d}:{m:02d}:{s:02d}"), None)
        received = _epoch(day, h, m, s)
        for _ in range(tests):
            prov_id, dirt = g.next_id("prov"), g.dirt("prov", invalid)
            analysis = g.pick(ANALYSES)
            code = g.pick(BAD_NPU) if dirt == Reason.CODE_INVALID else analysis[0]
            result = g.lab_value(analysis)
            result = g.damage_xml(result) if dirt == Reason.XML_ILLEGAL_CHAR else result
            status = "M" if dirt == Reason.SOFT_DELETED else "K"
            answered = received + 3600 + int(r() * 5 * 3600)
            add(
                "prov",
                (prov_id, remiss_id, lid, code, analysis[1], result, analysis[2], answered, status),
                dirt,
            )


def _orphan_lab(g: _Gen, table: str) -> None:
    key = g.orphan_key()
    remiss_id = sum(len(shape) for shape in g.plan.shapes) + 1000 + g.orphan_seq
    analysis, day = g.pick(ANALYSES), g.day(0)
    h, m, s = g.clock(8, 22)
    row = (
        g.next_id(table),
        remiss_id,
        key,
        analysis[0],
        analysis[1],
        g.lab_value(analysis),
        analysis[2],
        _epoch(day, h, m, s),
        "K",
    )
    g.sink.add(table, row, Reason.ORPHAN)


def _emit_anestesi(g: _Gen, index: int, kind: str, shape: tuple[int, ...]) -> None:
    add, invalid = g.sink.add, kind in _PATIENT_REASON
    p = g.person(kind, "compact")
    add("ana_patient", (index + 1, p.ident, p.given, p.family), _PATIENT_REASON.get(kind))
    for _ in range(shape[0]):
        op_id, dirt = g.next_id("operation"), g.dirt("operation", invalid)
        h, m, _s = g.clock(7, 20)
        when = f"{_DAYS[g.day(p.first_day)]} {h:02d}:{m:02d}"
        text = g.text(ANA_PHRASES, 150)
        if dirt == Reason.SENTINEL_DATE:
            when = g.sentinel(minutes_only=True)
        elif dirt == Reason.ENCODING_SUSPECT:
            text = g.damage_encoding(text)
        add(
            "operation",
            (op_id, index + 1, when, g.pick(ASA), g.pick(ANA_FORMS), text, int(dirt == Reason.SOFT_DELETED)),
            dirt,
        )


_EMITTERS: dict[str, tuple[Callable[..., None], Callable[[_Gen, str], None] | None]] = {
    "vas": (_emit_vas, _orphan_vas),
    "lab": (_emit_lab, _orphan_lab),
    "anestesi": (_emit_anestesi, None),
}


@cache
def _day_offsets() -> tuple[int, ...]:
    """UTC offset in seconds of each day of _DAYS at noon (right for 04:00-23:59 local)."""
    zone = ZoneInfo("Europe/Stockholm")
    noons = (datetime.fromisoformat(f"{d}T12:00:00").replace(tzinfo=zone) for d in _DAYS)
    return tuple(int(noon.utcoffset().total_seconds()) for noon in noons)  # type: ignore[union-attr]


def _epoch(day: int, h: int, m: int, s: int) -> int:
    """Epoch seconds (UTC) of a Europe/Stockholm wall-clock time on day index ``day``."""
    midnight = (FIRST_DAY.toordinal() + day - date(1970, 1, 1).toordinal()) * 86400
    return midnight + h * 3600 + m * 60 + s - _day_offsets()[day]


# ---------------------------------------------------------------- build
def build(
    system: str,
    target: str,
    *,
    seed: int = 7,
    patients: int = 200,
    schema: str | None = None,
    klinik_schema: str | None = None,
) -> dict:
    """Build one demo legacy system and return its dirt report.

    :param system: ``vas``, ``lab``, ``anestesi`` or ``sjukhus`` (two schemas: on SQLite a second file
        beside ``target``, :func:`demo.sjukhus.klinik_path`).
    :param target: a SQLite file path (written atomically via ``<file>.tmp``; the dirt
        report goes to ``<file>.dirt.json``) or a ``postgresql://`` URL (the schema is
        dropped and recreated).
    :param seed: seed of every random choice.
    :param patients: number of patient rows, at least :data:`MIN_PATIENTS`.
    :param schema: PostgreSQL schema; default: the system's name (``sjukhus``: ``adt``).
    :param klinik_schema: ``sjukhus`` on PostgreSQL: the second schema's name (default ``klinik``).
    :returns: the dirt report: ``system``, ``seed``, ``patients``, ``tables`` (rows per
        table), ``identities``, ``dirt``, ``expected_findings`` (table -> reason -> rows,
        non-zero entries only: each row under its first reason), ``corrections`` (the rows
        planted for the demo's correction list) and ``placeholder_patients`` (the distinct
        patient keys orphan rows name, each becoming a placeholder patient in the archive).
    :raises ValueError: for an unknown system, too few patients or a bad schema name.
    """
    if system not in (*SYSTEMS, HOSPITAL):
        raise ValueError(f"system must be one of {', '.join((*SYSTEMS, HOSPITAL))}, got {system!r}")
    if isinstance(patients, bool) or not isinstance(patients, int) or patients < MIN_PATIENTS:
        raise ValueError(f"patients must be an integer of at least {MIN_PATIENTS}, got {patients!r}")
    if system == HOSPITAL:
        return _build_hospital(target, seed, patients, schema, klinik_schema)
    tables = _SCHEMAS[system]
    postgres = bool(_PG_URL.match(str(target)))
    if postgres:
        schema = schema or system
        if not _SCHEMA_NAME.match(schema) or schema == "public" or schema.startswith("pg_"):
            raise ValueError(f"schema must be a lower-case identifier other than public and pg_*, got {schema!r}")
        url = re.sub(r"^postgres(?:ql)?(?:\+[a-z0-9_]+)?://", "postgresql://", str(target), flags=re.IGNORECASE)
        writer: Writer = PostgresWriter(url, schema, tables)
    else:
        writer = SqliteWriter(Path(target), tables)
    master = random.Random(seed)
    plan_rnd, row_rnd, blob_rnd = (random.Random(master.getrandbits(64)) for _ in range(3))
    try:
        plan = _plan(system, plan_rnd, patients)
        sink = _Sink(writer, tables)
        g = _Gen(system, plan, sink, row_rnd, blob_rnd)
        emit, orphan = _EMITTERS[system]
        for index, (kind, shape) in enumerate(zip(plan.kinds, plan.shapes, strict=True)):
            emit(g, index, kind, shape)
            for table in plan.orphans.get(index, ()):
                orphan(g, table)  # type: ignore[misc]
        sink.flush()
        _check_identities(g)
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    report = _report(system, seed, patients, tables, plan, sink, g.orphan_seq)
    if not postgres:
        _write_json(Path(str(target) + DIRT_SUFFIX), report)
    return report


def _build_hospital(target: str, seed: int, patients: int, schema: str | None, klinik: str | None) -> dict:
    from demo import sjukhus

    if not _PG_URL.match(str(target)):
        return sjukhus.build(target, None, seed=seed, patients=patients)
    names = (schema or sjukhus.ADT, klinik or sjukhus.KLINIK)
    for name in names:
        if not _SCHEMA_NAME.match(name) or name == "public" or name.startswith("pg_"):
            raise ValueError(f"schema must be a lower-case identifier other than public and pg_*, got {name!r}")
    url = re.sub(r"^postgres(?:ql)?(?:\+[a-z0-9_]+)?://", "postgresql://", str(target), flags=re.IGNORECASE)
    return sjukhus.build(target, url, seed=seed, patients=patients, schemas=names)


def _check_identities(g: _Gen) -> None:
    """Make sure the identity classifier agrees with what was generated."""
    found = classify(pd.Series(g.identifiers, dtype=object))
    expected = [
        IdType.INVALID.value if k in _PATIENT_REASON else IdType.RESERVNUMMER.value if k in _RESERV else k
        for k in g.plan.kinds
    ]
    reasons = [_PATIENT_REASON.get(k) for k in g.plan.kinds]
    if found["id_type"].tolist() != expected or found["reason"].tolist() != reasons:
        raise RuntimeError("generated identifiers disagree with decommission.mapping.identity.classify")


def _report(
    system: str, seed: int, patients: int, tables: Sequence[Table], plan: _Plan, sink: _Sink, orphan_keys: int
) -> dict:
    kinds = Counter(plan.kinds)
    total = Counter()
    for counter in sink.reasons.values():
        total.update(counter)
    return {
        "system": system,
        "seed": seed,
        "patients": patients,
        "tables": {t.name: sink.rows[t.name] for t in tables},
        "identities": {
            "personnummer": kinds[_PNR],
            "samordningsnummer": kinds[_SAMORD],
            "reservnummer": sum(kinds[k] for k in _RESERV),
        },
        "dirt": {
            "invalid_personnummer_checksum": kinds[_BAD_CHECKSUM],
            "invalid_personnummer_format": kinds[_BAD_FORMAT],
            **{key: total[reason] for key, reason in _DIRT_KEYS},
        },
        "expected_findings": {
            t.name: {reason: sink.reasons[t.name][reason] for reason in Reason.ORDER if sink.reasons[t.name][reason]}
            for t in tables
            if sink.reasons[t.name]
        },
        "corrections": [
            {"table": t, "key": k, "column": c, "written": w, "corrected": v, "reason": r}
            for t, k, c, w, v, r in _CORRECTIONS.get(system, ())
        ],
        "placeholder_patients": orphan_keys,
    }


def expected_outcome(report: dict, spec: MappingSpec) -> dict[str, dict[str, dict[str, int]]]:
    """What the reconciliation must count, per class (flagged, corrected, disposed): table -> reason -> rows.

    Each planted correction moves its row from flagged to corrected; a finding whose table and reason
    the spec disposes of is disposed; every other finding is archived flagged (the default).
    """
    out: dict[str, dict[str, dict[str, int]]] = {"flagged": {}, "corrected": {}, "disposed": {}}
    corrected = Counter((c["table"], c["reason"]) for c in report["corrections"])
    for table, spec_table in spec.tables.items():
        # a source table two spec tables read (the operation's document and its ASA class) has its dirt
        # counted by each, as far as that spec table's rules can find it
        found = _reasons_found(spec_table, table == spec.patient_table)
        source = spec.source_table(table)
        for reason, rows in report["expected_findings"].get(source, {}).items():
            if reason not in found:
                continue
            declared = spec.disposition(table, reason)
            if declared is not None and declared.disposition == Disposition.DISPOSE:
                out["disposed"].setdefault(table, {})[reason] = rows
                continue
            if reason in (Reason.ID_INVALID_FORMAT, Reason.ID_INVALID_CHECKSUM, Reason.ID_INVALID_DATE) and any(
                d.disposition == Disposition.DISPOSE for d in spec.dispositions if d.reason == reason
            ):  # pragma: no cover - the demo keeps every patient
                raise NotImplementedError("the demo's expectations do not model disposed patients")
            fixed = corrected.get((table, reason), 0)
            if fixed:
                out["corrected"].setdefault(table, {})[reason] = fixed
            if rows - fixed:
                out["flagged"].setdefault(table, {})[reason] = rows - fixed
    return out


def expected_by_reason(report: dict, spec: MappingSpec) -> dict[str, int]:
    """:func:`expected_outcome` summed per reason over classes and tables (a result's ``findings_by_reason``)."""
    total: Counter[str] = Counter()
    for tables in expected_outcome(report, spec).values():
        for by_reason in tables.values():
            total.update(by_reason)
    return dict(total)


def _reasons_found(table: Any, patient_table: bool) -> set[str]:
    """The reasons a spec table's rows can be found with: its rules', an orphan's (its patient missing), and a
    wall-clock time's that names no one instant (a field converted from local time)."""
    found = {RULE_REASON[r.rule] for r in table.rules}
    if any(f.transform == "local_time" for f in table.fields.values()):
        found.add(Reason.LOCAL_TIME_ADJUSTED)
    if any(r.rule == "personal_id" for r in table.rules):
        found |= {Reason.ID_INVALID_FORMAT, Reason.ID_INVALID_CHECKSUM, Reason.ID_INVALID_DATE}
    if not patient_table:
        found.add(Reason.ORPHAN)
    return found


def _write_json(path: Path, report: dict) -> None:
    tmp_path = path.with_name(path.name + ".tmp")
    try:
        tmp_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: build one system and print its dirt report as JSON."""
    parser = argparse.ArgumentParser(prog="python -m demo.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--system", required=True, choices=(*SYSTEMS, HOSPITAL))
    parser.add_argument("--target", required=True, help="SQLite file path or postgresql:// URL")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--schema", default=None, help="PostgreSQL schema (default: the system's name)")
    args = parser.parse_args(argv)
    try:
        report = build(args.system, args.target, seed=args.seed, patients=args.patients, schema=args.schema)
    except ValueError as exc:
        parser.error(str(exc))
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
