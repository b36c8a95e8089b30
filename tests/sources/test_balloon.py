"""The balloon source: VMware (both vmmemctl layouts), Hyper-V, Xen, virtio, shared counters."""

from __future__ import annotations

from memdiag.units import GIB, MIB

from memdiag.plugins.sources.balloon import BalloonSource, parse_toolbox, parse_vmmemctl
from .helpers import FIXTURES, Denying, Given, kinds, run, run_live, tree

B = FIXTURES / "balloon"


def test_vmmemctl_new_layout_reads_target_and_current_not_the_command_counter():
    facts = run([BalloonSource(), Given("modules", {"modules.loaded": ["vmw_balloon", "vmw_vmci"]})], B / "vmware-new")
    assert facts.get("balloon.vmware_bytes") == 1281024 * 4096
    assert round(facts.get("balloon.vmware_bytes") / GIB, 2) == 4.89
    assert facts.get("balloon.vmware_target_bytes") == 1343488 * 4096
    assert facts.get("balloon.vmware_evidence") == "vmmemctl"
    assert facts.origin("balloon.vmware_bytes").endswith("sys/kernel/debug/vmmemctl")
    assert facts.get("balloon.drivers") == ["vmw_balloon"]
    assert facts.get("balloon.held_bytes") == 1281024 * 4096
    assert facts.problems == []


def test_vmmemctl_old_layout_idle_balloon():
    facts = run([BalloonSource()], B / "vmware-old")
    assert facts.get("balloon.vmware_bytes") == 0
    assert facts.get("balloon.vmware_target_bytes") == 0  # not the later "target: 118 ( 0 failed)"
    assert "vmw_balloon" in facts.get("balloon.drivers")


def test_parse_vmmemctl_layouts():
    assert parse_vmmemctl("target: 262144 pages\ncurrent: 131072 pages\n") == (262144, 131072)
    assert parse_vmmemctl("garbage\n") == (None, None)


def test_vmmemctl_unreadable_without_root_is_a_permission_problem(tmp_path):
    root = tree(tmp_path, {"sys/kernel/debug/vmmemctl": "current: 5 pages\n"})
    facts = run([BalloonSource()], root, ev=Denying(str(root), {"sys/kernel/debug/vmmemctl"}))
    assert "balloon.vmware_bytes" not in facts
    assert kinds(facts) == [("balloon", "permission")]
    assert facts.problems[0].message == "permission denied (root only)"
    assert "vmw_balloon" in facts.get("balloon.drivers")  # the file's existence is itself a signal


def test_vmmemctl_without_current_line_is_malformed(tmp_path):
    root = tree(tmp_path, {"sys/kernel/debug/vmmemctl": "balloon capabilities: 0x1e\n"})
    facts = run([BalloonSource()], root)
    assert kinds(facts) == [("balloon", "malformed")]


def test_vmware_falls_back_to_vmstat_counters_when_debugfs_is_absent(tmp_path):
    given = Given("vmstat", {"vmstat.balloon_inflate": 1_500_000, "vmstat.balloon_deflate": 218_976,
                             "modules.loaded": ["vmw_balloon"]})
    facts = run([BalloonSource(), given], tmp_path)
    assert facts.get("balloon.compaction_bytes") == 1_281_024 * 4096
    assert facts.get("balloon.vmware_bytes") == 1_281_024 * 4096
    assert facts.get("balloon.vmware_evidence") == "vmstat"


def test_meminfo_balloon_line_attributed_to_the_only_driver(tmp_path):
    given = Given("meminfo", {"meminfo.Balloon": 2 * GIB, "modules.loaded": ["vmw_balloon"]})
    facts = run([BalloonSource(), given], tmp_path)
    assert facts.get("balloon.vmware_bytes") == 2 * GIB
    assert facts.get("balloon.vmware_evidence") == "meminfo"
    assert facts.get("balloon.held_bytes") == 2 * GIB


def test_toolbox_output_parsed():
    assert parse_toolbox("1024 MB\n") == 1024 * MIB
    assert parse_toolbox("Balloon: unknown") is None


def test_toolbox_capture_gives_vmware_bytes(tmp_path):
    facts = run([BalloonSource()], tmp_path, commands={"vmware-toolbox-cmd-stat-balloon": "5006 MB\n"})
    assert facts.get("balloon.vmware_bytes") == 5006 * MIB
    assert facts.get("balloon.vmware_evidence") == "vmware-toolbox"


