"""The example Prometheus alerting rules for the textfile sink's metrics, checked by promtool:
syntax (check rules) and behaviour (unit tests with input series and expected alerts)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from .helpers import HERE, REPO, memdiag, require_tool

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


# --------------------------------------------------------------------------- rules x real metrics


def textfile_metrics(tmp: Path, root: Path) -> str:
    """What memdiag's textfile sink writes for a host laid out under ``root``."""
    prom_dir, state = tmp / "textfile", tmp / "state"
    prom_dir.mkdir(parents=True)
    config = tmp / "memdiag.yaml"
    config.write_text(f"delivery:\n  state_dir: {state}\nsinks:\n  - name: prometheus\n"
                      f"    type: textfile\n    directory: {prom_dir}\n")
    proc = memdiag("run", "--config", str(config), "--format", "json",
                   env={**os.environ, "MEMDIAG_ROOT": str(root)})
    assert proc.returncode in (0, 1, 2), proc.stderr
    return (prom_dir / "memdiag.prom").read_text()


def as_input_series(text: str, instance: str, minutes: int) -> list[dict]:
    """Samples of a textfile as promtool input series, as if scraped every minute for ``minutes``
    (the run timestamp advancing with the clock, as a timer rewrites it)."""
    series = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, value = line.rsplit(" ", 1)
        name, _, labels = name_labels.partition("{")
        labels = labels.rstrip("}")
        extra = f'instance="{instance}",job="node"'
        full = f"{name}{{{labels + ',' if labels else ''}{extra}}}"
        values = f"0+60x{minutes}" if name == "memdiag_last_run_timestamp_seconds" else f"{value}x{minutes}"
        series.append({"series": full, "values": values})
    return series


def test_rules_fire_on_what_the_textfile_sink_writes(tmp_path):
    """The real sink's file for two captured hosts, fed to the rules: the critical guest pages,
    the warning guest warns after 30 minutes, nothing says memdiag is broken or stale."""
    hosts = HERE / "hosts"
    critical = textfile_metrics(tmp_path / "critical", hosts / "balloon-critical")
    warning = textfile_metrics(tmp_path / "warning", hosts / "vmware-guest")
    lint = subprocess.run([require_tool("promtool"), "check", "metrics"], input=critical, capture_output=True,
                          text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    def active(text: str) -> list[tuple[str, str]]:
        """(finding_id, severity) of each memdiag_finding_active sample, fingerprint checked."""
        found = re.findall(r'^memdiag_finding_active\{finding_id="([^"]+)",severity="([^"]+)",fingerprint="[0-9a-f]{16}"\} 1$',
                           text, re.M)
        assert len(found) == text.count("\nmemdiag_finding_active{")
        return found

    on_critical, on_warning = active(critical), active(warning)
    assert ("vmware-balloon", "critical") in on_critical and ("vmware-balloon", "warning") in on_warning

    def alert(finding_id: str, severity: str, instance: str) -> dict:
        return {
            "exp_labels": {"severity": severity, "instance": instance, "finding_id": finding_id},
            "exp_annotations": {
                "summary": f"memdiag: {finding_id} ({severity}) on {instance}",
                "description": (
                    f"memdiag found {finding_id} on {instance}. On the host, `memdiag explain {finding_id}` "
                    "shows the evidence and `memdiag --format markdown` a report to paste into the incident."
                    if severity == "critical" else
                    f"memdiag has reported {finding_id} on {instance} for 30 minutes. On the host, "
                    f"`memdiag explain {finding_id}` shows the evidence."),
            },
        }

    def expected(severity: str) -> list[dict]:
        return [alert(fid, sev, inst) for inst, found in (("esx-guest-17:9100", on_critical),
                                                         ("centos74-app01:9100", on_warning))
                for fid, sev in found if sev == severity]

    tests = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": as_input_series(critical, "esx-guest-17:9100", 60)
            + as_input_series(warning, "centos74-app01:9100", 60),
            "alert_rule_test": [
                {"eval_time": "4m", "alertname": "MemdiagCriticalFinding", "exp_alerts": []},
                {"eval_time": "10m", "alertname": "MemdiagCriticalFinding", "exp_alerts": expected("critical")},
                {"eval_time": "20m", "alertname": "MemdiagWarningFinding", "exp_alerts": []},
                {"eval_time": "31m", "alertname": "MemdiagWarningFinding", "exp_alerts": expected("warning")},
                *({"eval_time": "59m", "alertname": name, "exp_alerts": []}
                  for name in ("MemdiagRunFailing", "MemdiagStale", "MemdiagMissing", "MemdiagDeliveryBacklog")),
            ],
            "promql_expr_test": [{
                "expr": 'memdiag:hosts_with_finding:count{finding_id="vmware-balloon"}',
                "eval_time": "5m",
                "exp_samples": [
                    {"labels": 'memdiag:hosts_with_finding:count{finding_id="vmware-balloon",severity="critical"}',
                     "value": 1},
                    {"labels": 'memdiag:hosts_with_finding:count{finding_id="vmware-balloon",severity="warning"}',
                     "value": 1},
                ],
            }],
        }],
    }
    test_file = tmp_path / "real.test.yml"
    test_file.write_text(json.dumps(tests))  # JSON is YAML
    proc = promtool("test", "rules", str(test_file))
    assert proc.returncode == 0, proc.stdout + proc.stderr
