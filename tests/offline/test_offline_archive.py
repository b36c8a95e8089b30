"""Hostile archives are refused with one line naming archive and member; nothing leaks out."""

from __future__ import annotations

import os
import stat
import tarfile

import pytest

from memdiag.archive import Limits, compression, extract, extracted, is_archive
from memdiag.errors import InputError

from testkit import make_tar


def reg(name, data=b"x\n"):
    return ({"name": name, "mode": 0o644}, data)


def refused(path, match, limits=Limits()):
    with pytest.raises(InputError) as err:
        with extracted(path, limits):
            pass
    text = str(err.value)
    assert text.startswith(str(path) + ": "), text
    assert "\n" not in text
    assert match in text, text
    return text


@pytest.mark.parametrize("mode,kind", [("w:gz", "gz"), ("w:xz", "xz"), ("w:bz2", "bz2"), ("w", "tar")])
def test_good_archive_each_compression(tmp_path, mode, kind):
    path = make_tar(tmp_path / "cap.bin", [
        ({"name": "cap", "type": tarfile.DIRTYPE, "mode": 0o555}, None),
        reg("cap/proc/meminfo", b"MemTotal: 1 kB\n"),
        ({"name": "cap/free", "type": tarfile.SYMTYPE, "linkname": "sos_commands/memory/free"}, None),
        reg("cap/sos_commands/memory/free", b"total\n"),
        ({"name": "cap/hard", "type": tarfile.LNKTYPE, "linkname": "cap/proc/meminfo"}, None),
    ], mode)
    assert compression(path) == kind and is_archive(path)
    with extracted(path) as dest:
        root = os.path.join(dest, "cap")
        assert open(os.path.join(root, "proc/meminfo")).read() == "MemTotal: 1 kB\n"
        assert open(os.path.join(root, "free")).read() == "total\n"  # in-archive link kept
        assert open(os.path.join(root, "hard")).read() == "MemTotal: 1 kB\n"
        # private: folders 0700, files 0600, whatever the archive said
        assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(os.path.join(root, "proc/meminfo")).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(dest)).st_mode) == 0o700
        parent = os.path.dirname(dest)
    assert not os.path.exists(parent)  # removed afterwards


def test_removed_even_when_the_body_raises(tmp_path):
    path = make_tar(tmp_path / "a.tar.gz", [reg("a/x")])
    with pytest.raises(RuntimeError):
        with extracted(path) as dest:
            kept = dest
            raise RuntimeError("boom")
    assert not os.path.exists(kept)


def test_path_traversal(tmp_path):
    path = make_tar(tmp_path / "evil.tar.gz", [reg("ok"), reg("a/../../escaped")])
    refused(path, "member 'a/../../escaped': path leads outside the archive (..)")
    assert not (tmp_path / "escaped").exists()


def test_absolute_path(tmp_path):
    refused(make_tar(tmp_path / "abs.tar.gz", [reg("/etc/cron.d/evil")]), "absolute path")


def test_symlink_outside(tmp_path):
    path = make_tar(tmp_path / "l.tar.gz", [
        ({"name": "x/passwd", "type": tarfile.SYMTYPE, "linkname": "../../etc/passwd"}, None)])
    refused(path, "link points outside the archive (../../etc/passwd)")


def test_absolute_symlink(tmp_path):
    path = make_tar(tmp_path / "l.tar.gz", [({"name": "x", "type": tarfile.SYMTYPE, "linkname": "/etc"}, None)])
    refused(path, "link to an absolute path (/etc)")


def test_write_through_symlink_refused(tmp_path):
    # "a" -> "." is inside, but "a/b" -> "../x" would then land outside: members never pass links
    path = make_tar(tmp_path / "l.tar.gz", [
        ({"name": "a", "type": tarfile.SYMTYPE, "linkname": "."}, None),
        ({"name": "a/b", "type": tarfile.SYMTYPE, "linkname": "../x"}, None)])
    refused(path, "written through a link")


def test_symlink_then_file_replaces_link_not_target(tmp_path):
    outside = tmp_path / "victim"
    outside.write_text("untouched")
    path = make_tar(tmp_path / "l.tar.gz", [
        ({"name": "f", "type": tarfile.SYMTYPE, "linkname": "g"}, None), reg("f", b"new")])
    with extracted(str(path)) as dest:
        assert not os.path.islink(os.path.join(dest, "f"))
        assert open(os.path.join(dest, "f"), "rb").read() == b"new"
        assert not os.path.lexists(os.path.join(dest, "g"))  # nothing written through the link
    assert outside.read_text() == "untouched"


def test_hardlink_outside(tmp_path):
    path = make_tar(tmp_path / "h.tar.gz", [({"name": "h", "type": tarfile.LNKTYPE, "linkname": "/etc/shadow"}, None)])
    refused(path, "absolute path")
    path = make_tar(tmp_path / "h2.tar.gz", [({"name": "h", "type": tarfile.LNKTYPE, "linkname": "nothere"}, None)])
    refused(path, "hard link to a file not in the archive")


@pytest.mark.parametrize("kind,why", [(tarfile.CHRTYPE, "device file"), (tarfile.BLKTYPE, "device file"),
                                      (tarfile.FIFOTYPE, "FIFO")])
def test_devices_and_fifos(tmp_path, kind, why):
    path = make_tar(tmp_path / "d.tar.gz", [({"name": "proc/meminfo", "type": kind, "devmajor": 1, "devminor": 3}, None)])
    refused(path, why)


def test_decompression_bomb_ratio(tmp_path):
    path = make_tar(tmp_path / "bomb.tar.gz", [reg("zeros", b"\0" * (4 * 1024 * 1024))])
    assert os.path.getsize(path) < 64 * 1024
    refused(path, "decompression bomb", Limits(ratio=20, ratio_floor=1024 * 1024))


def test_total_and_member_caps(tmp_path):
    path = make_tar(tmp_path / "big.tar.gz", [reg("a", os.urandom(600_000)), reg("b", os.urandom(600_000))])
    refused(path, "more than 1 MiB in total", Limits(total_bytes=1024 * 1024))
    refused(path, "member 'a': larger than 0 MiB", Limits(member_bytes=500_000))


def test_too_many_members(tmp_path):
    path = make_tar(tmp_path / "many.tar.gz", [reg(f"f{i}") for i in range(20)])
    refused(path, "more than 10 members", Limits(members=10))


def test_truncated_and_not_an_archive(tmp_path):
    good = make_tar(tmp_path / "t.tar.xz", [reg("a", os.urandom(200_000))], "w:xz")
    data = open(good, "rb").read()
    cut = tmp_path / "cut.tar.xz"
    cut.write_bytes(data[: len(data) // 2])
    refused(str(cut), "damaged or truncated archive")
    plain = tmp_path / "notes.txt"
    plain.write_text("hello")
    assert not is_archive(str(plain))
    with pytest.raises(InputError, match="not a tar archive"):
        extract(str(plain), str(tmp_path))


def test_partial_extraction_removed_on_refusal(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    path = make_tar(tmp_path / "e.tar.gz", [reg("fine"), reg("../bad")])
    with pytest.raises(InputError):
        extract(path, str(work))
    assert os.listdir(work) == []
