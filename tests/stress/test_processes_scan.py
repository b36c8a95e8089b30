"""The process scan's fast paths give exactly what the plain ones would: the status parser that
finds five keys instead of splitting every line, the live one that reads the kernel's layout
forward, and the streamed totals that replace the list of every row. And the live path's reads
stay bounded: one that hangs is abandoned, the rest are counted."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memdiag.bounded import Deadline
from memdiag.evidence import Evidence
from memdiag.facts import FactSet
from memdiag.plugins.sources import processes
from memdiag.plugins.sources.processes import TOP_N, ProcessesSource, _parse_kernel, _parse_status, _Totals
from memdiag.sources import build_catalog, collect
from testkit import host_statuses

from .helpers import BlockingOpens, must_return, status_text, write_tree

FIELDS = {b"VmRSS": 0, b"RssAnon": 1, b"RssFile": 2, b"RssShmem": 3, b"VmSwap": 4}


def reference_parse(data: bytes) -> tuple[str, list[int | None]]:
    """Line by line, as the scan used to: the last well-formed line of each key wins. (The old
    loop also took a bare ``Name`` line without its colon as an empty name; that is no name line.)"""
    values: list[int | None] = [None] * 5
    name = ""
    for line in data.split(b"\n"):
        key, sep, rest = line.partition(b":")
        if key == b"Name" and sep:
            name = rest.strip().decode("utf-8", "replace")
            continue
        idx = FIELDS.get(key)
        if idx is not None:
            parts = rest.split()
            if parts and parts[0].isdigit() and len(parts[0]) <= 24:  # longer is not a size
                values[idx] = int(parts[0]) * 1024
    return name, values


keys = st.sampled_from([b"Name", b"VmRSS", b"RssAnon", b"RssFile", b"RssShmem", b"VmSwap", b"VmHWM",
                        b"Threads", b" VmRSS", b"vmrss", b"VmRSSx", b""])
values = st.one_of(st.integers(0, 10**12).map(lambda n: f"\t  {n} kB".encode()),
                   st.sampled_from([b"\t" + b"9" * 5000 + b" kB", b"\t" + b"1" * 24, b"\t" + b"1" * 25]),
                   st.binary(max_size=12), st.sampled_from([b"", b"\t", b" -5 kB", b"\t12", b"\t\xff\xfe"]))
lines = st.tuples(keys, st.sampled_from([b":", b"", b"::"]), values).map(lambda t: b"".join(t))
documents = st.lists(lines, max_size=12).flatmap(
    lambda ls: st.sampled_from([b"\n", b"\r\n"]).map(lambda nl: nl.join(ls)))


@settings(max_examples=400, deadline=None)
@given(documents)
def test_the_fast_status_parser_agrees_with_reading_every_line(data):
    assert _parse_status(data) == reference_parse(data)


def test_it_reads_a_real_status_file():
    with open("/proc/self/status", "rb") as f:
        data = f.read()
    assert _parse_status(data) == reference_parse(data)
    assert _parse_status(data)[1][0] > 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "kworker"]),
                          st.one_of(st.none(), st.integers(0, 10**9))), max_size=40))
def test_streamed_totals_equal_the_sums_over_all_rows(procs):
    acc = _Totals()
    rows = []
    for pid, (name, rss) in enumerate(procs, 1):
        vals = [rss, None if rss is None else rss // 2, None, None, 7]
        acc.add(str(pid), (name, vals))
        rows.append((pid, name, rss or 0))
    assert acc.count == len(rows)
    assert acc.totals[0] == sum(r[2] for r in rows)
    assert acc.totals[4] == 7 * len(rows)
    assert acc.names == {r[1] for r in rows}
    # the same top list (ties in scan order) as sorting every row
    assert acc.top() == sorted(rows, key=lambda r: r[2], reverse=True)[:TOP_N]



@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from([0, 1, 2, 5, 5, 9])), max_size=30), st.integers(1, 8))
def test_the_ranking_for_pss_is_the_largest_first_ties_in_scan_order(sizes, keep):
    old = processes.RANK_N
    processes.RANK_N = keep
    try:
        acc = _Totals()
        for pid, rss in enumerate(sizes, 1):
            acc.add(str(pid), ("p", [rss, None, None, None, None]))
    finally:
        processes.RANK_N = old
    ranked = sorted(((rss, pid) for pid, rss in enumerate(sizes, 1) if rss), key=lambda r: (-r[0], r[1]))
    assert acc.largest() == [(rss, str(pid)) for rss, pid in ranked[:keep]]
    assert acc.holding == len(ranked)

def test_a_captured_proc_tree_is_summed_row_by_row(tmp_path):
    procs = {pid: (f"p{pid % 7}", (pid * 37) % 5000) for pid in range(2, 300)}
    write_tree(tmp_path, {f"proc/{pid}/status": status_text(pid, n, rss) for pid, (n, rss) in procs.items()})
    (tmp_path / "proc/999").mkdir()  # a process that exited between listing and reading
    out = collect([ProcessesSource()], Evidence(str(tmp_path), kind="capture"), deadline=Deadline(60))
    assert out.get("processes.count") == len(procs)
    assert out.get("processes.rss_total") == sum(rss for _, rss in procs.values()) * 1024
    assert out.get("processes.unreadable") == 1
    top = out.get("processes.top")
    assert len(top) == TOP_N and [r["rss"] for r in top] == sorted((r["rss"] for r in top), reverse=True)
    assert out.get("processes.names") == sorted({n for n, _ in procs.values()})
    assert isinstance(out, FactSet) and build_catalog([ProcessesSource()]).get("processes.count")


# -- the live parser: the kernel's layout, read forward -----------------------------------------

def _repeats(data: bytes) -> bool:
    lines = (b"\n" + data).split(b"\n")
    return any(sum(line.startswith(k + b":") for line in lines) > 1 for k in (b"Name", *FIELDS))


@settings(max_examples=600, deadline=None)
@given(documents)
def test_the_kernel_layout_parser_agrees_wherever_no_key_repeats(data):
    """Anything but a repeated key (which the kernel never writes) reads as the general parser
    reads it: a file not laid out as the kernel's is handed to that parser."""
    if not _repeats(data):
        assert _parse_kernel(data) == reference_parse(data)


