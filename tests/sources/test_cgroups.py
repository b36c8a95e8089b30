"""The cgroups source: v2 and v1 hierarchies, the own cgroup, a bounded walk for the largest."""

from __future__ import annotations

from memdiag.evidence import Evidence
from memdiag.units import GIB, MIB

from memdiag.plugins.sources import cgroups
from memdiag.plugins.sources.cgroups import CgroupsSource, cgroup_dir, find_layout, limit_of
from .helpers import kinds, run, run_live, tree

MOUNT_V2 = "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
# v1 mounts as on this project's development guest (a Firecracker VM with the v1 memory controller)
MOUNT_V1 = ("31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
            "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
            "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
            "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n")

# keys of cgroup v2 memory.stat as documented in Documentation/admin-guide/cgroup-v2.rst
def v2_stat(anon: int, file: int, inactive_file: int, shmem: int = 0) -> str:
    return (f"anon {anon}\nfile {file}\nkernel 8388608\nkernel_stack 1048576\npagetables 2097152\n"
            f"sec_pagetables 0\npercpu 65536\nsock 0\nvmalloc 0\nshmem {shmem}\nfile_mapped 1048576\n"
            f"file_dirty 0\nfile_writeback 0\nswapcached 0\nanon_thp 0\ninactive_anon {anon}\n"
            f"active_anon 0\ninactive_file {inactive_file}\nactive_file {file - inactive_file}\n"
            "unevictable 0\nslab_reclaimable 2097152\nslab_unreclaimable 1048576\nslab 3145728\n"
            "pgfault 123456\npgmajfault 12\n")


def cg(path: str, current: int, limit: str, anon: int, file: int, inactive: int, oom_kill: int = 0) -> dict:
    base = f"sys/fs/cgroup/{path}"
    return {f"{base}/memory.current": f"{current}\n", f"{base}/memory.max": f"{limit}\n",
            f"{base}/memory.stat": v2_stat(anon, file, inactive),
            f"{base}/memory.events": f"low 0\nhigh 0\nmax {oom_kill * 40}\noom {oom_kill}\noom_kill {oom_kill}\noom_group_kill 0\n",
            f"{base}/cgroup.procs": "1\n"}


def v2_host(tmp_path):
    files = {
        "proc/self/mountinfo": MOUNT_V2,
        "proc/self/cgroup": "0::/user.slice/user-1000.slice/session-3.scope\n",
        "sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n",
        "sys/fs/cgroup/memory.stat": v2_stat(6 * GIB, 20 * GIB, 12 * GIB),
        **cg("system.slice", 10 * GIB, "max", 2 * GIB, 8 * GIB, 6 * GIB),
        **cg("system.slice/mysqld.service", 9 * GIB, "max", 2 * GIB, 7 * GIB, 6 * GIB),
        **cg("user.slice", 3 * GIB, "max", 1 * GIB, 2 * GIB, 1 * GIB),
        **cg("user.slice/user-1000.slice", 3 * GIB, "max", 1 * GIB, 2 * GIB, 1 * GIB),
        **cg("user.slice/user-1000.slice/session-3.scope", 2 * GIB, "max", 1 * GIB, 1 * GIB, 512 * MIB),
        # a batch job at its 4 GiB limit: working set 3.9 GiB, killed twice
        **cg("batch.slice", 4 * GIB - 10 * MIB, str(4 * GIB), 3900 * MIB, 86 * MIB, 0, oom_kill=2),
        # a cache-heavy service whose usage touches its limit but whose working set is small
        **cg("cache.slice", 2 * GIB, str(2 * GIB), 100 * MIB, 1948 * MIB, 1800 * MIB),
    }
    return tree(tmp_path, files)


def test_v2_host_own_cgroup_and_walk(tmp_path):
    facts = run([CgroupsSource()], v2_host(tmp_path))
    assert facts.get("cgroup.version") == "v2"
    assert facts.get("cgroup.own_path") == "/user.slice/user-1000.slice/session-3.scope"
    assert facts.get("cgroup.own_usage_bytes") == 2 * GIB
    assert facts.get("cgroup.own_limited") is False
    assert "cgroup.own_limit_bytes" not in facts
    assert facts.get("cgroup.own_working_set_bytes") == 2 * GIB - 512 * MIB
    assert facts.get("cgroup.own_stat")["anon"] == GIB
    assert facts.get("cgroup.own_events")["oom_kill"] == 0
    assert facts.get("cgroup.root_stat")["file"] == 20 * GIB
    assert facts.get("cgroup.walked") == 7 and facts.get("cgroup.walk_complete") is True
    top = facts.get("cgroup.top")
    assert [r["path"] for r in top[:2]] == ["/system.slice", "/system.slice/mysqld.service"]
    assert top[0]["anon_bytes"] == 2 * GIB and "limit_bytes" not in top[0]  # unlimited
    tight = facts.get("cgroup.tightest")
    assert tight["path"] == "/batch.slice"  # not cache.slice: its usage is page cache
    assert tight["oom_kills"] == 2 and tight["limit_bytes"] == 4 * GIB
    assert round(tight["limit_ratio"], 3) == round((4 * GIB - 10 * MIB) / (4 * GIB), 3)
    assert facts.problems == []


