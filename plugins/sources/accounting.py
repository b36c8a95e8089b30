"""accounting - where memory went, by the meminfo accounting identity (computed once).

    used         = MemTotal - MemFree
    kernel       = Slab + (KReclaimable - SReclaimable) + KernelStack + ShadowCallStack + PageTables
                   + SecPageTables + Percpu + vmalloc + HardwareCorrupted + Bounce + WritebackTmp + Zswap
    user         = Active + Inactive + Unevictable + hugetlb
    unaccounted  = used - kernel - user

Pages taken straight from the page allocator (balloon drivers, some GPU and network drivers)
are counted by no meminfo field and so land in *unaccounted*.

The vmalloc term depends on the kernel, and is decided from the meminfo lines themselves (distros
backport the changes, so the release string alone misleads):

* VmallocChunk non-zero -> before 4.4: VmallocUsed adds up vmalloc *address space* (ioremap
  included), not RAM; it is left out.
* VmallocChunk and VmallocUsed both 0 -> 4.4 to 5.2: vmalloc'd RAM is not shown at all.
* VmallocChunk 0, VmallocUsed non-zero -> 5.3+: real pages; KernelStack is subtracted because
  vmap'd stacks are counted in both.
"""

from __future__ import annotations


from memdiag.evidence import Evidence
from memdiag.facts import UNKNOWN, FactSet, _Record
from memdiag.hookspecs import hookimpl
from memdiag.sources import Source, spec
from memdiag.units import format_bytes

_KERNEL_TERMS = ("Slab", "KernelStack", "ShadowCallStack", "PageTables", "SecPageTables", "Percpu",
                 "HardwareCorrupted", "Bounce", "WritebackTmp", "Zswap")
_LRU = ("Active", "Inactive", "Unevictable")


class Accounting(_Record):
    """Where used memory went by the accounting identity (memory-accounting.md section 3)."""

    __slots__ = _FIELDS = ("total", "used", "kernel", "user", "user_crosscheck", "vmalloc_policy",
                           "vmalloc_used", "formula", "notes")

    def __init__(self, total: int, used: int, kernel: int, user: int, user_crosscheck: int | None,
                 vmalloc_policy: str, vmalloc_used: int | None, formula: str,
                 notes: list[str] | None = None) -> None:
        self.total = total
        self.used = used
        self.kernel = kernel
        self.user = user
        self.user_crosscheck = user_crosscheck
        self.vmalloc_policy = vmalloc_policy
        self.vmalloc_used = vmalloc_used
        self.formula = formula
        self.notes: list[str] = [] if notes is None else notes

    @property
    def attributed(self) -> int:
        return self.kernel + self.user

    @property
    def unaccounted(self) -> int:
        return self.used - self.attributed

    @property
    def unaccounted_with_vmalloc(self) -> int | None:
        """The figure the classic formula gives when VmallocUsed is counted as RAM."""
        if self.vmalloc_policy == "address-space" and self.vmalloc_used is not None:
            return self.unaccounted - self.vmalloc_used
        return None


def vmalloc_policy(m: dict[str, int]) -> str:
    chunk, used = m.get("VmallocChunk"), m.get("VmallocUsed")
    if chunk is None or used is None:
        return "unknown"
    if chunk > 0:
        return "address-space"
    return "zero" if used == 0 else "pages"


def hugetlb_bytes(m: dict[str, int]) -> int:
    if "Hugetlb" in m:  # 4.16+: every huge page size
        return m["Hugetlb"]
    return m.get("HugePages_Total", 0) * m.get("Hugepagesize", 0)


def account(m: dict[str, int]) -> Accounting | None:
    """Apply the identity to meminfo values (bytes; HugePages_* counts). None without the basics."""
    if "MemTotal" not in m or "MemFree" not in m:
        return None
    notes: list[str] = []
    kernel = sum(m.get(k, 0) for k in _KERNEL_TERMS)
    kernel_terms = [k for k in _KERNEL_TERMS if k in m]
    if "KReclaimable" in m and "SReclaimable" in m:
        kernel += m["KReclaimable"] - m["SReclaimable"]
        kernel_terms.append("(KReclaimable - SReclaimable)")

    policy = vmalloc_policy(m)
    vmalloc = m.get("VmallocUsed")
    if policy == "address-space":
        notes.append(
            f"VmallocUsed ({format_bytes(vmalloc)}) is left out: VmallocChunk is non-zero, so this kernel "
            "predates 4.4 and VmallocUsed adds up vmalloc address space (ioremap included), not RAM."
        )
    elif policy == "zero":
        notes.append("VmallocUsed is 0 as on kernels 4.4 to 5.2, which do not show vmalloc'd RAM; "
                     "any vmalloc use falls into unaccounted.")
    elif policy == "pages":
        stacks = m.get("KernelStack", 0)
        kernel += max(0, (vmalloc or 0) - stacks)
        kernel_terms.append("(VmallocUsed - KernelStack)")
        notes.append("VmallocUsed counts real pages (5.3+); KernelStack is subtracted from it because "
                     "vmap'd kernel stacks are counted in both.")
    else:
        notes.append("VmallocUsed/VmallocChunk missing: vmalloc memory is not counted.")

    hugetlb = hugetlb_bytes(m)
    if all(k in m for k in _LRU):
        user = sum(m[k] for k in _LRU) + hugetlb
        user_formula = "Active + Inactive + Unevictable + hugetlb"
    else:
        user = sum(m.get(k, 0) for k in ("Buffers", "Cached", "SwapCached", "AnonPages")) + hugetlb
        user_formula = "Buffers + Cached + SwapCached + AnonPages + hugetlb"
        notes.append("LRU lines (Active/Inactive/Unevictable) missing; user memory from Buffers + Cached + "
                     "SwapCached + AnonPages instead.")
    crosscheck = None
    if all(k in m for k in ("Cached", "AnonPages", "Buffers")):
        crosscheck = m["Cached"] + m["AnonPages"] + m["Buffers"] + hugetlb
    if m.get("Balloon"):
        notes.append(f"The kernel counts {format_bytes(m['Balloon'])} as taken by a balloon driver (Balloon line, 6.15+); "
                     "it is part of unaccounted and shown as its own segment.")
    formula = (f"unaccounted = (MemTotal - MemFree) - kernel - user; kernel = {' + '.join(kernel_terms)}; "
               f"user = {user_formula}")
    return Accounting(m["MemTotal"], m["MemTotal"] - m["MemFree"], kernel, user, crosscheck, policy,
                      vmalloc, formula, notes)


