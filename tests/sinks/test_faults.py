"""Faults: endpoint down, 500, 429 with Retry-After, accept-and-never-answer, slow DNS, lost
answers to creates, and a process killed between create and state write. Nothing is lost and
nothing is duplicated; 100 runs with faults leave exactly one ticket per finding."""

from __future__ import annotations

import io
import json
import os
import random
import socket
import subprocess
import sys
import time

import pytest
from sinkkit import FAST, make_doc, make_finding
from peers import RecordingServer, SilentListener, free_port, refused_url
from vendors import Jira, PagerDuty

from memdiag.delivery import deliver, flush

PD_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"
HERE = os.path.dirname(__file__)


def run(doc, registry, cfg):
    return deliver(doc, registry=registry, config_path=cfg, only=None, dry_run=False, stream=io.StringIO())


def pending(state_dir) -> list[tuple]:
    import sqlite3

    with sqlite3.connect(state_dir / "delivery.sqlite3") as c:
        return c.execute("SELECT sink, action, status, attempts, last_error FROM outbox ORDER BY id").fetchall()


@pytest.fixture
def pd_env(monkeypatch):
    monkeypatch.setenv("PD_KEY", PD_KEY)


def pd_sink(url, **extra):
    return {"name": "pd", "type": "pagerduty", "routing_key": "${PD_KEY}", "url": f"{url}/v2/enqueue", **FAST, **extra}


def test_endpoint_down_keeps_events_then_delivers_in_order(registry, write_config, state_dir, pd_env):
    url = refused_url()
    port = int(url.rsplit(":", 1)[1])
    cfg = write_config([pd_sink(url)])
    f = make_finding()
    rep = run(make_doc([f]), registry, cfg)
    assert rep.exit_code == 5
    assert "connection refused" in rep.lines[0] and "kept in the outbox" in rep.lines[0]
    rep = run(make_doc([]), registry, cfg)  # gone while still down: trigger then resolve wait
    assert [(p[1], p[2]) for p in pending(state_dir)] == [("trigger", "pending"), ("resolve", "pending")]
    pd = PagerDuty(PD_KEY)
    srv = RecordingServer(pd, port=port).start()
    try:
        rep = flush(registry=registry, config_path=cfg)
        assert rep.exit_code == 0, rep.lines
    finally:
        srv.stop()
    assert [e["event_action"] for e in pd.events] == ["trigger", "resolve"]
    assert pending(state_dir) == []


def test_500_is_retried_within_the_run(serve, registry, write_config, state_dir, pd_env):
    pd = PagerDuty(PD_KEY)
    srv = serve(pd)
    srv.inject("status", status=500, times=2)
    cfg = write_config([pd_sink(srv.url)])
    rep = run(make_doc([make_finding()]), registry, cfg)
    assert rep.exit_code == 0, rep.lines
    assert len(srv.requests) == 3 and len(pd.events) == 1


def test_429_retry_after_is_honoured(serve, registry, write_config, state_dir, pd_env):
    pd = PagerDuty(PD_KEY)
    srv = serve(pd)
    srv.inject("status", status=429, retry_after="1")
    cfg = write_config([pd_sink(srv.url)])
    rep = run(make_doc([make_finding()]), registry, cfg)
    assert rep.exit_code == 0, rep.lines
    gap = srv.requests[1].at - srv.requests[0].at
    assert gap >= 0.95, f"retried after {gap:.2f} s despite Retry-After: 1"


def test_429_retry_after_beyond_deadline_gives_up_at_once(serve, registry, write_config, state_dir, pd_env):
    srv = serve(PagerDuty(PD_KEY))
    srv.inject("status", status=429, retry_after="120")
    cfg = write_config([pd_sink(srv.url)])
    t0 = time.monotonic()
    rep = run(make_doc([make_finding()]), registry, cfg)
    assert time.monotonic() - t0 < 10  # not 120 s: it does not wait when the wait cannot fit
    assert rep.exit_code == 5 and "Retry-After 120 s is beyond the deadline" in rep.lines[0]
    assert len(pending(state_dir)) == 1


def test_4xx_is_not_retried_and_kept_as_failed(serve, registry, write_config, state_dir, pd_env):
    srv = serve(PagerDuty(PD_KEY))
    srv.inject("status", status=403, times=10)
    cfg = write_config([pd_sink(srv.url)])
    rep = run(make_doc([make_finding()]), registry, cfg)
    assert rep.exit_code == 5 and len(srv.requests) == 1
    assert pending(state_dir)[0][2] == "failed"
    rep = run(make_doc([make_finding()]), registry, cfg)  # a run leaves failed events alone...
    assert len(srv.requests) == 2  # (the still-present finding's update folds into it and retries once)
    srv.clear_faults()
    assert flush(registry=registry, config_path=cfg).exit_code == 0  # ...flush retries them
    assert pending(state_dir) == []


