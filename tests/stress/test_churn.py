"""Churn: processes starting and exiting while memdiag scans /proc. Nothing crashes, and every
scan is self-consistent: the count is the number of rows read, the totals are sums of those rows,
and every listed process is either a row or counted as unreadable."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading

import pytest

from memdiag.bounded import Deadline
from memdiag.evidence import Evidence, live
from memdiag.plugins.sources import processes as processes_module
from memdiag.plugins.sources.processes import TOP_N, ProcessesSource
from memdiag.sources import collect

from testkit import validate_document

from .helpers import REPO, must_return

CHURN = 2000


class Recording(processes_module._Totals):
    """The scan's running totals, also keeping every row handed to them (for checking only)."""

    made: list["Recording"] = []

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, tuple[str, list[int | None]]]] = []
        Recording.made.append(self)

    def add(self, pid, parsed) -> None:
        self.rows.append((pid, parsed))
        super().add(pid, parsed)


@pytest.fixture
def recording(monkeypatch):
    Recording.made = []
    monkeypatch.setattr(processes_module, "_Totals", Recording)
    return Recording.made


def check_consistent(out, acc: Recording, listed: int | None = None) -> None:
    rows = acc.rows
    assert out.get("processes.count") == len(rows)
    assert out.get("processes.rss_total") == sum(v[0] or 0 for _, (_, v) in rows)
    assert out.get("processes.swap_total") == sum(v[4] or 0 for _, (_, v) in rows)
    if any(v[1] is not None for _, (_, v) in rows):
        assert out.get("processes.rss_anon_total") == sum(v[1] or 0 for _, (_, v) in rows)
    assert out.get("processes.names") == sorted({name for _, (name, _) in rows})
    expected_top = sorted(((int(p), n, v[0] or 0) for p, (n, v) in rows), key=lambda r: r[2], reverse=True)[:TOP_N]
    assert [(r["pid"], r["comm"], r["rss"]) for r in out.get("processes.top")] == expected_top
    if listed is not None:
        assert len(rows) + out.get("processes.unreadable") == listed
    assert not [p for p in out.problems if p.kind in ("failed", "timeout")], out.problems


def spawn(n: int, program: str = "sleep", *args: str) -> list[int]:
    exe = shutil.which(program)
    return [os.posix_spawn(exe, [program, *args], {"PATH": "/usr/bin:/bin"}) for _ in range(n)]


