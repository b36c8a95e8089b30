"""The rule caches: one file per rule set (each rule file's content and validated data, the
recipe of every text, check_names' findings) and one JSON file per validated rule file.

What must hold: the same findings and problems as a load without caches; a text not seen
before (a new or edited rule pack) is compiled, and its errors reported, at load; a rule file
edited in place is read again even with its size and mtime unchanged; a cache file from another
compiler, a damaged one or one someone else could write is not used; a forged recipe is
refused by the builder (the text is compiled instead).
"""

from __future__ import annotations

import json
import marshal
import os
from types import SimpleNamespace

import pytest

from memdiag import engine, expr, rulepacks, ruleset
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
    tests:
      - name: fires
        facts: {meminfo.MemTotal: 8 GiB}
        expect: {state: fired}
"""
MESSAGE = '"MemTotal is {meminfo.MemTotal|bytes}, {severity}"'


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "memdiag" / "rules"


def _load(registry, path, *, use_cache=True):
    return ruleset.load([(str(path), "test")], build_catalog(registry.sources), use_cache=use_cache)


def _fire(registry, rule, total=8 << 30):
    facts = FactSet(build_catalog(registry.sources))
    facts.set("meminfo.MemTotal", total, "test")
    return engine.evaluate(rule, facts, host="h", now="t")


def _count_compiles(monkeypatch):
    """Every text analysed (the recipe path) or compiled outright (no cache) from now on."""
    calls = []
    for name in ("compile_expr", "compile_template", "expr_recipe", "template_recipe"):
        real = getattr(ruleset, name)
        monkeypatch.setattr(ruleset, name, lambda t, real=real: calls.append(t) or real(t))
    return calls


def _set_file(cache):
    [path] = cache.glob("set-*.marshal")
    return path


def test_second_load_builds_from_recipes_and_fires_the_same(tmp_path, registry, cache, monkeypatch):
    path = tmp_path / "r.yaml"
    path.write_text(RULES)
    first = _load(registry, path)
    _set_file(cache)
    calls = _count_compiles(monkeypatch)
    monkeypatch.setattr(rulepacks, "_parse_yaml", lambda *a: pytest.fail("YAML parsed despite the cache"))
    second = _load(registry, path)
    assert calls == []  # nothing analysed: the condition is built from its recipe, the rest when used
    a, b = _fire(registry, first.get("big")), _fire(registry, second.get("big"))
    assert a.state == b.state == "fired"
    assert a.finding == b.finding
    assert b.finding["message"] == "MemTotal is 8.00 GiB, warning"
    assert _fire(registry, second.get("big"), 100 << 30).finding["severity"] == "critical"
    rule = second.get("big")
    assert rule.message.names == {"meminfo.MemTotal", "severity"}
    assert rule.severity.steps[0][1].names == {"meminfo.MemTotal", "params.huge"}
    assert rule.condition.read_names == ("meminfo.MemTotal", "params.big")
    assert second.problems == first.problems == []
    assert second.get("big").tests == first.get("big").tests and second.get("big").raw == first.get("big").raw


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
    rs = _load(registry, path)  # the same problem from the cache
    assert "uses params.undeclared, which its params do not declare" in rs.broken["big"].message


def test_a_file_edited_in_place_with_the_same_size_and_mtime_is_read_again(tmp_path, registry, cache):
    path = tmp_path / "r.yaml"
    path.write_text(RULES)
    before = os.stat(path)
    _load(registry, path)
    path.write_text(RULES.replace("Big host", "Bog host"))  # same length
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_size == before.st_size and os.stat(path).st_mtime_ns == before.st_mtime_ns
    assert _load(registry, path).get("big").title == "Bog host"


def test_a_new_rule_pack_adds_its_texts(tmp_path, registry, cache, monkeypatch):
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text(RULES)
    _load(registry, one)
    two.write_text(RULES.replace("id: big", "id: other").replace("{severity}", "again"))
    both = [(str(one), "one"), (str(two), "two")]
    parsed = []
    real_parse = rulepacks._parse_yaml
    monkeypatch.setattr(rulepacks, "_parse_yaml", lambda text, p: parsed.append(p) or real_parse(text, p))
    ruleset.load(both, build_catalog(registry.sources))
    assert parsed == [str(two)]  # one.yaml's validated data came from its own cache file
    calls = _count_compiles(monkeypatch)
    rs = ruleset.load(both, build_catalog(registry.sources))
    assert calls == [] and len(rs.rules) == 2
    two.write_text(RULES.replace("id: big", "id: other").replace("{severity}", "changed"))
    rs = ruleset.load(both, build_catalog(registry.sources))
    assert calls == ["MemTotal is {meminfo.MemTotal|bytes}, changed"] and len(rs.rules) == 2


def test_a_cache_file_of_another_compiler_is_not_used(tmp_path, registry, cache, monkeypatch):
    path = tmp_path / "r.yaml"
    path.write_text(RULES)
    _load(registry, path)
    old = _set_file(cache)
    real_stat = os.stat
    edited = SimpleNamespace(st_mtime_ns=real_stat(expr.__file__).st_mtime_ns + 1, st_size=real_stat(expr.__file__).st_size)
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: edited if p == expr.__file__ else real_stat(p, *a, **k))
    calls = _count_compiles(monkeypatch)
    _load(registry, path)
    assert len(calls) == 4
    assert _set_file(cache) != old  # the stale file is removed when the new one is written


@pytest.mark.parametrize("junk", [
    b"not marshal", b"", marshal.dumps([]), marshal.dumps({"stamp": "x"}),
    "truncated", "no files", "wrong shapes", "recipes of the wrong kind", "checked lies about its shape",
])
def test_a_damaged_cache_file_only_costs_compiling(tmp_path, registry, cache, junk):
    path = tmp_path / "r.yaml"
    path.write_text(RULES)
    _load(registry, path)
    set_file = _set_file(cache)
    data = marshal.loads(set_file.read_bytes())
    if junk == "truncated":
        junk = set_file.read_bytes()[:-100]
    elif junk == "no files":
        junk = marshal.dumps({**data, "files": {}})
    elif junk == "wrong shapes":
        junk = marshal.dumps({**data, "files": {str(path): (RULES.encode(), ["x"])},
                              "expr": {t: ("x",) for t in data["expr"]},
                              "template": {t: 1 for t in data["template"]}})
    elif junk == "recipes of the wrong kind":
        a_template, an_expr = next(iter(data["template"].values())), next(iter(data["expr"].values()))
        junk = marshal.dumps({**data, "expr": {t: a_template for t in data["expr"]},
                              "template": {t: an_expr for t in data["template"]}})
    elif junk == "checked lies about its shape":
        junk = marshal.dumps({**data, "checked": (data["checked"][0], {k: (("x", "fatal"),) for k in data["checked"][1]})})
    set_file.write_bytes(junk)
    rs = _load(registry, path)
    assert rs.problems == []
    result = _fire(registry, rs.get("big"), 100 << 30)
    assert result.finding["message"] == "MemTotal is 100.00 GiB, critical"
    assert _load(registry, path).problems == []  # and the file written again is sound


def _forge(set_file, kind, text, node):
    data = marshal.loads(set_file.read_bytes())
    recipe = data[kind][text]
    data[kind][text] = (marshal.dumps(node), *recipe[1:])
    set_file.write_bytes(marshal.dumps(data))


LOC = ("", None, None)


def _deep(depth):
    node = ("const", True)
    for _ in range(depth):
        node = ("not", node)
    return node


@pytest.mark.parametrize("node", [
    ("call", "__import__", (("const", "os"),), LOC),  # not a function of the language
    ("name", "x.__class__"),  # a name no rule can write
    ("bin", "**", ("const", 2), ("const", 2), LOC),  # not an operator of the language
    ("const", compile("1", "", "eval")),  # marshal holds code: not plain data
    ("const", 1 << 2000),  # beyond any constant the analyser folds to
    ("call", "len", (), LOC),  # wrong arity
    ("cmp", ("const", 1), ()),  # a comparison without steps
    ("bin", "+", ("const", 1), ("const", 2), (1, 2, 3)),  # a location that is not one
    _deep(expr.MAX_DEPTH + 5),  # nested deeper than any text can be
], ids=lambda node: node[0] + ("-deep" if node[0] == "not" else ""))
def test_a_forged_condition_recipe_is_refused_and_the_text_compiled(tmp_path, registry, cache, node):
    path = tmp_path / "r.yaml"
    path.write_text(RULES)
    _load(registry, path)
    _forge(_set_file(cache), "expr", "meminfo.MemTotal > params.big", node)
    rs = _load(registry, path)
    assert rs.problems == [] and _fire(registry, rs.get("big")).state == "fired"
    assert _fire(registry, rs.get("big"), 1).state == "passed"  # the text's meaning, not the forgery's


def test_a_lying_record_cannot_get_past_the_compiler(tmp_path, registry, cache):
    """A recipe for a text that does not compile defers it; the builder refuses the recipe and
    the compiler the text when the rule fires: the rule ends in state error (the others run)."""
    path = tmp_path / "r.yaml"
    path.write_text(RULES)
    _load(registry, path)
    bad = "{__import__('os').system('true')}"
    path.write_text(RULES.replace(MESSAGE, json.dumps(bad)))
    assert "big" in _load(registry, path).broken  # refused at load: never recorded
    set_file = _set_file(cache)
    data = marshal.loads(set_file.read_bytes())
    assert bad not in data["template"]
    call = ("call", "__import__", (("const", "os"),), LOC)
    data["template"][bad] = (marshal.dumps(((call, "str", "", None, None),)), ("meminfo.MemTotal",), ("meminfo.MemTotal",))
    set_file.write_bytes(marshal.dumps(data))
    rs = _load(registry, path)
    result = _fire(registry, rs.get("big"))
    assert result.state == "error" and "not allowed" in result.reason


def test_a_forged_recipe_is_another_expression_at_most(tmp_path, registry, cache):
    """What ownership of the cache file is for: a recipe that passes the builder's checks is
    followed even if its text says otherwise; it can only be something a rule could say."""
    path = tmp_path / "r.yaml"
    path.write_text(RULES)
    _load(registry, path)
    _forge(_set_file(cache), "expr", "meminfo.MemTotal > params.big", ("const", False))
    assert _fire(registry, _load(registry, path).get("big")).state == "passed"


def test_cache_files_others_can_write_are_not_trusted(tmp_path, registry, cache, monkeypatch):
    path = tmp_path / "r.yaml"
    path.write_text(RULES)
    _load(registry, path)
    files = list(cache.iterdir())
    assert sorted(f.suffix for f in files) == [".json", ".marshal"]  # the validated pack, the rule set
    for f in files:
        f.chmod(0o666)
    monkeypatch.setattr(rulepacks, "_parse_yaml", lambda *a: pytest.fail("YAML not parsed again"))
    with pytest.raises(pytest.fail.Exception):
        _load(registry, path)
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for f in cache.iterdir():
        f.chmod(0o644)
    monkeypatch.setattr(rulepacks, "_parse_yaml", lambda *a: pytest.fail("YAML parsed despite the cache"))
    calls = _count_compiles(monkeypatch)
    _load(registry, path)
    assert calls == []


def test_cache_files_of_another_user_are_not_read(tmp_path, registry, cache, monkeypatch):
    path = tmp_path / "r.yaml"
    path.write_text(RULES)
    _load(registry, path)
    real_uid = os.geteuid()
    monkeypatch.setattr(os, "geteuid", lambda: real_uid + 1)  # every cache file is someone else's now
    parsed = []
    real_parse = rulepacks._parse_yaml
    monkeypatch.setattr(rulepacks, "_parse_yaml", lambda text, p: parsed.append(p) or real_parse(text, p))
    calls = _count_compiles(monkeypatch)
    rs = _load(registry, path)
    assert parsed == [str(path)] and len(calls) == 4 and rs.problems == []
    assert _fire(registry, rs.get("big")).finding["message"] == "MemTotal is 8.00 GiB, warning"


def test_cache_files_are_private_whatever_the_umask(tmp_path, registry, cache, monkeypatch):
    """A umask of 002 (user private groups) must not make every run parse YAML again."""
    path = tmp_path / "r.yaml"
    path.write_text(RULES)
    old = os.umask(0o002)
    try:
        _load(registry, path)
    finally:
        os.umask(old)
    assert {f.stat().st_mode & 0o777 for f in cache.iterdir()} == {0o600}
    monkeypatch.setattr(rulepacks, "_parse_yaml", lambda *a: pytest.fail("YAML parsed despite the cache"))
    _load(registry, path)


def test_data_no_cache_can_hold_is_loaded_not_cached(tmp_path, registry, cache):
    """A YAML date in a test's facts: neither JSON nor marshal holds it. The rule still loads
    (and its tests still read), the rule file is just not cached, and nothing is left behind."""
    path = tmp_path / "r.yaml"
    path.write_text(RULES.replace("facts: {meminfo.MemTotal: 8 GiB}", "facts: {meminfo.MemTotal: 8 GiB, x.when: 2024-01-01}"))
    for _ in range(2):
        rs = _load(registry, path)
        assert rs.problems == [] and str(rs.get("big").tests[0]["facts"]["x.when"]) == "2024-01-01"
    assert not [f for f in cache.iterdir() if f.suffix == ".json" or f.name.endswith(".tmp")]


def test_a_warm_load_builds_only_what_every_run_reads(tmp_path, registry, cache):
    """The rest of a rule that compiled before (its message, steps, remediation, tests, ...)
    is built when first read, the same as a cold load builds it."""
    path = tmp_path / "r.yaml"
    path.write_text(RULES)
    cold = _load(registry, path, use_cache=False).get("big")
    _load(registry, path)
    rule = _load(registry, path).get("big")
    deferred = ("title", "description", "severity", "confidence", "tags", "message", "evidence",
                "discriminators", "remediation", "references", "tests", "raw")
    assert not set(deferred) & set(vars(rule)) and rule.params == cold.params
    assert rule.tests == [{"name": "fires", "facts": {"meminfo.MemTotal": "8 GiB"}, "expect": {"state": "fired"}}]
    assert rule.raw == cold.raw and rule.title == "Big host" and rule.severity.steps[1] == ("warning", None)
    assert repr(rule) == repr(cold)  # every field, each built on the way (Exprs show their text)
    rule.severity = cold.confidence  # an override replaces what was never built
    assert rule.severity is cold.confidence


def test_a_rule_that_did_not_compile_is_compiled_again_at_load(tmp_path, registry, cache):
    path = tmp_path / "r.yaml"
    path.write_text(RULES.replace('- {level: warning}', '- {level: warning, when: "true"}'))
    for _ in range(3):
        rs = _load(registry, path)
        assert "the last step needs no 'when'" in rs.broken["big"].message


def test_rule_set_files_are_bounded(tmp_path, registry, cache, monkeypatch):
    monkeypatch.setattr(ruleset._RuleCache, "KEEP", 3)
    paths = []
    for i in range(5):
        p = tmp_path / f"r{i}.yaml"
        p.write_text(RULES)
        paths.append(p)
        _load(registry, p)
    assert len(list(cache.glob("set-*.marshal"))) == 3


def test_pack_files_and_older_memdiag_files_are_bounded(tmp_path, registry, cache, monkeypatch):
    monkeypatch.setattr(ruleset._RuleCache, "KEEP_PACKS", 3)
    cache.mkdir(parents=True, exist_ok=True)
    legacy = [cache / "compiled-abc.json", cache / "ov-0123.json"]
    for p in legacy:
        p.write_text("{}")
    for i in range(5):
        p = tmp_path / f"r{i}.yaml"
        p.write_text(RULES.replace("Big host", f"Big host {i}"))  # another pack text each time
        _load(registry, p)
    assert not any(p.exists() for p in legacy)
    packs = [p for p in cache.glob("*.json") if len(p.name) == 37]
    assert len(packs) == 3
    assert _load(registry, tmp_path / "r4.yaml").get("big").title == "Big host 4"  # still loads


# -- a cache hit against a cold compile, over every bundled rule -----------------------------------

def _outcome(call):
    """A value, or the error a rule author would see: type, message and position."""
    try:
        return ("value", call())
    except (expr.EvalError, expr.ExprError) as exc:
        return (type(exc).__name__, exc.message, exc.offset, exc.line)


def _everything(rule, facts, previous, hours):
    """Every text of ``rule`` run against one test's facts, and the rule's result."""
    env = engine.FactEnv(facts, rule.params, previous, hours)
    texts = [rule.condition, *rule.discriminators,
             *(when for ladder in (rule.severity, rule.confidence) for _, when in ladder.steps if when)]
    out = [(e.text, _outcome(lambda e=e: e.evaluate(env)), e.names, e.read_names, e.history_names,
            e.tested_names, e.uses_elapsed) for e in texts]
    for extra in ({"confidence": "likely", "severity": "warning"}, {}):
        out.append((rule.message.text, _outcome(lambda: rule.message.render(env, extra)),
                    rule.message.names, rule.message.read_names))
    result = engine.evaluate(rule, facts, host="h", now="t", previous=previous, elapsed_hours=hours)
    out.append((result.state, result.reason, result.missing, result.finding))
    return out


def test_a_cache_hit_evaluates_every_bundled_rule_as_a_cold_compile(registry, cache, monkeypatch):
    from memdiag import ruletest

    packs = list(registry.rule_packs)
    catalog = build_catalog(registry.sources)
    cold = ruleset.load(packs, catalog, use_cache=False)
    ruleset.load(packs, catalog)  # fills the caches
    calls = _count_compiles(monkeypatch)
    warm = ruleset.load(packs, catalog)
    assert calls == [] and len(warm.rules) == len(cold.rules) >= 60
    assert warm.problems == cold.problems and warm.broken == cold.broken
    compared = 0
    for a, b in zip(cold.rules, warm.rules):
        assert (a.id, a.params, a.tests, a.raw) == (b.id, b.params, b.tests, b.raw)
        for test in a.tests:
            facts = ruletest.facts_for(test, a, registry)
            previous = ruletest.factset(test["previous"], registry, "previous") if "previous" in test else None
            hours = test.get("elapsed_hours")
            saved = dict(a.params)
            for rule in (a, b):
                rule.params.update({k: ruleset.param_value(v) for k, v in (test.get("params") or {}).items()})
            assert _everything(b, facts, previous, hours) == _everything(a, facts, previous, hours), (a.id, test["name"])
            for rule in (a, b):
                rule.params.clear()
                rule.params.update(saved)
            compared += 1
    assert compared >= 170


def test_overrides_texts_and_the_site_file_come_from_the_caches(tmp_path, registry, cache, monkeypatch):
    path = tmp_path / "r.yaml"
    path.write_text(RULES + """overrides:
  big:
    severity: [{level: info, when: "meminfo.MemTotal < 2 * params.big"}, {level: warning}]
