"""vmstat - file /proc/vmstat: kernel memory counters (pages or events, kept as counts)."""

from __future__ import annotations

from memdiag.evidence import Evidence
from memdiag.facts import FactSet, FactSpec
from memdiag.hookspecs import hookimpl
from memdiag.sources import Source

PATH = "proc/vmstat"


def _catalog() -> tuple[FactSpec, ...]:
    from memdiag.plugins.sources.meminfo_fields import DOC_UNKNOWN_VMSTAT, VMSTAT

    specs = [FactSpec("vmstat." + f.name, "count", f.doc, unit="pages or events") for f in VMSTAT]
    specs.append(FactSpec("vmstat.*", "count", DOC_UNKNOWN_VMSTAT, unit="pages or events"))
    return tuple(specs)


class VmstatSource(Source):
    name = "vmstat"
    evidence_only = True

    def catalog(self):
        return _catalog()

    def collect(self, ev: Evidence, out: FactSet) -> None:
        text = ev.read_text(PATH)
        if text is None:
            return
        origin = ev.origin(PATH)
        bad = 0
        counters = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) != 2:
                bad += bool(line.strip())
                continue
            try:
                counters.append(("vmstat." + parts[0], int(parts[1])))
            except ValueError:
                bad += 1
        out.set_many(counters, origin)
        if bad:
            out.problem(self.name, f"{bad} malformed line(s) skipped", origin, "malformed")


@hookimpl
def memdiag_fact_sources(register):
    register(VmstatSource())
