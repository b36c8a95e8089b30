"""The rule caches: validated packs and the names of texts that compiled, so that a rule's
message, severity/confidence steps and discriminators compile only when it fires.

What must hold: the same findings and problems as a load without caches; a text not seen
before (a new or edited rule pack) is compiled, and its errors reported, at load; a record
from another compiler, a damaged record or a cache file someone else could write is not used.
"""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

from memdiag import engine, expr, ruleset
from memdiag.facts import FactSet
from memdiag.sources import build_catalog

RULES = """\
rules:
  - id: big
    title: Big host
    severity:
      - {level: critical, when: "meminfo.MemTotal > params.huge"}
      - {level: warning}
    confidence: likely
    params: {big: 1 GiB, huge: 64 GiB}
    condition: meminfo.MemTotal > params.big
    message: "MemTotal is {meminfo.MemTotal|bytes}, {severity}"
    discriminators: ["meminfo.MemTotal // params.big"]
    remediation: {steps: none needed}
"""


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "memdiag" / "rules"


def _load(registry, path, *, use_cache=True):
    return ruleset.load([(str(path), "test")], build_catalog(registry.sources), use_cache=use_cache)


def _fire(registry, rule):
    facts = FactSet(build_catalog(registry.sources))
    facts.set("meminfo.MemTotal", 8 << 30, "test")
    return engine.evaluate(rule, facts, host="h", now="t")


def _count_compiles(monkeypatch):
    calls = []
    real_expr, real_template = expr.compile_expr, expr.compile_template
    monkeypatch.setattr(ruleset, "compile_expr", lambda t: calls.append(t) or real_expr(t))
    monkeypatch.setattr(ruleset, "compile_template", lambda t: calls.append(t) or real_template(t))
    return calls


def test_second_load_compiles_only_conditions_and_fires_the_same(tmp_path, registry, cache, monkeypatch):
    path = tmp_path / "r.yaml"
    path.write_text(RULES)
    first = _load(registry, path)
    assert [c.name for c in cache.glob("compiled-*.json")]
    calls = _count_compiles(monkeypatch)
    second = _load(registry, path)
    assert calls == ["meminfo.MemTotal > params.big"]  # the condition; the rest is deferred
    a, b = _fire(registry, first.get("big")), _fire(registry, second.get("big"))
    assert a.state == b.state == "fired"
    assert a.finding == b.finding
    assert b.finding["message"] == "MemTotal is 8.00 GiB, warning"
    rule = second.get("big")
    assert rule.message.names == {"meminfo.MemTotal", "severity"}
    assert rule.severity.steps[0][1].names == {"meminfo.MemTotal", "params.huge"}
    assert second.problems == first.problems == []


def test_without_the_cache_everything_compiles_at_load(tmp_path, registry, cache, monkeypatch):
    path = tmp_path / "r.yaml"
    path.write_text(RULES)
    _load(registry, path)
    calls = _count_compiles(monkeypatch)
    _load(registry, path, use_cache=False)
    assert len(calls) == 4  # message, severity step, condition, discriminator


def test_an_edited_text_is_compiled_and_its_errors_reported_at_load(tmp_path, registry, cache):
    path = tmp_path / "r.yaml"
    path.write_text(RULES)
    _load(registry, path)
    path.write_text(RULES.replace("{severity}", "{params.undeclared}").replace("|bytes}", "|byts}"))
    rs = _load(registry, path)
    assert "big" in rs.broken and "unknown filter 'byts'" in rs.broken["big"].message
    path.write_text(RULES.replace("{severity}", "{params.undeclared}"))
    rs = _load(registry, path)
    assert "uses params.undeclared, which its params do not declare" in rs.broken["big"].message


def test_a_new_rule_pack_adds_its_texts(tmp_path, registry, cache, monkeypatch):
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text(RULES)
    _load(registry, one)
    two.write_text(RULES.replace("id: big", "id: other").replace("{severity}", "again"))
    ruleset.load([(str(one), "one"), (str(two), "two")], build_catalog(registry.sources))
    calls = _count_compiles(monkeypatch)
    rs = ruleset.load([(str(one), "one"), (str(two), "two")], build_catalog(registry.sources))
    assert len(calls) == 2 and len(rs.rules) == 2  # the two conditions only


