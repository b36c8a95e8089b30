"""The pytest plugin (``pytest --memdiag-rules PATH``): rule tests as pytest items, readable
failures, malformed files as one failing item, and nothing at all unless asked for."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from testkit import REPO

pytest_plugins = ["pytester"]

# Every run is a subprocess: the plugin is found through its entry point as in real use, and
# memdiag's modules (which pytester's in-process runs would import afresh, half of them beside
# the old ones) are each imported once.

GOOD = textwrap.dedent("""\
    rules:
      - id: low-available
        title: Little memory is available
        severity: warning
        confidence: likely
        params: {min_available_ratio: 0.1}
        condition: meminfo.MemAvailable < params.min_available_ratio * meminfo.MemTotal
        message: Only {meminfo.MemAvailable|bytes} of {meminfo.MemTotal|bytes} is available.
        evidence: [meminfo.MemAvailable, meminfo.MemTotal]
        remediation: {steps: Find what holds the memory.}
        tests:
          - name: fires when little is available
            facts: {meminfo.MemTotal: 8 GiB, meminfo.MemAvailable: 512 MiB}
            expect: {state: fired, severity: warning, message_contains: ["512.00 MiB"]}
          - name: silent when plenty is available
            facts: {meminfo.MemTotal: 8 GiB, meminfo.MemAvailable: 4 GiB}
            expect: {state: passed}
    """)

#: the same rule, with a test whose expectation is wrong
FAILING = GOOD.replace("- name: silent when plenty is available\n        facts: {meminfo.MemTotal: 8 GiB, "
                       "meminfo.MemAvailable: 4 GiB}\n        expect: {state: passed}",
                       "- name: wrongly expects silence\n        facts: {meminfo.MemTotal: 8 GiB, "
                       "meminfo.MemAvailable: 256 MiB}\n        expect: {state: passed}")


@pytest.fixture
def pack(pytester):
    def write(**files: str) -> None:
        (pytester.path / "rules").mkdir(exist_ok=True)
        for name, text in files.items():
            (pytester.path / "rules" / f"{name}.yaml").write_text(text)
        pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    return write


def test_a_passing_pack_gives_one_item_per_rule_test(pytester, pack):
    assert FAILING != GOOD
    pack(site=GOOD)
    result = pytester.runpytest_subprocess("--memdiag-rules", "rules", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([
        "rules/site.yaml::low-available::fires when little is available PASSED*",
        "rules/site.yaml::low-available::silent when plenty is available PASSED*",
    ])


def test_a_failing_test_says_rule_test_expected_got_and_facts(pytester, pack):
    pack(site=FAILING)
    result = pytester.runpytest_subprocess("--memdiag-rules", "rules", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    out = result.stdout.str()
    assert "rules/site.yaml::low-available::wrongly expects silence" in out
    result.stdout.fnmatch_lines([
        "memdiag rule low-available (rules/site.yaml:2), test 'wrongly expects silence'",
        "*expected: state passed",
        "*got:      state fired, severity warning, confidence likely, message 'Only 256.00 MiB of 8.00 GiB is available.'",
        "*problem:  expected passed, got fired",
        "*the condition read:",
        "*meminfo.MemAvailable = 256.00 MiB (268435456 bytes)",
        "*meminfo.MemTotal = 8.00 GiB (8589934592 bytes)",
        "*params.min_available_ratio = 0.1",
    ])
    assert "Traceback" not in out and "memdiag/pytest_plugin.py" not in out


def test_a_malformed_file_is_one_failing_item_and_the_rest_run(pytester, pack):
    pack(site=GOOD, broken="rules:\n  - id: x\n    title: [unclosed\n")
    result = pytester.runpytest_subprocess("--memdiag-rules", "rules", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    out = result.stdout.str()
    assert "rules/broken.yaml::rule file" in out
    result.stdout.fnmatch_lines(["rules/broken.yaml:4: error: not valid YAML*"])
    assert "Traceback" not in out and "errors during collection" not in out


def test_a_rule_that_does_not_compile_is_named(pytester, pack):
    pack(site=GOOD.replace("condition: meminfo.MemAvailable <", "condition: meminfo.MemAvailable <<<"))
    result = pytester.runpytest_subprocess("--memdiag-rules", "rules", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*_ rule low-available _*",
                                 "rules/site.yaml:2: error: rule low-available: condition: syntax error*",
                                 "FAILED rules/site.yaml::low-available - *"])


def test_without_the_option_no_rule_file_is_collected(pytester, pack):
    pack(site=FAILING)
    result = pytester.runpytest_subprocess("rules", ".", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "low-available" not in result.stdout.str()


def test_the_ini_option_and_a_rule_file_path(pytester, pack):
    pack(site=GOOD, other=GOOD.replace("low-available", "low-available-too"))
    pytester.makeini("[pytest]\nmemdiag_rules = rules/other.yaml\n")
    result = pytester.runpytest_subprocess("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    assert "low-available-too::" in result.stdout.str() and "site.yaml" not in result.stdout.str()
    result = pytester.runpytest_subprocess("-v", "-p", "no:cacheprovider", "--memdiag-rules", "rules/site.yaml")
    result.assert_outcomes(passed=5)


def test_unknown_facts_are_warnings(pytester, pack):
    pack(site=GOOD.replace("evidence: [meminfo.MemAvailable, meminfo.MemTotal]",
                           "evidence: [meminfo.MemAvailable, meminfo.MemTotall]"))
    result = pytester.runpytest_subprocess("--memdiag-rules", "rules", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, warnings=1)
    result.stdout.fnmatch_lines(["*MemdiagRuleWarning*unknown fact 'meminfo.MemTotall'*"])


def test_the_bundled_rules_pass_as_pytest_items(pytester):
    result = pytester.runpytest_subprocess("--memdiag-rules", str(REPO / "rules"), "-q", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) > 50 and not outcomes.get("failed"), result.stdout.str()[-3000:]


def test_the_plugin_is_cheap_to_import():
    """Every pytest run imports it: it must not pull in memdiag's machinery."""
    code = ("import sys; import memdiag.pytest_plugin; "
            "print(sorted(m for m in sys.modules if m.startswith('memdiag')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['memdiag', 'memdiag.pytest_plugin']"
