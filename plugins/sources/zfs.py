"""zfs - the OpenZFS ARC (/proc/spl/kstat/zfs/arcstats).

The ARC is memory the kernel counts as used: it is not page cache, so it is neither in Cached
nor in MemAvailable (openzfs/zfs#10255), although it shrinks under pressure down to c_min. A host
with a big ARC looks full to `free` while it is healthy.

arcstats is a kstat table: a header line, a ``name type data`` line, then one row per counter.
"""

from __future__ import annotations

from memdiag.evidence import Evidence
from memdiag.facts import FactSet
from memdiag.hookspecs import hookimpl
from memdiag.sources import Source, spec

from memdiag.plugins.sources._readers import digits, text, to_int

ARCSTATS = "proc/spl/kstat/zfs/arcstats"

#: arcstats row -> (fact, explanation)
ROWS = {
    "size": ("zfs.arc_size_bytes",
             "Current size of the ZFS ARC: memory that `free` shows as used although ZFS gives it "
             "back under pressure (down to zfs.arc_min_bytes). Not part of Cached or MemAvailable."),
    "c": ("zfs.arc_target_bytes", "The size the ARC is currently aiming for (arcstats `c`)."),
    "c_min": ("zfs.arc_min_bytes", "The floor the ARC will not shrink below (arcstats `c_min`, zfs_arc_min)."),
    "c_max": ("zfs.arc_max_bytes", "The ceiling of the ARC (arcstats `c_max`, zfs_arc_max)."),
    "arc_meta_used": ("zfs.arc_meta_bytes", "ARC memory holding metadata (arcstats `arc_meta_used`; older releases)."),
    "memory_available_bytes": ("zfs.memory_available_bytes",
                               "Memory ZFS thinks the system has free (arcstats `memory_available_bytes`; "
                               "negative while ZFS is asking the ARC to shrink)."),
}

FACTS = tuple(spec(fact, "bytes", doc) for fact, doc in ROWS.values()) + (
    spec("zfs.arc_shrinkable_bytes", "bytes",
         "How much the ARC could give back under pressure: size - c_min (never below 0). This is "
         "memory that looks used but behaves like cache."),
    spec("zfs.arc_no_grow", "bool", "ZFS has stopped growing the ARC because memory is short (arcstats `arc_no_grow`)."),
)


class ZfsSource(Source):
    name = "zfs"
    evidence_only = True
    facts = FACTS

    def collect(self, ev: Evidence, out: FactSet) -> None:
        raw = text(ev, out, self.name, ARCSTATS, root_only=False)
        if raw is None:
            return
        origin = ev.origin(ARCSTATS)
        rows = parse_kstat(raw)
        if "size" not in rows:
            out.problem(self.name, "no `size` row: not an arcstats table", origin, "malformed")
            return
        for row, (fact, _doc) in ROWS.items():
            if row in rows:
                out.set(fact, rows[row], origin)
        if "c_min" in rows:
            out.set("zfs.arc_shrinkable_bytes", max(0, rows["size"] - rows["c_min"]), origin)
        if "arc_no_grow" in rows:
            out.set("zfs.arc_no_grow", rows["arc_no_grow"] != 0, origin)


def parse_kstat(raw: str) -> dict[str, int]:
    """``name type data`` rows of a kstat file -> {name: int}; header and junk lines skipped."""
    rows: dict[str, int] = {}
    for line in raw.splitlines():
        parts = line.split()
        if len(parts) != 3 or digits(parts[1]) is None:
            continue
        value = to_int(parts[2])
        if value is not None:
            rows[parts[0]] = value
    return rows


@hookimpl
def memdiag_fact_sources(register):
    register(ZfsSource())
