"""memdiag.diagnose / memdiag.deliver: typed findings, the same document the command line
prints, read-only reports, and the errors the API promises."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import memdiag
from testkit import REPO, validate_document

OFFLINE = REPO / "tests" / "fixtures" / "offline"
HOSTS = REPO / "tests" / "fleet" / "hosts"


def without_times(doc: dict) -> dict:
    """A document minus what changes from run to run (when it ran)."""
    doc = json.loads(json.dumps(doc))
    doc.pop("time", None)
    for f in doc["findings"]:
        f.pop("time", None)
    return doc


def test_the_founding_case_gives_typed_findings(seed_case):
    report = memdiag.diagnose(seed_case)
    assert isinstance(report, memdiag.Report)
    assert report.verdict.severity == "warning" and report.verdict.rule_id == "vmware-balloon"
    assert report.exit_code == 1
    top = report.findings[0]
    assert isinstance(top, memdiag.Finding)
    assert top.rule_id == "vmware-balloon" and top.severity == "warning" and top.active
    assert len(top.fingerprint) == 16 and top.remediation.steps
    unaccounted = next(e for e in top.evidence if e.fact == "accounting.unaccounted_bytes")
    assert unaccounted.value > 5 * 2**30 and unaccounted.origin == f"{seed_case}/meminfo"
    assert report.facts["meminfo.MemTotal"] == 8185937920
    assert report.facts.origin("meminfo.MemTotal") == f"{seed_case}/meminfo"
    assert report.facts.origin("no.such.fact") is None and "no.such.fact" not in report.facts
    assert report.input.kind == "folder" and report.input.label == str(seed_case)
    assert {r.id for r in report.rules} >= {"vmware-balloon"}
    assert next(r for r in report.rules if r.id == "vmware-balloon").state == "fired"
    validate_document(report.document)


def test_the_document_is_what_memdiag_analyze_prints(seed_case):
    cli = subprocess.run([sys.executable, "-m", "memdiag", "analyze", str(seed_case), "--format", "json",
                          "--overrides", ""], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert cli.returncode == 1, cli.stderr
    report = memdiag.diagnose(seed_case)
    assert without_times(report.document) == without_times(json.loads(cli.stdout))
    assert json.loads(report.to_json()) == report.document


def test_renderings_are_the_registered_formats(seed_case):
    report = memdiag.diagnose(seed_case)
    md = report.to_markdown()
    assert md.startswith("## memdiag: WARNING") and "vmware-balloon" in md
    text = report.to_text(width=80)
    assert text.startswith("memdiag ") and "\033[" not in text
    assert "\033[" in report.to_text(color=True)
    assert report.render("html").lstrip().lower().startswith("<!doctype html>")
    assert report.render("markdown") == md
    with pytest.raises(memdiag.UsageError, match="unknown format 'yaml'"):
        report.render("yaml")


def test_pasted_text_as_a_string():
    pasted = (OFFLINE / "pasted" / "ticket-centos7-with-prompts.txt").read_text()
    report = memdiag.diagnose(text=pasted)
    from_file = memdiag.diagnose(OFFLINE / "pasted" / "ticket-centos7-with-prompts.txt")
    assert report.input.label == "pasted text"
    assert report.verdict == from_file.verdict
    assert [f.rule_id for f in report.findings] == [f.rule_id for f in from_file.findings]
    assert report.facts.origin("meminfo.MemTotal").startswith("pasted text")


def test_a_live_root(tmp_path):
    report = memdiag.diagnose(HOSTS / "vmware-guest", live=True)
    assert report.input.kind == "live"
    assert any(f.rule_id == "vmware-balloon" for f in report.findings)
    assert memdiag.diagnose().input.kind == "live"  # "/" is this host


def test_params_and_overrides(seed_case, tmp_path):
    calm = memdiag.diagnose(seed_case, params={"vmware-balloon": {"min_unaccounted": "100GiB"}})
    assert "vmware-balloon" not in [f.rule_id for f in calm.findings]
    site = tmp_path / "overrides.yaml"
    site.write_text("rules:\n  vmware-balloon:\n    enabled: false\n    reason: the balloon is expected here\n")
    off = memdiag.diagnose(seed_case, overrides=site)
    assert next(r for r in off.rules if r.id == "vmware-balloon").state == "disabled"


def test_overrides_are_never_picked_up_unasked(seed_case, tmp_path, monkeypatch):
    site = tmp_path / "overrides.yaml"
    site.write_text("rules:\n  vmware-balloon:\n    enabled: false\n    reason: expected\n")
    monkeypatch.setenv("MEMDIAG_OVERRIDES", str(site))
    report = memdiag.diagnose(seed_case)
    assert next(r for r in report.rules if r.id == "vmware-balloon").state == "fired"


def test_extra_rules_and_their_problems(seed_case, tmp_path):
    rules = tmp_path / "site.yaml"
    rules.write_text(
        "rules:\n"
        "  - id: site-small-host\n    title: Small host\n    severity: info\n    confidence: confirmed\n"
        "    params: {max_total: 16 GiB}\n"
        "    condition: meminfo.MemTotal < params.max_total\n    message: Only {meminfo.MemTotal|bytes}.\n"
        "    evidence: [meminfo.MemTotal]\n    remediation: {steps: Add memory.}\n")
    report = memdiag.diagnose(seed_case, rules=[rules])
    assert "site-small-host" in [f.rule_id for f in report.findings]
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [\n")
    report = memdiag.diagnose(seed_case, rules=[broken])
    assert any("broken.yaml" in n and "not valid YAML" in n for n in report.notes)


def test_reports_are_read_only(seed_case):
    report = memdiag.diagnose(seed_case)
    with pytest.raises(AttributeError):
        report.findings = ()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        report.findings[0].severity = "info"  # type: ignore[misc]
    with pytest.raises(TypeError):
        report.facts["meminfo.MemTotal"] = 1  # type: ignore[index]
    top = report.facts["processes.top"]
    assert isinstance(top, tuple)
    with pytest.raises(TypeError):
        top[0]["rss"] = 0
    doc = report.document
    doc["findings"].clear()
    assert report.document["findings"] and report.findings


@pytest.mark.parametrize("call, error, words", [
    (lambda: memdiag.diagnose("/no/such/capture"), memdiag.InputError, "no such file or folder"),
    (lambda: memdiag.diagnose(REPO / "pyproject.toml"), memdiag.InputError, "no recognised command output"),
    (lambda: memdiag.diagnose(text="hello\n"), memdiag.InputError, "no recognised command output"),
    (lambda: memdiag.diagnose(str(OFFLINE), text="x"), memdiag.UsageError, "either source or text"),
    (lambda: memdiag.diagnose(params={"nope": {"x": 1}}), memdiag.UsageError, "params names rule 'nope'"),
    (lambda: memdiag.diagnose(params={"vmware-balloon": {"x": 1}}), memdiag.UsageError, "has no param 'x'"),
    (lambda: memdiag.diagnose(overrides="/no/such.yaml"), memdiag.UsageError, "overrides file not found"),
    (lambda: memdiag.diagnose(timeout=0), memdiag.UsageError, "positive number"),
    (lambda: memdiag.Plugins(blocked="text"), memdiag.UsageError, "a list"),
])
def test_errors_are_memdiag_errors(call, error, words):
    with pytest.raises(error, match=words) as info:
        call()
    assert isinstance(info.value, memdiag.MemdiagError) and info.value.exit_code == 3


def test_blocked_plugins(seed_case):
    report = memdiag.diagnose(seed_case, plugins=memdiag.Plugins(blocked=["markdown"]))
    with pytest.raises(memdiag.UsageError, match="unknown format 'markdown'"):
        report.to_markdown()
    assert memdiag.diagnose(seed_case).to_markdown()  # another selection, another registry


def test_extra_plugin_objects_add_a_format(seed_case):
    from memdiag.hookspecs import hookimpl

    class OneLine:
        @hookimpl
        def memdiag_report_formats(self, register):
            register("oneline", lambda doc, options: f"{doc['host']} {doc['verdict']['severity']}")

    report = memdiag.diagnose(seed_case, plugins=memdiag.Plugins(extra=[OneLine()]))
    assert report.render("oneline") == "unknown warning"


def test_deliver_dry_run_and_errors(seed_case, tmp_path, monkeypatch):
    monkeypatch.setenv("MEMDIAG_STATE_DIR", str(tmp_path / "state"))
    report = memdiag.diagnose(seed_case)
    with pytest.raises(memdiag.UsageError, match="no configuration file"):
        memdiag.deliver(report)
    config = tmp_path / "config.yaml"
    config.write_text("sinks:\n  - name: prom\n    type: textfile\n    directory: " + str(tmp_path / "prom") + "\n")
    (tmp_path / "prom").mkdir()
    dry = memdiag.deliver(report, config=config, dry_run=True)
    assert dry.ok and "memdiag_finding_active" in dry.dry_run_output
    assert not (tmp_path / "prom" / "memdiag.prom").exists()
    done = memdiag.deliver(report, config=config)
    assert done.ok and done.exit_code == 0 and done.sinks["prom"].ok
    assert "vmware-balloon" in (tmp_path / "prom" / "memdiag.prom").read_text()
    missing = memdiag.deliver(report, config=config, sinks=["nope"])
    assert not missing.ok and missing.exit_code == 5 and "no sink named 'nope'" in missing.messages[0]
    with pytest.raises(memdiag.UsageError):
        memdiag.deliver(report, config=config, sinks="prom")  # type: ignore[arg-type]


def test_a_report_from_a_document_of_another_host(seed_case):
    report = memdiag.diagnose(seed_case)
    again = memdiag.Report.from_document(json.loads(report.to_json()))
    assert again.findings == report.findings and again.verdict == report.verdict
    assert again.to_markdown() == report.to_markdown() and again.document == report.document
    assert again.facts["meminfo.MemTotal"] == report.facts["meminfo.MemTotal"]
    assert again.facts.origin("meminfo.MemTotal") is None  # a document carries no origins
    broken = report.document
    broken["findings"][0]["severity"] = "dire"
    with pytest.raises(memdiag.InputError, match="findings/0/severity: 'dire' is not one of"):
        memdiag.Report.from_document(broken)
