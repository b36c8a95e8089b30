"""The meminfo/vmstat explanation tables: complete, consistent, and saying the caveats that matter."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from memdiag.plugins.sources import meminfo_fields as mf
from memdiag.plugins.sources.meminfo_fields import FIELDS, VMSTAT, Field

SEED_MEMINFO = Path("/work/shared/seed-case/meminfo")
HUGEPAGE_COUNTS = {"HugePages_Total", "HugePages_Free", "HugePages_Rsvd", "HugePages_Surp"}
TABLES = {"FIELDS": FIELDS, "VMSTAT": VMSTAT}
# "3.14", "4.20?", "2.6.28?", "" (old) or "?" (unknown)
SINCE_RE = re.compile(r"^(\d+\.\d+(\.\d+)?\??|\?)?$")


def names_in(meminfo_text: str) -> list[str]:
    return [line.split(":", 1)[0].strip() for line in meminfo_text.splitlines() if ":" in line]


def by_name(table: tuple[Field, ...]) -> dict[str, Field]:
    return {f.name: f for f in table}


@pytest.mark.parametrize("table_name", TABLES)
def test_every_entry_is_well_formed(table_name: str) -> None:
    for f in TABLES[table_name]:
        assert isinstance(f, Field)
        assert f.name and f.name == f.name.strip() and ":" not in f.name, f
        assert f.kind in {"bytes", "count"}, f.name
        assert f.doc.strip(), f"{f.name}: empty doc"
        assert f.doc == f.doc.strip() and "  " not in f.doc, f"{f.name}: stray spaces in doc"
        # 1-3 sentences: a period, ! or ? followed by space or the end closes one
        sentences = len(re.findall(r"[.!?](?:\s|$)", f.doc))
        assert 1 <= sentences <= 3, f"{f.name}: {sentences} sentences"
        assert SINCE_RE.match(f.since), f"{f.name}: since {f.since!r}"
        assert isinstance(f.overlaps, tuple), f.name
        assert f.name not in f.overlaps, f"{f.name} overlaps itself"


@pytest.mark.parametrize("table_name", TABLES)
def test_no_duplicate_names(table_name: str) -> None:
    names = [f.name for f in TABLES[table_name]]
    dupes = sorted({n for n in names if names.count(n) > 1})
    assert not dupes, f"{table_name} names twice: {dupes}"


@pytest.mark.parametrize("table_name", TABLES)
def test_overlaps_name_known_fields_both_ways(table_name: str) -> None:
    table = by_name(TABLES[table_name])
    for f in table.values():
        for other in f.overlaps:
            assert other in table, f"{f.name} overlaps unknown field {other}"
            assert f.name in table[other].overlaps, f"{f.name} lists {other} but not vice versa"


def test_kinds_follow_units() -> None:
    counts = {f.name for f in FIELDS if f.kind == "count"}
    assert counts == HUGEPAGE_COUNTS
    for name in HUGEPAGE_COUNTS:
        assert "page count" in by_name(FIELDS)[name].doc, name
    assert by_name(FIELDS)["Hugepagesize"].kind == "bytes"
    assert all(f.kind == "count" for f in VMSTAT)


def test_vmstat_docs_say_their_unit() -> None:
    for f in VMSTAT:
        assert re.search(r"\bUnit: (pages|events|KiB|base pages|on recent)", f.doc), f.name


def test_seed_case_fields_are_all_covered() -> None:
    known = by_name(FIELDS)
    names = names_in(SEED_MEMINFO.read_text())
    assert len(names) > 40  # the file really was read
    missing = [n for n in names if n not in known]
    assert not missing, f"seed-case meminfo fields without explanation: {missing}"


def test_this_machines_meminfo_fields_are_all_covered() -> None:
    # No skip: a kernel that prints a field the table lacks fails here, naming the field.
    known = by_name(FIELDS)
    names = names_in(Path("/proc/meminfo").read_text())
    assert "MemTotal" in names
    missing = [n for n in names if n not in known]
    assert not missing, f"/proc/meminfo fields without explanation: {missing}"


def test_requested_fields_are_present() -> None:
    wanted = """MemTotal MemFree MemAvailable Buffers Cached SwapCached Active Inactive Active(anon)
        Inactive(anon) Active(file) Inactive(file) Unevictable Mlocked HighTotal HighFree LowTotal
        LowFree MmapCopy SwapTotal SwapFree Zswap Zswapped Dirty Writeback AnonPages Mapped Shmem
        KReclaimable Slab SReclaimable SUnreclaim KernelStack ShadowCallStack PageTables
        SecPageTables Quicklists NFS_Unstable Bounce WritebackTmp CommitLimit Committed_AS
        VmallocTotal VmallocUsed VmallocChunk Percpu EarlyMemtestBad HardwareCorrupted
        AnonHugePages ShmemHugePages ShmemPmdMapped FileHugePages FilePmdMapped CmaTotal CmaFree
        Unaccepted Balloon HugePages_Total HugePages_Free HugePages_Rsvd HugePages_Surp
        Hugepagesize Hugetlb DirectMap4k DirectMap2M DirectMap4M DirectMap1G""".split()
    assert not [n for n in wanted if n not in by_name(FIELDS)]
    vm_wanted = """nr_free_pages nr_zone_inactive_anon nr_zone_active_anon nr_zone_inactive_file
        nr_zone_active_file nr_zone_unevictable nr_zone_write_pending nr_inactive_anon
        nr_active_anon nr_inactive_file nr_active_file nr_unevictable nr_slab_reclaimable
        nr_slab_unreclaimable nr_anon_pages nr_mapped nr_file_pages nr_dirty nr_writeback nr_shmem
        nr_kernel_stack nr_page_table_pages nr_bounce nr_zspages nr_balloon_pages balloon_inflate
        balloon_deflate balloon_migrate oom_kill pgmajfault pgscan_kswapd pgscan_direct
        pgsteal_kswapd pgsteal_direct allocstall_normal compact_stall thp_fault_alloc
        thp_collapse_alloc workingset_refault_anon workingset_refault_file pswpin pswpout
        nr_isolated_anon nr_isolated_file""".split()
    assert not [n for n in vm_wanted if n not in by_name(VMSTAT)]


def test_versions_from_the_reference() -> None:
    m = by_name(FIELDS)
    assert m["MemAvailable"].since == "3.14"
    assert m["Balloon"].since == "6.15"
    assert m["Zswap"].since == m["Zswapped"].since == "5.19"
    # unverified in the reference: must stay marked as such
    for name in ("KReclaimable", "Percpu", "FileHugePages", "Hugetlb", "SecPageTables",
                 "Unaccepted", "EarlyMemtestBad", "ShadowCallStack", "CmaTotal"):
        assert m[name].since.endswith("?"), name
    v = by_name(VMSTAT)
    assert v["nr_balloon_pages"].since == "6.15"
    assert v["oom_kill"].since == "4.13?"


def doc_of(name: str) -> str:
    return by_name(FIELDS)[name].doc


def test_overlap_and_caveat_words() -> None:
    assert "Shmem" in doc_of("Cached") and "includes" in doc_of("Cached")
    assert "Cached" in doc_of("Shmem") and "Part of Cached" in doc_of("Shmem")
    assert "Part of AnonPages" in doc_of("AnonHugePages") and "never add" in doc_of("AnonHugePages")
    vmalloc = doc_of("VmallocUsed")
    for word in ("4.3", "4.4", "5.2", "always 0", "5.3", "KernelStack", "CONFIG_VMAP_STACK",
                 "double-counted", "address space"):
        assert word in vmalloc, word
    avail = doc_of("MemAvailable")
    assert "estimate" in avail and "3.14" in avail and "RHEL" in avail
    assert "VmallocUsed" in doc_of("KernelStack")
    assert "not verified" in doc_of("Unaccepted")
    for name in HUGEPAGE_COUNTS:
        assert "Hugepagesize" in doc_of(name) or "default-size" in doc_of(name), name


def test_key_overlaps_are_recorded() -> None:
    m = by_name(FIELDS)
    pairs = [("Cached", "Shmem"), ("Cached", "Mapped"), ("AnonPages", "AnonHugePages"),
             ("Unevictable", "Mlocked"), ("Slab", "SReclaimable"), ("KReclaimable", "SReclaimable"),
             ("MemFree", "CmaFree"), ("Shmem", "ShmemHugePages"), ("Cached", "FileHugePages"),
             ("VmallocUsed", "KernelStack"), ("Active", "Active(anon)")]
    for a, b in pairs:
        assert b in m[a].overlaps, (a, b)
    # Disjoint terms of the accounting identity must not claim to overlap.
    for a, b in [("Buffers", "Cached"), ("Slab", "KernelStack"), ("Zswap", "Slab")]:
        assert b not in m[a].overlaps, (a, b)


def test_unknown_docs() -> None:
    for doc in (mf.DOC_UNKNOWN_MEMINFO, mf.DOC_UNKNOWN_VMSTAT):
        assert "kept as printed" in doc and "does not know its meaning yet" in doc
    assert "meminfo" in mf.DOC_UNKNOWN_MEMINFO and "vmstat" in mf.DOC_UNKNOWN_VMSTAT


def test_lookup_maps_match_tables() -> None:
    assert mf.MEMINFO_BY_NAME == by_name(FIELDS)
    assert mf.VMSTAT_BY_NAME == by_name(VMSTAT)


def test_field_is_frozen_with_slots() -> None:
    f = FIELDS[0]
    with pytest.raises(AttributeError):
        f.doc = "x"  # type: ignore[misc]
    assert not hasattr(f, "__dict__")
    assert Field.__slots__ == ("name", "kind", "doc", "since", "overlaps")
    assert Field("X", "bytes", "d.") == Field("X", "bytes", "d.") and len({FIELDS[0], FIELDS[0]}) == 1


def test_module_imports_only_the_record_base() -> None:
    tree = ast.parse(Path(mf.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert imported == {"memdiag.facts"}
