"""sysctl - the vm.* settings that change how memory is handed out and taken back."""

from __future__ import annotations

from memdiag.evidence import Evidence
from memdiag.facts import FactSet
from memdiag.hookspecs import hookimpl
from memdiag.sources import Source, spec

from memdiag.plugins.sources._readers import number, to_int

BASE = "proc/sys/vm"

#: file under /proc/sys/vm -> (fact, type, multiplier to the fact's unit, unit, explanation)
SETTINGS = {
    "overcommit_memory": ("sysctl.vm.overcommit_memory", "number", 1, "",
                          "vm.overcommit_memory: 0 heuristic overcommit (default), 1 always "
                          "overcommit, 2 strict: allocations fail once Committed_AS reaches "
                          "CommitLimit."),
    "overcommit_ratio": ("sysctl.vm.overcommit_ratio", "number", 1, "percent",
                         "vm.overcommit_ratio: percent of RAM (plus swap) CommitLimit allows under "
                         "strict overcommit; ignored when vm.overcommit_kbytes is set."),
    "overcommit_kbytes": ("sysctl.vm.overcommit_bytes", "bytes", 1024, "bytes",
                          "vm.overcommit_kbytes converted to bytes: a fixed CommitLimit base "
                          "replacing overcommit_ratio when non-zero."),
    "min_free_kbytes": ("sysctl.vm.min_free_bytes", "bytes", 1024, "bytes",
                        "vm.min_free_kbytes converted to bytes: memory the kernel keeps free for "
                        "atomic allocations. Set very high, it is memory nobody can use."),
    "swappiness": ("sysctl.vm.swappiness", "number", 1, "",
                   "vm.swappiness (0-200): how readily anonymous memory is swapped compared with "
                   "dropping page cache."),
    "nr_hugepages": ("sysctl.vm.nr_hugepages", "count", 1, "huge pages",
                     "vm.nr_hugepages: huge pages of the default size the pool is set to hold. A "
                     "leftover setting reserves memory nothing uses."),
    "zone_reclaim_mode": ("sysctl.vm.zone_reclaim_mode", "number", 1, "",
                          "vm.zone_reclaim_mode: non-zero makes a NUMA node reclaim its own memory "
                          "before using another node's; it can leave memory free while "
                          "processes stall."),
    "vfs_cache_pressure": ("sysctl.vm.vfs_cache_pressure", "number", 1, "",
                           "vm.vfs_cache_pressure (default 100): how eagerly dentry and inode "
                           "caches are reclaimed; low values let them grow."),
    "watermark_scale_factor": ("sysctl.vm.watermark_scale_factor", "number", 1, "",
                               "vm.watermark_scale_factor: distance between zone watermarks, in "
                               "fractions of 10,000 of memory."),
    "panic_on_oom": ("sysctl.vm.panic_on_oom", "number", 1, "",
                     "vm.panic_on_oom: non-zero panics the machine instead of killing a process."),
}

FACTS = tuple(spec(fact, typ, doc, unit=unit) for fact, typ, _m, unit, doc in SETTINGS.values())


class SysctlSource(Source):
    name = "sysctl"
    evidence_only = True
    facts = FACTS

    def collect(self, ev: Evidence, out: FactSet) -> None:
        found = False
        for fname, (fact, _typ, mult, _unit, _doc) in SETTINGS.items():
            rel = f"{BASE}/{fname}"
            value = number(ev, out, self.name, rel)
            if value is not None:
                found = True
                out.set(fact, value * mult, ev.origin(rel))
        captured = None if found else ev.command("sysctl")
        if captured is not None:  # `sysctl -a` output, as in a sosreport
            for key, value in parse_sysctl_a(captured.text).items():
                if key.startswith("vm.") and key[3:] in SETTINGS:
                    fact, _typ, mult, _unit, _doc = SETTINGS[key[3:]]
                    out.set(fact, value * mult, captured.origin)


def parse_sysctl_a(raw: str) -> dict[str, int]:
    """``vm.swappiness = 60`` lines -> {"vm.swappiness": 60}; non-integer settings skipped."""
    result = {}
    for line in raw.splitlines():
        key, sep, value = line.partition("=")
        number = to_int(value) if sep and " " not in value.strip() else None
        if number is not None:
            result[key.strip()] = number
    return result


@hookimpl
def memdiag_fact_sources(register):
    register(SysctlSource())
