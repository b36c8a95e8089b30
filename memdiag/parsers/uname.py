"""``uname -a`` (or ``uname -r`` alone): host name and kernel release."""

from __future__ import annotations

import re

from memdiag.parsers import ParseError, PROMPT_RE, content_lines

_RELEASE = re.compile(r"^\d+\.\d+[\w.+~-]*$")


def parse_uname(text: str, origin: str) -> tuple[str | None, str | None]:
    """(hostname, kernel release); either may be ``None`` when the output does not carry it."""
    for line in content_lines(text):
        parts = line.split()
        if not parts or PROMPT_RE.match(line) and not _RELEASE.match(parts[0]):
            continue
        if len(parts) >= 3 and parts[0] == "Linux" and _RELEASE.match(parts[2]):
            return parts[1], parts[2]
        if len(parts) == 1 and _RELEASE.match(parts[0]):
            return None, parts[0]
        break
    raise ParseError(origin, "not uname output (expected 'Linux HOST RELEASE ...' or a release)")
