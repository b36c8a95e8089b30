"""sos's ``date --utc`` line is read by str code (ASCII) as by the pattern it replaced, kept here
as the reference, and utc_seconds answers as the pattern-based version did."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from memdiag.plugins.inputs.sosreport import _MONTH_DAYS, _MONTHS, _WEEKDAYS, _stamp_fields, utc_seconds
from patternkit import lines

_STAMP = re.compile(
    r"(?P<a>mon|tue|wed|thu|fri|sat|sun)\s+(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\s+"
    r"(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])\s+(?P<H>2[0-3]|[0-1]\d|\d):(?P<M>[0-5]\d|\d):"
    r"(?P<S>6[0-1]|[0-5]\d|\d)\s+UTC\s+(?P<Y>\d\d\d\d)", re.IGNORECASE)


def _reference(line: str) -> float | str:
    """utc_seconds as it was, on the pattern alone: the seconds, or the ValueError's message."""
    m = _STAMP.match(line)
    try:
        if m is None or m.end() != len(line):
            raise ValueError(f"time data {line!r} is not a date --utc stamp")
        _WEEKDAYS.index(m["a"].lower())
        month = _MONTHS.index(m["b"].lower()) + 1
        year, day = int(m["Y"]), int(m["d"])
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        if year < 1 or day > _MONTH_DAYS[month - 1] + (month == 2 and leap):
            raise ValueError(f"{line!r}: year or day out of range")
        y = year - (month <= 2)
        era, yoe = divmod(y, 400)
        doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
        days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
        return float(((days * 24 + int(m["H"])) * 60 + int(m["M"])) * 60 + int(m["S"]))
    except ValueError as exc:
        return str(exc)


def _ours(line: str) -> float | str:
    try:
        return utc_seconds(line)
    except ValueError as exc:
        return str(exc)


@st.composite
def _stamps(draw) -> str:
    """A date --utc line with fields drawn in and around their ranges, blanks of any kind."""
    blank = st.sampled_from([" ", "  ", "\t", " \n", "\x0b", "\x1c", "\xa0", "\u2003"])
    num = st.sampled_from(["0", "00", "1", "01", "9", "09", "12", "19", "2", "20", "23", "24", "29", "3", "30", "31",
                           "32", "5", "59", "6", "60", "61", "62", "7", "123", "\u0661", "1\u0662", "", " 5"])
    name = st.sampled_from(["Mon", "tue", "WED", "Thu", "Fri", "sat", "SUN", "Jan", "feb", "MAR", "Apr", "may",
                            "Jun", "jul", "Aug", "sep", "Oct", "nov", "Dec", "\u017fun", "Fr\u0130", "mo", "mond"])
    year = st.sampled_from(["2026", "0001", "0000", "1900", "2000", "2100", "9999", "202", "20266", "\u0662\u0660\u0662\u0666"])
    parts = [draw(name), draw(blank), draw(name), draw(blank), draw(num), draw(blank), draw(num), ":", draw(num), ":",
             draw(num), draw(blank), draw(st.sampled_from(["UTC", "utc", "UTc", "GMT"])), draw(blank), draw(year)]
    return draw(st.sampled_from(["", " "])) + "".join(parts) + draw(st.sampled_from(["", "", "\n", " "]))


@settings(max_examples=3000, deadline=None)
@given(st.one_of(_stamps(), lines("Thu Nov 26 04:04:32 UTC 2026", "Sat Feb 29 23:59:60 UTC 2020",
                                  "Mon Jan  5 01:02:03 UTC 1970", max_size=40)))
@example("Thu Nov 26 04:04:32 UTC 2026")
@example("Tue Feb 29 00:00:00 UTC 2100")
@example("\u017fun Jan 1 0:0:0 UTC 2000")
def test_a_stamp_reads_as_by_the_pattern(line):
    if line.isascii():
        m = _STAMP.match(line)
        want = m.group("a", "b", "d", "H", "M", "S", "Y") if m and m.end() == len(line) else None
        assert _stamp_fields(line) == want
    assert _ours(line) == _reference(line)


_NUMBERS = [str(n) for n in range(100)] + [f"{n:02d}" for n in range(10)] + ["", "000", "123", " 5", "\u0665", "1\u0662",
                                                                           "+1", "-1", "1:", "a"]


def test_every_number_in_every_field_reads_as_by_the_pattern():
    for n in _NUMBERS:
        for line in (f"Thu Feb {n} 04:04:32 UTC 2024", f"Thu Nov 26 {n}:04:32 UTC 2026",
                     f"Thu Nov 26 04:{n}:32 UTC 2026", f"Thu Nov 26 04:04:{n} UTC 2026", f"Thu Nov 26 04:04:32 UTC {n}{n}"):
            assert _ours(line) == _reference(line), line
            if line.isascii():
                m = _STAMP.match(line)
                assert _stamp_fields(line) == (m.group("a", "b", "d", "H", "M", "S", "Y")
                                               if m and m.end() == len(line) else None), line
