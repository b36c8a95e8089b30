"""The OOM source's gate (plugins/sources/oomkill.py, Gate) gives exactly what the parser gives:
every published report in tests/fixtures/oom, behind and among lines without reports, logs
without any report, reports whose first words a mail client wrapped onto the next line, generated
logs, the gate's hold-back trimmed every few lines; and end to end, the oom source's facts and
problems (log source, zero counts, origins, a read error part-way, the time budget) are the same
as with the parser fed every line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memdiag.bounded import Deadline
from memdiag.evidence import Captured, Evidence
from memdiag.parsers.oomkill import Parser
from memdiag.sources import collect

import memdiag.plugins.sources.oomkill as source
from memdiag.plugins.sources.oomkill import Gate, OomSource

OOM = Path(__file__).resolve().parent.parent / "fixtures" / "oom"
FIXTURES = sorted(p for p in OOM.glob("k*") if p.is_file())
LOG_FIELDS = ("count", "kills", "memcg_kills", "sysrq_unanswered", "lines", "reports", "timeline", "victim_counts",
              "intervals")

#: Kernel log lines without a report: every prefix the parser knows, wrapped continuations,
#: blank and quoted lines, journal markers, and words that only look like the markers' pieces.
QUIET = [
    "[    0.000000] Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org)",
    "[    0.000000] Memory: 16234K/16777216K available (14336K kernel code, 2000K rwdata)",
    "[    1.234567] Freeing unused kernel image (initmem) memory: 2944K",
    "[    2.000001] systemd[1]: Started Journal Service.",
    "<6>[    3.100000] EXT4-fs (sda1): mounted filesystem with ordered data mode.",
    "kern  :info  : [    3.200000] e1000e 0000:00:19.0 eth0: Link is Up 1000 Mbps Full Duplex",
    "[Mon Jan  2 03:04:05 2023] usb 1-1: new high-speed USB device number 3 using xhci_hcd",
    "Jan  2 03:04:05 db01 kernel: [ 1234.567890] audit: type=1400 audit(1700000000.000:42): apparmor=\"DENIED\"",
    "Jan  2 03:04:05 db01 sshd[812]: Accepted publickey for root from 10.0.0.1 port 52222",
    "2023-01-02T03:04:05+0000 db01 kernel: x86/mm: Memory block size: 128MB",
    "-- Journal begins at Mon 2023-01-02 03:04:05 UTC, ends at Tue 2023-01-03 03:04:05 UTC. --",
    "    continuation of a multi-line printk without a prefix",
    "\tCall Trace:",
    "",
    "   ",
    "> Jan  2 03:04:05 db01 kernel: quoted in a mail reply",
    "> ",
    "a line a mail client wrapped, ending in the word of",
    "memoryless words at the start: memorylane, processing, limits (not markers once wrapped? they are)",
    "Killed by signal 9 (a process, not the kernel's words)",
    "the result of a limit, not the kernel's words",
    "[ 4242.100104] [ 1234] not a task row",
]


def parser_result(lines, keep=None):
    p = Parser()
    for line in lines:
        p.feed(line)
    return p.finish()


def gate_result(lines):
    g = Gate()
    for line in lines:
        g.feed(line)
    return g, g.finish()


def same(a, b) -> None:
    for name in LOG_FIELDS:
        assert getattr(a, name) == getattr(b, name), name
    assert a.latest == b.latest


@pytest.fixture(params=[source.HOLD_LINES, 2, 3, 7], ids=lambda n: f"hold{n}")
def hold(request, monkeypatch):
    """The gate with its usual hold-back, and with tiny ones (trimmed every few lines)."""
    monkeypatch.setattr(source, "HOLD_LINES", request.param)
    return request.param


def fixture_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_every_published_report_alone_behind_and_among_quiet_lines(path, hold):
    lines = fixture_lines(path)
    mixed = [x for i, line in enumerate(lines) for x in ([line, QUIET[i % len(QUIET)]] if i % 5 == 4 else [line])]
    for log in (lines, QUIET * 30 + lines, QUIET * 30 + lines + QUIET * 30, mixed, lines[len(lines) // 2:]):
        gate, got = gate_result(log)
        same(got, parser_result(log))
    assert gate_result(QUIET * 30 + lines)[1].count >= 1


def test_logs_without_a_report(hold):
    for log in ([], [""], QUIET, QUIET * 200, [QUIET[0]] + [QUIET[11]] * 5000, [QUIET[13]] * 3000, QUIET[::-1] * 50):
        gate, got = gate_result(log)
        expected = parser_result(log)
        same(got, expected)
        assert expected.count == 0


def test_the_gates_markers_are_what_the_parser_looks_at():
    """The parser examines a line outside a report only when it holds one of the gate's markers."""
    def examined(line: str) -> bool:
        p = Parser()
        seen: list[str] = []
        p._strip = lambda raw: (seen.append(raw), (None, None))[1]  # type: ignore[method-assign]
        p.feed(line)
        p.finish()
        return bool(seen)

    for marker in source._MARKERS:
        assert examined(f"[ 1.0] a {marker} b"), marker
    for word in ("OoM", "of  memory", "Killed  process", "result of  limit", "memory", "process", "limit",
                 "Out of Memory", "killed process"):
        assert not examined(f"[ 1.0] a {word} b"), word


