"""Loaded kernel modules from ``lsmod`` output or /proc/modules.

``lsmod``: a ``Module Size Used by`` header, then ``name size refcount [deps]``.
/proc/modules: ``name size refcount deps state address`` (``vmw_balloon 20480 0 - Live 0x...``).
Both start each line with the name and the size, which is all that is needed.
"""

from __future__ import annotations

from memdiag.parsers import ParseError, content_lines


def module_name(line: str) -> str | None:
    r"""The name leading a module line, as ``^([A-Za-z0-9_-]+)\s+(\d+)\s+(-?\d+|-)(?:\s|$)``
    matches it, in str code: compiling the pattern cost ~0.1 ms of every run.

    Each of the three parts is followed by a blank or the end, so each is a whole field of
    str.split (whose blanks are \s): an ASCII name at the very start, digits (str.isdecimal,
    as \d), then a count, "-" or a negative count.
    """
    if line[:1].isspace():
        return None
    parts = line.split(None, 3)
    if len(parts) < 3 or not parts[1].isdecimal():
        return None
    name, count = parts[0], parts[2]
    if not (count == "-" or (count[1:] if count[0] == "-" else count).isdecimal()):
        return None
    bare = name.replace("_", "").replace("-", "")
    return name if name.isascii() and (not bare or bare.isalnum()) else None


def parse_modules(text: str, origin: str) -> list[str]:
    names: list[str] = []
    for line in content_lines(text):
        name = module_name(line)
        if name is not None:  # headers, prompts and a truncated last line have none
            names.append(name)
    if not names:
        raise ParseError(origin, "no module lines found (neither lsmod output nor /proc/modules)")
    return names
