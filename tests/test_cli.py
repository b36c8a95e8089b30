"""The command line as a user meets it: exit codes, one-line errors, JSON that validates."""

from __future__ import annotations

import json
from pathlib import Path

from testkit import validate_document


EXIT_FOR = {"ok": 0, "info": 0, "warning": 1, "critical": 2}


def test_live_run_finishes_cleanly_with_the_exit_code_of_its_verdict(memdiag):
    r = memdiag("run", "--format", "json", "--no-sinks")
    assert r.code in (0, 1, 2), r.err
    doc = r.json()
    validate_document(doc)
    assert doc["input"]["kind"] == "live"
    # Whatever this host's state (a CI runner may well be short of memory), the diagnosis is
    # given and the exit code is its verdict's.
    assert r.code == EXIT_FOR[doc["verdict"]["severity"]], doc["verdict"]
    assert "meminfo.MemTotal" in doc["facts"] and doc["accounting"]["total_bytes"] > 0
    assert {s["key"] for s in doc["accounting"]["segments"]} >= {"free", "unaccounted"}
    assert "Traceback" not in r.err


def test_default_command_is_run(memdiag):
    r = memdiag("--format", "json", "--no-sinks")
    assert r.json()["input"]["kind"] == "live"


def test_text_report_fits_80_columns_without_colour_when_piped(memdiag):
    r = memdiag("run", "--no-sinks", env={"COLUMNS": "200"})
    assert r.code == 0, r.err
    assert "\033[" not in r.out
    assert max(len(line) for line in r.out.splitlines()) <= 80
    lines = r.out.splitlines()
    assert lines[lines.index("") + 1].startswith(("OK:", "INFO:")), r.out
    assert "Where memory went" in r.out


def test_colour_only_when_asked_and_never_with_no_color(memdiag):
    assert "\033[" in memdiag("run", "--no-sinks", "--color", "always").out
    assert "\033[" not in memdiag("run", "--no-sinks", "--color", "auto", env={"NO_COLOR": "1"}).out


def test_errors_are_one_line_with_exit_3(memdiag, tmp_path):
    cases = [
        (["analyze", str(tmp_path / "missing")], "no such file or folder"),
        (["--param", "oops"], "expected RULE.NAME=VALUE"),
        (["--param", "no-such-rule.x=1"], "not loaded"),
        (["--format", "pdf"], "unknown format 'pdf'"),
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["--timeout"], "expected one argument"),
        (["explain", "meminfo.MemTotl"], "did you mean 'meminfo.MemTotal'"),
        (["-p", "yes:thing"], "expected no:NAME"),
    ]
    for args, text in cases:
        r = memdiag(*args)
        assert r.code == 3, (args, r.code, r.err)
        lines = r.err.strip().splitlines()
        assert len(lines) == 1 and text in lines[0] and lines[0].startswith("memdiag: "), (args, r.err)


def test_no_memory_evidence_is_unknown_not_ok(memdiag, tmp_path):
    r = memdiag("analyze", str(tmp_path))
    assert r.code == 3 and "no evidence found" in r.err
    (tmp_path / "lsmod.txt").write_text("Module                  Size  Used by\nvmw_balloon            24576  0\n")
    r = memdiag("analyze", str(tmp_path), "--format", "json")
    assert r.code == 3, r.err
    doc = r.json()
    validate_document(doc)
    assert doc["verdict"]["severity"] == "unknown"
    assert doc["facts"]["modules.loaded"] == ["vmw_balloon"]


def test_facts_and_explain(memdiag):
    r = memdiag("facts")
    assert r.code == 0
    names = [line.split()[0] for line in r.out.splitlines()]
    for name in ("meminfo.MemTotal", "meminfo.Slab", "processes.rss_total", "modules.loaded",
                 "platform.hypervisor", "accounting.unaccounted_bytes", "vmstat.*"):
        assert name in names
    catalog = json.loads(memdiag("facts", "--format", "json").out)
    assert all(f["doc"] and f["type"] and f["source"] for f in catalog)
    r = memdiag("explain", "meminfo.Slab")
    assert r.code == 0 and "SReclaimable" in r.out and "On this host:" in r.out and "From: /proc/meminfo" in r.out
    r = memdiag("explain", "meminfo.HugePages_Total")
    assert "count" in r.out


def test_explain_a_rule(memdiag, seed_case):
    r = memdiag("explain", "vmware-balloon", "--input", str(seed_case))
    assert r.code == 0, r.err
    assert "min_unaccounted_ratio" in r.out and "FIRED" in r.out
    assert "accounting.unaccounted_ratio = 67%" in r.out


