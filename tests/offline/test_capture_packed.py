"""Capture format 2: memory-block states packed into the metadata read exactly as the files of a
format 1 capture did, folder or archive; format 1 captures (one file per block) still read."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from memdiag import cli, pipeline
from memdiag.bounded import Deadline
from memdiag.evidence import Unreadable, live
from memdiag.plugins.inputs import capture
from memdiag.sources import collect

FIX = Path(__file__).parent.parent / "fixtures" / "offline"
MEMORY = "sys/devices/system/memory"
#: sources that look past Evidence at the live host itself (statvfs, readlink)
LIVE_ONLY = ("tmpfs.", "deleted.")


@pytest.fixture(scope="module")
def loaded():
    registry = pipeline.load_registry()
    return registry, pipeline.load_rules(registry)


@pytest.fixture
def host(tmp_path):
    """A host tree with 40 memory blocks: most online, some not, one state unfit for packing."""
    root = tmp_path / "root"
    (root / "proc/sys/kernel").mkdir(parents=True)
    shutil.copy(FIX / "proc/meminfo-seed-centos7-3.10.txt", root / "proc/meminfo")
    (root / "proc/sys/kernel/hostname").write_text("blocks\n")
    (root / "proc/sys/kernel/osrelease").write_text("6.1.0-18-amd64\n")
    (root / MEMORY).mkdir(parents=True)
    (root / MEMORY / "block_size_bytes").write_text("8000000\n")
    for i in range(40):
        state = "offline\n" if i in (7, 8) else "going-offline\n" if i == 9 else "online\n"
        (root / MEMORY / f"memory{i}").mkdir()
        (root / MEMORY / f"memory{i}/state").write_text(state)
    (root / MEMORY / "memory39/state").write_bytes(b"online\r\n")  # a carriage return: kept as a file
    return root


def run_collect(monkeypatch, capsys, root: Path, out: Path) -> str:
    monkeypatch.setenv("MEMDIAG_ROOT", str(root))
    assert cli.main(["collect", "-o", str(out)]) == 0
    return capsys.readouterr().out


def extract(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    (top,) = into.iterdir()
    return top


def unpacked(folder: Path, into: Path) -> Path:
    """The same capture in format 1: every packed file written out as a file of its own."""
    copy = into / folder.name
    shutil.copytree(folder, copy)
    meta = json.loads((copy / capture.META).read_text())
    for rel, text in meta.pop("packed").items():
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        (copy / rel).write_text(text)
        meta["files"].append({"path": rel, "size": len(text)})
    meta["version"] = 1
    (copy / capture.META).write_text(json.dumps(meta))
    return copy


def archived(folder: Path, path: Path) -> Path:
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        tar.add(folder, arcname=folder.name)
    return path


def document(path: Path, loaded, work: Path) -> str:
    """The findings document with the input's own name taken out (and the clock)."""
    registry, rules = loaded
    ev = pipeline.open_input(str(path), registry, str(work))
    doc = pipeline.diagnose(ev, registry=registry, rules=rules, deadline=Deadline(60)).document
    doc = dict(doc, time=None, findings=[dict(f, time=None) for f in doc["findings"]])
    return json.dumps(doc, sort_keys=True).replace(shown(path), "INPUT/").replace(str(path), "INPUT")


def shown(path: Path) -> str:
    """What origins start with: ``folder/`` or ``archive:top/``."""
    if path.is_dir():
        return f"{path}/"
    with tarfile.open(path) as tar:
        return f"{path}:{tar.getnames()[0].split('/')[0]}/"


@pytest.fixture
def formats(host, tmp_path, monkeypatch, capsys):
    """{name: path} of one capture of ``host`` in both formats, as folders and as archives."""
    printed = run_collect(monkeypatch, capsys, host, tmp_path / "v2.tar.gz")
    assert ": 44 files," in printed  # packed files are captured files all the same
    v2 = extract(tmp_path / "v2.tar.gz", tmp_path / "v2")
    v1 = unpacked(v2, tmp_path / "v1")
    return {"v2-archive": tmp_path / "v2.tar.gz", "v2-folder": v2,
            "v1-archive": archived(v1, tmp_path / "v1.tar.gz"), "v1-folder": v1}


def test_collect_packs_the_memory_block_states(formats):
    with tarfile.open(formats["v2-archive"]) as tar:
        names = tar.getnames()
    blocks = {n.split("/", 1)[1] for n in names if f"{MEMORY}/memory" in n}
    assert blocks == {f"{MEMORY}/memory39/state"}  # the others: neither files nor folders
    meta = json.loads((formats["v2-folder"] / capture.META).read_text())
    assert meta["version"] == 2
    assert meta["packed"][f"{MEMORY}/memory0/state"] == "online\n"
    assert meta["packed"][f"{MEMORY}/memory9/state"] == "going-offline\n"
    assert len(meta["packed"]) == 39 and f"{MEMORY}/memory39/state" not in meta["packed"]
    assert (formats["v2-folder"] / MEMORY / "memory39/state").read_bytes() == b"online\r\n"
    assert {f["path"] for f in meta["files"]} == {"proc/meminfo", "proc/sys/kernel/hostname",
                                                  "proc/sys/kernel/osrelease", f"{MEMORY}/block_size_bytes",
                                                  f"{MEMORY}/memory39/state"}


