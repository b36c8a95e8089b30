"""slab and vmalloc - which kernel caches and which vmalloc callers hold memory.

Both files are root-only (0400) and can be large on big hosts (tens of thousands of vmalloc
areas), so they are streamed line by line and only the top entries are kept. When slabinfo is
not there, a captured ``slabtop -o`` serves instead.
"""

from __future__ import annotations

from memdiag.evidence import Evidence
from memdiag.facts import FactSet
from memdiag.hookspecs import hookimpl
from memdiag.sources import Source, spec
from memdiag.units import UnitError, parse_size

from memdiag.plugins.sources._readers import PAGE, Largest, digits, quiet_text, stream, text

SLABINFO = "proc/slabinfo"
SLAB_SYSFS = "sys/kernel/slab"
DENTRY_STATE = "proc/sys/fs/dentry-state"
VMALLOCINFO = "proc/vmallocinfo"
TOP = 10

SLAB_FACTS = (
    spec("slab.top", "table",
         f"The {TOP} largest slab caches: name, bytes (slabs x pages per slab x 4 KiB), "
         "active_objs, num_objs, objsize (bytes), reclaimable (SLUB's reclaim_account flag when "
         "known). From /proc/slabinfo (root only) or captured `slabtop -o`."),
    spec("slab.total_bytes", "bytes", "Memory held by all slab caches, summed from /proc/slabinfo."),
    spec("slab.caches", "count", "Slab caches listed in /proc/slabinfo (or slabtop).", unit="caches"),
    spec("slab.largest_name", "str", "Name of the largest slab cache."),
    spec("slab.largest_bytes", "bytes", "Size of the largest slab cache."),
    spec("slab.dentry_bytes", "bytes", "Size of the dentry cache (directory-entry cache, reclaimable)."),
    spec("slab.dentries", "count", "Directory entries allocated (/proc/sys/fs/dentry-state nr_dentry).", unit="dentries"),
    spec("slab.negative_dentries", "count",
         "Cached lookups of names that do not exist (dentry-state nr_negative, 5.0+). Millions of "
         "them bloat the dentry cache; they are reclaimable.", unit="dentries"),
)

VMALLOC_FACTS = (
    spec("vmalloc.used_bytes", "bytes",
         "RAM backing vmalloc areas: the pages= of every `vmalloc` entry in /proc/vmallocinfo x "
         "4 KiB. Works on every kernel, including 4.4-5.2 where meminfo's VmallocUsed is 0."),
    spec("vmalloc.areas", "count", "vmalloc areas that hold pages.", unit="areas"),
    spec("vmalloc.top_callers", "table",
         f"The {TOP} kernel functions holding the most vmalloc memory: caller, bytes, areas."),
    spec("vmalloc.ioremap_bytes", "bytes",
         "Address space mapped by ioremap (device memory windows). Not RAM; on kernels before 4.4 "
         "meminfo's VmallocUsed includes it."),
)


#: Below these (meminfo's SUnreclaim and SReclaimable, else Slab) /proc/slabinfo is not parsed:
#: no slab rule can fire (they start at 1 GiB unreclaimable, 2 GiB reclaimable), and the parse
#: and the sysfs flags cost ~3 ms of every run.
SMALL_UNRECLAIMABLE = 256 << 20
SMALL_RECLAIMABLE = 1 << 30


def _small(out: FactSet) -> bool:
    unreclaimable, reclaimable = out.get("meminfo.SUnreclaim"), out.get("meminfo.SReclaimable")
    if isinstance(unreclaimable, int) and isinstance(reclaimable, int):
        return unreclaimable < SMALL_UNRECLAIMABLE and reclaimable < SMALL_RECLAIMABLE
    return out.get("meminfo.Slab") < SMALL_UNRECLAIMABLE  # before 2.6.19: Slab alone


class SlabSource(Source):
    name = "slab"
    evidence_only = True
    after = ("meminfo",)
    facts = SLAB_FACTS

    def collect(self, ev: Evidence, out: FactSet) -> None:
        slab = out.get("meminfo.Slab")
        if isinstance(slab, int) and _small(out) and not ev.thorough:
            out.set("slab.total_bytes", slab, f"{out.origin('meminfo.Slab')} Slab "
                    "(too little slab to matter: /proc/slabinfo not read)")
            self._dentries(ev, out)
            return
        rows, total, count = self._slabinfo(ev, out)
        origin = ev.origin(SLABINFO)
        if count == 0:
            captured = ev.command("slabtop")
            if captured is not None:
                rows, total, count = parse_slabtop(captured.text)
                origin = captured.origin
        if count:
            for row in rows:
                flag = quiet_text(ev, f"{SLAB_SYSFS}/{row['name']}/reclaim_account")
                if flag is not None:
                    row["reclaimable"] = flag.strip() == "1"
            out.set("slab.top", rows, origin)
            out.set("slab.total_bytes", total, origin)
            out.set("slab.caches", count, origin)
            out.set("slab.largest_name", rows[0]["name"], origin)
            out.set("slab.largest_bytes", rows[0]["bytes"], origin)
        self._dentries(ev, out)

    def _slabinfo(self, ev: Evidence, out: FactSet) -> tuple[list[dict], int, int]:
        ranked = Largest(TOP)  # of (bytes, name, -count, row): the count breaks ties, rows never compare
        total = count = 0
        dentry = None
        for line in stream(ev, out, self.name, SLABINFO):
            row = parse_slabinfo_line(line)
            if row is None:
                continue
            count += 1
            total += row["bytes"]
            if row["name"] == "dentry":
                dentry = row["bytes"]
            ranked.add((row["bytes"], row["name"], -count, row))
        if dentry is not None:
            out.set("slab.dentry_bytes", dentry, ev.origin(SLABINFO))
        return [t[3] for t in ranked.largest()], total, count

    def _dentries(self, ev: Evidence, out: FactSet) -> None:
        raw = text(ev, out, self.name, DENTRY_STATE, root_only=False)
        parts = raw.split() if raw else []
        origin = ev.origin(DENTRY_STATE)
        if parts:
            out.set("slab.dentries", digits(parts[0]), origin)
        if len(parts) >= 6:  # 6 fields since nr_negative was added
            out.set("slab.negative_dentries", digits(parts[4]), origin)