def test_accept_and_never_answer_is_cut_at_the_deadline(registry, write_config, state_dir, pd_env):
    silent = SilentListener()
    try:
        cfg = write_config([pd_sink(silent.url, deadline=1.0, read_timeout=10, retries=3)])
        t0 = time.monotonic()
        rep = run(make_doc([make_finding()]), registry, cfg)
        elapsed = time.monotonic() - t0
    finally:
        silent.close()
    # without the deadline, 4 attempts x 10 s read timeout; the margin absorbs a loaded machine
    assert elapsed < 5, f"took {elapsed:.2f} s with a 1 s deadline"
    assert rep.exit_code == 5 and "deadline" in rep.lines[0]
    assert len(pending(state_dir)) == 1


def test_slow_dns_is_cut_at_the_deadline(registry, write_config, state_dir, pd_env, monkeypatch):
    real = socket.getaddrinfo

    def slow(host, *a, **kw):
        if host == "slow-dns.invalid":
            time.sleep(15)
        return real(host, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    cfg = write_config([pd_sink("http://slow-dns.invalid:9", deadline=0.8)])
    t0 = time.monotonic()
    rep = run(make_doc([make_finding()]), registry, cfg)
    assert time.monotonic() - t0 < 5  # the resolver alone would take 15 s
    assert rep.exit_code == 5 and "no answer within the sink's deadline (0.8 s)" in rep.lines[0]


def test_a_sink_failure_never_blocks_the_others(serve, registry, write_config, state_dir, pd_env):
    pd = PagerDuty(PD_KEY)
    srv = serve(pd)
    silent = SilentListener()
    try:
        cfg = write_config([{**pd_sink(silent.url, deadline=1.0), "name": "dead"}, pd_sink(srv.url)])
        rep = run(make_doc([make_finding()]), registry, cfg)
    finally:
        silent.close()
    assert rep.exit_code == 5 and len(rep.lines) == 1 and "sink dead" in rep.lines[0]
    assert len(pd.events) == 1


def _jira(serve_or_port, **kw):
    return Jira("cloud", email="oncall@example.org", token="jira-token-abc123", **kw)


def _jira_cfg(url, **extra):
    return {"name": "jira", "type": "jira", "url": url, "project": "OPS", "email": "oncall@example.org",
            "token": "${JIRA_TOKEN}", "search_settle": 0, **FAST, **extra}


@pytest.mark.parametrize("fault", ["process-then-drop", "process-then-status", "process-then-hang"])
def test_lost_answer_to_a_create_never_duplicates(fault, serve, registry, write_config, state_dir, monkeypatch):
    monkeypatch.setenv("JIRA_TOKEN", "jira-token-abc123")
    jira = _jira(None)
    srv = serve(jira)
    srv.inject(fault, when=lambda r: r.method == "POST" and r.path.endswith("/issue"))
    cfg = write_config([_jira_cfg(srv.url, deadline=1.0)])
    f = make_finding()
    run(make_doc([f]), registry, cfg)
    run(make_doc([f]), registry, cfg)
    assert len(jira.issues) == 1
    assert pending(state_dir) == []
    run(make_doc([]), registry, cfg)
    assert jira.issues["OPS-1"]["status"] == "Done"


def test_eventually_consistent_search_waits_instead_of_creating_twice(serve, registry, write_config, state_dir,
                                                                      monkeypatch):
    monkeypatch.setenv("JIRA_TOKEN", "jira-token-abc123")
    jira = _jira(None, search_lag=1.0)  # a new issue shows in search only after 1 s
    srv = serve(jira)
    srv.inject("process-then-drop", when=lambda r: r.method == "POST" and r.path.endswith("/issue"))
    cfg = write_config([_jira_cfg(srv.url, search_settle=1.5)])
    f = make_finding()
    assert run(make_doc([f]), registry, cfg).exit_code == 5
    rep = run(make_doc([f]), registry, cfg)  # at once: search does not show it yet, and must not create
    assert rep.exit_code == 5 and "waiting" in rep.lines[0]
    time.sleep(1.1)
    assert run(make_doc([f]), registry, cfg).exit_code == 0  # the search shows it now: adopted
    assert len(jira.issues) == 1


def _crash(point: str, doc: dict, cfg: str, tmp_path) -> int:
    path = tmp_path / f"doc-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(doc))
    proc = subprocess.run([sys.executable, os.path.join(HERE, "crash_driver.py"), point, str(path), cfg],
                          capture_output=True, timeout=60, env=os.environ.copy())
    return proc.returncode


@pytest.mark.parametrize("point", ["after-send", "before-send"])
def test_crash_between_create_and_state_write(point, serve, registry, write_config, state_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("JIRA_TOKEN", "jira-token-abc123")
    jira = _jira(None)
    srv = serve(jira)
    cfg = write_config([_jira_cfg(srv.url)])
    f = make_finding()
    assert _crash(point, make_doc([f]), cfg, tmp_path) == 137
    assert len(jira.issues) == (1 if point == "after-send" else 0)
    assert [p[1] for p in pending(state_dir)] == ["trigger"]  # the event survived the crash
    assert run(make_doc([f]), registry, cfg).exit_code == 0
    assert len(jira.issues) == 1 and pending(state_dir) == []
    run(make_doc([]), registry, cfg)
    assert jira.issues["OPS-1"]["status"] == "Done"


class Flaky:
    """One endpoint on a fixed port that can be down (closed port) or up with faults."""

    def __init__(self, app) -> None:
        self.app, self.port, self.srv = app, free_port(), None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> RecordingServer:
        if self.srv is None:
            for _ in range(50):
                try:
                    self.srv = RecordingServer(self.app, port=self.port).start()
                    break
                except OSError:
                    time.sleep(0.05)
        return self.srv

    def down(self) -> None:
        if self.srv is not None:
            self.srv.stop()
            self.srv = None


def test_100_runs_with_faults_one_ticket_per_finding(registry, write_config, state_dir, monkeypatch, tmp_path):
    """The acceptance test: 100 runs with faults injected at random (seeded), then the endpoint
    comes back; every finding has exactly one ticket and everything was delivered."""
    monkeypatch.setenv("JIRA_TOKEN", "jira-token-abc123")
    rng = random.Random(20240501)
    jira = _jira(None)
    ep = Flaky(jira)
    cfg = write_config([_jira_cfg(ep.url, deadline=0.6, connect_timeout=0.3, read_timeout=0.3, retries=1)])
    stable = [make_finding(f"rule-{i}", severity=rng.choice(["warning", "critical"])) for i in range(3)]
    late = make_finding("late-rule")  # appears at run 30
    leaving = make_finding("leaving-rule")  # gone from run 60 on: its ticket must be closed
    faults = ["none", "none", "down", "status-500", "status-429", "drop", "process-then-drop",
              "process-then-status", "process-then-hang", "crash"]
    counts: dict[str, int] = {}
    t0 = time.monotonic()
    for i in range(100):
        findings = [dict(f, severity=rng.choice(["warning", "critical"])) for f in stable]
        if i >= 30:
            findings.append(late)
        if i < 60:
            findings.append(leaving)
        doc = make_doc(findings)
        fault = rng.choice(faults)
        counts[fault] = counts.get(fault, 0) + 1
        if fault == "down":
            ep.down()
        else:
            srv = ep.up()
            srv.clear_faults()
            if fault.startswith("status-"):
                code = int(fault.split("-")[1])
                srv.inject("status", status=code, retry_after="0" if code == 429 else None, times=3)
            elif fault in ("drop", "process-then-drop", "process-then-status", "process-then-hang"):
                kind = "status" if fault == "drop" else fault
                srv.inject(kind, status=502, times=2, when=lambda r: r.method == "POST")
        if fault == "crash":
            _crash(rng.choice(["after-send", "before-send"]), doc, cfg, tmp_path)
        else:
            run(doc, registry, cfg)
    elapsed = time.monotonic() - t0
    srv = ep.up()
    srv.clear_faults()
    final = make_doc([*stable, late])
    rep = run(final, registry, cfg)
    ep.down()
    assert rep.exit_code == 0, rep.lines
    assert pending(state_dir) == []
    labels = [lab for issue in jira.issues.values() for lab in issue["labels"] if lab.startswith("memdiag-fp-")]
    assert sorted(labels) == sorted(f"memdiag-fp-{f['fingerprint']}" for f in [*stable, late, leaving]), \
        "every finding has exactly one ticket"
    open_fps = {lab for i in jira.open_issues() for lab in i["labels"] if lab.startswith("memdiag-fp-")}
    assert open_fps == {f"memdiag-fp-{f['fingerprint']}" for f in [*stable, late]}
    print(f"\n100 fault runs in {elapsed:.1f} s; faults: {dict(sorted(counts.items()))}")
