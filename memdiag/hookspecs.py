"""The hooks memdiag offers plugins. Built-ins implement them exactly as third parties do.

Every hook takes one argument, a ``register`` callback, and a plugin calls it once per thing it
adds (a register-callback style): one plugin may add several sources, sinks or formats, and
registering stays cheap because nothing heavy needs importing until the thing is used.

A plugin is a module (or any object) with functions marked ``@hookimpl`` and named after the
hooks below; see docs/plugins.md. Names are first come, first served (built-ins load first): a
plugin that registers a source, sink type, format or command name already taken, registers
something that is not what the hook expects, or raises, is reported in one line and all of its
registrations are dropped, so the diagnosis goes on without it (``--strict-plugins`` makes that
fatal instead).
"""

from __future__ import annotations

#: pluggy's project name: hook implementations carry a ``memdiag_impl`` attribute.
PROJECT = "memdiag"


class MarkerOptions(dict):
    """What ``@hookimpl(...)`` or ``@hookspec(...)`` was given. memdiag.registry completes it
    into pluggy's own options (by applying pluggy's marker) when a third-party plugin needs
    pluggy; built-ins are looked up without it."""


class _Marker:
    """pluggy's HookimplMarker / HookspecMarker for memdiag, usable as ``@hookimpl`` and
    ``@hookimpl(tryfirst=True)``, without importing pluggy (and ``inspect``) on every run."""

    def __init__(self, kind: str) -> None:
        self.attribute = f"{PROJECT}_{kind}"

    def __call__(self, function=None, **options):
        def mark(func):
            setattr(func, self.attribute, MarkerOptions(options))
            return func

        return mark if function is None else mark(function)


hookspec = _Marker("spec")
hookimpl = _Marker("impl")


@hookspec
def memdiag_fact_sources(register):
    """Register fact sources: ``register(source)`` with a :class:`memdiag.sources.Source`
    instance (a ``name``, the ``facts`` it may produce, and ``collect(evidence, facts)``)."""


@hookspec
def memdiag_rule_packs(register):
    """Register rule packs: ``register(path)`` with a YAML rule file or a folder of them.

    A plugin's packs load after the bundled ones; their ``overrides:`` sections tune rules of
    other packs and rank above the bundled values, below the site overrides file."""


@hookspec
def memdiag_sinks(register):
    """Register sink types: ``register(type_name, factory)``; ``factory(name, options)`` returns
    an object with ``style``, ``secret_options`` and ``deliver(action, finding, context)``
    (see :mod:`memdiag.delivery.sink` and docs/sinks.md)."""


@hookspec
def memdiag_report_formats(register):
    """Register report formats: ``register(name, render)``; ``render(document, options)``
    returns the report text for a findings document (``options``: ``color``, ``width``)."""


@hookspec
def memdiag_inputs(register):
    """Register input openers: ``register(name, opener)``; ``opener(path, workdir)`` returns an
    :class:`memdiag.evidence.Evidence` when it recognises ``path``, else ``None``."""


@hookspec
def memdiag_commands(register):
    """Register CLI subcommands: ``register(name, help, configure, run)``; ``configure(parser)``
    adds arguments to the subcommand's argparse parser, ``run(args)`` returns an exit code.
    ``args`` carries the common options and ``args.registry``, the plugins already loaded."""