def test_both_formats_diagnose_identically_and_as_the_live_host(formats, host, loaded, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    docs = {name: document(path, loaded, work) for name, path in formats.items()}
    assert len(set(docs.values())) == 1, [name for name in docs if docs[name] != docs["v1-folder"]]
    facts = json.loads(docs["v2-archive"])["facts"]
    assert facts["ram.blocks_online"] == 37 and facts["ram.blocks_offline"] == 3
    assert facts["ram.installed_bytes"] == 37 * 128 * 1024 * 1024
    registry, _ = loaded
    live_facts = collect(registry.sources, live(str(host)), deadline=Deadline(20))
    assert {k: v for k, v in facts.items() if not k.startswith(LIVE_ONLY)} == \
        json.loads(json.dumps({n: f.value for n, f in live_facts.facts.items() if not n.startswith(LIVE_ONLY)}))


def _answers(ev, prefix: str) -> list:
    """Every verb's answer for the packed paths, their folders and their neighbours."""
    out: list = []
    paths = [f"{MEMORY}/memory{i}/state" for i in (0, 9, 39)] + [
        f"{MEMORY}/memory0", f"{MEMORY}/memory0/absent", f"{MEMORY}/memory40/state", f"{MEMORY}/block_size_bytes",
        MEMORY, "sys/devices/system", "sys/devices", "sys"]
    for rel in paths:
        for verb in (ev.read_bytes, ev.read_text, ev.lines, ev.exists, ev.listdir):
            try:
                got = verb(rel)
            except Unreadable as exc:
                got = ("unreadable", exc.message, exc.kind, (exc.path or "").replace(prefix, "INPUT/"))
            name = verb.__name__
            out.append((name, rel, sorted(got) if name == "listdir" else
                        list(got) if name == "lines" and got is not None else got))
        out.append(("origin", rel, ev.origin(rel).replace(prefix, "INPUT/")))
    return out


def test_packed_files_answer_every_read_as_the_files_did(formats, loaded, tmp_path):
    registry, _ = loaded
    answers = {}
    for name, path in formats.items():
        work = tmp_path / f"work-{name}"
        work.mkdir()
        answers[name] = _answers(pipeline.open_input(str(path), registry, str(work)), shown(path))
    for name, got in answers.items():
        assert got == answers["v1-folder"], name
    lines = {(rel, got and tuple(got)) for verb, rel, got in answers["v2-archive"] if verb == "lines"}
    assert (f"{MEMORY}/memory0/state", ("online",)) in lines
    assert (f"{MEMORY}/memory39/state", ("online",)) in lines  # the streamed file's \r\n
    assert ("listdir", f"{MEMORY}/memory0", ["state"]) in answers["v2-folder"]
    assert ("exists", f"{MEMORY}/memory0", True) in answers["v2-archive"]


def test_a_capture_with_nothing_to_pack_stays_format_1(tmp_path, monkeypatch, capsys):
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    shutil.copy(FIX / "proc/meminfo-seed-centos7-3.10.txt", root / "proc/meminfo")
    run_collect(monkeypatch, capsys, root, tmp_path / "cap.tar.gz")
    meta = json.loads((extract(tmp_path / "cap.tar.gz", tmp_path / "x") / capture.META).read_text())
    assert meta["version"] == 1 and "packed" not in meta  # what memdiag before format 2 reads


@pytest.mark.parametrize("bad", [
    {"../outside/state": "online\n"}, {"/etc/state": "online\n"}, {f"{MEMORY}//memory1/state": "online\n"},
    {f"{MEMORY}/memory1/state": "on\0line\n"}, {f"{MEMORY}/memory1/state": "x" * 300},
    {f"{MEMORY}/memory1/state": "caf\u00e9\n"}, {f"{MEMORY}/memory1/state": 1}, {f"{MEMORY}/./memory1/state": "x"},
], ids=["dotdot", "absolute", "empty-part", "nul", "long", "non-ascii", "not-text", "dot"])
def test_entries_memdiag_would_not_pack_are_ignored(bad, tmp_path, loaded):
    folder = tmp_path / "cap"
    (folder / MEMORY).mkdir(parents=True)
    (folder / MEMORY / "block_size_bytes").write_text("8000000\n")
    packed = {f"{MEMORY}/memory0/state": "online\n", **bad}
    (folder / capture.META).write_text(json.dumps({"format": "memdiag-capture", "version": 2, "packed": packed}))
    registry, _ = loaded
    ev = pipeline.open_input(str(folder), registry, str(tmp_path))
    assert ev.read_text(f"{MEMORY}/memory0/state") == "online\n"
    assert ev.read_bytes(f"{MEMORY}/memory1/state") is None
    assert ev.listdir(f"{MEMORY}/memory0") == ["state"] and not ev.exists(f"{MEMORY}/memory1")
    assert not ev.exists("../outside/state") and ev.listdir("..") == []


def test_a_newer_format_is_still_refused(tmp_path, loaded):
    folder = tmp_path / "cap"
    folder.mkdir()
    (folder / capture.META).write_text(json.dumps({"format": "memdiag-capture", "version": capture.VERSION + 1}))
    with pytest.raises(Exception, match=f"capture format version {capture.VERSION + 1} is newer"):
        pipeline.open_input(str(folder), loaded[0], str(tmp_path))
    assert os.listdir(tmp_path) == ["cap"]
