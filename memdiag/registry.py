"""Plugin loading: built-ins first, then installed entry points and loose plugin files.

Discovery: built-ins (:data:`BUILTIN_PLUGINS`), then the ``memdiag`` entry-point group of every
installed distribution, then ``*.py`` files in ``--plugins-dir`` folders and
``/etc/memdiag/plugins.d``. ``MEMDIAG_PLUGINS=a,b`` limits third-party plugins to those names
(empty: none); ``-p no:NAME`` blocks one, built-ins included.

Isolation: each plugin is imported, registered and asked for its registrations on its own. One
that fails to import, implements a hook memdiag does not have, registers something malformed or
already taken, or raises in a hook is reported in one line and *all* of its registrations are
dropped; the diagnosis goes on without it. ``--strict-plugins`` makes that fatal, for authors.

Entry points are found by reading ``*.dist-info/entry_points.txt`` on ``sys.path`` directly:
``importlib.metadata`` costs ~30 ms of start-up on every run, on hosts that are already in trouble.

Built-ins implement the same hooks, marked ``@hookimpl`` like everyone's, and their hook
functions are called the same way; they are found by looking up the hook names in the module
rather than by pluggy's registration, which inspects every attribute of every module (~5 ms
for the ~30 built-ins). A pluggy plugin manager is made when a third-party plugin comes along.
"""

from __future__ import annotations

import _thread  # threading's locks without its ~1 ms import
import os
import sys
import time

from memdiag import hookspecs
from memdiag.errors import UsageError
from memdiag.facts import _Record

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Any, Callable

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
    "memdiag.plugins.sources.balloon",
    "memdiag.plugins.sources.ram",
    "memdiag.plugins.sources.zfs",
    "memdiag.plugins.sources.hugepages",
    "memdiag.plugins.sources.slab",
    "memdiag.plugins.sources.cgroups",
    "memdiag.plugins.sources.pressure",
    "memdiag.plugins.sources.oomkill",
    "memdiag.plugins.sources.sysctl",
    "memdiag.plugins.sources.tmpfs",
    "memdiag.plugins.sources.zram",
    "memdiag.plugins.sources.gpu",
    "memdiag.plugins.sources.pss",
    "memdiag.plugins.sources.container",
    "memdiag.plugins.rulepacks",
    "memdiag.plugins.formats.text",
    "memdiag.plugins.formats.json",
    "memdiag.plugins.formats.nagios",
    "memdiag.plugins.formats.markdown",
    "memdiag.plugins.formats.html",
    "memdiag.plugins.fleet",
    "memdiag.plugins.inputs",
    "memdiag.plugins.collect",
    "memdiag.plugins.diff",
    "memdiag.plugins.sinks",
    "memdiag.plugins.plugincmd",
)

#: Built-ins no diagnosis needs, imported only when something they register is first asked for
#: (importing them all cost ~2.4 ms of every run): module -> what it registers, by kind.
#: tests/extend/test_builtins_are_plugins.py holds each to what its hooks really register.
DEFERRED: dict[str, dict[str, tuple[str, ...]]] = {
    "memdiag.plugins.formats.json": {"formats": ("json",)},
    "memdiag.plugins.formats.nagios": {"formats": ("nagios",)},
    "memdiag.plugins.formats.markdown": {"formats": ("markdown",)},
    "memdiag.plugins.formats.html": {"formats": ("html",)},
    "memdiag.plugins.fleet": {"commands": ("report", "check", "render")},
    "memdiag.plugins.collect": {"commands": ("collect",)},
    "memdiag.plugins.diff": {"commands": ("diff",)},
    "memdiag.plugins.plugincmd": {"commands": ("plugins",)},
}

#: What each hook's ``register`` stages: hook name -> registry attribute it fills.
HOOK_TARGETS = {
    "memdiag_fact_sources": "sources",
    "memdiag_rule_packs": "rule_packs",
    "memdiag_sinks": "sinks",
    "memdiag_report_formats": "formats",
    "memdiag_inputs": "inputs",
    "memdiag_commands": "commands",
}


# Classes written out rather than made with @dataclass: see memdiag.facts (start-up cost).

