"""The kernel's OOM-killer report, read from a kernel log as it streams past.

``parse(lines)`` takes any iterable of log lines (dmesg with or without -T, journalctl -k in the
short or short-iso formats, /var/log/messages, kern.log or syslog, or text pasted with no prefix
at all) and returns an :class:`OomLog`: the last few reports in full plus a compact timeline of
every kill. It never holds the log: lines outside a report cost a few substring tests, and a
report keeps aggregates of its task table (the top consumers, totals), not the table.

What the kernel prints, from mm/oom_kill.c (dump_header, dump_tasks, oom_kill_process) and
mm/page_alloc.c / mm/show_mem.c (show_free_areas), 2.6 to 6.x::

    stress invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0
    CPU: 1 PID: 4242 Comm: stress Not tainted 5.15.0-91-generic #101-Ubuntu
    Mem-Info:
    active_anon:1234 inactive_anon:456789 isolated_anon:0 ...       (pages; one printk, 7 lines)
    Node 0 active_anon:4936kB ... kernel_stack:2304kB ...           (per node, 4.8+)
    Node 0 Normal free:12345kB boost:0kB min:11264kB low:14080kB high:16896kB ...
    Node 0 Normal: 12*4kB (UME) 3*8kB (M) ... 0*4096kB = 12345kB    (free blocks by order)
    Node 0 hugepages_total=0 hugepages_free=0 hugepages_surp=0 hugepages_size=2048kB
    Free swap  = 0kB / Total swap = 0kB / 2097018 pages RAM / 46012 pages reserved
    [  pid  ]   uid  tgid total_vm      rss ... oom_score_adj name  (rss in pages)
    oom-kill:constraint=CONSTRAINT_NONE,...,task=stress,pid=4242,uid=0           (4.19+)
    Out of memory: Killed process 4242 (stress) total-vm:..kB, anon-rss:..kB, file-rss:..kB, ...

Memory-cgroup OOMs print the cgroup's ``memory: usage N kB, limit N kB, failcnt N`` lines and
its stats instead of Mem-Info. Every field is optional: a truncated report or one with other
subsystems' lines in between yields what it holds, never an exception.
"""

from __future__ import annotations

from memdiag.facts import _Record
from memdiag.parsers import LazyPattern

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    import re
    from typing import Iterable

#: Full reports kept (the latest last); older ones survive only as timeline entries.
KEEP_REPORTS = 5
#: Timeline entries kept (the latest); counts and repeats cover every kill regardless.
KEEP_TIMELINE = 1000
#: Top consumers kept from a task table.
TOP_TASKS = 10
#: Distinct process names (and pids) tallied per task table; a bigger table keeps its totals.
MAX_NAMES = 10000
#: A report not closed after this many lines of nothing it recognises is given up (truncated).
STALE_LINES = 5000
#: Page size assumed unless the buddy lists show another (ppc64 and some arm64 use 64 KiB).
PAGE = 4096
#: A memcg limit this large (kB) is "no limit" (PAGE_COUNTER_MAX times the page size).
UNLIMITED_KB = 1 << 50

_CONSTRAINTS = {"CONSTRAINT_NONE": "global", "CONSTRAINT_MEMCG": "memcg", "CONSTRAINT_CPUSET": "cpuset",
                "CONSTRAINT_MEMORY_POLICY": "mempolicy"}

# Every pattern is anchored or keyed on a fixed word, so a hostile line cannot make one slow.
# Each is compiled when first used: a log without an OOM report needs only _LOOKS_PREFIXED.
_PREFIX = LazyPattern(
    r"^(?:<\d{1,3}>)?"  # the printk level of dmesg -r and /proc/kmsg
    r"(?:[a-z]{2,8}\s{0,8}:\s{0,4}[a-z]{3,6}\s{0,4}:\s)?"  # dmesg -x: "kern  :warn  : "
    r"(?:\[\s{0,12}(?P<up>\d{1,12}\.\d{1,9})\]"  # dmesg
    r"|\[(?P<ctime>[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4})\]"  # dmesg -T
    r"|(?P<iso>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?)"  # short-iso, RFC 3339
    r"(?: (?P<ihost>[^\s\[\]]{1,255}) (?P<itag>[^\s:\[]{1,64})(?:\[\d{1,10}\])?:(?= |$))?"
    r"|(?P<sys>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)(?:\.\d{1,9})?"  # syslog, journalctl short
    r" (?P<host>[^\s\[\]]{1,255}) (?P<tag>[^\s:\[]{1,64})(?:\[\d{1,10}\])?:(?= |$)"
    r")?\s{0,64}"
)
#: Does a physical line start with a log prefix? (Lines that do not, in a prefixed log, are
#: continuations: of a multi-line printk, or of a line a mail client wrapped.)
_LOOKS_PREFIXED = LazyPattern(
    r"(?:<\d{1,3}>)?(?:\[\s{0,12}\d{1,12}\.\d{1,9}\]|\[[A-Z][a-z]{2} [A-Z][a-z]{2} |\d{4}-\d\d-\d\d[T ]\d\d:"
    r"|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d |[a-z]{2,8}\s{0,8}:\s{0,4}[a-z]{3,6}\s{0,4}:\s)")
_UPTIME = LazyPattern(r"^\[\s{0,12}(\d{1,12}\.\d{1,9})\]\s?")
_CALLER = LazyPattern(r"^\[\s{0,8}[TC]\d{1,10}\]\s?")  # CONFIG_PRINTK_CALLER: "[ T6736]" after the time
_SPLIT = LazyPattern(r"#012|\\x0a")  # rsyslog / kmsg escape a multi-line printk's newlines

_INVOKED = LazyPattern(r"^(?:(?P<comm>.{0,64}?) invoked )?oom-killer: (?P<rest>gfp_mask=.*)$")  # 2.6.10: no comm
_GFP = LazyPattern(r"gfp_mask=(0x[0-9a-fA-F]{1,16})(?:\((?P<flags>[^)]{0,400})\))?")
_KV = LazyPattern(r"\b(order|oom_score_adj|oom_adj|oomkilladj)=(-?\d{1,6})")
_CPU = LazyPattern(r"^CPU: \d{1,5} (?:UID: \d{1,10} )?PID: (\d{1,10}) Comm: (\S{1,64})"
                  r"(?:.*?(?:tainted|Tainted: [A-Z ]{0,40}?) (\d{1,2}\.\d{1,3}\S{0,80}) #)?")
