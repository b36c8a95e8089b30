"""The oom source and rules/oom.yaml end to end: `memdiag analyze` of every published report in
tests/fixtures/oom names the cause EXPECTED.md gives; the source finds reports in a pasted file,
a folder with a dmesg, a sosreport's logs and journal, and a live host without any log."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from memdiag.bounded import Deadline
from memdiag.evidence import Captured, Evidence, live
from memdiag.parsers.oomkill import parse_text
from memdiag.sources import collect

from memdiag.plugins.sources.oomkill import OomSource

OOM = Path(__file__).resolve().parent.parent / "fixtures" / "oom"
REPO = Path(__file__).resolve().parent.parent.parent


def analyze(path: Path | str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "memdiag", "analyze", str(path), "--format", "json"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout)


def fired(doc: dict) -> dict[str, dict]:
    return {f["rule_id"]: f for f in doc["findings"]}


def facts(doc: dict) -> dict:
    return {k: (v["value"] if isinstance(v, dict) and "value" in v else v) for k, v in doc["facts"].items()}


#: fixture -> (rules that must fire, rules that must not), from EXPECTED.md's diagnoses
CASES = {
    "k2.6.10-32bit-lowmem-slab-dentry-noprefix.txt": ({"oom-lowmem-exhausted", "oom-slab-holds-memory"}, set()),
    "k2.6.24-32bit-highmem-syslog-quoted-reply.txt": ({"oom-kills"}, {"oom-lowmem-exhausted"}),
    "k2.6.26-sysrq-then-global-mailwrapped.txt": ({"oom-recurring-kills"}, {"oom-sysrq-manual"}),
    "k2.6.32-el6-slab-leak-innocent-victim-syslog.log": ({"oom-slab-holds-memory"}, {"oom-one-process-holds-memory"}),
    "k3.10-memcg-lxc-protected-mysqld-noprefix-mailwrapped.txt": (
        {"oom-cgroup-limit", "oom-score-adj-protected-consumer"}, set()),
    "k3.0-mempolicy-numa-node0-noprefix-elided.txt": ({"oom-confined-to-numa-nodes"}, {"oom-kill-with-free-memory"}),
    "k3.4-global-syslog-kernel-timestamps-first-of-many.log": ({"oom-anon-outside-tasks"},
                                                               {"oom-one-process-holds-memory"}),
    "k3.10-pagefault-oom-24G-free-panic_on_oom.dmesg": ({"oom-kill-with-free-memory"},
                                                        {"oom-fragmentation", "oom-confined-to-numa-nodes"}),
    "k4.14-arm32-lowmem-order1-mailwrapped.txt": ({"oom-lowmem-exhausted"}, {"oom-fragmentation"}),
    "k4.2-sysrq-repeated-same-victim-timeline-snipped.dmesg": ({"oom-sysrq-manual", "oom-recurring-kills"},
                                                               {"oom-one-process-holds-memory"}),
    "k4.5-order2-fragmentation-two-kills.dmesg": ({"oom-fragmentation"}, {"oom-kill-with-free-memory"}),
    "k5.14-memcg-kubevirt-journal-elided.log": ({"oom-cgroup-limit"}, set()),
    "k5.3-memcg-kubevirt-dmesg-T-elided.log": ({"oom-cgroup-limit"}, set()),
    "k5.3-memcg-leaker-printk-callerid.dmesg": ({"oom-cgroup-limit"}, set()),
    "k5.4-arm64-slab-kmemleak-no-killable-mailwrapped.txt": ({"oom-slab-holds-memory"}, set()),
    "k5.8-cpuset-movable-node-indented.txt": ({"oom-confined-to-numa-nodes"}, {"oom-kill-with-free-memory"}),
    "k6.12-arm64-rpi-global-noprefix-pager-cut.txt": ({"oom-one-process-holds-memory"},
                                                      {"oom-cgroup-limit", "oom-anon-outside-tasks"}),
    "kunstated-memcg-docker-syslog-interleaved.log": ({"oom-cgroup-limit"}, set()),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_analyze_names_the_cause(name):
    doc = analyze(OOM / name)
    must, must_not = CASES[name]
    got = fired(doc)
    assert must <= set(got), sorted(got)
    assert not (must_not & set(got)), sorted(got)
    assert facts(doc)["oom.log_source"] == "dmesg"  # a pasted kernel log is recognised as one
    # ... whole: the paste is read as far as the parser reads the file itself (a quoted or
    # wrapped log once lost everything after its first line)
    latest = parse_text((OOM / name).read_text()).reports[-1]
    if latest.victim is not None:
        assert facts(doc).get("oom.report.victim") == latest.victim.name


def test_messages_name_process_sizes_and_limit():
    got = fired(analyze(OOM / "k5.3-memcg-kubevirt-dmesg-T-elided.log"))
    msg = got["oom-cgroup-limit"]["message"]
    assert "podef91e487_dec5_4613_800b_eb23e1a1617d.slice" in msg and "64.45 GiB" in msg and "qemu-system-x86" in msg
    assert "qemu-system-x86 (pid 70870)" in got["oom-one-process-holds-memory"]["message"]
    frag = fired(analyze(OOM / "k4.5-order2-fragmentation-two-kills.dmesg"))["oom-fragmentation"]["message"]
    assert "order-2" in frag and "zram-test.sh" in frag and "order 1" in frag
    low = fired(analyze(OOM / "k2.6.10-32bit-lowmem-slab-dentry-noprefix.txt"))["oom-lowmem-exhausted"]["message"]
    assert "3.89 MiB" in low and "3.73 MiB" in low and "2.37 GiB" in low and "portmap" in low


def test_mempolicy_report_is_not_called_global():
    doc = analyze(OOM / "k3.0-mempolicy-numa-node0-noprefix-elided.txt")
    f = facts(doc)
    assert f.get("oom.report.constraint") is None and f["oom.report.trigger"] == "PoolThread"
    assert "0:Normal" in f["oom.report.zones_below_min"] and "1:Normal" not in f["oom.report.zones_below_min"]


def test_facts_of_a_complete_report():
    f = facts(analyze(OOM / "k6.12-arm64-rpi-global-noprefix-pager-cut.txt"))
    assert (f["oom.report.trigger"], f["oom.report.trigger_pid"], f["oom.report.order"]) == ("cron", 550, 0)
    assert f["oom.report.gfp_mask"] == "0x140cca" and f["oom.report.constraint"] == "global"
    assert f["oom.report.mem.anon_bytes"] == (27124 + 18649) * 4096
    assert f["oom.report.ram_bytes"] == 114688 * 4096 and f["oom.report.swap_free_bytes"] == 0
    assert f["oom.report.swap_total_bytes"] == 425980 * 1024
    assert (f["oom.report.top_task"], f["oom.report.top_task_pid"]) == ("python", 996)
    assert f["oom.report.top_task_rss_bytes"] == 30557 * 4096 and f["oom.report.tasks"] == 31
    assert round(f["oom.report.top_task_share"], 4) == 0.6344
    assert (f["oom.report.victim"], f["oom.report.victim_pid"], f["oom.report.victim_anon_rss_bytes"],
            f["oom.report.victim_oom_score_adj"]) == ("python", 996, 122228 * 1024, 0)
    assert f["oom.report.victim_is_top_task"] is True
    assert f["oom.timeline.count"] == 1 and f["oom.log_kills"] == 1


# -- where the source looks ---------------------------------------------------------------------


def run(ev: Evidence):
    return collect([OomSource()], ev, deadline=Deadline(10))


def test_a_folder_with_a_dmesg_file(tmp_path):
    shutil.copy(OOM / "k4.5-order2-fragmentation-two-kills.dmesg", tmp_path / "dmesg")
    doc = analyze(tmp_path)
    assert "oom-fragmentation" in fired(doc)
    assert facts(doc)["oom.timeline.count"] == 2


def test_sosreport_messages_when_dmesg_is_clean(tmp_path):
    (tmp_path / "sos_commands" / "kernel").mkdir(parents=True)
    (tmp_path / "sos_commands" / "kernel" / "dmesg").write_text("[    0.000000] Linux version 2.6.32\n")
    (tmp_path / "var" / "log").mkdir(parents=True)
    shutil.copy(OOM / "k2.6.32-el6-slab-leak-innocent-victim-syslog.log", tmp_path / "var" / "log" / "messages")
    doc = analyze(tmp_path)
    assert facts(doc)["oom.log_source"] == "var/log/messages"
    assert "oom-slab-holds-memory" in fired(doc)


def test_sosreport_journal_when_there_is_no_syslog(tmp_path):
    logs = tmp_path / "sos_commands" / "logs"
    logs.mkdir(parents=True)
    (tmp_path / "version.txt").write_text("sosreport: 4.5.6\n")
    (logs / "journalctl_--disk-usage").write_text("Archived and active journals take up 8.0M.\n")
    shutil.copy(OOM / "k5.14-memcg-kubevirt-journal-elided.log", logs / "journalctl_--no-pager_--boot")
    doc = analyze(tmp_path)
    assert facts(doc)["oom.log_source"] == "sos_commands/logs/journalctl_--no-pager_--boot"
    assert "oom-cgroup-limit" in fired(doc)


def test_captured_dmesg_command_and_age(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "uptime").write_text("2500.00 100.00\n")
    text = (OOM / "k4.5-order2-fragmentation-two-kills.dmesg").read_text()
    ev = Evidence(str(tmp_path), kind="capture", overlay={"cmd:dmesg": Captured(text, "<dmesg>")})
    got = run(ev)
    assert got.get("oom.log_kills") == 2 and got.get("oom.last_victim") == "Xorg"
    assert abs(got.get("oom.last_kill_age_seconds") - (2500.0 - 2400.152767)) < 1e-6
    assert got.get("oom.report.free_order_max") == 1 and got.get("oom.report.order") == 2
    assert [v["process"] for v in got.get("oom.victims")] == ["firefox", "Xorg"]
    assert got.get("oom.timeline.min_interval_seconds") == pytest.approx(7.489, abs=1e-3)


def test_dated_log_gives_an_age_against_the_capture_time(tmp_path):
    text = (OOM / "k5.3-memcg-kubevirt-dmesg-T-elided.log").read_text()
    ev = Evidence(str(tmp_path), kind="capture", captured_at=1715266358.0 + 3600,
                  overlay={"cmd:dmesg": Captured(text, "<dmesg>")})
    assert run(ev).get("oom.last_kill_age_seconds") == 3600.0


def test_a_log_too_long_for_the_time_budget_is_cut_and_said(tmp_path):
    class Slow(OomSource):
        timeout = 0.0  # no time at all: stops at the first check

    line = "[ 1.0] EXT4-fs (sda1): re-mounted\n"
    ev = Evidence(str(tmp_path), kind="capture", overlay={"cmd:dmesg": Captured(line * 20000, "<dmesg>")})
    got = collect([Slow()], ev, deadline=Deadline(10))
    assert [p.kind for p in got.problems] == ["timeout"] and got.get("oom.log_kills") == 0


def test_live_host_without_a_kernel_log(tmp_path):
    got = run(Evidence(str(tmp_path), kind="live"))
    assert got.facts == {} and got.problems == []


def test_live_host_finishes():
    got = collect([OomSource()], live(), deadline=Deadline(20))
    assert not [p for p in got.problems if p.kind in ("failed", "timeout")]


def test_every_fact_is_in_the_catalog():
    names = {s.name for s in OomSource().catalog()}
    doc = analyze(OOM / "k5.4-arm64-slab-kmemleak-no-killable-mailwrapped.txt")
    produced = {k for k in doc["facts"] if k.startswith("oom.")}
    assert produced and produced <= names
    proc = subprocess.run([sys.executable, "-m", "memdiag", "facts"], capture_output=True, text=True, cwd=REPO,
                          timeout=60)
    for name in ("oom.report.constraint", "oom.report.mem.slab_unreclaimable_bytes", "oom.timeline.median_interval_seconds",
                 "oom.report.free_order_max", "oom.report.victim_oom_score_adj"):
        assert name in proc.stdout, name


def test_an_oom_report_alone_is_memory_evidence(tmp_path):
    """A paste of just the start of a report (no kill, no /proc/meminfo) is still diagnosed:
    the report is the state of memory at that moment, not 'no memory evidence'."""
    head = (OOM / "k3.0-mempolicy-numa-node0-noprefix-elided.txt").read_text().splitlines()[:12]
    paste = tmp_path / "ticket.txt"
    paste.write_text("\n".join(head) + "\n")
    doc = analyze(paste)
    assert facts(doc)["oom.report.count"] == 1
    assert doc["verdict"]["severity"] == "warning", doc["verdict"]
    assert doc["verdict"]["rule_id"] == "oom-report-without-kill"