""")
    site = tmp_path / "site.yaml"
    site.write_text("""rules:
  big:
    exceptions:
      - {name: huge, reason: lab hosts, when: "meminfo.MemTotal > params.huge"}
""")
    catalog = build_catalog(registry.sources)

    def load():
        return ruleset.load([(str(path), "test")], catalog, site=str(site))

    first = load()
    assert [f for f in cache.iterdir() if f.name.startswith("ov-") and f.suffix == ".marshal"]
    calls = _count_compiles(monkeypatch)
    real_parse = rulepacks._parse_yaml
    monkeypatch.setattr(rulepacks, "_parse_yaml", lambda *a: pytest.fail("YAML parsed despite the cache"))
    second = load()
    assert calls == []
    monkeypatch.setattr(rulepacks, "_parse_yaml", real_parse)
    for rs in (first, second):
        rule = rs.get("big")
        assert rule.severity.steps[0][1].names == {"meminfo.MemTotal", "params.big"}
        assert [e.when.names for e in rule.exceptions] == [{"meminfo.MemTotal", "params.huge"}]
        assert _fire(registry, rule).finding["severity"] == "warning"
        assert _fire(registry, rule, 100 << 30).finding["suppressed"]["reason"] == "lab hosts"
    site.write_text(site.read_text().replace("params.huge", "params.nope"))
    third = load()
    assert calls == ["meminfo.MemTotal > params.nope"]
    assert "uses params.nope, which the rule does not declare" in third.problems[-1].message


def test_rule_files_go_as_os_walk_does(tmp_path):
    root = tmp_path / "packs"
    for rel in ["b.yaml", "a.yml", "notes.txt", "z/1.yaml", "z/y/2.yaml", "c/3.yaml", "c/.hidden.yaml"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("rules: []\n")
    (root / "linked").symlink_to(root / "z")  # a link to a folder: listed by walk, not entered
    (root / "alias.yaml").symlink_to(root / "b.yaml")
    (root / "dangling.yaml").symlink_to(root / "nowhere.yaml")
    expected = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        expected += [os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith((".yaml", ".yml"))]
    assert ruleset.rule_files(str(root)) == expected
    assert ruleset.rule_files(str(root / "b.yaml")) == [str(root / "b.yaml")]


def test_conditions_are_kept_ready_to_build_and_the_rest_packed(tmp_path, registry, cache, monkeypatch):
    """The rule set's cache keeps a condition's recipe node as is (every load builds it) and the
    nodes of texts built only when used marshalled; either form builds the rule the same."""
    path = tmp_path / "r.yaml"
    path.write_text(RULES)
    cold = _load(registry, path, use_cache=False)
    _load(registry, path)
    kept = ruleset._read_marshal(str(_set_file(cache)))
    assert type(kept["expr"]["meminfo.MemTotal > params.big"][0]) is tuple
    assert type(kept["expr"]["meminfo.MemTotal > params.huge"][0]) is bytes
    assert type(kept["template"]["MemTotal is {meminfo.MemTotal|bytes}, {severity}"][0]) is bytes
    calls = _count_compiles(monkeypatch)
    warm = _load(registry, path)
    assert calls == []
    for total in (8 << 30, 100 << 30, 512 << 20):
        a, b = _fire(registry, cold.get("big"), total), _fire(registry, warm.get("big"), total)
        assert (a.state, a.finding) == (b.state, b.finding)
