"""The hugetlb and thp sources: pools of every page size; THP modes and fault counters."""

from __future__ import annotations

from memdiag.units import GIB, MIB

from memdiag.plugins.sources.hugepages import HugetlbSource, ThpSource
from .helpers import Given, kinds, run, run_live, tree

H = "sys/kernel/mm/hugepages"
T = "sys/kernel/mm/transparent_hugepage"


def pool(size_kb: int, total: int, free: int, resv: int, surplus: int = 0) -> dict[str, str]:
    base = f"{H}/hugepages-{size_kb}kB"
    return {f"{base}/nr_hugepages": f"{total}\n", f"{base}/free_hugepages": f"{free}\n",
            f"{base}/resv_hugepages": f"{resv}\n", f"{base}/surplus_hugepages": f"{surplus}\n"}


def test_pools_of_two_sizes_reserved_but_unused(tmp_path):
    # a leftover vm.nr_hugepages=8192 (16 GiB of 2 MiB pages) with the database gone, plus 4 x 1 GiB
    root = tree(tmp_path, {**pool(2048, 8192, 8000, 100), **pool(1048576, 4, 4, 0)})
    facts = run([HugetlbSource()], root)
    pools = {p["size_bytes"]: p for p in facts.get("hugetlb.pools")}
    assert pools[2 * MIB] == {"size_bytes": 2 * MIB, "total": 8192, "free": 8000, "reserved": 100,
                              "surplus": 0, "bytes": 16 * GIB}
    assert facts.get("hugetlb.total_bytes") == 20 * GIB
    assert facts.get("hugetlb.free_bytes") == 8000 * 2 * MIB + 4 * GIB
    assert facts.get("hugetlb.unused_bytes") == 7900 * 2 * MIB + 4 * GIB
    assert facts.get("hugetlb.pages_total") == 8196
    assert facts.problems == []


def test_empty_pools(tmp_path):
    facts = run([HugetlbSource()], tree(tmp_path, pool(2048, 0, 0, 0)))
    assert facts.get("hugetlb.total_bytes") == 0 and facts.get("hugetlb.unused_bytes") == 0


def test_malformed_count_is_reported(tmp_path):
    files = pool(2048, 4, 4, 0)
    files[f"{H}/hugepages-2048kB/free_hugepages"] = "lots\n"
    facts = run([HugetlbSource()], tree(tmp_path, files))
    assert kinds(facts) == [("hugetlb", "malformed")]
    assert facts.get("hugetlb.total_bytes") == 8 * MIB and "hugetlb.free_bytes" not in facts


def test_thp_settings_and_counters(tmp_path):
    root = tree(tmp_path, {f"{T}/enabled": "[always] madvise never\n",
                           f"{T}/defrag": "always defer defer+madvise [madvise] never\n",
                           f"{T}/shmem_enabled": "always within_size advise [never] deny force\n",
                           f"{T}/khugepaged/defrag": "1\n"})
    counters = Given("vmstat", {"vmstat.thp_fault_alloc": 900, "vmstat.thp_fault_fallback": 100,
                                "vmstat.thp_split_page": 7})
    facts = run([ThpSource(), counters], root)
    assert facts.get("thp.enabled") == "always"
    assert facts.get("thp.defrag") == "madvise"
    assert facts.get("thp.shmem_enabled") == "never"
    assert facts.get("thp.khugepaged_defrag") is True
    assert facts.get("thp.fault_fallback_ratio") == 0.1
    assert facts.get("thp.split_pages") == 7


def test_rhel6_path(tmp_path):
    root = tree(tmp_path, {"sys/kernel/mm/redhat_transparent_hugepage/enabled": "[always] madvise never\n"})
    assert run([ThpSource()], root).get("thp.enabled") == "always"


def test_kernel_without_thp(tmp_path):
    facts = run([ThpSource()], tmp_path)
    assert facts.facts == {} and facts.problems == []


def test_live():
    run_live([HugetlbSource()])
    facts = run_live([ThpSource()])
    assert facts.get("thp.enabled", "never") in ("always", "madvise", "never")
