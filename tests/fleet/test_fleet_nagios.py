"""Nagios plugin output: status line, perfdata syntax, long output, and agreement with exit codes."""

from __future__ import annotations

import re

from memdiag.document import exit_code
from memdiag.plugins.formats import nagios

from .helpers import load_doc

STATUS = re.compile(r"^MEMDIAG (OK|WARNING|CRITICAL|UNKNOWN) - (?P<text>[^|\n]+?) \| (?P<perf>.+)$")
# 'label'=value[UOM];[warn];[crit];[min];[max] (plugin guidelines), label without ' or =
PERF = re.compile(
    r"^'(?P<label>[^'=]+)'=(?P<value>-?\d+(\.\d+)?)(?P<uom>s|ms|us|%|B|KB|MB|TB|c)?"
    r"(;(?P<warn>[^;]*))?(;(?P<crit>[^;]*))?(;(?P<min>-?\d+(\.\d+)?)?)?(;(?P<max>-?\d+(\.\d+)?)?)?$"
)
WORDS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}


def perf_items(output: str) -> dict[str, re.Match]:
    first = output.splitlines()[0]
    m = STATUS.match(first)
    assert m, first
    items = {}
    for item in m.group("perf").split(" "):
        pm = PERF.match(item)
        assert pm, f"bad perfdata item {item!r}"
        items[pm.group("label")] = pm
    return items


def test_status_word_agrees_with_exit_code(any_doc):
    out = nagios.render(any_doc, {})
    word, code = nagios.state(any_doc)
    assert code == exit_code(any_doc)
    assert out.startswith(f"MEMDIAG {WORDS[code]} - ")
    assert word == WORDS[code]


def test_every_perfdata_item_follows_the_guidelines(any_doc):
    items = perf_items(nagios.render(any_doc, {}))
    assert {"findings_critical", "findings_warning", "findings_info", "evidence_problems"} <= set(items)
    for m in items.values():
        assert "," not in m.group(0)  # C locale: dot decimals, no grouping


def test_founding_case_output():
    doc = load_doc("vmware-balloon")
    out = nagios.render(doc, {})
    lines = out.splitlines()
    assert lines[0].startswith(
        "MEMDIAG WARNING - 1 finding: vmware-balloon(warning); VMware balloon driver is holding guest memory (suspected) | ")
    items = perf_items(out)
    assert items["findings_warning"].group("value") == "1"
    assert items["findings_warning"].group("warn") == "0"  # range 0: warn above zero, as the state does
    assert items["findings_critical"].group("crit") == "0"
    unacc = items["mem_unaccounted"]
    assert (unacc.group("value"), unacc.group("uom")) == ("5444485120", "B")
    assert unacc.group("max") == str(7994080 * 1024)
    ratio = items["mem_unaccounted_ratio"]
    assert (ratio.group("value"), ratio.group("uom"), ratio.group("max")) == ("66.51", "%", "100")
    # long output: exactly one line per finding
    assert lines[1:] == [
        "WARNING vmware-balloon (suspected): The VMware balloon driver is suspected of holding 5.07 GiB "
        "(67% of MemTotal) that no meminfo field or process accounts for."
    ]


def test_critical_host_lists_findings_most_severe_first():
    out = nagios.render(load_doc("oom-critical"), {})
    lines = out.splitlines()
    assert lines[0].startswith("MEMDIAG CRITICAL - 2 findings: memory-exhausted(critical), swap-exhausted(warning)")
    assert [line.split()[0:2] for line in lines[1:]] == [["CRITICAL", "memory-exhausted"], ["WARNING", "swap-exhausted"]]
    items = perf_items(out)
    assert items["swap_used"].group("value") == str(4 * 1024**3 - 41943040)


def test_problems_and_broken_rules_are_reported_without_breaking_the_format():
    out = nagios.render(load_doc("problems"), {})
    lines = out.splitlines()
    assert lines[0].startswith("MEMDIAG OK - 1 finding: thp-always(info)")
    assert "2 evidence problems" in lines[0]
    assert perf_items(out)["evidence_problems"].group("value") == "2"
    # a '|' in a message would start perfdata on that line; it is replaced
    assert all("|" not in line for line in lines[1:])
    assert any(line.startswith("INFO thp-always (likely):") and line.endswith("[partial evidence]") for line in lines)
    assert "RULE ERROR slab-leak: division by zero in condition: slab.total / meminfo.Slab" in lines
    assert any(line.startswith("PROBLEM slabinfo (timeout): /proc/slabinfo:") for line in lines)


def test_unknown_values_are_left_out_not_zero():
    doc = load_doc("healthy")
    del doc["accounting"]
    doc["facts"] = {}
    items = perf_items(nagios.render(doc, {}))
    assert set(items) == {"findings_critical", "findings_warning", "findings_info", "evidence_problems"}


def test_suppressed_findings_do_not_count():
    doc = load_doc("vmware-balloon")
    doc["findings"][0]["suppressed"] = {"reason": "known: ESXi host maintenance", "by": "silence.yaml"}
    doc["verdict"] = {"severity": "ok", "summary": "No memory problem found", "rule_id": None}
    out = nagios.render(doc, {})
    assert out.startswith("MEMDIAG OK - No memory problem found |")
    assert perf_items(out)["findings_warning"].group("value") == "0"
    assert "SUPPRESSED vmware-balloon (warning): known: ESXi host maintenance" in out.splitlines()


def test_labels_never_carry_quotes_or_equals():
    assert nagios.perf("it's=x", 1) == "'it_s_x'=1"
    assert nagios.perf("ratio", 0.125, "%", minimum=0, maximum=100) == "'ratio'=0.12%;;;0;100"


def test_unknown_line():
    assert nagios.render_unknown("/proc/meminfo: permission denied\nsecond | line") == (
        "MEMDIAG UNKNOWN - /proc/meminfo: permission denied second / line"
    )
