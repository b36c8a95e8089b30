"""memdiag collect: a capture re-analyzes to what the live run saw; secrets and limits respected."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from memdiag import cli, pipeline, registry
from memdiag.bounded import Deadline
from memdiag.evidence import Unreadable, live
from memdiag.plugins.collect import RecordingEvidence
from memdiag.sources import collect

FIX = Path(__file__).parent.parent / "fixtures" / "offline"
#: sources that look past Evidence at the live host itself (statvfs, readlink), so a capture
#: cannot hold what they see
LIVE_ONLY = ("tmpfs.", "deleted.")


@pytest.fixture(scope="module")
def reg():
    return registry.load(autoload=False)


@pytest.fixture
def fake_root(tmp_path):
    """A small host tree: the founding case's meminfo and modules, two processes."""
    root = tmp_path / "root"
    (root / "proc/1").mkdir(parents=True)
    (root / "proc/42").mkdir()
    (root / "proc/sys/kernel").mkdir(parents=True)
    shutil.copy(FIX / "proc/meminfo-seed-centos7-3.10.txt", root / "proc/meminfo")
    shutil.copy(FIX / "modules/centos7-vmware-proc-modules.txt", root / "proc/modules")
    shutil.copy(FIX / "proc/vmstat-linux-6.18.txt", root / "proc/vmstat")
    (root / "proc/1/status").write_text("Name:\tjava\nPid:\t1\nVmRSS:\t 1818268 kB\nRssAnon:\t 1800000 kB\n"
                                        "RssFile:\t   18268 kB\nRssShmem:\t       0 kB\nVmSwap:\t    1000 kB\n")
    (root / "proc/1/cmdline").write_bytes(b"java\0-Ddb.password=hunter2\0")
    (root / "proc/1/environ").write_bytes(b"AWS_SECRET_ACCESS_KEY=abc\0container=podman\0HOME=/\0")
    (root / "proc/42/status").write_text("Name:\tvmtoolsd\nPid:\t42\nVmRSS:\t 1548 kB\n")
    (root / "proc/sys/kernel/hostname").write_text("centos7\n")
    (root / "proc/sys/kernel/osrelease").write_text("3.10.0-693.el7.x86_64\n")
    (root / "proc/vmallocinfo").mkdir()  # reading it fails, live and in the capture alike
    return root


def run_collect(monkeypatch, capsys, root, out, *extra):
    monkeypatch.setenv("MEMDIAG_ROOT", str(root))
    code = cli.main(["collect", "-o", str(out), *extra])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    return printed


def comparable(facts):
    return {name: fact.value for name, fact in facts.facts.items() if not name.startswith(LIVE_ONLY)}


def test_capture_reanalyzes_like_the_live_run(reg, fake_root, tmp_path, monkeypatch, capsys):
    out = tmp_path / "cap.tar.gz"
    printed = run_collect(monkeypatch, capsys, fake_root, out)
    assert printed.out.startswith(f"memdiag: capture written to {out}: ")
    assert "packed" in printed.out
    assert oct(os.stat(out).st_mode & 0o777) == "0o600"
    live_facts = collect(reg.sources, live(str(fake_root)), deadline=Deadline(20))
    work = tmp_path / "work"
    work.mkdir()
    ev = pipeline.open_input(str(out), reg, str(work))
    cap_facts = collect(reg.sources, ev, deadline=Deadline(20))
    assert ev.kind == "capture" and ev.host == "centos7"
    assert comparable(cap_facts) == comparable(live_facts)
    assert cap_facts.get("meminfo.MemTotal") == 7994080 * 1024
    assert cap_facts.origin("meminfo.MemTotal").startswith(f"{out}:memdiag-capture-centos7-")
    # the failed read is replayed with its reason, naming the file inside the capture
    failed = [p for p in cap_facts.problems if "vmallocinfo" in p.path]
    assert failed and "Is a directory" in failed[0].message


def test_metadata_and_secrets(fake_root, tmp_path, monkeypatch, capsys):
    out = tmp_path / "cap.tar.gz"
    run_collect(monkeypatch, capsys, fake_root, out)
    with tarfile.open(out) as tar:
        names = tar.getnames()
        top = names[0].split("/")[0]
        meta = json.load(tar.extractfile(f"{top}/memdiag-capture.json"))
        environ = tar.extractfile(f"{top}/proc/1/environ").read() if f"{top}/proc/1/environ" in names else b""
        blob = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
    assert meta["format"] == "memdiag-capture" and meta["version"] == 1
    assert meta["host"] == "centos7" and meta["kernel"] == "3.10.0-693.el7.x86_64"
    assert {"path": "proc/meminfo", "size": 1226} in meta["files"]
    assert "1" in meta["listings"]["proc"] and "meminfo" in meta["listings"]["proc"]
    assert any(u["path"] == "proc/vmallocinfo" for u in meta["unreadable"])
    assert b"hunter2" not in blob and b"AWS_SECRET" not in blob
    assert environ == b"container=podman\0" and "proc/1/environ" in meta["redacted"]


