"""The report formats and the fleet report on real diagnoses: ``memdiag analyze ... --format json``
of captured hosts and of the founding case, not hand-made documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memdiag.plugins.formats import html as html_format
from memdiag.plugins.formats import markdown, nagios

from .helpers import HERE, SEED_CASE, memdiag

HOSTS = HERE / "hosts"
WORDS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}


def analyze(path: Path, *extra: str) -> tuple[dict, int]:
    proc = memdiag("analyze", str(path), "--format", "json", *extra)
    assert proc.returncode in (0, 1, 2, 3), proc.stderr
    return json.loads(proc.stdout), proc.returncode


@pytest.fixture(scope="module")
def real_results(tmp_path_factory) -> Path:
    """One JSON result per captured host, named after the host directory, plus the founding case."""
    out = tmp_path_factory.mktemp("real-results")
    for host in sorted(p.name for p in HOSTS.iterdir()):
        doc, _ = analyze(HOSTS / host)
        (out / f"{host}.json").write_text(json.dumps(doc))
    if SEED_CASE.is_dir():
        doc, _ = analyze(SEED_CASE)
        (out / "seed-case.json").write_text(json.dumps(doc))
    return out


@pytest.mark.parametrize("host", ["vmware-guest", "balloon-critical", "healthy"])
def test_every_format_renders_a_real_diagnosis(host, tmp_path):
    doc, code = analyze(HOSTS / host)
    assert nagios.render(doc, {}).startswith(f"MEMDIAG {WORDS[code]} - ")
    md = markdown.render(doc, {})
    assert md.startswith(f"## memdiag: {doc['verdict']['severity'].upper()} on `{doc['host']}`")
    assert "| **MemTotal** |" in md  # the breakdown table from the real accounting segments
    page = html_format.render(doc, {})
    rects = page.count('class="segment"')
    assert rects == len(doc["accounting"]["segments"]) > 0
    for f in doc["findings"]:
        assert f"#### {f['severity'].upper()}: {markdown.text(f['title'])}" in md
        assert f'data-rule="{f["rule_id"]}"' in page


def test_cli_formats_agree_with_exit_codes():
    for host in ("vmware-guest", "balloon-critical", "healthy"):
        for fmt in ("markdown", "html", "nagios"):
            proc = memdiag("analyze", str(HOSTS / host), "--format", fmt)
            assert proc.returncode in (0, 1, 2), proc.stderr
            if fmt == "nagios":
                assert proc.stdout.startswith(f"MEMDIAG {WORDS[proc.returncode]} - ")


def test_founding_case_as_the_cli_reads_it(tmp_path):
    """`memdiag analyze /work/shared/seed-case --format json` (the loose meminfo and top.txt), as
    the user runs it, through every format: the balloon warning, 5.07 GiB unaccounted."""
    if not SEED_CASE.is_dir():
        pytest.fail(f"the founding case is missing: {SEED_CASE}")
    doc, code = analyze(SEED_CASE)
    assert code == 1 and doc["verdict"]["severity"] == "warning"
    top = doc["findings"][0]
    assert (top["rule_id"], top["confidence"]) == ("vmware-balloon", "suspected")
    assert doc["accounting"]["unaccounted_bytes"] == 5316880 * 1024

    status = nagios.render(doc, {}).splitlines()[0]
    assert status.startswith("MEMDIAG WARNING - ") and "vmware-balloon(warning)" in status
    assert "'mem_unaccounted'=5444485120B;;;0;8185937920" in status
    md = markdown.render(doc, {})
    assert "#### WARNING: VMware balloon driver is holding guest memory" in md
    assert "| `accounting.unaccounted_bytes` | 5.07 GiB |" in md
    page = html_format.render(doc, {})
    assert 'data-key="unaccounted" data-bytes="5444485120"' in page

    # and the same through the CLI, from the saved JSON
    saved = tmp_path / "seed-case.json"
    saved.write_text(json.dumps(doc))
    proc = memdiag("render", str(saved), "--format", "nagios")
    assert proc.returncode == 1 and proc.stdout.splitlines()[0] == status


def test_fleet_report_of_real_results(real_results):
    proc = memdiag("report", str(real_results), "--format", "json")
    out = json.loads(proc.stdout)
    by_host = {h["host"]: h for h in out["hosts"]}
    assert by_host["centos74-app01"]["severity"] == "warning"
    assert by_host["centos74-app01"]["top_finding"]["rule_id"] == "vmware-balloon"
    assert by_host["centos74-app01"]["unaccounted_bytes"] == 5444485120
    assert by_host["esx-guest-17"]["severity"] == "critical"
    assert by_host["web-07"]["severity"] == "ok"
    assert out["hosts"][0]["host"] == "esx-guest-17"  # the most severe first
    balloon = next(g for g in out["groups"] if g["rule_id"] == "vmware-balloon")
    assert balloon["count"] >= 2 and {"centos74-app01", "esx-guest-17"} <= set(balloon["hosts"])
    assert proc.returncode == 2
    assert out["failed"] == []


def test_analyze_many_hosts_then_report(tmp_path):
    """The shell-loop way: one analyze per capture, results in a folder, one report."""
    for host in ("vmware-guest", "healthy"):
        doc, _ = analyze(HOSTS / host)
        (tmp_path / f"{host}.json").write_text(json.dumps(doc))
    text = memdiag("report", str(tmp_path)).stdout
    assert text.splitlines()[0] == "2 hosts: 1 warning, 1 ok"
    assert "1 host: VMware balloon driver is holding guest memory (vmware-balloon, warning, suspected)" in text
