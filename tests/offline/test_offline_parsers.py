"""Every command-output format, on fixtures from the procps versions people paste from.

Fixture sources are listed in tests/fixtures/offline/README.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from memdiag.parsers import ParseError
from memdiag.parsers.free import parse_free
from memdiag.parsers.modules import parse_modules
from memdiag.parsers.ps import parse_ps
from memdiag.parsers.top import parse_top
from memdiag.parsers.uname import parse_uname

FIX = Path(__file__).parent.parent / "fixtures" / "offline"
K, M, G, T = 1024, 1024**2, 1024**3, 1024**4


def read(rel: str) -> str:
    return (FIX / rel).read_text()


# -- top ---------------------------------------------------------------------------------------

def test_top_procps_328_old_layout_with_k_suffixes():
    top = parse_top(read("top/centos6-procps-3.2.8.txt"), "t")
    assert top.layout == "old" and top.clock == "14:02:17"
    assert (top.mem_total, top.mem_used, top.mem_free) == (8061208 * K, 7866980 * K, 194228 * K)
    assert top.buff_cache == (165876 + 3866712) * K  # buffers + "cached" from the Swap line
    assert top.mem_avail is None
    assert (top.swap_total, top.swap_used, top.swap_free) == (4128764 * K, 0, 4128764 * K)
    assert [(p.pid, p.comm, p.res_bytes) for p in top.processes[:2]] == [
        (2734, "java", round(2.1 * G)), (1988, "mysqld", 412 * M)]
    assert top.processes[2].res_bytes == 5184 * K  # no suffix: KiB


def test_top_procps_339_cached_mem():
    top = parse_top(read("top/ubuntu1404-procps-3.3.9.txt"), "t")
    assert top.layout == "old"
    assert top.buff_cache == (182424 + 2008692) * K
    assert top.processes[0].res_bytes == round(1.006 * G)
    assert "vmtoolsd" in [p.comm for p in top.processes]


def test_top_procps_4_mib_scaled_header_and_mixed_res():
    top = parse_top(read("top/debian12-procps-4.0.2-mib.txt"), "t")
    assert top.layout == "new"
    assert top.mem_total == round(15995.6 * M)
    assert top.mem_avail == round(3957.7 * M)
    assert top.swap_used == round(57.7 * M)
    res = {p.comm: p.res_bytes for p in top.processes}
    assert res["postgres"] == round(6.1 * G) and res["java"] == round(4.2 * G)
    assert res["php-fpm8.2"] == 74368 * K and res["kthreadd"] == 0
    assert len(top.processes) == 9


def test_top_gib_header_and_mib_task_values():
    top = parse_top(read("top/debian12-procps-4.0.2-gib-scaled.txt"), "t")
    assert top.mem_total == round(15.6 * G) and top.mem_free == round(0.8 * G)
    assert [p.res_bytes for p in top.processes] == [round(6246.4 * M), round(4300.8 * M), round(72.6 * M),
                                                    round(12.8 * M)]


def test_top_extra_columns_wide_command_and_terabyte_res():
    top = parse_top(read("top/rhel8-procps-3.3.15-wide-cmdline.txt"), "t")
    procs = {p.pid: p for p in top.processes}
    assert procs[40211].res_bytes == 2 * T and procs[40211].comm == "ora_pmon_ORCL"
    assert procs[7702].res_bytes == round(12.5 * M) and procs[7702].comm == "vmtoolsd"
    assert procs[1188].res_bytes == 233064 * K and procs[1188].comm == "platform-python"
    assert procs[2].comm == "kthreadd"
    assert top.mem_total == 2113929216 * K


def test_top_rows_without_any_header():
    top = parse_top(read("top/headerless-rows.txt"), "t")
    assert top.mem_total is None and top.clock is None
    assert [(p.pid, p.user, p.comm) for p in top.processes] == [
        (3725, "root", "java"), (1087, "mysql", "mysqld"), (687, "root", "vmtoolsd")]


def test_top_two_iterations_uses_the_last():
    first = read("top/seed-centos7-procps-3.3.10.txt")
    second = first.replace("16:46:45", "16:46:48").replace("185776 free", "185000 free")
    top = parse_top(first + "\n" + second, "t")
    assert top.clock == "16:46:48" and top.mem_free == 185000 * K
    assert len(top.processes) == 20


def test_top_crlf_and_truncated_last_row():
    text = read("top/seed-centos7-procps-3.3.10.txt").replace("\n", "\r\n")
    text = text[: text.rindex("  705 root") + 30]  # the paste was cut mid-row
    top = parse_top(text, "t")
    assert len(top.processes) == 19
    assert len(top.skipped) == 1 and top.skipped[0].startswith("line 27:")


@pytest.mark.parametrize("text", ["", "bash: top: command not found\n", "top: failed tty get\n",
                                  "\x00\x01binary\n"])
def test_top_not_top(text):
    with pytest.raises(ParseError, match="^x.txt: no top output found"):
        parse_top(text, "x.txt")


# -- free --------------------------------------------------------------------------------------

def test_free_new_layout_kib_default():
    f = parse_free(read("free/debian12-procps-4.0.2-k.txt"), "f")
    assert f.layout == "new" and f.unit_assumed
    assert (f.total, f.used, f.free, f.shared, f.buff_cache, f.available) == tuple(
        v * K for v in (16379484, 12326796, 831900, 211352, 3544812, 4052688))
    assert (f.swap_total, f.swap_used, f.swap_free) == (2097148 * K, 59084 * K, 2038064 * K)
    assert f.buffers is None and f.cached is None


def test_free_wide_splits_buffers_and_cache():
    f = parse_free(read("free/debian12-procps-4.0.2-w.txt"), "f")
    assert (f.buffers, f.cached) == (118204 * K, 3426608 * K)
    assert f.buff_cache == (118204 + 3426608) * K


def test_free_old_layout_procps_328():
    f = parse_free(read("free/centos6-procps-3.2.8-k.txt"), "f")
    assert f.layout == "old" and f.available is None
    assert (f.total, f.used, f.free) == (8061208 * K, 7866980 * K, 194228 * K)
    assert (f.buffers, f.cached, f.buff_cache) == (165876 * K, 3866712 * K, (165876 + 3866712) * K)


def test_free_old_layout_m_with_low_high_total_lines():
    f = parse_free(read("free/ubuntu1404-procps-3.3.9-m-lt.txt"), "f")
    assert f.layout == "old" and not f.unit_assumed
    assert (f.total, f.cached, f.swap_total) == (3951 * M, 1961 * M, 1021 * M)


def test_free_m_from_the_pasted_prompt():
    f = parse_free(read("free/centos7-procps-ng-3.3.10-m-with-prompt.txt"), "f")
    assert (f.total, f.available, f.swap_free) == (7806 * M, 113 * M, 288 * M)


def test_free_human_binary_suffixes_3_3_and_4_x():
    old = parse_free(read("free/centos7-procps-ng-3.3.10-h.txt"), "f")
    assert (old.total, old.free, old.shared) == (round(7.6 * G), 181 * M, round(9.6 * M))
    new = parse_free(read("free/debian12-procps-4.0.2-h.txt"), "f")
    assert (new.total, new.free, new.buff_cache) == (15 * G, 812 * M, round(3.4 * G))
    assert new.swap_total == 2 * G and new.swap_used == 57 * M


def test_free_si_human_is_decimal():
    f = parse_free(read("free/debian12-procps-4.0.2-si-h-with-prompt.txt"), "f")
    assert (f.total, f.free, f.swap_total) == (16 * 10**9, 851 * 10**6, round(2.1 * 10**9))


def test_free_bytes_and_gib_by_command_line():
    f = parse_free("$ free -b\n" + read("free/debian12-procps-4.0.2-b.txt"), "f")
    assert f.total == 16772591616
    g = parse_free("# free -g\n              total        used        free\nMem:             15          11           0\n", "f")
    assert g.total == 15 * G and g.free == 0


@pytest.mark.parametrize("fixture,why", [
    ("free/debian12-procps-4.0.2-m.txt", "too small to be KiB"),
    ("free/debian12-procps-4.0.2-b.txt", "too large to be KiB"),
])
def test_free_unit_not_shown_and_not_kib_is_refused(fixture, why):
    with pytest.raises(ParseError, match=why):
        parse_free(read(fixture), "f.txt")


@pytest.mark.parametrize("text,why", [
    ("free: invalid option -- 'w'\nUsage:\n free [options]\n", "no free output found"),
    ("              total        used        free\nMem:        16379484\n", "truncated"),
    ("              total        used        free\nMem:        1.5X    12   1\n", "not a size"),
])
def test_free_malformed(text, why):
    with pytest.raises(ParseError, match=why):
        parse_free(text, "f.txt")


# -- ps ----------------------------------------------------------------------------------------

def test_ps_aux_full_command_lines():
    procs = parse_ps(read("ps/centos7-procps-ng-3.3.10-aux.txt"), "p")
    by_pid = {p.pid: p for p in procs}
    assert by_pid[3725].comm == "java" and by_pid[3725].rss_bytes == 1818268 * K
    assert by_pid[1087].comm == "mysqld" and by_pid[1087].rss_bytes == 233064 * K
    assert by_pid[687].comm == "vmtoolsd" and by_pid[2].comm == "kthreadd"
    assert by_pid[14564].comm == "sshd" and by_pid[14568].comm == "bash"
    assert len(procs) == 10


def test_ps_eo_any_column_order():
    plain = parse_ps(read("ps/debian12-procps-4.0.2-eo-pid-rss-comm.txt"), "p")
    reordered = parse_ps(read("ps/debian12-procps-4.0.2-eo-reordered.txt"), "p")
    assert {p.pid: p.rss_bytes for p in reordered}.items() <= {p.pid: p.rss_bytes for p in plain}.items()
    assert {p.pid: p.comm for p in reordered}[30412] == "Web"  # first word of a name with a blank
    assert sum(p.rss_bytes for p in plain) == sum((13144, 0, 21800, 47092, 4404224, 6396313, 74368, 61800, 3968)) * K


def test_ps_sos_alx_and_aux_threads():
    alx = parse_ps(read("ps/rhel9-sos-4.5-ps_alxwww.txt"), "p")
    assert [(p.pid, p.comm) for p in alx] == [(1, "systemd"), (2, "kthreadd"), (1022, "vmtoolsd"), (8810, "httpd")]
    threads = parse_ps(read("ps/rhel9-sos-4.5-ps_auxwwwm.txt"), "p")
    assert [p.pid for p in threads] == [1, 1022, 8810]  # thread rows ("-") skipped
    assert threads[2].rss_bytes == 312576 * K


@pytest.mark.parametrize("text", ["", "ps: error: unsupported option (BSD syntax)\n", "  PID TTY          TIME CMD\n  1 ?  00:00:01 init\n",
                                  "USER PID %CPU %MEM VSZ RSS TTY STAT START TIME COMMAND\n"])
def test_ps_malformed(text):
    with pytest.raises(ParseError):
        parse_ps(text, "p.txt")


# -- modules, uname ----------------------------------------------------------------------------

def test_lsmod_and_proc_modules_agree():
    lsmod = parse_modules(read("modules/centos7-vmware-lsmod.txt"), "m")
    proc = parse_modules(read("modules/centos7-vmware-proc-modules.txt"), "m")
    assert proc[:-1] == lsmod and proc[-1] == "zfs"  # tainted module line "(POE)" read too
    assert "vmw_balloon" in lsmod


@pytest.mark.parametrize("text", ["", "lsmod: command not found\n", "Module                  Size  Used by\n"])
def test_modules_malformed(text):
    with pytest.raises(ParseError, match="no module lines"):
        parse_modules(text, "m.txt")


def test_uname():
    assert parse_uname(read("uname/centos7-uname-a.txt"), "u") == ("centos7.example.com", "3.10.0-693.el7.x86_64")
    assert parse_uname(read("uname/debian12-uname-a.txt"), "u") == ("db02", "6.1.0-18-amd64")
    assert parse_uname(read("uname/uname-r.txt"), "u") == (None, "5.14.0-362.8.1.el9_3.x86_64")
    assert parse_uname("[root@h ~]# uname -a\n" + read("uname/centos7-uname-a.txt"), "u")[0] == "centos7.example.com"
    with pytest.raises(ParseError, match="not uname output"):
        parse_uname("uname: extra operand\n", "u")
