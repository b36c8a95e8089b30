"""The process scan's live path (the running kernel's /proc read directly, a parser for its
layout) gives the same facts as the path every snapshot takes through Evidence."""

from __future__ import annotations

from pathlib import Path

from memdiag.bounded import Deadline
from memdiag.evidence import Captured, Evidence
from memdiag.facts import FactSet
from memdiag.plugins.sources import processes
from memdiag.plugins.sources.processes import RANKING, STATUS_LIMIT, ProcessesSource
from memdiag.sources import collect
from testkit import host_statuses

#: odd files both paths must read alike: pre-4.5 (no split), a kernel thread, a status too
#: large to be one, an empty one (a zombie being reaped), and a process gone between listing
#: and reading (its folder left empty)
ODD = {
    "900001": b"Name:\told\nState:\tS (sleeping)\nVmRSS:\t    2048 kB\nVmData:\t     100 kB\n"
              b"VmStk:\t     132 kB\nVmExe:\t      20 kB\nVmLib:\t    1528 kB\nVmSwap:\t      64 kB\n",
    "900002": b"Name:\tkworker/0:1\nState:\tI (idle)\nKthread:\t1\nThreads:\t1\n",
    "900003": b"Name:\thuge\nVmRSS:\t1 kB\n" + b"x" * STATUS_LIMIT,
    "900004": b"",
}


def copy_proc(root: Path) -> int:
    """This host's /proc/*/status as a snapshot tree under ``root`` (plus ODD); how many."""
    copied = 0
    for pid, data in host_statuses():
        (root / "proc" / pid).mkdir(parents=True)
        (root / "proc" / pid / "status").write_bytes(data)
        copied += 1
    for pid, data in ODD.items():
        (root / "proc" / pid).mkdir(parents=True)
        (root / "proc" / pid / "status").write_bytes(data)
    (root / "proc/900005").mkdir()
    return copied


def scan(ev: Evidence) -> tuple[FactSet, object]:
    out = collect([ProcessesSource()], ev, deadline=Deadline(60))
    return out, ev.shared[RANKING]


def facts(out: FactSet) -> dict:
    return {name: (fact.value, fact.origin) for name, fact in out.facts.items()}


def test_the_live_path_gives_the_snapshots_facts_on_a_copy_of_proc(tmp_path, monkeypatch):
    copied = copy_proc(tmp_path)
    through_evidence: list[str] = []
    real = Evidence.read_bytes

    def counting(self, rel, limit=16 << 20):
        through_evidence.append(rel)
        return real(self, rel, limit)

    monkeypatch.setattr(Evidence, "read_bytes", counting)
    snap, snap_rank = scan(Evidence(str(tmp_path), kind="capture"))
    assert len(through_evidence) == copied + 5
    through_evidence.clear()
    live, live_rank = scan(Evidence(str(tmp_path), kind="live"))
    assert through_evidence == []  # every status read directly

    assert facts(live) == facts(snap)
    assert [(p.message, p.kind) for p in live.problems] == [(p.message, p.kind) for p in snap.problems] == []
    assert live.get("processes.count") == copied + 2  # old and the kernel thread among them
    assert live.get("processes.unreadable") == 3
    assert live.get("processes.rss_anon_total") > 0  # this kernel splits RSS
    assert (live_rank.largest, live_rank.holding, live_rank.rss_total, live_rank.complete) == \
           (snap_rank.largest, snap_rank.holding, snap_rank.rss_total, snap_rank.complete)


def test_the_running_host_is_scanned_on_the_live_path():
    ev = Evidence("/", kind="live")
    assert processes._plain_live(ev)
    out, ranking = scan(ev)
    assert out.get("processes.count") >= 2 and out.get("processes.rss_total") > 0
    assert ranking.largest and ranking.holding >= len(ranking.largest)
    with open("/proc/self/comm") as f:
        assert f.read().strip() in out.get("processes.names")  # this very process


class Watching(Evidence):
    """A live host whose every read someone sees (as memdiag collect records them)."""

    def __init__(self, root: str) -> None:
        super().__init__(root, kind="live")
        self.seen: list[str] = []

    def read_bytes(self, rel, limit=16 << 20):
        self.seen.append(rel)
        return super().read_bytes(rel, limit)


def test_a_live_evidence_that_watches_its_reads_sees_every_status(tmp_path):
    copy_proc(tmp_path)
    ev = Watching(str(tmp_path))
    out, _ = scan(ev)
    assert not processes._plain_live(ev)
    statuses = [rel for rel in ev.seen if rel.endswith("/status")]
    assert len(statuses) == out.get("processes.count") + out.get("processes.unreadable")
    plain, _ = scan(Evidence(str(tmp_path), kind="live"))
    assert facts(out) == facts(plain)


def test_an_overlay_on_a_live_host_is_read_through_evidence(tmp_path):
    (tmp_path / "proc/7").mkdir(parents=True)
    (tmp_path / "proc/7/status").write_text("Name:\tdisk\nVmRSS:\t1 kB\n")
    pasted = Captured("Name:\tpasted\nVmRSS:\t4 kB\n", "pasted text")
    ev = Evidence(str(tmp_path), kind="live", overlay={"proc/7/status": pasted})
    assert not processes._plain_live(ev)
    out, _ = scan(ev)
    assert out.get("processes.names") == ["pasted"] and out.get("processes.rss_total") == 4096