#: Memory meminfo does not count but another source measures, carved out of "unaccounted" in
#: this order (each capped at what is left): fact name -> (segment key, label).
HOLDERS = {
    "balloon.held_bytes": ("balloon", "balloon"),
    "zfs.arc_size_bytes": ("zfs", "ZFS ARC"),
    "zram.mem_used_bytes": ("zram", "zram"),
    "gpu.system_bytes": ("gpu", "GPU (system RAM)"),
}


def explain_unaccounted(unaccounted: int, held: dict[str, int]) -> list[tuple[str, str, int]]:
    """(key, label, bytes) of each known holder, capped so together they never exceed the gap."""
    left, parts = max(0, unaccounted), []
    for fact, (key, label) in HOLDERS.items():
        size = min(max(0, held.get(fact, 0)), left)
        if size:
            parts.append((key, label, size))
            left -= size
    return parts


def segments(m: dict[str, int], acc: Accounting, held: dict[str, int]) -> list[dict]:
    """MemTotal split into parts that add up to it exactly, for the memory picture.

    Unaccounted is the identity's figure, less what known holders (balloon, ZFS ARC, zram, GPU)
    are measured to hold; the small difference between the LRU total and Buffers + Cached +
    AnonPages (pages in flight between lists) is left in page cache.
    """
    shmem = m.get("Shmem", 0)
    known = explain_unaccounted(acc.unaccounted, held)
    parts = [
        ("anon", "processes (anonymous)", m.get("AnonPages", 0)),
        ("cache", "page cache", 0),  # filled in below
        ("shmem", "shmem / tmpfs", shmem),
        ("slab", "slab", m.get("Slab", 0)),
        ("kernel", "other kernel", acc.kernel - m.get("Slab", 0)),
        ("hugetlb", "hugepages", hugetlb_bytes(m)),
        ("free", "free", m["MemFree"]),
        *known,
        ("unaccounted", "unaccounted", max(0, acc.unaccounted) - sum(k[2] for k in known)),
    ]
    rows = [{"key": k, "label": label, "bytes": max(0, int(v))} for k, label, v in parts]
    rows[1]["bytes"] = max(0, acc.total - sum(r["bytes"] for r in rows))
    return rows


