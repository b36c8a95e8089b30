"""memdiag rules' own tests as pytest items: ``pytest --memdiag-rules rules/``.

Registered through the ``pytest11`` entry point, so every pytest run in an environment with
memdiag installed imports this module: it imports nothing of memdiag's at the top and does
nothing unless rule paths are given (``--memdiag-rules PATH``, repeatable, or the ini option
``memdiag_rules``). Then each rule file under those paths is collected, each rule becomes a
collector and each of its tests an item, run with the same logic as ``memdiag rules test``::

    rules/core.yaml::vmware-balloon::fires on the founding case

A failing test says which rule and test, what was expected and what came out, and the values
of the facts its condition read. A rule file that does not load becomes one failing item naming
the problem (file:line), never a crash of the whole run; warnings (an unknown fact name, say)
become pytest warnings. Rule paths are collected in addition to the usual test paths.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest

if TYPE_CHECKING:
    from memdiag.registry import Registry
    from memdiag.ruleset import Rule
    from memdiag.ruletest import TestOutcome

_ROOTS = pytest.StashKey[list[Path]]()
_RULE_SUFFIXES = (".yaml", ".yml")


class MemdiagRuleWarning(pytest.PytestWarning):
    """A rule file loads, but something in it deserves a look (``memdiag rules validate``)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("memdiag", "memdiag rule tests")
    group.addoption("--memdiag-rules", action="append", default=[], metavar="PATH", dest="memdiag_rules",
                    help="run the tests of the memdiag rules in PATH (a rule file or a folder of them); repeatable")
    parser.addini("memdiag_rules", type="paths", default=[],
                  help="memdiag rule files or folders whose tests to run (like --memdiag-rules)")


def pytest_configure(config: pytest.Config) -> None:
    base = config.invocation_params.dir
    given = [(base / p).resolve() for p in config.getoption("memdiag_rules") or ()]
    given += [Path(p).resolve() for p in config.getini("memdiag_rules") or ()]
    roots = list(dict.fromkeys(given))
    if not roots:
        return
    config.stash[_ROOTS] = roots
    # Rule folders need not be among the test paths: collect them too, unless an argument
    # already covers them (collecting a path twice would run its tests twice).
    covered = [(base / arg.split("::")[0]).resolve() for arg in config.args]
    for root in roots:
        if not any(root == c or c in root.parents for c in covered):
            config.args.append(str(root))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    roots = parent.config.stash.get(_ROOTS, None)
    if not roots or file_path.suffix not in _RULE_SUFFIXES:
        return None
    path = file_path.resolve()
    if not any(path == r or r in path.parents for r in roots):
        return None
    return RuleFile.from_parent(parent, path=file_path)


def _registry() -> "Registry":
    """memdiag's plugins (their facts and inputs), loaded once per process."""
    from memdiag import pipeline

    return pipeline.load_registry()


# -- collection --------------------------------------------------------------------------------

class RuleFile(pytest.File):
    """A rule file: one collector per rule, and one failing item per problem that kept a rule
    (or the whole file) out."""

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        from memdiag import ruleset

        path = os.path.relpath(self.path)  # problems and origins read as the author wrote the path
        if path.startswith(os.pardir):
            path = str(self.path)
        rs = ruleset.load([(path, "--rules")], _registry().catalog)
        by_rule: dict[str, list[str]] = {}
        for problem in rs.problems:
            if problem.level != "error":
                self.warn(MemdiagRuleWarning(str(problem)))
            elif problem.rule_id and problem.rule_id in rs.broken and rs.get(problem.rule_id) is None:
                by_rule.setdefault(problem.rule_id, []).append(str(problem))
            else:
                by_rule.setdefault("", []).append(str(problem))
        for name, problems in by_rule.items():
            yield RuleFileProblem.from_parent(self, name=name or "rule file", problems=problems)
        for rule in rs.rules:
            yield RuleCollector.from_parent(self, name=rule.id, rule=rule)