_PID_COMM = LazyPattern(r"^Pid: (\d{1,10}), comm: (\S{1,64})(?:.*?[Tt]ainted:?[A-Z ]{0,40}? (\d{1,2}\.\d{1,3}\S{0,80}) #)?")
_CPUSET = LazyPattern(r"^(?P<comm>\S.{0,63}?) cpuset=(?P<cpuset>\S{0,400}) mems_allowed=")
_MEMINFO_LINE = LazyPattern(r"^(?:[A-Za-z_-]{1,40}:\d{1,20}\s{0,8})+$")
_PAIR = LazyPattern(r"([A-Za-z_-]{1,40}):(\d{1,20})")
_KB_PAIR = LazyPattern(r"([a-z_()]{1,40}):(\d{1,20})kB")
_NODE = LazyPattern(r"^Node (\d{1,4}) active_anon:")
_ZONE = LazyPattern(r"^(?:Node (\d{1,4}) )?([A-Z][A-Za-z0-9]{1,15}) free:(\d{1,20})kB")
_BUDDY = LazyPattern(r"^(?:Node (\d{1,4}) )?([A-Z][A-Za-z0-9]{1,15}): (\d{1,20}\*\d{1,20}kB.*?)= ?(\d{1,20})kB\s*$")
_BUDDY_START = LazyPattern(r"^(?:Node (\d{1,4}) )?([A-Z][A-Za-z0-9]{1,15}): (?=\d{1,20}\*\d{1,20}kB)")
_BUDDY_MORE = LazyPattern(r"^(?:\([A-Z]{1,8}\) )?\d{1,20}\*\d{1,20}kB")  # a wrapped buddy list's next line
_ZONE_MORE = LazyPattern(r"^[a-z_()]{1,40}:\d{1,20}kB")  # a wrapped zone line's next line
_BLOCK = LazyPattern(r"(\d{1,20})\*(\d{1,20})kB")
_HUGE = LazyPattern(r"^(?:Node (\d{1,4}) )?hugepages_total=(\d{1,20}) hugepages_free=(\d{1,20})"
                   r" hugepages_surp=(\d{1,20}) hugepages_size=(\d{1,20})kB")
_COUNTS = LazyPattern(r"^(\d{1,20}) (pages RAM|pages of RAM|pages HighMem(?:/MovableOnly)?|pages reserved|pages cma reserved"
                     r"|reserved pages|total pagecache pages|pages in swap cache)\b")
_SWAP = LazyPattern(r"^(Free|Total) swap\s{0,8}=\s{0,8}(-?\d{1,20})kB")
_TASK_HEAD = LazyPattern(r"^\[\s{0,8}pid\s{0,8}\]\s+(.*\bname)\s*$")
_TASK_ROW = LazyPattern(r"^\[\s{0,12}(\d{1,10})\]\s+(.*)$")
_CONSTRAINT = LazyPattern(r"^oom-kill:constraint=(\w{1,40})(.*)$")
_CONSTRAINT_KV = LazyPattern(r",(oom_memcg|task_memcg|task|pid|uid|cpuset)=([^,]{0,400})")
_TASK_IN = LazyPattern(r"^Task in (\S{1,400}) killed as a result of limit of (\S{1,400})")
_LIMIT = LazyPattern(r"^(memory|memory\+swap|swap|kmem|tcpmem): usage (\d{1,20})kB, limit (\d{1,20})kB, failcnt (\d{1,20})")
_MEMCG_STATS = LazyPattern(r"^Memory cgroup stats for (\S{0,400}?):(.*)$")
_MEMCG_V1 = LazyPattern(r"\b([a-z_]{1,40}):(\d{1,20})KB")
_MEMCG_V2 = LazyPattern(r"^([a-z_]{1,40}) (\d{1,20})$")
_SLAB_ROW = LazyPattern(r"^(\S{1,64})\s+(\d{1,20})KB\s+(\d{1,20})KB$")
_CHOSE = LazyPattern(r"(?P<memcg>Memory cgroup out of memory: )?(?:Out of [Mm]emory(?: \([a-z_]{1,40}\))?: )?"
                    r"[Kk]ill process (\d{1,10}) \((.{0,64}?)\) score (-?\d{1,10})(?: or (?:sacrifice|a) child|\s*$)")
# "Killed process PID (comm) total-vm:..."; RHEL 6 and 2.6.18: "Killed process PID, UID N, (comm)";
# the name may itself hold parentheses, e.g. "((resolved))"
_KILLED = LazyPattern(
    r"(?P<memcg>Memory cgroup out of memory: )?(?:Out of [Mm]emory(?: \([a-z_]{1,40}\))?: )?Killed process "
    r"(?P<pid>\d{1,10})(?:, UID (?P<uid>\d{1,10}),)? \((?P<comm>.{0,64}?)\)(?= total-vm| score|,|\.|\s*$)(?P<rest>.*)")
_VICTIM_KB = LazyPattern(r"\b(total-vm|anon-rss|file-rss|shmem-rss|pgtables):(\d{1,20})kB")
_VICTIM_NUM = LazyPattern(r"\b(UID|oom_score_adj):(-?\d{1,10})")
_REAPED = LazyPattern(r"oom_reaper: reaped process (\d{1,10})")

_LOWMEM = ("DMA", "DMA32", "Normal")

#: The Mem-Info counters, in pages, read from the global (not per-node) lines.
MEMINFO_COUNTERS = (
    "active_anon", "inactive_anon", "isolated_anon", "active_file", "inactive_file", "isolated_file",
    "unevictable", "dirty", "writeback", "unstable", "slab_reclaimable", "slab_unreclaimable", "mapped",
    "shmem", "pagetables", "sec_pagetables", "bounce", "kernel_misc_reclaimable", "free", "free_pcp",
    "free_cma", "active", "inactive", "slab",  # 2.6.18 wording
)
_MEMINFO_NAMES = frozenset(MEMINFO_COUNTERS) | {"Active", "inactive", "Inactive"}


class Task(_Record):
    """One row of the task table. ``rss_pages`` and ``swap_pages`` are in pages."""

    __slots__ = _FIELDS = ("pid", "name", "rss_pages", "uid", "swap_pages", "pgtables_bytes", "oom_score_adj")

    def __init__(self, pid: int, name: str, rss_pages: int, uid: int | None = None, swap_pages: int | None = None,
                 pgtables_bytes: int | None = None, oom_score_adj: int | None = None) -> None:
        self.pid = pid
        self.name = name
        self.rss_pages = rss_pages
        self.uid = uid
        self.swap_pages = swap_pages
        self.pgtables_bytes = pgtables_bytes
        self.oom_score_adj = oom_score_adj


