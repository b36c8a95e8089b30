"""One diagnosis, end to end: plugins -> evidence -> facts -> rules -> findings document.

The CLI, the Python API (:mod:`memdiag.api`), the check and fleet commands and plugins all go
through these functions, so a live run, a capture, a sosreport and pasted text are diagnosed by
exactly the same code.

Thread safety: a :class:`~memdiag.registry.Registry` is only read once loaded (its catalog is
built before it is handed out), rule sets, evidence and fact sets are made per diagnosis, so
any number of diagnoses may run at once in one process. :func:`load_registry` loads each
distinct plugin selection once per process, under a lock.
"""

from __future__ import annotations

import _thread  # threading's locks without its ~1 ms import
import os

from memdiag import document, engine, ruleset, sources
from memdiag.bounded import Deadline
from memdiag.engine import RuleResult
from memdiag.errors import InputError, UsageError
from memdiag.evidence import Evidence, live
from memdiag.facts import Catalog, FactSet, _Record
from memdiag.registry import Registry
from memdiag.ruleset import RuleSet

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Any, Callable, Hashable, Iterable, Sequence

#: Overall time a diagnosis may take before sources are abandoned (seconds).
DEFAULT_TIMEOUT = 20.0

#: Label of evidence given as a string of pasted command output (what reports and origins show).
PASTED_LABEL = "pasted text"


class Diagnosis(_Record):
    """One diagnosis: the evidence read, its facts, every rule's result and the findings document."""

    __slots__ = _FIELDS = ("evidence", "facts", "results", "document")

    def __init__(self, evidence: Evidence, facts: FactSet, results: list[RuleResult], document: dict) -> None:
        self.evidence = evidence
        self.facts = facts
        self.results = results
        self.document = document

    @property
    def exit_code(self) -> int:
        return document.exit_code(self.document)


# -- plugins ----------------------------------------------------------------------------------

_registries: dict[Hashable, tuple[tuple[object, ...], Registry]] = {}
_registries_lock = _thread.allocate_lock()


def load_registry(*, dirs: Sequence[str] = (), blocked: Iterable[str] = (), allow: Iterable[str] | None = None,
                  strict: bool = False, autoload: bool = True, extra: Sequence[tuple[str, object]] = (),
                  cached: bool = True) -> Registry:
    """The plugins of a diagnosis: built-ins, then entry points (``autoload``), then ``extra``
    (name, plugin object) pairs, then loose files in ``dirs``; ``blocked`` names removed, third
    parties limited to ``allow`` when given.

    ``cached``: one registry per distinct selection per process, loaded once even when several
    threads ask at the same time (plugin files are read when first loaded, not again). The CLI,
    which loads once per process anyway, asks for a fresh one."""
    objects = tuple(obj for _, obj in extra)
    key = (tuple(dirs), frozenset(blocked), None if allow is None else frozenset(allow), strict, autoload,
           tuple((name, id(obj)) for name, obj in extra))  # objects by identity: they need not be hashable
    if not cached:
        return _load_registry(key, extra)
    with _registries_lock:
        hit = _registries.get(key)
        if hit is None:
            # the objects stay referenced with their registry, so their ids are never reused
            hit = _registries[key] = (objects, _load_registry(key, extra))
        return hit[1]


def _load_registry(key: tuple, extra: Sequence[tuple[str, object]]) -> Registry:
    from memdiag import registry

    dirs, blocked, allow, strict, autoload, _ = key
    reg = registry.load(plugins_dirs=list(dirs), blocked=set(blocked), allow=None if allow is None else set(allow),
                        strict=strict, autoload=autoload, extra=list(extra))
    reg.catalog  # noqa: B018 - built now, before the registry is shared, never lazily by two threads
    return reg


def plugin_notes(reg: Registry) -> list[str]:
    """One line per plugin that could not be loaded and per ``-p no:NAME`` that matched nothing."""
    notes = [f"plugin {info.name} ({info.origin}) skipped: {info.error}" for info in reg.errors]
    notes += [f"-p no:{name}: no plugin is named {name}" for name in reg.unknown_blocked]
    return notes


def catalog(registry: Registry) -> Catalog:
    return registry.catalog


# -- rules ------------------------------------------------------------------------------------

