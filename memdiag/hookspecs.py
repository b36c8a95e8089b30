"""The hooks memdiag offers plugins. Built-ins implement them exactly as third parties do.

Every hook takes a ``register`` callback (a register-callback style: a plugin may register
several things, and registration stays cheap because nothing heavy is imported until used).
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("memdiag")
hookimpl = pluggy.HookimplMarker("memdiag")


@hookspec
def memdiag_fact_sources(register):
    """Register fact sources: ``register(source)`` with a :class:`memdiag.sources.Source`."""


@hookspec
def memdiag_rule_packs(register):
    """Register rule packs: ``register(path)`` with a YAML file or a folder of them."""


@hookspec
def memdiag_sinks(register):
    """Register sink types: ``register(type_name, factory)``; ``factory(name, options)`` returns
    an object with ``deliver(action, finding, context)`` (see :mod:`memdiag.delivery`)."""


@hookspec
def memdiag_report_formats(register):
    """Register report formats: ``register(name, render)``; ``render(document, options)``
    returns the report text for a findings document."""


@hookspec
def memdiag_inputs(register):
    """Register input openers: ``register(name, opener)``; ``opener(path, workdir)`` returns an
    :class:`memdiag.evidence.Evidence` when it recognises ``path``, else ``None``."""


@hookspec
def memdiag_commands(register):
    """Register CLI subcommands: ``register(name, help, configure, run)``; ``configure(parser)``
    adds arguments, ``run(args)`` returns an exit code."""
