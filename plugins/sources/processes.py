"""processes - /proc/PID/status of every process, or captured `ps` / `top` output.

Live and in captures with per-process files, each process's VmRSS and its RssAnon / RssFile /
RssShmem split (4.5+) are read from /proc/PID/status, which is cheap: counters, no page-table
walk. Without per-process files the first captured listing found is used: `ps` (RSS in KiB),
then `top -b` (RES, with per-row units). Processes that exit mid-scan or cannot be read are
normal on a live host and only counted.

On the running host the scan reads /proc itself (one open, read and close per process, and a
parser for the kernel's own layout): the kernel producing the files is the scan's real work, and
Evidence's general read (snapshot checks, a second read to find the end) with the general parser
(each key searched for in the whole file) had nearly doubled it. Each live read is watched in a
reading thread and abandoned if it hangs; a snapshot's files are read in the source's own thread.
"""

from __future__ import annotations

import os

from memdiag.bounded import Deadline, Outcome, bounded_map
from memdiag.evidence import Evidence, Unreadable
from memdiag.facts import FactSet
from memdiag.hookspecs import hookimpl
from memdiag.sources import Source, spec

from memdiag.plugins.sources._readers import Largest

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Callable

TOP_N = 10
#: The scan keeps this many of the largest processes for the pss source (twice its budget of 32,
#: so a few unreadable ones - pid 1 in a container - do not send it walking every process again).
RANK_N = 64
#: Key of the scan's :class:`Ranking` in ``Evidence.shared``.
RANKING = "processes.ranking"
#: A single /proc/PID read that makes no progress for this long is abandoned (it is stuck in
#: the kernel, e.g. behind a hung process's mmap lock); the scan goes on with the next PID.
STALL_SECONDS = 1.0
#: Results handed from the scan's reading thread to the running totals this many at a time (one
#: lock round each); every read is still watched on its own (memdiag.bounded).
BATCH = 64
#: A status larger than this is not one the kernel wrote (~1.5 KiB); it counts as unreadable.
STATUS_LIMIT = 1 << 16

_KEYS = ((b"\nVmRSS:", 0), (b"\nRssAnon:", 1), (b"\nRssFile:", 2), (b"\nRssShmem:", 3), (b"\nVmSwap:", 4))


