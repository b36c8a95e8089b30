"""The mount table is read and parsed once per evidence, for every source that needs it."""

from __future__ import annotations

from memdiag.evidence import Evidence
from memdiag.plugins.sources._readers import mounts
from memdiag.plugins.sources.cgroups import CgroupsSource
from memdiag.plugins.sources.container import ContainerSource
from memdiag.plugins.sources.tmpfs import TmpfsSource

from .helpers import run, tree

ROOT_MOUNT = "22 1 253:1 / / rw,relatime - ext4 /dev/vda1 rw\n"
SHM_MOUNT = "25 22 0:21 / /dev/shm rw,nosuid - tmpfs tmpfs rw,size=65536k\n"


class Counting(Evidence):
    def __init__(self, root, **kwargs) -> None:
        super().__init__(root, **kwargs)
        self.reads: list[str] = []

    def read_bytes(self, rel, limit=16 * 1024 * 1024):
        self.reads.append(rel)
        return super().read_bytes(rel, limit)


def test_read_once_for_all_three_sources(tmp_path):
    tree(tmp_path, {"proc/self/mountinfo": ROOT_MOUNT + SHM_MOUNT, "proc/meminfo": "MemTotal: 1000 kB\n"})
    ev = Counting(str(tmp_path), kind="capture")
    facts = run([CgroupsSource(), ContainerSource(), TmpfsSource()], tmp_path, ev=ev)
    assert ev.reads.count("proc/self/mountinfo") == 1
    # each source still sees the table: tmpfs found the /dev/shm mount (and, with no captured df, says so)
    (problem,) = [p for p in facts.problems if p.source == "tmpfs"]
    assert "captured `df`" in problem.message and problem.path == str(tmp_path / "proc/self/mountinfo")


def test_the_first_with_text_wins_and_its_origin_is_given(tmp_path):
    tree(tmp_path, {"proc/self/mountinfo": "", "proc/1/mountinfo": ROOT_MOUNT})
    table, origin = mounts(Evidence(str(tmp_path), kind="capture"))
    assert [m["mountpoint"] for m in table] == ["/"] and origin == str(tmp_path / "proc/1/mountinfo")
    assert mounts(Evidence(str(tmp_path / "empty"), kind="capture")) == ([], None)
