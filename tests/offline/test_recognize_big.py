"""Big pasted files are split over line offsets (memdiag.recognize._LazyLines) instead of a list
of every line: the result must be exactly what the list-based split gives."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from memdiag import recognize
from memdiag.recognize import read_text_data, read_text_file, split

FIX = Path(__file__).parent.parent / "fixtures" / "offline"
TEXTS = sorted(p for p in FIX.rglob("*") if p.is_file() and "malformed" not in p.parts)


def _same(a: recognize.Recognition, b: recognize.Recognition) -> None:
    assert a.chunks == b.chunks
    assert a.unrecognised == b.unrecognised
    assert a.prompt_host == b.prompt_host


@pytest.mark.parametrize("path", TEXTS, ids=lambda p: str(p.relative_to(FIX)))
def test_offsets_split_agrees_with_list_split(path):
    text = read_text_file(str(path))
    _same(split(text.encode("utf-8", "surrogatepass"), "t.txt", lazy=True), split(text, "t.txt"))


def test_outputs_pasted_together_with_colour_crlf_and_a_long_log():
    rng = random.Random(7)
    parts = [read_text_file(str(p)) for p in TEXTS]
    log = "".join(f"[{i:6d}.{rng.randrange(10**6):06d}] usb 1-1: event {i}\n" for i in range(3000))
    pieces = []
    for _ in range(40):
        piece = rng.choice(parts + [log, "\x1b[1mMemTotal:       1000 kB\x1b[0m\n", "  indented prose\n\n"])
        pieces.append(piece.replace("\n", "\r\n") if rng.random() < 0.2 else piece)
        pieces.append(rng.choice(["$ free -m\n", "[root@db01 ~]# top -bn1\n", "", "notes\n"]))
    text = "".join(pieces)
    listed = split(text, "ticket.txt")
    _same(split(text.encode(), "ticket.txt", lazy=True), listed)
    assert any(c.key == "cmd:dmesg" and c.text.count("\n") >= 3000 for c in listed.chunks)


def test_read_text_data_gives_utf8_bytes(tmp_path):
    for name in ("notepad-utf16-bom.txt", "utf16le-no-bom.txt", "ticket-centos7-crlf.txt"):
        path = str(FIX / "pasted" / name)
        assert read_text_data(path).decode() == read_text_file(path)
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbfMemTotal: 1 kB\n")
    assert read_text_data(str(bom)) == b"MemTotal: 1 kB\n"
