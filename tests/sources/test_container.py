"""The container source: detection, LXCFS, and the cgroup figures as container.*."""

from __future__ import annotations

from memdiag.units import GIB, MIB

from memdiag.plugins.sources.container import ContainerSource
from .helpers import Given, run, run_live, tree

# the mount LXCFS makes over /proc/meminfo (lxc/lxcfs README; fuse.lxcfs, source "lxcfs")
LXCFS = ("1200 1180 0:50 / / rw,relatime - zfs default/containers/c1 rw\n"
         "1234 1200 0:52 /proc/meminfo /proc/meminfo rw,nosuid,nodev,relatime - fuse.lxcfs lxcfs "
         "rw,user_id=0,group_id=0,allow_other\n")
DOCKER_ROOT = "600 500 0:45 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/A,upperdir=x,workdir=y\n"
CGROUP = {"cgroup.own_limit_bytes": 2 * GIB, "cgroup.own_usage_bytes": 1900 * MIB,
          "cgroup.own_working_set_bytes": 1500 * MIB, "cgroup.own_limit_ratio": 1500 / 2048}


def test_docker_without_lxcfs_sees_host_meminfo(tmp_path):
    root = tree(tmp_path, {".dockerenv": "", "proc/self/mountinfo": DOCKER_ROOT,
                           "proc/1/cgroup": "0::/\n"})
    facts = run([ContainerSource(), Given("cgroups", {**CGROUP, "meminfo.MemTotal": 64 * GIB})], root)
    assert facts.get("container.detected") is True
    assert facts.get("container.runtime") == "docker"
    assert facts.get("container.signals") == ["/.dockerenv", "root filesystem is overlay"]
    assert facts.get("container.lxcfs") is False and facts.get("container.meminfo_is_host") is True
    assert facts.get("container.limit_bytes") == 2 * GIB
    assert facts.get("container.working_set_bytes") == 1500 * MIB
    assert facts.get("container.limit_ratio") == 1500 / 2048


def test_lxc_with_lxcfs(tmp_path):
    root = tree(tmp_path, {"run/systemd/container": "lxc\n", "proc/self/mountinfo": LXCFS})
    facts = run([ContainerSource(), Given("cgroups", {**CGROUP, "meminfo.MemTotal": 2 * GIB})], root)
    assert facts.get("container.runtime") == "lxc"
    assert facts.get("container.lxcfs") is True and facts.get("container.meminfo_is_host") is False
    assert "/proc/meminfo mounted from lxcfs" in facts.get("container.signals")


def test_lxcfs_inferred_when_memtotal_equals_the_limit(tmp_path):
    root = tree(tmp_path, {"proc/1/cgroup": "12:memory:/lxc.payload.c1\n"})
    facts = run([ContainerSource(), Given("cgroups", {**CGROUP, "meminfo.MemTotal": 2 * GIB})], root)
    assert facts.get("container.runtime") == "lxc" and facts.get("container.lxcfs") is True


def test_kubernetes_v1_cgroup_path(tmp_path):
    root = tree(tmp_path, {"proc/1/cgroup": "11:memory:/kubepods/burstable/pod5f1c/0a1b2c\n"})
    facts = run([ContainerSource()], root)
    assert facts.get("container.runtime") == "kubernetes"
    assert "container.limit_bytes" not in facts  # no cgroup facts given: unknown


def test_plain_host(tmp_path):
    root = tree(tmp_path, {"proc/1/cgroup": "0::/init.scope\n",
                           "proc/self/mountinfo": "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"})
    facts = run([ContainerSource()], root)
    assert facts.get("container.detected") is False and "container.runtime" not in facts


def test_live():
    facts = run_live([ContainerSource()])
    assert isinstance(facts.get("container.detected"), bool)
