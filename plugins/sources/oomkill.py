"""oom - the OOM killer's own reports, read from whatever kernel log the evidence holds.

The kernel explains every kill in the log: what asked for memory (gfp flags, order, a cgroup
limit or SysRq-f), the memory state at that instant (Mem-Info, zones against their watermarks,
free blocks by order, hugepages, swap), every task's rss and the victim. This source finds those
reports (memdiag.parsers.oomkill) and turns the latest into ``oom.report.*`` facts and all of
them into an ``oom.timeline``; it also keeps the plain kill counts (``oom.kills`` from vmstat,
``oom.log_kills``, ``oom.victims``).

Where it looks, first holding a report wins: a captured ``dmesg`` (or ``journalctl -k``) output,
then the first readable of /var/log/kern.log, messages and syslog (a sosreport copies them), then
a sosreport's journal outputs. Logs are streamed, never read whole; /dev/kmsg is never read (it
blocks, and memdiag runs on hosts in trouble). The parser is imported, and fed, only from the first
line that may belong to a report (:class:`Gate`): most logs hold none.
"""

from __future__ import annotations

import time

from memdiag.evidence import Evidence, Unreadable
from memdiag.facts import FactSet
from memdiag.hookspecs import hookimpl
from memdiag.sources import Source, spec

from memdiag.plugins.sources._readers import note, quiet_text

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Iterable, Iterator

LOGS = ("var/log/kern.log", "var/log/messages", "var/log/syslog")
#: sos's journal outputs (sos_commands/logs/journalctl_--no-pager...), this boot's first
JOURNAL_DIRS = ("sos_commands/logs", "sos_commands/kernel")
LOG_LIMIT = 64 * 1024 * 1024
VICTIMS = 10
#: Share of the source's timeout spent reading logs before it stops and says so.
BUDGET = 0.6

_R = "oom.report."
#: The Mem-Info counters as oom.report.mem.<name>_bytes (the parser's list, plus sums; kept here
#: so the catalog needs no parser import)
MEM_COUNTERS = (
    "active_anon", "inactive_anon", "anon", "isolated_anon", "active_file", "inactive_file", "file",
    "isolated_file", "unevictable", "dirty", "writeback", "unstable", "slab_reclaimable", "slab_unreclaimable",
    "slab", "mapped", "shmem", "pagetables", "sec_pagetables", "bounce", "kernel_misc_reclaimable", "free",
    "free_pcp", "free_cma", "kernel_stack", "active", "inactive",
)
_MEM_NOTES = {
    "anon": " (active_anon + inactive_anon)", "file": " (active_file + inactive_file: page cache)",
    "slab": " (slab_reclaimable + slab_unreclaimable; 2.6.18-era reports print only this)",
    "kernel_stack": " (summed from the per-node or per-zone lines, kB there)",
    "active": " (2.6.18-era reports: anon and file together)", "inactive": " (2.6.18-era reports)",
    "free": " (every zone, DMA included)", "shmem": " (tmpfs, shared memory, SysV segments)",
}
_LATEST = " Of the latest OOM-killer report in the kernel log."