class Zone(_Record):
    """A zone's free memory against its watermarks (kB) and its free blocks by order."""

    __slots__ = _FIELDS = ("name", "node", "free_kb", "min_kb", "low_kb", "high_kb", "managed_kb", "blocks",
                           "buddy_total_kb")

    def __init__(self, name: str, node: int | None = None, free_kb: int | None = None, min_kb: int | None = None,
                 low_kb: int | None = None, high_kb: int | None = None, managed_kb: int | None = None,
                 blocks: dict[int, int] | None = None, buddy_total_kb: int | None = None) -> None:
        self.name = name
        self.node = node
        self.free_kb = free_kb
        self.min_kb = min_kb
        self.low_kb = low_kb
        self.high_kb = high_kb
        self.managed_kb = managed_kb
        self.blocks: dict[int, int] = {} if blocks is None else blocks  # block size in kB -> free blocks
        self.buddy_total_kb = buddy_total_kb


class Victim(_Record):
    __slots__ = _FIELDS = ("pid", "name", "memcg_line", "total_vm_kb", "anon_rss_kb", "file_rss_kb", "shmem_rss_kb",
                           "pgtables_kb", "uid", "oom_score_adj", "score", "reaped", "uptime")

    def __init__(self, pid: int, name: str, memcg_line: bool = False, total_vm_kb: int | None = None,
                 anon_rss_kb: int | None = None, file_rss_kb: int | None = None, shmem_rss_kb: int | None = None,
                 pgtables_kb: int | None = None, uid: int | None = None, oom_score_adj: int | None = None,
                 score: int | None = None, reaped: bool = False, uptime: float | None = None) -> None:
        self.pid = pid
        self.name = name
        self.memcg_line = memcg_line  # "Memory cgroup out of memory: Killed process ..."
        self.total_vm_kb = total_vm_kb
        self.anon_rss_kb = anon_rss_kb
        self.file_rss_kb = file_rss_kb
        self.shmem_rss_kb = shmem_rss_kb
        self.pgtables_kb = pgtables_kb
        self.uid = uid
        self.oom_score_adj = oom_score_adj
        self.score = score  # "Kill process N (x) score N or sacrifice child" (before 5.1)
        self.reaped = reaped
        self.uptime = uptime  # the kill line's kernel time stamp


