"""A folder holding a copied host tree (proc/, etc/) is read as that tree, not descended into."""

from __future__ import annotations

import json
import subprocess
import sys


def test_a_folder_with_only_proc_keeps_its_root_and_host(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "meminfo").write_text("MemTotal: 1000000 kB\nMemFree: 500000 kB\n")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "hostname").write_text("web-7\n")
    proc = subprocess.run([sys.executable, "-m", "memdiag", "analyze", str(tmp_path), "--format", "json"],
                          capture_output=True, text=True)
    doc = json.loads(proc.stdout)
    assert doc["host"] == "web-7"
    assert doc["facts"]["meminfo.MemTotal"] == 1000000 * 1024
    assert doc["problems"] == []  # etc/hostname is part of the tree, not an unrecognised output


def test_a_prose_file_is_one_note_not_one_per_paragraph():
    from memdiag.recognize import split

    text = "# Notes from the ticket\n\nThe host was slow.\n\n## Timeline\n\nAt 10:00 it swapped.\n"
    result = split(text, "ticket/README.md")
    assert result.chunks == []
    assert result.unrecognised == [("ticket/README.md", "no command output recognised in it "
                                    "(it begins '# Notes from the ticket'); skipped")]