class ProcessesSource(Source):
    name = "processes"
    evidence_only = True
    timeout = 30.0
    facts = (
        spec("processes.count", "count", "Processes seen (readable ones; kernel threads included).", "processes"),
        spec("processes.rss_total", "bytes", "Sum of every process's resident set (VmRSS, top's RES, ps's RSS). "
             "Shared pages count once per process, so this over-states what processes really use; "
             "page cache nobody maps, kernel memory and balloons appear in no process."),
        spec("processes.rss_anon_total", "bytes", "Sum of RssAnon: private anonymous memory (heap, stacks) of all processes (4.5+)."),
        spec("processes.rss_file_total", "bytes", "Sum of RssFile: mapped file pages, counted in every process mapping them (4.5+)."),
        spec("processes.rss_shmem_total", "bytes", "Sum of RssShmem: mapped shared memory (tmpfs, SysV, shared anonymous) (4.5+)."),
        spec("processes.swap_total", "bytes", "Sum of VmSwap: anonymous memory of processes that sits in swap."),
        spec("processes.top", "table", f"The {TOP_N} processes with the largest resident set: pid, comm, rss (bytes)."),
        spec("processes.names", "list", "Distinct command names of running processes (for signals such as vmtoolsd)."),
        spec("processes.unreadable", "count", "Processes whose status could not be read (exited mid-scan, hidden, or stuck).", "processes"),
        spec("processes.method", "str", "Where process figures came from: proc (per-process status files), ps, or top."),
    )

    def collect(self, ev: Evidence, out: FactSet) -> None:
        pids = [d for d in ev.listdir("proc") if d.isdigit()]
        # Live, /proc/PID/status always exists; asking about pids[0] could miss if it just exited.
        if pids and (ev.live or ev.exists(f"proc/{pids[0]}/status")):
            self._scan_proc(ev, out, pids)
            return
        from memdiag.parsers.ps import parse_ps
        from memdiag.parsers.top import parse_top

        ps = ev.command("ps")
        if ps is not None:
            rows = [(p.pid, p.comm, p.rss_bytes) for p in parse_ps(ps.text, ps.origin)]
            self._publish(out, rows, ps.origin, "ps")
            return
        top = ev.command("top")
        if top is not None:
            rows = [(p.pid, p.comm, p.res_bytes) for p in parse_top(top.text, top.origin).processes]
            self._publish(out, rows, top.origin, "top")

    def _scan_proc(self, ev: Evidence, out: FactSet, pids: list[str]) -> None:
        read = _live_reader(ev.root) if _plain_live(ev) else _evidence_reader(ev)
        # Streamed into running totals (memory stays flat at 100,000 processes). Live, each read
        # is watched (a status read can hang behind a process's mmap lock); bounded_map never
        # hands over a result from a worker it abandoned, so nothing arrives after the totals
        # below are published. A snapshot is read in this thread (see _scan_here).
        acc = _Totals()
        deadline = Deadline(self.timeout)
        if ev.live:
            outcome = bounded_map(read, pids, stall=STALL_SECONDS, deadline=deadline, on_result=acc.add, batch=BATCH)
        else:
            outcome = _scan_here(read, pids, acc.add, deadline)
        proc_root = ev.origin("proc")
        origin = proc_root + "/*/status"
        self._publish_totals(out, acc.count, acc.totals[0], acc.top(), acc.names, origin, "proc")
        out.set("processes.swap_total", acc.totals[4], origin)
        if acc.has_split:
            out.set("processes.rss_anon_total", acc.totals[1], origin)
            out.set("processes.rss_file_total", acc.totals[2], origin)
            out.set("processes.rss_shmem_total", acc.totals[3], origin)
        ev.shared[RANKING] = Ranking(acc.largest(), acc.holding, acc.totals[0],
                                     not (outcome.timed_out or outcome.not_started))
        out.set("processes.unreadable", len(outcome.errors) + len(outcome.timed_out) + len(outcome.not_started), origin)
        for pid in outcome.timed_out[:5]:
            out.problem(self.name, f"timed out reading process {pid}; skipped", f"{proc_root}/{pid}/status", "timeout")
        if outcome.not_started:
            out.problem(self.name, f"deadline passed; {len(outcome.not_started)} processes not read", origin, "timeout")

    @classmethod
    def _publish(cls, out: FactSet, rows: list[tuple[int, str, int]], origin: str, method: str) -> None:
        top = sorted(rows, key=lambda r: r[2], reverse=True)[:TOP_N]
        cls._publish_totals(out, len(rows), sum(r[2] for r in rows), top, {r[1] for r in rows}, origin, method)

    @staticmethod
    def _publish_totals(out: FactSet, count: int, rss_total: int, top: list[tuple[int, str, int]],
                        names: set[str], origin: str, method: str) -> None:
        out.set("processes.count", count, origin)
        out.set("processes.rss_total", rss_total, origin)
        out.set("processes.top", [{"pid": p, "comm": c, "rss": r} for p, c, r in top], origin)
        out.set("processes.names", sorted(names), origin)
        out.set("processes.method", method, origin)


class Ranking:
    """What the scan tells the pss source: the largest processes, how many hold memory and their
    summed RSS, and whether every process was read."""

    __slots__ = ("largest", "holding", "rss_total", "complete")

    def __init__(self, largest: list[tuple[int, str]], holding: int, rss_total: int, complete: bool) -> None:
        self.largest = largest  # (rss bytes, pid), largest first, at most RANK_N, none without RSS
        self.holding = holding  # processes with resident memory (kernel threads have none)
        self.rss_total = rss_total
        self.complete = complete


