"""``memdiag render``: a saved findings document in any report format, with the verdict's exit code."""

from __future__ import annotations

import json

import pytest

from .helpers import DOCS, memdiag


@pytest.mark.parametrize("name, code", [("vmware-balloon", 1), ("oom-critical", 2), ("healthy", 0), ("problems", 0)])
def test_every_format_from_a_saved_document(name, code):
    path = str(DOCS / f"{name}.json")
    doc = json.loads((DOCS / f"{name}.json").read_text())
    for fmt in ("text", "json", "markdown", "html", "nagios"):
        proc = memdiag("render", path, "--format", fmt)
        assert proc.returncode == code, proc.stderr
        assert proc.stdout.strip()
    assert json.loads(memdiag("render", path, "--format", "json").stdout) == doc
    assert memdiag("render", path, "--format", "markdown").stdout.startswith(
        f"## memdiag: {doc['verdict']['severity'].upper()} on `{doc['host']}`")


def test_bad_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1}')
    failed = tmp_path / "failed.json"
    failed.write_text('{"host": "db-09", "error": "ssh: connection refused"}')
    for path, message in [
        (bad, f"memdiag: {bad}: not a findings document: document: 'tool' is a required property"),
        (failed, f"memdiag: {failed}: memdiag could not run on db-09: ssh: connection refused"),
        (tmp_path / "missing.json", f"memdiag: {tmp_path / 'missing.json'}: not readable as JSON: No such file or directory"),
    ]:
        proc = memdiag("render", str(path))
        assert proc.returncode == 3
        assert proc.stderr.strip().splitlines()[-1] == message
    proc = memdiag("render", str(DOCS / "healthy.json"), "--format", "pdf")
    assert proc.returncode == 3 and "unknown format 'pdf'" in proc.stderr
