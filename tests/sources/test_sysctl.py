"""The sysctl source: vm.* settings from /proc/sys/vm, or a captured `sysctl -a`."""

from __future__ import annotations

from memdiag.units import MIB

from memdiag.plugins.sources.sysctl import SysctlSource, parse_sysctl_a
from .helpers import kinds, run, run_live, tree

VM = "proc/sys/vm"


def test_settings_from_proc(tmp_path):
    root = tree(tmp_path, {f"{VM}/overcommit_memory": "2\n", f"{VM}/overcommit_ratio": "80\n",
                           f"{VM}/overcommit_kbytes": "0\n", f"{VM}/min_free_kbytes": "67584\n",
                           f"{VM}/swappiness": "60\n", f"{VM}/nr_hugepages": "1024\n",
                           f"{VM}/zone_reclaim_mode": "0\n", f"{VM}/vfs_cache_pressure": "100\n"})
    facts = run([SysctlSource()], root)
    assert facts.get("sysctl.vm.overcommit_memory") == 2
    assert facts.get("sysctl.vm.overcommit_ratio") == 80
    assert facts.get("sysctl.vm.overcommit_bytes") == 0
    assert facts.get("sysctl.vm.min_free_bytes") == 66 * MIB
    assert facts.get("sysctl.vm.nr_hugepages") == 1024
    assert "sysctl.vm.panic_on_oom" not in facts  # absent file: unknown, not 0
    assert facts.problems == []


def test_garbage_value_is_malformed(tmp_path):
    facts = run([SysctlSource()], tree(tmp_path, {f"{VM}/swappiness": "sixty\n"}))
    assert kinds(facts) == [("sysctl", "malformed")] and "sysctl.vm.swappiness" not in facts


def test_sosreport_sysctl_a(tmp_path):
    text = "kernel.pid_max = 4194304\nvm.overcommit_memory = 1\nvm.min_free_kbytes = 90112\nvm.stat_interval = 1\n"
    facts = run([SysctlSource()], tmp_path, commands={"sysctl": text})
    assert facts.get("sysctl.vm.overcommit_memory") == 1
    assert facts.get("sysctl.vm.min_free_bytes") == 90112 * 1024
    assert facts.origin("sysctl.vm.overcommit_memory") == "<sysctl>"
    assert parse_sysctl_a("vm.x = a b\nvm.y = -1\n") == {"vm.y": -1}


def test_live():
    facts = run_live([SysctlSource()])
    assert facts.get("sysctl.vm.overcommit_memory") in (0, 1, 2)
