"""example_agent - the example agent's pinned RDMA pool, from the counters it publishes.

The agent rewrites ``/run/example-agent/memory.stats`` every few seconds: ``key value`` lines,
sizes in kB, ``#`` comments::

    # example-agent memory counters
    version 2.3.1
    pool_pinned_kb 4718592
    pool_limit_kb 5242880
    pool_clients 12

Read through :class:`memdiag.evidence.Evidence`, so the same code serves a live host and a
captured folder holding ``run/example-agent/memory.stats``.
"""

from __future__ import annotations

from memdiag.evidence import Evidence, Unreadable
from memdiag.facts import FactSet
from memdiag.sources import Source, spec

STATS = "run/example-agent/memory.stats"
KIB = 1024


class ExampleAgentSource(Source):
    name = "example_agent"
    #: reads nothing other sources produce, so no other source need run first
    after = ()
    timeout = 2.0
    #: reads only through ``ev``: over an archive held in memory it runs without a worker thread
    evidence_only = True
    facts = (
        spec("example_agent.pool_bytes", "bytes",
             "Pages the example agent's kernel module has pinned for its RDMA pool (pool_pinned_kb). "
             "They come straight from the page allocator: used memory that no /proc/meminfo field "
             "and no process's RSS counts."),
        spec("example_agent.pool_limit_bytes", "bytes",
             "The most the agent is configured to pin (pool_limit_kb). A pool above it means the "
             "agent is leaking pinned pages."),
        spec("example_agent.clients", "count", "Connections using the pool (pool_clients).", unit="clients"),
        spec("example_agent.version", "str", "The agent's version, as it reports it."),
    )

    def collect(self, ev: Evidence, out: FactSet) -> None:
        try:
            text = ev.read_text(STATS, limit=64 * KIB)
        except Unreadable as exc:
            out.problem(self.name, exc.message, exc.path or ev.origin(STATS), exc.kind)
            return
        if text is None:  # the agent is not installed here: its facts stay unknown
            return
        origin = ev.origin(STATS)
        values: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, _, value = line.partition(" ")
            if not value.strip():
                out.problem(self.name, f"line {number}: expected 'key value', got {line[:60]!r}", origin, "malformed")
                continue
            values[key] = value.strip()
        sizes = (("pool_pinned_kb", "example_agent.pool_bytes", KIB),
                 ("pool_limit_kb", "example_agent.pool_limit_bytes", KIB),
                 ("pool_clients", "example_agent.clients", 1))
        for key, fact, scale in sizes:
            if key not in values:
                continue
            try:
                number = int(values[key])
            except ValueError:
                out.problem(self.name, f"{key}: not a whole number: {values[key][:40]!r}", origin, "malformed")
                continue
            if number < 0:
                out.problem(self.name, f"{key}: negative ({number})", origin, "malformed")
                continue
            out.set(fact, number * scale, origin)
        if "version" in values:
            out.set("example_agent.version", values["version"], origin)
