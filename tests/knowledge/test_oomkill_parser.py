"""The OOM-killer report parser: published reports (tests/fixtures/oom, values from its
EXPECTED.md), every log prefix, truncation, foreign lines, fuzzing, and bounded memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memdiag.parsers.oomkill import Parser, parse, parse_text

OOM = Path(__file__).resolve().parent.parent / "fixtures" / "oom"
FIXTURES = sorted(p for p in OOM.glob("k*") if p.is_file())
KB = 1024
PAGE = 4096


def load(name: str):
    with open(OOM / name, encoding="utf-8", errors="replace") as f:
        return parse(line.rstrip("\n") for line in f)


def zone(report, name, node=None):
    return next(z for z in report.zones if z.name == name and (node is None or z.node == node))


# -- published reports: the values EXPECTED.md lists -----------------------------------------


def test_2_6_26_sysrq_then_two_global_ooms_mail_wrapped():
    log = load("k2.6.26-sysrq-then-global-mailwrapped.txt")
    assert (log.count, log.kills, log.sysrq_unanswered) == (3, 3, 1)
    first, second, third = log.reports
    assert first.sysrq and not second.sysrq and not third.sysrq
    assert (first.trigger, first.trigger_pid) == ("events/0", 9)
    assert (second.trigger, second.trigger_pid, third.trigger_pid) == ("hald", 3183, 3183)
    assert (first.gfp_mask, first.order, first.trigger_oom_adj) == (0xD0, 0, 0)
    assert (second.gfp_mask, second.order) == (0x1201D2, 0)
    assert first.kernel == "2.6.26-2-amd64"
    assert [r.constraint for r in log.reports] == ["global"] * 3
    assert (first.meminfo["active"], first.meminfo["inactive"]) == (31, 491089)
    assert (second.meminfo["active"], second.meminfo["inactive"]) == (227811, 228679)
    assert (third.meminfo["active"], third.meminfo["inactive"]) == (228889, 227627)
    assert [first.meminfo[k] for k in ("free", "slab", "mapped", "pagetables", "writeback")] == [3005, 7514, 1, 1063, 23480]
    assert [second.meminfo[k] for k in ("free", "slab", "mapped", "pagetables", "writeback")] == [3352, 4828, 620, 7858, 0]
    assert third.meminfo["writeback"] == 310
    assert (zone(first, "DMA").free_kb, zone(first, "DMA").min_kb) == (7880, 28)
    assert (zone(first, "DMA32").free_kb, zone(first, "DMA32").min_kb) == (4140, 5664)
    assert (zone(second, "DMA32").free_kb, zone(third, "DMA32").min_kb) == (5508, 5664)
    assert [(r.swap_free_kb, r.swap_total_kb) for r in log.reports] == [
        (3963444, 5947384), (0, 5947384), (6660, 5947384)]
    assert all(r.ram_bytes == 515887 * PAGE for r in log.reports)
    assert not any(r.highmem for r in log.reports)
    assert [r.chosen_score for r in log.reports] == [(2842, 494723), (3956, 1888511), (3500, 410763)]
    assert [(r.victim.pid, r.victim.name) for r in log.reports] == [
        (2842, "a.out"), (3956, "a.out"), (3568, "seahorse-agent")]  # a child of the chosen one
    assert first.victim.anon_rss_kb is None and first.task_count == 0
    assert [r.uptime for r in log.reports] == [280.323899, 575.537309, 575.623722]
    assert log.victim_counts == {"a.out": 2, "seahorse-agent": 1}


def test_4_14_arm32_lowmem_order1_truncated():
    log = load("k4.14-arm32-lowmem-order1-mailwrapped.txt")
    assert (log.count, log.kills) == (1, 0)
    r = log.latest
    assert not r.complete and r.victim is None and not r.sysrq
    assert (r.trigger, r.trigger_pid, r.kernel) == ("kworker/u8:2", 56, "4.14.65")
    assert (r.gfp_mask, r.gfp_flags, r.order, r.trigger_oom_score_adj) == (
        0x15080C0, "GFP_KERNEL_ACCOUNT|__GFP_ZERO", 1, 0)
    assert r.constraint == "global"
    assert r.meminfo == {
        "active_anon": 97307, "inactive_anon": 124, "isolated_anon": 0, "active_file": 583, "inactive_file": 575,
        "isolated_file": 64, "unevictable": 638, "dirty": 0, "writeback": 0, "unstable": 0,
        "slab_reclaimable": 4681, "slab_unreclaimable": 7808, "mapped": 1656, "shmem": 182, "pagetables": 4482,
        "bounce": 0, "free": 143605, "free_pcp": 230, "free_cma": 139244}
    dma, high = zone(r, "DMA"), zone(r, "HighMem")
    assert (dma.free_kb, dma.min_kb, dma.low_kb, dma.high_kb, dma.managed_kb) == (17960, 16384, 25664, 29760, 422896)
    assert (high.free_kb, high.min_kb, high.managed_kb) == (553472, 512, 1526784)
    assert (dma.buddy_total_kb, high.buddy_total_kb) == (17524, 548660)
    assert dma.blocks[8] == 113 and high.blocks[4] == 8121
    assert r.highmem
    assert (r.lowmem_free_bytes, r.lowmem_min_bytes) == (17960 * KB, 16384 * KB)
    assert r.highmem_free_bytes == 553472 * KB
    # GFP_KERNEL cannot use HighMem: only the DMA zone (ARM's lowmem) counts, and it has order-1 blocks
    assert [z.name for z in r.usable_zones()] == ["DMA"]
    assert r.free_order_max >= 1
    assert (r.counts["pages RAM"], r.counts["pages reserved"], r.counts["pages cma reserved"]) == (496384, 8964, 233472)
    assert r.counts["pages HighMem"] == 381696 and r.counts["total pagecache pages"] == 3561
    assert (r.swap_free_kb, r.swap_total_kb) == (0, 0)


def test_5_14_memcg_journal_elided_ends_at_the_oom_kill_line():
    log = load("k5.14-memcg-kubevirt-journal-elided.log")
    r = log.latest
    assert (log.count, log.kills, log.memcg_kills) == (1, 1, 1)
    assert (r.trigger, r.trigger_pid, r.kernel) == ("virt-launcher", 40785, "5.14.21-150400.24.60-default")
    assert (r.gfp_mask, r.gfp_flags, r.order, r.trigger_oom_score_adj) == (0xCC0, "GFP_KERNEL", 0, 986)
    assert r.constraint == "memcg" and not r.sysrq and not r.highmem
    assert r.cpuset == "cri-containerd-0f32894de86edf3d3832702af794874ef8d400b4969acdea4976b12040756e0d.scope"
    assert r.memcg == "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod968a06fb_9ab9_4819_8caf_0392ddff3d9b.slice"
    assert r.task_memcg == r.memcg + "/cri-containerd-0f32894de86edf3d3832702af794874ef8d400b4969acdea4976b12040756e0d.scope"
    assert r.limit("memory") == (17024340 * KB, 17024340 * KB, 1243)
    assert r.limit("memory+swap") == (17024340 * KB, None, 0)  # 9007199254740988kB is "no limit"
    assert r.limit("kmem") == (143556 * KB, None, 0)
    assert (r.task_count, r.task_rss_pages) == (6, 4246001)
    top = r.top_tasks[0]
    assert (top.pid, top.name, top.uid, top.rss_pages, top.pgtables_bytes, top.oom_score_adj) == (
        39079, "qemu-system-x86", 107, 4201766, 34439168, 986)
    assert round(top.rss_pages / r.task_rss_pages, 4) == 0.9896
    assert any(t.name == "pause" and t.oom_score_adj == -998 for t in r.top_tasks)
    v = r.victim  # only the oom-kill: line names it
    assert (v.pid, v.name, v.uid, v.anon_rss_kb) == (39079, "qemu-system-x86", 107, None)
    assert r.victim_adj() == 986  # from the task table
    assert r.stamp == "Feb 03 19:57:08"


def test_5_3_memcg_dmesg_t_complete_with_reaper():
    log = load("k5.3-memcg-kubevirt-dmesg-T-elided.log")
    r = log.latest
    assert (r.trigger, r.trigger_pid, r.kernel) == ("CPU 11/KVM", 70888, "5.3.18-150300.59.101-default")
    assert (r.gfp_mask, r.order, r.trigger_oom_score_adj, r.constraint) == (0xCC0, 0, 830, "memcg")
    assert r.memcg == "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podef91e487_dec5_4613_800b_eb23e1a1617d.slice"
    assert r.task_memcg.startswith("/kubepods.slice/kubepods-urstable.slice/")  # the publisher's typo, kept
    assert r.limit("memory") == (67579904 * KB, 67579904 * KB, 67391)
    assert r.limit("memory+swap") == (0, None, 0)
    assert r.limit("kmem") == (633636 * KB, None, 0)
    assert (r.task_count, r.task_rss_pages) == (6, 16767108)
    top = r.top_tasks[0]
    assert (top.pid, top.rss_pages, top.pgtables_bytes, top.oom_score_adj) == (70870, 16718510, 135278592, 830)
    v = r.victim
    assert (v.pid, v.name, v.memcg_line, v.reaped) == (70870, "qemu-system-x86", True, True)
    assert (v.total_vm_kb, v.anon_rss_kb, v.file_rss_kb, v.shmem_rss_kb) == (73209856, 66852088, 21948, 4)
    assert v.oom_score_adj is None and r.victim_adj() == 830
    assert r.stamp == "Thu May  9 14:52:38 2024" and r.wall == 1715266358.0
    assert r.complete


def test_2_6_10_32bit_no_prefix_wrapped_buddy_lists():
    r = load("k2.6.10-32bit-lowmem-slab-dentry-noprefix.txt").latest
    assert r.trigger is None and r.gfp_mask == 0xD0 and r.order is None and r.constraint == "global"
    assert [r.meminfo[k] for k in ("active", "inactive", "dirty", "free", "slab", "mapped", "pagetables")] == [
        1787, 419, 2, 621139, 217642, 1511, 102]
    assert [(z.name, z.free_kb, z.min_kb, z.managed_kb) for z in r.zones] == [
        ("DMA", 68, 68, 16384), ("Normal", 3912, 3756, 901120), ("HighMem", 2480576, 512, 3276800)]
    assert r.highmem
    assert (r.lowmem_free_bytes, r.lowmem_min_bytes, r.lowmem_managed_bytes) == (
        3980 * KB, 3824 * KB, 917504 * KB)
    assert zone(r, "Normal").buddy_total_kb == 3912 and zone(r, "HighMem").blocks[4096] == 601  # wrapped lists
    assert round(r.mem_bytes()["slab"] / r.lowmem_managed_bytes, 3) == 0.949
    assert (r.victim.pid, r.victim.name) == (595, "portmap")


@pytest.mark.parametrize("index,values", [
    (0, dict(anon=(87788, 69289), file=(161111, 320022), slab=(80335, 5920), free=10949, dma32=(22876, 6232),
             normal=(5824, 1696), rows=74, rss=222965, top=(808, "firefox", 79367), victim=(808, 1366424, 235572, 82320, 8),
             score=25, reaped=False)),
    (1, dict(anon=(37648, 59709), file=(160072, 275086), slab=(54096, 5978), free=13017, dma32=(31504, 6232),
             normal=(5468, 1696), rows=73, rss=143997, top=(336, "Xorg", 19103), victim=(336, 190852, 58728, 17684, 0),
             score=6, reaped=True)),
])
def test_4_5_order2_fragmentation(index, values):
    log = load("k4.5-order2-fragmentation-two-kills.dmesg")
    assert (log.count, log.kills) == (2, 2)
    assert [round(i, 2) for i in log.intervals] == [7.49]
    r = log.reports[index]
    assert (r.trigger, r.trigger_pid, r.gfp_mask, r.order, r.constraint) == ("zram-test.sh", 9517, 0x27000C0, 2, "global")
    m = r.meminfo
    assert (m["active_anon"], m["inactive_anon"]) == values["anon"]
    assert (m["active_file"], m["inactive_file"]) == values["file"]
    assert (m["slab_reclaimable"], m["slab_unreclaimable"]) == values["slab"]
    assert m["free"] == values["free"]
    assert (zone(r, "DMA32").free_kb, zone(r, "DMA32").min_kb) == values["dma32"]
    assert (zone(r, "Normal").free_kb, zone(r, "Normal").min_kb) == values["normal"]
    assert (r.task_count, r.task_rss_pages) == (values["rows"], values["rss"])
    top = r.top_tasks[0]
    assert (top.pid, top.name, top.rss_pages) == values["top"]
    v = r.victim
    assert (v.pid, v.total_vm_kb, v.anon_rss_kb, v.file_rss_kb, v.shmem_rss_kb) == values["victim"]
    assert v.score == values["score"] and v.reaped == values["reaped"]
    assert r.counts["pages RAM"] == 1032092 and r.counts["pages reserved"] == 40110
    assert (r.swap_free_kb, r.swap_total_kb) == (8388268, 8388604)
    assert r.hugepages == [(0, 0, 0, 2048)]
    # the failing order: no free block of order 2 or more outside DMA, order-0 above min everywhere
    assert r.free_order_max == 1 and r.free_bytes_from_order(2) == 0
    assert r.usable_free_bytes > 2 * r.usable_min_bytes
    if index == 0:
        assert top.pgtables_bytes == (532 + 5) * PAGE  # nr_ptes + nr_pmds pages


def test_5_4_arm64_unreclaimable_slab_no_killable_process():
    log = load("k5.4-arm64-slab-kmemleak-no-killable-mailwrapped.txt")
    earlier, r = log.reports  # the tail of an earlier report (its kill), then the complete one
    v = earlier.victim
    assert (v.pid, v.name, v.total_vm_kb, v.anon_rss_kb, v.file_rss_kb, v.shmem_rss_kb, v.uid, v.pgtables_kb,
            v.oom_score_adj, v.reaped) == (541, "dbus-broker", 4400, 892, 380, 0, 999, 44, -900, True)
    assert earlier.constraint == "global" and earlier.task_memcg == "/system.slice/dbus-broker.service"
    assert log.kills == 1
    assert (r.trigger, r.trigger_pid, r.kernel, r.gfp_mask, r.order) == ("systemd", 1, "5.4.51-xxx", 0x40CC0, 1)
    assert r.victim is None and r.panic and r.complete and r.constraint == "global"
    assert r.meminfo["slab_unreclaimable"] == 795718 and r.meminfo["shmem"] == 165765
    assert (zone(r, "Normal").free_kb, zone(r, "Normal").min_kb) == (12652, 14344)
    assert [z.name for z in r.usable_zones()] == ["Normal"]  # GFP_KERNEL: not Movable
    assert r.free_order_max == 1
    assert [h[3] for h in r.hugepages] == [1048576, 32768, 2048, 64] and r.hugepages_bytes == 0
    assert r.counts["pages RAM"] == 2046684 and r.counts["pages reserved"] == 367615
    assert (r.task_count, r.task_rss_pages) == (55, 1434)
    assert (r.top_tasks[0].name, r.top_tasks[0].rss_pages, r.top_tasks[0].oom_score_adj) == ("systemd-udevd", 1394, -1000)
    assert r.slab_top[0] == ("kmemleak_object", 2449340, 2449340)
    assert [s[0] for s in r.slab_top[1:4]] == ["skbuff_head_cache", "kmalloc-512", "kmalloc-4k"]  # by total


def test_memcg_v1_docker_syslog_without_header_among_other_programs():
    log = load("kunstated-memcg-docker-syslog-interleaved.log")
    r = log.latest
    assert (log.count, log.kills, log.memcg_kills) == (1, 1, 1)
    assert r.constraint == "memcg" and r.memcg == r.task_memcg == (
        "/docker/812c82c5a7a5ae054e6f242215bdc4415a2d9b690768962a7bcd8d4676b16f60")
    assert r.limit("memory") == (4194304 * KB, 4194304 * KB, 25581)
    assert r.limit("memory+swap") == (4194304 * KB, 8388608 * KB, 0)
    assert r.memcg_stat["rss"] == 4194252 * KB and r.memcg_stat["cache"] == 52 * KB
    assert (r.victim.pid, r.victim.name, r.victim.anon_rss_kb) == (76513, "java", 4189536)
    assert r.chosen_score == (76756, 1001)  # chose the thread group, killed its leader


def test_printk_caller_id_is_part_of_the_prefix():
    r = load("k5.3-memcg-leaker-printk-callerid.dmesg").latest
    assert (r.trigger, r.trigger_pid, r.memcg) == ("leaker", 6736, "/leaker")
    assert r.limit("memory") == (524288 * KB, 524288 * KB, 660235)
    assert (r.victim.name, r.victim.anon_rss_kb) == ("leaker", 521704)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_every_fixture_gives_a_report(path):
    log = load(path.name)
    assert log.count >= 1 and log.latest is not None


# -- prefixes ----------------------------------------------------------------------------------

BODY = [
    "bash invoked oom-killer: gfp_mask=0x6200ca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0",
    "CPU: 0 PID: 812 Comm: bash Not tainted 6.1.0-13-amd64 #1 Debian 6.1.55-1",
    "Mem-Info:",
    "active_anon:100 inactive_anon:250000 isolated_anon:0",
    " active_file:10 inactive_file:20 isolated_file:0",
    " slab_reclaimable:300 slab_unreclaimable:400",
    " mapped:5 shmem:6 pagetables:700",
    " free:1000 free_pcp:1 free_cma:0",
    "Node 0 Normal free:4000kB boost:0kB min:4200kB low:5000kB high:6000kB present:1048576kB managed:1000000kB",
    "Node 0 Normal: 10*4kB (U) 5*8kB (M) 0*16kB 0*32kB 0*64kB 0*128kB 0*256kB 0*512kB 0*1024kB 0*2048kB 0*4096kB = 80kB",
    "262144 pages RAM",
    "Tasks state (memory values in pages):",
    "[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents oom_score_adj name",
    "[    812]     0   812     2000      900      800      100        0    40960        0             0 bash",
    "[    900]  1000   900   300000   250000   249000     1000        0  2097152        0          -500 my leaky app",
    "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/,task=bash,pid=812,uid=0",
    "Out of memory: Killed process 812 (bash) total-vm:8000kB, anon-rss:3200kB, file-rss:400kB, shmem-rss:0kB, UID:0 pgtables:40kB oom_score_adj:0",
]


def check(log, stamp=None):
    r = log.latest
    assert (log.count, log.kills) == (1, 1)
    assert (r.trigger, r.trigger_pid, r.kernel, r.order, r.constraint) == ("bash", 812, "6.1.0-13-amd64", 0, "global")
    assert r.meminfo["inactive_anon"] == 250000 and r.meminfo["pagetables"] == 700 and r.meminfo["free"] == 1000
    assert (r.zones[0].free_kb, r.zones[0].min_kb, r.zones[0].blocks[8]) == (4000, 4200, 5)
    assert r.ram_bytes == 262144 * PAGE
    assert (r.top_tasks[0].name, r.top_tasks[0].rss_pages, r.top_tasks[0].oom_score_adj) == ("my leaky app", 250000, -500)
    assert (r.victim.pid, r.victim.anon_rss_kb, r.victim.uid, r.victim.pgtables_kb, r.victim.oom_score_adj) == (
        812, 3200, 0, 40, 0)
    if stamp is not None:
        assert r.stamp == stamp


@pytest.mark.parametrize("prefix,stamp", [
    ("", None),
    ("[ 1234.567890] ", "[1234.567890]"),
    ("<4>[ 1234.567890] ", "[1234.567890]"),
    ("kern  :warn  : [ 1234.567890] ", "[1234.567890]"),
    ("[Mon Jan  2 03:04:05 2023] ", "Mon Jan  2 03:04:05 2023"),
    ("Jan  2 03:04:05 db01 kernel: ", "Jan  2 03:04:05"),
    ("Jan  2 03:04:05 db01 kernel: [ 1234.567890] ", "Jan  2 03:04:05"),
    ("Jan 02 03:04:05.123456 db01 kernel: ", "Jan 02 03:04:05"),
    ("2023-01-02T03:04:05+0000 db01 kernel: ", "2023-01-02T03:04:05+0000"),
    ("2023-01-02T03:04:05.123456+01:00 db01 kernel: ", "2023-01-02T03:04:05.123456+01:00"),
    ("2023-01-02T03:04:05,123456+00:00 ", "2023-01-02T03:04:05,123456+00:00"),
])
def test_every_log_prefix(prefix, stamp):
    check(parse_text("\n".join(prefix + line for line in BODY)), stamp)


def test_rsyslog_escaped_newlines_and_other_programs():
    kernel: list[str] = []
    for line in BODY:
        if line.startswith(" "):
            kernel[-1] += "#012" + line  # rsyslog writes a multi-line printk as one line
        else:
            kernel.append("Jan  2 03:04:05 db01 kernel: " + line)
    lines = []
    for line in kernel:
        lines += [line, "Jan  2 03:04:05 db01 systemd[1]: Started Session 4 of user root; Killed process 1 (x)"]
    check(parse_text("\n".join(lines)))


def test_journal_export_escape():
    text = "\n".join(BODY).replace("\n ", "\\x0a ")
    check(parse_text(text))


def test_iso_times_give_intervals_and_syslog_years_roll_over():
    two = "\n".join(f"2023-01-02T03:0{i}:05+00:00 h kernel: {line}" for i in (1, 4) for line in BODY)
    assert parse_text(two).intervals == [180.0]
    new_year = "\n".join(f"{d} h kernel: {line}" for d in ("Dec 31 23:59:00", "Jan  1 00:01:00") for line in BODY)
    assert parse_text(new_year).intervals == [120.0]
    # uptime restarts at a reboot: no interval across it
    reboot = "\n".join(f"[{t}] {line}" for t in ("5000.0", "10.0") for line in BODY)
    assert parse_text(reboot).intervals == []


def test_sysrq_order_minus_one_is_manual():
    text = "\n".join(BODY).replace("order=0", "order=-1")
    r = parse_text("sysrq: Manual OOM execution\n" + text).latest
    assert r.sysrq and r.order == -1 and parse_text(text).latest.sysrq


def test_oldest_task_table_and_victim_wording():
    text = """java invoked oom-killer: gfp_mask=0x201da, order=0, oom_adj=0, oom_score_adj=0