class Report(_Record):
    """One OOM-killer report. Sizes the kernel prints in pages stay pages here; the ``*_bytes``
    methods convert with :attr:`page_size`."""

    __slots__ = _FIELDS = ("line", "stamp", "uptime", "wall", "wall_has_year", "trigger", "trigger_pid",
                           "trigger_oom_score_adj", "trigger_oom_adj", "kernel", "gfp_mask", "gfp_flags", "order",
                           "sysrq", "panic", "constraint", "memcg", "task_memcg", "cpuset", "limits", "memcg_stat",
                           "meminfo", "node_kb", "zone_kb", "zones", "hugepages", "swap_free_kb", "swap_total_kb",
                           "counts", "top_tasks", "task_count", "task_rss_pages", "task_swap_pages", "by_name",
                           "slab_top", "victim", "chosen_score", "chosen", "complete", "_adj")

    def __init__(self, line: int) -> None:
        self.line: int = line  # where it starts in the log (1-based)
        self.stamp: str | None = None  # the time as the log printed it
        self.uptime: float | None = None  # seconds since boot, when the kernel's stamp was printed
        self.wall: float | None = None  # epoch seconds, when the prefix has a date (syslog: year unknown)
        self.wall_has_year: bool = True
        self.trigger: str | None = None
        self.trigger_pid: int | None = None
        self.trigger_oom_score_adj: int | None = None
        self.trigger_oom_adj: int | None = None  # oom_adj / oomkilladj, before 2.6.36
        self.kernel: str | None = None
        self.gfp_mask: int | None = None
        self.gfp_flags: str | None = None
        self.order: int | None = None
        self.sysrq: bool = False
        self.panic: bool = False
        self.constraint: str | None = None  # global | memcg | cpuset | mempolicy
        self.memcg: str | None = None  # the cgroup whose limit was hit
        self.task_memcg: str | None = None  # the victim's own cgroup
        self.cpuset: str | None = None
        self.limits: dict[str, tuple[int, int | None, int]] = {}  # usage kB, limit kB, failcnt
        self.memcg_stat: dict[str, int] = {}  # bytes
        self.meminfo: dict[str, int] = {}  # pages
        self.node_kb: dict[str, int] = {}  # per-node kB fields summed over nodes
        self.zone_kb: dict[str, int] = {}  # per-zone kB fields summed (before 4.8)
        self.zones: list[Zone] = []
        self.hugepages: list[tuple[int | None, int, int, int]] = []  # node, total, free, size kB
        self.swap_free_kb: int | None = None
        self.swap_total_kb: int | None = None
        self.counts: dict[str, int] = {}  # "pages RAM" -> N, ...
        self.top_tasks: list[Task] = []  # by rss, largest first
        self.task_count: int = 0
        self.task_rss_pages: int = 0
        self.task_swap_pages: int = 0
        self.by_name: dict[str, list[int]] = {}  # name -> [processes, rss pages]
        self.slab_top: list[tuple[str, int, int]] = []  # name, used kB, total kB
        self.victim: Victim | None = None
        self.chosen_score: tuple[int, int] | None = None  # (pid, score) of "Kill process ... score N"
        self.chosen: Victim | None = None  # the task the oom-kill: line names (4.19+), if no kill line follows
        self.complete: bool = False  # the kill (or the kernel's giving up) was seen
        self._adj: dict[int, int] = {}  # pid -> oom_score_adj, for the victim

    # -- conversions -------------------------------------------------------------------------

    @property
    def page_size(self) -> int:
        """4 KiB unless the buddy lists start at another block size (the base page)."""
        sizes = [min(z.blocks) for z in self.zones if z.blocks]
        return min(sizes) * 1024 if sizes else PAGE

    def mem_bytes(self) -> dict[str, int]:
        """The Mem-Info counters in bytes, plus ``anon``, ``file`` and ``slab`` sums when known."""
        page = self.page_size
        out = {k: v * page for k, v in self.meminfo.items() if k in MEMINFO_COUNTERS}
        for total, parts in (("anon", ("active_anon", "inactive_anon")), ("file", ("active_file", "inactive_file")),
                             ("slab", ("slab_reclaimable", "slab_unreclaimable"))):
            if total not in out and all(p in out for p in parts):
                out[total] = sum(out[p] for p in parts)
        stack = self.node_kb.get("kernel_stack", self.zone_kb.get("kernel_stack"))
        if stack is not None:
            out["kernel_stack"] = stack * 1024
        return out

    @property
    def ram_bytes(self) -> int | None:
        pages = self.counts.get("pages RAM")
        return None if pages is None else pages * self.page_size

    @property
    def reserved_bytes(self) -> int | None:
        pages = self.counts.get("pages reserved")
        return None if pages is None else pages * self.page_size

    @property
    def highmem(self) -> bool:
        """A 32-bit kernel's report: it has a HighMem zone."""
        return any(z.name == "HighMem" for z in self.zones)

    def _zone_sum(self, names: tuple[str, ...], attr: str) -> int | None:
        values = [getattr(z, attr) for z in self.zones if z.name in names]
        if not values or any(v is None for v in values):
            return None
        return sum(values) * 1024

    @property
    def lowmem_free_bytes(self) -> int | None:
        """Free memory in the zones a 32-bit kernel maps permanently (DMA, Normal): where the
        kernel's own allocations (slab, page tables, stacks) must come from."""
        return self._zone_sum(_LOWMEM, "free_kb") if self.highmem else None

    @property
    def lowmem_min_bytes(self) -> int | None:
        return self._zone_sum(_LOWMEM, "min_kb") if self.highmem else None

    @property
    def lowmem_managed_bytes(self) -> int | None:
        return self._zone_sum(_LOWMEM, "managed_kb") if self.highmem else None

    @property
    def highmem_free_bytes(self) -> int | None:
        return self._zone_sum(("HighMem",), "free_kb") if self.highmem else None

    def usable_zones(self) -> list[Zone]:
        """The zones the failed allocation could take memory from.

        The zone modifiers are gfp's lowest bits in every kernel since 2.6.23 (DMA 0x01, HIGHMEM
        0x02, DMA32 0x04, MOVABLE 0x08): HighMem needs __GFP_HIGHMEM, Movable needs both, so a
        GFP_KERNEL request cannot use them however much they hold. DMA (the first 16 MiB) is kept
        back by lowmem_reserve whenever a bigger zone serves the request; only where it is the
        whole of lowmem (32-bit ARM) does it count.
        """
        mask = self.gfp_mask
        if mask is None:
            flags = self.gfp_flags or ""
            high = "HIGHUSER" in flags or "__GFP_HIGHMEM" in flags
            movable = "HIGHUSER_MOVABLE" in flags or (high and "__GFP_MOVABLE" in flags)
        else:
            high, movable = bool(mask & 0x02), bool(mask & 0x02 and mask & 0x08)
        zones = [z for z in self.zones if (z.name != "HighMem" or high) and (z.name != "Movable" or movable)]
        if any(z.name != "DMA" for z in zones):
            zones = [z for z in zones if z.name != "DMA"]
        return zones

    def _usable(self) -> list[Zone]:
        return [z for z in self.usable_zones() if z.blocks]

    @property
    def usable_free_bytes(self) -> int | None:
        values = [z.free_kb for z in self.usable_zones()]
        return sum(values) * 1024 if values and None not in values else None  # type: ignore[misc]

    @property
    def usable_min_bytes(self) -> int | None:
        values = [z.min_kb for z in self.usable_zones()]
        return sum(values) * 1024 if values and None not in values else None  # type: ignore[misc]

    @property
    def free_order_max(self) -> int | None:
        """The largest order with at least one free block, in the zones other than DMA."""
        page_kb = self.page_size // 1024
        orders = [(size // page_kb).bit_length() - 1 for z in self._usable() for size, n in z.blocks.items() if n]
        if not orders:
            return None if not self._usable() else -1  # -1: nothing free at all
        return max(orders)

    def free_bytes_from_order(self, order: int) -> int | None:
        """Bytes free in blocks of ``order`` or larger (zones other than DMA)."""
        usable = self._usable()
        if not usable:
            return None
        page_kb = self.page_size // 1024
        return sum(size * n * 1024 for z in usable for size, n in z.blocks.items() if size >= page_kb << max(order, 0))

    @property
    def buddy_free_bytes(self) -> int | None:
        usable = self._usable()
        return sum(size * n * 1024 for z in usable for size, n in z.blocks.items()) if usable else None

    @property
    def hugepages_bytes(self) -> int | None:
        return sum(t * s * 1024 for _, t, _f, s in self.hugepages) if self.hugepages else None

    @property
    def hugepages_free_bytes(self) -> int | None:
        return sum(f * s * 1024 for _, _t, f, s in self.hugepages) if self.hugepages else None

    def limit(self, kind: str) -> tuple[int, int | None, int] | None:
        """(usage bytes, limit bytes or None when unlimited, failcnt) of a memcg counter."""
        got = self.limits.get(kind)
        if got is None:
            return None
        usage, limit, failcnt = got
        return usage * 1024, (None if limit is None else limit * 1024), failcnt

    @property
    def top_name(self) -> tuple[str, int, int] | None:
        """(name, processes, rss bytes) of the program whose processes hold the most rss."""
        if not self.by_name:
            return None
        name, (n, rss) = max(self.by_name.items(), key=lambda kv: kv[1][1])
        return name, n, rss * self.page_size

    def victim_adj(self) -> int | None:
        if self.victim is None:
            return None
        if self.victim.oom_score_adj is not None:
            return self.victim.oom_score_adj
        return self._adj.get(self.victim.pid)

    @property
    def has_header(self) -> bool:
        """The report's first line (the trigger or the SysRq line) was seen."""
        return self.trigger is not None or self.sysrq


class Entry(_Record):
    """One kill in the timeline."""

    __slots__ = _FIELDS = ("stamp", "uptime", "wall", "victim", "victim_pid", "constraint", "trigger", "memcg",
                           "sysrq", "victim_uptime", "rss_kb")

    def __init__(self, stamp: str | None, uptime: float | None, wall: float | None, victim: str | None,
                 victim_pid: int | None, constraint: str | None, trigger: str | None, memcg: str | None, sysrq: bool,
                 victim_uptime: float | None = None,
                 rss_kb: tuple[int | None, int | None, int | None] = (None, None, None)) -> None:
        self.stamp = stamp
        self.uptime = uptime
        self.wall = wall
        self.victim = victim
        self.victim_pid = victim_pid
        self.constraint = constraint
        self.trigger = trigger
        self.memcg = memcg
        self.sysrq = sysrq
        self.victim_uptime = victim_uptime
        self.rss_kb = rss_kb  # the victim's anon, file, shmem


class OomLog(_Record):
    """Every report found: the latest few in full, every kill as a timeline entry."""

    __slots__ = _FIELDS = ("reports", "timeline", "count", "kills", "memcg_kills", "victim_counts", "intervals",
                           "sysrq_unanswered", "lines")

    def __init__(self, reports: list[Report] | None = None, timeline: list[Entry] | None = None, count: int = 0,
                 kills: int = 0, memcg_kills: int = 0, victim_counts: dict[str, int] | None = None,
                 intervals: list[float] | None = None, sysrq_unanswered: int = 0, lines: int = 0) -> None:
        self.reports: list[Report] = [] if reports is None else reports
        self.timeline: list[Entry] = [] if timeline is None else timeline
        self.count = count  # every report, including those no longer kept
        self.kills = kills  # reports that name a victim
        self.memcg_kills = memcg_kills
        self.victim_counts: dict[str, int] = {} if victim_counts is None else victim_counts  # name -> kills (bounded)
        # seconds between consecutive reports (bounded)
        self.intervals: list[float] = [] if intervals is None else intervals
        self.sysrq_unanswered = sysrq_unanswered  # SysRq-f presses that produced no report
        self.lines = lines

    @property
    def latest(self) -> Report | None:
        return self.reports[-1] if self.reports else None


class Parser:
    """Incremental: :meth:`feed` one log line at a time, then :meth:`finish`."""

    def __init__(self, keep: int = KEEP_REPORTS) -> None:
        self.log = OomLog()
        self._keep = keep
        self._cur: Report | None = None
        self._last: Report | None = None  # the last closed report, for a late oom_reaper line
        self._prev_time: tuple[float | None, float | None] | None = None
        self._state = ""  # "", "memcg" (v2 stat lines follow), "slab" (unreclaimable slab rows follow)
        self._columns: list[str] | None = None
        self._seen = 0  # line number of the last line the open report recognised
        self._year_shift = 0.0
        self._pending: str | None = None  # the logical line being assembled from wrapped lines
        self._pending_n = 0
        self._joinable = False  # the pending line had a prefix: unprefixed lines continue it
        self._buddy: Zone | None = None
        self._zone_more: Zone | None = None  # the zone whose watermark line may go on on the next line
        self._tail = 0  # lines after a report that may still belong to it (the panic that follows)  # the zone whose free-block list may go on on the next line

    # -- input -------------------------------------------------------------------------------

    def feed(self, raw: str) -> None:
        self.log.lines += 1
        if raw[:1] == ">":  # a log quoted in a mail reply
            raw = raw.lstrip("> \t")
        if not raw or raw.isspace():
            self._flush()
            self._joinable = False
            return
        prefixed = _LOOKS_PREFIXED.match(raw) is not None
        if self._joinable and not prefixed and not raw.startswith("-- "):
            if len(self._pending) < 8192:  # type: ignore[arg-type]
                self._pending = self._pending.rstrip() + " " + raw.strip()  # type: ignore[union-attr]
            return
        self._flush()
        self._pending, self._pending_n, self._joinable = raw, self.log.lines, prefixed

    def _flush(self) -> None:
        raw = self._pending
        if raw is None:
            return
        self._pending = None
        n = self._pending_n
        if self._cur is None and n > self._tail:
            # outside a report only its first lines matter: five substring tests per line (the
            # OOM source's gate, plugins/sources/oomkill.py, relies on these five: keep in step)
            if not ("oom" in raw or "OOM" in raw or "of memory" in raw or "Killed process" in raw
                    or "result of limit" in raw):
                return
        elif n - self._seen > STALE_LINES:
            self._close(False)
        if len(raw) > 8192:
            raw = raw[:8192]
        body, stamp = self._strip(raw)
        if body is None:
            return
        if "#012" in body or "\\x0a" in body:
            parts = _SPLIT.split(body)
            for part in parts:
                self._line(part.strip(), stamp, n)
        else:
            self._line(body, stamp, n)

    def finish(self) -> OomLog:
        self._flush()
        if self._cur is not None:
            self._close(False)
        return self.log

    # -- prefixes ----------------------------------------------------------------------------

    def _strip(self, raw: str) -> tuple[str | None, tuple | None]:
        """The kernel's message without the log's prefix, and the time the prefix gave.
        ``None`` for a syslog/journal line some other program wrote."""
        m = _PREFIX.match(raw)
        if m is None or m.end() == 0:
            return raw.strip(), None
        tag = m.group("tag") or m.group("itag")
        if tag is not None and not tag.startswith("kernel"):
            return None, None
        body = raw[m.end():]
        up = m.group("up")
        if up is None and body.startswith("["):
            u = _UPTIME.match(body)
            if u:
                up, body = u.group(1), body[u.end():]
        if body.startswith("["):
            c = _CALLER.match(body)
            if c:
                body = body[c.end():]
        return body.strip(), (up, m.group("ctime"), m.group("iso"), m.group("sys"))

    def _times(self, report: Report, stamp: tuple | None) -> None:
        if stamp is None:
            return
        up, ctime, iso, sys_ = stamp
        report.stamp = ctime or iso or sys_ or (f"[{up}]" if up else None)
        if up is not None:
            report.uptime = float(up)
        report.wall, report.wall_has_year = _wall(ctime, iso, sys_)

    # -- lines -------------------------------------------------------------------------------

    def _line(self, s: str, stamp: tuple | None, n: int) -> None:
        cur = self._cur
        if "oom-killer: gfp_mask=" in s:
            m = _INVOKED.match(s)
            if m:
                if cur is None or not _bare_sysrq(cur, n, stamp):
                    if cur is not None:
                        self._close(False)
                    cur = self._open(stamp, n)
                self._invoked(cur, m)
                self._seen = n
                return
        if "Manual OOM execution" in s:
            if cur is not None:
                self._close(False)
            cur = self._open(stamp, n)
            cur.sysrq = True
            return
        if "Killed process" in s:
            m = _KILLED.search(s)
            if m:
                if cur is None:
                    cur = self._open(stamp, n)
                self._killed(cur, m)
                if stamp is not None and stamp[0] is not None:
                    cur.victim.uptime = float(stamp[0])  # type: ignore[union-attr]
                self._close(True)
                return
        if "oom_reaper:" in s:
            m = _REAPED.search(s)
            if m and self._last is not None and self._last.victim and self._last.victim.pid == int(m.group(1)):
                self._last.victim.reaped = True
            return
        if "ill process" in s and " score " in s:  # "Out of memory: Kill process N (x) score N or sacrifice child"
            m = _CHOSE.search(s)
            if m:
                if cur is None:
                    cur = self._open(stamp, n)
                cur.chosen_score = (int(m.group(2)), int(m.group(4)))
                if cur.chosen is None:
                    cur.chosen = Victim(pid=int(m.group(2)), name=m.group(3), score=int(m.group(4)))
                if cur.constraint is None:
                    cur.constraint = "memcg" if m.group("memcg") else "global"
                self._seen = n
                return
        if cur is None:
            if self._last is not None and "Kernel panic" in s and "memory" in s:
                self._last.panic = True
                return
            if not s.startswith(("Task in ", "oom-kill:constraint=")):
                return
            cur = self._open(stamp, n)  # a report whose header was cut off
        if self._buddy is not None:
            if _BUDDY_MORE.match(s):
                self._more_blocks(s)
                self._seen = n
                return
            self._buddy = None
        if self._zone_more is not None:
            zone, self._zone_more = self._zone_more, None
            if _ZONE_MORE.match(s):
                _zone_fields(cur, zone, s)
                self._seen = n
                return
        if self._section(cur, s):
            self._seen = n

    def _open(self, stamp: tuple | None, n: int) -> Report:
        report = Report(line=n)
        self._times(report, stamp)
        self._cur, self._state, self._columns, self._seen = report, "", None, n
        return report

    def _invoked(self, r: Report, m: re.Match) -> None:
        r.trigger = (m.group("comm") or "").strip() or None
        rest = m.group("rest")
        g = _GFP.search(rest)
        if g:
            r.gfp_mask = int(g.group(1), 16)
            r.gfp_flags = g.group("flags") or None
        for key, value in _KV.findall(rest):
            if key == "order":
                r.order = int(value)
            elif key == "oom_score_adj":
                r.trigger_oom_score_adj = int(value)
            else:
                r.trigger_oom_adj = int(value)
        if r.order == -1:  # the SysRq-f caller (moom_callback) asks with order -1
            r.sysrq = True

    def _killed(self, r: Report, m: re.Match) -> None:
        v = Victim(pid=int(m.group("pid")), name=m.group("comm"), memcg_line=bool(m.group("memcg")))
        if m.group("uid"):
            v.uid = int(m.group("uid"))
        rest = m.group("rest")
        for key, kb in _VICTIM_KB.findall(rest):
            setattr(v, {"total-vm": "total_vm_kb", "anon-rss": "anon_rss_kb", "file-rss": "file_rss_kb",
                        "shmem-rss": "shmem_rss_kb", "pgtables": "pgtables_kb"}[key], int(kb))
        for key, num in _VICTIM_NUM.findall(rest):
            if key == "UID":
                v.uid = int(num)
            else:
                v.oom_score_adj = int(num)
        if r.chosen_score and r.chosen_score[0] == v.pid:
            v.score = r.chosen_score[1]
        r.victim = v
        if v.memcg_line:
            r.constraint = "memcg"
        elif r.constraint is None and "Out of memory" in m.group(0):
            r.constraint = "global"

    def _section(self, r: Report, s: str) -> bool:
        """Parse one line inside a report; True when it was one of the report's own."""
        state = self._state
        if state == "memcg":
            m = _MEMCG_V2.match(s)
            if m:
                r.memcg_stat[m.group(1)] = int(m.group(2))
                return True
            self._state = ""
        elif state == "slab":
            m = _SLAB_ROW.match(s)
            if m:
                _top_slab(r, m.group(1), int(m.group(2)), int(m.group(3)))
                return True
            if s.startswith("Name "):
                return True
            self._state = ""

        first = s[:1]
        if first == "[":
            return self._task(r, s)
        if (first.islower() or first in "AI") and ":" in s and _MEMINFO_LINE.match(s):
            # the Mem-Info counters (2.6.18: "Active:N inactive:N ... mapped-file:N")
            for key, value in _PAIR.findall(s):
                if key in _MEMINFO_NAMES:
                    r.meminfo[key.lower() if key in ("Active", "Inactive") else key] = int(value)
            return True
        if s.startswith(("Mem-Info:", "Mem-info:")):
            return True
        if s.startswith(("CPU: ", "Pid: ")):
            m = _CPU.match(s) or _PID_COMM.match(s)
            if m and r.trigger_pid is None and not r.meminfo:
                r.trigger_pid = int(m.group(1))
                r.trigger = r.trigger or m.group(2)
                r.kernel = m.group(3) or r.kernel
                return True
            return False
        if (s.startswith("Node ") or (first.isupper() and (" free:" in s or ": " in s))) and self._zone(r, s):
            return True
        if first.isdigit():
            m = _COUNTS.match(s)
            if m:
                key = m.group(2)
                key = "pages HighMem" if key.startswith("pages HighMem") else key.replace(" of ", " ")
                r.counts[key] = int(m.group(1))
                return True
            return False
        if s.startswith(("Free swap", "Total swap")):
            m = _SWAP.match(s)
            if m:
                value = int(m.group(2))
                if m.group(1) == "Free":
                    r.swap_free_kb = max(value, 0)
                else:
                    r.swap_total_kb = value
                return True
            return False
        if s.startswith("hugepages_total="):
            return self._zone(r, s)
        if s.startswith("oom-kill:"):
            m = _CONSTRAINT.match(s)
            if m:
                r.constraint = _CONSTRAINTS.get(m.group(1), m.group(1).lower())
                chosen: dict[str, str] = {}
                for key, value in _CONSTRAINT_KV.findall(m.group(2)):
                    if key == "oom_memcg":
                        r.memcg = value
                    elif key == "task_memcg":
                        r.task_memcg = value
                    elif key == "cpuset":
                        r.cpuset = value
                    else:
                        chosen[key] = value
                if _plain(chosen.get("pid", "")) and "task" in chosen:
                    r.chosen = Victim(pid=int(chosen["pid"]), name=chosen["task"],
                                      uid=int(chosen["uid"]) if _plain(chosen.get("uid", "")) else None)
                return True
            return False
        if s.startswith("Task in "):
            m = _TASK_IN.match(s)
            if m:
                r.task_memcg, r.memcg = m.group(1), m.group(2)
                r.constraint = "memcg"
                return True
            return False
        if " usage " in s and s.startswith(("memory", "swap", "kmem", "tcpmem")):
            m = _LIMIT.match(s)
            if m:
                limit = int(m.group(3))
                r.limits[m.group(1)] = (int(m.group(2)), None if limit >= UNLIMITED_KB else limit, int(m.group(4)))
                return True
            return False
        if s.startswith("Memory cgroup stats for"):
            m = _MEMCG_STATS.match(s)
            if m:
                r.memcg = r.memcg or m.group(1) or None
                r.constraint = r.constraint or "memcg"
                for key, kb in _MEMCG_V1.findall(m.group(2)):
                    r.memcg_stat[key] = int(kb) * 1024
                self._state = "memcg" if not m.group(2).strip() else ""
                return True
            return False
        if s.startswith("Unreclaimable slab info:"):
            self._state = "slab"
            return True
        if s.startswith("Tasks state"):
            return True
        if "cpuset=" in s and "mems_allowed=" in s:
            m = _CPUSET.match(s)
            if m:
                r.cpuset = m.group("cpuset")
                return True
            return False
        if "Kernel panic" in s and "Out of memory" in s or "System is deadlocked on memory" in s:
            r.panic = True
            self._close(True)
            return True
        if s.startswith("Out of memory and no killable processes"):
            self._close(True)
            return True
        return False

    def _zone(self, r: Report, s: str) -> bool:
        m = _NODE.match(s)
        if m:
            for key, kb in _KB_PAIR.findall(s):
                r.node_kb[key] = r.node_kb.get(key, 0) + int(kb)
            return True
        m = _ZONE.match(s)
        if m:
            zone = _zone_of(r, m.group(2), m.group(1))
            zone.free_kb = int(m.group(3))
            _zone_fields(r, zone, s[m.end():])
            self._zone_more = zone
            return True
        m = _BUDDY.match(s)
        if m:
            zone = _zone_of(r, m.group(2), m.group(1))
            for count, size in _BLOCK.findall(m.group(3)):
                size_kb = int(size)
                if size_kb and size_kb & (size_kb - 1) == 0:  # a power of two, as every block is
                    zone.blocks[size_kb] = zone.blocks.get(size_kb, 0) + int(count)
            zone.buddy_total_kb = int(m.group(4))
            return True
        m = _BUDDY_START.match(s)
        if m:  # a free-block list wrapped onto the next line, in a log without prefixes
            zone = _zone_of(r, m.group(2), m.group(1))
            self._buddy = zone
            self._more_blocks(s[m.end():])
            return True
        m = _HUGE.match(s)
        if m:
            node = None if m.group(1) is None else int(m.group(1))
            r.hugepages.append((node, int(m.group(2)), int(m.group(3)), int(m.group(5))))
            del r.hugepages[64:]
            return True
        return False

    def _more_blocks(self, s: str) -> None:
        zone = self._buddy
        if zone is None:
            return
        body, sep, total = s.partition("=")
        for count, size in _BLOCK.findall(body):
            size_kb = int(size)
            if size_kb and size_kb & (size_kb - 1) == 0:
                zone.blocks[size_kb] = zone.blocks.get(size_kb, 0) + int(count)
        if sep:
            digits = total.strip().removesuffix("kB")
            zone.buddy_total_kb = int(digits) if _plain(digits) else None
            self._buddy = None

    def _task(self, r: Report, s: str) -> bool:
        m = _TASK_HEAD.match(s)
        if m:
            self._columns = m.group(1).split()
            return True
        cols = self._columns
        if cols is None:
            return False
        m = _TASK_ROW.match(s)
        if m is None:
            return False
        numeric = len(cols) - 1
        parts = m.group(2).split(None, numeric)
        if len(parts) < numeric:
            return False
        values: dict[str, int] = {}
        for col, text in zip(cols, parts[:numeric]):
            try:
                values[col] = int(text)
            except ValueError:
                return False  # not a row of this table
        name = parts[numeric].strip() if len(parts) > numeric else ""
        pid = int(m.group(1))
        rss = values.get("rss")
        if rss is None:
            rss = sum(values.get(k, 0) for k in ("rss_anon", "rss_file", "rss_shmem"))
        adj = values.get("oom_score_adj")
        pgtables = values.get("pgtables_bytes")
        if pgtables is None and "nr_ptes" in values:
            pgtables = (values["nr_ptes"] + values.get("nr_pmds", 0)) * PAGE
        task = Task(pid=pid, name=name, rss_pages=max(rss, 0), uid=values.get("uid"),
                    swap_pages=values.get("swapents"), pgtables_bytes=pgtables, oom_score_adj=adj)
        r.task_count += 1
        r.task_rss_pages += task.rss_pages
        r.task_swap_pages += max(task.swap_pages or 0, 0)
        entry = r.by_name.get(name)
        if entry is not None:
            entry[0] += 1
            entry[1] += task.rss_pages
        elif len(r.by_name) < MAX_NAMES:
            r.by_name[name] = [1, task.rss_pages]
        if adj is not None and len(r._adj) < MAX_NAMES:
            r._adj[pid] = adj
        top = r.top_tasks
        if len(top) < TOP_TASKS or task.rss_pages > top[-1].rss_pages:
            top.append(task)
            top.sort(key=lambda t: -t.rss_pages)
            del top[TOP_TASKS:]
        return True

    # -- closing -----------------------------------------------------------------------------

    def _close(self, complete: bool) -> None:
        r = self._cur
        self._cur, self._state, self._columns, self._buddy, self._zone_more = None, "", None, None, None
        if r is None:
            return
        if r.victim is None and r.chosen is not None:
            r.victim = r.chosen  # the report was cut after the oom-kill: line
        if r.trigger is None and r.victim is None and not r.meminfo and not r.limits and not r.task_count:
            self.log.sysrq_unanswered += r.sysrq  # a SysRq-f that found nothing to kill, or noise
            return
        if r.constraint is None:
            # kernels before 4.19 do not say; memcg OOMs print the cgroup's counters instead of
            # Mem-Info. (cpuset and mempolicy limits cannot be told apart from a global OOM there.)
            if r.limits or r.memcg_stat or r.memcg:
                r.constraint = "memcg"
            elif (r.meminfo or r.zones) and not _numa_skewed(r):
                r.constraint = "global"  # a node at its watermark beside free nodes is a NUMA limit
        r.complete = complete
        log = self.log
        log.count += 1
        if r.victim is not None:
            log.kills += 1
            if r.constraint == "memcg":
                log.memcg_kills += 1
            name = r.victim.name
            if name in log.victim_counts or len(log.victim_counts) < MAX_NAMES:
                log.victim_counts[name] = log.victim_counts.get(name, 0) + 1
        if r.wall is not None and not r.wall_has_year and self._prev_time and self._prev_time[1] is not None:
            # syslog stamps have no year: a step back of months is the new year
            wall = r.wall + self._year_shift
            if wall < self._prev_time[1] - 180 * 86400:
                self._year_shift += 366 * 86400
            r.wall += self._year_shift
        gap = _interval(self._prev_time, (r.uptime, r.wall))
        if gap is not None and len(log.intervals) < 100000:
            log.intervals.append(gap)
        self._prev_time = (r.uptime, r.wall)
        r.by_name = dict(sorted(r.by_name.items(), key=lambda kv: -kv[1][1])[:TOP_TASKS])
        adj = r.victim_adj()
        r._adj = {r.victim.pid: adj} if r.victim is not None and adj is not None else {}
        v = r.victim
        entry = Entry(r.stamp, r.uptime, r.wall, v.name if v else None, v.pid if v else None, r.constraint,
                      r.trigger, r.memcg, r.sysrq)
        if v is not None:
            entry.victim_uptime = v.uptime if v.uptime is not None else r.uptime
            entry.rss_kb = (v.anon_rss_kb, v.file_rss_kb, v.shmem_rss_kb)
        log.timeline.append(entry)
        del log.timeline[:-KEEP_TIMELINE]
        log.reports.append(r)
        del log.reports[:-self._keep]
        self._last = r
        self._tail = self._pending_n + 3


def starts_afresh(raw: str) -> bool:
    """Whether :meth:`Parser.feed` of line ``raw`` leaves the parser in the same state whatever
    lines came before it, provided none of them began a report: a blank line ends the logical
    line being assembled, a prefixed or ``-- `` line starts a new one (any other line may continue
    the one before). The OOM source's gate restarts a parser from such a line."""
    if raw[:1] == ">":
        raw = raw.lstrip("> \t")
    return not raw or raw.isspace() or raw.startswith("-- ") or _LOOKS_PREFIXED.match(raw) is not None


def _plain(text: str) -> bool:
    """ASCII digits only, and few: str.isdigit() also admits superscripts that int() refuses."""
    return 0 < len(text) < 20 and text.isascii() and text.isdigit()


def _numa_skewed(r: Report) -> bool:
    """Some node's zone is under its min watermark while another node has plenty free: what a
    cpuset or mempolicy OOM looks like on kernels that do not print the constraint."""
    nodes = {z.node for z in r.zones if z.node is not None}
    if len(nodes) < 2:
        return False
    low = {z.node for z in r.zones if z.free_kb is not None and z.min_kb and z.free_kb < z.min_kb}
    roomy = {z.node for z in r.zones if z.free_kb is not None and z.min_kb and z.free_kb > 100 * z.min_kb
             and z.name != "DMA"}
    return bool(low) and bool(roomy - low)


def _zone_fields(r: Report, zone: Zone, s: str) -> None:
    for key, kb in _KB_PAIR.findall(s):
        value = int(kb)
        if key == "min":
            zone.min_kb = value
        elif key == "low":
            zone.low_kb = value
        elif key == "high":
            zone.high_kb = value
        elif key == "managed" or (key == "present" and zone.managed_kb is None):
            zone.managed_kb = value  # before 2.6.37 only "present" is printed
        elif key == "kernel_stack":
            r.zone_kb[key] = r.zone_kb.get(key, 0) + value


def _bare_sysrq(r: Report, n: int, stamp: tuple | None) -> bool:
    """An open report that is only a "Manual OOM execution" line just before this one."""
    if not r.sysrq or r.trigger is not None or r.victim is not None or r.meminfo or n - r.line > 3:
        return False
    up = stamp[0] if stamp else None
    return up is None or r.uptime is None or 0 <= float(up) - r.uptime < 5


def _zone_of(r: Report, name: str, node: str | None) -> Zone:
    nid = None if node is None else int(node)
    for zone in r.zones:
        if zone.name == name and zone.node == nid:
            return zone
    zone = Zone(name=name, node=nid)
    if len(r.zones) < 256:
        r.zones.append(zone)
    return zone


def _top_slab(r: Report, name: str, used_kb: int, total_kb: int) -> None:
    r.slab_top.append((name, used_kb, total_kb))
    r.slab_top.sort(key=lambda t: -t[2])
    del r.slab_top[TOP_TASKS:]


_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                        "Nov", "Dec"), 1)}


