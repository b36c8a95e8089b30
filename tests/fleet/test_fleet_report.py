"""``memdiag report``: many hosts' JSON results -> one table sorted by severity, hosts grouped by
shared finding, in text, JSON and Markdown; bad files become failed rows, never tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memdiag.plugins import fleet

from .helpers import DOC_NAMES, load_doc, memdiag


def write(folder: Path, name: str, doc) -> Path:
    path = folder / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A gathered results folder: the four hand-made hosts, one failure record, one corrupt file,
    an older result of db-03, and a capture without a host name (named after its file)."""
    folder = tmp_path / "results"
    (folder / "rack2").mkdir(parents=True)
    for name in DOC_NAMES:
        write(folder, f"{name}.json", load_doc(name))
    older = load_doc("healthy")
    older.update(host="db-03", time="2024-05-13T09:00:00Z")
    write(folder / "rack2", "db-03-yesterday.json", older)
    nameless = load_doc("vmware-balloon")
    nameless["host"] = "unknown"
    for f in nameless["findings"]:
        f["host"] = "unknown"
    write(folder / "rack2", "esx-guest-17.json", nameless)
    write(folder, "gpu-01.json", {"host": "gpu-01", "error": "memdiag: not installed and no install_from given"})
    write(folder, "truncated.json", '{"schema_version": 1, "host": "x"')
    write(folder, "notes.txt", "ignored: not a .json file")
    return folder


def test_text_table_sorted_by_severity(results):
    proc = memdiag("report", str(results))
    assert proc.returncode == 2, proc.stderr  # the worst host is critical
    lines = proc.stdout.splitlines()
    assert lines[0] == "7 hosts: 1 critical, 2 warning, 2 failed, 1 info, 1 ok"
    table = lines[2:lines.index("", 2)]
    assert table[0].split() == ["HOST", "VERDICT", "TOP", "FINDING", "UNACCOUNTED"]
    assert [row.split()[:2] for row in table[1:]] == [
        ["db-03", "CRITICAL"],
        ["centos74-app01", "WARNING"],
        ["esx-guest-17", "WARNING"],
        ["gpu-01", "FAILED"],
        ["truncated", "FAILED"],
        ["batch-11", "INFO"],
        ["web-07", "OK"],
    ]
    assert "memory-exhausted (confirmed) +1" in table[1] and table[1].endswith("200.00 MiB (1%)")
    assert table[2].endswith("5.07 GiB (67%)")
    assert "memdiag: not installed and no install_from given" in table[4]
    assert "not readable as JSON" in table[5]
    text = proc.stdout
    assert "  2 hosts: VMware balloon driver is holding guest memory (vmware-balloon, warning, suspected)\n" \
           "    centos74-app01, esx-guest-17\n" in text
    assert f"Older results not shown (a newer one of the same host is):\n  db-03: {results}/rack2/db-03-yesterday.json " \
           "(2024-05-13T09:00:00Z)\n" in text


def test_terminal_width_cuts_only_the_finding_column(results):
    text = fleet.render_text(fleet.load_fleet([str(results)]), width=60)
    row = next(line for line in text.splitlines() if line.startswith("gpu-01"))
    assert row.endswith("…  -") and len(row) <= 60


def test_newest_result_per_host_wins(results):
    f = fleet.load_fleet([str(results)])
    db = [r for r in f.hosts if r.host == "db-03"]
    assert len(db) == 1 and db[0].severity == "critical"
    assert [(r.host, Path(r.path).name) for r in f.superseded] == [("db-03", "db-03-yesterday.json")]


def test_clones_with_generic_host_names_stay_apart(tmp_path):
    for name in ("clone-a", "clone-b"):
        doc = load_doc("healthy")
        doc["host"] = "localhost.localdomain"
        write(tmp_path, f"{name}.json", doc)
    f = fleet.load_fleet([str(tmp_path)])
    assert [r.host for r in f.hosts] == ["clone-a", "clone-b"] and f.superseded == []