def test_a_quiet_log_never_loads_the_parser():
    clean = [line for line in QUIET if not line.startswith("memoryless")]  # that one starts it, needlessly
    for log in (clean * 40, clean * 1000):  # under the hold-back, and trimmed many times
        gate, got = gate_result(log)
        assert gate.parser is None and got.lines == len(log) and got.count == 0
        assert len(gate.held) < source.HOLD_LINES


USAGE = "memory: usage 524288kB, limit 524288kB, failcnt 10"


@pytest.mark.parametrize("first,second", [
    ("[ 10.000000] Out of", "memory: Killed process 812 (bash) total-vm:8000kB, anon-rss:3200kB, file-rss:0kB"),
    ("[ 10.000000] Out of memory: Killed", "process 812 (bash) total-vm:8000kB, anon-rss:3200kB, file-rss:0kB"),
    ("[ 10.000000] Task in /a killed as a result", "of limit of /a\n[ 10.000001] " + USAGE),
    ("[ 10.000000] Task in /a killed as a result of", "limit of /a\n[ 10.000001] " + USAGE),
    ("> [ 10.000000] Task in /a killed as a result", ">   of limit of /a\n> [ 10.000001] " + USAGE),
    ("[ 10.000000] Memory cgroup out of", "  memory: Killed process 9 (x) total-vm:1kB, anon-rss:1kB, file-rss:0kB"),
])
def test_markers_a_mail_client_wrapped_onto_the_next_line(first, second, hold):
    log = QUIET[:10] + [first, *second.split("\n")] + QUIET[:5]
    gate, got = gate_result(log)
    expected = parser_result(log)
    same(got, expected)
    assert expected.count == 1  # the parser did find a report there


def test_a_marker_three_pieces_long():
    log = QUIET[:3] + ["[ 10.000000] Task in /a killed as a result", "of", "limit of /a", "[ 10.1] " + USAGE]
    same(gate_result(log)[1], parser_result(log))
    assert parser_result(log).count == 1


@pytest.mark.parametrize("gap", [0, 1, 2, 5, 30, 3000])
def test_a_report_begun_on_a_wrapped_line_keeps_the_prefix_of_the_line_it_continues(gap, hold):
    """The hold-back is only ever trimmed at a line a parser could start afresh from: here the
    report's first words continue a prefixed line through ``gap`` wrapped lines, so its time
    stamp and trigger come from that line, however often the gate trimmed in between (and past
    8 KiB of wrapped lines the parser drops the rest, with or without the gate)."""
    log = QUIET[:4] + ["[ 77.000000] stress"] + ["more words"] * gap + [
        "invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0",
        "[ 77.000001] Out of memory: Killed process 4242 (stress) total-vm:8000kB, anon-rss:3200kB, file-rss:0kB"]
    gate, got = gate_result(log)
    expected = parser_result(log)
    same(got, expected)
    if gap <= 5:  # beyond, the trigger's name is too long to be one (64 characters)
        assert (expected.latest.stamp, expected.latest.line, expected.latest.trigger) == (
            "[77.000000]", 5, "stress" + " more words" * gap)


_WORDS = ["oom", "OOM", "of", "memory", "Killed", "process", "result", "limit", "Out", "Task in /a killed as a",
          "invoked oom-killer: gfp_mask=0x0, order=0", "Mem-Info:", "-- ", "> ", ">", "#012", "x", "  ", "\t"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.one_of(
    st.sampled_from(QUIET),
    st.builds(lambda prefix, words: prefix + " ".join(words),
              st.sampled_from(["", "[ 1.0] ", "[ 2.5] ", "Jan  1 00:00:00 h kernel: ", "  ", "> ", "-- "]),
              st.lists(st.sampled_from(_WORDS), max_size=5)),
    st.text(max_size=40),
), max_size=80), hold_lines=st.sampled_from([2, 3, 5, 1024]))
def test_generated_logs(lines, hold_lines):
    saved = source.HOLD_LINES
    source.HOLD_LINES = hold_lines
    try:
        same(gate_result(lines)[1], parser_result(lines))
    finally:
        source.HOLD_LINES = saved


def test_long_lines_are_held_by_size_too(monkeypatch):
    monkeypatch.setattr(source, "HOLD_CHARS", 1000)
    log = [f"[ {i}.0] " + "x" * 300 for i in range(50)] + fixture_lines(FIXTURES[0])
    gate = Gate()
    for line in log[:50]:
        gate.feed(line)
        assert gate.size <= 1000 + 310
    for line in log[50:]:
        gate.feed(line)
    same(gate.finish(), parser_result(log))


# -- end to end: the oom source with the gate, and with the parser fed every line -------------------