def test_limit_set_on_a_parent_binds_the_child(tmp_path):
    root = v2_host(tmp_path)
    (root / "sys/fs/cgroup/user.slice/memory.max").write_text(f"{4 * GIB}\n")
    facts = run([CgroupsSource()], root)
    assert facts.get("cgroup.own_limited") is True
    assert facts.get("cgroup.own_limit_bytes") == 4 * GIB
    assert facts.get("cgroup.own_limit_ratio") == (2 * GIB - 512 * MIB) / (4 * GIB)


def test_v2_container_with_cgroup_namespace(tmp_path):
    root = tree(tmp_path, {
        "proc/self/mountinfo": "612 600 0:30 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw\n",
        "proc/self/cgroup": "0::/\n",
        "sys/fs/cgroup/cgroup.controllers": "cpu io memory pids\n",
        "sys/fs/cgroup/memory.current": f"{500 * MIB}\n",
        "sys/fs/cgroup/memory.max": f"{512 * MIB}\n",
        "sys/fs/cgroup/memory.stat": v2_stat(480 * MIB, 20 * MIB, 10 * MIB),
        "sys/fs/cgroup/memory.events": "low 0\nhigh 0\nmax 812\noom 3\noom_kill 3\n",
    })
    facts = run([CgroupsSource()], root)
    assert facts.get("cgroup.own_path") == "/"
    assert facts.get("cgroup.own_limit_bytes") == 512 * MIB
    assert facts.get("cgroup.own_working_set_bytes") == 490 * MIB
    assert facts.get("cgroup.own_oom_kills") == 3
    assert facts.get("cgroup.walked") == 0


# memory.stat of a v1 cgroup, copied from this project's development guest (6.18, v1 memory)
V1_STAT = """cache 372736
rss 1794048
rss_huge 0
shmem 0
mapped_file 20480
dirty 45056
writeback 0
swap 0
pgpgin 23601
pgpgout 23068
pgfault 55489
pgmajfault 16
inactive_anon 1601536
active_anon 8192
inactive_file 24576
active_file 348160
unevictable 0
hierarchical_memory_limit 1073741824
hierarchical_memsw_limit 9223372036854771712
total_cache 372736
total_rss 1794048
total_inactive_file 24576
"""


def test_v1_hierarchy_with_hierarchical_limit(tmp_path):
    base = "sys/fs/cgroup/memory"
    root = tree(tmp_path, {
        "proc/self/mountinfo": MOUNT_V1,
        "proc/self/cgroup": "9:name=systemd:/\n4:memory:/process_api/f63e\n1:cpu:/\n",
        "sys/fs/cgroup/unified/cgroup.controllers": "\n",
        f"{base}/memory.usage_in_bytes": f"{3 * GIB}\n",
        f"{base}/memory.limit_in_bytes": "9223372036854771712\n",
        f"{base}/memory.stat": V1_STAT.replace("1073741824", "9223372036854771712"),
        f"{base}/process_api/memory.usage_in_bytes": "640933888\n",
        f"{base}/process_api/memory.limit_in_bytes": "1073741824\n",
        f"{base}/process_api/f63e/memory.usage_in_bytes": "3100672\n",
        f"{base}/process_api/f63e/memory.limit_in_bytes": "9223372036854771712\n",
        f"{base}/process_api/f63e/memory.stat": V1_STAT,
        f"{base}/process_api/f63e/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        f"{base}/process_api/f63e/memory.failcnt": "0\n",
        f"{base}/process_api/f63e/tasks": "1\n",
    })
    facts = run([CgroupsSource()], root)
    assert facts.get("cgroup.version") == "v1"
    assert facts.get("cgroup.own_path") == "/process_api/f63e"
    assert facts.get("cgroup.own_usage_bytes") == 3100672
    assert facts.get("cgroup.own_limit_bytes") == GIB  # from hierarchical_memory_limit
    assert facts.get("cgroup.own_working_set_bytes") == 3100672 - 24576
    assert facts.get("cgroup.own_events") == {"oom_kill_disable": 0, "under_oom": 0, "oom_kill": 0, "failcnt": 0}
    assert [r["path"] for r in facts.get("cgroup.top")] == ["/process_api", "/process_api/f63e"]
    assert facts.get("cgroup.top")[1]["file_bytes"] == 372736


