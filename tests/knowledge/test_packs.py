"""The knowledge-base rule packs: enough conditions, grouped by tag, every fact name known."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from memdiag import pipeline, ruleset, ruletest

RULES = Path(__file__).resolve().parent.parent.parent / "rules"
PACKS = sorted(p for p in RULES.glob("*.yaml") if p.name != "core.yaml")


def load(registry):
    return ruleset.load([(str(p), "test") for p in PACKS], pipeline.catalog(registry), use_cache=False)


def test_at_least_thirty_conditions_grouped_by_tag(registry):
    rs = load(registry)
    assert len(rs.rules) >= 30
    tags = Counter(t for r in rs.rules for t in r.tags)
    for family in ("balloon", "zfs", "slab", "shmem", "hugepages", "kernel", "overcommit", "exhaustion",
                   "cgroup", "zram", "gpu", "sanity"):
        assert tags[family] >= 1, family


def test_no_problems_and_no_unknown_fact_names(registry):
    rs = load(registry)
    assert [str(p) for p in rs.problems] == []  # unknown facts would be warnings with a did-you-mean


def test_own_tests_pass_both_ways(registry):
    rs = load(registry)
    assert ruletest.coverage_gaps(rs.rules) == []
    failed = [f"{o.rule_id}: {o.name}: {o.detail}" for o in ruletest.run_all(rs.rules, registry) if not o.ok]
    assert failed == []


def test_remediation_and_references(registry):
    for rule in load(registry).rules:
        assert rule.remediation.get("confirm", "").strip(), rule.id
        assert rule.references, rule.id
        assert all(ref["url"].startswith("https://") for ref in rule.references), rule.id


def test_sanity_rules_never_alarm(registry):
    for rule in load(registry).rules:
        if "sanity" in rule.tags:
            assert [level for level, _ in rule.severity.steps] == ["info"], rule.id