def test_rules_list_show_validate_test(memdiag):
    r = memdiag("rules", "list")
    assert r.code == 0 and "vmware-balloon" in r.out and "balloon:" in r.out
    r = memdiag("rules", "show", "vmware-balloon")
    assert r.code == 0 and "min_unaccounted = 536870912" in r.out and "core.yaml" in r.out
    r = memdiag("rules", "show", "vmware-balloon", "--param", "vmware-balloon.min_unaccounted=2GiB")
    assert "min_unaccounted = 2147483648  (from --param)" in r.out
    r = memdiag("rules", "validate")
    assert r.code == 0, r.out
    r = memdiag("rules", "test")
    assert r.code == 0, r.out
    assert " 0 failed" in r.out


def test_invalid_rules_exit_4_and_the_diagnosis_still_runs(memdiag, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - id: Bad_Id\n    title: x\n")
    r = memdiag("rules", "validate", str(bad))
    assert r.code == 4 and f"{bad}:2" in r.out
    r = memdiag("run", "--no-sinks", "--rules", str(bad), "--format", "json")
    assert r.code == EXIT_FOR[r.json()["verdict"]["severity"]], r.err  # not 4: the diagnosis ran
    assert f"{bad}:2" in r.err
    validate_document(r.json())


def test_rule_tests_report_failures(memdiag, tmp_path):
    rule = tmp_path / "r.yaml"
    rule.write_text(
        "rules:\n  - id: r\n    title: t\n    severity: info\n    confidence: likely\n"
        "    condition: meminfo.MemTotal > 1\n    message: m\n    remediation: {steps: s}\n"
        "    tests:\n      - {name: wrong on purpose, facts: {meminfo.MemTotal: 0}, expect: {state: fired}}\n"
    )
    r = memdiag("rules", "test", str(rule))
    assert r.code == 1
    assert "FAIL r: wrong on purpose: expected fired, got passed" in r.out and "0 passed, 1 failed" in r.out


def test_version(memdiag):
    r = memdiag("--version")
    assert r.code == 0 and r.out.startswith("memdiag ")


def test_several_inputs_give_one_json_array_and_a_summary(memdiag, seed_case):
    from testkit import REPO

    baseline = REPO / "tests" / "fixtures" / "baselines" / "idle-small-vm"
    r = memdiag("analyze", str(seed_case), str(baseline), "--format", "json")
    assert r.code == 1, r.err
    docs = r.json()
    assert isinstance(docs, list) and len(docs) == 2
    for doc in docs:
        validate_document(doc)
    assert [d["verdict"]["severity"] for d in docs] == ["warning", "ok"]
    r = memdiag("analyze", str(seed_case), str(baseline))
    table = r.out[r.out.index("HOST "):].splitlines()
    assert table[1].split()[1] == "WARNING" and "VMware balloon" in table[1]
    assert table[2].split()[1] == "OK"


def test_check_honours_the_site_overrides_file(memdiag, seed_case, tmp_path):
    r = memdiag("check", str(seed_case))
    assert r.code == 1 and r.out.startswith("MEMDIAG WARNING") and "vmware-balloon" in r.out
    site = tmp_path / "overrides.yaml"
    site.write_text("rules:\n  vmware-balloon:\n    severity: critical\n    reason: no headroom here\n")
    r = memdiag("check", str(seed_case), "--overrides", str(site))
    assert r.code == 2 and r.out.startswith("MEMDIAG CRITICAL"), r.out
    r = memdiag("check", str(seed_case), env={"MEMDIAG_OVERRIDES": str(site)})
    assert r.code == 2


def test_memory_bar_is_exact_and_bounded_for_any_sizes():
    from memdiag.plugins.formats.text import _cells

    assert _cells([5, 5, 90], 76) == [4, 4, 68]
    assert sum(_cells([1] * 200, 76)) == 76  # more parts than cells
    assert _cells([10**18, 1, 10**15], 76) == [76, 0, 0]  # absurd sizes: instant, still 76 wide
    assert _cells([], 76) == []


def test_help_lists_every_command_though_a_run_builds_only_its_own(memdiag):
    """Subcommands other than the one run are not even listed unless help is asked for."""
    r = memdiag("--help")
    assert r.code == 0, r.err
    for name in ("run", "analyze", "facts", "explain", "rules", "collect", "diff", "check", "plugins", "sinks"):
        assert name in r.out
    r = memdiag("run", "--help")
    assert r.code == 0 and "--no-sinks" in r.out
    r = memdiag("run", "--no-such-option")
    assert r.code == 3 and r.err.strip().count("\n") == 0, r.err
    assert "--no-such-option" in r.err


def test_explain_reads_the_host_memdiag_root_names_as_run_does(memdiag):
    root = Path(__file__).parent / "fleet" / "hosts" / "vmware-guest"
    r = memdiag("explain", "meminfo.MemTotal", env={"MEMDIAG_ROOT": str(root)})
    assert r.code == 0, r.err
    assert "[8185937920 bytes]" in r.out and str(root / "proc" / "meminfo") in r.out


def test_text_wrap_keeps_hyphenated_names_whole_and_fits_the_width():
    from memdiag.plugins.formats.text import _wrap

    text = ("rule oom-one-process-holds-memory read /sys/devices/system/memory/memory42/state and "
            + "z" * 150 + " then vmw_balloon")
    for width in (60, 61, 79, 80, 100):
        for indent, rest in (("", ""), ("  ", "  "), ("    meminfo.MemTotal  ", " " * 22)):
            lines = _wrap(text, width, indent, rest)
            assert all(len(line) <= width for line in lines)
            assert lines[0].startswith(indent) and all(line.startswith(rest) for line in lines[1:])
            words = " ".join(line[len(indent if i == 0 else rest):] for i, line in enumerate(lines)).split()
            assert "oom-one-process-holds-memory" in words
            path = "/sys/devices/system/memory/memory42/state"
            assert (path in words) == (len(path) <= width - len(rest))  # cut only if no line holds it
            assert "".join(words) == "".join(text.split())  # nothing lost, only the long word cut
    assert _wrap("", 80, "  ") == ["  "]


def test_the_console_script_collects_garbage_again_once_start_up_is_over(monkeypatch, capsys):
    """``console`` keeps the collector off while start-up builds its long-lived objects and
    freezes them; the command itself, and whatever runs after, collect as usual."""
    import gc

    from memdiag import cli

    seen = []
    real_handler = cli.cmd_facts

    def facts(args, reg):
        seen.append((gc.isenabled(), gc.get_freeze_count() > 0))
        return real_handler(args, reg)

    monkeypatch.setattr(cli, "cmd_facts", facts)
    monkeypatch.setattr("sys.argv", ["memdiag", "facts", "meminfo.MemTotal"])
    try:
        assert cli.console() == 0
        assert seen == [(True, True)]
        assert gc.isenabled()
        monkeypatch.setattr("sys.argv", ["memdiag", "no-such-command"])
        assert cli.console() == 3  # failed before the command started: collection is still back on
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        gc.enable()
    assert "meminfo.MemTotal" in capsys.readouterr().out


def test_analyze_of_several_inputs_freezes_its_rules_only_as_the_command(monkeypatch, seed_case, capsys):
    """The rules serve every input of a batch: the command freezes them once loaded, so no
    collection scans them again. A program calling main() keeps its collector as it was."""
    import gc

    from memdiag import cli, pipeline

    counts = []
    real_rules, real_diagnose = cli.rules_for, pipeline.diagnose_source

    def rules_for(*args, **kwargs):
        rules = real_rules(*args, **kwargs)
        counts.append(("rules", gc.get_freeze_count()))
        return rules

    def diagnose_source(*args, **kwargs):
        counts.append(("input", gc.get_freeze_count()))
        return real_diagnose(*args, **kwargs)

    monkeypatch.setattr(cli, "rules_for", rules_for)
    monkeypatch.setattr(pipeline, "diagnose_source", diagnose_source)
    argv = ["analyze", str(seed_case), str(seed_case), "--no-sinks", "--format", "json"]
    try:
        gc.unfreeze()
        assert cli.main(argv) == 1
        assert [n for _, n in counts] == [0, 0, 0]  # main() called by a program: nothing frozen
        counts.clear()
        monkeypatch.setattr("sys.argv", ["memdiag", *argv])
        assert cli.console() == 1
        (_, at_rules), (_, first), (_, second) = counts
        assert at_rules < second <= first  # frozen once, after the rules were loaded (some freed since)
        counts.clear()
        gc.unfreeze()
        assert cli.main(argv) == 1 and [n for _, n in counts] == [0, 0, 0]  # the command's mark is gone
    finally:
        gc.unfreeze()
        gc.enable()
    capsys.readouterr()


def _python_m_memdiag(*args, **kwargs):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "memdiag", *args], capture_output=True, text=True, **kwargs)


def test_the_console_script_ends_with_main_s_status_and_all_its_output(seed_case):
    proc = _python_m_memdiag("analyze", str(seed_case), "--no-sinks", "--format", "json")
    assert proc.returncode == 1  # the founding case: a warning
    doc = json.loads(proc.stdout)  # all of it: flushed before the process ended
    assert any(f["rule_id"] == "vmware-balloon" for f in doc["findings"])
    proc = _python_m_memdiag("analyze", "/no/such/capture", "--no-sinks")
    assert (proc.returncode, proc.stdout) == (3, "")
    assert proc.stderr == "memdiag: /no/such/capture: no such file or folder\n"


def test_with_a_third_party_plugin_the_interpreter_shuts_down_as_usual(seed_case, tmp_path):
    """A plugin may leave a file open for the interpreter to flush as it frees it: then memdiag
    does not end the process early."""
    out = tmp_path / "left-open.txt"
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "careless.py").write_text(
        f"_f = open({str(out)!r}, 'w')\n_f.write('written at import, never closed')\n")
    proc = _python_m_memdiag("analyze", str(seed_case), "--no-sinks", "--plugins-dir", str(plugins))
    assert proc.returncode == 1, proc.stderr
    assert out.read_text() == "written at import, never closed"
