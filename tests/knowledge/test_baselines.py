"""Healthy hosts stay silent: every bundled rule over every baseline gives nothing above info.

The baselines (tests/fixtures/baselines/, see its README) are the hosts a memory tool most often
cries wolf on: a big page cache, a big reclaimable slab, an idle small VM, a container behind
LXCFS, a 1.5 TiB database server, a desktop with zram, and a real capture of a Firecracker guest.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from memdiag import pipeline
from memdiag.bounded import Deadline
from memdiag.evidence import Evidence
from memdiag.units import GIB

BASELINES = Path(__file__).resolve().parent.parent / "fixtures" / "baselines"
HOSTS = sorted(p.name for p in BASELINES.iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def rules(registry):
    rs = pipeline.load_rules(registry, use_cache=False)
    assert [str(p) for p in rs.problems] == []
    return rs


def diagnose(host: str, registry, rules):
    ev = Evidence(str(BASELINES / host), kind="capture")
    return pipeline.diagnose(ev, registry=registry, rules=rules, deadline=Deadline(20))


def test_there_are_at_least_six_baselines():
    assert len(HOSTS) >= 6, HOSTS


@pytest.mark.parametrize("host", HOSTS)
def test_no_warning_or_critical_on_a_healthy_host(host, registry, rules):
    d = diagnose(host, registry, rules)
    loud = [f"{r.rule_id}: {r.finding['severity']}: {r.finding['message']}" for r in d.results
            if r.state == "fired" and r.finding["severity"] != "info"]
    broken = [f"{r.rule_id}: {r.reason}" for r in d.results if r.state == "error"]
    assert loud == [] and broken == []
    assert [p for p in d.facts.problems if p.kind == "failed"] == []
    assert d.exit_code == 0


# what makes each baseline the case it stands for (so a regenerated fixture cannot drift into a
# host that no longer tests anything)
SHAPES = {
    "pagecache-fileserver": lambda f: f.get("meminfo.Cached") > 0.8 * f.get("meminfo.MemTotal"),
    "reclaimable-slab-backup": lambda f: f.get("meminfo.SReclaimable") > 0.4 * f.get("meminfo.MemTotal")
                                          and f.get("slab.negative_dentries") > 10_000_000,
    "idle-small-vm": lambda f: f.get("meminfo.MemTotal") <= GIB and f.get("balloon.virtio_present") is True,
    "lxc-container-lxcfs": lambda f: f.get("container.lxcfs") is True and f.get("cgroup.own_limit_bytes") == 2 * GIB,
    "large-ram-database": lambda f: f.get("meminfo.MemTotal") > 1024 * GIB and f.get("hugetlb.total_bytes") == 64 * GIB,
    "desktop-zram": lambda f: f.get("swap.zram_total_bytes") > 0 and f.get("gpu.system_bytes") == 180 * 1024 ** 2,
    "firecracker-guest": lambda f: f.get("balloon.virtio_deflate_on_oom") is True and f.get("container.detected") is True,
}


@pytest.mark.parametrize("host", HOSTS)
def test_each_baseline_is_the_case_it_stands_for(host, registry, rules):
    assert host in SHAPES, f"describe {host} in SHAPES and in the README"
    assert SHAPES[host](diagnose(host, registry, rules).facts)


def test_info_notes_still_speak(registry, rules):
    """Silence means no alarm, not no insight: the slab and LXCFS hosts get their notes."""
    fired = {h: {r.rule_id for r in diagnose(h, registry, rules).results if r.state == "fired"}
             for h in ("reclaimable-slab-backup", "lxc-container-lxcfs")}
    assert "slab-reclaimable-large" in fired["reclaimable-slab-backup"]
    assert "lxcfs-view" in fired["lxc-container-lxcfs"]