def _wall(ctime: str | None, iso: str | None, sys_: str | None) -> tuple[float | None, bool]:
    """Epoch seconds of a prefix's date (UTC assumed where no zone is given), and whether the
    year was known. syslog's "Jan  2 03:04:05" is placed in 2000, a leap year."""
    import calendar

    try:
        if iso is not None:
            from datetime import datetime, timezone

            text = iso.replace(",", ".").replace(" ", "T")
            if text.endswith("Z"):
                text = text[:-1] + "+00:00"
            if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
                text = text[:-2] + ":" + text[-2:]
            dt = datetime.fromisoformat(text)
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=timezone.utc)
            return dt.timestamp(), True
        text = ctime or sys_
        if text is None:
            return None, True
        parts = text.split()
        if ctime is not None:
            parts = parts[1:]  # the weekday
        month = _MONTHS.get(parts[0])
        if month is None:
            return None, True
        day = int(parts[1])
        h, mi, sec = (int(x) for x in parts[2].split(":"))
        year = int(parts[3]) if len(parts) > 3 else 2000
        return float(calendar.timegm((year, month, day, h, mi, sec, 0, 0, 0))), len(parts) > 3
    except (ValueError, OverflowError, IndexError):
        return None, True


def _interval(prev: tuple[float | None, float | None] | None, now: tuple[float | None, float | None]) -> float | None:
    """Seconds between two reports: by wall clock when both have one, else by uptime when it
    went forwards (it restarts at a reboot)."""
    if prev is None:
        return None
    (up0, wall0), (up1, wall1) = prev, now
    if wall0 is not None and wall1 is not None and wall1 >= wall0:
        return wall1 - wall0
    if up0 is not None and up1 is not None and up1 >= up0 and (wall0 is None or wall1 is None):
        return up1 - up0
    return None


def parse(lines: Iterable[str], keep: int = KEEP_REPORTS) -> OomLog:
    """Every OOM-killer report in ``lines`` (any iterable; a file is read as it streams)."""
    parser = Parser(keep)
    feed = parser.feed
    for line in lines:
        feed(line)
    return parser.finish()


def parse_text(text: str, keep: int = KEEP_REPORTS) -> OomLog:
    """:func:`parse` of a whole text (pasted reports, tests, the fuzzer)."""
    return parse(text.splitlines(), keep)
