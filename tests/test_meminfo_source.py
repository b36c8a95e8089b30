"""meminfo: every field by name, unknown fields kept, bad lines reported and skipped."""

from __future__ import annotations

from memdiag.bounded import Deadline
from memdiag.evidence import Captured, Evidence
from memdiag.plugins.sources.meminfo import MeminfoSource, fact_name
from memdiag.sources import collect


def run(tmp_path, text: str):
    ev = Evidence(str(tmp_path), kind="folder", overlay={"proc/meminfo": Captured(text, "pasted:1")})
    return collect([MeminfoSource()], ev, deadline=Deadline(5))


def test_fields_in_bytes_and_counts(tmp_path):
    facts = run(tmp_path, "MemTotal: 1000 kB\nHugePages_Total:  4\nActive(anon): 8 kB\nNewField2030:  3 kB\n")
    assert facts.get("meminfo.MemTotal") == 1000 * 1024
    assert facts.get("meminfo.HugePages_Total") == 4
    assert facts.get("meminfo.Active_anon") == 8 * 1024
    assert facts.get("meminfo.NewField2030") == 3 * 1024  # kept, and explained generically
    assert "meminfo.NewField2030" in facts.catalog
    assert facts.catalog.get("meminfo.NewField2030").doc
    assert facts.origin("meminfo.MemTotal") == "pasted:1"
    assert facts.problems == []


def test_missing_field_is_unknown_not_zero(tmp_path):
    from memdiag.facts import UNKNOWN

    facts = run(tmp_path, "MemTotal: 1000 kB\n")
    assert facts.get("meminfo.MemAvailable") is UNKNOWN


def test_bad_lines_are_reported_and_the_rest_kept(tmp_path):
    facts = run(tmp_path, "MemTotal: 1000 kB\nMemFree: 12 MB\nCached: lots kB\ngarbage\nBuffers: 5 kB\n")
    assert facts.get("meminfo.MemTotal") == 1000 * 1024
    assert facts.get("meminfo.Buffers") == 5 * 1024
    messages = " | ".join(p.message for p in facts.problems)
    assert "unknown unit 'MB'" in messages
    assert "not a number" in messages
    assert "line 4" in messages
    assert all(p.path == "pasted:1" for p in facts.problems)


def test_crlf_and_truncated_last_line(tmp_path):
    facts = run(tmp_path, "MemTotal: 1000 kB\r\nMemFree:  10 kB\r\nCach")
    assert facts.get("meminfo.MemFree") == 10 * 1024
    assert len(facts.problems) == 1


def test_binary_junk_is_refused_with_the_file_named(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "meminfo").write_bytes(b"\x7fELF\x00\x01\x02garbage")
    facts = collect([MeminfoSource()], Evidence(str(tmp_path), kind="capture"), deadline=Deadline(5))
    assert facts.facts == {}
    [problem] = facts.problems
    assert problem.kind == "malformed" and "binary" in problem.message
    assert problem.path.endswith("proc/meminfo")


def test_utf16_paste_is_decoded(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "meminfo").write_bytes("MemTotal: 1000 kB\r\n".encode("utf-16"))
    facts = collect([MeminfoSource()], Evidence(str(tmp_path), kind="capture"), deadline=Deadline(5))
    assert facts.get("meminfo.MemTotal") == 1000 * 1024


def test_fact_names_have_no_parentheses():
    assert fact_name("Inactive(file)") == "meminfo.Inactive_file"


def test_values_no_kernel_prints_are_refused_but_wrapped_counters_kept(tmp_path):
    facts = run(tmp_path, "MemTotal: 99999999999999999999999999 kB\nMemFree: -5 kB\n"
                          "SUnreclaim: 18446744073709551272 kB\nBuffers: 5 kB\n")
    assert "meminfo.MemTotal" not in facts and "meminfo.MemFree" not in facts
    assert facts.get("meminfo.SUnreclaim") == 18446744073709551272 * 1024  # for the sanity rules
    messages = [p.message for p in facts.problems]
    assert "line 1: MemTotal: 99999999999999999999999999 cannot be a kernel counter; field skipped" in messages
    assert "line 2: MemFree: -5 cannot be a kernel counter; field skipped" in messages
    facts = run(tmp_path, "MemTotal: 18446744073709551272 kB\n")
    assert [p.message for p in facts.problems] == [
        "line 1: MemTotal: 18446744073709551272 kB is not a plausible amount of memory; field skipped",
        "no meminfo fields found"]
