"""One diagnosis, end to end: evidence -> facts -> rules -> findings document.

The CLI, the check and fleet commands and plugins all go through these functions, so a live run,
a capture and a sosreport are diagnosed by exactly the same code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable

from memdiag import document, engine, ruleset, sources
from memdiag.bounded import Deadline
from memdiag.engine import RuleResult
from memdiag.errors import InputError
from memdiag.evidence import Evidence, live
from memdiag.facts import Catalog, FactSet
from memdiag.registry import Registry
from memdiag.ruleset import RuleSet

#: Overall time a diagnosis may take before sources are abandoned (seconds).
DEFAULT_TIMEOUT = 20.0


@dataclass
class Diagnosis:
    evidence: Evidence
    facts: FactSet
    results: list[RuleResult]
    document: dict

    @property
    def exit_code(self) -> int:
        return document.exit_code(self.document)


def catalog(registry: Registry) -> Catalog:
    return registry.catalog


def load_rules(registry: Registry, extra_paths: Iterable[str] = (), params: dict[str, dict[str, Any]] | None = None,
               *, site_file: str | None = None, use_site: bool = True, use_cache: bool = True) -> RuleSet:
    """Every rule in force: bundled and plugin rule packs, then ``--rules`` paths (later ones may
    not redefine ids), tuned by the packs' ``overrides:`` sections, the site overrides file
    (``site_file``, else $MEMDIAG_OVERRIDES or /etc/memdiag/overrides.yaml; none unless
    ``use_site``) and last ``params`` from the command line."""
    from memdiag.overrides import find_site_file

    packs = list(registry.rule_packs) + [(p, "--rules") for p in extra_paths]
    site = find_site_file(site_file) if use_site else None
    return ruleset.load(packs, catalog(registry), overrides=params, use_cache=use_cache, site=site)


def open_input(path: str, registry: Registry, workdir: str) -> Evidence:
    """Evidence for ``path``: the first input opener that recognises it wins."""
    if not os.path.exists(path):
        raise InputError("no such file or folder", path=path)
    for _name, opener in registry.inputs:
        ev = opener(path, workdir)
        if ev is not None:
            return ev
    if os.path.isdir(path):
        return Evidence(path, kind="capture")
    raise InputError("not a capture, sosreport or recognised command output", path=path)


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
    return diagnose(live(root), registry=registry, rules=rules, deadline=Deadline(timeout))
