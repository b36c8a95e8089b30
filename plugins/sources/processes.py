"""processes - /proc/PID/status of every process, or captured `ps` / `top` output.

Live and in captures with per-process files, each process's VmRSS and its RssAnon / RssFile /
RssShmem split (4.5+) are read from /proc/PID/status, which is cheap: counters, no page-table
walk. Without per-process files the first captured listing found is used: `ps` (RSS in KiB),
then `top -b` (RES, with per-row units). Processes that exit mid-scan or cannot be read are
normal on a live host and only counted.
"""

from __future__ import annotations

import heapq

from memdiag.bounded import Deadline, bounded_map
from memdiag.evidence import Evidence, Unreadable
from memdiag.facts import FactSet
from memdiag.hookspecs import hookimpl
from memdiag.sources import Source, spec

TOP_N = 10
#: The scan keeps this many of the largest processes for the pss source (twice its budget of 32,
#: so a few unreadable ones - pid 1 in a container - do not send it walking every process again).
RANK_N = 64
#: Key of the scan's :class:`Ranking` in ``Evidence.shared``.
RANKING = "processes.ranking"
#: A single /proc/PID read that makes no progress for this long is abandoned (it is stuck in
#: the kernel, e.g. behind a hung process's mmap lock); the scan goes on with the next PID.
STALL_SECONDS = 1.0

_KEYS = ((b"\nVmRSS:", 0), (b"\nRssAnon:", 1), (b"\nRssFile:", 2), (b"\nRssShmem:", 3), (b"\nVmSwap:", 4))


class ProcessesSource(Source):
    name = "processes"
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
        def read(pid: str) -> tuple[str, list[int | None]]:
            try:
                data = ev.read_bytes(f"proc/{pid}/status", limit=1 << 16)
            except Unreadable:
                data = None
            if not data:
                raise LookupError(pid)  # exited mid-scan or hidden: counted, not an error
            return _parse_status(data)

        # Streamed into running totals (memory stays flat at 100,000 processes). bounded_map
        # never hands over a result from a worker it abandoned on a stuck read, so nothing
        # arrives after the totals below are published.
        acc = _Totals()
        outcome = bounded_map(read, pids, stall=STALL_SECONDS, deadline=Deadline(self.timeout), on_result=acc.add)
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

    __slots__ = ("count", "holding", "totals", "has_split", "names", "_heap")

    def __init__(self) -> None:
        self.count = 0
        self.holding = 0
        self.totals = [0, 0, 0, 0, 0]
        self.has_split = False
        self.names: set[str] = set()
        self._heap: list[tuple[int, int, int, str]] = []  # (rss, -seen, pid, name): smallest on top

    def add(self, pid: str, parsed: tuple[str, list[int | None]]) -> None:
        name, values = parsed
        totals = self.totals
        for i, v in enumerate(values):
            if v is not None:
                totals[i] += v
        self.has_split = self.has_split or values[1] is not None
        self.names.add(name)
        rss = values[0] or 0  # kernel threads have no VmRSS
        entry = (rss, -self.count, int(pid), name)
        self.count += 1
        if rss:
            self.holding += 1
        if len(self._heap) < RANK_N:
            heapq.heappush(self._heap, entry)
        elif entry > self._heap[0]:
            heapq.heapreplace(self._heap, entry)

    def top(self) -> list[tuple[int, str, int]]:
        return [(pid, name, rss) for rss, _, pid, name in sorted(self._heap, reverse=True)[:TOP_N]]

    def largest(self) -> list[tuple[int, str]]:
        return [(rss, str(pid)) for rss, _, pid, _ in sorted(self._heap, reverse=True) if rss]


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


@hookimpl
def memdiag_fact_sources(register):
    register(ProcessesSource())