OOM_FACTS = (
    spec("oom.kills", "count", "Processes killed by the OOM killer since boot (/proc/vmstat oom_kill).",
         unit="processes", since="4.13"),
    spec("oom.log_kills", "count",
         "OOM kills found in the kernel log that was available (captured dmesg or /var/log); "
         "0 when the log was read and holds none.", unit="processes"),
    spec("oom.memcg_kills", "count",
         "Of oom.log_kills, those where a cgroup hit its own limit (CONSTRAINT_MEMCG / `Memory "
         "cgroup out of memory`), not the whole host.", unit="processes"),
    spec("oom.victims", "table",
         f"The last {VICTIMS} OOM kills in the log: pid, process, anon_rss_bytes, file_rss_bytes, "
         "shmem_rss_bytes, memcg (bool), uptime_seconds (kernel time stamp, when printed)."),
    spec("oom.last_victim", "str", "Process name of the most recent OOM kill in the log."),
    spec("oom.last_kill_age_seconds", "seconds",
         "How long before the capture the last logged OOM kill happened (dmesg time stamp vs "
         "/proc/uptime for a dmesg taken with the rest of the evidence; or a dated log line vs the "
         "capture time)."),
    spec("oom.log_source", "str", "Which log the OOM facts were read from."),
    # -- the latest report -------------------------------------------------------------------
    spec(_R + "count", "count", "OOM-killer reports in the log (a report whose kill line is missing counts too).",
         unit="reports"),
    spec(_R + "time", "str", "When the latest report was logged, as the log printed it." ),
    spec(_R + "complete", "bool", "The latest report runs through its kill (or the kernel's giving up): "
         "false for a report cut short in the log or in a paste." + _LATEST),
    spec(_R + "trigger", "str", "The process whose allocation invoked the OOM killer (`X invoked oom-killer`); "
         "a kworker for SysRq-f." + _LATEST),
    spec(_R + "trigger_pid", "number", "Pid of the triggering process (the `CPU: N PID: N Comm:` line)." + _LATEST,
         unit="pid"),
    spec(_R + "kernel", "str", "Kernel release printed in the report." + _LATEST),
    spec(_R + "gfp_mask", "str", "The failed allocation's gfp mask, as printed (hex)." + _LATEST),
    spec(_R + "gfp_flags", "str", "The gfp mask's symbolic flags, e.g. GFP_KERNEL (4.8+)." + _LATEST),
    spec(_R + "order", "number", "Order of the failed allocation: 2**order pages at once; -1 for SysRq-f." + _LATEST),
    spec(_R + "constraint", "str", "What ran out: global (the host), memcg (a cgroup's limit), cpuset or "
         "mempolicy (a NUMA restriction). Printed by 4.19+; inferred before (memcg when the cgroup's "
         "counters are printed, else global - older kernels cannot tell cpuset/mempolicy apart)." + _LATEST),
    spec(_R + "sysrq", "bool", "Triggered by hand (SysRq-f / echo f > /proc/sysrq-trigger), not by a "
         "shortage." + _LATEST),
    spec(_R + "panic", "bool", "The kernel panicked (panic_on_oom, or nothing left to kill)." + _LATEST),
    spec(_R + "memcg", "str", "The memory cgroup whose limit was hit (oom_memcg=, or `limit of /x`)." + _LATEST),
    spec(_R + "task_memcg", "str", "The victim's own memory cgroup." + _LATEST),
    spec(_R + "memcg_usage_bytes", "bytes", "The cgroup's memory usage at the kill (`memory: usage`)." + _LATEST),
    spec(_R + "memcg_limit_bytes", "bytes", "The cgroup's memory limit (`memory: ... limit`); unknown when "
         "unlimited." + _LATEST),
    spec(_R + "memcg_failcnt", "count", "Times the cgroup hit its limit (`memory: ... failcnt`)." + _LATEST,
         unit="hits"),
    spec(_R + "memsw_limit_bytes", "bytes", "The cgroup's memory+swap limit (v1 `memory+swap:`) or swap limit "
         "(v2 `swap:`); unknown when unlimited." + _LATEST),
    spec(_R + "kmem_usage_bytes", "bytes", "Kernel memory charged to the cgroup (v1 `kmem: usage`)." + _LATEST),
    spec(_R + "kmem_limit_bytes", "bytes", "The cgroup's kernel-memory limit (v1 kmem.limit_in_bytes); unknown "
         "when unlimited." + _LATEST),
    spec(_R + "kmem_failcnt", "count", "Times the cgroup hit its kmem limit." + _LATEST, unit="hits"),
    spec(_R + "memcg_stat", "map", "The cgroup's `Memory cgroup stats` printed in the report, in bytes (v1 "
         "names: rss, cache, ...; v2: anon, file, kernel, ...)." + _LATEST),
    *(spec(f"{_R}mem.{name}_bytes", "bytes", f"Mem-Info `{name}` at the kill, converted from pages to bytes"
           f"{_MEM_NOTES.get(name, '')}." + _LATEST) for name in MEM_COUNTERS),
    spec(_R + "page_size_bytes", "bytes", "Page size used for the conversions: 4 KiB unless the free-block lists "
         "start at another size." + _LATEST),
    spec(_R + "ram_bytes", "bytes", "RAM the kernel manages (`N pages RAM`)." + _LATEST),
    spec(_R + "reserved_bytes", "bytes", "RAM reserved at boot (`N pages reserved`)." + _LATEST),
    spec(_R + "zones", "table", "Each zone: node, zone, free_bytes, min_bytes, low_bytes, high_bytes, "
         "managed_bytes, below_min (free under the min watermark), free_order_max." + _LATEST),
    spec(_R + "zones_below_min", "list", "Zones whose free memory was under their min watermark (node:zone)."
         + _LATEST),
    spec(_R + "usable_free_bytes", "bytes", "Free memory in the zones the failed allocation could use (its gfp "
         "zone bits: no HighMem or Movable for GFP_KERNEL; DMA only where it is all of lowmem)." + _LATEST),
    spec(_R + "usable_min_bytes", "bytes", "The min watermarks of those zones, summed." + _LATEST),
    spec(_R + "free_order_max", "number", "Largest order with a free block in the zones the allocation could "
         "use (-1: none free at all). Below oom.report.order means fragmentation." + _LATEST),
    spec(_R + "free_high_order_bytes", "bytes", "Free memory in blocks at least as large as the failed "
         "allocation's order, in the zones it could use." + _LATEST),
    spec(_R + "highmem", "bool", "A 32-bit kernel's report (it has a HighMem zone)." + _LATEST),
    spec(_R + "lowmem_free_bytes", "bytes", "32-bit kernels: free memory in lowmem (DMA + Normal), where the "
         "kernel's own allocations must come from." + _LATEST),
    spec(_R + "lowmem_min_bytes", "bytes", "32-bit kernels: lowmem's min watermarks, summed." + _LATEST),
    spec(_R + "lowmem_managed_bytes", "bytes", "32-bit kernels: the size of lowmem (managed, or present)." + _LATEST),
    spec(_R + "highmem_free_bytes", "bytes", "32-bit kernels: free memory in HighMem." + _LATEST),
    spec(_R + "hugepages_bytes", "bytes", "Memory reserved as hugetlb pages, all sizes and nodes." + _LATEST),
    spec(_R + "hugepages_free_bytes", "bytes", "Of it, hugepages nobody used." + _LATEST),
    spec(_R + "swap_free_bytes", "bytes", "Free swap (`Free swap = `)." + _LATEST),
    spec(_R + "swap_total_bytes", "bytes", "Swap configured (`Total swap = `)." + _LATEST),
    spec(_R + "tasks", "count", "Rows in the report's task table." + _LATEST, unit="processes"),
    spec(_R + "tasks_rss_bytes", "bytes", "The task table's rss, summed." + _LATEST),
    spec(_R + "top_tasks", "table", "The largest tasks by rss: pid, name, uid, rss_bytes, share (of the "
         "table's rss), swap_bytes, pgtables_bytes, oom_score_adj." + _LATEST),
    spec(_R + "top_task", "str", "The task holding the most rss." + _LATEST),
    spec(_R + "top_task_pid", "number", "Its pid." + _LATEST, unit="pid"),
    spec(_R + "top_task_rss_bytes", "bytes", "Its rss." + _LATEST),
    spec(_R + "top_task_share", "ratio", "Its share of the task table's rss." + _LATEST),
    spec(_R + "top_task_oom_score_adj", "number", "Its oom_score_adj (-1000 = never killed)." + _LATEST),
    spec(_R + "top_program", "str", "The process name whose processes together hold the most rss." + _LATEST),
    spec(_R + "top_program_processes", "count", "How many processes of it." + _LATEST, unit="processes"),
    spec(_R + "top_program_rss_bytes", "bytes", "Their rss, summed." + _LATEST),
    spec(_R + "top_program_share", "ratio", "Their share of the task table's rss." + _LATEST),
    spec(_R + "victim", "str", "The process killed (or chosen, when the kill line was not logged)." + _LATEST),
    spec(_R + "victim_pid", "number", "Its pid." + _LATEST, unit="pid"),
    spec(_R + "victim_uid", "count", "Its uid." + _LATEST, unit="uid"),
    spec(_R + "victim_total_vm_bytes", "bytes", "Its virtual size." + _LATEST),
    spec(_R + "victim_anon_rss_bytes", "bytes", "Its anonymous rss (heap, stacks)." + _LATEST),
    spec(_R + "victim_file_rss_bytes", "bytes", "Its file-backed rss." + _LATEST),
    spec(_R + "victim_shmem_rss_bytes", "bytes", "Its shared-memory rss." + _LATEST),
    spec(_R + "victim_rss_bytes", "bytes", "Its rss: anon + file + shmem from the kill line, else the task "
         "table's." + _LATEST),
    spec(_R + "victim_oom_score_adj", "number", "Its oom_score_adj (kill line, else task table)." + _LATEST),
    spec(_R + "victim_is_top_task", "bool", "The victim is the task holding the most rss." + _LATEST),
    spec(_R + "slab_top", "table", "Largest unreclaimable slab caches (printed when slab outweighs user "
         "memory, 4.15+): name, used_bytes, total_bytes." + _LATEST),
    spec(_R + "slab_top_cache", "str", "The largest unreclaimable slab cache." + _LATEST),
    spec(_R + "slab_top_cache_bytes", "bytes", "Its total size." + _LATEST),
    # -- every report ------------------------------------------------------------------------
    spec("oom.timeline", "table", "Every OOM report in the log (the last 1,000): time (as printed), "
         "uptime_seconds, victim, victim_pid, constraint, trigger, memcg, sysrq."),
    spec("oom.timeline.count", "count", "OOM-killer reports in the log.", unit="reports"),
    spec("oom.timeline.victims", "list", "Distinct victim names, most often killed first."),
    spec("oom.timeline.most_killed", "str", "The process name killed most often."),
    spec("oom.timeline.same_victim_repeats", "count", "How many times that name was killed.", unit="kills"),
    spec("oom.timeline.min_interval_seconds", "seconds", "Shortest time between two consecutive reports "
         "(dated log lines, else kernel time stamps within one boot)."),
    spec("oom.timeline.median_interval_seconds", "seconds", "Median time between consecutive reports."),
    spec("oom.timeline.span_seconds", "seconds", "Time from the first to the last report (within one boot or "
         "from dated lines)."),
)


