"""The knowledge-base sources are built-in plugins, documented, and run together on this host."""

from __future__ import annotations

from memdiag import registry
from memdiag.sources import build_catalog

from .helpers import run_live

MINE = {"balloon", "ram", "zfs", "hugetlb", "thp", "slab", "vmalloc", "cgroups", "psi", "oom",
        "sysctl", "tmpfs", "deleted", "zram", "swap", "gpu", "pss", "container"}


def mine():
    reg = registry.load(autoload=False)
    return [s for s in reg.sources if s.name in MINE]


def test_registered_through_the_hook():
    assert {s.name for s in mine()} == MINE


def test_every_fact_is_documented_and_sizes_are_bytes():
    for src in mine():
        for spec in src.catalog():
            assert spec.name.split(".")[0] in {src.name, "cgroup", "psi", "oom", "sysctl", "swap",
                                                "deleted", "hugetlb", "thp", "vmalloc"}, spec.name
            assert len(spec.doc) > 20, spec.name
            if spec.type == "bytes":
                assert spec.name.rsplit(".", 1)[1].split("_")[-1] == "bytes", spec.name
            if spec.type == "count":
                assert spec.unit, f"{spec.name}: a count says what it counts"
    build_catalog(mine())  # no clashes that break the catalog


def test_all_together_on_this_host():
    facts = run_live(mine())
    assert "balloon.drivers" in facts and "sysctl.vm.overcommit_memory" in facts
