"""Rule authoring without pytest: `rules new` scaffolds a rule that validates and passes its own
firing and non-firing tests; `rules test` reports coverage, writes JUnit XML and, with
--warn-as-error, fails on warnings and coverage gaps."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from .helpers import write

PARTIAL = """
    rules:
      - id: tested-both-ways
        title: t
        severity: info
        confidence: likely
        condition: meminfo.MemTotal > 1
        message: m
        remediation: {steps: s}
        tests:
          - {name: fires, facts: {meminfo.MemTotal: 2}, expect: {state: fired}}
          - {name: silent, facts: {meminfo.MemTotal: 0}, expect: {state: passed}}
      - id: only-fires
        title: t
        severity: info
        confidence: likely
        condition: meminfo.MemTotal > 1
        message: m
        remediation: {steps: s}
        tests:
          - {name: fires, facts: {meminfo.MemTotal: 2}, expect: {state: fired}}
          - {name: wrong on purpose, facts: {meminfo.MemTotal: 2}, expect: {state: fired, severity: critical}}
      - id: untested
        title: t
        severity: info
        confidence: likely
        condition: meminfo.MemTotl > 1
        message: m
        remediation: {steps: s}
"""


def test_rules_new_scaffolds_a_working_rule(memdiag, tmp_path):
    r = memdiag("rules", "new", "site-low-memory", cwd=str(tmp_path))
    assert r.code == 0, r.err
    path = tmp_path / "site-low-memory.yaml"
    assert path.is_file() and "wrote site-low-memory.yaml" in r.out
    text = path.read_text()
    assert "id: site-low-memory" in text and "memdiag rules test site-low-memory.yaml" in text
    r = memdiag("rules", "validate", str(path))
    assert r.code == 0 and "1 rule(s) valid, 0 error(s), 0 warning(s)" in r.out, r.out
    r = memdiag("rules", "test", str(path), "--warn-as-error")
    assert r.code == 0, r.out + r.err
    assert "Coverage: 1 of 1 rule(s) have both a firing and a non-firing test" in r.out
    assert "2 passed, 0 failed" in r.out
    # The scaffolded rule works on real evidence too.
    r = memdiag("rules", "show", "site-low-memory", "--rules", str(path))
    assert r.code == 0 and "min_available_ratio = 0.1" in r.out


def test_rules_new_into_a_folder_and_refusals(memdiag, tmp_path):
    r = memdiag("rules", "new", "x-rule", "-o", str(tmp_path))
    assert r.code == 0 and (tmp_path / "x-rule.yaml").is_file()
    before = (tmp_path / "x-rule.yaml").read_text()
    r = memdiag("rules", "new", "x-rule", "-o", str(tmp_path))
    assert r.code == 3 and "already exists; not overwritten" in r.err
    assert (tmp_path / "x-rule.yaml").read_text() == before
    r = memdiag("rules", "new", "Bad_Id", cwd=str(tmp_path))
    assert r.code == 3 and "'Bad_Id' is not a rule id" in r.err
    r = memdiag("rules", "new", cwd=str(tmp_path))
    assert r.code == 3 and "rules new takes one rule id" in r.err


def test_coverage_junit_and_warn_as_error(memdiag, tmp_path):
    rules = write(tmp_path / "partial.yaml", PARTIAL)
    junit = tmp_path / "out" / "junit.xml"
    junit.parent.mkdir()
    r = memdiag("rules", "test", str(rules), "--junit", str(junit))
    assert r.code == 1  # one test fails
    assert "FAIL only-fires: wrong on purpose: expected severity critical, got info" in r.out
    assert "Coverage: 1 of 3 rule(s) have both a firing and a non-firing test" in r.out
    assert f"note: {rules}:12: rule only-fires has no non-firing test" in r.out
    assert f"note: {rules}:22: rule untested has no firing and no non-firing test" in r.out
    assert "unknown fact 'meminfo.MemTotl'; did you mean 'meminfo.MemTotal'?" in r.err
    assert "3 passed, 1 failed" in r.out

    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    [suite] = root.findall("testsuite")
    assert suite.get("name") == str(rules)
    cases = {(c.get("classname"), c.get("name")): c for c in suite.findall("testcase")}
    assert cases[("only-fires", "wrong on purpose")].find("failure").get("message") == "expected severity critical, got info"
    assert cases[("tested-both-ways", "fires")].find("failure") is None
    assert cases[("tested-both-ways", "fires")].get("file") == str(rules)
    assert cases[("untested", "coverage: a firing and a non-firing test")].find("skipped") is not None
    warning = next(c for (cls, name), c in cases.items() if cls == "untested" and name.startswith("rule file:"))
    assert warning.find("skipped").get("type") == "warning"
    assert root.get("tests") == str(len(cases)) == suite.get("tests")
    assert suite.get("failures") == "1" and suite.get("skipped") == "3"

    # --warn-as-error: the gaps and the warning fail too, here and in the XML.
    fixed = write(tmp_path / "fixed.yaml", PARTIAL.replace("severity: critical}}", "severity: info}}"))
    r = memdiag("rules", "test", str(fixed))
    assert r.code == 0, r.out
    r = memdiag("rules", "test", str(fixed), "--warn-as-error", "--junit", str(junit))
    assert r.code == 1
    assert "error: " in r.out and "--warn-as-error: 2 coverage gap(s) and 1 warning(s) fail the run" in r.out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("failures") == "3" and suite.get("skipped") == "0"


def test_rule_file_errors_are_failing_cases_and_exit_4(memdiag, tmp_path):
    bad = write(tmp_path / "bad.yaml", "rules:\n  - id: Bad_Id\n    title: x\n")
    junit = tmp_path / "j.xml"
    r = memdiag("rules", "test", str(bad), "--junit", str(junit))
    assert r.code == 4
    failures = ET.parse(junit).getroot().findall(".//failure")
    assert failures and all(f.get("type") == "error" for f in failures)


def test_junit_to_an_unwritable_place_is_one_line(memdiag, tmp_path):
    rule = tmp_path / "r.yaml"
    memdiag("rules", "new", "r", "-o", str(rule))
    r = memdiag("rules", "test", str(rule), "--junit", str(tmp_path / "missing" / "j.xml"))
    assert r.code == 3 and "cannot write JUnit report" in r.err and "Traceback" not in r.err
