"""Hang-proof collection: reads that block are refused or abandoned, named, and the run finishes
with its partial results marked and the confidence of the findings they feed lowered."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading

import pytest

from memdiag import document, pipeline
from memdiag.bounded import Deadline, bounded_map
from memdiag.evidence import Evidence, Unreadable
from memdiag.plugins.sources.meminfo import MeminfoSource

from .helpers import REPO, SEED, BlockingOpens, must_return, vmware_guest, write_tree


@pytest.fixture(scope="module")
def rules(registry):
    return pipeline.load_rules(registry)


def finding(diag, rule_id):
    return next(f for f in diag.document["findings"] if f["rule_id"] == rule_id)


# -- FIFOs --------------------------------------------------------------------------------------

def test_a_fifo_in_a_capture_is_refused_without_blocking(tmp_path):
    write_tree(tmp_path, {"proc/meminfo": "MemTotal: 1 kB\n"})
    for rel in ("proc/vmstat", "proc/slabinfo"):
        os.mkfifo(tmp_path / rel)
    ev = Evidence(str(tmp_path), kind="capture")
    for read in (lambda: ev.read_text("proc/vmstat"), lambda: list(ev.lines("proc/slabinfo"))):
        with pytest.raises(Unreadable) as info:
            must_return(read)
        assert "not a regular file (FIFO" in info.value.message and info.value.kind == "malformed"


def test_a_fifo_in_a_live_root_does_not_block_either(tmp_path):
    """Live reads open FIFOs (procfs has none), but with O_NONBLOCK: no writer is end-of-file,
    a silent writer is refused."""
    os.mkfifo(tmp_path / "meminfo")
    ev = Evidence(str(tmp_path), kind="live")
    assert must_return(lambda: ev.read_bytes("meminfo")) == b""
    writer = os.open(tmp_path / "meminfo", os.O_RDWR | os.O_NONBLOCK)  # holds the FIFO open, writes nothing
    try:
        with pytest.raises(Unreadable, match="read would block; refused"):
            must_return(lambda: ev.read_bytes("meminfo"))
    finally:
        os.close(writer)


def test_fifos_in_a_captured_folder_end_in_a_clear_report_via_the_cli(tmp_path):
    write_tree(tmp_path, {"proc/meminfo": SEED.joinpath("meminfo").read_text()})
    for rel in ("proc/vmstat", "proc/vmallocinfo", "proc/modules", "top.txt"):
        os.mkfifo(tmp_path / rel)
    proc = subprocess.run([sys.executable, "-m", "memdiag", "analyze", str(tmp_path), "--format", "json",
                           "--no-sinks"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    assert proc.returncode == 1  # the unaccounted-memory warning still comes through
    refused = {p["path"] for p in doc["problems"] if "not a regular file" in p["message"]}
    assert {str(tmp_path / r) for r in ("proc/vmstat", "proc/vmallocinfo", "proc/modules")} <= refused


# -- reads that hang -----------------------------------------------------------------------------

@pytest.fixture
def hanging(monkeypatch):
    made = []

    def make(paths):
        b = BlockingOpens(monkeypatch, paths)
        made.append(b)
        return b

    yield make
    for b in made:
        b.release()


def test_a_hanging_proc_read_is_abandoned_named_and_lowers_confidence(tmp_path, registry, rules, hanging):
    calm = pipeline.diagnose(Evidence(str(vmware_guest(tmp_path / "calm")), kind="live"),
                             registry=registry, rules=rules, deadline=Deadline(60))
    root = vmware_guest(tmp_path / "stuck", processes={1: ("systemd", 4000), 687: ("vmtoolsd", 1548),
                                                        3725: ("java", 1818000)})
    (root / "proc/1087").mkdir()
    hanging([root / "proc/1087/status"])  # mysqld's status read never returns
    stuck = must_return(lambda: pipeline.diagnose(Evidence(str(root), kind="live"), registry=registry,
                                                  rules=rules, deadline=Deadline(60)))

    problems = [p for p in stuck.facts.problems if p.source == "processes"]
    assert [(p.message, p.path, p.kind) for p in problems] == [
        ("timed out reading process 1087; skipped", f"{root}/proc/1087/status", "timeout")]
    # partial results: the three readable processes, and the one given up on counted
    assert stuck.facts.get("processes.count") == 3
    assert stuck.facts.get("processes.unreadable") == 1
    assert stuck.facts.get("processes.rss_total") == (4000 + 1548 + 1818000) * 1024
    # the diagnosis is still given, one confidence step lower and marked partial
    before, after = finding(calm, "vmware-balloon"), finding(stuck, "vmware-balloon")
    assert (before["confidence"], before.get("partial")) == ("likely", None)
    assert (after["confidence"], after["partial"]) == ("suspected", True)
    assert {"source": "processes", "kind": "timeout", "message": "timed out reading process 1087; skipped",
            "path": f"{root}/proc/1087/status"} in stuck.document["problems"]
    text = registry.formats["text"](stuck.document, {"color": False, "width": 80})
    assert "timed out reading process 1087; skipped" in " ".join(text.split())  # wrapped at 80


def test_a_source_stuck_on_a_read_is_abandoned_and_the_file_named(tmp_path, registry, rules, hanging, monkeypatch):
    root = vmware_guest(tmp_path)
    (root / "proc/meminfo").unlink()
    hanging([root / "proc/meminfo"])
    monkeypatch.setattr(MeminfoSource, "timeout", 0.5)
    diag = must_return(lambda: pipeline.diagnose(Evidence(str(root), kind="live"), registry=registry,
                                                 rules=rules, deadline=Deadline(60)))
    mine = [p for p in diag.facts.problems if p.source == "meminfo"]
    assert [(p.message, p.kind) for p in mine] == [
        (f"timed out reading {root}/proc/meminfo; its facts are partial or missing", "timeout")]
    # the sources after it ran on a fresh worker
    assert diag.facts.get("processes.count") == 4
    assert diag.facts.get("modules.loaded") == ["vmw_balloon", "vmw_vmci"]
    assert diag.document["verdict"]["severity"] == "unknown"  # no MemTotal: nothing to judge, not "ok"


def test_the_overall_deadline_ends_the_run_with_every_source_accounted_for(tmp_path, registry, rules, hanging):
    root = vmware_guest(tmp_path)
    (root / "proc/meminfo").unlink()
    hanging([root / "proc/meminfo"])  # meminfo may stall 5 s; the whole run has 1 s
    diag = must_return(lambda: pipeline.diagnose(Evidence(str(root), kind="live"), registry=registry,
                                                 rules=rules, deadline=Deadline(1.0)))
    by_source = {p.source: p for p in diag.facts.problems}
    assert by_source["meminfo"].kind == "timeout"
    assert by_source["meminfo"].message.startswith(f"timed out reading {root}/proc/meminfo")
    # meminfo runs first; everything after it is given up on, by name, when the deadline passes
    not_run = {s for s, p in by_source.items() if p.message == "not run: the overall deadline passed"}
    assert not_run == {s.name for s in registry.sources} - {"meminfo"}
    assert all(by_source[s].kind == "timeout" for s in not_run)
    assert len(diag.document["problems"]) == len(registry.sources)  # the document still builds
    # the verdict says the evidence was not read, not that the host has none
    assert diag.document["verdict"]["severity"] == "unknown"
    assert diag.document["verdict"]["summary"].endswith(
        f"({len(registry.sources)} source(s) timed out or were not run)")


HEALTHY = REPO / "tests" / "fixtures" / "baselines" / "firecracker-guest"


def test_a_verdict_given_on_partial_evidence_says_how_much_was_cut_short(tmp_path, registry, rules, hanging):
    """A healthy host's meminfo is read, then vmstat hangs past the run's deadline: the verdict on
    what was read counts the sources that were not (with no finding, or with one on top)."""
    root = tmp_path / "host"
    shutil.copytree(HEALTHY, root)
    (root / "proc/vmstat").unlink()
    hanging([root / "proc/vmstat"])
    diag = must_return(lambda: pipeline.diagnose(Evidence(str(root), kind="live"), registry=registry,
                                                 rules=rules, deadline=Deadline(1.0)))
    cut = {p.source for p in diag.facts.problems if p.kind == "timeout"}
    assert "vmstat" in cut and len(cut) > 1 and diag.facts.get("meminfo.MemTotal") > 0
    note = f"{len(cut)} source(s) timed out or were not run"
    verdict = diag.document["verdict"]
    assert verdict["severity"] == "ok" and verdict["summary"].startswith("No memory problem found (")
    assert verdict["summary"].endswith(f"; {note})")  # after the rules it could not check
    # with a finding on top (one from a full run of the same host), the count still follows it
    full = pipeline.diagnose(Evidence(str(HEALTHY), kind="capture"), registry=registry, rules=rules)
    doc = document.build(diag.evidence, diag.facts, full.results, host="h", now="t")
    top = doc["findings"][0]
    assert doc["verdict"]["summary"] == f"{top['title']} ({top['confidence']}); {note}"


def test_a_plugin_source_that_hangs_cannot_hang_the_command(tmp_path):
    """End to end through the CLI: a third-party source blocks forever in open(); the command
    still reports, names the source, and exits with the diagnosis's own code."""
    fifo = tmp_path / "never"
    os.mkfifo(fifo)
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "stuck.py").write_text(textwrap.dedent(f"""
        from memdiag.hookspecs import hookimpl
        from memdiag.sources import Source

        class Stuck(Source):
            name = "stuck"
            timeout = 1.0

            def collect(self, ev, out):
                open({str(fifo)!r}, "rb")  # no writer ever comes: blocks in the kernel

        @hookimpl
        def memdiag_fact_sources(register):
            register(Stuck())
    """))
    capture = write_tree(tmp_path / "capture", {"proc/meminfo": SEED.joinpath("meminfo").read_text(),
                                                "top.txt": SEED.joinpath("top.txt").read_text()})
    proc = subprocess.run([sys.executable, "-m", "memdiag", "analyze", str(capture), "--plugins-dir", str(plugins),
                           "--format", "json", "--no-sinks", "--timeout", "10"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    try:
        assert "Traceback" not in proc.stderr
        doc = json.loads(proc.stdout)
        assert proc.returncode == 1, proc.stderr  # the founding case's warning, despite the stuck source
        assert {"source": "stuck", "kind": "timeout", "path": "",
                "message": "timed out; its facts are partial or missing"} in doc["problems"]
        assert any(f["rule_id"] == "vmware-balloon" for f in doc["findings"])
    finally:
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass


# -- streaming results out of bounded_map -------------------------------------------------------

def test_bounded_map_streams_results_in_order_and_keeps_none():
    seen = []
    out = bounded_map(lambda i: i * 2, range(1000), stall=5, deadline=Deadline(60),
                      on_result=lambda item, r: seen.append((item, r)))
    assert seen == [(i, i * 2) for i in range(1000)]
    assert out.results == [] and not out.errors and not out.timed_out


def test_bounded_map_never_streams_from_an_abandoned_worker():
    release, seen = threading.Event(), []

    def work(i):
        if i == 1:
            release.wait(30)
        return i

    out = must_return(lambda: bounded_map(work, range(4), stall=0.2, deadline=Deadline(60),
                                          on_result=lambda item, r: seen.append(item)))
    snapshot = list(seen)
    release.set()
    threading.Event().wait(0.3)  # give the abandoned worker every chance to (wrongly) deliver
    assert out.timed_out == [1] and snapshot == [0, 2, 3] and seen == snapshot


def test_a_failing_consumer_is_that_items_error():
    def consume(item, r):
        if item == 2:
            raise ValueError("no room")

    out = bounded_map(lambda i: i, range(4), stall=5, deadline=Deadline(60), on_result=consume)
    assert [(i, str(e)) for i, e in out.errors] == [(2, "no room")]


def test_a_source_that_returns_after_being_given_up_on_changes_nothing(tmp_path, hanging):
    """Its read comes back (the FIFO gets a writer) after collect() returned: its late facts and
    problems are dropped, what it wrote before it got stuck stays, marked partial."""
    from memdiag.sources import Source, collect, spec

    fifo = tmp_path / "stuck"
    blocking = hanging([fifo])
    finished = threading.Event()

    class Late(Source):
        name = "late"
        timeout = 0.3
        facts = (spec("late.before", "count", "written before the stuck read"),
                 spec("late.after", "count", "written after it"))

        def collect(self, ev, out):
            out.set("late.before", 1, "test")
            try:
                os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # blocks: O_NONBLOCK is stripped
                out.set("late.after", 2, "test")
                out.problem(self.name, "late problem")
            finally:
                finished.set()

    out = must_return(lambda: collect([Late()], Evidence(str(tmp_path), kind="live"), deadline=Deadline(60)))
    blocking.release()
    assert finished.wait(30)
    assert out.get("late.before") == 1 and "late.after" not in out
    assert [(p.source, p.kind) for p in out.problems] == [("late", "timeout")]
