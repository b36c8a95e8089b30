"""memdiag.ruleset reads sizes and version requirements with str code as its patterns did.

The patterns it replaced are kept here as the reference (with a copy of the old ``satisfies``);
generated and mutated realistic values, with the characters where regular expressions and str
methods could part ways (non-ASCII digits and blanks, '²', the Kelvin sign, a trailing newline
before ``$``), must be answered the same by both.
"""

from __future__ import annotations

import re
import subprocess
import sys
import unicodedata

from hypothesis import example, given, settings
from hypothesis import strategies as st

from memdiag import ruleset
from memdiag.units import UnitError, parse_size
from patternkit import ALL, lines
from testkit import REPO


def test_the_character_classes_are_the_str_methods():
    """What the replacements build on, for every code point."""
    assert re.findall(r"\s", ALL) == [c for c in ALL if c.isspace()] == [c for c in ALL if not c.strip()]
    assert re.findall(r"\d", ALL) == [c for c in ALL if c.isdecimal()]
    assert re.findall("[A-Za-z]", ALL) == [c for c in ALL if c.isascii() and c.isalpha()]
    assert "\u00b2".isdigit() and not re.match(r"\d", "\u00b2")
    assert all(int(c) == unicodedata.decimal(c) for c in re.findall(r"\d", ALL))  # int() reads every \d


def test_ruleset_does_not_import_re():
    """Neither at import nor reading a size or a requirement (-S: site's editable finder loads re)."""
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); import memdiag.ruleset as r; "
            "r.satisfies('>=0.1, <2', '1.0'); r.param_value('512 MiB'); print(sorted({'re', 'enum'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- param_value: _SIZE_TEXT --------------------------------------------------------------------

_SIZE_TEXT = re.compile(r"^\s*\d+(\.\d+)?\s*[A-Za-z]+\s*$")
_PARAMS = ("512 MiB", " 1.5GiB ", "2GiB", "64k", "1.5", "100", "-5 MiB", "+5 MiB", "5.", ".5 G", "1.2.3 G",
           "5 M B", "\u0663\u0664 MiB", "3 \u212aB", "12 kB\n", "true", "False", "0x10", "1e3", "inf", "nan",
           "9" * 400 + " B", "5 \u00e9", "")


def _old_param_value(value):
    if isinstance(value, str):
        text = value.strip()
        if _SIZE_TEXT.match(text):
            try:
                return parse_size(text)
            except UnitError:
                return value
        for conv in (int, float):
            try:
                return conv(text)
            except ValueError:
                pass
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
    return value


def _same(a, b) -> bool:
    return a == b or a != a and b != b  # NaN: a float("nan") param on both sides


@settings(max_examples=3000, deadline=None)
@given(lines(*_PARAMS, max_size=20))
@example("5 k\n")
@example("5 k\n\n")
@example("\u00b2 MiB")
@example("1\x1c GiB\x1f")
def test_a_size_text_is_told_as_by_the_pattern(text):
    assert ruleset._is_size_text(text) == bool(_SIZE_TEXT.match(text))
    new, old = ruleset.param_value(text), _old_param_value(text)
    assert type(new) is type(old) and _same(new, old)


def test_real_param_values():
    assert ruleset.param_value("512 MiB") == 512 << 20
    assert ruleset.param_value(" 1.5GiB ") == 3 << 29
    assert ruleset.param_value("\u0665 KiB") == 5 << 10
    assert ruleset.param_value("12") == 12 and ruleset.param_value("0.5") == 0.5
    assert ruleset.param_value("5 parsecs") == "5 parsecs"  # a size's form, no unit memdiag knows
    assert ruleset.param_value("-5 MiB") == "-5 MiB"  # no sign on a size
    assert ruleset.param_value("True") is True


# -- _vtuple and satisfies: re.findall(r"\d+") and the clause pattern ----------------------------

def _old_vtuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def _old_satisfies(requirement: str, version: str) -> bool:
    have = _old_vtuple(version)
    for clause in requirement.split(","):
        m = re.match(r"\s*(>=|>|==|<=|<)?\s*([\d.]+)\s*$", clause)
        if not m:
            return False
        op, want = m.group(1) or ">=", _old_vtuple(m.group(2))
        pad = max(len(have), len(want))
        h, w = have + (0,) * (pad - len(have)), want + (0,) * (pad - len(want))
        if not {">=": h >= w, ">": h > w, "==": h == w, "<=": h <= w, "<": h < w}[op]:
            return False
    return True


def _outcome(func, *args):
    """The answer, or the exception's type and text (int() refuses over 4300 digits)."""
    try:
        return func(*args)
    except ValueError as exc:
        return type(exc), str(exc)


_VERSIONS = ("0.1.0", "1.2.3rc1", "1.5", "2", "0.10.0.dev3+g1234", "v1.2", "1..2", "", "\u0661.\u0662",
             "1.2.3.4", "1" * 4400, "1\u00b2.3")
_CLAUSES = (">=0.1", "<2", ">0.1", "<=1.5", "==1.2.3", "0.2", " >= 0.1 ", ">=", "=>1", "=1", ">>1", "~=1.2",
            ">=1.2.3rc1", "..", ".", "< 2\n", ">= \u0663", "==1 .2", "!=1", "<\u30001")


@st.composite
def _requirements(draw) -> str:
    clauses = draw(st.lists(lines(*_CLAUSES, max_size=12), min_size=1, max_size=3))
    return ",".join(clauses)


@settings(max_examples=3000, deadline=None)
@given(lines(*_VERSIONS, max_size=20))
@example("1" * 4301)
def test_a_version_reads_as_by_the_pattern(text):
    assert _outcome(ruleset._vtuple, text) == _outcome(_old_vtuple, text)


@settings(max_examples=5000, deadline=None)
@given(_requirements(), lines(*_VERSIONS, max_size=20))
@example(">= 1\n", "1")
@example(">=1,\n", "1")
@example(">\n=1", "1")
@example("\x1c>=\x1f1\x85", "1")
@example(">=\u00b2", "1")
def test_a_requirement_is_met_as_by_the_pattern(requirement, version):
    assert _outcome(ruleset.satisfies, requirement, version) == _outcome(_old_satisfies, requirement, version)


def test_real_requirements():
    assert ruleset.satisfies(">=0.1, <2", "1.5")
    assert not ruleset.satisfies(">=0.1, <2", "2.0")
    assert ruleset.satisfies(">=0.1", "0.1.0")
    assert ruleset.satisfies("==1.2.3", "1.2.3rc1")  # the first three numbers only
    assert ruleset.satisfies("0.1", "0.1.0")  # no operator: >=
    assert ruleset.satisfies(" >= 0.1 ,< 2\n", "0.1.0")
    assert not ruleset.satisfies("~=1.2", "1.2")  # an operator memdiag does not know
    assert not ruleset.satisfies(">=", "1.2")
    assert ruleset._vtuple("1.2.3rc1") == (1, 2, 3)
    assert ruleset._vtuple("\u0661\u0660.2") == (10, 2)
