"""``top -b`` output: the memory summary lines and the process table.

Both procps summary layouts are read, by label rather than position:

- procps 3.2.8 and procps-ng <= 3.3.9: ``Mem: total, used, free, buffers`` and
  ``Swap: total, used, free, cached`` (``cached Mem`` from 3.3.0; 3.2.8 prints ``8061208k``);
- procps-ng >= 3.3.10: ``KiB Mem : total, free, used, buff/cache`` and
  ``KiB Swap: total, free, used. avail Mem``; ``MiB``/``GiB``/... scaling (``-E``, 4.x
  decimals) is honoured.

Process rows are split by the column header (PID, USER, RES, COMMAND found by name, so extra
columns anywhere are fine); RES values carry their own unit per row (``1.734g``, ``233064``
KiB, ``12.5m``). Without a column header, rows in top's default layout are still read. With
several iterations (``top -b -n2``) the last one is used: it is the most recent.
"""

from __future__ import annotations

from memdiag.facts import _Record
from memdiag.parsers import LazyPattern, ParseError, content_lines, prompt
from memdiag.parsers._table import Header, command_name, header, pick
from memdiag.units import KIB, UnitError, parse_size

_SCALE = {"KIB": KIB, "MIB": KIB**2, "GIB": KIB**3, "TIB": KIB**4, "PIB": KIB**5, "EIB": KIB**6}
_SUFFIX = {"": KIB, "k": KIB, "m": KIB**2, "g": KIB**3, "t": KIB**4, "p": KIB**5, "e": KIB**6}
# compiled when first used: the process source loads this parser beside ps's, mostly for nothing
_CLOCK = LazyPattern(r"^top - (\d{1,2}:\d{2}:\d{2})\b")
_SUMMARY = LazyPattern(r"^\s*(?:([KMGTPE]iB)\s+)?(Mem|Swap)\s*:(.*)$")
# The lookbehind anchors a number at its first digit: without it, one long run of digits is
# retried from every position (seconds on a 20,000-digit line).
_PAIR = LazyPattern(
    r"(?<![\d.,])(\d+(?:[.,]\d+)?)([kmgtpe]?)\s+(total|free|used|buff/cache|buffers|avail Mem|cached Mem|cached)\b"
)
_DEFAULT_HEADER = "    PID USER      PR  NI    VIRT    RES    SHR S  %CPU  %MEM     TIME+ COMMAND"


class TopProcess(_Record):
    __slots__ = _FIELDS = ("pid", "user", "res_bytes", "comm")

    def __init__(self, pid: int, user: str, res_bytes: int, comm: str) -> None:
        self.pid = pid
        self.user = user
        self.res_bytes = res_bytes
        self.comm = comm


class TopOutput(_Record):
    """What ``top -b`` showed. ``clock``: "16:46:45" from the first line; ``layout``: "old"
    (<= 3.3.9) or "new" (>= 3.3.10) summary lines; ``skipped``: "line N: reason" for rows not
    understood."""

    __slots__ = _FIELDS = ("mem_total", "mem_free", "mem_used", "buff_cache", "mem_avail", "swap_total",
                           "swap_free", "swap_used", "processes", "clock", "layout", "skipped")

    def __init__(self, mem_total: int | None = None, mem_free: int | None = None, mem_used: int | None = None,
                 buff_cache: int | None = None, mem_avail: int | None = None, swap_total: int | None = None,
                 swap_free: int | None = None, swap_used: int | None = None,
                 processes: list[TopProcess] | None = None, clock: str | None = None, layout: str | None = None,
                 skipped: list[str] | None = None) -> None:
        self.mem_total = mem_total
        self.mem_free = mem_free
        self.mem_used = mem_used
        self.buff_cache = buff_cache
        self.mem_avail = mem_avail
        self.swap_total = swap_total
        self.swap_free = swap_free
        self.swap_used = swap_used
        self.processes: list[TopProcess] = [] if processes is None else processes
        self.clock = clock
        self.layout = layout
        self.skipped: list[str] = [] if skipped is None else skipped