def reap(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


class ExitingUnderfoot(Evidence):
    """The live host, where chosen processes exit just before their status is read: half are
    reaped (their /proc entry is gone), half left as zombies (status readable, no memory)."""

    def __init__(self, victims: list[int]) -> None:
        super().__init__("/", kind="live")
        self.gone = {str(p) for p in victims[::2]}
        self.zombies = {str(p) for p in victims[1::2]}
        self.listed: list[str] = []

    def listdir(self, rel):
        names = super().listdir(rel)
        if rel == "proc":
            self.listed = [n for n in names if n.isdigit()]
        return names

    def read_bytes(self, rel, limit=16 << 20):
        parts = rel.split("/")
        if len(parts) == 3 and parts[0] == "proc" and (parts[1] in self.gone or parts[1] in self.zombies):
            pid = int(parts[1])
            os.kill(pid, signal.SIGKILL)
            if parts[1] in self.gone:
                os.waitpid(pid, 0)
            else:
                while _state(pid) != "Z":
                    threading.Event().wait(0.001)
        return super().read_bytes(rel, limit)


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()[0].decode()


def test_processes_exiting_mid_scan_are_counted_not_rows(recording):
    victims = spawn(200, "sleep", "600")
    try:
        ev = ExitingUnderfoot(victims)
        out = collect([ProcessesSource()], ev, deadline=Deadline(120))
        acc = recording[-1]
        read = {p for p, _ in acc.rows}
        assert not read & ev.gone  # reaped before the read: not a row...
        assert ev.zombies <= read  # ...zombies are rows, holding no memory
        assert all(v[0] is None for p, (_, v) in acc.rows if p in ev.zombies)
        assert out.get("processes.unreadable") >= len(ev.gone)
        # whatever else started or ended meanwhile, every listed process is accounted for once
        check_consistent(out, acc, listed=len(ev.listed))
    finally:
        reap(victims)



def test_processes_exiting_mid_scan_on_the_live_path(recording, monkeypatch):
    """The same where the scan opens each status itself (the plain live host): the victims are
    killed as their status is opened, half reaped before the open, half left as zombies."""
    victims = spawn(200, "sleep", "600")
    gone, zombies = {str(p) for p in victims[::2]}, {str(p) for p in victims[1::2]}
    listed: list[str] = []
    real_open, real_listdir = os.open, os.listdir

    def opener(path, flags, *args, **kwargs):
        parts = os.fspath(path).split("/")
        if len(parts) == 4 and parts[1] == "proc" and parts[3] == "status" and parts[2] in gone | zombies:
            pid = int(parts[2])
            os.kill(pid, signal.SIGKILL)
            if parts[2] in gone:
                os.waitpid(pid, 0)
            else:
                while _state(pid) != "Z":
                    threading.Event().wait(0.001)
        return real_open(path, flags, *args, **kwargs)

    def listing(path="."):
        names = real_listdir(path)
        if os.fspath(path) == "/proc":
            listed[:] = [n for n in names if n.isdigit()]
        return names

    monkeypatch.setattr(os, "open", opener)
    monkeypatch.setattr(os, "listdir", listing)
    try:
        ev = live()
        assert processes_module._plain_live(ev)
        out = collect([ProcessesSource()], ev, deadline=Deadline(120))
        acc = recording[-1]
        read = {p for p, _ in acc.rows}
        assert not read & gone and zombies <= read
        assert all(v[0] is None for p, (_, v) in acc.rows if p in zombies)
        assert out.get("processes.unreadable") >= len(gone)
        check_consistent(out, acc, listed=len(listed))
    finally:
        monkeypatch.undo()
        reap(victims)

def churn(total: int, done: threading.Event, in_flight: int = 40) -> None:
    """Start ``total`` short-lived processes, ``in_flight`` at a time, reaping each as it ends."""
    exe = shutil.which("true") or "/bin/true"
    running: list[int] = []
    started = 0
    try:
        while started < total or running:
            while started < total and len(running) < in_flight:
                running.append(os.posix_spawn(exe, ["true"], {}))
                started += 1
            pid = running.pop(0)
            os.waitpid(pid, 0)
    finally:
        reap(running)
        done.set()


def test_two_thousand_short_lived_processes_during_scans(recording, registry):
    sleepers = spawn(300, "sleep", "600")  # a fuller /proc makes each scan last long enough to overlap
    done = threading.Event()
    churner = threading.Thread(target=churn, args=(CHURN, done), daemon=True)
    scans = 0
    try:
        churner.start()
        while not done.is_set() or scans < 3:
            out = must_return(lambda: collect([ProcessesSource()], live(), deadline=Deadline(120)))
            check_consistent(out, recording[-1])
            scans += 1
        # a whole diagnosis under churn, with every source that walks /proc
        done.clear()
        churner = threading.Thread(target=churn, args=(CHURN, done), daemon=True)
        churner.start()
        from memdiag import pipeline

        diag = must_return(lambda: pipeline.diagnose_live(registry, pipeline.load_rules(registry)))
        validate_document(diag.document)
        assert not [p for p in diag.facts.problems if p.kind == "failed"], diag.facts.problems
        check_consistent(diag.facts, recording[-1])
    finally:
        churner.join(120)
        reap(sleepers)
    assert scans >= 3


def test_the_command_survives_churn(tmp_path):
    done = threading.Event()
    churner = threading.Thread(target=churn, args=(CHURN, done), daemon=True)
    churner.start()
    codes = []
    try:
        while not done.is_set() or not codes:
            proc = subprocess.run([sys.executable, "-m", "memdiag", "run", "--format", "json", "--no-sinks"],
                                  capture_output=True, text=True, timeout=300, cwd=REPO,
                                  env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)})
            assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
            assert proc.returncode in (0, 1, 2), proc.stderr
            facts = json.loads(proc.stdout)["facts"]
            assert facts["processes.count"] >= len(facts["processes.top"]) > 0
            codes.append(proc.returncode)
    finally:
        churner.join(120)