class OomSource(Source):
    name = "oom"
    evidence_only = True
    after = ("vmstat",)
    facts = OOM_FACTS

    def collect(self, ev: Evidence, out: FactSet) -> None:
        kills = out.get("vmstat.oom_kill")
        if isinstance(kills, int):
            out.set("oom.kills", kills, out.origin("vmstat.oom_kill") or "vmstat")
        stop = time.monotonic() + self.timeout * BUDGET
        first = None  # (log, origin, label) of the first log read, reported when none holds a report
        for label, origin, lines in self._logs(ev, out):
            log = self._parse(lines, origin, stop, out)
            if log is None:
                continue
            if log.count:
                self._report(log, origin, label, ev, out)
                return
            first = first or (log, origin, label)
        if first is not None:
            self._report(*first, ev, out)

    def _logs(self, ev: Evidence, out: FactSet) -> Iterator[tuple[str, str, Iterable[str]]]:
        """(label, origin, lines) of every log to try, in order; absent ones are skipped quietly."""
        for name in ("dmesg", "journalctl"):
            captured = ev.command_lines(name)  # streamed: a sosreport's dmesg may be 15 MB
            if captured is not None:
                lines, origin = captured
                yield "dmesg", origin, lines
                break
        tried_log = False
        for rel in LOGS:
            if tried_log:
                break
            try:
                lines = ev.lines(rel, limit=LOG_LIMIT)
            except Unreadable as exc:
                note(out, self.name, exc, root_only=False)
                continue
            if lines is not None:
                tried_log = True
                yield rel, ev.origin(rel), lines
        if ev.kind == "sosreport" and not tried_log:
            for folder in JOURNAL_DIRS:
                for entry in sorted(ev.listdir(folder), key=_journal_rank):
                    if _journal_rank(entry) < 9:
                        rel = f"{folder}/{entry}"
                        try:
                            lines = ev.lines(rel, limit=LOG_LIMIT)
                        except Unreadable as exc:
                            note(out, self.name, exc, root_only=False)
                            continue
                        if lines is not None:
                            yield rel, ev.origin(rel), lines

    def _parse(self, lines: Iterable[str], origin: str, stop: float, out: FactSet):
        parser = Gate()
        feed = parser.feed
        try:
            for i, line in enumerate(lines):
                if not i & 8191 and time.monotonic() > stop:
                    out.problem(self.name, f"stopped after {i:,} lines: the log is too long to read in time; "
                                "later OOM reports may be missing", origin, "timeout")
                    break
                feed(line)
        except Unreadable as exc:
            note(out, self.name, exc, root_only=False)
            if not parser.lines:
                return None
        finally:
            close = getattr(lines, "close", None)
            if close is not None:
                close()
        return parser.finish()

    def _report(self, log, origin: str, label: str, ev: Evidence, out: FactSet) -> None:
        out.set("oom.log_source", label, origin)
        out.set("oom.log_kills", log.kills, origin)
        out.set("oom.memcg_kills", log.memcg_kills, origin)
        out.set(_R + "count", log.count, origin)
        out.set("oom.timeline.count", log.count, origin)
        if not log.count:
            return
        table = [_victim_row(e) for e in log.timeline if e.victim is not None][-VICTIMS:]
        if table:
            out.set("oom.victims", table, origin)
            out.set("oom.last_victim", table[-1]["process"], origin)
        self._age(log, label, ev, out)
        _latest(log.latest, origin, out)
        _timeline(log, origin, out)

    def _age(self, log, label: str, ev: Evidence, out: FactSet) -> None:
        last = next((r for r in reversed(log.reports) if r.victim is not None), None)
        if last is None:
            return
        up = last.victim.uptime if last.victim.uptime is not None else last.uptime
        if label == "dmesg" and up is not None:
            uptime = quiet_text(ev, "proc/uptime")
            if uptime and uptime.split():
                try:
                    age = float(uptime.split()[0]) - up
                except ValueError:
                    age = -1.0
                if age >= 0:
                    out.set("oom.last_kill_age_seconds", age, "derived: dmesg time stamp vs /proc/uptime")
                    return
        now = ev.captured_at if ev.captured_at is not None else (time.time() if ev.live else None)
        if last.wall is not None and last.wall_has_year and now is not None and now >= last.wall:
            out.set("oom.last_kill_age_seconds", now - last.wall, "derived: dated log line vs capture time")


