"""Rule files: strict validation with file:line, compile errors, did-you-mean, params, versions."""

from __future__ import annotations

import textwrap

import pytest

from memdiag import rulepacks, ruleset
from memdiag.errors import UsageError
from memdiag.sources import build_catalog

GOOD = """\
rules:
  - id: r1
    title: A rule
    severity: warning
    confidence: suspected
    params: {min_bytes: 2 GiB, ratio: 0.5}
    condition: meminfo.MemTotal > params.min_bytes
    message: "{meminfo.MemTotal|bytes}"
    remediation: {steps: do this}
"""


def load(tmp_path, registry, text, name="r.yaml", **kw):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return ruleset.load([(str(path), "test")], build_catalog(registry.sources), use_cache=False, **kw), str(path)


def test_good_rule_with_size_params(tmp_path, registry):
    rs, path = load(tmp_path, registry, GOOD)
    assert rs.problems == []
    rule = rs.get("r1")
    assert rule.params == {"min_bytes": 2 << 30, "ratio": 0.5}
    assert rule.line == 2 and rule.where == f"{path}:2"


def test_unknown_key_is_an_error_with_its_line(tmp_path, registry):
    rs, path = load(tmp_path, registry, GOOD + "    colour: red\n")
    [p] = rs.errors
    assert p.line == 2 and "colour" in p.message and p.rule_id == "r1"
    assert str(p).startswith(f"{path}:2: error:")
    assert rs.rules == [] and "r1" in rs.broken


def test_missing_required_and_bad_enum(tmp_path, registry):
    rs, _ = load(tmp_path, registry, GOOD.replace("severity: warning", "severity: urgent"))
    assert any("urgent" in p.message for p in rs.errors)


def test_yaml_syntax_error_names_the_line(tmp_path, registry):
    rs, path = load(tmp_path, registry, "rules:\n  - id: x\n    title: [unclosed\n")
    [p] = rs.errors
    assert p.path == path and p.line is not None and "YAML" in p.message


def test_duplicate_yaml_key_is_refused(tmp_path, registry):
    rs, _ = load(tmp_path, registry, GOOD + "    title: again\n")
    assert any("duplicate key 'title'" in p.message for p in rs.errors)


def test_duplicate_rule_ids_keep_the_first(tmp_path, registry):
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    rs = ruleset.load([(str(tmp_path), "t")], build_catalog(registry.sources), use_cache=False)
    assert len(rs.rules) == 1
    assert any("already defined" in p.message and "a.yaml:2" in p.message for p in rs.problems)


def test_expression_error_names_rule_field_and_column(tmp_path, registry):
    rs, path = load(tmp_path, registry, GOOD.replace("meminfo.MemTotal > params.min_bytes",
                                                     "'meminfo.MemTotal > (lambda: 1)()'"))
    [p] = rs.errors
    assert p.rule_id == "r1" and "condition" in p.message and "column" in p.message


def test_unknown_fact_gets_a_did_you_mean(tmp_path, registry):
    rs, _ = load(tmp_path, registry, GOOD.replace("meminfo.MemTotal >", "meminfo.MemTotl >"))
    [p] = rs.problems
    assert p.level == "warning" and "did you mean 'meminfo.MemTotal'" in p.message


def test_undeclared_param_is_an_error(tmp_path, registry):
    rs, _ = load(tmp_path, registry, GOOD.replace("params.min_bytes", "params.nope"))
    assert any("params.nope" in p.message for p in rs.errors)


def test_param_overrides_record_their_origin(tmp_path, registry):
    rs, _ = load(tmp_path, registry, GOOD, overrides=ruleset.parse_param_args(["r1.min_bytes=4GiB"]))
    rule = rs.get("r1")
    assert rule.params["min_bytes"] == 4 << 30 and rule.param_origin["min_bytes"] == "--param"
    with pytest.raises(UsageError, match="no param 'nope'"):
        load(tmp_path, registry, GOOD, overrides={"r1": {"nope": 1}})
    with pytest.raises(UsageError, match="RULE.NAME=VALUE"):
        ruleset.parse_param_args(["bad"])