def parse_top(text: str, origin: str) -> TopOutput:
    lines = content_lines(text)
    starts = [i for i, line in enumerate(lines) if _CLOCK.match(line)]
    begin = starts[-1] if starts else 0
    out = TopOutput()
    if starts:
        out.clock = _CLOCK.match(lines[begin]).group(1)  # type: ignore[union-attr]
    hdr_at = _summary(lines, begin, out, origin)
    _processes(lines, begin if hdr_at is None else hdr_at, out, origin)
    if out.mem_total is None and not out.processes:
        raise ParseError(origin, "no top output found (no Mem: line and no process rows)")
    return out


def _summary(lines: list[str], begin: int, out: TopOutput, origin: str) -> int | None:
    """Fill the summary fields; return the index of the line after the last summary line."""
    after = None
    mem: dict[str, int] = {}
    swap: dict[str, int] = {}
    for i in range(begin, len(lines)):
        m = _SUMMARY.match(lines[i])
        if not m:
            if "PID" in lines[i].split():
                break
            continue
        scale = _SCALE[m.group(1).upper()] if m.group(1) else KIB
        target = mem if m.group(2) == "Mem" else swap
        for number, suffix, label in _PAIR.findall(m.group(3)):
            if len(number) > 24:  # no memory size has that many digits; float() would say inf
                raise ParseError(origin, f"top: not a plausible size: {number[:30]}...")
            value = float(number.replace(",", "."))
            target[label] = int(round(value * (_SUFFIX[suffix] if suffix else scale)))
        after = i + 1
    if not mem:
        return after
    new = "buff/cache" in mem or "avail Mem" in swap
    out.layout = "new" if new else "old"
    out.mem_total, out.mem_free, out.mem_used = mem.get("total"), mem.get("free"), mem.get("used")
    out.swap_total, out.swap_free, out.swap_used = swap.get("total"), swap.get("free"), swap.get("used")
    if new:
        out.buff_cache = mem.get("buff/cache")
        out.mem_avail = swap.get("avail Mem")
    else:
        cached = swap.get("cached Mem", swap.get("cached"))
        buffers = mem.get("buffers")
        if buffers is not None and cached is not None:
            out.buff_cache = buffers + cached
    if out.mem_total is None:
        raise ParseError(origin, "top's Mem: line has no total")
    return after


def _processes(lines: list[str], begin: int, out: TopOutput, origin: str) -> None:
    hdr: Header | None = None
    start = begin
    for i in range(begin, len(lines)):
        names = lines[i].upper().split()
        if "PID" in names and "RES" in names:
            hdr, start = header(lines[i], ("COMMAND",)), i + 1
            break
    if hdr is None:
        hdr = header(_DEFAULT_HEADER, ("COMMAND",))
        # without a header, only rows that look like top's default ones are taken
        start = next((i for i in range(begin, len(lines)) if looks_like_default_row(lines[i])), len(lines))
    cols = [hdr.index("PID"), hdr.index("USER"), hdr.index("RES"), hdr.index("COMMAND", "COMM", "CMD")]
    if cols[0] is None or cols[2] is None:
        raise ParseError(origin, "top's column header has no PID or RES column")
    wanted = [c for c in cols if c is not None]
    for lineno in range(start, len(lines)):
        line = lines[lineno]
        if not line.strip():
            continue
        if _CLOCK.match(line) or prompt(line) is not None and not line.lstrip()[:1].isdigit():
            break  # next iteration or next pasted command
        if "PID" in line.split():
            continue  # a repeated header
        values = pick(hdr, line, wanted)
        if values is None:
            out.skipped.append(f"line {lineno + 1}: row does not fit the header")
            continue
        got = dict(zip(wanted, values))
        try:
            pid = int(got[cols[0]])
            res = parse_size(got[cols[2]], "k")
        except (ValueError, UnitError):
            out.skipped.append(f"line {lineno + 1}: not a process row: {line.strip()[:60]!r}")
            continue
        user = got.get(cols[1], "") if cols[1] is not None else ""
        comm = command_name(got[cols[3]]) if cols[3] is not None else ""
        out.processes.append(TopProcess(pid, user, res, comm))


def looks_like_default_row(line: str) -> bool:
    parts = line.split()
    return len(parts) >= 12 and parts[0].isdigit() and len(parts[7]) == 1 and parts[7] in "RSDZTtIWX" and ":" in parts[10]