#: Every logical line the parser opens a report from holds one of these (Parser._flush tests
#: them on each line outside a report) ...
_MARKERS = ("oom", "OOM", "of memory", "Killed process", "result of limit")
#: ... and where a mail client wrapped one over two lines, the second begins with the words after
#: one of its blanks (the parser joins wrapped lines with a blank).
_WRAPPED = ("memory", "process", "limit", "of limit")
#: Lines (and characters) held back for a parser that may start later; past either, they are
#: dropped up to the last line a parser could start afresh from (or the parser takes over).
HOLD_LINES = 1024
HOLD_CHARS = 1 << 20


class NoReports:
    """What the parser finds in a log without an OOM report (an empty OomLog), without it."""

    count = kills = memcg_kills = sysrq_unanswered = 0
    latest = None

    def __init__(self, lines: int) -> None:
        self.lines = lines
        self.reports: list = []
        self.timeline: list = []
        self.victim_counts: dict = {}
        self.intervals: list = []


class Gate:
    """A :class:`memdiag.parsers.oomkill.Parser` that is imported, built and fed only from the
    first line that may belong to an OOM report: a log without one costs five substring tests a
    line, not the parser's prefix match, its import and its patterns.

    Exact, not a heuristic. Until a line holds a marker (or, wrapped, a marker's last words at its
    start), the parser would only count lines and assemble the logical line in hand, never looking
    at it; so it is started then, on the lines since the last one it could start afresh from
    (:func:`~memdiag.parsers.oomkill.starts_afresh`), with the lines before them counted, and is
    from there on in the state it would have reached. tests/knowledge/test_oomkill_gate.py holds
    the two to the same result on every fixture, on logs without reports and on generated ones.
    """

    __slots__ = ("parser", "held", "size", "before")

    def __init__(self) -> None:
        self.parser = None  # the real parser, once started
        self.held: list[str] = []  # lines not yet fed to it
        self.size = 0  # their characters
        self.before = 0  # lines counted before those

    @property
    def lines(self) -> int:
        """Lines read so far."""
        return self.parser.log.lines if self.parser is not None else self.before + len(self.held)

    def feed(self, line: str) -> None:
        parser = self.parser
        if parser is not None:
            parser.feed(line)
            return
        # _MARKERS spelled out (five `in` tests, no loop); a test feeds each marker through here
        if "oom" in line or "OOM" in line or "of memory" in line or "Killed process" in line \
                or "result of limit" in line or line.lstrip("> \t").lstrip().startswith(_WRAPPED):
            self.start().feed(line)
            return
        held = self.held
        held.append(line)
        self.size += len(line)
        if len(held) >= HOLD_LINES or self.size > HOLD_CHARS:
            self._trim()

    def _trim(self) -> None:
        from memdiag.parsers.oomkill import starts_afresh

        held = self.held
        for i in range(len(held) - 1, 0, -1):
            if starts_afresh(held[i]):
                self.before += i
                del held[:i]
                self.size = sum(map(len, held))
                return
        self.start()  # nowhere to start afresh from (a long run of wrapped lines): parse them

    def start(self):
        """The parser, started now if it was not, in the state the lines so far left it in."""
        if self.parser is None:
            from memdiag.parsers.oomkill import Parser

            parser = self.parser = Parser()
            parser.log.lines = self.before
            for line in self.held:
                parser.feed(line)
            self.held = []
        return self.parser

    def finish(self):
        return self.parser.finish() if self.parser is not None else NoReports(self.lines)


