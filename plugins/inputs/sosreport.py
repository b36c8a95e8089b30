"""sosreports: sos's own layout (``proc/``, ``sys/``, ``sos_commands/PLUGIN/COMMAND``).

Files sos copies keep their host paths, so sources read them as they read a capture. Command
outputs live under ``sos_commands/`` with the command line as the file name; the candidates
below were checked against sos's plugins (memory, kernel, process, host, date; sos 3.x to 4.x)
and a report made by sos 4.0 on Debian 12. Older sos versions (RHEL 6/7, sos 3.x) put hostname
and date under ``sos_commands/general/``.
"""

from __future__ import annotations

import os

from memdiag.plugins.inputs._evidence import ArchiveEvidence, OfflineEvidence

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Callable

    from memdiag.archive import Tree

    Head = Callable[[str], "bytes | None"]

#: command name -> candidate files, first present wins
COMMANDS: dict[str, list[str]] = {
    "free": ["sos_commands/memory/free", "free"],
    "ps": [
        "sos_commands/process/ps_auxwww",
        "sos_commands/process/ps_auxwwwm",
        "sos_commands/process/ps_alxwww",
        "ps",
    ],
    "lsmod": ["sos_commands/kernel/lsmod", "lsmod"],
    "uname": ["sos_commands/kernel/uname_-a", "uname"],
    "dmesg": ["sos_commands/kernel/dmesg", "var/log/dmesg"],
    "slabtop": ["sos_commands/memory/slabtop_-o"],
    "sysctl": ["sos_commands/kernel/sysctl_-a"],
    "df": ["sos_commands/filesys/df_-al_-x_autofs", "sos_commands/filesys/df_-al", "df"],
    # only the old kvm plugin's topOutput option ever ran top
    "top": ["sos_commands/kvm/top_-b_-d_1_-n_5"],
}

_HOSTNAME = ["sos_commands/host/hostname", "sos_commands/general/hostname", "hostname", "etc/hostname"]
_DATE_UTC = ["sos_commands/date/date_--utc", "sos_commands/general/date_--utc"]
_DATE = ["sos_commands/date/date", "sos_commands/general/date", "date"]
_MARKERS = ("sos_commands", "sos_reports", "sos_logs")


def is_sosreport(folder: str) -> bool:
    return any(os.path.isdir(os.path.join(folder, m)) for m in _MARKERS)



def _disk_head(folder: str) -> Head:
    """First bytes of a regular file under ``folder`` (links only inside it), or None."""
    real = os.path.realpath(folder)

    def head(rel: str) -> bytes | None:
        path = os.path.realpath(os.path.join(folder, rel))
        if not path.startswith(real + os.sep) or not os.path.isfile(path):
            return None
        try:
            with open(path, "rb") as f:
                return f.read(4096)
        except OSError:
            return None

    return head


def _first_line(folder: "str | Head", candidates: list[str]) -> str | None:
    head = _disk_head(folder) if isinstance(folder, str) else folder
    for rel in candidates:
        data = head(rel)
        if data is None:
            continue
        line = data.decode("utf-8", "replace").strip().splitlines()
        if line and line[0].strip():
            return line[0].strip()
    return None


def capture_time(folder: "str | Head") -> float | None:
    """When sos ran, from its ``date`` outputs; only a UTC stamp is trusted (no zone database)."""
    for candidates in (_DATE_UTC, _DATE):
        line = _first_line(folder, candidates)
        if line and " UTC " in line:
            try:
                return utc_seconds(line)
            except ValueError:
                continue
    return None


_STAMP = None  # compiled when a date line is not ASCII
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_DIGITS = "0123456789"
#: The forms of strptime's %d, %H, %M, %S: (one digit, ((first digit, second digit), ...)).
_DAY = ("123456789", (("3", "01"), ("12", _DIGITS), ("0", "123456789")))
_HOUR = (_DIGITS, (("2", "0123"), ("01", _DIGITS)))
_MINUTE = (_DIGITS, (("012345", _DIGITS),))
_SECOND = (_DIGITS, (("6", "01"), ("012345", _DIGITS)))


def _is(word: str, form: tuple[str, tuple[tuple[str, str], ...]]) -> bool:
    """Whether ``word`` is a number of ``form`` (_DAY, _HOUR, ...)."""
    if len(word) == 1:
        return word in form[0]
    return len(word) == 2 and any(word[0] in first and word[1] in second for first, second in form[1])


