"""parse_size reads sizes with str code as the pattern it replaced did (kept here as the reference)."""

from __future__ import annotations

import re

from hypothesis import example, given, settings

from patternkit import lines


# -- memdiag.units._split_size: _SIZE_RE ----------------------------------------------------------

_SIZE_RE = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
_SIZES = ("1.734g", "233064", "7.3Gi", "512 MB", " 4 GiB ", "-12k", "+0.5 t", "2.5", "1e3", "5.", ".5",
          "0x10", "12 kB\n", "3 \u212aB", "\u0663\u0664 MiB", "1,5G", "inf", "nan", "9" * 400)


@settings(max_examples=2000, deadline=None)
@given(lines(*_SIZES, max_size=20))
@example("5\n")
@example("5 k\n\n")
@example("\u00b2")
def test_a_size_splits_as_by_the_pattern(text):
    from memdiag.units import UnitError, _split_size, parse_size

    m = _SIZE_RE.match(text)
    assert _split_size(text) == (None if m is None else (m.group(1), m.group(2)))
    try:
        got = parse_size(text, "k")
    except UnitError as exc:
        got = str(exc)
    if m is None:
        assert got == f"not a size: {text!r}"
    elif (m.group(2) or "k").lower() in ("k", "kb", "kib", "ki", "") and got != f"not a finite size: {text!r}":
        assert got == int(round(float(m.group(1)) * 1024))