[ pid ]   uid  tgid total_vm      rss cpu oom_adj oom_score_adj name
[ 2592]    27  2592  2250000  1750000   1       0             0 mysqld
[ 3000]     0  3000     1000      200   0     -17         -1000 sshd
Out of memory: Kill process 2592 (mysqld) score 900 or sacrifice child
Killed process 2592, UID 27, (mysqld) total-vm:9000000kB, anon-rss:7000000kB, file-rss:0kB"""
    r = parse_text(text).latest
    assert (r.trigger_oom_adj, r.trigger_oom_score_adj) == (0, 0)
    assert (r.task_count, r.top_tasks[0].name, r.top_tasks[1].oom_score_adj) == (2, "mysqld", -1000)
    assert (r.victim.pid, r.victim.uid, r.victim.name, r.victim.score, r.victim.anon_rss_kb) == (
        2592, 27, "mysqld", 900, 7000000)
    assert r.victim_adj() == 0


def test_memcg_v2_stat_lines_and_unlimited_swap():
    text = """[ 10.0] node invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0
[ 10.0] memory: usage 1048576kB, limit 1048576kB, failcnt 12
[ 10.0] swap: usage 0kB, limit 9007199254740988kB, failcnt 0
[ 10.0] Memory cgroup stats for /system.slice/app.service:
[ 10.0] anon 1000000000
[ 10.0] file 4096
[ 10.0] kernel 20000000
[ 10.0] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/system.slice/app.service,task_memcg=/system.slice/app.service,task=node,pid=77,uid=1000
[ 10.1] Memory cgroup out of memory: Killed process 77 (node) total-vm:2000000kB, anon-rss:1000000kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:2100kB oom_score_adj:0"""
    r = parse_text(text).latest
    assert r.memcg_stat == {"anon": 1000000000, "file": 4096, "kernel": 20000000}
    assert r.limit("swap") == (0, None, 0) and r.limit("memory")[2] == 12
    assert r.constraint == "memcg" and r.memcg == "/system.slice/app.service"


def test_32bit_highmem_zones_without_node_and_64k_pages():
    text = """a invoked oom-killer: gfp_mask=0xd0, order=0, oom_score_adj=0
