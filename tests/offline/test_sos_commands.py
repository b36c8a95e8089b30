"""Command outputs a sosreport keeps under sos_commands/ reach the sources that read them."""

from __future__ import annotations

import json
import subprocess
import sys


def test_sysctl_and_df_of_a_sosreport(tmp_path):
    sos = tmp_path / "sosreport-web1-2026-01-01-abcdef"
    (sos / "proc").mkdir(parents=True)
    (sos / "proc" / "meminfo").write_text("MemTotal: 8000000 kB\nMemFree: 4000000 kB\n")
    (sos / "sos_commands" / "kernel").mkdir(parents=True)
    (sos / "sos_commands" / "kernel" / "sysctl_-a").write_text(
        "kernel.pid_max = 4194304\nvm.overcommit_memory = 2\nvm.overcommit_ratio = 80\nvm.swappiness = 10\n")
    (sos / "sos_commands" / "filesys").mkdir(parents=True)
    (sos / "sos_commands" / "filesys" / "df_-al_-x_autofs").write_text(
        "Filesystem     1K-blocks    Used Available Use% Mounted on\n"
        "tmpfs            4000000 3000000   1000000  75% /dev/shm\n")
    proc = subprocess.run([sys.executable, "-m", "memdiag", "analyze", str(sos), "--format", "json"],
                          capture_output=True, text=True)
    facts = json.loads(proc.stdout)["facts"]
    assert facts["sysctl.vm.overcommit_memory"] == 2 and facts["sysctl.vm.swappiness"] == 10
    assert any(k.startswith("tmpfs.") for k in facts), sorted(facts)


def test_absurd_numbers_in_top_and_free_are_refused_quickly():
    import pytest

    from memdiag.parsers import ParseError
    from memdiag.parsers.free import parse_free
    from memdiag.parsers.top import parse_top

    with pytest.raises(ParseError, match="not a plausible size"):
        parse_top("top - 10:00:00 up 1 day\nKiB Mem : " + "9" * 20000 + " total\n", "pasted")
    with pytest.raises(ParseError, match="not a plausible size"):
        parse_free("              total        used        free\nMem:   " + "9" * 999 + "  1  1\n", "pasted")