class AccountingSource(Source):
    name = "accounting"
    evidence_only = True
    after = ("meminfo", "vmstat", "processes", "commands", "platform", "balloon", "zfs", "zram", "gpu")
    facts = (
        spec("accounting.total_bytes", "bytes", "MemTotal: RAM the kernel manages (installed RAM minus firmware, "
             "kernel image and crashkernel reservations)."),
        spec("accounting.used_bytes", "bytes", "MemTotal - MemFree: everything not free, page cache included."),
        spec("accounting.kernel_bytes", "bytes", "Kernel memory meminfo attributes: slab, stacks, page tables, "
             "per-cpu, vmalloc (where it is RAM) and smaller counters. See accounting.formula."),
        spec("accounting.user_bytes", "bytes", "User and cache memory meminfo attributes: the LRU lists "
             "(anonymous, page cache, shmem) plus hugetlb pages."),
        spec("accounting.user_crosscheck_bytes", "bytes", "Cached + AnonPages + Buffers + hugetlb: a second way to "
             "add up user memory; close to accounting.user_bytes on a consistent meminfo."),
        spec("accounting.attributed_bytes", "bytes", "kernel + user: used memory some meminfo field explains."),
        spec("accounting.unaccounted_bytes", "bytes", "Used memory no meminfo field explains: pages taken straight "
             "from the page allocator by balloon drivers, some GPU or network drivers, ZFS ARC, zram."),
        spec("accounting.unaccounted_ratio", "ratio", "accounting.unaccounted_bytes as a share of MemTotal."),
        spec("accounting.unaccounted_with_vmalloc_bytes", "bytes", "On kernels before 4.4 only: the unaccounted "
             "figure when VmallocUsed is (wrongly) counted as RAM, as the classic formula does."),
        spec("accounting.vmalloc_policy", "str", "How VmallocUsed was treated: address-space (before 4.4, left out), "
             "zero (4.4-5.2), pages (5.3+, counted less KernelStack), unknown."),
        spec("accounting.formula", "str", "The formula used, with the terms this meminfo had."),
        spec("accounting.notes", "list", "Caveats about this accounting (kernel-version choices, missing lines)."),
        spec("accounting.segments", "table", "MemTotal split into parts that add up to it: key, label, bytes."),
        spec("accounting.explained_bytes", "bytes", "The part of unaccounted memory that known holders are measured "
             "to hold: balloon drivers (balloon.held_bytes), the ZFS ARC, zram and GPU buffers in system RAM; "
             "capped at unaccounted."),
        spec("accounting.unexplained_bytes", "bytes", "Unaccounted memory that no source explains either: "
             "accounting.unaccounted_bytes - accounting.explained_bytes."),
        spec("accounting.unexplained_ratio", "ratio", "accounting.unexplained_bytes as a share of MemTotal."),
        spec("accounting.rss_used_ratio", "ratio", "Summed process RSS as a share of used memory (MemTotal - MemFree)."),
        spec("inputs.drift", "list", "Differences between inputs that show they were captured at different moments "
             "(e.g. top's header against meminfo)."),
        spec("inputs.drift_bytes", "bytes", "The largest difference in free memory or free swap between two inputs."),
    )

    def collect(self, ev: Evidence, out: FactSet) -> None:
        # Only plain field names are used, so the "meminfo." prefix is all there is to strip.
        m = {f.name[8:]: f.value for f in out.facts.values() if f.name.startswith("meminfo.")}
        acc = account(m)
        self._drift(out, m)
        if acc is None:
            return
        origin = out.origin("meminfo.MemTotal") or ""
        put = lambda name, value: out.set(name, value, origin)  # noqa: E731
        put("accounting.total_bytes", acc.total)
        put("accounting.used_bytes", acc.used)
        put("accounting.kernel_bytes", acc.kernel)
        put("accounting.user_bytes", acc.user)
        put("accounting.user_crosscheck_bytes", acc.user_crosscheck)
        put("accounting.attributed_bytes", acc.attributed)
        put("accounting.unaccounted_bytes", acc.unaccounted)
        put("accounting.unaccounted_ratio", acc.unaccounted / acc.total if acc.total > 0 else UNKNOWN)
        put("accounting.unaccounted_with_vmalloc_bytes", acc.unaccounted_with_vmalloc)
        put("accounting.vmalloc_policy", acc.vmalloc_policy)
        put("accounting.formula", acc.formula)
        put("accounting.notes", acc.notes)
        held = {f: out.get(f) for f in HOLDERS if isinstance(out.get(f), int)}
        explained = sum(size for _, _, size in explain_unaccounted(acc.unaccounted, held))
        put("accounting.explained_bytes", explained)
        put("accounting.unexplained_bytes", max(0, acc.unaccounted) - explained)
        put("accounting.unexplained_ratio",
            (max(0, acc.unaccounted) - explained) / acc.total if acc.total > 0 else UNKNOWN)
        put("accounting.segments", segments(m, acc, held))
        rss = out.get("processes.rss_total")
        if rss is not UNKNOWN and acc.used > 0:
            out.set("accounting.rss_used_ratio", rss / acc.used, out.origin("processes.rss_total") or origin)

    @staticmethod
    def _drift(out: FactSet, m: dict[str, int]) -> None:
        """Compare command headers with meminfo; a difference means different moments."""
        total = m.get("MemTotal")
        if total is None:
            return
        tolerance = max(16 << 20, total // 200)
        drift, largest, origins = [], 0, []
        pairs = (("top.mem_free", "MemFree", "free memory"), ("top.swap_free", "SwapFree", "free swap"),
                 ("free.free", "MemFree", "free memory"), ("free.swap_free", "SwapFree", "free swap"))
        for fact, field_name, what in pairs:
            other = out.get(fact)
            if other is UNKNOWN or field_name not in m:
                continue
            diff = abs(other - m[field_name])
            if diff > tolerance:
                tool = fact.split(".")[0]
                drift.append(f"{tool} shows {format_bytes(other)} {what}, meminfo {format_bytes(m[field_name])}")
                largest = max(largest, diff)
                origins.append(out.origin(fact) or "")
        if drift:
            origin = ", ".join(dict.fromkeys([*origins, out.origin("meminfo.MemTotal") or ""]))
            out.set("inputs.drift", drift, origin)
            out.set("inputs.drift_bytes", largest, origin)
        elif any(out.get(f) is not UNKNOWN for f, _, _ in pairs):
            out.set("inputs.drift", [], out.origin("meminfo.MemTotal") or "")


@hookimpl
def memdiag_fact_sources(register):
    register(AccountingSource())
