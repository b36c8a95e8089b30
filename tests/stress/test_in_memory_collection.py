"""Sources over an archive's in-memory index run in the caller's thread, under the same limits.

No read of an indexed archive can block, so no worker watches them; the deadlines are checked at
each read instead. These tests hold that path to what the watched one promises: a source past
its time stops at its next read, is named with the file, keeps what it wrote, and the others
still run; a source that does I/O of its own is still watched; and memdiag's own sources really
do read nothing but their evidence.
"""

from __future__ import annotations

import _thread
import builtins
import os
import tarfile
import time
from pathlib import Path

import pytest

from memdiag import pipeline, sources
from memdiag.bounded import Deadline
from memdiag.plugins.inputs._evidence import ArchiveEvidence
from memdiag.sources import Source, build_catalog, spec

from .helpers import must_return

SOS = Path(__file__).parent.parent / "fixtures" / "offline" / "sos" / "sosreport-centos7-mini"
BIG_LINES = 40_000  # ~600 KB: ten 64 KiB blocks to stream


@pytest.fixture
def archived(tmp_path, registry):
    """ArchiveEvidence of the mini sosreport plus a large proc/bigfile, indexed in memory."""
    path = tmp_path / "sosreport-centos7-mini.tar.gz"
    big = tmp_path / "bigfile"
    big.write_text("".join(f"line {i:08d}\n" for i in range(BIG_LINES)))
    with tarfile.open(path, "w:gz") as tar:
        tar.add(SOS, arcname="sosreport-centos7-mini")
        tar.add(big, arcname="sosreport-centos7-mini/proc/bigfile")
    work = tmp_path / "work"
    work.mkdir()
    ev = pipeline.open_input(str(path), registry, str(work))
    assert isinstance(ev, ArchiveEvidence) and ev.in_memory
    return ev


class Probe(Source):
    """Records the thread it ran in, writes a fact, then does whatever ``body`` says."""

    def __init__(self, name: str, body=None, *, evidence_only: bool = True, timeout: float = 5.0) -> None:
        self.name, self.body, self.evidence_only, self.timeout = name, body, evidence_only, timeout
        self.facts = (spec(f"{name}.first", "count", "set before the body runs", unit="calls"),
                      spec(f"{name}.last", "count", "set after the body returns", unit="calls"))
        self.thread = None

    def collect(self, ev, out):
        self.thread = _thread.get_ident()
        out.set(f"{self.name}.first", 1, "probe")
        if self.body:
            self.body(ev)
        out.set(f"{self.name}.last", 1, "probe")


def run(srcs, ev, seconds=60.0):
    return must_return(lambda: sources.collect(srcs, ev, deadline=Deadline(seconds), catalog=build_catalog(srcs)))


def problems_of(facts, name):
    return [p for p in facts.problems if p.source == name]


def collected_in(srcs, ev):
    """(facts, the thread that called collect)."""
    def call():
        return sources.collect(srcs, ev, deadline=Deadline(60), catalog=build_catalog(srcs)), _thread.get_ident()
    return must_return(call)


def test_memdiags_own_sources_run_in_the_callers_thread(archived):
    a, b = Probe("a"), Probe("b")
    facts, caller = collected_in([a, b], archived)
    assert a.thread == b.thread == caller
    assert facts.get("a.last") == facts.get("b.last") == 1 and not facts.problems


def test_a_source_with_io_of_its_own_puts_every_source_back_in_a_watched_worker(archived):
    own, other = Probe("own", evidence_only=False), Probe("other")
    facts, caller = collected_in([own, other], archived)
    assert own.thread != caller and other.thread != caller
    assert facts.get("own.last") == facts.get("other.last") == 1


def test_a_source_past_its_timeout_stops_at_its_next_read_and_is_named(archived):
    def dawdle(ev):
        while True:  # its own "except Exception" must not swallow being stopped
            try:
                time.sleep(0.01)
                ev.read_bytes("proc/meminfo")
            except Exception:  # noqa: BLE001 - the point of the test
                pass

    slow, after = Probe("slow", dawdle, timeout=0.1), Probe("after")
    facts = run([slow, after], archived)
    (problem,) = problems_of(facts, "slow")
    assert problem.kind == "timeout"
    assert problem.message == f"timed out reading {problem.path}; its facts are partial or missing"
    assert problem.path.endswith("sosreport-centos7-mini.tar.gz:sosreport-centos7-mini/proc/meminfo")
    assert facts.get("slow.first") == 1 and "slow.last" not in facts  # what it wrote stays
    assert facts.get("after.last") == 1 and not problems_of(facts, "after")  # the next one ran, on time


def test_a_stream_is_stopped_between_blocks(archived):
    seen = []

    def stream(ev):
        for line in ev.lines("proc/bigfile"):
            seen.append(line)
            if len(seen) % 4096 == 0:
                time.sleep(0.02)

    facts = run([Probe("reader", stream, timeout=0.05)], archived)
    (problem,) = problems_of(facts, "reader")
    assert problem.kind == "timeout" and problem.path.endswith("proc/bigfile")
    assert 0 < len(seen) < BIG_LINES and seen[:2] == ["line 00000000", "line 00000001"]


def test_the_overall_deadline_stops_the_run_and_accounts_for_every_source(archived):
    def dawdle(ev):
        while True:
            time.sleep(0.01)
            ev.exists("proc/meminfo")

    first, slow, never = Probe("first"), Probe("slow", dawdle), Probe("never")
    facts = run([first, slow, never], archived, seconds=0.3)
    assert facts.get("first.last") == 1
    assert [p.kind for p in problems_of(facts, "slow")] == ["timeout"]
    assert [p.message for p in problems_of(facts, "never")] == ["not run: the overall deadline passed"]
    assert archived.due is None  # nothing left armed for a later read


def test_a_failing_source_is_reported_and_the_rest_run(archived):
    def fail(ev):
        raise ValueError("bad parse")

    facts = run([Probe("bad", fail), Probe("good")], archived)
    assert [p.message for p in problems_of(facts, "bad")] == ["failed: ValueError: bad parse"]
    assert facts.get("good.last") == 1


def test_builtin_sources_declare_and_keep_to_evidence_only(archived, registry, monkeypatch):
    """Every built-in source is evidence_only, and over an archive it indeed touches no file,
    folder or link of its own: the file system's calls are made to fail while they run."""
    assert registry.sources and all(src.evidence_only for src in registry.sources)
    rules = pipeline.load_rules(registry)
    before = pipeline.diagnose(archived, registry=registry, rules=rules).document
    touched = []

    def refuse(name):
        def call(*args, **kwargs):
            touched.append((name, args[:1]))
            raise AssertionError(f"{name} called by a source over in-memory evidence")
        return call

    for name in ("open", "stat", "lstat", "listdir", "scandir", "readlink", "statvfs", "access"):
        monkeypatch.setattr(os, name, refuse(f"os.{name}"))
    monkeypatch.setattr(builtins, "open", refuse("open"))
    facts = sources.collect(registry.sources, archived, deadline=Deadline(60), catalog=registry.catalog)
    monkeypatch.undo()
    assert touched == []
    assert not [p for p in facts.problems if p.kind == "failed"]
    assert {p.source for p in facts.problems} == {p["source"] for p in before["problems"]}