class PluginInfo(_Record):
    """One plugin as ``memdiag plugins`` shows it."""

    _FIELDS = ("name", "origin", "version", "target", "dist", "hooks", "provides", "error", "skipped",
               "load_seconds")

    def __init__(self, name: str, origin: str, version: str = "", target: str = "", dist: str = "",
                 hooks: list[str] | None = None, provides: dict[str, list[str]] | None = None,
                 error: str = "", skipped: str = "", load_seconds: float = 0.0) -> None:
        self.name = name
        self.origin = origin  # "builtin", "entry point", or the file it came from
        self.version = version
        #: where the code is: a module name, an entry point's "module:attr", or a file path
        self.target = target
        #: the distribution an entry point belongs to (its dist-info name)
        self.dist = dist
        self.hooks: list[str] = [] if hooks is None else hooks
        #: what it registered, by kind: {"sources": ["meminfo"], "sinks": ["slack"], ...}
        self.provides: dict[str, list[str]] = {} if provides is None else provides
        self.error = error
        #: why it was not loaded at all ("blocked by -p no:NAME", "not in MEMDIAG_PLUGINS")
        self.skipped = skipped
        self.load_seconds = load_seconds

    @property
    def status(self) -> str:
        return "failed" if self.error else "skipped" if self.skipped else "loaded"


_RESOLVING = _thread.RLock()


class _Pending:
    """A deferred built-in's registration, until its module is imported (see DEFERRED)."""

    __slots__ = ("module",)

    def __init__(self, module: str) -> None:
        self.module = module

    def __eq__(self, other: object) -> bool:
        return type(other) is _Pending and other.module == self.module

    def __repr__(self) -> str:
        return f"<registered by {self.module}, not imported yet>"


class _Table(dict):
    """name -> registration (sinks, formats, commands). A deferred built-in's names are in it
    from the start; reading one of their values (``[]``, get, items, values, copy) imports that
    built-in (:meth:`Registry.resolve`). A copy made below the mapping methods (``dict(t)``,
    ``{**t}``) would hold the placeholders: memdiag makes none."""

    __slots__ = ("_registry",)

    def __init__(self, registry: Registry) -> None:
        super().__init__()
        self._registry = registry

    def __getitem__(self, key: str) -> Any:
        value = dict.__getitem__(self, key)
        if type(value) is _Pending:
            self._registry.resolve(value.module)
            value = dict.__getitem__(self, key)  # gone if the module failed: KeyError
        return value

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def values(self) -> list[Any]:  # type: ignore[override]
        return [self[k] for k in list(self)]

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        return [(k, self[k]) for k in list(self)]

    def __iter__(self):
        return iter(list(dict.keys(self)))  # a resolve may change values while iterating

    def copy(self) -> dict[str, Any]:
        return dict(self.items())


class Registry(_Record):
    """Everything plugins registered, plus what went wrong loading them."""

    _FIELDS = ("sources", "rule_packs", "sinks", "formats", "inputs", "commands", "plugins",
               "unknown_blocked")

    def __init__(self) -> None:
        self.sources: list[Any] = []
        self.rule_packs: list[tuple[str, str]] = []  # (path, plugin name)
        self.sinks: dict[str, Callable] = _Table(self)
        self.formats: dict[str, Callable] = _Table(self)
        self.inputs: list[tuple[str, Callable]] = []
        self.commands: dict[str, tuple[str, Callable, Callable]] = _Table(self)
        self.plugins: list[PluginInfo] = []
        #: ``-p no:NAME`` names that matched no plugin (likely typos)
        self.unknown_blocked: list[str] = []
        self._catalog: Any = None
        #: deferred built-ins not imported yet: module -> its PluginInfo
        self._deferred: dict[str, PluginInfo] = {}
        self._strict = False

    def resolve(self, module: str) -> None:
        """Import deferred built-in ``module`` and put its real registrations in place of its
        pending ones; if it fails, it is reported as any plugin is and its names are gone."""
        with _RESOLVING:  # another thread may be resolving it: wait for it to finish
            info = self._deferred.pop(module, None)
            if info is not None:
                self._resolve(module, info)

    def _resolve(self, module: str, info: PluginInfo) -> None:
        started = time.perf_counter()
        try:
            plugin = import_module(module)
            hooks = _builtin_hooks(plugin)
        except Exception as exc:
            hooks, info.error = [], _one_line(exc)
        info.load_seconds = time.perf_counter() - started
        staged: list[tuple[str, Any]] = []
        if not info.error:
            try:
                staged = _registrations(hooks)
                got: dict[str, tuple[str, ...]] = {}
                for kind, value in staged:
                    got[kind] = got.get(kind, ()) + (_key(kind, value),)
                if got != DEFERRED[module]:
                    raise _Invalid(f"registered {got}, not what memdiag expects of it ({DEFERRED[module]})")
            except _Invalid as exc:
                info.error = str(exc)
        for kind, names in DEFERRED[module].items():
            for name in names:
                dict.pop(getattr(self, kind), name, None)
        if info.error:
            info.provides = {}
            if self._strict:
                raise UsageError(f"plugin {info.name} ({info.origin}) failed: {info.error}")
            return
        for kind, (key, value) in staged:
            dict.__setitem__(getattr(self, kind), key, value)

    def resolve_all(self) -> None:
        """Import every deferred built-in (``memdiag plugins`` shows them as they really are)."""
        for module in list(self._deferred):
            self.resolve(module)

    @property
    def catalog(self):
        """Every fact the registered sources can produce; built once (hundreds of specs)."""
        if self._catalog is None:
            from memdiag.sources import build_catalog

            self._catalog = build_catalog(self.sources)
        return self._catalog

    @property
    def errors(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error]

    def plugin(self, name: str) -> PluginInfo | None:
        return next((p for p in self.plugins if p.name == name), None)


