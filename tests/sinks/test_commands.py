"""``memdiag flush``, ``memdiag sinks status`` and ``memdiag sinks test NAME`` through the real
command line, and ``--dry-run`` printing exactly what would be sent."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

from sinkkit import FAST, REPO, make_doc, make_finding
from peers import RecordingServer, free_port, problems
from vendors import PagerDuty

from memdiag.delivery import deliver

PD_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"


def memdiag(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memdiag", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **env}, timeout=60)


def test_status_flush_and_test_commands(registry, write_config, state_dir, monkeypatch):
    monkeypatch.setenv("PD_KEY", PD_KEY)
    port = free_port()
    cfg = write_config([{"name": "pd", "type": "pagerduty", "routing_key": "${PD_KEY}",
                         "url": f"http://127.0.0.1:{port}/v2/enqueue", **FAST}])
    env = {"PD_KEY": PD_KEY, "MEMDIAG_STATE_DIR": str(state_dir)}
    rep = deliver(make_doc([make_finding()]), registry=registry, config_path=cfg, only=None, dry_run=False,
                  stream=None)
    assert rep.exit_code == 5  # endpoint down
    proc = memdiag("sinks", "status", "--config", cfg, env=env)
    assert proc.returncode == 5, proc.stderr
    assert "pd    pagerduty  1     1        0       POST http://127.0.0.1" in proc.stdout
    assert "#1 pd trigger vmware-balloon" in proc.stdout and "connection refused" in proc.stdout

    pd = PagerDuty(PD_KEY)
    srv = RecordingServer(pd, port=port).start()
    try:
        proc = memdiag("flush", "--config", cfg, env=env)
        assert proc.returncode == 0, proc.stderr
        assert "1 event(s) delivered, 0 left in the outbox" in proc.stderr
        proc = memdiag("sinks", "status", "--config", cfg, env=env)
        assert proc.returncode == 0 and "Undelivered" not in proc.stdout
        proc = memdiag("sinks", "test", "pd", "--config", cfg, env=env)
        assert proc.returncode == 0, proc.stderr
        assert "sent a test event to pd (pagerduty)" in proc.stderr
    finally:
        srv.stop()
    test_events = pd.events[1:]
    assert [e["event_action"] for e in test_events] == ["trigger", "resolve"]  # nothing left open
    assert test_events[0]["payload"]["summary"].startswith("[memdiag][TEST]")
    assert srv.violations == []

    proc = memdiag("sinks", "test", "nope", "--config", cfg, env=env)
    assert proc.returncode == 3 and "no sink named 'nope'" in proc.stderr
    proc = memdiag("sinks", "test", "--config", cfg, env=env)
    assert proc.returncode == 3 and "name the sink" in proc.stderr


def test_sinks_test_reports_failure(write_config, state_dir):
    port = free_port()
    cfg = write_config([{"name": "pd", "type": "pagerduty", "routing_key": "${PD_KEY}",
                         "url": f"http://127.0.0.1:{port}/v2/enqueue", **FAST}])
    proc = memdiag("sinks", "test", "pd", "--config", cfg, env={"PD_KEY": PD_KEY, "MEMDIAG_STATE_DIR": str(state_dir)})
    assert proc.returncode == 5
    assert proc.stderr.strip().splitlines()[-1].startswith("memdiag: sink pd (pagerduty): POST http://127.0.0.1")


def test_dry_run_prints_exactly_what_would_be_sent(registry, write_config, state_dir, monkeypatch):
    monkeypatch.setenv("PD_KEY", PD_KEY)
    cfg = write_config([{"name": "pd", "type": "pagerduty", "routing_key": "${PD_KEY}", **FAST}])
    out = io.StringIO()
    f = make_finding(severity="critical")
    rep = deliver(make_doc([f]), registry=registry, config_path=cfg, only=None, dry_run=True, stream=out)
    assert rep.exit_code == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == f"--- sink pd (pagerduty): trigger vmware-balloon [{f['fingerprint']}]"
    assert lines[1] == "POST https://events.pagerduty.com/v2/enqueue"
    body = json.loads(lines[-1])
    assert body["routing_key"] == "***" and body["dedup_key"] == f["fingerprint"]
    body["routing_key"] = PD_KEY  # with the key put back, it is a valid Events v2 event
    assert problems("pagerduty-events-v2.json", body) == []
    assert PD_KEY not in out.getvalue()


def test_run_through_the_cli_delivers_after_the_report(write_config, state_dir, tmp_path):
    """`memdiag run` prints the diagnosis, then delivers; the textfile appears either way."""
    out_dir = tmp_path / "prom"
    out_dir.mkdir()
    cfg = write_config([{"name": "prom", "type": "textfile", "directory": str(out_dir)},
                        {"name": "pd", "type": "pagerduty", "routing_key": "${PD_KEY}",
                         "url": f"http://127.0.0.1:{free_port()}/v2/enqueue", **FAST}])
    proc = memdiag("run", "--config", cfg, "--format", "json", env={"PD_KEY": PD_KEY,
                                                                   "MEMDIAG_STATE_DIR": str(state_dir)})
    doc = json.loads(proc.stdout)  # the report is complete and first, whatever delivery did
    assert doc["schema_version"] == 1
    assert (out_dir / "memdiag.prom").exists()
    verdict_code = {"ok": 0, "info": 0, "warning": 1, "critical": 2}[doc["verdict"]["severity"]]
    if doc["findings"]:  # pagerduty is down: 5 is added, so the verdict still shows
        assert proc.returncode == 5 + verdict_code and "sink pd (pagerduty)" in proc.stderr
    else:
        assert proc.returncode == verdict_code
