"""commands - the memory summary lines of captured `top -b` and `free` output.

Pasted outputs are often all an engineer has (the founding case had only meminfo and top).
Their header figures are kept as facts of their own, never mixed into meminfo's, so a report can
show when two inputs were captured at different moments.
"""

from __future__ import annotations

from memdiag.evidence import Evidence
from memdiag.facts import FactSet
from memdiag.hookspecs import hookimpl
from memdiag.sources import Source, spec

_TOP = ("mem_total", "mem_free", "mem_used", "buff_cache", "mem_avail", "swap_total", "swap_free", "swap_used")
_FREE = ("total", "used", "free", "shared", "buff_cache", "available", "buffers", "cached",
         "swap_total", "swap_used", "swap_free")


class CommandsSource(Source):
    name = "commands"
    evidence_only = True
    facts = (
        *(spec(f"top.{k}", "bytes", f"The '{k.replace('_', ' ')}' figure of top's header (procps's own arithmetic, "
               "which differs between procps versions).") for k in _TOP),
        spec("top.clock", "str", "The time of day on top's first line, when the output was captured."),
        *(spec(f"free.{k}", "bytes", f"The '{k.replace('_', ' ')}' figure printed by free. Since procps 4.0.1 "
               "'used' is MemTotal - MemAvailable; older versions subtract buffers and cache from total - free.")
          for k in _FREE),
    )

    def collect(self, ev: Evidence, out: FactSet) -> None:
        top = ev.command("top")
        if top is not None:
            from memdiag.parsers.top import parse_top

            parsed = parse_top(top.text, top.origin)
            for key in _TOP:
                out.set(f"top.{key}", getattr(parsed, key), top.origin)
            out.set("top.clock", parsed.clock, top.origin)
        free = ev.command("free")
        if free is not None:
            from memdiag.parsers.free import parse_free

            parsed_free = parse_free(free.text, free.origin)
            for key in _FREE:
                out.set(f"free.{key}", getattr(parsed_free, key), free.origin)


@hookimpl
def memdiag_fact_sources(register):
    register(CommandsSource())