class _Plain:
    """The parser alone, as the source used it before the gate."""

    def __init__(self) -> None:
        self.parser = Parser()
        self.feed = self.parser.feed

    @property
    def lines(self) -> int:
        return self.parser.log.lines

    def finish(self):
        return self.parser.finish()


def facts_both_ways(ev_factory, monkeypatch, source_cls=OomSource):
    def run():
        got = collect([source_cls()], ev_factory(), deadline=Deadline(20))
        return ({k: (got.get(k), got.origin(k)) for k in got.facts}, [str(p) for p in got.problems],
                [p.kind for p in got.problems])

    gated = run()
    with monkeypatch.context() as m:
        m.setattr(source, "Gate", _Plain)
        plain = run()
    assert gated == plain
    return gated


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_source_facts_for_every_fixture_as_a_sosreport_dmesg(path, tmp_path, monkeypatch):
    (tmp_path / "sos_commands" / "kernel").mkdir(parents=True)
    shutil.copy(path, tmp_path / "sos_commands" / "kernel" / "dmesg")
    facts, _, _ = facts_both_ways(lambda: Evidence(str(tmp_path), kind="sosreport",
                                                   commands={"dmesg": ["sos_commands/kernel/dmesg"]}), monkeypatch)
    assert facts["oom.report.count"][0] >= 1


def test_source_facts_for_logs_without_reports(tmp_path, monkeypatch):
    """A clean dmesg, then var/log/messages without a report either: the first log read is the
    one reported, with zero counts; and a sosreport whose journal is all there is."""
    (tmp_path / "sos_commands" / "kernel").mkdir(parents=True)
    (tmp_path / "sos_commands" / "kernel" / "dmesg").write_text("\n".join(QUIET * 100) + "\n")
    (tmp_path / "var" / "log").mkdir(parents=True)
    (tmp_path / "var" / "log" / "messages").write_text("\n".join(QUIET[7:9] * 700) + "\n")
    facts, problems, _ = facts_both_ways(lambda: Evidence(str(tmp_path), kind="sosreport",
                                                          commands={"dmesg": ["sos_commands/kernel/dmesg"]}),
                                         monkeypatch)
    assert facts["oom.log_source"][0] == "dmesg" and facts["oom.log_kills"][0] == 0
    assert facts["oom.timeline.count"] == (0, str(tmp_path / "sos_commands" / "kernel" / "dmesg"))
    assert problems == []


def test_source_facts_when_the_report_is_in_the_journal(tmp_path, monkeypatch):
    logs = tmp_path / "sos_commands" / "logs"
    logs.mkdir(parents=True)
    (logs / "journalctl_--no-pager_--boot").write_text(
        "\n".join(QUIET * 60) + "\n" + (OOM / "k5.14-memcg-kubevirt-journal-elided.log").read_text())
    facts, _, _ = facts_both_ways(lambda: Evidence(str(tmp_path), kind="sosreport"), monkeypatch)
    assert facts["oom.log_source"][0] == "sos_commands/logs/journalctl_--no-pager_--boot"


@pytest.mark.parametrize("at", [0, 1, 500, 5000])
@pytest.mark.parametrize("with_report", [False, True])
def test_source_facts_when_the_log_turns_binary_part_way(at, with_report, tmp_path, monkeypatch):
    """A NUL byte: the lines before it are read (or none, and the next log is tried), and the
    problem names the file - with the gate as without it."""
    lines = QUIET * 300
    if with_report:
        lines = lines[:at // 2] + fixture_lines(OOM / "k4.5-order2-fragmentation-two-kills.dmesg") + lines[at // 2:]
    data = "\n".join(lines[:at]).encode() + (b"\n" if at else b"") + b"bad\x00line\n" + "\n".join(lines[at:]).encode()
    (tmp_path / "var" / "log").mkdir(parents=True)
    (tmp_path / "var" / "log" / "kern.log").write_bytes(data)
    (tmp_path / "var" / "log" / "messages").write_text("\n".join(QUIET) + "\n")
    facts_both_ways(lambda: Evidence(str(tmp_path), kind="capture"), monkeypatch)


def test_source_facts_when_time_runs_out(tmp_path, monkeypatch):
    class Slow(OomSource):
        timeout = 0.0  # no time at all: stops at the first check

    text = "\n".join(QUIET * 1000)
    _, problems, kinds = facts_both_ways(
        lambda: Evidence(str(tmp_path), kind="capture", overlay={"cmd:dmesg": Captured(text, "<dmesg>")}),
        monkeypatch, Slow)
    assert kinds == ["timeout"] and "stopped after 0 lines" in problems[0]


def test_the_gate_starts_the_parser_on_each_marker_it_spells_out():
    for marker in source._MARKERS:
        gate = source.Gate()
        gate.feed("[ 1.0] quiet line")
        assert gate.parser is None
        gate.feed(f"[ 2.0] a {marker} b")
        assert gate.parser is not None, marker
