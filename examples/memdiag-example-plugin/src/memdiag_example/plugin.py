"""The hook implementations memdiag calls (entry point ``example`` in the ``memdiag`` group).

Keep this module cheap to import: memdiag imports it on every run, on hosts that may be in
trouble. The sink module is imported only when a configured sink of this type is used.
"""

from __future__ import annotations

import os

from memdiag.hookspecs import hookimpl

from memdiag_example import __version__  # noqa: F401 - `memdiag plugins` shows it
from memdiag_example.source import ExampleAgentSource

SINK_TYPE = "example-tickets"


@hookimpl
def memdiag_fact_sources(register):
    register(ExampleAgentSource())


@hookimpl
def memdiag_rule_packs(register):
    from memdiag_example import rules

    register(os.path.dirname(rules.__file__))


def _ticket_queue(name: str, options: dict):
    from memdiag_example.sink import TicketQueueSink

    return TicketQueueSink(name, options)


@hookimpl
def memdiag_sinks(register):
    register(SINK_TYPE, _ticket_queue)
