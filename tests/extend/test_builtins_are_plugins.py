"""memdiag's built-ins are ordinary plugins on the public hooks.

The registry finds a built-in's hook functions by name instead of running pluggy's registration
(a start-up saving). These tests hold that shortcut to its promise: every built-in module,
registered through pluggy exactly as a third-party plugin is, declares the same hooks and
registers the same sources, rule packs, sinks, formats, inputs and commands."""

from __future__ import annotations

import importlib

import pytest

from memdiag import registry


def _registrations(reg: registry.Registry) -> dict[str, object]:
    return {
        "sources": sorted(s.name for s in reg.sources),
        "rule_packs": sorted(path for path, _ in reg.rule_packs),
        "sinks": sorted(reg.sinks),
        "formats": sorted(reg.formats),
        "inputs": sorted(name for name, _ in reg.inputs),
        "commands": sorted(reg.commands),
    }


@pytest.mark.parametrize("modname", registry.BUILTIN_PLUGINS)
def test_pluggy_sees_the_same_hooks_in_every_builtin(modname):
    module = importlib.import_module(modname)
    pm = registry._plugin_manager()
    pm.register(module, name=modname)
    callers = pm.get_hookcallers(module) or []
    assert all(c.has_spec() for c in callers), [c.name for c in callers if not c.has_spec()]
    assert sorted(c.name for c in callers) == sorted(name for name, _ in registry._builtin_hooks(module))


def test_builtins_loaded_through_pluggy_register_what_the_fast_path_registers():
    fast = registry.load(autoload=False)
    names = {m.rsplit(".", 1)[1] for m in registry.BUILTIN_PLUGINS}
    # every built-in blocked, then handed over as third-party plugin objects: pluggy's path
    via_pluggy = registry.load(autoload=False, blocked=names,
                               extra=[(f"pluggy-{m.rsplit('.', 1)[1]}", importlib.import_module(m))
                                      for m in registry.BUILTIN_PLUGINS])
    assert not fast.errors and not via_pluggy.errors, [p.error for p in via_pluggy.errors]
    assert _registrations(via_pluggy) == _registrations(fast)
    assert len(fast.sources) > 20 and fast.sinks and fast.formats
