"""The slab and vmalloc sources: streamed /proc/slabinfo and /proc/vmallocinfo, slabtop fallback."""

from __future__ import annotations

from memdiag.units import KIB

from memdiag.plugins.sources.slab import SlabSource, VmallocSource, parse_slabinfo_line
from .helpers import FIXTURES, Denying, kinds, run, run_live, tree

S = FIXTURES / "slab"


def test_slabinfo_of_an_idle_618_host():
    facts = run([SlabSource()], S / "live-6.18")
    # expected figures computed independently with awk over the fixture (slabs x pages x 4 KiB)
    assert facts.get("slab.total_bytes") == 100265984
    assert facts.get("slab.caches") == 235
    assert facts.get("slab.largest_name") == "ext4_inode_cache"
    assert facts.get("slab.largest_bytes") == 47988736
    assert facts.get("slab.dentry_bytes") == 11468800
    top = facts.get("slab.top")
    assert len(top) == 10 and [r["bytes"] for r in top] == sorted((r["bytes"] for r in top), reverse=True)
    assert top[0] == {"name": "ext4_inode_cache", "bytes": 47988736, "active_objs": top[0]["active_objs"],
                      "num_objs": top[0]["num_objs"], "objsize": 1128}  # no sysfs: reclaimable unknown
    assert facts.get("slab.dentries") == 58331
    assert facts.get("slab.negative_dentries") == 10343
    assert facts.problems == []


def test_reclaim_flag_from_sysfs(tmp_path):
    line = "kmalloc-64 100 100 64 64 1 : tunables 0 0 0 : slabdata 1000 1000 0\n"
    line2 = "dentry 100 100 192 21 1 : tunables 0 0 0 : slabdata 10 10 0\n"
    root = tree(tmp_path, {"proc/slabinfo": "slabinfo - version: 2.1\n# name ...\n" + line + line2,
                           "sys/kernel/slab/kmalloc-64/reclaim_account": "0\n",
                           "sys/kernel/slab/dentry/reclaim_account": "1\n"})
    top = {r["name"]: r for r in run([SlabSource()], root).get("slab.top")}
    assert top["kmalloc-64"]["reclaimable"] is False and top["dentry"]["reclaimable"] is True
    assert top["kmalloc-64"]["bytes"] == 1000 * 4096


def test_slabtop_capture_of_a_leak():
    text = (S / "coreos-leak" / "slabtop.txt").read_text()
    facts = run([SlabSource()], S / "coreos-leak", commands={"slabtop": text})
    assert facts.get("slab.largest_name") == "ebitmap_node"
    assert facts.get("slab.largest_bytes") == 45906648 * KIB
    assert facts.get("slab.caches") == 8
    assert facts.origin("slab.top") == "<slabtop>"


def test_slabinfo_is_root_only(tmp_path):
    root = tree(tmp_path, {"proc/slabinfo": "slabinfo - version: 2.1\n"})
    facts = run([SlabSource()], root, ev=Denying(str(root), {"proc/slabinfo"}))
    assert kinds(facts) == [("slab", "permission")]
    assert facts.problems[0].message == "permission denied (root only)"
    assert "slab.total_bytes" not in facts


def test_malformed_lines_are_skipped():
    assert parse_slabinfo_line("# name <active_objs> ...") is None
    assert parse_slabinfo_line("foo 1 2 3") is None
    assert parse_slabinfo_line("foo a b c d e : tunables 0 0 0 : slabdata 1 1 0") is None


def test_vmallocinfo_streamed():
    facts = run([VmallocSource()], S / "live-6.18")
    assert facts.get("vmalloc.used_bytes") == 14708736  # awk: sum of pages= of vmalloc lines x 4 KiB
    assert facts.get("vmalloc.areas") == 209
    assert facts.get("vmalloc.ioremap_bytes") == 1286144
    callers = facts.get("vmalloc.top_callers")
    assert callers[0]["bytes"] >= callers[-1]["bytes"] and "+" not in callers[0]["caller"]
    assert sum(c["areas"] for c in callers) <= 209


def test_vmallocinfo_root_only(tmp_path):
    root = tree(tmp_path, {"proc/vmallocinfo": ""})
    facts = run([VmallocSource()], root, ev=Denying(str(root), {"proc/vmallocinfo"}))
    assert kinds(facts) == [("vmalloc", "permission")] and facts.facts == {}


def test_live():
    facts = run_live([SlabSource(), VmallocSource()])
    if "slab.total_bytes" in facts:
        assert facts.get("slab.total_bytes") > 0


def test_a_cache_listed_twice_does_not_break_the_ranking(tmp_path):
    line = "dup 1 1 64 64 1 : tunables 0 0 0 : slabdata 5 5 0\n"
    root = tree(tmp_path, {"proc/slabinfo": "slabinfo - version: 2.1\n" + line * 30})
    facts = run([SlabSource()], root)
    assert facts.get("slab.caches") == 30 and len(facts.get("slab.top")) == 10


