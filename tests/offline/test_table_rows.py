"""Rows of a column table split the same whichever way their fields are found."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from memdiag.parsers._table import header, split_row

_FIELD = re.compile(r"\S+")
_TEXT = st.text(st.sampled_from(" \t\x0b\x0c\x1c\x1f\x85\xa0\u1680\u2000\u2028\u3000\u200b\ufeffab/[]-1"), max_size=40)


@settings(max_examples=500, deadline=None)
@given(_TEXT)
def test_str_split_finds_the_fields_the_pattern_finds(line):
    assert line.split() == _FIELD.findall(line)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["PID RSS COMMAND", "USER PID %CPU RSS COMMAND", "PID RSS"]), _TEXT)
def test_a_row_splits_as_by_the_pattern(head, line):
    h = header(head, ("COMMAND",))
    found = _FIELD.findall(line)
    row = split_row(h, line)
    if len(found) == len(h.names):
        assert row == found
    elif len(found) < len(h.names) or h.wide is None:
        assert row is None
    else:
        assert len(row) == len(h.names) and row[:h.wide] == found[:h.wide]
