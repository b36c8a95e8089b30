"""Site overrides end to end through the command, on a captured folder: precedence of the
layers (rule file < plugin rule packs' overrides < site file < --param), where each value in
force came from, suppressed findings (reported, not counted), disabled rules (listed), bad
files (one line, exit 3), and the versions rules and files declare."""

from __future__ import annotations

import json

import pytest

from memdiag import ruleset
from memdiag.errors import UsageError

from .helpers import captured_folder, finding, rule_states, validate_document, write

RULE = "unaccounted-memory"


@pytest.fixture(scope="module")
def cap(tmp_path_factory):
    """web01.example.com with the founding case's meminfo: unaccounted-memory fires (warning)."""
    return captured_folder(tmp_path_factory.mktemp("web01"))


@pytest.fixture
def pack(tmp_path):
    """A plugin-style rule pack whose overrides section tunes the bundled rule."""
    return write(tmp_path / "pack" / "tuning.yaml", f"""
        rules: []
        overrides:
          {RULE}:
            severity: critical
            params: {{min_unaccounted: 2 GiB, min_unaccounted_ratio: 0.3}}
            reason: plugin tuning
    """)


def analyze(memdiag, cap, *args, env=None):
    r = memdiag("analyze", str(cap), "--format", "json", "--no-sinks", *args, env=env)
    assert r.out, r.err
    return r, r.json()


def show(memdiag, *args):
    r = memdiag("rules", "show", RULE, "--format", "json", *args)
    assert r.code == 0, r.err
    return r.json()


def test_baseline_fires(memdiag, cap):
    r, doc = analyze(memdiag, cap)
    assert r.code == 1 and doc["host"] == "web01.example.com"
    assert finding(doc, RULE)["severity"] == "warning" and "suppressed" not in finding(doc, RULE)


def test_precedence_rule_file_then_pack_then_site_then_command_line(memdiag, cap, pack, tmp_path):
    own = show(memdiag)
    assert own["severity"]["value"] == "warning" and own["severity"]["from"].endswith(own["defined_at"])
    assert own["params"]["min_unaccounted"]["from"] == own["defined_at"]

    # Plugin rule pack layer: severity and params replaced, each saying where from.
    tuned = show(memdiag, "--rules", str(pack.parent))
    assert tuned["severity"] == {"value": "critical", "from": f"{pack}:4 (overrides in rule pack --rules)",
                                 "reason": "plugin tuning"}
    assert tuned["params"]["min_unaccounted"] == {"value": 2 << 30, "from": f"{pack}:5 (overrides in rule pack --rules)"}
    r, doc = analyze(memdiag, cap, "--rules", str(pack.parent))
    assert r.code == 2 and finding(doc, RULE)["severity"] == "critical"

    # Site file above the pack: its severity wins; the pack's params it does not set stay.
    site = write(tmp_path / "site.yaml", f"""
        rules:
          {RULE}:
            severity: info
            params: {{min_unaccounted: 3 GiB}}
    """)
    both = show(memdiag, "--rules", str(pack.parent), "--overrides", str(site))
    assert both["severity"]["value"] == "info" and both["severity"]["from"] == f"{site}:3 (site overrides)"
    assert both["params"]["min_unaccounted"]["from"] == f"{site}:4 (site overrides)"
    assert both["params"]["min_unaccounted_ratio"] == {"value": 0.3, "from": f"{pack}:5 (overrides in rule pack --rules)"}
    r, doc = analyze(memdiag, cap, "--rules", str(pack.parent), "--overrides", str(site))
    assert r.code == 0 and finding(doc, RULE)["severity"] == "info"  # info never counts

    # Command line above everything: 6 GiB is more than the 5.07 GiB unaccounted: the rule passes.
    top = show(memdiag, "--rules", str(pack.parent), "--overrides", str(site), "--param", f"{RULE}.min_unaccounted=6GiB")
    assert top["params"]["min_unaccounted"] == {"value": 6 << 30, "from": "--param"}
    r, doc = analyze(memdiag, cap, "--rules", str(pack.parent), "--overrides", str(site),
                     "--param", f"{RULE}.min_unaccounted=6GiB")
    assert r.code == 0 and finding(doc, RULE) is None and rule_states(doc)[RULE]["state"] == "passed"

    # The text of `rules show` says the same.
    r = memdiag("rules", "show", RULE, "--rules", str(pack.parent), "--overrides", str(site))
    assert f"severity     info  (from {site}:3 (site overrides))" in r.out
    assert f"min_unaccounted_ratio = 0.3  (from {pack}:5 (overrides in rule pack --rules))" in r.out