def test_walk_is_bounded(tmp_path, monkeypatch):
    files = {"proc/self/mountinfo": MOUNT_V2, "sys/fs/cgroup/cgroup.controllers": "memory\n"}
    for i in range(30):
        files.update(cg(f"s{i}.slice", (i + 1) * MIB, "max", MIB, 0, 0))
    monkeypatch.setattr(cgroups, "MAX_CGROUPS", 10)
    facts = run([CgroupsSource()], tree(tmp_path, files))
    assert facts.get("cgroup.walked") == 10 and facts.get("cgroup.walk_complete") is False


def test_helpers():
    assert limit_of("max\n") is None and limit_of("9223372036854771712") is None
    assert limit_of("536870912\n") == 512 * MIB and limit_of(None) is None
    layout = cgroups.Layout("v1", "sys/fs/cgroup/memory", "/docker/abc")
    assert cgroup_dir(layout, "/docker/abc") == "sys/fs/cgroup/memory"
    assert cgroup_dir(layout, "/docker/abc/sub") == "sys/fs/cgroup/memory/sub"


def test_no_memory_controller(tmp_path):
    root = tree(tmp_path, {"proc/self/mountinfo": MOUNT_V2, "sys/fs/cgroup/cgroup.controllers": "cpu io\n"})
    assert find_layout(Evidence(str(root), kind="capture")) is None
    facts = run([CgroupsSource()], root)
    assert facts.facts == {} and kinds(facts) == []


def test_live():
    facts = run_live([CgroupsSource()])
    if "cgroup.version" in facts:
        assert facts.get("cgroup.version") in ("v1", "v2")


def test_flat_values_read_as_to_int_reads_them():
    """parse_flat's shortcut for plain digits gives what to_int gives, for every kind of word."""
    from memdiag.plugins.sources._readers import to_int
    from memdiag.plugins.sources.cgroups import parse_flat

    words = ["0", "12", "007", "0x1f", "0X1F", "-1", "+5", "1" * 40, "1" * 41, "abc", "\u0661\u0662", "\u00b2",
             "9223372036854775807", "18446744073709551615"]
    parsed = parse_flat("".join(f"k{i} {w}\n" for i, w in enumerate(words)))
    assert parsed == {f"k{i}": to_int(w) for i, w in enumerate(words) if to_int(w) is not None}


def test_a_snapshot_is_read_once_a_live_host_each_time(tmp_path):
    """On a snapshot the walk, its detail pass and the own cgroup share each file's one read
    (same facts as reading each time); a live host is read again for each look."""
    from memdiag.facts import FactSet
    from memdiag.plugins.sources.cgroups import _ReadOnce
    from memdiag.sources import build_catalog

    root = tree(tmp_path, {
        "proc/self/mountinfo": "30 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        "proc/self/cgroup": "4:memory:/app\n",
        "sys/fs/cgroup/memory/memory.usage_in_bytes": "1000\n",
        "sys/fs/cgroup/memory/memory.stat": "total_cache 10\ntotal_rss 20\n",
        "sys/fs/cgroup/memory/app/memory.usage_in_bytes": "800\n",
        "sys/fs/cgroup/memory/app/memory.limit_in_bytes": "1024\n",
        "sys/fs/cgroup/memory/app/memory.stat": "total_inactive_file 100\ntotal_rss 700\n",
        "sys/fs/cgroup/memory/app/memory.oom_control": "oom_kill 2\n",
        "sys/fs/cgroup/memory/app/memory.failcnt": "5\n",
    })
    reads: dict[str, list[str]] = {}
    facts = {}
    for kind in ("capture", "live"):
        ev = Evidence(str(root), kind=kind)
        real = ev.read_text
        reads[kind] = []
        ev.read_text = lambda rel, limit=16 << 20, _r=real, _k=kind: reads[_k].append(rel) or _r(rel, limit)
        out = FactSet(build_catalog([CgroupsSource()]))
        CgroupsSource().collect(ev, out)
        facts[kind] = {n: f.value for n, f in out.facts.items()}
    assert facts["capture"] == facts["live"]
    assert facts["capture"]["cgroup.own_events"] == {"oom_kill": 2, "failcnt": 5}
    assert len(reads["capture"]) == len(set(reads["capture"])) < len(reads["live"])
    assert isinstance(_ReadOnce(Evidence(str(root), kind="capture")).flat("a 1\n"), dict)