def kernel_status(name: bytes, rss: int | None, split: bool, swap: int | None, width: int) -> bytes:
    """A status as some kernel writes it: no memory lines for a kernel thread or zombie (rss None),
    the RssAnon/RssFile/RssShmem split from 4.5, VmSwap from 2.6.34, values right-aligned."""
    kb = (lambda n: f"{n:>{width}} kB".encode())
    head = b"Name:\t" + name + b"\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t7\nPid:\t7\nPPid:\t1\n"
    tail = b"Threads:\t1\nSigQ:\t0/62920\nCpus_allowed_list:\t0-1\nvoluntary_ctxt_switches:\t5\n"
    if rss is None:
        return head + b"Kthread:\t1\n" + tail
    mem = b"VmPeak:\t" + kb(rss * 2) + b"\nVmHWM:\t" + kb(rss) + b"\nVmRSS:\t" + kb(rss) + b"\n"
    if split:
        mem += (b"RssAnon:\t" + kb(rss // 2) + b"\nRssFile:\t" + kb(rss - rss // 2) + b"\nRssShmem:\t"
                + kb(rss // 7) + b"\n")
    mem += b"VmData:\t" + kb(rss) + b"\nVmStk:\t" + kb(132) + b"\nVmExe:\t" + kb(20) + b"\nVmPTE:\t" + kb(44) + b"\n"
    if swap is not None:
        mem += b"VmSwap:\t" + kb(swap) + b"\nHugetlbPages:\t" + kb(0) + b"\n"
    return head + mem + tail


names = st.binary(max_size=16).map(lambda b: b.replace(b"\n", b"\\n"))  # the kernel escapes newlines
sizes = st.one_of(st.none(), st.integers(0, 2**44))


@settings(max_examples=400, deadline=None)
@given(names, sizes, st.booleans(), sizes, st.sampled_from([0, 8]))
def test_the_kernel_layout_parser_reads_every_kernels_status(name, rss, split, swap, width):
    data = kernel_status(name, rss, split, swap, width)
    assert _parse_kernel(data) == _parse_status(data) == reference_parse(data)


def test_the_kernel_layout_parser_reads_this_hosts_processes():
    read = 0
    for _pid, data in host_statuses():
        assert _parse_kernel(data) == _parse_status(data), data
        read += 1
    assert read >= 2


# -- the live path's reads stay bounded ---------------------------------------------------------

@pytest.fixture
def hanging(monkeypatch):
    made = []

    def make(paths):
        made.append(BlockingOpens(monkeypatch, paths))
        return made[-1]

    yield make
    for b in made:
        b.release()


def test_a_hung_read_on_the_live_path_is_abandoned_and_the_scan_goes_on(tmp_path, hanging, monkeypatch):
    """Process 150's status never opens (a read stuck in the kernel), in the middle of a batch:
    the processes before it in that batch are kept, it is named and counted, the scan goes on
    with a fresh reader, and its read coming back later changes nothing."""
    monkeypatch.setattr(processes, "STALL_SECONDS", 0.3)
    procs = {pid: (f"p{pid % 5}", pid * 3) for pid in range(100, 300)}
    root = write_tree(tmp_path, {f"proc/{pid}/status": status_text(pid, n, rss) for pid, (n, rss) in procs.items()
                                 if pid != 150})
    (root / "proc/150").mkdir()
    blocking = hanging([root / "proc/150/status"])
    scanned = []
    monkeypatch.setattr(processes, "_Totals", type("Seen", (_Totals,), {
        "add": lambda self, pid, parsed: (scanned.append(pid), _Totals.add(self, pid, parsed))}))
    ev = Evidence(str(root), kind="live")
    assert processes._plain_live(ev)
    out = must_return(lambda: collect([ProcessesSource()], ev, deadline=Deadline(60)))
    seen = list(scanned)
    blocking.release()
    threading.Event().wait(0.3)  # the abandoned reader gets every chance to (wrongly) deliver
    del procs[150]
    assert out.get("processes.count") == len(procs) and out.get("processes.unreadable") == 1
    assert out.get("processes.rss_total") == sum(rss for _, rss in procs.values()) * 1024
    assert [(p.message, p.path, p.kind) for p in out.problems] == [
        ("timed out reading process 150; skipped", f"{root}/proc/150/status", "timeout")]
    assert sorted(seen, key=int) == [str(p) for p in sorted(procs)] and scanned == seen
    assert ev.shared[processes.RANKING].complete is False


# -- a snapshot's scan, in the source's own thread -----------------------------------------------

def _outcome_of(outcome):
    return ([(i, type(e).__name__, str(e)) for i, e in outcome.errors], outcome.timed_out, outcome.not_started)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["ok", "gone", "bad", "refused"]), max_size=200))
