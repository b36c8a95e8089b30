"""Recognising outputs by content, whatever the file name, and splitting pasted text."""

from __future__ import annotations

from pathlib import Path

import pytest

from memdiag.evidence import Unreadable
from memdiag.parsers import ParseError
from memdiag.parsers.free import parse_free
from memdiag.parsers.top import parse_top
from memdiag.recognize import read_text_file, recognize, split

FIX = Path(__file__).parent.parent / "fixtures" / "offline"

SINGLE = {
    "proc/meminfo-seed-centos7-3.10.txt": "proc/meminfo",
    "proc/meminfo-linux-6.18.txt": "proc/meminfo",
    "proc/vmstat-linux-6.18.txt": "proc/vmstat",
    "proc/buddyinfo-linux-6.18.txt": "proc/buddyinfo",
    "proc/slabinfo-linux-6.18.txt": "proc/slabinfo",
    "proc/slabtop-o-procps-4.0.2.txt": "cmd:slabtop",
    "proc/arcstats-zfs-2.1.txt": "proc/spl/kstat/zfs/arcstats",
    "proc/dmesg-oom-centos7.txt": "cmd:dmesg",
    "proc/vmware-toolbox-cmd-stat-balloon.txt": "cmd:vmware-toolbox-cmd-stat-balloon",
    "modules/centos7-vmware-lsmod.txt": "cmd:lsmod",
    "modules/centos7-vmware-proc-modules.txt": "proc/modules",
    "uname/centos7-uname-a.txt": "cmd:uname",
    "uname/uname-r.txt": "cmd:uname",
    "top/headerless-rows.txt": "cmd:top",
    **{f"top/{p.name}": "cmd:top" for p in (FIX / "top").iterdir()},
    **{f"free/{p.name}": "cmd:free" for p in (FIX / "free").iterdir()},
    **{f"ps/{p.name}": "cmd:ps" for p in (FIX / "ps").iterdir()},
}


@pytest.mark.parametrize("rel,key", sorted(SINGLE.items()))
def test_each_format_recognised_whatever_the_name(rel, key):
    text = (FIX / rel).read_text()
    found = split(text, "attachment-3.txt")  # the name tells nothing
    assert [c.key for c in found.chunks] == [key]
    assert found.unrecognised == []
    chunk = found.chunks[0]
    # one output alone keeps the plain file name as its origin, a prompt line shifts it
    assert chunk.origin in ("attachment-3.txt", f"attachment-3.txt:{chunk.line}")
    assert chunk.captured.text == chunk.text


def test_ticket_with_prompts_prose_and_an_error():
    found = split(read_text_file(str(FIX / "pasted/ticket-centos7-with-prompts.txt")), "ticket.txt")
    assert [(c.key, c.origin, c.command) for c in found.chunks] == [
        ("cmd:uname", "ticket.txt:4", "uname -a"),
        ("proc/meminfo", "ticket.txt:6", "cat /proc/meminfo"),
        ("cmd:free", "ticket.txt:51", "free -m"),
        ("cmd:top", "ticket.txt:55", "top -b -n1 -o %MEM | head -27"),
        ("cmd:lsmod", "ticket.txt:83", "lsmod | grep vmw"),
    ]
    assert found.prompt_host == "centos7"
    notes = dict(found.unrecognised)
    assert notes["ticket.txt:1"].startswith("not a recognised output: 'Hi team")
    assert "`vmware-toolbox-cmd stat balloon` printed an error instead of its output" in notes["ticket.txt:93"]
    # the prompt's flags travel with free's output, so -m is read as MiB
    free = next(c for c in found.chunks if c.key == "cmd:free")
    assert parse_free(free.text, free.origin).total == 7806 * 1024**2
    top = next(c for c in found.chunks if c.key == "cmd:top")
    assert len(parse_top(top.text, top.origin).processes) == 20
    meminfo = next(c for c in found.chunks if c.key == "proc/meminfo")
    assert meminfo.text.startswith("MemTotal:") and meminfo.text.count("\n") == 44


