"""Running rules' own tests (``memdiag rules test``), promtool-style: data in, expected state out.

A rule author never needs pytest: each test gives facts (or raw inputs run through the real
sources, or a captured folder) and the state, severity, confidence and message it expects.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
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
    seconds: float = 0.0
    path: str = ""
    line: int | None = None


def factset(values: dict[str, Any], registry: Registry, origin: str) -> FactSet:
    """A test's given facts (``facts:`` or ``previous:``), numbers in the units params accept."""
    out = FactSet(registry.catalog)
    for name, value in values.items():
        spec = out.catalog.get(name)
        if spec is not None and spec.type in ("bytes", "count", "number", "seconds", "ratio"):
            value = param_value(value)
        out.set(name, value, origin)
    return out


def facts_for(test: dict, rule: Rule, registry: Registry) -> FactSet:
    """The facts a rule test runs on: its ``facts``, or its ``input`` files or ``fixture`` read by
    every source (the pytest plugin replays a failed test through this too)."""
    if "facts" in test:
        return factset(test["facts"], registry, f"test {test['name']!r}")
    if "input" in test:
        with tempfile.TemporaryDirectory(prefix="memdiag-ruletest-") as tmp:
            overlay = {k: Captured(v, f"{rule.path}: test {test['name']!r}: {k}") for k, v in test["input"].items()}
            ev = Evidence(tmp, kind="folder", overlay=overlay, label="rule test input")
            return sources.collect(registry.sources, ev, deadline=Deadline(10), catalog=registry.catalog)
    if "fixture" in test:
        from memdiag.pipeline import open_input

        path = os.path.join(os.path.dirname(rule.path), test["fixture"])
        with tempfile.TemporaryDirectory(prefix="memdiag-ruletest-") as tmp:
            ev = open_input(path, registry, tmp)
            return sources.collect(registry.sources, ev, deadline=Deadline(10), catalog=registry.catalog)
    return factset({}, registry, "test")


def run_test(rule: Rule, test: dict, registry: Registry) -> TestOutcome:
    started = time.perf_counter()
    outcome = _run_test(rule, test, registry)
    outcome.seconds = time.perf_counter() - started
    outcome.path, outcome.line = rule.path, rule.line
    return outcome


def _run_test(rule: Rule, test: dict, registry: Registry) -> TestOutcome:
    name = test.get("name", "?")
    try:
        facts = facts_for(test, rule, registry)
        previous = factset(test["previous"], registry, "previous") if "previous" in test else None
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


@dataclass
class Gap:
    """A rule without a firing test, a non-firing test, or either."""

    rule_id: str
    where: str
    lacks: list[str] = field(default_factory=list)  # "firing", "non-firing"
    path: str = ""
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.where}: rule {self.rule_id} has no {' and no '.join(self.lacks)} test"


def coverage(rules: list[Rule]) -> list[Gap]:
    """Rules without both a firing and a non-firing (passed, skipped or error) test."""
    gaps = []
    for rule in rules:
        states = {t["expect"]["state"] for t in rule.tests}
        lacks = [w for w, ok in (("firing", "fired" in states), ("non-firing", bool(states - {"fired"}))) if not ok]
        if lacks:
            gaps.append(Gap(rule.id, rule.where, lacks, rule.path, rule.line))
    return gaps


def coverage_gaps(rules: list[Rule]) -> list[str]:
    return [str(g) for g in coverage(rules)]


def junit_xml(outcomes: list[TestOutcome], gaps: list[Gap], problems: list, *, warn_as_error: bool) -> str:
    """JUnit XML for CI: one test suite per rule file, one test case per rule test, plus a case
    for each rule lacking test coverage (skipped, or failed under --warn-as-error) and for each
    rule-file problem (errors fail; warnings are skipped unless --warn-as-error)."""
    import xml.etree.ElementTree as ET

    suites: dict[str, list[ET.Element]] = {}

    def case(path: str, classname: str, name: str, seconds: float = 0.0, line: int | None = None) -> ET.Element:
        el = ET.Element("testcase", classname=classname, name=name, time=f"{seconds:.6f}", file=path)
        if line is not None:
            el.set("line", str(line))
        suites.setdefault(path, []).append(el)
        return el

    for o in outcomes:
        el = case(o.path or o.where, o.rule_id, o.name, o.seconds, o.line)
        if not o.ok:
            ET.SubElement(el, "failure", message=o.detail, type="expectation").text = f"{o.where}: {o.detail}"
    for g in gaps:
        el = case(g.path or g.where, g.rule_id, "coverage: a firing and a non-firing test", line=g.line)
        ET.SubElement(el, "failure" if warn_as_error else "skipped", message=str(g))
    for p in problems:
        el = case(p.path, p.rule_id or "(file)", f"rule file: {p.message}"[:200], line=p.line)
        failing = p.level == "error" or warn_as_error
        ET.SubElement(el, "failure" if failing else "skipped", message=str(p), type=p.level)
    root = ET.Element("testsuites", name="memdiag rules test")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for path, cases in suites.items():
        failures = sum(c.find("failure") is not None for c in cases)
        skipped = sum(c.find("skipped") is not None for c in cases)
        seconds = sum(float(c.get("time", "0")) for c in cases)
        suite = ET.SubElement(root, "testsuite", name=path, tests=str(len(cases)), failures=str(failures),
                              errors="0", skipped=str(skipped), time=f"{seconds:.6f}")
        suite.extend(cases)
        totals["tests"] += len(cases)
        totals["failures"] += failures
        totals["skipped"] += skipped
    for k, v in totals.items():
        root.set(k, str(v))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
