"""Input openers: pasted text, loose folders, sosreports (folder and archives), captures."""

from __future__ import annotations

import calendar
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from memdiag import pipeline, registry
from memdiag.bounded import Deadline
from memdiag.errors import InputError
from memdiag.sources import collect

FIX = Path(__file__).parent.parent / "fixtures" / "offline"
SOS = FIX / "sos" / "sosreport-centos7-mini"
KIB, MIB = 1024, 1024**2
SEED_MODULES = ["vmw_vsock_vmci_transport", "vsock", "vmw_balloon", "vmw_vmci", "xfs", "libcrc32c", "vmwgfx",
                "drm_kms_helper", "ttm", "drm", "vmxnet3", "vmw_pvscsi"]


@pytest.fixture(scope="module")
def reg():
    return registry.load(autoload=False)


def facts_of(path, reg, workdir):
    ev = pipeline.open_input(str(path), reg, str(workdir))
    return ev, collect(reg.sources, ev, deadline=Deadline(20))


def problems(facts):
    return [str(p) for p in facts.problems]


def test_openers_registered_in_order(reg):
    assert [name for name, _ in reg.inputs][:5] == ["archive", "memdiag-capture", "sosreport", "loose-folder",
                                                   "pasted-text"]


def test_pasted_ticket(reg, tmp_path):
    path = FIX / "pasted/ticket-centos7-with-prompts.txt"
    ev, facts = facts_of(path, reg, tmp_path)
    assert ev.kind == "text" and ev.host == "centos7.example.com" and ev.label == str(path)
    assert os.listdir(ev.root) == []  # nothing beside the file is read
    assert facts.get("meminfo.MemTotal") == 7994080 * KIB
    assert facts.origin("meminfo.MemTotal") == f"{path}:6"
    assert facts.get("free.total") == 7806 * MIB
    assert facts.get("top.mem_free") == 185776 * KIB
    assert facts.get("processes.method") == "top" and facts.get("processes.count") == 20
    assert "vmw_balloon" in facts.get("modules.balloon")
    notes = dict(ev.metadata["unrecognised"])
    assert set(notes) == {f"{path}:1", f"{path}:93"}


def test_loose_folder_names_mean_nothing_and_bad_files_are_named(reg, tmp_path):
    folder = tmp_path / "ticket-4711"
    (folder / "more").mkdir(parents=True)
    shutil.copy(FIX / "proc/meminfo-seed-centos7-3.10.txt", folder / "attachment1")
    shutil.copy(FIX / "top/seed-centos7-procps-3.3.10.txt", folder / "more" / "screen.log")
    shutil.copy(FIX / "modules/centos7-vmware-lsmod.txt", folder / "output (2).txt")
    shutil.copy(FIX / "malformed/random.bin", folder / "core.bin")
    shutil.copy(FIX / "malformed/free-command-not-found.txt", folder / "free.txt")
    shutil.copy(FIX / "malformed/arcstats-missing.txt", folder / "zfs.txt")
    (folder / "zz-meminfo-copy.txt").write_text((FIX / "proc/meminfo-seed-centos7-3.10.txt").read_text())
    os.symlink("/proc/meminfo", folder / "live-meminfo")
    ev, facts = facts_of(folder, reg, tmp_path / "work")
    assert ev.kind == "folder"
    assert facts.get("meminfo.MemTotal") == 7994080 * KIB
    assert facts.get("modules.loaded") == SEED_MODULES
    assert facts.get("processes.method") == "top"
    notes = dict(ev.metadata["unrecognised"])
    shown = lambda name: f"{folder}/{name}"  # noqa: E731
    assert notes[shown("core.bin")] == "binary data where text was expected; skipped"
    assert "`free -m` printed an error instead of its output" in notes[shown("free.txt") + ":2"]
    assert notes[shown("zfs.txt") + ":1"].startswith("not a recognised output: 'cat: /proc/spl")
    assert notes[shown("zz-meminfo-copy.txt")] == \
        f"another /proc/meminfo output; the one in {shown('attachment1')} is used"
    assert notes[shown("live-meminfo")] == "a link; links in loose folders are not followed"