class RuleCollector(pytest.Collector):
    """One rule; its tests are the items."""

    def __init__(self, *, rule: "Rule", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rule = rule

    def collect(self) -> Iterator[pytest.Item]:
        for i, test in enumerate(self.rule.tests):
            yield RuleTestItem.from_parent(self, name=str(test.get("name") or f"test {i + 1}"), rule=self.rule,
                                           test=test)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None if self.rule.line is None else self.rule.line - 1, f"rule {self.rule.id}"


class RuleTestFailed(Exception):
    def __init__(self, outcome: "TestOutcome") -> None:
        super().__init__(outcome.detail)
        self.outcome = outcome


class RuleTestItem(pytest.Item):
    """One test of one rule, as ``memdiag rules test`` runs it."""

    def __init__(self, *, rule: "Rule", test: dict, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rule = rule
        self.test = test

    def runtest(self) -> None:
        from memdiag import ruletest

        outcome = ruletest.run_test(self.rule, self.test, _registry())
        if not outcome.ok:
            raise RuleTestFailed(outcome)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, RuleTestFailed):
            return explain_failure(self.rule, self.test, excinfo.value.outcome)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None if self.rule.line is None else self.rule.line - 1, f"{self.rule.id}: {self.name}"


class RuleFileInvalid(Exception):
    pass


class RuleFileProblem(pytest.Item):
    """A rule file (or one rule in it) that could not be loaded: fails with the problems."""

    def __init__(self, *, problems: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.problems = problems

    def runtest(self) -> None:
        raise RuleFileInvalid("\n".join(self.problems))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, RuleFileInvalid):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"rule file {os.path.basename(self.path)}" if self.name == "rule file" \
            else f"rule {self.name}"


# -- failure output ----------------------------------------------------------------------------

def _expected(expect: dict) -> str:
    parts = [f"state {expect.get('state')}"]
    for key in ("severity", "confidence"):
        if key in expect:
            parts.append(f"{key} {expect[key]}")
    parts += [f"message containing {text!r}" for text in expect.get("message_contains", ())]
    if "missing" in expect:
        parts.append(f"missing {sorted(expect['missing'])}")
    return ", ".join(parts)


def explain_failure(rule: "Rule", test: dict, outcome: "TestOutcome") -> str:
    """Which rule and test, expected vs got, and the facts (and params) its condition read."""
    lines = [f"memdiag rule {rule.id} ({rule.where}), test {outcome.name!r}",
             f"  expected: {_expected(test.get('expect') or {})}"]
    try:
        got, decided = _replay(rule, test)
    except Exception as exc:  # the test could not even run: the outcome says why
        got, decided = f"(could not run: {type(exc).__name__}: {exc})", []
    lines.append(f"  got:      {got}")
    lines.append(f"  problem:  {outcome.detail}")
    if decided:
        lines.append("  the condition read:")
        lines += [f"    {name} = {value}" for name, value in decided]
    lines.append(f"  condition: {' '.join(rule.condition.text.split())}")
    return "\n".join(lines)


def _replay(rule: "Rule", test: dict) -> tuple[str, list[tuple[str, str]]]:
    """Evaluate the test again, for the report: what came out and the values the condition read.
    Mirrors memdiag.ruletest (the test's params apply for the duration)."""
    from memdiag import engine, ruletest
    from memdiag.facts import UNKNOWN
    from memdiag.ruleset import param_value

    reg = _registry()
    facts = ruletest.facts_for(test, rule, reg)
    previous = ruletest.factset(test["previous"], reg, "previous") if "previous" in test else None
    saved = dict(rule.params)
    rule.params.update({k: param_value(v) for k, v in (test.get("params") or {}).items()})
    try:
        result = engine.evaluate(rule, facts, host=ruletest.TEST_HOST, now=ruletest.TEST_TIME, previous=previous,
                                 elapsed_hours=test.get("elapsed_hours"))
        env = engine.FactEnv(facts, rule.params, previous, test.get("elapsed_hours"))
        decided = []
        for name in sorted(rule.condition.names):
            value = env.lookup(name)
            spec = None if name.startswith("params.") else facts.catalog.get(name)
            shown = "unknown (missing)" if value is UNKNOWN else engine.display(value, spec.type if spec else None)
            if spec is not None and spec.type == "bytes" and value is not UNKNOWN:
                shown += f" ({value} bytes)"
            decided.append((name, shown))
    finally:
        rule.params.clear()
        rule.params.update(saved)
    got = f"state {result.state}"
    if result.finding:
        got += f", severity {result.finding['severity']}, confidence {result.finding['confidence']}"
        got += f", message {result.finding['message']!r}"
    elif result.reason:
        got += f" ({result.reason})"
    return got, decided