def test_records_of_another_compiler_are_not_used(tmp_path, registry, cache, monkeypatch):
    path = tmp_path / "r.yaml"
    path.write_text(RULES)
    _load(registry, path)
    [old] = cache.glob("compiled-*.json")
    real_stat = os.stat
    edited = SimpleNamespace(st_mtime_ns=real_stat(expr.__file__).st_mtime_ns + 1, st_size=real_stat(expr.__file__).st_size)
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: edited if p == expr.__file__ else real_stat(p, *a, **k))
    calls = _count_compiles(monkeypatch)
    _load(registry, path)
    assert len(calls) == 4
    [new] = cache.glob("compiled-*.json")
    assert new != old  # the stale file is removed when the new one is written


@pytest.mark.parametrize("junk", ["not json", "[]", '{"expr": [], "template": {}}',
                                  '{"expr": {"meminfo.MemTotal // params.big": [["x"], 1, [], [], false]},'
                                  ' "template": {"MemTotal is {meminfo.MemTotal|bytes}, {severity}": "x"}}'])
def test_a_damaged_record_only_costs_compiling(tmp_path, registry, cache, junk):
    path = tmp_path / "r.yaml"
    path.write_text(RULES)
    _load(registry, path)
    [names] = cache.glob("compiled-*.json")
    names.write_text(junk)
    rs = _load(registry, path)
    assert rs.problems == [] and _fire(registry, rs.get("big")).finding["message"] == "MemTotal is 8.00 GiB, warning"


def test_a_lying_record_cannot_get_past_the_compiler(tmp_path, registry, cache):
    """A record naming a text that does not compile defers it; the compiler still refuses it
    when the rule fires, and the rule ends in state error (the others still run)."""
    path = tmp_path / "r.yaml"
    path.write_text(RULES)
    _load(registry, path)
    bad = "{__import__('os').system('true')}"
    path.write_text(RULES.replace('"MemTotal is {meminfo.MemTotal|bytes}, {severity}"', json.dumps(bad)))
    assert "big" in _load(registry, path).broken  # refused at load: never recorded
    [names] = cache.glob("compiled-*.json")
    assert bad not in names.read_text()
    data = json.loads(names.read_text())
    data["template"][bad] = [["meminfo.MemTotal"], ["meminfo.MemTotal"]]
    names.write_text(json.dumps(data))
    rs = _load(registry, path)
    result = _fire(registry, rs.get("big"))
    assert result.state == "error" and "not allowed" in result.reason


def test_cache_files_others_can_write_are_not_trusted(tmp_path, registry, cache, monkeypatch):
    path = tmp_path / "r.yaml"
    path.write_text(RULES)
    _load(registry, path)
    files = list(cache.glob("*.json"))
    assert len(files) == 2  # the validated pack and the compiled names
    for f in files:
        f.chmod(0o666)
    monkeypatch.setattr(ruleset, "_parse_yaml", lambda *a: pytest.fail("YAML not parsed again"))
    with pytest.raises(pytest.fail.Exception):
        _load(registry, path)
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for f in files:
        f.chmod(0o644)
    monkeypatch.setattr(ruleset, "_parse_yaml", lambda *a: pytest.fail("YAML parsed despite the cache"))
    calls = _count_compiles(monkeypatch)
    _load(registry, path)
    assert len(calls) == 1


def test_cache_files_are_private_whatever_the_umask(tmp_path, registry, cache, monkeypatch):
    """A umask of 002 (user private groups) must not make every run parse YAML again."""
    path = tmp_path / "r.yaml"
    path.write_text(RULES)
    old = os.umask(0o002)
    try:
        _load(registry, path)
    finally:
        os.umask(old)
    assert {f.stat().st_mode & 0o777 for f in cache.glob("*.json")} == {0o600}
    monkeypatch.setattr(ruleset, "_parse_yaml", lambda *a: pytest.fail("YAML parsed despite the cache"))
    _load(registry, path)
