"""The tmpfs and deleted sources: tmpfs usage (statvfs live, `df` in snapshots); deleted-open files."""

from __future__ import annotations

import os
import uuid

from memdiag.units import GIB, KIB, MIB

from memdiag.plugins.sources.tmpfs import DeletedSource, TmpfsSource, parse_df
from .helpers import kinds, run, run_live, tree

MOUNTS = ("25 24 0:23 / /dev/shm rw,nosuid,nodev - tmpfs tmpfs rw,size=8388608k\n"
          "26 27 0:24 / /run rw,nosuid,nodev - tmpfs tmpfs rw,size=1638400k,mode=755\n"
          "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n")
# coreutils df output as found in sosreports (sos_commands/filesys/df_-al_-x_autofs)
DF_K = """Filesystem     1K-blocks     Used Available Use% Mounted on
/dev/vda        41152736 12381800  26657644  32% /
tmpfs            8388608  6291456   2097152  75% /dev/shm
tmpfs            1638400     1740   1636660   1% /run
shm                65536        0     65536   0% /var/lib/docker/containers/x/mounts/shm
"""
DF_HT = """Filesystem     Type      Size  Used Avail Use% Mounted on
/dev/vda       ext4       40G   12G   26G  32% /
tmpfs          tmpfs     8.0G  6.0G  2.0G  75% /dev/shm
tmpfs          tmpfs     1.6G  1.7M  1.6G   1% /run
"""


def test_df_k_layout():
    rows = {r["mountpoint"]: r for r in parse_df(DF_K)}
    assert rows["/dev/shm"] == {"mountpoint": "/dev/shm", "size_bytes": 8 * GIB, "used_bytes": 6 * GIB, "used_ratio": 0.75}
    assert rows["/run"]["used_bytes"] == 1740 * KIB
    assert "/" not in rows and "/var/lib/docker/containers/x/mounts/shm" in rows


def test_df_h_with_type_column():
    rows = {r["mountpoint"]: r for r in parse_df(DF_HT)}
    assert rows["/dev/shm"]["used_bytes"] == 6 * GIB
    assert rows["/run"]["used_bytes"] == round(1.7 * MIB)


def test_snapshot_uses_captured_df(tmp_path):
    facts = run([TmpfsSource()], tree(tmp_path, {"proc/self/mountinfo": MOUNTS}), commands={"df": DF_K})
    assert facts.get("tmpfs.used_bytes") == 6 * GIB + 1740 * KIB
    assert facts.get("tmpfs.largest_mount") == "/dev/shm"
    assert facts.get("tmpfs.dev_shm_used_bytes") == 6 * GIB
    assert facts.origin("tmpfs.mounts") == "<df>"


def test_snapshot_without_df_is_skipped_with_reason(tmp_path):
    facts = run([TmpfsSource()], tree(tmp_path, {"proc/self/mountinfo": MOUNTS}))
    assert "tmpfs.used_bytes" not in facts
    assert kinds(facts) == [("tmpfs", "unreadable")] and "`df`" in facts.problems[0].message


def test_snapshot_without_any_tmpfs_evidence(tmp_path):
    facts = run([TmpfsSource()], tmp_path)
    assert facts.facts == {} and facts.problems == []


def test_deleted_is_live_only(tmp_path):
    facts = run([DeletedSource()], tree(tmp_path, {"proc/1/fd/3": ""}))
    assert facts.facts == {} and facts.problems == []


SHM = "/dev/shm"


def test_live_tmpfs_sees_a_file_in_dev_shm():
    path = os.path.join(SHM, f"memdiag-test-{uuid.uuid4().hex}")
    before = run_live([TmpfsSource()]).get("tmpfs.dev_shm_used_bytes")
    with open(path, "wb") as f:
        f.write(os.urandom(8 * MIB))
    try:
        after = run_live([TmpfsSource()]).get("tmpfs.dev_shm_used_bytes")
    finally:
        os.unlink(path)
    assert after - before >= 8 * MIB - 64 * KIB  # other users of /dev/shm may come and go


def test_live_deleted_but_open_file_on_tmpfs_is_found():
    path = os.path.join(SHM, f"memdiag-test-{uuid.uuid4().hex}")
    f = open(path, "wb")
    try:
        f.write(os.urandom(4 * MIB))
        f.flush()
        os.unlink(path)
        facts = run_live([DeletedSource()])
    finally:
        f.close()
    mine = [r for r in facts.get("deleted.top") if r["path"] == path]
    assert mine and mine[0]["shmem"] is True and mine[0]["bytes"] >= 4 * MIB
    assert mine[0]["pid"] == os.getpid() and mine[0]["process"]
    assert facts.get("deleted.shmem_bytes") >= 4 * MIB


def test_live_memfd_counts_as_shmem():
    fd = os.memfd_create("memdiag-test")
    try:
        os.write(fd, b"\1" * (32 * MIB))  # large enough to rank in the top ten
        facts = run_live([DeletedSource()])
    finally:
        os.close(fd)
    mine = [r for r in facts.get("deleted.top") if r["path"] == "/memfd:memdiag-test"]
    assert mine and mine[0]["shmem"] is True


def test_descriptors_are_not_walked_when_shmem_is_too_small_to_matter():
    from memdiag.bounded import Deadline
    from memdiag.evidence import Captured, Evidence
    from memdiag.plugins.sources.meminfo import MeminfoSource
    from memdiag.sources import collect

    ev = Evidence("/", kind="live", overlay={"proc/meminfo": Captured("MemTotal: 16000000 kB\nShmem: 1024 kB\n", "t")})
    facts = collect([MeminfoSource(), DeletedSource()], ev, deadline=Deadline(5))
    assert facts.get("meminfo.Shmem") == 1024 * 1024
    assert "deleted.files" not in facts and facts.problems == []
