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


@pytest.mark.parametrize("modname", sorted(registry.DEFERRED))
def test_a_deferred_builtin_registers_just_what_the_registry_expects_of_it(modname):
    staged: list = []
    for hook, function in registry._builtin_hooks(importlib.import_module(modname)):
        function(register=registry._stage(hook, staged))
    got: dict = {}
    for kind, value in staged:
        got[kind] = got.get(kind, ()) + (registry._key(kind, value),)
    assert got == registry.DEFERRED[modname]


def test_deferred_builtins_are_imported_when_first_used_and_listed_before():
    import subprocess
    import sys

    code = """
import sys
from memdiag import registry
reg = registry.load(autoload=False)
deferred = sorted(registry.DEFERRED)
before = [m for m in deferred if m in sys.modules]
names = (sorted(reg.formats), "html" in reg.formats, reg.plugin("fleet").provides)
html = reg.formats["html"]
after = [m for m in deferred if m in sys.modules]
print(repr((before, names, html.__module__, after, reg.plugin("html").status)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    before, names, module, after, status = eval(out)
    assert before == []
    assert names == (["html", "json", "markdown", "nagios", "text"], True,
                     {"commands": ["report", "check", "render"]})
    assert (module, after, status) == ("memdiag.plugins.formats.html", ["memdiag.plugins.formats.html"], "loaded")


def test_a_deferred_builtin_that_breaks_its_promise_is_reported_and_its_names_go(monkeypatch):
    from memdiag.errors import UsageError

    monkeypatch.setitem(registry.DEFERRED, "memdiag.plugins.formats.html", {"formats": ("html", "xhtml")})
    reg = registry.load(autoload=False)
    assert "xhtml" in reg.formats
    assert reg.formats.get("xhtml") is None and "html" not in reg.formats and "xhtml" not in reg.formats
    assert "not what memdiag expects" in reg.plugin("html").error and reg.plugin("html").provides == {}
    strict = registry.load(autoload=False, strict=True)
    with pytest.raises(UsageError, match="plugin html"):
        strict.formats["html"]


def test_a_blocked_deferred_builtin_is_not_registered_and_third_parties_cannot_take_its_names():
    reg = registry.load(autoload=False, blocked={"html"})
    assert "html" not in reg.formats and reg.plugin("html").skipped

    class Impostor:
        @staticmethod
        @registry.hookspecs.hookimpl
        def memdiag_report_formats(register):
            register("markdown", lambda doc, options: "")

    reg = registry.load(autoload=False, extra=[("impostor", Impostor)])
    assert "already registered by markdown" in reg.plugin("impostor").error
    assert reg.formats["markdown"].__module__ == "memdiag.plugins.formats.markdown"


def test_threads_reading_a_deferred_registration_at_once_all_get_the_real_one():
    from concurrent.futures import ThreadPoolExecutor

    reg = registry.load(autoload=False)
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda _: reg.formats.get("nagios"), range(64)))
    assert all(callable(f) and f.__module__ == "memdiag.plugins.formats.nagios" for f in got)