def test_crlf_gives_the_same_chunks():
    lf = split(read_text_file(str(FIX / "pasted/ticket-centos7-with-prompts.txt")), "t")
    crlf = split(read_text_file(str(FIX / "pasted/ticket-centos7-crlf.txt")), "t")
    assert [(c.key, c.text) for c in crlf.chunks] == [(c.key, c.text) for c in lf.chunks]


@pytest.mark.parametrize("name", ["no-prompts-back-to-back.txt", "notepad-utf16-bom.txt", "utf16le-no-bom.txt"])
def test_back_to_back_without_prompts_any_encoding(name):
    chunks = recognize(read_text_file(str(FIX / "pasted" / name)), name)
    assert [(c.key, c.line) for c in chunks] == [
        ("proc/meminfo", 1), ("cmd:top", 46), ("cmd:free", 74), ("proc/modules", 77)]
    free = chunks[2]
    assert free.text.startswith("              total")  # indented paste: dedented, columns intact
    # `free -m` with no prompt: MiB figures read as KiB would be a 7.6 MiB host; refused, not guessed
    with pytest.raises(ParseError, match=f"^{name}:74: free: total 7806 is too small to be KiB"):
        parse_free(free.text, free.origin)


def test_free_unit_from_a_sos_style_file_name():
    text = (FIX / "sos/sosreport-centos7-mini/sos_commands/memory/free_-m").read_text()
    chunk = recognize(text, "sos_commands/memory/free_-m")[0]
    assert parse_free(chunk.text, chunk.origin).total == 7806 * 1024**2


def test_duplicate_outputs_first_one_used():
    top = (FIX / "top/seed-centos7-procps-3.3.10.txt").read_text()
    found = split(top + "\n$ top -bn1\n" + top, "t.txt")
    assert [c.key for c in found.chunks] == ["cmd:top"]
    assert found.unrecognised == [("t.txt:30", "another top output; the one at line 1 is used")]


def test_truncated_meminfo_start_is_named():
    meminfo = (FIX / "proc/meminfo-seed-centos7-3.10.txt").read_text()
    cut = meminfo[meminfo.index("Buffers:"):]
    found = split(cut, "m.txt")
    assert found.chunks == []
    assert found.unrecognised == [("m.txt:1", "looks like part of /proc/meminfo but its MemTotal line is missing; skipped")]


def test_ansi_escapes_from_a_terminal_log_are_ignored():
    text = "\x1b[?1h\x1b=\x1b[1m" + (FIX / "uname/debian12-uname-a.txt").read_text() + "\x1b[0m"
    assert [c.key for c in recognize(text, "s.log")] == ["cmd:uname"]


def test_read_text_file_refuses_binary(tmp_path):
    with pytest.raises(Unreadable, match="binary data"):
        read_text_file(str(FIX / "malformed/random.bin"))
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(Unreadable, match="larger than 0 MiB"):
        read_text_file(str(big), limit=1024)


@pytest.mark.parametrize("text", ["", "\n\n", "hello\nworld\n", "Total: 12\n"])
def test_nothing_recognised(text):
    found = split(text, "x")
    assert found.chunks == []
    assert all(origin.startswith("x:") for origin, _ in found.unrecognised)


def test_margin_removes_what_textwrap_dedent_removes():
    """The recogniser dedents pasted output without textwrap; same result on random text."""
    import random
    import textwrap

    from memdiag.recognize import _margin

    rnd = random.Random(3)
    parts = ["", " ", "  ", "\t", " \t", "x", "MemTotal: 1 kB", "\x0c", "\r", "  y", "\tz"]
    for _ in range(20000):
        body = ["".join(rnd.choice(parts) for _ in range(rnd.randint(0, 3))) for _ in range(rnd.randint(0, 6))]
        cut = len(_margin(body))
        mine = "\n".join(line[cut:] if line.strip(" \t") else "" for line in body)
        assert mine == textwrap.dedent("\n".join(body)), body
