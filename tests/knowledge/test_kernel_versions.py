"""Kernel-version awareness: each meminfo era is read the way that kernel means it.

2.6.32 has no MemAvailable; before 4.4 VmallocUsed is vmalloc address space, not RAM; 4.4-5.2
print 0; 5.3+ count real pages (kernel stacks included); 6.15+ print a Balloon line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from memdiag import pipeline
from memdiag.bounded import Deadline
from memdiag.evidence import Evidence
from memdiag.units import GIB

KERNELS = Path(__file__).resolve().parent.parent / "fixtures" / "kernels"


@pytest.fixture(scope="module")
def rules(registry):
    return pipeline.load_rules(registry, use_cache=False)


def run(path: Path, registry, rules):
    d = pipeline.diagnose(Evidence(str(path), kind="capture"), registry=registry, rules=rules, deadline=Deadline(20))
    return d.facts, {r.rule_id: r for r in d.results}


@pytest.mark.parametrize("era,policy", [("2.6.32-centos6", "address-space"), ("3.10-centos7", "address-space"),
                                        ("4.15-ubuntu1804", "zero"), ("5.15-ubuntu2204", "pages"),
                                        ("6.16-virtio-balloon", "pages")])
def test_vmalloc_meaning_per_era(era, policy, registry, rules):
    facts, results = run(KERNELS / era, registry, rules)
    assert facts.get("accounting.vmalloc_policy") == policy
    assert results["vmalloc-high"].state == "passed"  # address space is never read as RAM
    assert abs(facts.get("accounting.unaccounted_ratio")) < 0.05 or era.startswith("6.16")


def test_2632_without_memavailable_uses_the_estimate(registry, rules):
    facts, results = run(KERNELS / "2.6.32-centos6", registry, rules)
    assert "meminfo.MemAvailable" not in facts
    assert results["memavailable-low"].state == "passed"  # the fallback estimate, not a skip
    assert "meminfo.Percpu" not in facts and "meminfo.KReclaimable" not in facts


@pytest.mark.parametrize("era", ["2.6.32-centos6", "3.10-centos7", "4.15-ubuntu1804", "5.15-ubuntu2204"])
def test_healthy_hosts_of_every_era_are_silent(era, registry, rules):
    _, results = run(KERNELS / era, registry, rules)
    loud = [k for k, r in results.items() if r.state == "fired" and r.finding["severity"] != "info"]
    errors = [f"{k}: {r.reason}" for k, r in results.items() if r.state == "error"]
    assert loud == [] and errors == []


def test_615_balloon_line_names_the_virtio_balloon(registry, rules):
    facts, results = run(KERNELS / "6.16-virtio-balloon", registry, rules)
    assert facts.get("meminfo.Balloon") == 3 * GIB
    assert facts.get("balloon.virtio_bytes") == 3 * GIB  # the only driver: the kernel's count is its
    assert facts.get("balloon.held_bytes") == 3 * GIB
    fired = results["virtio-balloon-holding"]
    assert fired.state == "fired" and fired.finding["confidence"] == "confirmed"
    assert results["balloon-kernel-counter"].state == "passed"  # the driver's own rule speaks


def test_310_founding_case_vmalloc_is_address_space(registry, rules, seed_case, tmp_path):
    ev = pipeline.open_input(str(seed_case), registry, str(tmp_path))  # loose meminfo and top output
    d = pipeline.diagnose(ev, registry=registry, rules=rules, deadline=Deadline(20))
    facts, results = d.facts, {r.rule_id: r for r in d.results}
    assert facts.get("accounting.vmalloc_policy") == "address-space"
    assert results["vmalloc-high"].state == "passed"
    assert results["vmware-balloon"].state == "fired"
    assert results["vmware-balloon-counter"].state in ("passed", "skipped")  # core speaks, not twice
