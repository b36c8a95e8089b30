"""hugetlb and thp - explicit huge page pools, and transparent huge page settings.

hugetlb pools (/sys/kernel/mm/hugepages/hugepages-<size>kB/) hold their pages whether or not any
program uses them: a free huge page is still memory `free` counts as used. meminfo's HugePages_*
lines only cover the default size; sysfs has every size.

THP settings live in /sys/kernel/mm/transparent_hugepage/ (RHEL 6: redhat_transparent_hugepage/);
the counters in /proc/vmstat (thp_*) come from the vmstat source's facts.
"""

from __future__ import annotations

from memdiag.evidence import Evidence
from memdiag.facts import FactSet
from memdiag.hookspecs import hookimpl
from memdiag.sources import Source, spec

from memdiag.plugins.sources._readers import compact, number, selected, text

HUGEPAGES = "sys/kernel/mm/hugepages"
THP_DIRS = ("sys/kernel/mm/transparent_hugepage", "sys/kernel/mm/redhat_transparent_hugepage")

HUGETLB_FACTS = (
    spec("hugetlb.pools", "table",
         "One row per huge page size: size_bytes, total, free, reserved, surplus (page counts), "
         "and bytes (total x size). From /sys/kernel/mm/hugepages."),
    spec("hugetlb.total_bytes", "bytes",
         "Memory held by all hugetlb pools, every page size: outside the page cache and never "
         "reclaimed, whether or not any program maps it."),
    spec("hugetlb.free_bytes", "bytes", "Pool pages no program has faulted in yet, all sizes."),
    spec("hugetlb.unused_bytes", "bytes",
         "Pool pages neither in use nor reserved for a mapping (free - reserved, all sizes): memory "
         "set aside for huge pages that nothing is going to use right now."),
    spec("hugetlb.pages_total", "count", "Huge pages in all pools, all sizes.", unit="huge pages"),
)

THP_FACTS = (
    spec("thp.enabled", "str",
         "Transparent huge pages mode for anonymous memory: always, madvise or never "
         "(transparent_hugepage/enabled)."),
    spec("thp.defrag", "str", "When the kernel compacts memory to get a THP: always, defer, "
         "defer+madvise, madvise or never (transparent_hugepage/defrag)."),
    spec("thp.shmem_enabled", "str", "THP mode for tmpfs/shmem (transparent_hugepage/shmem_enabled)."),
    spec("thp.khugepaged_defrag", "bool", "khugepaged may compact memory to collapse pages into THPs."),
    spec("thp.fault_alloc", "count", "Page faults served with a THP since boot (vmstat thp_fault_alloc).", unit="events"),
    spec("thp.fault_fallback", "count",
         "Page faults that wanted a THP but fell back to small pages (vmstat thp_fault_fallback).", unit="events"),
    spec("thp.fault_fallback_ratio", "ratio",
         "thp_fault_fallback / (thp_fault_alloc + thp_fault_fallback): how often a THP fault found "
         "no huge page (fragmentation)."),
    spec("thp.split_pages", "count", "THPs split back into small pages since boot (vmstat thp_split_page).", unit="events"),
)


class HugetlbSource(Source):
    name = "hugetlb"
    evidence_only = True
    facts = HUGETLB_FACTS

    def collect(self, ev: Evidence, out: FactSet) -> None:
        pools = []
        for entry in sorted(ev.listdir(HUGEPAGES)):
            if not (entry.startswith("hugepages-") and entry.endswith("kB")):
                continue
            try:
                size = int(entry[len("hugepages-"):-2]) * 1024
            except ValueError:
                continue
            base = f"{HUGEPAGES}/{entry}"
            row = {"size_bytes": size}
            for key, fname in (("total", "nr_hugepages"), ("free", "free_hugepages"),
                               ("reserved", "resv_hugepages"), ("surplus", "surplus_hugepages")):
                row[key] = number(ev, out, self.name, f"{base}/{fname}")
            if row["total"] is None:
                continue
            row["bytes"] = row["total"] * size
            pools.append(row)
        if not pools:
            return
        origin = ev.origin(HUGEPAGES)
        out.set("hugetlb.pools", [compact(p) for p in pools], origin)
        out.set("hugetlb.total_bytes", sum(p["bytes"] for p in pools), origin)
        out.set("hugetlb.pages_total", sum(p["total"] for p in pools), origin)
        if all(p["free"] is not None for p in pools):
            out.set("hugetlb.free_bytes", sum(p["free"] * p["size_bytes"] for p in pools), origin)
            if all(p["reserved"] is not None for p in pools):
                unused = sum(max(0, p["free"] - p["reserved"]) * p["size_bytes"] for p in pools)
                out.set("hugetlb.unused_bytes", unused, origin)


class ThpSource(Source):
    name = "thp"
    evidence_only = True
    after = ("vmstat",)
    facts = THP_FACTS

    def collect(self, ev: Evidence, out: FactSet) -> None:
        for base in THP_DIRS:
            raw = text(ev, out, self.name, base + "/enabled", root_only=False)
            if raw is None:
                continue
            out.set("thp.enabled", selected(raw), ev.origin(base + "/enabled"))
            for fact, rel in (("thp.defrag", "defrag"), ("thp.shmem_enabled", "shmem_enabled")):
                value = text(ev, out, self.name, f"{base}/{rel}", root_only=False)
                if value is not None:
                    out.set(fact, selected(value), ev.origin(f"{base}/{rel}"))
            kd = number(ev, out, self.name, base + "/khugepaged/defrag")
            if kd is not None:
                out.set("thp.khugepaged_defrag", kd != 0, ev.origin(base + "/khugepaged/defrag"))
            break
        self._counters(out)

    def _counters(self, out: FactSet) -> None:
        alloc, fallback = out.get("vmstat.thp_fault_alloc"), out.get("vmstat.thp_fault_fallback")
        for fact, value, name in (("thp.fault_alloc", alloc, "vmstat.thp_fault_alloc"),
                                  ("thp.fault_fallback", fallback, "vmstat.thp_fault_fallback"),
                                  ("thp.split_pages", out.get("vmstat.thp_split_page"), "vmstat.thp_split_page")):
            if isinstance(value, int):
                out.set(fact, value, out.origin(name) or "vmstat")
        if isinstance(alloc, int) and isinstance(fallback, int) and alloc + fallback > 0:
            out.set("thp.fault_fallback_ratio", fallback / (alloc + fallback),
                    "derived: vmstat thp_fault_fallback / (thp_fault_alloc + thp_fault_fallback)")


@hookimpl
def memdiag_fact_sources(register):
    register(HugetlbSource())
    register(ThpSource())
