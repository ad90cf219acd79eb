"""Values of the hospital demo system as its source wrote them: wall-clock times, identifiers, codes, text.

:class:`Gen` holds the random stream and the id counters of a build and makes each kind of value;
Europe/Stockholm wall-clock times are never in the hour the clocks skip or repeat unless asked for
(:meth:`Gen.odd_hour`), and the days the clocks change are found by zoneinfo (:func:`dst_days`).
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from decommission.mapping.identity import make_personnummer, make_reservnummer_sthlm
from decommission.mapping.identity import make_samordningsnummer as make_samordning
from demo import sjukhus_vocab as v
from demo.generate import _DAYS, _LAST, SENTINELS, Counters, _Sink
from demo.sjukhus_plan import BAD_CHECKSUM, BAD_FORMAT, BAD_STHLM, SAMORD, Plan

ZONE = "Europe/Stockholm"
_NRID_LETTERS = "ABCDEFGHJKLMNPRSTUXYZ"


# ---------------------------------------------------------------- time
@cache
def dst_days() -> tuple[tuple[int, ...], tuple[int, ...]]:
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
    spring, autumn = dst_days()
    return frozenset(date.fromisoformat(_DAYS[i]) for i in (*spring, *autumn))


def _wall(moment: datetime) -> str:
    """A wall-clock time as the source writes it; never in the changing hour of a clock-change day."""
    if moment.hour == 2 and moment.date() in _dst_dates():
        moment += timedelta(hours=1)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


class Gen(Counters):
    def __init__(self, plan: Plan, sink: _Sink, rnd: random.Random) -> None:
        super().__init__()
        self.plan, self.sink, self.rnd, self.r = plan, sink, rnd, rnd.random
        self.padded = 0  # code values written with their char(n) padding
        self.icd9 = 0
        self.dst_rows = 0  # clean rows on a clock-change day

    def pick(self, seq: Any) -> Any:
        return seq[int(self.r() * len(seq))]

    def start(self, first: int) -> datetime:
        """A moment of care from day ``first``: one stay in twelve begins on a clock-change day."""
        spring, autumn = dst_days()
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
        spring, autumn = dst_days()
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
            if kind == SAMORD:
                ident = make_samordning(birth, serial)
            elif kind == BAD_CHECKSUM:
                ident = make_personnummer(birth, serial)
                ident = ident[:11] + str((int(ident[11]) + 1 + int(r() * 9)) % 10)
            elif kind == BAD_FORMAT:
                ident = make_personnummer(birth, serial)
                ident = ident[:11] if self.turn("bad_format", 2) else ident[:10] + "O" + ident[11]
            elif kind == BAD_STHLM:  # a Region Stockholm reservnummer with a wrong check digit
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