class _Totals:
    """Running sums over a process scan, and the RANK_N largest by RSS (ties: first seen first)."""

    __slots__ = ("count", "holding", "totals", "has_split", "names", "_ranked")

    def __init__(self) -> None:
        self.count = 0
        self.holding = 0
        self.totals = [0, 0, 0, 0, 0]
        self.has_split = False
        self.names: set[str] = set()
        self._ranked = Largest(RANK_N)  # of (rss, -seen, pid, name)

    def add(self, pid: str, parsed: tuple[str, list[int | None]]) -> None:
        name, (rss, anon, file, shmem, swap) = parsed
        totals = self.totals
        if rss is not None:
            totals[0] += rss
        if anon is not None:
            totals[1] += anon
            self.has_split = True
        if file is not None:
            totals[2] += file
        if shmem is not None:
            totals[3] += shmem
        if swap is not None:
            totals[4] += swap
        self.names.add(name)
        seen = self.count
        self.count = seen + 1
        if rss:
            self.holding += 1
        else:
            rss = 0  # kernel threads have no VmRSS
        floor = self._ranked.floor
        if floor is None or rss > floor[0]:  # an equal one seen later ranks below (ties: first seen first)
            self._ranked.add((rss, -seen, int(pid), name))

    def top(self) -> list[tuple[int, str, int]]:
        return [(pid, name, rss) for rss, _, pid, name in self._ranked.largest()[:TOP_N]]

    def largest(self) -> list[tuple[int, str]]:
        return [(rss, str(pid)) for rss, _, pid, _ in self._ranked.largest() if rss]


def _parse_status(data: bytes) -> tuple[str, list[int | None]]:
    """Name and [VmRSS, RssAnon, RssFile, RssShmem, VmSwap] in bytes from /proc/PID/status.

    Finds the five lines by key instead of splitting all ~55: this runs once per process, and on
    a host with 10,000 of them parsing used to cost as much as reading. A key read twice (only
    in a hand-made capture) takes its last well-formed value, as a line-by-line reading would.
    """
    data = b"\n" + data
    values: list[int | None] = [None] * 5
    for key, idx in _KEYS:
        at = data.rfind(key)
        while at >= 0:
            start = at + len(key)
            end = data.find(b"\n", start)
            parts = data[start:end if end >= 0 else None].split(None, 1)
            if parts and parts[0].isdigit() and len(parts[0]) <= 24:  # int() refuses 4300+ digits
                values[idx] = int(parts[0]) * 1024
                break
            at = data.rfind(key, 0, at)
    at = data.rfind(b"\nName:")
    if at < 0:
        return "", values
    end = data.find(b"\n", at + 6)
    return data[at + 6:end if end >= 0 else None].strip().decode("utf-8", "replace"), values


def _scan_here(read: Callable[[str], tuple[str, list[int | None]]], pids: list[str],
               add: Callable[[str, tuple[str, list[int | None]]], None], deadline: Deadline) -> Outcome:
    """The scan of a snapshot, in the calling thread: what :func:`bounded_map` would give, without
    a reading thread of its own. A snapshot hands out regular files only (a FIFO or device is
    refused before it is read), so no single read waits on a process the way a live one can; a
    file system that hangs is the source's own stall guard's to abandon, which names the file.
    Failures are counted as bounded_map counts them; the deadline is looked at every BATCH."""
    outcome = Outcome()
    errors = outcome.errors
    for i, pid in enumerate(pids):
        if not i % BATCH and deadline.expired():
            outcome.not_started.extend(pids[i:])
            break
        try:
            add(pid, read(pid))
        except Exception as exc:  # exited mid-scan, unreadable, or a status the totals refused
            errors.append((pid, exc))
    return outcome


def _plain_live(ev: Evidence) -> bool:
    """``ev`` is the running host read as it is. A subclass may record or stand in for reads
    (``memdiag collect`` keeps every file it reads) and an overlay replaces files: both must see
    each read go through :meth:`Evidence.read_bytes`."""
    return ev.live and type(ev) is Evidence and not ev.stands_in


