"""memdiag diff: fact-by-fact growth between two moments, and growth rules over the pair."""

from __future__ import annotations

import json
import re
import shutil
import tarfile
from pathlib import Path


from memdiag import cli

SOS = Path(__file__).parent.parent / "fixtures" / "offline" / "sos" / "sosreport-centos7-mini"
KIB, MIB = 1024, 1024**2


def later(tmp_path, name="after", slab_kib=600 * 1024, date="Sat Nov 25 22:47:02 UTC 2017", host=None):
    """The founding case's sosreport six hours on: SUnreclaim grew, page cache shrank as much."""
    after = tmp_path / name
    shutil.copytree(SOS, after, symlinks=True)
    meminfo = after / "proc/meminfo"
    text = meminfo.read_text()

    def bump(text, field, kib):
        return re.sub(rf"^({field}:\s+)(\d+)", lambda m: m.group(1) + str(int(m.group(2)) + kib), text, flags=re.M)

    for field, kib in (("SUnreclaim", slab_kib), ("Slab", slab_kib), ("Cached", -slab_kib)):
        text = bump(text, field, kib)
    meminfo.write_text(text)
    (after / "sos_commands/date/date_--utc").write_text(date + "\n")
    if host:
        (after / "sos_commands/host/hostname").write_text(host + "\n")
        (after / "sos_commands/kernel/uname_-a").write_text(f"Linux {host} 3.10.0-693.el7.x86_64 #1 SMP x86_64\n")
    return after


def run(capsys, *argv):
    code = cli.main(["diff", *map(str, argv), "--no-sinks"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_diff_text_report_and_growth_rule(tmp_path, capsys):
    code, out, err = run(capsys, SOS, later(tmp_path))
    assert err == ""
    assert out.startswith(f"Changes from {SOS} to {tmp_path / 'after'} over 6.0 hours")
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith("  meminfo.")}
    assert "+600.00 MiB" in " ".join(rows["meminfo.SUnreclaim"])
    assert "+100.00 MiB/h" in " ".join(rows["meminfo.SUnreclaim"])
    assert "-600.00 MiB" in " ".join(rows["meminfo.Cached"])
    assert "Unreclaimable slab is growing between two captures" in out
    assert code == 1  # warnings


def test_diff_json(tmp_path, capsys):
    code, out, _ = run(capsys, SOS, later(tmp_path), "--format", "json")
    doc = json.loads(out)
    assert doc["elapsed_hours"] == 6.0
    change = {c["fact"]: c for c in doc["changes"]}["meminfo.SUnreclaim"]
    assert change["change"] == 600 * MIB and change["per_hour"] == 100 * MIB
    assert change["before"] == 56500 * KIB
    fired = [f["rule_id"] for f in doc["diagnosis"]["findings"]]
    assert "slab-unreclaimable-growing" in fired


def test_small_growth_does_not_fire(tmp_path, capsys):
    _, out, _ = run(capsys, SOS, later(tmp_path, slab_kib=10 * 1024), "--format", "json")
    fired = [f["rule_id"] for f in json.loads(out)["diagnosis"]["findings"]]
    assert "slab-unreclaimable-growing" not in fired


def test_archives_and_hours_override(tmp_path, capsys):
    archives = []
    for name, folder in (("before", SOS), ("after", later(tmp_path))):
        path = tmp_path / f"{name}.tar.xz"
        with tarfile.open(path, "w:xz") as tar:
            tar.add(folder, arcname="sosreport-centos7")
        archives.append(path)
    _, out, _ = run(capsys, *archives, "--hours", "2", "--format", "json")
    doc = json.loads(out)
    assert doc["elapsed_hours"] == 2
    assert {c["fact"]: c for c in doc["changes"]}["meminfo.SUnreclaim"]["per_hour"] == 300 * MIB


def test_wrong_order_and_other_host_refused(tmp_path, capsys):
    code, _, err = run(capsys, later(tmp_path), SOS)
    assert code == 3 and "was captured after" in err and "give the earlier one first" in err
    code, _, err = run(capsys, SOS, later(tmp_path, "other", host="web07"))
    assert code == 3 and "different hosts (centos7.example.com, web07)" in err
    code, _, _ = run(capsys, SOS, tmp_path / "other", "--any-host")
    assert code in (0, 1, 2)


def test_pasted_inputs_have_no_time(tmp_path, capsys):
    fix = SOS.parent.parent / "pasted" / "ticket-centos7-with-prompts.txt"
    code, out, _ = run(capsys, fix, fix)
    assert "elapsed time unknown: give --hours for rates" in out
    assert "(no size changed)" in out
