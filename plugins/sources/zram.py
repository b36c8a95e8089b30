"""zram and swap - compressed RAM disks, and the swap devices in use.

A zram device stores pages compressed in RAM (zsmalloc); that RAM is in no meminfo field, so a
busy zram swap looks like unexplained used memory. ``mm_stat`` (Documentation/admin-guide/
blockdev/zram.rst) has the figures; kernels before 4.1 had one file per figure instead.
"""

from __future__ import annotations

from memdiag.evidence import Evidence
from memdiag.facts import FactSet
from memdiag.hookspecs import hookimpl
from memdiag.sources import Source, spec

from memdiag.plugins.sources._readers import compact, quiet_text, text, to_int, unescape

BLOCK = "sys/block"
SWAPS = "proc/swaps"
MM_STAT = ("orig_data_size", "compr_data_size", "mem_used_total", "mem_limit", "mem_used_max",
           "same_pages", "pages_compacted", "huge_pages")

ZRAM_FACTS = (
    spec("zram.devices", "table",
         "Each initialised zram device: name, disksize_bytes, orig_data_bytes (data stored, "
         "uncompressed), compr_data_bytes, mem_used_bytes (RAM it takes, allocator overhead "
         "included), mem_limit_bytes (0 = none), same_pages (count)."),
    spec("zram.mem_used_bytes", "bytes",
         "RAM all zram devices take now (mm_stat mem_used_total). In no meminfo field; part of "
         "vmstat nr_zspages together with zswap on zsmalloc."),
    spec("zram.orig_data_bytes", "bytes", "Data stored in all zram devices, uncompressed."),
    spec("zram.compression_ratio", "number",
         "orig_data_bytes / mem_used_bytes over all devices: how many bytes of data each byte of "
         "RAM holds."),
)

SWAP_FACTS = (
    spec("swap.devices", "table",
         "Each active swap area from /proc/swaps: name, type (partition/file), size_bytes, "
         "used_bytes, priority, zram (bool)."),
    spec("swap.total_bytes", "bytes", "Size of all active swap areas (/proc/swaps)."),
    spec("swap.used_bytes", "bytes", "Swap in use over all areas (/proc/swaps)."),
    spec("swap.used_ratio", "ratio", "swap.used_bytes / swap.total_bytes."),
    spec("swap.device_count", "count", "Active swap areas listed in /proc/swaps.", unit="swap areas"),
    spec("swap.zram_total_bytes", "bytes", "Of swap.total_bytes, swap on zram devices (compressed RAM, not disk)."),
)


class ZramSource(Source):
    name = "zram"
    evidence_only = True
    facts = ZRAM_FACTS

    def collect(self, ev: Evidence, out: FactSet) -> None:
        rows = []
        for dev in sorted(ev.listdir(BLOCK)):
            if not dev.startswith("zram"):
                continue
            base = f"{BLOCK}/{dev}"
            disksize = to_int(quiet_text(ev, base + "/disksize") or "x")
            if not disksize:
                continue  # not initialised: holds nothing
            stats = self._mm_stat(ev, out, base)
            if stats is None:
                continue
            rows.append(compact({
                "name": dev,
                "disksize_bytes": disksize,
                "orig_data_bytes": stats.get("orig_data_size"),
                "compr_data_bytes": stats.get("compr_data_size"),
                "mem_used_bytes": stats.get("mem_used_total"),
                "mem_limit_bytes": stats.get("mem_limit"),
                "same_pages": stats.get("same_pages"),
            }))
        if not rows:
            return
        origin = ev.origin(BLOCK + "/zram*")
        used = sum(r.get("mem_used_bytes", 0) for r in rows)
        orig = sum(r.get("orig_data_bytes", 0) for r in rows)
        out.set("zram.devices", rows, origin)
        out.set("zram.mem_used_bytes", used, origin)
        out.set("zram.orig_data_bytes", orig, origin)
        if used:
            out.set("zram.compression_ratio", orig / used, origin)

    def _mm_stat(self, ev: Evidence, out: FactSet, base: str) -> dict | None:
        raw = text(ev, out, self.name, base + "/mm_stat", root_only=False)
        if raw is not None:
            values = [to_int(v) for v in raw.split()]
            if len(values) < 3 or any(v is None for v in values[:3]):
                out.problem(self.name, "mm_stat has fewer than 3 numbers", ev.origin(base + "/mm_stat"), "malformed")
                return None
            return dict(zip(MM_STAT, values))
        stats = {}  # pre-4.1 kernels: one file per figure
        for name in MM_STAT[:3]:
            value = to_int(quiet_text(ev, f"{base}/{name}") or "x")
            if value is not None:
                stats[name] = value
        return stats or None


class SwapSource(Source):
    name = "swap"
    evidence_only = True
    facts = SWAP_FACTS

    def collect(self, ev: Evidence, out: FactSet) -> None:
        raw = text(ev, out, self.name, SWAPS, root_only=False)
        if raw is None:
            return
        rows = parse_swaps(raw)
        origin = ev.origin(SWAPS)
        total = sum(r["size_bytes"] for r in rows)
        used = sum(r["used_bytes"] for r in rows)
        out.set("swap.devices", rows, origin)
        out.set("swap.total_bytes", total, origin)
        out.set("swap.used_bytes", used, origin)
        out.set("swap.device_count", len(rows), origin)
        out.set("swap.zram_total_bytes", sum(r["size_bytes"] for r in rows if r["zram"]), origin)
        if total:
            out.set("swap.used_ratio", used / total, origin)


def parse_swaps(raw: str) -> list[dict]:
    """/proc/swaps rows (Filename Type Size Used Priority; sizes in KiB)."""
    rows = []
    for line in raw.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 5:
            continue
        size, used, prio = (to_int(p) for p in parts[-3:])
        if size is None or used is None:
            continue
        name = unescape(" ".join(parts[:-4]))
        rows.append({"name": name, "type": parts[-4], "size_bytes": size * 1024,
                     "used_bytes": used * 1024, "priority": prio,
                     "zram": name.startswith("/dev/zram")})
    return rows


@hookimpl
def memdiag_fact_sources(register):
    register(ZramSource())
    register(SwapSource())
