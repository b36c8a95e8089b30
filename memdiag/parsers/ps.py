"""``ps`` output with an RSS column: ``ps aux``, ``ps auxwww``, ``ps -eo pid,rss,comm``, ``ps alx``...

Columns are found by header name in any order (RSS or RSZ, in KiB). The command column
(COMMAND, CMD, COMM, ARGS) may hold a full command line with blanks; the program name is taken
from its first word (``/usr/bin/vmtoolsd -n vmusr`` -> ``vmtoolsd``, ``[kworker/0:1]`` ->
``kworker/0:1``, ``-bash`` -> ``bash``); ``ps -eo comm`` names with blanks keep only their first word.
Thread rows of ``ps auxm`` (PID ``-``) are skipped.
"""

from __future__ import annotations

from memdiag.facts import _Record
from memdiag.parsers import ParseError, content_lines, prompt
from memdiag.parsers._table import command_name, header, pick

_COMMAND_COLUMNS = ("COMMAND", "CMD", "COMM", "ARGS", "UCOMM", "UCMD")


class PsProcess(_Record):
    __slots__ = _FIELDS = ("pid", "rss_bytes", "comm")

    def __init__(self, pid: int, rss_bytes: int, comm: str) -> None:
        self.pid = pid
        self.rss_bytes = rss_bytes
        self.comm = comm


def parse_ps(text: str, origin: str) -> list[PsProcess]:
    lines = content_lines(text)
    at = next(
        (i for i, line in enumerate(lines) if {"PID"} <= set(line.split()) and {"RSS", "RSZ"} & set(line.split())),
        None,
    )
    if at is None:
        raise ParseError(origin, "no ps output with PID and RSS columns found")
    hdr = header(lines[at], _COMMAND_COLUMNS)
    cols = [hdr.index("PID"), hdr.index("RSS", "RSZ"), hdr.index(*_COMMAND_COLUMNS)]
    wanted = [c for c in cols if c is not None]
    procs: list[PsProcess] = []
    bad = 0
    for line in lines[at + 1 :]:
        if not line.strip():
            continue
        if procs and prompt(line) is not None and not line.lstrip()[:1].isdigit():
            break  # the next pasted command
        values = pick(hdr, line, wanted)
        got = dict(zip(wanted, values or []))
        try:
            pid, rss = int(got[cols[0]]), int(got[cols[1]])  # type: ignore[index]
        except (KeyError, ValueError):
            bad += 1
            continue
        comm = command_name(got[cols[2]], args=True) if cols[2] is not None else ""
        procs.append(PsProcess(pid, rss * 1024, comm))
    if not procs:
        raise ParseError(origin, "ps output has a header but no process rows")
    return procs