def _evidence_reader(ev: Evidence) -> Callable[[str], tuple[str, list[int | None]]]:
    """pid -> parsed status, read through ``ev`` (a snapshot, or a live host someone watches)."""
    def read(pid: str) -> tuple[str, list[int | None]]:
        try:
            data = ev.read_bytes(f"proc/{pid}/status", limit=STATUS_LIMIT)
        except Unreadable:
            data = None
        if not data:
            raise LookupError(pid)  # exited mid-scan or hidden: counted, not an error
        return _parse_status(data)

    return read


def _live_reader(root: str) -> Callable[[str], tuple[str, list[int | None]]]:
    """pid -> parsed status, straight from the running kernel's /proc under ``root``.

    One open, one read, one close: the kernel produces a status whole at the first read, so a
    read larger than it can be is all of it - no read to find the end, no size or file-type
    checks, which only a snapshot needs. Opened without blocking (a FIFO in a hand-made root
    must not hang the scan; a read stuck in the kernel is bounded_map's to abandon). Any failure
    - the process exited, permission, a read error - is raised and counted as unreadable.
    """
    prefix = os.path.join(root, "proc", "")
    # Looked up per scan, not at import: tests stand in for os.open to make reads hang or fail.
    open_, read_, close = os.open, os.read, os.close
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
    parse = _parse_kernel

    def read(pid: str) -> tuple[str, list[int | None]]:
        fd = open_(prefix + pid + "/status", flags)
        try:
            data = read_(fd, STATUS_LIMIT + 1)
        finally:
            close(fd)
        if not data or len(data) > STATUS_LIMIT:
            raise LookupError(pid)  # empty, or larger than any status: counted as unreadable
        return parse(data)

    return read


def _parse_kernel(data: bytes) -> tuple[str, list[int | None]]:
    """:func:`_parse_status` for a status as the kernel writes it, in a third of the time.

    The kernel writes Name on the first line, each key once, and VmRSS, RssAnon, RssFile,
    RssShmem (4.5+) on consecutive lines with VmSwap after them; a process without memory of its
    own (kernel thread, zombie) has none of these lines. So the five values are found by reading
    forward from VmRSS instead of searching the whole file for each key. A file laid out any
    other way (a hand-made live root) goes to :func:`_parse_status`.
    """
    nl = data.find(b"\n")
    if nl < 0 or not data.startswith(b"Name:"):
        return _parse_status(data)
    name = data[5:nl].strip().decode("utf-8", "replace")
    at = data.find(b"\nVmRSS:", nl)
    if at < 0:
        if b"\nRss" in data or b"\nVmSwap:" in data:  # not the kernel's: they come with VmRSS
            return _parse_status(data)
        return name, [None] * 5
    # "NNN kB" of VmRSS, then RssAnon:, RssFile:, RssShmem: lines of the same shape
    t = data[at + 7:at + 200].split(None, 11)
    if len(t) < 11 or t[1] != b"kB" or not _size(t[0]):
        return _parse_status(data)
    if t[2] == b"RssAnon:":
        if not (t[4] == t[7] == t[10] == b"kB" and t[5] == b"RssFile:" and t[8] == b"RssShmem:"
                and _size(t[3]) and _size(t[6]) and _size(t[9])):
            return _parse_status(data)
        values: list[int | None] = [int(t[0]) << 10, int(t[3]) << 10, int(t[6]) << 10, int(t[9]) << 10, None]
    elif b"\nRss" in data:  # before 4.5 there is no split; a split elsewhere is not the kernel's
        return _parse_status(data)
    else:
        values = [int(t[0]) << 10, None, None, None, None]
    at = data.find(b"\nVmSwap:", at)
    if at >= 0:
        end = data.find(b"\n", at + 8)
        v = data[at + 8:end if end >= 0 else None].split(None, 1)
        if not (v and _size(v[0])):
            return _parse_status(data)
        values[4] = int(v[0]) << 10
    elif b"\nVmSwap:" in data:  # absent before 2.6.34; above VmRSS is not the kernel's layout
        return _parse_status(data)
    return name, values


def _size(digits: bytes) -> bool:
    """A status size field: ASCII digits, not so many that they are junk (as in _parse_status)."""
    return digits.isdigit() and len(digits) <= 24


@hookimpl
def memdiag_fact_sources(register):
    register(ProcessesSource())
