"""memdiag analyze A B C, and a folder of many captures: per-host results and a summary table."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

from memdiag import cli
from memdiag.plugins.inputs import expand

FIX = Path(__file__).parent.parent / "fixtures" / "offline"
SOS = FIX / "sos" / "sosreport-centos7-mini"
TICKET = FIX / "pasted" / "ticket-centos7-with-prompts.txt"


def fleet(tmp_path):
    folder = tmp_path / "captures"
    folder.mkdir()
    shutil.copytree(SOS, folder / "db01", symlinks=True)
    other = folder / "web07"
    shutil.copytree(SOS, other / "sosreport-web07", symlinks=True)  # unpacked with its top folder
    (other / "sosreport-web07/sos_commands/host/hostname").write_text("web07\n")
    (other / "sosreport-web07/sos_commands/kernel/uname_-a").write_text("Linux web07 5.14.0 #1 SMP x86_64\n")
    with tarfile.open(folder / "app3.tar.gz", "w:gz") as tar:
        tar.add(SOS, arcname="sosreport-app3")
    return folder


def test_expand_folder_of_captures(tmp_path):
    folder = fleet(tmp_path)
    assert expand(str(folder)) == [str(folder / "app3.tar.gz"), str(folder / "db01"), str(folder / "web07")]
    assert expand(str(SOS)) == [str(SOS)]
    assert expand(str(TICKET)) == [str(TICKET)]
    (folder / "notes.txt").write_text("ticket notes")  # anything else: the folder is one input
    assert expand(str(folder)) == [str(folder)]


def test_analyze_many_summary_table_and_bad_input(tmp_path, capsys):
    folder = fleet(tmp_path)
    bad = FIX / "malformed" / "random.bin"
    code = cli.main(["analyze", str(folder), str(TICKET), str(bad), "--no-sinks", "--color", "never"])
    out, err = capsys.readouterr()
    assert err.strip() == f"memdiag: {bad}: no recognised command output or /proc file: binary data where text was expected"
    table = out[out.index("HOST "):].splitlines()
    assert table[0].split() == ["HOST", "VERDICT", "TOP", "FINDING", "UNACCOUNTED"]
    hosts = sorted(line.split()[0] for line in table[1:])
    assert hosts == ["centos7.example.com", "centos7.example.com", "centos7.example.com", "web07"]
    assert code == 3  # one input could not be read, and nothing was critical


def test_analyze_many_json(tmp_path, capsys):
    folder = fleet(tmp_path)
    assert cli.main(["analyze", str(folder), "--format", "json", "--no-sinks"]) == 1
    out = capsys.readouterr().out
    docs, decoder, pos = [], json.JSONDecoder(), 0
    while out[pos:].strip():  # one document per input, one after another (or a list of them)
        doc, pos = decoder.raw_decode(out, pos + len(out[pos:]) - len(out[pos:].lstrip()))
        docs.extend(doc if isinstance(doc, list) else [doc])
    assert sorted(d["host"] for d in docs) == ["centos7.example.com", "centos7.example.com", "web07"]