def parse_slabinfo_line(line: str) -> dict | None:
    """One slabinfo 2.x data line -> row; headers and malformed lines -> None."""
    if not line or line.startswith(("#", "slabinfo")):
        return None
    head, _, rest = line.partition(":")
    parts = head.split()
    slabdata = rest.rpartition("slabdata")[2].split()
    if len(parts) != 6 or len(slabdata) < 2:
        return None
    numbers = [digits(p) for p in parts[1:]] + [digits(slabdata[1])]
    if None in numbers:
        return None
    active, num, objsize, _perslab, pages, slabs = numbers
    return {"name": parts[0], "bytes": slabs * pages * PAGE, "active_objs": active,
            "num_objs": num, "objsize": objsize}


def parse_slabtop(raw: str) -> tuple[list[dict], int, int]:
    """`slabtop -o` rows (OBJS ACTIVE USE OBJ-SIZE SLABS OBJ/SLAB CACHE-SIZE NAME) -> top rows."""
    rows = []
    for line in raw.splitlines():
        parts = line.split()
        if len(parts) < 8 or digits(parts[0]) is None or digits(parts[1]) is None or digits(parts[4]) is None:
            continue
        try:
            rows.append({"name": " ".join(parts[7:]), "bytes": parse_size(parts[6]),
                         "active_objs": digits(parts[1]), "num_objs": digits(parts[0]),
                         "objsize": parse_size(parts[3])})
        except UnitError:
            continue
    rows.sort(key=lambda r: r["bytes"], reverse=True)
    return rows[:TOP], sum(r["bytes"] for r in rows), len(rows)


#: Below this much vmalloc'd RAM (by meminfo, where it counts RAM) /proc/vmallocinfo is not read:
#: it lists every vmalloc area, one kernel stack per thread among them, so it grows with the
#: number of tasks (9 ms at 1,000 processes), and small vmalloc use explains nothing.
SMALL_VMALLOC = 256 << 20


class VmallocSource(Source):
    name = "vmalloc"
    evidence_only = True
    after = ("meminfo",)
    facts = VMALLOC_FACTS

    def collect(self, ev: Evidence, out: FactSet) -> None:
        used, chunk = out.get("meminfo.VmallocUsed"), out.get("meminfo.VmallocChunk")
        if chunk == 0 and isinstance(used, int) and 0 < used < SMALL_VMALLOC and not ev.thorough:
            # 5.3+ (VmallocChunk 0, VmallocUsed counting pages): meminfo already has the figure
            out.set("vmalloc.used_bytes", used, f"{out.origin('meminfo.VmallocUsed')} VmallocUsed "
                    f"(under {SMALL_VMALLOC >> 20} MiB: /proc/vmallocinfo not read)")
            return
        pages = areas = ioremap = 0
        callers: dict[str, list[int]] = {}
        seen = False
        for line in stream(ev, out, self.name, VMALLOCINFO):
            seen = True
            if "vmalloc" not in line and "ioremap" not in line:
                continue  # most lines on a busy host are vmap/percpu; skip the split
            parts = line.split()
            if len(parts) < 3:
                continue
            flags = parts[3:]
            if "ioremap" in flags:
                ioremap += digits(parts[1]) or 0
                continue
            if "vmalloc" not in flags:
                continue
            n = 0
            for p in flags:
                if p.startswith("pages="):
                    n = digits(p[6:]) or 0
                    break
            if n == 0:
                continue
            pages += n
            areas += 1
            caller = parts[2].split("+", 1)[0]
            slot = callers.setdefault(caller, [0, 0])
            slot[0] += n
            slot[1] += 1
        if not seen:
            return
        origin = ev.origin(VMALLOCINFO)
        out.set("vmalloc.used_bytes", pages * PAGE, origin)
        out.set("vmalloc.areas", areas, origin)
        out.set("vmalloc.ioremap_bytes", ioremap, origin)
        top = sorted(callers.items(), key=lambda kv: kv[1][0], reverse=True)[:TOP]  # as heapq.nlargest ranks
        out.set("vmalloc.top_callers",
                [{"caller": c, "bytes": v[0] * PAGE, "areas": v[1]} for c, v in top], origin)


@hookimpl
def memdiag_fact_sources(register):
    register(SlabSource())
    register(VmallocSource())