def _meminfo(vmalloc_used_kb: int, chunk_kb: int) -> str:
    return (f"MemTotal: 16384000 kB\nMemFree: 8000000 kB\nVmallocTotal: 34359738367 kB\n"
            f"VmallocUsed: {vmalloc_used_kb} kB\nVmallocChunk: {chunk_kb} kB\n")


def test_small_vmalloc_on_53_and_later_is_taken_from_meminfo_without_reading_vmallocinfo(tmp_path):
    from memdiag.plugins.sources.meminfo import MeminfoSource

    vmallocinfo = (S / "live-6.18" / "proc" / "vmallocinfo").read_text()
    root = tree(tmp_path, {"proc/meminfo": _meminfo(40960, 0), "proc/vmallocinfo": vmallocinfo})
    # the file would be refused if it were read: the gate, not the permission, keeps it unread
    facts = run([MeminfoSource(), VmallocSource()], root, ev=Denying(str(root), {"proc/vmallocinfo"}))
    assert facts.get("vmalloc.used_bytes") == 40960 * KIB
    assert "vmallocinfo not read" in facts.origin("vmalloc.used_bytes")
    assert "vmalloc.top_callers" not in facts and facts.problems == []


def test_vmallocinfo_is_read_when_vmalloc_is_large_or_meminfo_cannot_say(tmp_path):
    from memdiag.plugins.sources.meminfo import MeminfoSource

    vmallocinfo = (S / "live-6.18" / "proc" / "vmallocinfo").read_text()
    for used_kb, chunk_kb in ((2 << 20, 0),  # 2 GiB on 5.3+: worth naming its callers
                              (0, 0),  # 4.4-5.2: VmallocUsed is always 0
                              (40960, 1 << 30)):  # before 4.4: address space, not RAM
        root = tree(tmp_path / f"{used_kb}-{chunk_kb}", {"proc/meminfo": _meminfo(used_kb, chunk_kb),
                                                         "proc/vmallocinfo": vmallocinfo})
        facts = run([MeminfoSource(), VmallocSource()], root)
        assert facts.get("vmalloc.used_bytes") == 14708736 and facts.get("vmalloc.top_callers"), (used_kb, chunk_kb)


def test_small_slab_is_taken_from_meminfo_without_parsing_slabinfo(tmp_path):
    from memdiag.plugins.sources.meminfo import MeminfoSource

    slabinfo = (S / "live-6.18" / "proc" / "slabinfo").read_text()
    small = "MemTotal: 16384000 kB\nMemFree: 8000000 kB\nSlab: 97916 kB\n"  # before 2.6.19: Slab alone
    root = tree(tmp_path / "small", {"proc/meminfo": small, "proc/slabinfo": slabinfo,
                                     "proc/sys/fs/dentry-state": "58331 10343 45 0 0 0\n"})
    facts = run([MeminfoSource(), SlabSource()], root, ev=Denying(str(root), {"proc/slabinfo"}))
    assert facts.get("slab.total_bytes") == 97916 * KIB and "slabinfo not read" in facts.origin("slab.total_bytes")
    assert "slab.top" not in facts and facts.problems == []
    assert facts.get("slab.dentries") == 58331  # dentry-state is still read: it is one line
    large = small.replace("Slab: 97916 kB", "Slab: 3145728 kB")
    root = tree(tmp_path / "large", {"proc/meminfo": large, "proc/slabinfo": slabinfo})
    facts = run([MeminfoSource(), SlabSource()], root)
    assert facts.get("slab.largest_name") == "ext4_inode_cache" and facts.get("slab.total_bytes") == 100265984


def test_slabinfo_is_read_when_either_kind_of_slab_could_matter(tmp_path):
    from memdiag.plugins.sources.meminfo import MeminfoSource

    slabinfo = (S / "live-6.18" / "proc" / "slabinfo").read_text()
    base = "MemTotal: 16384000 kB\nMemFree: 8000000 kB\n"
    for n, (unrec_kb, rec_kb, read) in enumerate(((50000, 600000, False),  # 650 MiB of mostly dentries
                                                  (400000, 100000, True),  # unreclaimable growing
                                                  (50000, 3000000, True))):  # 3 GiB of dentries
        meminfo = base + f"Slab: {unrec_kb + rec_kb} kB\nSReclaimable: {rec_kb} kB\nSUnreclaim: {unrec_kb} kB\n"
        root = tree(tmp_path / str(n), {"proc/meminfo": meminfo, "proc/slabinfo": slabinfo})
        facts = run([MeminfoSource(), SlabSource()], root)
        assert ("slab.top" in facts) is read, (unrec_kb, rec_kb)