def test_hyperv_vendor_layout():
    facts = run([BalloonSource()], B / "hyperv-vz")
    assert facts.get("balloon.hyperv_ballooned_bytes") == 0
    assert facts.get("balloon.hyperv_hot_added_bytes") == 0
    assert facts.get("balloon.drivers") == ["hv_balloon"]


def test_hyperv_upstream_layout(tmp_path):
    text = ("host_version          : 2.0\ncapabilities          : enabled hot_add\n"
            "state                 : 1 (Initialized)\npage_size             : 4096\n"
            "pages_added           : 262144\npages_onlined         : 262144\n"
            "pages_ballooned       : 524288\ntotal_pages_committed : 900000\n"
            "max_dynamic_page_count: 268435456\n")
    facts = run([BalloonSource()], tree(tmp_path, {"sys/kernel/debug/hv-balloon": text}))
    assert facts.get("balloon.hyperv_ballooned_bytes") == 2 * GIB
    assert facts.get("balloon.hyperv_hot_added_bytes") == 1 * GIB
    assert facts.get("balloon.hyperv_onlined_bytes") == 1 * GIB
    assert facts.get("balloon.held_bytes") == 2 * GIB


def test_xen_sysfs(tmp_path):
    base = "sys/devices/system/xen_memory/xen_memory0"
    root = tree(tmp_path, {f"{base}/target_kb": "4194304\n", f"{base}/info/current_kb": "4194304\n",
                           f"{base}/info/low_kb": "2097152\n", f"{base}/info/high_kb": "0\n"})
    facts = run([BalloonSource()], root)
    assert facts.get("balloon.xen_target_bytes") == 4 * GIB
    assert facts.get("balloon.xen_current_bytes") == 4 * GIB
    assert facts.get("balloon.xen_ballooned_bytes") == 2 * GIB
    assert facts.get("balloon.drivers") == ["xen_balloon"]


def test_virtio_without_deflate_on_oom_shrinks_memtotal():
    facts = run([BalloonSource()], B / "virtio-nodeflate")
    assert facts.get("balloon.virtio_present") is True
    assert facts.get("balloon.virtio_deflate_on_oom") is False


def test_virtio_with_deflate_on_oom():
    facts = run([BalloonSource()], B / "virtio-deflate")
    assert facts.get("balloon.virtio_deflate_on_oom") is True


def test_virtio_firecracker_balloon_found_among_other_devices():
    given = Given("vmstat", {"vmstat.balloon_inflate": 300, "vmstat.balloon_deflate": 100})
    facts = run([BalloonSource(), given], B / "virtio-firecracker")
    assert facts.get("balloon.virtio_present") is True
    assert facts.get("balloon.virtio_deflate_on_oom") is True
    assert facts.get("balloon.virtio_bytes") == 200 * 4096  # compaction counters, only driver
    assert facts.get("balloon.drivers") == ["virtio_balloon"]


def test_shared_counters_not_attributed_when_two_drivers_could_own_them(tmp_path):
    given = Given("vmstat", {"vmstat.balloon_inflate": 10, "vmstat.balloon_deflate": 0,
                             "modules.loaded": ["vmw_balloon", "virtio_balloon"]})
    facts = run([BalloonSource(), given], tmp_path)
    assert facts.get("balloon.compaction_bytes") == 40960
    assert "balloon.vmware_bytes" not in facts and "balloon.virtio_bytes" not in facts
    assert facts.get("balloon.held_bytes") == 40960


def test_no_balloon_at_all_gives_no_sizes(tmp_path):
    facts = run([BalloonSource()], tree(tmp_path, {"proc/meminfo": "MemTotal: 1 kB\n"}))
    assert facts.get("balloon.drivers") == []
    assert "balloon.held_bytes" not in facts and facts.problems == []


def test_live():
    facts = run_live([BalloonSource()])
    assert isinstance(facts.get("balloon.drivers"), list)


def test_with_the_real_meminfo_vmstat_and_modules_sources(tmp_path, registry):
    """The fact names this source reads are the ones the core sources write."""
    root = tree(tmp_path, {
        "proc/meminfo": "MemTotal:        8009400 kB\nMemFree:          140576 kB\n",
        "proc/vmstat": "nr_free_pages 35144\nballoon_inflate 1500000\nballoon_deflate 218976\nballoon_migrate 12\n",
        "proc/modules": "vmw_balloon 24576 0 - Live 0xffffffffc0a3e000\n",
    })
    facts = run(list(registry.sources), root)
    assert facts.get("balloon.vmware_bytes") == 1_281_024 * 4096
    assert facts.get("balloon.vmware_evidence") == "vmstat"
    assert facts.get("balloon.drivers") == ["vmw_balloon"]