# -- discovery --------------------------------------------------------------------------------

def _entry_points(group: str) -> list[tuple[str, str, str, str]]:
    """(name, "module:attr", distribution version, distribution) for ``group``, read from
    dist-info folders on ``sys.path`` without importlib.metadata; the first of a name wins."""
    found, seen = [], set()
    for base in sys.path:
        try:
            entries = sorted(os.listdir(base or "."))
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
            if group not in text:  # most distributions name no memdiag plugin: skip their lines
                continue
            dist = entry.rsplit(".", 1)[0]
            dist_name, _, version = dist.partition("-")
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
                        found.append((name, value, version, dist_name))
    return found


def import_module(name: str) -> Any:
    """``importlib.import_module(name)``, without importing importlib and warnings with it
    (~0.5 ms of every run); a relative name still goes to importlib, for its error."""
    if name.startswith("."):
        import importlib

        return importlib.import_module(name)
    __import__(name)
    return sys.modules[name]


def _load_object(value: str) -> Any:
    module_name, _, attr = value.partition(":")
    obj = import_module(module_name.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


def _load_file(path: str) -> Any:
    import importlib.util  # with contextlib: ~1 ms that only plugin folders need

    name = "memdiag_local_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up here
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- loading ----------------------------------------------------------------------------------

def load(
    *,
    plugins_dirs: list[str] | None = None,
    blocked: set[str] | frozenset[str] = frozenset(),
    allow: set[str] | None = None,
    strict: bool = False,
    autoload: bool = True,
    extra: "list[tuple[str, Any]] | tuple[tuple[str, Any], ...]" = (),
) -> Registry:
    """Load built-in and third-party plugins and collect what they register.

    ``allow`` (from ``MEMDIAG_PLUGINS``) limits third-party plugins to those names; ``blocked``
    (from ``-p no:NAME``) removes plugins, built-ins included. ``autoload=False`` skips entry
    points (tests use it to see only the built-ins). ``extra``: (name, plugin object) pairs
    handed over by an embedding program (memdiag.api), loaded after the entry points.
    """
    pm = None  # pluggy's plugin manager, for third-party plugins only
    reg = Registry()
    loaded: list[tuple[PluginInfo, Any, list[tuple[str, Callable]]]] = []
    matched: set[str] = set()

    def manager():
        nonlocal pm
        if pm is None:
            pm = _plugin_manager()
        return pm

    def fail(info: PluginInfo, message: str, exc: BaseException | None = None) -> None:
        info.error = message
        if strict:
            raise UsageError(f"plugin {info.name} ({info.origin}) failed: {message}") from exc

    def add(info: PluginInfo, obtain: Callable[[], Any], *, third_party: bool) -> None:
        reg.plugins.append(info)
        if info.name in blocked or info.target in blocked:
            matched.update({info.name, info.target})
            info.skipped = f"blocked by -p no:{info.name}"
            return
        if third_party and allow is not None and info.name not in allow:
            info.skipped = "not in MEMDIAG_PLUGINS"
            return
        started = time.perf_counter()
        try:
            plugin = obtain()
            if third_party:
                manager().register(plugin, name=info.name)
            else:
                hooks = _builtin_hooks(plugin)
        except Exception as exc:  # a broken plugin is reported, never fatal unless strict
            fail(info, _one_line(exc), exc)
            return
        finally:
            info.load_seconds = time.perf_counter() - started
        info.version = info.version or str(getattr(plugin, "__version__", "") or "")
        if third_party:
            callers = pm.get_hookcallers(plugin) or []
            info.hooks = sorted(h.name for h in callers)
            unknown = [h.name for h in callers if not h.has_spec()]
            if unknown:
                import difflib

                pm.unregister(plugin)
                hint = difflib.get_close_matches(unknown[0], list(HOOK_TARGETS), n=1)
                fail(info, f"implements {unknown[0]}, which is not a memdiag hook"
                           + (f" (did you mean {hint[0]}?)" if hint else ""))
                return
            hooks = [(caller.name, impl.function) for caller in callers
                     for impl in caller.get_hookimpls() if impl.plugin is plugin]
        else:
            info.hooks = sorted(name for name, _ in hooks)
        loaded.append((info, plugin, hooks))

    from memdiag import __version__

    reg._strict = strict
    for modname in BUILTIN_PLUGINS:
        info = PluginInfo(modname.rsplit(".", 1)[1], "builtin", __version__, modname)
        if modname in DEFERRED and info.name not in blocked and modname not in blocked:
            _defer(reg, info)
            continue
        add(info, lambda m=modname: import_module(m), third_party=False)
    if autoload:
        for name, value, version, dist in _entry_points(ENTRY_POINT_GROUP):
            add(PluginInfo(name, "entry point", version, value, dist), lambda v=value: _load_object(v),
                third_party=True)
    for name, obj in extra:
        add(PluginInfo(name, "api", target=name), lambda o=obj: o, third_party=True)
    for folder in plugins_dirs or ():
        try:
            files = sorted(f for f in os.listdir(folder) if f.endswith(".py") and not f.startswith("_"))
        except OSError:
            continue
        for fname in files:
            path = os.path.join(folder, fname)
            add(PluginInfo(fname[:-3], path, target=path), lambda p=path: _load_file(p), third_party=True)

    reg.unknown_blocked = sorted(b for b in blocked if b not in matched)
    _collect(pm, reg, loaded, fail)
    return reg


def _defer(reg: Registry, info: PluginInfo) -> None:
    """Register deferred built-in ``info`` by its names alone (see DEFERRED)."""
    provides = DEFERRED[info.target]
    info.hooks = sorted(hook for hook, kind in HOOK_TARGETS.items() if kind in provides)
    info.provides = {kind: list(names) for kind, names in provides.items()}
    reg.plugins.append(info)
    reg._deferred[info.target] = info
    for kind, names in provides.items():
        for name in names:
            dict.__setitem__(getattr(reg, kind), name, _Pending(info.target))


def _plugin_manager() -> Any:
    """pluggy's plugin manager with memdiag's hooks; memdiag's markers (hookspecs.MarkerOptions)
    completed into pluggy's options by pluggy's own markers."""
    import pluggy

    def complete(opts: Any, marker: Any, attribute: str) -> Any:
        if not isinstance(opts, hookspecs.MarkerOptions):
            return opts  # marked with pluggy's marker directly: already complete

        def probe() -> None:
            pass

        marker(**opts)(probe)
        return getattr(probe, attribute)

    class Manager(pluggy.PluginManager):
        def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
            return complete(super().parse_hookimpl_opts(plugin, name),
                            pluggy.HookimplMarker(hookspecs.PROJECT), hookspecs.hookimpl.attribute)

        def parse_hookspec_opts(self, module_or_class: Any, name: str) -> Any:
            return complete(super().parse_hookspec_opts(module_or_class, name),
                            pluggy.HookspecMarker(hookspecs.PROJECT), hookspecs.hookspec.attribute)

    pm = Manager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def _builtin_hooks(module: Any) -> list[tuple[str, Callable]]:
    """A built-in plugin's hook implementations: its functions named after a hook and marked
    ``@hookimpl`` (an attribute on the function, as pluggy's marker sets)."""
    marker = hookspecs.hookimpl.attribute
    found = []
    for hook in HOOK_TARGETS:
        function = vars(module).get(hook)
        if function is not None and getattr(function, marker, None) is not None:
            found.append((hook, function))
    return found


class _Invalid(Exception):
    """A registration that is not what the hook expects."""


def _stage(hook: str, staged: list[tuple[str, Any]]) -> Callable[..., None]:
    """The ``register`` callback for ``hook``: checks each registration and stages it."""

    def callable_(what: str, value: Any) -> None:
        if not callable(value):
            raise _Invalid(f"{hook}: {what} is not callable")

    def name(value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise _Invalid(f"{hook}: the name must be a non-empty string, not {value!r}")
        return value

    if hook == "memdiag_fact_sources":
        def register(source: Any) -> None:
            if not isinstance(getattr(source, "name", None), str) or not callable(getattr(source, "collect", None)):
                raise _Invalid(f"{hook}: {source!r} is not a fact source (needs a name and collect())")
            staged.append(("sources", source))
    elif hook == "memdiag_rule_packs":
        def register(path: Any) -> None:
            path = os.fspath(path)
            if not os.path.exists(path):
                raise _Invalid(f"{hook}: no such rule file or folder: {path}")
            staged.append(("rule_packs", path))
    elif hook in ("memdiag_sinks", "memdiag_report_formats", "memdiag_inputs"):
        def register(key: Any, func: Any) -> None:
            callable_(repr(key), func)
            staged.append((HOOK_TARGETS[hook], (name(key), func)))
    else:  # memdiag_commands
        def register(key: Any, help: str, configure: Callable, run: Callable) -> None:
            callable_("configure", configure)
            callable_("run", run)
            staged.append(("commands", (name(key), (str(help), configure, run))))
    return register


def _collect(pm: Any, reg: Registry, loaded: list[tuple[PluginInfo, Any, list[tuple[str, Callable]]]],
             fail: Callable[..., None]) -> None:
    """Ask each plugin for its registrations, all hooks at once, and commit them only if every
    hook succeeded and no name clashes with one registered before."""
    from memdiag.cli import BUILTIN_COMMANDS

    taken: dict[str, dict[str, str]] = {k: {} for k in ("sources", "sinks", "formats", "inputs", "commands")}
    for command in BUILTIN_COMMANDS:
        taken["commands"][command] = "memdiag itself"
    for info in reg._deferred.values():
        for kind, names in info.provides.items():
            taken[kind].update(dict.fromkeys(names, info.name))
    for info, plugin, hooks in loaded:
        try:
            staged = _registrations(hooks)
            clash = _clash(staged, taken)
            if clash:
                raise _Invalid(clash)
        except Exception as exc:
            if info.origin != "builtin":
                pm.unregister(plugin)
            fail(info, str(exc), exc)
            continue
        for kind, value in staged:
            key = _key(kind, value)
            info.provides.setdefault(kind, []).append(key)
            if kind in taken:
                taken[kind][key] = info.name
            if kind == "sources":
                reg.sources.append(value)
            elif kind == "rule_packs":
                reg.rule_packs.append((value, info.name))
            elif kind == "inputs":
                reg.inputs.append(value)
            else:
                getattr(reg, kind)[value[0]] = value[1]


def _registrations(hooks: list[tuple[str, Callable]]) -> list[tuple[str, Any]]:
    """What a plugin's hook functions register, as (kind, value), checked (:func:`_stage`).
    Raises _Invalid, naming the hook when one raised."""
    staged: list[tuple[str, Any]] = []
    for hook, function in hooks:
        try:
            function(register=_stage(hook, staged))
        except _Invalid:
            raise
        except Exception as exc:
            raise _Invalid(f"{hook} raised {_one_line(exc)}") from exc
    return staged


def _key(kind: str, value: Any) -> str:
    if kind == "sources":
        return value.name
    if kind == "rule_packs":
        return value
    return value[0]


def _clash(staged: list[tuple[str, Any]], taken: dict[str, dict[str, str]]) -> str:
    mine: set[tuple[str, str]] = set()
    for kind, value in staged:
        if kind not in taken:
            continue
        key = _key(kind, value)
        owner = taken[kind].get(key) or ("this plugin, twice" if (kind, key) in mine else None)
        if owner:
            what = {"sources": "fact source", "sinks": "sink type", "formats": "report format",
                    "inputs": "input opener", "commands": "command"}[kind]
            return f"{what} '{key}' is already registered by {owner}"
        mine.add((kind, key))
    return ""