def test_malformed_outputs_skip_their_source_and_the_rest_runs(reg, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    shutil.copy(FIX / "proc/meminfo-seed-centos7-3.10.txt", folder / "meminfo")
    shutil.copy(FIX / "malformed/free-mixed-units.txt", folder / "free")
    shutil.copy(FIX / "malformed/top-truncated.txt", folder / "top")
    ev, facts = facts_of(folder, reg, tmp_path / "work")
    assert facts.get("meminfo.MemTotal") == 7994080 * KIB
    text = "\n".join(problems(facts))
    assert f"{folder}/free: free: sizes with and without units mixed" in text
    # a truncated top keeps its header figures; the rows it lost are simply absent
    assert facts.get("top.mem_free") == 185776 * KIB


@pytest.mark.parametrize("name,why", [
    ("random.bin", "binary data where text was expected"),
    ("free-invalid-option.txt", "not a recognised output: \"free: invalid option -- 'w'\""),
    ("free-command-not-found.txt", "`free -m` printed an error instead of its output"),
])
def test_single_unusable_file_is_one_clear_error(reg, tmp_path, name, why):
    path = FIX / "malformed" / name
    with pytest.raises(InputError) as err:
        pipeline.open_input(str(path), reg, str(tmp_path))
    assert str(err.value).startswith(f"{path}: no recognised command output or /proc file: ")
    assert why in str(err.value) and "\n" not in str(err.value)


def test_utf16_top_is_read(reg, tmp_path):
    ev, facts = facts_of(FIX / "malformed/top-utf16.txt", reg, tmp_path)
    assert facts.get("processes.count") == 20


def check_sos(ev, facts, shown_prefix):
    assert ev.kind == "sosreport" and ev.host == "centos7.example.com"
    assert ev.captured_at == calendar.timegm((2017, 11, 25, 16, 47, 2, 0, 0, 0))
    assert facts.get("meminfo.MemTotal") == 7994080 * KIB
    assert facts.origin("meminfo.MemTotal") == shown_prefix + "proc/meminfo"
    assert facts.get("modules.loaded") == SEED_MODULES  # /proc/modules preferred over lsmod
    assert facts.get("processes.method") == "ps"
    assert facts.origin("processes.count") == shown_prefix + "sos_commands/process/ps_auxwww"
    assert facts.get("free.total") == 7994080 * KIB  # the KiB `free`, not free_-m
    assert facts.get("platform.hostname") == "centos7.example.com"


def test_sosreport_folder(reg, tmp_path):
    ev, facts = facts_of(SOS, reg, tmp_path)
    check_sos(ev, facts, f"{SOS}/")


def test_sosreport_parent_folder_of_the_unpacked_report(reg, tmp_path):
    ev, facts = facts_of(SOS.parent, reg, tmp_path)
    check_sos(ev, facts, f"{SOS}/")


@pytest.mark.parametrize("suffix,mode", [(".tar.xz", "w:xz"), (".tar.gz", "w:gz"), (".attachment", "w:gz")])
def test_sosreport_archives(reg, tmp_path, suffix, mode):
    archive = tmp_path / f"sosreport-centos7-mini{suffix}"
    with tarfile.open(archive, mode) as tar:
        tar.add(SOS, arcname="sosreport-centos7-mini")
    work = tmp_path / "work"
    work.mkdir()
    ev, facts = facts_of(archive, reg, work)
    check_sos(ev, facts, f"{archive}:sosreport-centos7-mini/")
    assert os.listdir(work) == []  # read in place: nothing extracted


def test_folder_without_evidence(reg, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no evidence found in 0 file"):
        pipeline.open_input(str(tmp_path / "empty"), reg, str(tmp_path))


def test_capture_newer_format_refused(reg, tmp_path):
    cap = tmp_path / "cap"
    cap.mkdir()
    (cap / "memdiag-capture.json").write_text(json.dumps({"format": "memdiag-capture", "version": 99}))
    with pytest.raises(InputError, match="capture format version 99 is newer than this memdiag reads"):
        pipeline.open_input(str(cap), reg, str(tmp_path))
    (cap / "memdiag-capture.json").write_text("{not json")
    with pytest.raises(InputError, match=r"memdiag-capture.json:1: capture metadata is not valid JSON"):
        pipeline.open_input(str(cap), reg, str(tmp_path))
