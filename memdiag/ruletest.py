"""Running rules' own tests (``memdiag rules test``), promtool-style: data in, expected state out.

A rule author never needs pytest: each test gives facts (or raw inputs run through the real
sources, or a captured folder) and the state, severity, confidence and message it expects.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Any

from memdiag import engine, sources
from memdiag.bounded import Deadline
from memdiag.evidence import Captured, Evidence
from memdiag.facts import FactSet
from memdiag.registry import Registry
from memdiag.ruleset import Rule, param_value

TEST_HOST = "test-host"
TEST_TIME = "2026-01-01T00:00:00Z"


@dataclass
class TestOutcome:
    rule_id: str
    name: str
    ok: bool
    detail: str = ""
    where: str = ""


def _factset(values: dict[str, Any], registry: Registry, origin: str) -> FactSet:
    out = FactSet(sources.build_catalog(registry.sources))
    for name, value in values.items():
        spec = out.catalog.get(name)
        if spec is not None and spec.type in ("bytes", "count", "number", "seconds", "ratio"):
            value = param_value(value)
        out.set(name, value, origin)
    return out


def _facts_for(test: dict, rule: Rule, registry: Registry) -> FactSet:
    if "facts" in test:
        return _factset(test["facts"], registry, f"test {test['name']!r}")
    if "input" in test:
        with tempfile.TemporaryDirectory(prefix="memdiag-ruletest-") as tmp:
            overlay = {k: Captured(v, f"{rule.path}: test {test['name']!r}: {k}") for k, v in test["input"].items()}
            ev = Evidence(tmp, kind="folder", overlay=overlay, label="rule test input")
            return sources.collect(registry.sources, ev, deadline=Deadline(10))
    if "fixture" in test:
        from memdiag.pipeline import open_input

        path = os.path.join(os.path.dirname(rule.path), test["fixture"])
        with tempfile.TemporaryDirectory(prefix="memdiag-ruletest-") as tmp:
            ev = open_input(path, registry, tmp)
            return sources.collect(registry.sources, ev, deadline=Deadline(10))
    return _factset({}, registry, "test")


def run_test(rule: Rule, test: dict, registry: Registry) -> TestOutcome:
    name = test.get("name", "?")
    try:
        facts = _facts_for(test, rule, registry)
        previous = _factset(test["previous"], registry, "previous") if "previous" in test else None
        saved = dict(rule.params)
        rule.params.update({k: param_value(v) for k, v in (test.get("params") or {}).items()})
        try:
            result = engine.evaluate(rule, facts, host=TEST_HOST, now=TEST_TIME, previous=previous,
                                     elapsed_hours=test.get("elapsed_hours"))
        finally:
            rule.params.clear()
            rule.params.update(saved)
    except Exception as exc:  # a broken test is a failed test, never a crash
        return TestOutcome(rule.id, name, False, f"could not run: {type(exc).__name__}: {exc}", rule.where)
    return _compare(rule, name, test["expect"], result)


def _compare(rule: Rule, name: str, expect: dict, result: engine.RuleResult) -> TestOutcome:
    problems = []
    if result.state != expect["state"]:
        why = f" ({result.reason})" if result.reason else ""
        problems.append(f"expected {expect['state']}, got {result.state}{why}")
    finding = result.finding or {}
    for key in ("severity", "confidence"):
        if key in expect and finding.get(key) != expect[key]:
            problems.append(f"expected {key} {expect[key]}, got {finding.get(key, 'none')}")
    for text in expect.get("message_contains", []):
        if text not in finding.get("message", ""):
            problems.append(f"message lacks {text!r}: {finding.get('message', '(no finding)')!r}")
    if "missing" in expect and sorted(expect["missing"]) != sorted(result.missing):
        problems.append(f"expected missing {sorted(expect['missing'])}, got {sorted(result.missing)}")
    return TestOutcome(rule.id, name, not problems, "; ".join(problems), rule.where)


def run_all(rules: list[Rule], registry: Registry) -> list[TestOutcome]:
    return [run_test(rule, test, registry) for rule in rules for test in rule.tests]


def coverage_gaps(rules: list[Rule]) -> list[str]:
    """Rules without both a firing and a non-firing test."""
    gaps = []
    for rule in rules:
        states = {t["expect"]["state"] for t in rule.tests}
        lacks = [w for w, ok in (("firing", "fired" in states), ("non-firing", bool(states - {"fired"}))) if not ok]
        if lacks:
            gaps.append(f"{rule.where}: rule {rule.id} has no {' and no '.join(lacks)} test")
    return gaps