Normal free:3000kB min:2900kB low:3600kB high:4300kB managed:800000kB
HighMem free:900000kB min:512kB low:1000kB high:1500kB managed:3000000kB
Normal: 750*4kB = 3000kB
HighMem: 225000*4kB = 900000kB"""
    r = parse_text(text).latest
    assert r.highmem and r.lowmem_free_bytes == 3000 * KB and r.highmem_free_bytes == 900000 * KB
    r64 = parse_text("a invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n"
                     "Mem-Info:\nactive_anon:10 inactive_anon:20 free:30\n"
                     "Node 0 Normal: 3*64kB 1*128kB = 320kB\n").latest
    assert r64.page_size == 65536 and r64.mem_bytes()["free"] == 30 * 65536 and r64.free_order_max == 1


# -- damage --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_truncated_anywhere_gives_partial_facts(path):
    lines = path.read_text(errors="replace").splitlines()
    whole = parse(lines)
    for cut in sorted({1, 2, 3, len(lines) // 4, len(lines) // 3, len(lines) // 2, len(lines) - 2, len(lines) - 1}):
        part = parse(lines[:max(cut, 0)])
        assert part.count <= whole.count + 1
        for r in part.reports:
            r.mem_bytes(), r.free_order_max, r.usable_free_bytes, r.lowmem_free_bytes, r.top_name, r.victim_adj()
        # a line cut in half, too
        if 0 < cut < len(lines):
            parse([*lines[:cut], lines[cut][: len(lines[cut]) // 2]])


FOREIGN = [
    "[ 4242.100100] usb 1-1: new high-speed USB device number 3 using xhci_hcd",
    "[ 4242.100101] EXT4-fs (sda1): mounted filesystem with ordered data mode. Opts: (null)",
    "[ 4242.100102] audit: type=1400 audit(1700000000.000:42): apparmor=\"DENIED\" free:99 min:1",
    "[ 4242.100103] [drm] Initialized i915 1.6.0 20060119 on minor 0",
    "[ 4242.100104] [ 1234] not a task row",
]


@pytest.mark.parametrize("path", [p for p in FIXTURES if p.suffix == ".dmesg"], ids=lambda p: p.name)
def test_interleaved_foreign_lines_change_nothing(path):
    lines = path.read_text().splitlines()
    mixed: list[str] = []
    for i, line in enumerate(lines):
        mixed.append(line)
        if i % 3 == 0 and not lines[min(i + 1, len(lines) - 1)].startswith(" "):
            mixed.append(FOREIGN[i % len(FOREIGN)])
    a, b = parse(lines), parse(mixed)
    assert (a.count, a.kills) == (b.count, b.kills)
    for x, y in zip(a.reports, b.reports):
        assert (x.meminfo, x.task_rss_pages, x.victim, x.order, x.constraint) == (
            y.meminfo, y.task_rss_pages, y.victim, y.order, y.constraint)
        assert [(z.name, z.free_kb, z.blocks) for z in x.zones] == [(z.name, z.free_kb, z.blocks) for z in y.zones]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(
    st.sampled_from(BODY + FOREIGN + ["Mem-Info:", "[ pid ]   uid  tgid total_vm      rss name", "Node 0 DMA: = kB",
                                      "#012", "\\x0a", "", "   ", "oom-killer: gfp_mask=0xZZ", "Killed process 1 (",
                                      "sysrq: Manual OOM execution", "Task in / killed as a result of limit of /"]),
    st.text(max_size=120),
    st.builds(lambda p, b: p + b, st.sampled_from(["[ 1.0] ", "Jan  1 00:00:00 h kernel: ", "[Mon Jan  1 00:00:00 2024] ",
                                                    "2024-01-01T00:00:00Z h kernel: ", ""]),
              st.sampled_from(BODY).map(lambda s: s.replace("0", "9" * 30))),
), max_size=60))
def test_fuzz_never_raises(lines):
    log = parse(lines)
    for r in log.reports:
        r.mem_bytes(), r.free_order_max, r.free_bytes_from_order(3), r.usable_free_bytes, r.usable_min_bytes
        r.lowmem_free_bytes, r.highmem_free_bytes, r.hugepages_bytes, r.top_name, r.victim_adj(), r.ram_bytes


# -- bounded state ---------------------------------------------------------------------------------


def _big_log(target: int):
    """A 15 MB kernel log: a report every ~2,000 lines, each with a 300-row task table."""
    noise = "[{:>12.6f}] EXT4-fs (sda1): re-mounted. Opts: errors=remount-ro and some more words to pad it"
    size, t, i = 0, 0.0, 0
    while size < target:
        t += 1.0
        if i % 2000 == 0:
            lines = [f"[{t:>12.6f}] {line}" for line in BODY[:12]]
            lines.append(f"[{t:>12.6f}] [  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name")
            lines += [f"[{t:>12.6f}] [{pid:>7}]  1000 {pid:>5}   300000   {pid * 3:>6}  2097152        0             0 worker-{pid}"
                      for pid in range(1000, 1300)]
            lines.append(f"[{t:>12.6f}] {BODY[-1]}")
        else:
            lines = [noise.format(t)]
        for line in lines:
            size += len(line) + 1
            yield line
        i += 1


def test_15_mb_log_is_streamed_with_bounded_memory():
    target = 15 * 1024 * 1024
    tracemalloc.start()
    try:
        parser = Parser()
        for line in _big_log(target):
            parser.feed(line)
        log = parser.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert log.count > 50 and log.kills == log.count and len(log.reports) == 5
    assert log.latest.task_count == 300 and len(log.latest.top_tasks) == 10
    assert log.latest.top_tasks[0].name == "worker-1299"
    assert peak < 3 * 1024 * 1024, peak  # the log is 15 MB; the parser keeps reports, not lines
