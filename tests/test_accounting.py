"""The accounting identity, kernel-version aware, to the kB on the founding case."""

from __future__ import annotations

from memdiag.plugins.sources.accounting import account, segments, vmalloc_policy
from memdiag.plugins.sources.meminfo import parse

KB = 1024


def meminfo(seed_case) -> dict[str, int]:
    values, bad = parse((seed_case / "meminfo").read_text())
    assert bad == []
    return values


def test_founding_case_arithmetic_to_the_kb(seed_case):
    m = meminfo(seed_case)
    acc = account(m)
    assert acc.used == 7_868_824 * KB
    assert acc.user == 2_396_180 * KB
    assert acc.user_crosscheck == 2_395_944 * KB
    # 3.10: VmallocChunk is non-zero, so VmallocUsed is address space and is left out ...
    assert acc.vmalloc_policy == "address-space"
    assert acc.kernel == (347_348 - 191_584) * KB
    assert acc.attributed == 2_551_944 * KB
    assert acc.unaccounted == 5_316_880 * KB
    # ... and the seed's own formula, counting it, is kept for comparison.
    assert acc.unaccounted_with_vmalloc == 5_125_296 * KB
    assert round(acc.unaccounted / m["MemTotal"], 3) == 0.665
    assert any("predates 4.4" in n for n in acc.notes)


def test_segments_add_up_to_memtotal(seed_case):
    m = meminfo(seed_case)
    acc = account(m)
    parts = segments(m, acc, {})
    assert sum(p["bytes"] for p in parts) == m["MemTotal"]
    assert {p["key"] for p in parts} >= {"anon", "cache", "shmem", "slab", "kernel", "hugetlb", "free", "unaccounted"}
    assert next(p for p in parts if p["key"] == "unaccounted")["bytes"] == acc.unaccounted


def _m(**kw):
    base = dict(MemTotal=8 << 30, MemFree=1 << 30, Active=2 << 30, Inactive=2 << 30, Unevictable=0,
                Slab=256 << 20, KernelStack=16 << 20, PageTables=32 << 20)
    base.update(kw)
    return base


def test_vmalloc_policy_by_kernel_era():
    assert vmalloc_policy(_m(VmallocUsed=300 << 20, VmallocChunk=1 << 40)) == "address-space"  # <= 4.3
    assert vmalloc_policy(_m(VmallocUsed=0, VmallocChunk=0)) == "zero"  # 4.4 - 5.2
    assert vmalloc_policy(_m(VmallocUsed=300 << 20, VmallocChunk=0)) == "pages"  # 5.3+
    assert vmalloc_policy(_m()) == "unknown"


def test_vmalloc_pages_count_less_kernel_stacks():
    with_vmalloc = account(_m(VmallocUsed=100 << 20, VmallocChunk=0))
    without = account(_m(VmallocUsed=0, VmallocChunk=0))
    assert with_vmalloc.kernel - without.kernel == (100 - 16) << 20


def test_kreclaimable_and_hugetlb_counted():
    acc = account(_m(KReclaimable=300 << 20, SReclaimable=200 << 20, Hugetlb=1 << 30,
                     HugePages_Total=512, Hugepagesize=2 << 20))
    base = account(_m())
    assert acc.kernel - base.kernel == 100 << 20
    assert acc.user - base.user == 1 << 30  # Hugetlb (4.16+) wins over the default-size pool


def test_hugepages_from_counts_before_4_16():
    acc = account(_m(HugePages_Total=512, Hugepagesize=2 << 20))
    assert acc.user - account(_m()).user == 1 << 30


def test_lru_missing_falls_back_to_cache_plus_anon():
    m = _m(Buffers=0, Cached=3 << 30, SwapCached=0, AnonPages=1 << 30)
    for k in ("Active", "Inactive", "Unevictable"):
        del m[k]
    acc = account(m)
    assert acc.user == 4 << 30
    assert any("LRU lines" in n for n in acc.notes)


def test_missing_basics_means_no_accounting():
    assert account({"MemFree": 1}) is None


def test_known_holders_are_carved_out_of_unaccounted_and_capped():
    m = _m(AnonPages=1 << 30, Cached=2 << 30, Buffers=0, Shmem=0, SwapCached=0)
    acc = account(m)  # 8 - 1 free - 4 LRU - 0.3 kernel: about 2.7 GiB unaccounted
    held = {"balloon.held_bytes": 2 << 30, "zfs.arc_size_bytes": 4 << 30}
    parts = {p["key"]: p["bytes"] for p in segments(m, acc, held)}
    assert parts["balloon"] == 2 << 30
    assert parts["zfs"] == acc.unaccounted - (2 << 30)  # capped at what was left
    assert parts["unaccounted"] == 0
    assert sum(parts.values()) == m["MemTotal"]
