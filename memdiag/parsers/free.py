"""``free`` output, both procps layouts, in any of its units.

- old (procps 3.2.8, procps-ng <= 3.3.9): ``total used free shared buffers cached`` and a
  ``-/+ buffers/cache:`` line; ``used`` = MemTotal - MemFree.
- new (procps-ng >= 3.3.10): ``total used free shared buff/cache available`` (``-w`` splits
  buff/cache into ``buffers cache``); what ``used`` means changed again in 4.0.1 (see the
  memory-accounting reference, section 3), so it is reported as printed.

Columns are matched by header name. Plain numbers are KiB unless the command line shows
another unit (``-b``, ``-m``, ``-g``, ``--si``, ...): a pasted ``$ free -m`` prompt kept in
the text is read for that (a file named like sos's ``free_-m`` counts as the command line too, see
:mod:`memdiag.recognize`). Without either, plain numbers are taken as KiB only when that gives a
plausible host (64 MiB to 4 TiB); otherwise the output is refused rather than guessed. ``-h``
values carry their own suffix (``7.6G`` in 3.3, ``7.6Gi`` in 4.x; single letters are binary
unless ``--si`` is on the command line, as procps prints them).
"""

from __future__ import annotations

from memdiag.facts import _Record
from memdiag.parsers import ParseError, command_line, content_lines

