"""Plugin loading: built-ins first, then installed entry points and loose plugin files.

Each third-party plugin is loaded on its own; one that fails to import or raises in a hook is
reported in one line and skipped, so a broken chat sink can never block a diagnosis
(``--strict-plugins`` makes it fatal instead, for plugin authors).

Entry points are found by reading ``*.dist-info/entry_points.txt`` on ``sys.path`` directly:
``importlib.metadata`` costs ~30 ms of start-up on every run, on hosts that are already in trouble.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import pluggy

from memdiag import hookspecs
from memdiag.errors import UsageError

ENTRY_POINT_GROUP = "memdiag"
PLUGINS_DIR = "/etc/memdiag/plugins.d"

#: Built-in plugins, registered through the same hooks as everyone else's.
BUILTIN_PLUGINS = (
    "memdiag.plugins.sources.meminfo",
    "memdiag.plugins.sources.processes",
    "memdiag.plugins.sources.modules",
    "memdiag.plugins.sources.vmstat",
    "memdiag.plugins.sources.platform",
    "memdiag.plugins.sources.commands",
    "memdiag.plugins.sources.accounting",
    "memdiag.plugins.rulepacks",
    "memdiag.plugins.formats.text",
    "memdiag.plugins.formats.json",
    "memdiag.plugins.formats.nagios",
    "memdiag.plugins.formats.markdown",
    "memdiag.plugins.formats.html",
    "memdiag.plugins.fleet",
)


@dataclass
class PluginInfo:
    name: str
    origin: str  # "builtin", "entry point", or the file it came from
    version: str = ""
    hooks: list[str] = field(default_factory=list)
    error: str = ""


@dataclass
class Registry:
    """Everything plugins registered, plus what went wrong loading them."""

    sources: list[Any] = field(default_factory=list)
    rule_packs: list[tuple[str, str]] = field(default_factory=list)  # (path, plugin name)
    sinks: dict[str, Callable] = field(default_factory=dict)
    formats: dict[str, Callable] = field(default_factory=dict)
    inputs: list[tuple[str, Callable]] = field(default_factory=list)
    commands: dict[str, tuple[str, Callable, Callable]] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)

    @property
    def errors(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error]


def _entry_points(group: str) -> list[tuple[str, str, str]]:
    """(name, "module:attr" value, distribution version) for ``group``, without importlib.metadata."""
    found, seen = [], set()
    for base in sys.path:
        try:
            entries = os.listdir(base or ".")
        except OSError:
            continue
        for entry in entries:
            if not entry.endswith((".dist-info", ".egg-info")):
                continue
            path = os.path.join(base, entry, "entry_points.txt")
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except OSError:
                continue
            dist = entry.rsplit(".", 1)[0]
            version = dist.split("-", 1)[1] if "-" in dist else ""
            section = None
            for line in text.splitlines():
                line = line.strip()
                if not line or line.startswith(("#", ";")):
                    continue
                if line.startswith("["):
                    section = line.strip("[]").strip()
                elif section == group and "=" in line:
                    name, value = (p.strip() for p in line.split("=", 1))
                    if name not in seen:
                        seen.add(name)
                        found.append((name, value, version))
    return found


def _load_object(value: str) -> Any:
    module_name, _, attr = value.partition(":")
    obj = importlib.import_module(module_name.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


def _load_file(path: str) -> Any:
    name = "memdiag_local_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load(
    *,
    plugins_dirs: list[str] | None = None,
    blocked: set[str] | frozenset[str] = frozenset(),
    allow: set[str] | None = None,
    strict: bool = False,
    autoload: bool = True,
) -> Registry:
    """Load built-in and third-party plugins and collect what they register.

    ``allow`` (from ``MEMDIAG_PLUGINS``) limits third-party plugins to those names; ``blocked``
    (from ``-p no:NAME``) removes plugins, built-ins included.
    """
    pm = pluggy.PluginManager("memdiag")
    pm.add_hookspecs(hookspecs)
    reg = Registry()

    def add(name: str, obtain: Callable[[], Any], origin: str, version: str = "") -> None:
        info = PluginInfo(name, origin, version)
        reg.plugins.append(info)
        try:
            plugin = obtain()
            pm.register(plugin, name=name)
            info.hooks = sorted(h.name for h in (pm.get_hookcallers(plugin) or []))
        except Exception as exc:  # a broken plugin is reported, never fatal unless strict
            info.error = f"{type(exc).__name__}: {exc}"
            if strict:
                raise UsageError(f"plugin {name} ({origin}) failed to load: {info.error}") from exc

    from memdiag import __version__

    for modname in BUILTIN_PLUGINS:
        short = modname.rsplit(".", 1)[1]
        if short in blocked or modname in blocked:
            continue
        add(short, lambda m=modname: importlib.import_module(m), "builtin", __version__)

    if autoload:
        for name, value, version in _entry_points(ENTRY_POINT_GROUP):
            if name in blocked or (allow is not None and name not in allow):
                continue
            add(name, lambda v=value: _load_object(v), "entry point", version)
    for folder in plugins_dirs or ():
        try:
            files = sorted(f for f in os.listdir(folder) if f.endswith(".py") and not f.startswith("_"))
        except OSError:
            continue
        for fname in files:
            name = fname[:-3]
            if name in blocked or (allow is not None and name not in allow):
                continue
            path = os.path.join(folder, fname)
            add(name, lambda p=path: _load_file(p), path)

    _collect(pm, reg, strict)
    return reg


def _collect(pm: pluggy.PluginManager, reg: Registry, strict: bool) -> None:
    """Call every registration hook plugin by plugin, so one that raises is isolated."""
    by_name = {p.name: p for p in reg.plugins}
    hooks: dict[str, Callable[..., Callable]] = {
        "memdiag_fact_sources": lambda plug: reg.sources.append,
        "memdiag_rule_packs": lambda plug: lambda path: reg.rule_packs.append((str(path), plug)),
        "memdiag_sinks": lambda plug: lambda name, factory: reg.sinks.__setitem__(name, factory),
        "memdiag_report_formats": lambda plug: lambda name, render: reg.formats.__setitem__(name, render),
        "memdiag_inputs": lambda plug: lambda name, opener: reg.inputs.append((name, opener)),
        "memdiag_commands": lambda plug: lambda name, help, configure, run: reg.commands.__setitem__(
            name, (help, configure, run)
        ),
    }
    for hook_name, make in hooks.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            try:
                impl.function(register=make(impl.plugin_name))
            except Exception as exc:
                msg = f"{hook_name} raised {type(exc).__name__}: {exc}"
                info = by_name.get(impl.plugin_name)
                if info is not None:
                    info.error = msg
                if strict:
                    raise UsageError(f"plugin {impl.plugin_name}: {msg}") from exc
