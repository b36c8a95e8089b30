"""Loaded kernel modules from ``lsmod`` output or /proc/modules.

``lsmod``: a ``Module Size Used by`` header, then ``name size refcount [deps]``.
/proc/modules: ``name size refcount deps state address`` (``vmw_balloon 20480 0 - Live 0x...``).
Both start each line with the name and the size, which is all that is needed.
"""

from __future__ import annotations

import re

from memdiag.parsers import ParseError, content_lines

_LINE = re.compile(r"^([A-Za-z0-9_-]+)\s+(\d+)\s+(-?\d+|-)(?:\s|$)")


def parse_modules(text: str, origin: str) -> list[str]:
    names: list[str] = []
    for line in content_lines(text):
        m = _LINE.match(line)
        if m:  # headers, prompts and a truncated last line do not match
            names.append(m.group(1))
    if not names:
        raise ParseError(origin, "no module lines found (neither lsmod output nor /proc/modules)")
    return names