def test_enabled_has_one_precedence(memdiag, cap, tmp_path):
    """A site file may re-enable what a pack disabled, and disable what a pack enabled; the
    highest layer that says something wins (no tag or order surprises)."""
    disabling = write(tmp_path / "p" / "off.yaml", f"""
        rules: []
        overrides:
          {RULE}: {{enabled: false, reason: noisy on our fleet}}
    """)
    r, doc = analyze(memdiag, cap, "--rules", str(disabling.parent))
    entry = rule_states(doc)[RULE]
    assert entry["state"] == "disabled"
    assert entry["reason"] == f"disabled by {disabling}:3 (overrides in rule pack --rules): noisy on our fleet"
    assert finding(doc, RULE) is None and r.code == 0
    assert "disabled" in memdiag("analyze", str(cap), "--rules", str(disabling.parent), "--no-sinks").out

    site = write(tmp_path / "on.yaml", f"rules:\n  {RULE}: {{enabled: true}}\n")
    r, doc = analyze(memdiag, cap, "--rules", str(disabling.parent), "--overrides", str(site))
    assert rule_states(doc)[RULE]["state"] == "fired" and r.code == 1
    assert show(memdiag, "--rules", str(disabling.parent), "--overrides", str(site))["enabled"] == {
        "value": True, "from": f"{site}:2 (site overrides)", "reason": None}

    r = memdiag("rules", "list", "--rules", str(disabling.parent))
    assert f"(disabled by {disabling}:3 (overrides in rule pack --rules): noisy on our fleet)" in r.out


@pytest.mark.parametrize("exception, suppressed", [
    ('{hosts: [web01], reason: "lab host, known driver"}', True),           # short name matches the FQDN
    ('{hosts: ["WEB0*.example.com"], reason: "lab host, known driver"}', True),
    ('{hosts: [db01, "web1*"], reason: "lab host, known driver"}', False),
    ('{when: "accounting.unaccounted_ratio > 0.5", reason: "lab host, known driver"}', True),
    ('{when: "accounting.unaccounted_ratio > 0.9", reason: "lab host, known driver"}', False),
    # A missing fact never hides a finding: unknown is not true.
    ('{when: "balloon.vmware_bytes > 0", reason: "lab host, known driver"}', False),
    ('{hosts: [web01], when: "accounting.unaccounted_ratio > 0.9", reason: "lab host, known driver"}', False),
])
def test_exceptions_suppress_but_never_drop(memdiag, cap, tmp_path, exception, suppressed):
    site = write(tmp_path / "site.yaml", f"""
        rules:
          {RULE}:
            exceptions:
              - name: lab
                reason: placeholder
              - {exception}
    """.replace("              - name: lab\n                reason: placeholder\n", ""))
    r, doc = analyze(memdiag, cap, "--overrides", str(site))
    f = finding(doc, RULE)
    assert f is not None  # reported either way
    validate_document(doc)
    if suppressed:
        assert f["suppressed"] == {"reason": "lab host, known driver",
                                   "by": f"exception 'exception 1' at {site}:4 (site overrides)"}
        assert r.code == 0 and doc["verdict"]["severity"] == "ok"
        assert "1 finding(s) suppressed by overrides" in doc["verdict"]["summary"]
        assert rule_states(doc)[RULE]["reason"].startswith("finding suppressed by exception 'exception 1'")
    else:
        assert "suppressed" not in f and r.code == 1 and doc["verdict"]["rule_id"] == RULE


def test_suppressed_finding_shows_in_the_text_report_with_its_reason(memdiag, cap, tmp_path):
    site = write(tmp_path / "site.yaml", f"""
        rules:
          {RULE}:
            exceptions:
              - {{name: known leak, hosts: [web01], reason: tracked in OPS-1234}}
    """)
    r = memdiag("analyze", str(cap), "--overrides", str(site), "--no-sinks")
    assert r.code == 0
    text = " ".join(r.out.split())
    assert "OK: No memory problem found (1 finding(s) suppressed by overrides" in text
    assert "(suppressed: tracked in OPS-1234)" in text


def test_site_file_is_found_through_the_environment_and_can_be_turned_off(memdiag, cap, tmp_path):
    site = write(tmp_path / "site.yaml", f"rules:\n  {RULE}: {{enabled: false}}\n")
    r, doc = analyze(memdiag, cap, env={"MEMDIAG_OVERRIDES": str(site)})
    assert rule_states(doc)[RULE]["state"] == "disabled" and r.code == 0
    r, doc = analyze(memdiag, cap, "--overrides", "", env={"MEMDIAG_OVERRIDES": str(site)})
    assert rule_states(doc)[RULE]["state"] == "fired"  # '' means none, whatever the variable says
    r = memdiag("analyze", str(cap), "--overrides", str(tmp_path / "missing.yaml"))
    assert r.code == 3 and r.err.strip() == f"memdiag: {tmp_path / 'missing.yaml'}: overrides file not found (named by --overrides)"


def test_etc_site_file_is_the_default(monkeypatch, tmp_path):
    etc = write(tmp_path / "overrides.yaml", "rules: {}\n")
    monkeypatch.setattr(ruleset, "SITE_FILE", str(etc))
    monkeypatch.delenv(ruleset.SITE_ENV_VAR, raising=False)
    assert ruleset.find_site_file(None) == str(etc)
    monkeypatch.setenv(ruleset.SITE_ENV_VAR, "")
    assert ruleset.find_site_file(None) is None
    monkeypatch.setattr(ruleset, "SITE_FILE", str(tmp_path / "absent.yaml"))
    monkeypatch.delenv(ruleset.SITE_ENV_VAR)
    assert ruleset.find_site_file(None) is None
    with pytest.raises(UsageError):
        ruleset.find_site_file(str(tmp_path / "absent.yaml"))


