"""The parsers and the recogniser are cheap to import: their regular expressions are compiled when
first used (LazyPattern), their records are written-out classes, not dataclasses; and they
behave as before."""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys

import pytest

from memdiag.parsers import LazyPattern
from memdiag.parsers.free import FreeOutput
from memdiag.parsers.oomkill import OomLog, Report, Victim, Zone
from memdiag.parsers.ps import PsProcess
from memdiag.parsers.top import TopOutput, TopProcess
from memdiag.recognize import Chunk, Recognition
from testkit import REPO

_PROBE = """
import json, sys
import memdiag.parsers.oomkill, memdiag.parsers.top, memdiag.parsers.free, memdiag.parsers.ps, memdiag.recognize
from memdiag.parsers import LazyPattern
compiled = [f"{m.__name__}.{k}" for m in (memdiag.parsers.oomkill, memdiag.parsers.top, memdiag.recognize)
            for k, v in vars(m).items() if isinstance(v, LazyPattern) and "match" in vars(v)]
print(json.dumps({"compiled": compiled, "loaded": [m for m in ("dataclasses", "typing", "textwrap") if m in sys.modules]}))
"""


def test_importing_the_parsers_compiles_nothing_and_loads_no_dataclasses():
    proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, cwd=REPO, timeout=60)
    got = json.loads(proc.stdout)
    assert got["compiled"] == []
    assert "dataclasses" not in got["loaded"]


@pytest.mark.parametrize("pattern,flags,text", [
    (r"^(\d+) (pages RAM|pages reserved)\b", 0, "262144 pages RAM"),
    (r"(\d{1,20})\*(\d{1,20})kB", 0, "Node 0 Normal: 10*4kB (U) 5*8kB (M) = 80kB"),
    (r"#012|\\x0a", 0, "a#012b\\x0ac"),
    (r"usage:|error", re.IGNORECASE, "USAGE: foo"),
])
def test_a_lazy_pattern_answers_as_the_compiled_one(pattern, flags, text):
    lazy, real = LazyPattern(pattern, flags), re.compile(pattern, flags)
    assert "match" not in vars(lazy)  # nothing compiled yet
    assert bool(lazy.match(text)) == bool(real.match(text))
    assert "match" in vars(lazy)  # compiled once; its methods now the pattern's own
    if real.match(text):
        assert lazy.match(text).groups() == real.match(text).groups()
    assert lazy.findall(text) == real.findall(text)
    assert lazy.split(text) == real.split(text)
    assert [m.span() for m in lazy.finditer(text)] == [m.span() for m in real.finditer(text)]
    assert lazy.sub("-", text) == real.sub("-", text)
    assert (lazy.search(text) is None) == (real.search(text) is None)
    assert lazy.pattern == real.pattern and lazy.groups == real.groups


def test_a_lazy_pattern_is_compiled_by_whichever_attribute_comes_first():
    lazy = LazyPattern(r"(?P<n>\d+)")
    assert lazy.groupindex == {"n": 1}
    assert lazy.search("ab12").group("n") == "12"
    with pytest.raises(AttributeError):
        lazy.__no_such_thing__  # noqa: B018


def test_records_compare_by_their_fields_and_show_them():
    assert PsProcess(1, 4096, "bash") == PsProcess(1, 4096, "bash") != PsProcess(2, 4096, "bash")
    assert repr(PsProcess(1, 4096, "bash")) == "PsProcess(pid=1, rss_bytes=4096, comm='bash')"
    top = TopOutput(mem_total=1)
    assert top.processes == [] and top.skipped == [] and top.processes is not TopOutput().processes
    top.processes.append(TopProcess(1, "root", 2, "init"))
    assert top != TopOutput(mem_total=1) and top == TopOutput(mem_total=1, processes=[TopProcess(1, "root", 2, "init")])
    assert FreeOutput().layout == "new" and FreeOutput(total=5).total == 5 and not FreeOutput().unit_assumed
    assert Zone("Normal").blocks == {} and Zone("Normal").blocks is not Zone("Normal").blocks
    assert Victim(pid=1, name="x") == Victim(1, "x") and Victim(1, "x") != Victim(1, "x", reaped=True)
    r = Report(line=3)
    assert (r.line, r.zones, r.complete, r.wall_has_year, r.victim) == (3, [], False, True, None)
    assert OomLog() == OomLog() and OomLog().latest is None and OomLog(lines=2).lines == 2
    with pytest.raises(TypeError):
        hash(PsProcess(1, 2, "x"))  # mutable records are not hashable, as before


def test_chunks_are_immutable_hashable_and_picklable():
    c = Chunk("cmd:free", "text\n", "f:1", 1)
    assert c == Chunk("cmd:free", "text\n", "f:1", 1, None) and hash(c) == hash(Chunk("cmd:free", "text\n", "f:1", 1))
    assert c.captured.text == "text\n" and c.captured.origin == "f:1"
    with pytest.raises(AttributeError):
        c.key = "x"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(c)) == c
    assert Recognition().chunks == [] and Recognition().prompt_host is None
