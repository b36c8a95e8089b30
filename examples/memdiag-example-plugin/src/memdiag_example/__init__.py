"""memdiag-example-plugin: teaches memdiag about the (fictional) example agent.

The example agent runs RDMA transfers from a pool of pages that its kernel module pins straight
from the page allocator. No /proc/meminfo field counts those pages, so on a busy host memdiag's
bundled ``unaccounted-memory`` rule sees gigabytes nobody owns. This plugin adds:

- the ``example_agent`` fact source, reading the counters the agent publishes in
  ``/run/example-agent/memory.stats`` (:mod:`memdiag_example.source`);
- a rule pack with ``example-agent-pool``, which names the pool as the owner, and an
  ``overrides:`` section that suppresses the generic ``unaccounted-memory`` finding when the
  pool explains the memory (:file:`rules/example-agent.yaml`);
- the ``example-tickets`` sink type, which files findings into the agent team's ticket queue, a
  folder of JSON tickets (:mod:`memdiag_example.sink`).
"""

__version__ = "0.1.0"
