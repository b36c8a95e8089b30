"""The bundled rule packs: valid, tested both ways, and readable at a terminal."""

from __future__ import annotations

import pytest

from memdiag import pipeline, ruletest


@pytest.fixture(scope="module")
def bundled(registry):
    rs = pipeline.load_rules(registry, use_cache=False)
    return rs


def test_bundled_rules_load_without_problems(bundled):
    assert bundled.rules
    assert [str(p) for p in bundled.problems] == []


def test_every_bundled_rule_has_firing_and_non_firing_tests(bundled):
    assert ruletest.coverage_gaps(bundled.rules) == []


def test_every_bundled_rule_test_passes(bundled, registry):
    failed = [f"{o.rule_id}: {o.name}: {o.detail}" for o in ruletest.run_all(bundled.rules, registry) if not o.ok]
    assert failed == []


def test_remediation_names_a_command_that_fits_a_terminal(bundled):
    for rule in bundled.rules:
        confirm = rule.remediation.get("confirm", "")
        assert confirm.strip(), f"{rule.where}: rule {rule.id} names no confirming command"
        for line in confirm.splitlines():
            assert len(line) <= 76, f"{rule.where}: rule {rule.id}: confirm line longer than 76 columns"


def test_every_bundled_rule_is_tagged_and_referenced(bundled):
    for rule in bundled.rules:
        assert rule.tags, rule.id
        if "inputs" not in rule.tags:
            assert rule.references, f"{rule.where}: rule {rule.id} has no references"
