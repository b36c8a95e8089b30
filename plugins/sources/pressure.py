"""psi - is the host short of memory now.

PSI (/proc/pressure/memory, 4.20+) is the share of wall time tasks spent stalled waiting for
memory. OOM kills, and the kernel's report of each, are the oom source's (plugins/sources/oomkill.py).
"""

from __future__ import annotations

from memdiag.evidence import Evidence, Unreadable
from memdiag.facts import FactSet
from memdiag.hookspecs import hookimpl
from memdiag.sources import Source, spec

from memdiag.plugins.sources._readers import note
from memdiag.plugins.sources.oomkill import OOM_FACTS, OomSource  # noqa: F401 - moved; old imports work

PSI = "proc/pressure/memory"


def _psi_specs():
    for kind, meaning in (("some", "at least one task"), ("full", "all non-idle tasks at once")):
        for window in ("10", "60", "300"):
            yield spec(f"psi.memory_{kind}_avg{window}", "ratio",
                       f"Share of the last {window} s in which {meaning} stalled waiting for memory "
                       f"(reclaim, refaults, swap-in): /proc/pressure/memory `{kind}` avg{window}, "
                       "as a fraction of 1.", since="4.20")
        yield spec(f"psi.memory_{kind}_total_seconds", "seconds",
                   f"Total time since boot {meaning} stalled on memory (`{kind}` total).", since="4.20")


PSI_FACTS = tuple(_psi_specs())

class PsiSource(Source):
    name = "psi"
    evidence_only = True
    facts = PSI_FACTS

    def collect(self, ev: Evidence, out: FactSet) -> None:
        try:
            raw = ev.read_text(PSI)
        except Unreadable as exc:
            if "not supported" in exc.message.lower():
                out.problem(self.name, "pressure stall information is disabled in this kernel "
                            "(boot with psi=1 to enable it)", exc.path or "", "unreadable")
            else:
                note(out, self.name, exc, root_only=False)
            return
        if raw is None:
            return
        origin = ev.origin(PSI)
        parsed = parse_psi(raw)
        if not parsed:
            out.problem(self.name, "no some/full lines found", origin, "malformed")
        for kind, values in parsed.items():
            for key, value in values.items():
                if key == "total":
                    out.set(f"psi.memory_{kind}_total_seconds", value / 1e6, origin)
                else:
                    out.set(f"psi.memory_{kind}_{key}", value / 100.0, origin)


def parse_psi(raw: str) -> dict[str, dict[str, float]]:
    """``some avg10=0.12 avg60=... total=N`` lines -> {"some": {"avg10": 0.12, ..., "total": N}}."""
    result: dict[str, dict[str, float]] = {}
    for line in raw.splitlines():
        parts = line.split()
        if not parts or parts[0] not in ("some", "full"):
            continue
        values = {}
        for item in parts[1:]:
            key, _, value = item.partition("=")
            try:
                values[key] = float(value)
            except ValueError:
                continue
        result[parts[0]] = values
    return result


@hookimpl
def memdiag_fact_sources(register):
    register(PsiSource())