def test_newer_rule_pack_says_which_version_it_needs(tmp_path, registry):
    rs, _ = load(tmp_path, registry, 'memdiag: ">=99.0"\n' + GOOD)
    [p] = rs.errors
    assert "needs memdiag >=99.0" in p.message and "upgrade" in p.message
    assert "r1" in rs.broken


def test_satisfies():
    assert ruleset.satisfies(">=0.1", "0.1.0")
    assert ruleset.satisfies(">=0.1, <2", "1.5")
    assert not ruleset.satisfies(">0.1", "0.1.0")
    assert not ruleset.satisfies("<0.1", "0.1.0")


def test_validated_packs_are_cached_and_reused(tmp_path, registry, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = tmp_path / "r.yaml"
    path.write_text(GOOD)
    data, problems = ruleset.read_pack(str(path))
    assert problems == [] and list((tmp_path / "cache" / "memdiag" / "rules").glob("*.json"))
    monkeypatch.setattr(rulepacks, "_parse_yaml", lambda *a: pytest.fail("YAML parsed despite the cache"))
    again, _ = ruleset.read_pack(str(path))
    assert again == data
    path.write_text(GOOD.replace("A rule", "Changed"))  # new content: parsed again
    monkeypatch.setattr(rulepacks, "_parse_yaml", lambda *a: {"rules": []})
    assert ruleset.read_pack(str(path))[0] == {"rules": []}


def test_yaml_aliases_are_refused_before_they_expand(tmp_path, registry):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, n in zip("abcdefgh", "bcdefghi")
    ) + "rules: []\n"
    rs, path = load(tmp_path, registry, bomb)
    [p] = rs.errors
    assert p.line == 2 and "aliases" in p.message


def test_find_site_file_without_importing_overrides(monkeypatch, tmp_path):
    """The rule loader finds the site overrides file itself: memdiag.overrides is imported only
    by a run that has one."""
    etc = tmp_path / "overrides.yaml"
    etc.write_text("rules: {}\n")
    named = tmp_path / "named.yaml"
    named.write_text("rules: {}\n")
    monkeypatch.delenv(ruleset.SITE_ENV_VAR, raising=False)
    monkeypatch.setattr(ruleset, "SITE_FILE", str(tmp_path / "absent.yaml"))
    assert ruleset.find_site_file(None) is None
    monkeypatch.setattr(ruleset, "SITE_FILE", str(etc))
    assert ruleset.find_site_file() == str(etc)
    assert ruleset.find_site_file(str(named)) == str(named)
    assert ruleset.find_site_file("") is None  # '' means none, whatever else is there
    monkeypatch.setenv(ruleset.SITE_ENV_VAR, str(named))
    assert ruleset.find_site_file() == str(named)
    assert ruleset.find_site_file("") is None
    monkeypatch.setenv(ruleset.SITE_ENV_VAR, "")
    assert ruleset.find_site_file() is None
    monkeypatch.setenv(ruleset.SITE_ENV_VAR, str(tmp_path / "missing.yaml"))
    with pytest.raises(UsageError, match=r"overrides file not found \(named by \$MEMDIAG_OVERRIDES\)"):
        ruleset.find_site_file()
    with pytest.raises(UsageError, match=r"overrides file not found \(named by --overrides\)"):
        ruleset.find_site_file(str(tmp_path / "missing.yaml"))


def test_the_pack_readers_names_are_still_read_through_ruleset():
    """YAML, the schema and cache writing live in memdiag.rulepacks (imported only when a rule
    file must be read from its text); their old names in memdiag.ruleset still answer."""
    for name in ruleset._IN_RULEPACKS:
        assert getattr(ruleset, name) is getattr(rulepacks, name)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        ruleset.nothing_here  # noqa: B018
