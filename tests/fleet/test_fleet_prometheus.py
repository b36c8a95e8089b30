"""The example Prometheus alerting rules for the textfile sink's metrics, checked by promtool:
syntax (check rules) and behaviour (unit tests with input series and expected alerts)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .helpers import HERE, REPO, require_tool

RULES = REPO / "examples" / "prometheus" / "memdiag-alerts.yml"
UNIT_TESTS = HERE / "prometheus" / "memdiag-alerts.test.yml"


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([require_tool("promtool"), *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_rules_are_valid():
    proc = promtool("check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 8 rules found" in proc.stdout


def test_rules_behave_as_documented():
    proc = promtool("test", "rules", UNIT_TESTS.name, cwd=UNIT_TESTS.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_unit_tests_catch_a_changed_rule(tmp_path):
    """The unit tests have teeth: shortening the warning's `for` makes them fail."""
    rules = RULES.read_text()
    assert rules.count("for: 30m") == 1
    (tmp_path / "examples" / "prometheus").mkdir(parents=True)
    (tmp_path / "examples" / "prometheus" / RULES.name).write_text(rules.replace("for: 30m", "for: 10m"))
    tests_dir = tmp_path / "tests" / "fleet" / "prometheus"
    tests_dir.mkdir(parents=True)
    shutil.copy(UNIT_TESTS, tests_dir)
    proc = promtool("test", "rules", UNIT_TESTS.name, cwd=tests_dir)
    assert proc.returncode != 0
    assert "alertname: MemdiagWarningFinding, time: 20m" in proc.stdout + proc.stderr