def test_json(results):
    proc = memdiag("report", "--format", "json", str(results))
    assert proc.returncode == 2
    out = json.loads(proc.stdout)
    assert out["counts"] == {"critical": 1, "warning": 2, "unknown": 0, "info": 1, "ok": 1, "failed": 2}
    assert [h["host"] for h in out["hosts"]] == ["db-03", "centos74-app01", "esx-guest-17", "batch-11", "web-07"]
    vm = out["hosts"][1]
    assert vm["top_finding"] == {"rule_id": "vmware-balloon", "title": "VMware balloon driver is holding guest memory",
                                 "severity": "warning", "confidence": "suspected"}
    assert vm["unaccounted_bytes"] == 5316880 * 1024
    assert out["groups"][0]["rule_id"] == "memory-exhausted"
    balloon = next(g for g in out["groups"] if g["rule_id"] == "vmware-balloon")
    assert balloon["count"] == 2 and balloon["hosts"] == ["centos74-app01", "esx-guest-17"]
    assert {f["host"] for f in out["failed"]} == {"gpu-01", "truncated"}


def test_markdown(results):
    proc = memdiag("report", str(results), "--format", "markdown")
    md = proc.stdout
    assert md.startswith("## memdiag fleet report: 7 hosts: 1 critical, 2 warning, 2 failed, 1 info, 1 ok\n")
    assert ("- **2 hosts: VMware balloon driver is holding guest memory** (`vmware-balloon`, warning, suspected): "
            "centos74-app01, esx-guest-17") in md
    assert "| db-03 | CRITICAL | memory-exhausted (confirmed) +1 | 200.00 MiB (1%) |" in md
    assert "| gpu-01 | FAILED | memdiag: not installed and no install\\_from given | - |" in md


def test_twelve_hosts_share_one_finding(tmp_path):
    for i in range(12):
        doc = load_doc("vmware-balloon")
        doc["host"] = f"vm{i:02d}"
        if i % 4 == 0:
            doc["findings"][0]["confidence"] = "likely"
        write(tmp_path, f"vm{i:02d}.json", doc)
    write(tmp_path, "web.json", load_doc("healthy"))
    out = memdiag("report", str(tmp_path)).stdout
    assert "  12 hosts: VMware balloon driver is holding guest memory (vmware-balloon, warning, 3 likely, 9 suspected)" in out
    assert out.splitlines()[0] == "13 hosts: 12 warning, 1 ok"


def test_all_healthy_exits_zero_and_failed_only_exits_unknown(tmp_path):
    write(tmp_path, "a.json", load_doc("healthy"))
    assert memdiag("report", str(tmp_path / "a.json")).returncode == 0
    write(tmp_path, "b.json", {"host": "b", "error": "unreachable"})
    assert memdiag("report", str(tmp_path)).returncode == 3


def test_schema_violations_name_the_file_and_the_field(tmp_path):
    doc = load_doc("healthy")
    doc["verdict"]["severity"] = "fine"
    write(tmp_path, "odd.json", doc)
    f = fleet.load_fleet([str(tmp_path)])
    assert f.failed[0].host == "odd"
    assert f.failed[0].error.startswith("not a findings document: verdict/severity: 'fine' is not one of")


@pytest.mark.parametrize("args, message", [
    (["/nonexistent/results"], "memdiag: /nonexistent/results: no such file or folder"),
    (["--format", "html", "DIR"], "memdiag: report formats are text, json, markdown; got --format html"),
    (["DIR"], "memdiag: no *.json results found in DIR"),
])
def test_usage_errors_are_one_line(tmp_path, args, message):
    args = [a.replace("DIR", str(tmp_path)) for a in args]
    proc = memdiag("report", *args)
    assert proc.returncode == 3
    # (lines before it may be other plugins' load warnings, not this command's)
    assert proc.stderr.strip().splitlines()[-1] == message.replace("DIR", str(tmp_path))
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