def test_a_snapshot_scan_counts_what_bounded_map_counts(kinds):
    """Each item read, failed or refused by the totals: _scan_here's outcome and the totals it
    fed are bounded_map's, item for item."""
    from memdiag.bounded import bounded_map

    pids = [str(i) for i in range(1, len(kinds) + 1)]

    def read(pid):
        kind = kinds[int(pid) - 1]
        if kind == "gone":
            raise LookupError(pid)
        if kind == "bad":
            raise ValueError(f"bad {pid}")
        return (kind, [int(pid), None, None, None, None])

    class Refusing(_Totals):
        __slots__ = ()

        def add(self, pid, parsed):
            if parsed[0] == "refused":
                raise RuntimeError(f"refused {pid}")
            _Totals.add(self, pid, parsed)

    here, there = Refusing(), Refusing()
    got = processes._scan_here(read, pids, here.add, Deadline(60))
    want = bounded_map(read, pids, stall=5, deadline=Deadline(60), on_result=there.add, batch=processes.BATCH)
    assert _outcome_of(got) == _outcome_of(want)
    assert (here.count, here.totals, here.largest(), here.names) == (there.count, there.totals, there.largest(), there.names)


def test_a_snapshot_scan_past_its_deadline_reads_nothing_more():
    read = []
    outcome = processes._scan_here(lambda pid: read.append(pid), ["1", "2"], lambda *_: None, Deadline(0))
    assert read == [] and outcome.not_started == ["1", "2"] and not outcome.errors


def test_a_capture_is_scanned_without_a_reading_thread(tmp_path, monkeypatch):
    """A snapshot hands out regular files only: the scan reads them in the source's thread."""
    write_tree(tmp_path, {f"proc/{pid}/status": status_text(pid, "p", pid) for pid in range(2, 80)})

    def no_thread(*_a, **_k):
        raise AssertionError("a capture's scan started a reading thread")

    monkeypatch.setattr(processes, "bounded_map", no_thread)
    out = collect([ProcessesSource()], Evidence(str(tmp_path), kind="capture"), deadline=Deadline(60))
    assert out.get("processes.count") == 78 and out.get("processes.unreadable") == 0
    assert not out.problems


def test_a_captured_status_that_hangs_is_named_by_the_sources_own_guard(tmp_path, hanging, monkeypatch):
    """A capture on a file system that hangs (a read that never returns, as a stuck network
    mount's would): the source is abandoned at its timeout with the file named, as any source
    stuck on a read is, and the diagnosis goes on."""
    write_tree(tmp_path, {f"proc/{pid}/status": status_text(pid, "p", pid) for pid in range(2, 9)})
    (tmp_path / "proc/5/status").unlink()
    hanging([tmp_path / "proc/5/status"])
    monkeypatch.setattr(ProcessesSource, "timeout", 0.5)
    out = must_return(lambda: collect([ProcessesSource()], Evidence(str(tmp_path), kind="capture"),
                                      deadline=Deadline(60)))
    assert [(p.source, p.message, p.kind) for p in out.problems] == [
        ("processes", f"timed out reading {tmp_path}/proc/5/status; its facts are partial or missing", "timeout")]
    assert "processes.count" not in out
