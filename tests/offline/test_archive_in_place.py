"""Archives read in place (memdiag.archive.index + ArchiveEvidence) answer exactly as the same
archive extracted to disk: same findings document, same reads, same refusals of hostile input."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

from memdiag import archive, cli, pipeline
from memdiag.archive import Limits, extract, index
from memdiag.bounded import Deadline
from memdiag.errors import InputError
from memdiag.evidence import Unreadable
from memdiag.plugins import inputs
from memdiag.plugins.inputs._evidence import ArchiveEvidence, OfflineEvidence

from testkit import make_tar

SOS = Path(__file__).parent.parent / "fixtures" / "offline" / "sos" / "sosreport-centos7-mini"


def member(name, data=b"x\n"):
    return ({"name": name, "mode": 0o644}, data)


@pytest.fixture(scope="module")
def loaded():
    registry = pipeline.load_registry()
    return registry, pipeline.load_rules(registry)


def both_ways(path, registry, rules, workdir):
    """(document read in place, document read from the extracted folder, in-place evidence)."""
    ev = pipeline.open_input(str(path), registry, str(workdir))
    assert isinstance(ev, ArchiveEvidence)
    assert os.listdir(workdir) == []  # nothing written to disk
    in_place = pipeline.diagnose(ev, registry=registry, rules=rules, deadline=Deadline(60)).document
    dest = extract(str(path), str(workdir))
    root = inputs._inner(dest)
    top = os.path.relpath(root, dest)
    old = inputs._open_tree(root, label=str(path), shown_as=f"{path}:" + ("" if top == "." else top + "/"))
    assert type(old) is OfflineEvidence
    extracted = pipeline.diagnose(old, registry=registry, rules=rules, deadline=Deadline(60)).document
    return untimed(in_place), untimed(extracted), ev


def untimed(doc: dict) -> str:
    """The document without when it was made (the wall clock at diagnosis, to the second)."""
    doc = dict(doc, time=None, findings=[dict(f, time=None) for f in doc["findings"]])
    return json.dumps(doc, sort_keys=True)


def test_a_capture_of_this_host_is_diagnosed_identically(loaded, tmp_path, monkeypatch, capsys):
    out = tmp_path / "cap.tar.gz"
    monkeypatch.setenv("MEMDIAG_NO_COLOR", "1")
    assert cli.main(["collect", "-o", str(out)]) == 0
    capsys.readouterr()
    work = tmp_path / "work"
    work.mkdir()
    in_place, extracted, ev = both_ways(out, *loaded, work)
    assert ev.kind == "capture" and ev.host
    assert in_place == extracted


@pytest.mark.parametrize("mode", ["w:gz", "w:xz", "w:bz2", "w"])
def test_a_sosreport_is_diagnosed_identically(loaded, tmp_path, mode):
    path = tmp_path / "sosreport-centos7-mini.tar"
    with tarfile.open(path, mode) as tar:
        tar.add(SOS, arcname="sosreport-centos7-mini")
    work = tmp_path / "work"
    work.mkdir()
    in_place, extracted, ev = both_ways(path, *loaded, work)
    assert ev.kind == "sosreport" and ev.host and ev.captured_at
    assert in_place == extracted


def links_archive(tmp_path):
    """A capture-shaped tree with links of every kind a snapshot may hold."""
    meta = json.dumps({"format": "memdiag-capture", "version": 1}).encode()
    d = {"type": tarfile.DIRTYPE, "mode": 0o755}
    sym = lambda name, to: ({"name": name, "type": tarfile.SYMTYPE, "linkname": to}, None)  # noqa: E731
    return make_tar(tmp_path / "links.tar.gz", [
        member("cap/memdiag-capture.json", meta),
        member("cap/proc/meminfo", b"MemTotal: 100 kB\n"),
        member("cap/proc/1/status", b"Name:\tinit\n"),
        ({"name": "cap/proc/empty", **d}, None),
        member("outside-top", b"not part of the capture\n"),
        sym("cap/proc/self", "1"),
        sym("cap/mem", "proc/meminfo"),
        sym("cap/dangling", "proc/nothing"),
        sym("cap/loop1", "loop2"),
        sym("cap/loop2", "loop1"),
        sym("cap/up", "../outside-top"),
        ({"name": "cap/hard", "type": tarfile.LNKTYPE, "linkname": "cap/proc/meminfo"}, None),
    ])


RELS = ["proc/meminfo", "proc/self/status", "proc/self", "mem", "dangling", "loop1", "up", "hard",
        "proc", "proc/empty", "proc/1", "nothing", "proc/meminfo/x", "proc/../mem", "../cap/mem",
        "proc/self/../meminfo", "../outside-top", "/etc/passwd", "", "memdiag-capture.json"]


def answers(ev, rel):
    out = {"exists": ev.exists(rel), "listdir": sorted(ev.listdir(rel))}
    for what in ("read_bytes", "lines"):
        try:
            got = getattr(ev, what)(rel)
            out[what] = got if what == "read_bytes" or got is None else list(got)
        except Unreadable as exc:
            out[what] = ("Unreadable", exc.kind, exc.message, exc.path)
    return out


@pytest.mark.parametrize("memory", [archive.SPOOL_MEMORY, 0])  # 0: contents spilled to a file
def test_reads_listings_and_links_answer_as_the_extracted_folder(loaded, tmp_path, memory):
    path = links_archive(tmp_path)
    shown = f"{path}:cap/"
    tree = index(path, str(tmp_path), memory=memory)
    ev = ArchiveEvidence(tree, "cap", kind="capture", label=path, shown_as=shown)
    dest = extract(path, str(tmp_path))
    old = OfflineEvidence(os.path.join(dest, "cap"), kind="capture", label=path, shown_as=shown)
    for rel in RELS:
        assert answers(ev, rel) == answers(old, rel), rel


def test_a_hard_link_and_a_symlinked_folder_read_their_targets(tmp_path):
    tree = index(links_archive(tmp_path), str(tmp_path))
    ev = ArchiveEvidence(tree, "cap", kind="capture", label="x", shown_as="x:cap/")
    assert ev.read_text("hard") == ev.read_text("mem") == "MemTotal: 100 kB\n"
    assert ev.read_text("proc/self/status") == "Name:\tinit\n"
    with pytest.raises(Unreadable, match="outside the snapshot"):
        ev.read_bytes("up")  # inside the archive, outside the capture's folder


HOSTILE = {
    "traversal": [member("ok"), member("a/../../escaped")],
    "absolute": [member("/etc/evil")],
    "device": [({"name": "dev", "type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3}, None)],
    "fifo": [({"name": "pipe", "type": tarfile.FIFOTYPE}, None)],
    "symlink out": [({"name": "a/l", "type": tarfile.SYMTYPE, "linkname": "../../etc/passwd"}, None)],
    "symlink absolute": [({"name": "l", "type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}, None)],
    "hard link out": [({"name": "h", "type": tarfile.LNKTYPE, "linkname": "etc/passwd"}, None)],
    "through a link": [({"name": "a", "type": tarfile.SYMTYPE, "linkname": "b"}, None), member("a/x")],
    "file then folder": [member("a"), member("a/x")],
    "folder then file": [member("a/x"), member("a")],
    "too many": [member(f"f{i}") for i in range(6)],
    "too big": [member("big", b"x" * 2048)],
    "bomb": [member("zeros", b"\x00" * 300_000)],
}
SMALL = Limits(members=5, member_bytes=1024, ratio=10.0, ratio_floor=100_000)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_are_refused_alike(tmp_path, case):
    path = make_tar(tmp_path / "evil.tar.gz", HOSTILE[case])
    limits = SMALL if case in ("too many", "too big", "bomb") else Limits()
    errors = []
    for how in (lambda: index(path, str(tmp_path), limits), lambda: extract(path, str(tmp_path), limits)):
        with pytest.raises(InputError) as err:
            how()
        errors.append(str(err.value))
    assert errors[0] == errors[1]
    assert errors[0].startswith(path + ": ") and "\n" not in errors[0]
    assert sorted(os.listdir(tmp_path)) == ["evil.tar.gz"]  # nothing left behind


def test_a_truncated_archive_is_refused_alike(tmp_path):
    path = make_tar(tmp_path / "cut.tar.gz", [member("cap/proc/meminfo", os.urandom(200_000))])
    with open(path, "rb+") as f:
        f.truncate(os.path.getsize(path) // 2)
    with pytest.raises(InputError, match="damaged or truncated archive") as a:
        index(path, str(tmp_path))
    with pytest.raises(InputError, match="damaged or truncated archive") as b:
        extract(path, str(tmp_path))
    assert str(a.value) == str(b.value)


def test_an_archive_of_loose_files_is_still_extracted(loaded, tmp_path):
    path = make_tar(tmp_path / "loose.tar.gz", [member("notes/meminfo", (SOS / "proc" / "meminfo").read_bytes())])
    ev = pipeline.open_input(path, loaded[0], str(tmp_path))
    assert not isinstance(ev, ArchiveEvidence)


def test_a_name_repeated_or_reused_reads_as_extraction_leaves_it(tmp_path):
    """A file appended again replaces the earlier one; a file where a folder is, or inside a
    file, is refused - by the index exactly as by extraction."""
    repeated = make_tar(tmp_path / "repeated.tar.gz", [({"name": "cap/a"}, b"old"), ({"name": "cap/a"}, b"new")])
    tree = index(repeated, str(tmp_path))
    assert tree.read(tree.entries["cap/a"]) == b"new"
    dest = extract(repeated, str(tmp_path))
    assert (Path(dest) / "cap/a").read_bytes() == b"new"
    for name, members in (
        ("file-over-folder", [({"name": "cap/d", "type": tarfile.DIRTYPE}, None), ({"name": "cap/d"}, b"x")]),
        ("file-over-implied-folder", [({"name": "cap/d/f"}, b"x"), ({"name": "cap/d"}, b"y")]),
        ("folder-over-file", [({"name": "cap/f"}, b"x"), ({"name": "cap/f/g"}, b"y")]),
    ):
        path = make_tar(tmp_path / f"{name}.tar.gz", members)
        errors = []
        for how in (lambda: index(path, str(tmp_path)), lambda: extract(path, str(tmp_path))):
            with pytest.raises(InputError) as caught:
                how()
            errors.append(str(caught.value))
        assert errors[0] == errors[1] and "share a name" in errors[0], (name, errors)