def _journal_rank(entry: str) -> int:
    """sos's journal outputs: this boot first, then the whole journal; 9 for anything else."""
    if not entry.startswith("journalctl") or "--no-pager" not in entry:
        return 9
    if any(bad in entry for bad in ("verbose", "export", "disk-usage", "list-boots", "json")):
        return 9
    if "-k" in entry.split("_") or "--dmesg" in entry:
        return 0
    if entry.endswith("--boot") or "--this-boot" in entry:
        return 1
    return 2 if "--boot_-1" not in entry else 3


def _victim_row(e) -> dict:
    """A timeline entry as a row of ``oom.victims`` (its layout predates the timeline)."""
    row: dict = {"pid": e.victim_pid, "process": e.victim, "memcg": e.constraint == "memcg"}
    for key, kb in zip(("anon_rss_bytes", "file_rss_bytes", "shmem_rss_bytes"), e.rss_kb):
        if kb is not None:
            row[key] = kb * 1024
    if e.victim_uptime is not None:
        row["uptime_seconds"] = e.victim_uptime
    return row


def _latest(r, origin: str, out: FactSet) -> None:
    """The latest report as ``oom.report.*`` facts."""
    def put(name: str, value) -> None:
        out.set(_R + name, value, origin)

    page = r.page_size
    put("time", r.stamp)
    put("complete", r.complete)
    put("trigger", r.trigger)
    put("trigger_pid", r.trigger_pid)
    put("kernel", r.kernel)
    put("gfp_mask", None if r.gfp_mask is None else f"{r.gfp_mask:#x}")
    put("gfp_flags", r.gfp_flags)
    put("order", r.order)
    put("constraint", r.constraint)
    put("sysrq", r.sysrq)
    put("panic", r.panic)
    put("memcg", r.memcg)
    put("task_memcg", r.task_memcg)
    for kind, prefix in (("memory", "memcg"), ("kmem", "kmem")):
        got = r.limit(kind)
        if got is not None:
            put(f"{prefix}_usage_bytes", got[0])
            put(f"{prefix}_limit_bytes", got[1])
            put(f"{prefix}_failcnt", got[2])
    swap = r.limit("memory+swap") or r.limit("swap")
    if swap is not None:
        put("memsw_limit_bytes", swap[1])
    if r.memcg_stat:
        put("memcg_stat", dict(r.memcg_stat))
    for key, value in r.mem_bytes().items():
        put(f"mem.{key}_bytes", value)
    if r.meminfo or r.zones:
        put("page_size_bytes", page)
    put("ram_bytes", r.ram_bytes)
    put("reserved_bytes", r.reserved_bytes)
    if r.zones:
        zones = []
        for z in r.zones:
            row = {"node": z.node, "zone": z.name, "free_bytes": _kb(z.free_kb), "min_bytes": _kb(z.min_kb),
                   "low_bytes": _kb(z.low_kb), "high_bytes": _kb(z.high_kb), "managed_bytes": _kb(z.managed_kb)}
            if z.free_kb is not None and z.min_kb is not None:
                row["below_min"] = z.free_kb < z.min_kb
            if z.blocks:
                page_kb = page // 1024
                free = [(size // page_kb).bit_length() - 1 for size, n in z.blocks.items() if n and size >= page_kb]
                row["free_order_max"] = max(free) if free else -1
            zones.append({k: v for k, v in row.items() if v is not None})
        put("zones", zones)
        put("zones_below_min", [f"{z.get('node', 0)}:{z['zone']}" for z in zones if z.get("below_min")])
        put("usable_free_bytes", r.usable_free_bytes)
        put("usable_min_bytes", r.usable_min_bytes)
        put("free_order_max", r.free_order_max)
        if r.order is not None and r.order >= 0:
            put("free_high_order_bytes", r.free_bytes_from_order(r.order))
        put("highmem", r.highmem)
        put("lowmem_free_bytes", r.lowmem_free_bytes)
        put("lowmem_min_bytes", r.lowmem_min_bytes)
        put("lowmem_managed_bytes", r.lowmem_managed_bytes)
        put("highmem_free_bytes", r.highmem_free_bytes)
    put("hugepages_bytes", r.hugepages_bytes)
    put("hugepages_free_bytes", r.hugepages_free_bytes)
    put("swap_free_bytes", _kb(r.swap_free_kb))
    put("swap_total_bytes", _kb(r.swap_total_kb))
    top = None
    if r.task_count:
        total = r.task_rss_pages * page
        put("tasks", r.task_count)
        put("tasks_rss_bytes", total)
        rows = []
        for t in r.top_tasks:
            row = {"pid": t.pid, "name": t.name, "uid": t.uid, "rss_bytes": t.rss_pages * page,
                   "share": round(t.rss_pages / r.task_rss_pages, 4) if r.task_rss_pages else None,
                   "swap_bytes": None if t.swap_pages is None else t.swap_pages * page,
                   "pgtables_bytes": t.pgtables_bytes, "oom_score_adj": t.oom_score_adj}
            rows.append({k: v for k, v in row.items() if v is not None})
        put("top_tasks", rows)
        top = r.top_tasks[0] if r.top_tasks else None
        if top is not None:
            put("top_task", top.name)
            put("top_task_pid", top.pid)
            put("top_task_rss_bytes", top.rss_pages * page)
            if r.task_rss_pages:
                put("top_task_share", top.rss_pages / r.task_rss_pages)
            put("top_task_oom_score_adj", top.oom_score_adj)
        program = r.top_name
        if program is not None:
            put("top_program", program[0])
            put("top_program_processes", program[1])
            put("top_program_rss_bytes", program[2])
            if total:
                put("top_program_share", program[2] / total)
    v = r.victim
    if v is not None:
        put("victim", v.name)
        put("victim_pid", v.pid)
        put("victim_uid", v.uid)
        put("victim_total_vm_bytes", _kb(v.total_vm_kb))
        put("victim_anon_rss_bytes", _kb(v.anon_rss_kb))
        put("victim_file_rss_bytes", _kb(v.file_rss_kb))
        put("victim_shmem_rss_bytes", _kb(v.shmem_rss_kb))
        parts = [x for x in (v.anon_rss_kb, v.file_rss_kb, v.shmem_rss_kb) if x is not None]
        if parts:
            put("victim_rss_bytes", sum(parts) * 1024)
        else:
            row = next((t for t in r.top_tasks if t.pid == v.pid), None)
            if row is not None:
                put("victim_rss_bytes", row.rss_pages * page)
        put("victim_oom_score_adj", r.victim_adj())
        if top is not None:
            put("victim_is_top_task", top.pid == v.pid)
    if r.slab_top:
        put("slab_top", [{"name": n, "used_bytes": u * 1024, "total_bytes": t * 1024} for n, u, t in r.slab_top])
        put("slab_top_cache", r.slab_top[0][0])
        put("slab_top_cache_bytes", r.slab_top[0][2] * 1024)


def _timeline(log, origin: str, out: FactSet) -> None:
    rows = []
    for e in log.timeline:
        row = {"time": e.stamp, "uptime_seconds": e.uptime, "victim": e.victim, "victim_pid": e.victim_pid,
               "constraint": e.constraint, "trigger": e.trigger, "memcg": e.memcg, "sysrq": e.sysrq}
        rows.append({k: v for k, v in row.items() if v is not None})
    out.set("oom.timeline", rows, origin)
    if log.victim_counts:
        ranked = sorted(log.victim_counts.items(), key=lambda kv: (-kv[1], kv[0]))
        out.set("oom.timeline.victims", [name for name, _ in ranked], origin)
        out.set("oom.timeline.most_killed", ranked[0][0], origin)
        out.set("oom.timeline.same_victim_repeats", ranked[0][1], origin)
    if log.intervals:
        import statistics  # only when there are several reports

        out.set("oom.timeline.min_interval_seconds", min(log.intervals), origin)
        out.set("oom.timeline.median_interval_seconds", statistics.median(log.intervals), origin)
        out.set("oom.timeline.span_seconds", sum(log.intervals), origin)


def _kb(value: int | None) -> int | None:
    return None if value is None else value * 1024


@hookimpl
def memdiag_fact_sources(register):
    register(OomSource())