def load_rules(registry: Registry, extra_paths: Iterable[str] = (), params: dict[str, dict[str, Any]] | None = None,
               *, site_file: str | None = None, use_site: bool = True, use_cache: bool = True) -> RuleSet:
    """Every rule in force: bundled and plugin rule packs, then ``--rules`` paths (later ones may
    not redefine ids), tuned by the packs' ``overrides:`` sections, the site overrides file
    (``site_file``, else $MEMDIAG_OVERRIDES or /etc/memdiag/overrides.yaml; none unless
    ``use_site``) and last ``params`` from the command line.

    A new rule set every call: rules carry their params in force, so two diagnoses never share
    one (validated packs come from the on-disk cache, which keeps this cheap)."""
    packs = list(registry.rule_packs) + [(p, "--rules") for p in extra_paths]
    site = ruleset.find_site_file(site_file) if use_site else None
    return ruleset.load(packs, catalog(registry), overrides=params, use_cache=use_cache, site=site)


# -- evidence ---------------------------------------------------------------------------------

def open_input(path: str, registry: Registry, workdir: str | Callable[[], str]) -> Evidence:
    """Evidence for ``path``: the first input opener that recognises it wins.

    ``workdir`` may be a function that makes the work folder: it is called before the first
    opener not marked ``lazy_workdir`` (memdiag's own take the function and call it only when
    they write something), so a folder, read in place, needs no temporary folder."""
    if not os.path.exists(path):
        raise InputError("no such file or folder", path=path)
    for _name, opener in registry.inputs:
        if not isinstance(workdir, str) and not getattr(opener, "lazy_workdir", False):
            workdir = workdir()
        ev = opener(path, workdir)
        if ev is not None:
            return ev
    if os.path.isdir(path):
        return Evidence(path, kind="capture")
    raise InputError("not a capture, sosreport or recognised command output", path=path)


def open_text(text: str, registry: Registry, workdir: str, *, label: str = PASTED_LABEL) -> Evidence:
    """Evidence from pasted command output given as a string: written to a private file in
    ``workdir`` and read by the same recogniser as a pasted file, shown as ``label``."""
    from memdiag.plugins.inputs.loose import open_text_file

    path = os.path.join(workdir, "pasted.txt")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(text)
    return open_text_file(path, workdir, label=label)


def diagnose_source(source: str, *, registry: Registry, rules: RuleSet, live_root: bool = False,
                    text: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> Diagnosis:
    """Diagnose ``source``: the live host whose root is ``source`` (``live_root``), pasted
    ``text``, or an input path (capture, sosreport, archive, folder or file of command output).
    Archives are unpacked into a private folder that is gone when this returns (made only when
    something is written: pasted text, an archive; a folder is read in place); ``timeout``
    bounds reading the evidence, not unpacking it (which has limits of its own)."""
    if live_root:
        return diagnose(live(source), registry=registry, rules=rules, deadline=Deadline(timeout))
    made: list = []  # the TemporaryDirectory, once something needs it

    def workdir() -> str:
        if not made:
            import tempfile

            made.append(tempfile.TemporaryDirectory(prefix="memdiag-"))
        return made[0].name

    try:
        ev = open_text(text, registry, workdir()) if text is not None else open_input(source, registry, workdir)
        return diagnose(ev, registry=registry, rules=rules, deadline=Deadline(timeout))
    finally:
        if made:
            made[0].cleanup()


def diagnose(ev: Evidence, *, registry: Registry, rules: RuleSet, previous: FactSet | None = None,
             elapsed_hours: float | None = None, deadline: Deadline | None = None) -> Diagnosis:
    facts = sources.collect(registry.sources, ev, deadline=deadline or Deadline(DEFAULT_TIMEOUT),
                            catalog=registry.catalog)
    for origin, reason in ev.metadata.get("unrecognised", ()):
        facts.problem("input", reason, origin, "malformed")
    host = document.host_of(facts, ev)
    now = document.rfc3339()
    results = engine.run(rules, facts, host=host, now=now, previous=previous, elapsed_hours=elapsed_hours)
    doc = document.build(ev, facts, results, host=host, now=now)
    return Diagnosis(ev, facts, results, doc)


def diagnose_live(registry: Registry, rules: RuleSet, *, root: str = "/", timeout: float = DEFAULT_TIMEOUT) -> Diagnosis:
    return diagnose_source(root, registry=registry, rules=rules, live_root=True, timeout=timeout)


# -- reports ----------------------------------------------------------------------------------

def render(registry: Registry, doc: dict, format_name: str, *, color: bool = False, width: int = 80) -> str:
    """The report of ``doc`` in a registered format (text, json, markdown, html, nagios, ...)."""
    render_fn = registry.formats.get(format_name)
    if render_fn is None:
        raise UsageError(f"unknown format '{format_name}' (known: {', '.join(sorted(registry.formats))})")
    return render_fn(doc, {"color": color, "width": width})
