"""Office hours of the phone line (config ``phone.office_hours``, e.g. ``mon-fri 08:30-17:15``):
within them a hand-off is a transfer to staff, outside them a callback request."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from ..errors import MadoguchiError

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
RX = re.compile(r"^\s*(?P<d1>[a-z]{3})(?:-(?P<d2>[a-z]{3}))?\s+(?P<h1>\d{1,2}):(?P<m1>\d{2})-(?P<h2>\d{1,2}):(?P<m2>\d{2})\s*$")


class HoursError(MadoguchiError):
    ja_default = "phone.office_hours は「mon-fri 08:30-17:15」の形で書いてください。"


@dataclass(frozen=True)
class OfficeHours:
    days: frozenset[int]          # 0 = Monday
    start: dt.time
    end: dt.time

    def open_at(self, when: dt.datetime) -> bool:
        return when.weekday() in self.days and self.start <= when.time() < self.end


def parse(text: str) -> OfficeHours:
    m = RX.match(text.lower())
    ok = m is not None and m["d1"] in DAYS and (m["d2"] is None or m["d2"] in DAYS)
    if ok:
        try:
            start, end = dt.time(int(m["h1"]), int(m["m1"])), dt.time(int(m["h2"]), int(m["m2"]))
        except ValueError:
            ok = False
    if not ok or start >= end:
        raise HoursError(f"phone.office_hours: '{text}' is not like 'mon-fri 08:30-17:15'")
    a = DAYS.index(m["d1"])
    b = DAYS.index(m["d2"] or m["d1"])
    days = frozenset(range(a, b + 1)) if a <= b else frozenset(list(range(a, 7)) + list(range(0, b + 1)))
    return OfficeHours(days, start, end)


def valid(text) -> bool:
    try:
        parse(text)
        return True
    except HoursError:
        return False