def test_recording_evidence_cmdlines_and_size_limit(fake_root):
    ev = RecordingEvidence(str(fake_root))
    assert ev.read_bytes("proc/1/cmdline") == b"java\0-Ddb.password=hunter2\0"  # the source still sees it
    assert "proc/1/cmdline" not in ev.files and "--with-cmdlines" in ev.omitted["proc/1/cmdline"]
    kept = RecordingEvidence(str(fake_root), with_cmdlines=True)
    kept.read_bytes("proc/1/cmdline")
    assert kept.files["proc/1/cmdline"].startswith(b"java")
    small = RecordingEvidence(str(fake_root), max_bytes=2000)
    small.read_text("proc/meminfo")
    small.read_text("proc/vmstat")
    assert "proc/meminfo" in small.files and "size limit" in small.omitted["proc/vmstat"]
    assert small.size <= 2000


def test_streamed_file_recorded_as_read_and_failures_recorded(fake_root):
    ev = RecordingEvidence(str(fake_root))
    lines = ev.lines("proc/vmstat")
    first = [next(lines) for _ in range(3)]
    lines.close()  # the source stopped early
    assert ev.files["proc/vmstat"].decode().splitlines() == first and "proc/vmstat" in ev.partial
    with pytest.raises(Unreadable):
        ev.read_bytes("proc/vmallocinfo")
    assert ev.unreadable["proc/vmallocinfo"][0] == "Is a directory"
    ev.close()
    ev.read_bytes("proc/meminfo")  # an abandoned source finishing late records nothing
    assert "proc/meminfo" not in ev.files


def test_collect_this_host_and_analyze_it(reg, tmp_path, monkeypatch, capsys):
    """The real host: stable facts match, whatever moved between the two moments."""
    monkeypatch.delenv("MEMDIAG_ROOT", raising=False)
    out = tmp_path / "host.tar.gz"
    assert cli.main(["collect", "-o", str(out)]) == 0
    capsys.readouterr()
    work = tmp_path / "work"
    work.mkdir()
    cap = collect(reg.sources, pipeline.open_input(str(out), reg, str(work)), deadline=Deadline(20))
    now = collect(reg.sources, live(), deadline=Deadline(20))
    for name in ("meminfo.MemTotal", "modules.loaded", "platform.hostname", "meminfo.SwapTotal"):
        assert cap.get(name) == now.get(name), name
    assert set(n for n in cap.facts if n.startswith("meminfo.")) == set(n for n in now.facts if n.startswith("meminfo."))
    assert cli.main(["analyze", str(out), "--format", "json", "--no-sinks"]) in (0, 1, 2)
    doc = json.loads(capsys.readouterr().out)
    assert doc["host"] == os.uname().nodename


def test_a_capture_keeps_detail_a_diagnosis_would_skip_as_too_small(fake_root, tmp_path, monkeypatch, capsys):
    """The founding case's 140 MiB of slab is too little for a diagnosis to parse /proc/slabinfo,
    but a capture is analysed later, perhaps with lower thresholds: collect reads it anyway."""
    (fake_root / "proc/slabinfo").write_text("slabinfo - version: 2.1\n"
                                             "dentry 100 100 192 21 1 : tunables 0 0 0 : slabdata 10 10 0\n")
    out = tmp_path / "cap.tar.gz"
    run_collect(monkeypatch, capsys, fake_root, out)
    with tarfile.open(out) as tar:
        assert any(name.endswith("/proc/slabinfo") for name in tar.getnames())
    live_facts = collect(registry.load(autoload=False).sources, live(str(fake_root)), deadline=Deadline(20))
    assert "slab.top" not in live_facts  # the diagnosis itself skipped it


def test_the_archive_holds_files_only_with_plain_headers_where_they_fit(fake_root, tmp_path, monkeypatch, capsys):
    """Folders are implied by the files' paths and each member has one ustar header unless its
    name needs pax (long past what ustar's prefix holds, or not ASCII); every name reads back."""
    deep = "sys/fs/cgroup/" + "/".join(["kubepods-burstable-pod0123456789abcdef.slice"] * 6)
    (fake_root / deep).mkdir(parents=True)
    (fake_root / deep / "memory.stat").write_text("anon 1\n")
    (fake_root / "proc/mounts").write_text("x\n")
    rels = ["proc/meminfo", "proc/1/status"]
    ev = RecordingEvidence(str(fake_root))
    for rel in rels + [f"{deep}/memory.stat", "proc/mounts"]:
        ev.read_bytes(rel)
    ev.files["proc/caf\u00e9"] = b"non-ASCII name\n"
    from memdiag.plugins.collect import write_capture
    path, count, _ = write_capture(ev, str(tmp_path / "cap.tar.gz"), started=0.0, duration=0.0, problems=[],
                                   timeout=20.0)
    with tarfile.open(path) as tar:
        members = tar.getmembers()
        assert all(m.isfile() for m in members) and count == len(members) - 1  # and the metadata
        top = members[0].name.split("/")[0]
        names = {m.name[len(top) + 1:]: m for m in members}
        assert set(names) == {"memdiag-capture.json", *rels, f"{deep}/memory.stat", "proc/mounts", "proc/caf\u00e9"}
        assert {n for n, m in names.items() if m.pax_headers} == {f"{deep}/memory.stat", "proc/caf\u00e9"}
        assert tar.extractfile(names["proc/mounts"]).read() == b"x\n"
    work = tmp_path / "work"
    work.mkdir()
    reg = registry.load(autoload=False)
    ev2 = pipeline.open_input(path, reg, str(work))
    assert ev2.read_text(f"{deep}/memory.stat") == "anon 1\n" and ev2.read_text("proc/caf\u00e9") == "non-ASCII name\n"
    assert sorted(ev2.listdir("proc/1")) == ["status"] and ev2.exists("sys/fs/cgroup")