@pytest.mark.parametrize("text, line, message", [
    (f"rules:\n  {RULE}:\n    disable: true\n", 3, "Additional properties are not allowed ('disable' was unexpected)"),
    (f"rules:\n  {RULE}:\n    severity: urgent\n", 3, "'urgent' is not one of ['info', 'warning', 'critical']"),
    (f"rules:\n  {RULE}:\n    exceptions: [{{hosts: [a]}}]\n", 3, "'reason' is a required property"),
    (f"rules:\n  {RULE}:\n    exceptions:\n      - {{when: 'meminfo.MemTotal >', reason: r}}\n", 4, "exceptions[0].when"),
    ("rules: [\n", None, "not valid YAML"),
    ("memdiag: '>=99'\nrules: {}\n", None, "these overrides need memdiag >=99; this is memdiag"),
])
def test_a_bad_overrides_file_is_one_line_and_exit_3(memdiag, cap, tmp_path, text, line, message):
    site = tmp_path / "site.yaml"
    site.write_text(text)
    r = memdiag("analyze", str(cap), "--overrides", str(site))
    assert r.code == 3 and r.out == ""
    [err] = [e for e in r.err.splitlines() if str(site) in e]
    assert err.startswith(f"memdiag: {site}" + (f":{line}:" if line else "")), err
    assert message in err and "Traceback" not in r.err


def test_unknown_rules_and_params_warn_and_the_rest_applies(memdiag, cap, tmp_path):
    site = write(tmp_path / "site.yaml", f"""
        rules:
          unaccounted-memroy: {{enabled: false}}
          {RULE}:
            params: {{min_unacounted: 1 GiB}}
            severity: critical
    """)
    r, doc = analyze(memdiag, cap, "--overrides", str(site))
    assert f"{site}:2: warning: overrides rule unaccounted-memroy, which is not loaded; ignored; did you mean '{RULE}'?" in r.err
    assert f"{site}:4: warning: overrides for rule {RULE}: no param 'min_unacounted'" in r.err
    assert r.code == 2 and finding(doc, RULE)["severity"] == "critical"
    r = memdiag("rules", "validate", "--overrides", str(site))
    assert "min_unacounted" in r.out


def test_a_newer_rule_says_so_clearly(memdiag, cap, tmp_path):
    newer = write(tmp_path / "newer.yaml", """
        rules:
          - id: from-the-future
            memdiag: ">=99.1"
            title: Needs a newer memdiag
            severity: info
            confidence: likely
            condition: meminfo.MemTotal > 0
            message: m
            remediation: {steps: s}
          - id: works-today
            title: Fine
            severity: info
            confidence: likely
            condition: meminfo.MemTotal > 0
            message: m
            remediation: {steps: s}
    """)
    r = memdiag("rules", "validate", str(newer))
    assert r.code == 4
    assert f"{newer}:2: error: rule from-the-future needs memdiag >=99.1; this is memdiag 0.1.0: upgrade memdiag to use it" in r.out
    r, doc = analyze(memdiag, cap, "--rules", str(newer))
    assert "rule from-the-future needs memdiag >=99.1" in r.err
    states = rule_states(doc)
    assert states["from-the-future"]["state"] == "error" and "upgrade memdiag" in states["from-the-future"]["reason"]
    assert states["works-today"]["state"] == "fired"

    whole = write(tmp_path / "pack" / "newer-pack.yaml", 'memdiag: ">=99"\n' + newer.read_text())
    r = memdiag("rules", "validate", str(whole))
    assert r.code == 4 and "this rule pack needs memdiag >=99; this is memdiag 0.1.0: upgrade memdiag to use it" in r.out


def test_rules_test_checks_rules_as_authored_not_as_tuned(memdiag, tmp_path):
    """A site's tuning must not break the bundled rules' own tests."""
    site = write(tmp_path / "site.yaml", f"rules:\n  {RULE}: {{severity: critical, enabled: false}}\n")
    r = memdiag("rules", "test", "--overrides", str(site))
    assert r.code == 0, r.out
    assert " 0 failed" in r.out


def test_in_force_json_lists_exceptions_with_origin(memdiag, tmp_path):
    site = write(tmp_path / "site.yaml", f"""
        rules:
          {RULE}:
            exceptions:
              - name: lab
                hosts: [lab-*]
                when: "accounting.unaccounted_ratio > 0.5"
                reason: lab machines
    """)
    shown = show(memdiag, "--overrides", str(site))
    assert shown["exceptions"] == [{"name": "lab", "reason": "lab machines", "hosts": ["lab-*"],
                                    "when": "accounting.unaccounted_ratio > 0.5",
                                    "from": f"{site}:4 (site overrides)",
                                    "applies": "on hosts lab-* and when accounting.unaccounted_ratio > 0.5"}]
    assert json.loads(json.dumps(shown)) == shown