_BIN = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}
_DEC = {"b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5}
#: What [BKMGTP] and i match with re.IGNORECASE: the case folds add the Kelvin sign, İ and ı.
_UNIT_LETTERS = "BKMGTPbkmgtp\u212a"
_I_LETTERS = "iI\u0130\u0131"
_LONG_UNITS = {
    "--bytes": "b", "--kibi": "k", "--mebi": "m", "--gibi": "g", "--tebi": "t", "--pebi": "p",
    "--kilo": "k", "--mega": "m", "--giga": "g", "--tera": "t", "--peta": "p",
}
_DECIMAL_LONG = {"--kilo", "--mega", "--giga", "--tera", "--peta"}
#: MemTotal range (bytes) of hosts free's KiB default is believed for when nothing shows the
#: unit: outside it, ``free -m``/``-g``/``-b`` output is far likelier, and a guess would be
#: silently wrong by a factor of 1024, so the output is refused instead.
_PLAUSIBLE_KIB = (64 * 1024**2, 4 * 1024**4)


class FreeOutput(_Record):
    """What ``free`` showed, in bytes. ``layout``: "old" (<= 3.3.9, with -/+ buffers/cache) or
    "new" (>= 3.3.10); ``unit_assumed``: plain numbers and no command line, so KiB, free's
    default, was assumed."""

    __slots__ = _FIELDS = ("total", "used", "free", "shared", "buff_cache", "available", "buffers", "cached",
                           "swap_total", "swap_used", "swap_free", "layout", "unit_assumed")

    def __init__(self, total: int | None = None, used: int | None = None, free: int | None = None,
                 shared: int | None = None, buff_cache: int | None = None, available: int | None = None,
                 buffers: int | None = None, cached: int | None = None, swap_total: int | None = None,
                 swap_used: int | None = None, swap_free: int | None = None, layout: str = "new",
                 unit_assumed: bool = False) -> None:
        self.total = total
        self.used = used
        self.free = free
        self.shared = shared
        self.buff_cache = buff_cache
        self.available = available
        self.buffers = buffers
        self.cached = cached
        self.swap_total = swap_total
        self.swap_used = swap_used
        self.swap_free = swap_free
        self.layout = layout
        self.unit_assumed = unit_assumed


def split_value(token: str) -> tuple[str, str] | None:
    r"""(number, unit) as ``^(\d+(?:[.,]\d+)?)([BKMGTP]i?)?$`` with re.IGNORECASE reads
    ``token`` (the unit "" when there is none), in str code: compiling the pattern cost ~0.1 ms
    of every run. \d is str.isdecimal; ``$`` also matches before a last newline."""
    body = token[:-1] if token[-1:] == "\n" else token
    cut = len(body)
    if cut > 1 and body[-1] in _I_LETTERS and body[-2] in _UNIT_LETTERS:
        cut -= 2
    elif cut and body[-1] in _UNIT_LETTERS:
        cut -= 1
    number = body[:cut]
    if not number.isdecimal():
        for sep in ".,":
            whole, found, fraction = number.partition(sep)
            if found and whole.isdecimal() and fraction.isdecimal():
                break
        else:
            return None
    return number, body[cut:]


def _units(cmd: str | None) -> tuple[str, bool, bool]:
    """(unit letter for plain numbers, decimal?, known?) from a ``free`` command line."""
    unit, decimal, known = "k", False, False
    if not cmd:
        return unit, decimal, known
    for arg in cmd.split()[1:]:
        if arg in _LONG_UNITS:
            unit, known = _LONG_UNITS[arg], True
            decimal = decimal or arg in _DECIMAL_LONG
        elif arg == "--si":
            decimal = True
        elif arg in ("--human", "--human-readable"):
            known = True
        elif arg.startswith("-") and not arg.startswith("--"):
            for flag in arg[1:]:
                if flag in "bkmgh":
                    unit, known = ("k" if flag == "h" else flag), True
    return unit, decimal, known


def parse_free(text: str, origin: str) -> FreeOutput:
    unit, decimal, known = _units(command_line(text))
    scale = (_DEC if decimal else _BIN)[unit]
    hdr: list[str] | None = None
    rows: dict[str, list[str]] = {}
    old = False
    for line in content_lines(text):
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "total" and "used" in parts and "free" in parts:
            hdr = parts
        elif parts[0] in ("Mem:", "Swap:") and hdr is not None:
            rows[parts[0]] = parts[1:]
        elif parts[:2] == ["-/+", "buffers/cache:"]:
            old = True
    if hdr is None or "Mem:" not in rows:
        raise ParseError(origin, "no free output found (no 'total used free' header and Mem: line)")
    out = FreeOutput(layout="old" if old or ("cached" in hdr and "available" not in hdr) else "new")
    plain = suffixed = False

    def size(token: str) -> int:
        nonlocal plain, suffixed
        parts = split_value(token)
        if parts is None:
            raise ParseError(origin, f"free: not a size: {token[:30]!r}")
        if len(parts[0]) > 24:  # no memory size has that many digits; float() would say inf
            raise ParseError(origin, f"free: not a plausible size: {token[:30]!r}")
        number = float(parts[0].replace(",", "."))
        suffix = parts[1].lower()
        if not suffix:
            plain = True
            return int(round(number * scale))
        suffixed = True
        table = _BIN if suffix.endswith("i") or not decimal else _DEC
        return int(round(number * table[suffix[0]]))

    mem = dict(zip(hdr, (size(v) for v in rows["Mem:"])))
    if len(rows["Mem:"]) < 3:
        raise ParseError(origin, "free: Mem: line is truncated")
    out.total, out.used, out.free = mem.get("total"), mem.get("used"), mem.get("free")
    out.shared, out.available = mem.get("shared"), mem.get("available")
    out.buffers = mem.get("buffers")
    out.cached = mem.get("cached", mem.get("cache"))
    if "buff/cache" in mem:
        out.buff_cache = mem["buff/cache"]
    elif out.buffers is not None and out.cached is not None:
        out.buff_cache = out.buffers + out.cached
    swap = rows.get("Swap:")
    if swap:
        values = [size(v) for v in swap[:3]]
        out.swap_total, out.swap_used, out.swap_free = (values + [None, None, None])[:3]
    if plain and suffixed:
        raise ParseError(origin, "free: sizes with and without units mixed; free never prints that (edited paste?)")
    out.unit_assumed = plain and not known
    if out.unit_assumed and out.total is not None and not _PLAUSIBLE_KIB[0] <= out.total <= _PLAUSIBLE_KIB[1]:
        size = "small" if out.total < _PLAUSIBLE_KIB[0] else "large"
        raise ParseError(
            origin,
            f"free: total {out.total // 1024} is too {size} to be KiB (free's default), and no command line "
            "shows the unit (-b, -m, -g?); paste the command with its output, e.g. '$ free -m'",
        )
    return out
