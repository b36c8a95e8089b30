"""The founding case, read from ../shared/seed-case as it is: the VMware balloon, suspected."""

from __future__ import annotations

import re

import pytest

from testkit import validate_document

KB = 1024


@pytest.fixture(scope="module")
def seed_doc(seed_case):
    import json
    import subprocess
    import sys

    from testkit import REPO

    proc = subprocess.run([sys.executable, "-m", "memdiag", "analyze", str(seed_case), "--format", "json"],
                          capture_output=True, text=True, cwd=str(REPO), timeout=120)
    assert proc.returncode == 1, proc.stderr  # a warning
    doc = json.loads(proc.stdout)
    validate_document(doc)
    return doc


def finding(doc, rule_id):
    return next(f for f in doc["findings"] if f["rule_id"] == rule_id)


def test_verdict_is_the_vmware_balloon_suspected(seed_doc):
    assert seed_doc["verdict"]["rule_id"] == "vmware-balloon"
    assert seed_doc["verdict"]["severity"] == "warning"
    f = finding(seed_doc, "vmware-balloon")
    assert f["confidence"] == "suspected"
    # 3.10 kernel: VmallocUsed is address space, so the larger figure is reported, with the reason.
    assert "5.07 GiB" in f["message"] and "67% of MemTotal" in f["message"]


def test_accounting_to_the_kb(seed_doc):
    acc, facts = seed_doc["accounting"], seed_doc["facts"]
    assert acc["unaccounted_bytes"] == 5_316_880 * KB
    assert facts["accounting.unaccounted_with_vmalloc_bytes"] == 5_125_296 * KB  # the seed's 4.89 GiB
    assert round(facts["accounting.unaccounted_with_vmalloc_bytes"] / acc["total_bytes"], 2) == 0.64
    assert facts["accounting.user_bytes"] == 2_396_180 * KB
    assert facts["accounting.user_crosscheck_bytes"] == 2_395_944 * KB
    assert facts["accounting.used_bytes"] == 7_868_824 * KB
    assert any("predates 4.4" in n and "VmallocChunk" in n for n in acc["notes"])
    assert sum(s["bytes"] for s in acc["segments"]) == acc["total_bytes"]


def test_evidence_names_vmtoolsd_and_summed_res(seed_doc):
    f = finding(seed_doc, "vmware-balloon")
    ev = {e["fact"]: e for e in f["evidence"]}
    assert "guest agent vmtoolsd is running" in ev["platform.hypervisor_signals"]["value"]
    assert ev["platform.hypervisor_signals"]["origin"].endswith("top.txt")
    assert ev["processes.rss_total"]["display"] == "1.97 GiB"
    assert ev["accounting.unaccounted_bytes"]["origin"].endswith("meminfo")
    assert seed_doc["facts"]["processes.count"] == 20


def test_names_the_confirming_command(seed_doc):
    f = finding(seed_doc, "vmware-balloon")
    assert "vmware-toolbox-cmd stat balloon" in f["remediation"]["confirm"]
    assert "/sys/kernel/debug/vmmemctl" in f["remediation"]["confirm"]


def test_notes_the_inputs_were_captured_apart(seed_doc):
    f = finding(seed_doc, "inputs-captured-apart")
    assert f["severity"] == "info"
    assert "top shows 181.42 MiB free memory, meminfo 122.32 MiB" in f["message"]


def test_processes_fall_short_of_used(seed_doc):
    f = finding(seed_doc, "rss-far-below-used")
    assert "1.97 GiB" in f["message"]


def test_text_report_leads_with_the_verdict_and_draws_the_picture(memdiag, seed_case):
    r = memdiag("analyze", str(seed_case))
    assert r.code == 1, r.err
    lines = r.out.splitlines()
    verdict = lines[lines.index("") + 1]  # the first line after the heading, however long the path
    assert verdict.startswith("WARNING: VMware balloon driver is holding guest memory (suspected)")
    assert "Where memory went (MemTotal 7.62 GiB)" in r.out
    assert re.search(r"^  \? unaccounted +5\.07 GiB +67%$", r.out, re.M), r.out
    assert max(map(len, lines)) <= 80