def _stamp_fields(line: str) -> tuple[str, ...] | None:
    r"""(weekday, month, day, hour, minute, second, year) of an ASCII line, as the pattern below
    reads them, in str code: compiling that pattern cost ~0.4 ms. In ASCII \s is str.isspace,
    \d the digits, and IGNORECASE str.lower (the folds beyond, like "ſ" for "s", are not ASCII).
    Every field is followed by blanks, a colon or the end, so each is a whole word."""
    words = line.split()
    if len(words) != 6 or line[0].isspace() or line[-1].isspace():
        return None
    weekday, month, day, clock, utc, year = words
    hms = clock.split(":")
    if (weekday.lower() not in _WEEKDAYS or month.lower() not in _MONTHS or not _is(day, _DAY) or len(hms) != 3
            or not (_is(hms[0], _HOUR) and _is(hms[1], _MINUTE) and _is(hms[2], _SECOND))
            or utc.lower() != "utc" or len(year) != 4 or not year.isdigit()):
        return None
    return weekday, month, day, hms[0], hms[1], hms[2], year


def _stamp_fields_by_pattern(line: str) -> tuple[str, ...] | None:
    """The same for any line, by the pattern strptime builds for the format."""
    global _STAMP
    if _STAMP is None:
        import re

        _STAMP = re.compile(
            r"(?P<a>mon|tue|wed|thu|fri|sat|sun)\s+(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\s+"
            r"(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])\s+(?P<H>2[0-3]|[0-1]\d|\d):(?P<M>[0-5]\d|\d):"
            r"(?P<S>6[0-1]|[0-5]\d|\d)\s+UTC\s+(?P<Y>\d\d\d\d)", re.IGNORECASE)
    m = _STAMP.match(line)
    if m is None or m.end() != len(line):
        return None
    return m.group("a", "b", "d", "H", "M", "S", "Y")


def utc_seconds(line: str) -> float:
    """``float(calendar.timegm(time.strptime(line, "%a %b %d %H:%M:%S UTC %Y")))`` as the C
    locale reads it - the same pattern strptime builds, the same ValueErrors - without
    importing _strptime, calendar and datetime: a first call costs ~0.5 ms instead of ~2.5."""
    fields = _stamp_fields(line) if line.isascii() else _stamp_fields_by_pattern(line)
    if fields is None:
        raise ValueError(f"time data {line!r} is not a date --utc stamp")
    weekday, month_name, day_text, hour, minute, second, year_text = fields
    _WEEKDAYS.index(weekday.lower())  # case folding lets "ſun" match; strptime then refuses it
    month = _MONTHS.index(month_name.lower()) + 1
    year, day = int(year_text), int(day_text)
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if year < 1 or day > _MONTH_DAYS[month - 1] + (month == 2 and leap):
        raise ValueError(f"{line!r}: year or day out of range")
    # days since 1970-01-01 in the proleptic Gregorian calendar, years counted from March
    y = year - (month <= 2)
    era, yoe = divmod(y, 400)
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return float(((days * 24 + int(hour)) * 60 + int(minute)) * 60 + int(second))


def hostname(folder: "str | Head") -> str | None:
    line = _first_line(folder, _HOSTNAME)
    if line and " " not in line and "not found" not in line:
        return line
    uname = _first_line(folder, COMMANDS["uname"])
    if uname and uname.startswith("Linux "):
        return uname.split()[1]
    return None


def open_sosreport(folder: str, *, label: str, shown_as: str | None = None) -> OfflineEvidence:
    return OfflineEvidence(
        folder,
        kind="sosreport",
        label=label,
        shown_as=shown_as,
        host=hostname(folder),
        captured_at=capture_time(folder),
        commands=COMMANDS,
    )


def is_sosreport_in(tree: Tree, top: str) -> bool:
    """Whether folder ``top`` of an indexed archive is in sos's layout."""
    from memdiag.archive import Loop, Outside

    for marker in _MARKERS:
        try:
            hit = tree.lookup(marker, top)
        except (Outside, Loop):
            continue
        if hit is not None and hit[1][0] == "d":
            return True
    return False


def open_sosreport_in(tree: Tree, top: str, *, label: str, shown_as: str) -> ArchiveEvidence:
    """The sosreport under folder ``top`` of an indexed archive, read in place."""
    ev = ArchiveEvidence(tree, top, kind="sosreport", label=label, shown_as=shown_as, commands=COMMANDS)

    def head(rel: str) -> bytes | None:
        return ev.head(rel, size=4096)

    ev.host, ev.captured_at = hostname(head), capture_time(head)
    return ev
