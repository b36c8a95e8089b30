"""The lifecycle engine and its store, with an in-process sink type registered the way a
third-party plugin would: actions per run, repeat policies, outbox coalescing, permissions,
dry runs, the delivery lock, and broken sinks."""

from __future__ import annotations

import io
import stat
import subprocess
import sys

import pytest
from sinkkit import REPO, make_doc, make_finding

from memdiag.delivery import deliver, flush, outbox
from memdiag.delivery.sink import PermanentError, TransientError
from memdiag.delivery.state import Store


class Recorder:
    """A sink type: records (action, rule, severity, remote id seen); fails on demand."""

    calls: list[tuple] = []
    fail: list[Exception] = []

    def __init__(self, name: str, options: dict) -> None:
        self.style = options.get("style", "alert")
        self.secret_options = ()
        self.resend_resolved = options.get("resend_resolved", 0)
        if options.get("broken_factory"):
            raise ValueError("option 'broken_factory' is not supported")

    def deliver(self, action, finding, ctx):
        if Recorder.fail:
            raise Recorder.fail.pop(0)
        Recorder.calls.append((action, finding["rule_id"], finding["severity"], ctx.remote_id, ctx.test))
        return ctx.remote_id or f"R-{finding['rule_id']}"


@pytest.fixture
def rec(registry):
    Recorder.calls, Recorder.fail = [], []
    registry.sinks["recorder"] = Recorder
    return Recorder


def run(doc, registry, cfg, **kw):
    out = io.StringIO()
    rep = deliver(doc, registry=registry, config_path=cfg, only=kw.get("only"), dry_run=kw.get("dry", False),
                  stream=out)
    return rep, out.getvalue()


def test_trigger_update_resolve_with_remote_ids(rec, registry, write_config, state_dir):
    cfg = write_config([{"name": "r", "type": "recorder"}])
    a = make_finding("a")
    run(make_doc([a]), registry, cfg)
    run(make_doc([a]), registry, cfg)
    run(make_doc([]), registry, cfg)
    assert rec.calls == [("trigger", "a", "warning", None, False), ("update", "a", "warning", "R-a", False),
                         ("resolve", "a", "warning", "R-a", False)]
    run(make_doc([a]), registry, cfg)  # a new episode starts without the old remote id
    assert rec.calls[-1] == ("trigger", "a", "warning", None, False)


@pytest.mark.parametrize("repeat,expected", [
    ("always", ["trigger", "update", "update", "update", "resolve"]),
    ("change", ["trigger", "update", "update", "resolve"]),
    ("escalation", ["trigger", "update", "resolve"]),
    ("never", ["trigger", "resolve"]),
])
def test_repeat_policies(repeat, expected, rec, registry, write_config, state_dir):
    cfg = write_config([{"name": "r", "type": "recorder", "repeat": repeat}])
    for sev in ["warning", "warning", "critical", "warning"]:
        run(make_doc([make_finding("a", severity=sev)]), registry, cfg)
    run(make_doc([]), registry, cfg)
    assert [c[0] for c in rec.calls] == expected


def test_chat_style_defaults_to_escalations(rec, registry, write_config, state_dir):
    cfg = write_config([{"name": "r", "type": "recorder", "style": "chat"}])
    for sev in ["warning", "warning", "info", "warning", "critical"]:
        run(make_doc([make_finding("a", severity=sev)]), registry, cfg)
    assert [(c[0], c[2]) for c in rec.calls] == [("trigger", "warning"), ("update", "critical")]


def test_outbox_coalesces_while_down(rec, registry, write_config, state_dir):
    cfg = write_config([{"name": "r", "type": "recorder"}])
    a = make_finding("a")
    for _ in range(5):  # down for five runs: one trigger waits, carrying the newest finding
        rec.fail.append(TransientError("down"))
        run(make_doc([dict(a, message=f"run {_}")]), registry, cfg)
    store = Store.scratch_copy(str(state_dir))
    events = outbox.all_events(store)
    assert [(e.action, e.finding["message"], e.attempts) for e in events] == [("trigger", "run 4", 5)]
    rec.fail.append(TransientError("down"))
    run(make_doc([]), registry, cfg)  # gone while down: trigger, then resolve
    rec.fail.append(TransientError("down"))
    run(make_doc([a]), registry, cfg)  # back while down: the resolve is cancelled
    store = Store.scratch_copy(str(state_dir))
    assert [e.action for e in outbox.all_events(store)] == ["trigger"]
    rep, _ = run(make_doc([a]), registry, cfg)
    assert rep.exit_code == 0
    assert [c[0] for c in rec.calls] == ["trigger"]


def test_permanent_failure_then_resolve_drops_both(rec, registry, write_config, state_dir):
    cfg = write_config([{"name": "r", "type": "recorder", "repeat": "never"}])
    rec.fail.append(PermanentError("HTTP 400: bad field"))
    rep, _ = run(make_doc([make_finding("a")]), registry, cfg)
    assert rep.exit_code == 5 and "HTTP 400: bad field" in rep.lines[0]
    run(make_doc([]), registry, cfg)  # nothing was ever created: nothing to resolve
    assert rec.calls == []
    assert outbox.all_events(Store.scratch_copy(str(state_dir))) == []


def test_events_keep_order_per_finding_after_a_failure(rec, registry, write_config, state_dir):
    cfg = write_config([{"name": "r", "type": "recorder"}])
    rec.fail.append(TransientError("blip"))
    run(make_doc([make_finding("a"), make_finding("b")]), registry, cfg)
    assert [c[1] for c in rec.calls] == ["b"]  # a failed; b was not held up by it
    rep = flush(registry=registry, config_path=cfg)
    assert rep.exit_code == 0 and [c[1] for c in rec.calls] == ["b", "a"]


def test_state_store_is_private(rec, registry, write_config, tmp_path, monkeypatch):
    d = tmp_path / "deep" / "state"
    monkeypatch.setenv("MEMDIAG_STATE_DIR", str(d))
    cfg = write_config([{"name": "r", "type": "recorder"}])
    run(make_doc([make_finding()]), registry, cfg)
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert stat.S_IMODE((d / "delivery.sqlite3").stat().st_mode) == 0o600
    assert stat.S_IMODE((d / "delivery.lock").stat().st_mode) == 0o600


def test_dry_run_changes_nothing(rec, registry, write_config, tmp_path, monkeypatch):
    d = tmp_path / "state"
    monkeypatch.setenv("MEMDIAG_STATE_DIR", str(d))
    cfg = write_config([{"name": "r", "type": "recorder"}])
    rep, out = run(make_doc([make_finding()]), registry, cfg, dry=True)
    assert rep.exit_code == 0 and "--- sink r (recorder): trigger vmware-balloon" in out
    assert not d.exists()
    run(make_doc([make_finding()]), registry, cfg)
    before = (d / "delivery.sqlite3").read_bytes()
    rep, out = run(make_doc([]), registry, cfg, dry=True)
    assert "--- sink r (recorder): resolve vmware-balloon" in out
    assert (d / "delivery.sqlite3").read_bytes() == before


def test_only_named_sinks_and_disabled_ones(rec, registry, write_config, state_dir):
    cfg = write_config([{"name": "on", "type": "recorder"}, {"name": "off", "type": "recorder", "enabled": False}])
    run(make_doc([make_finding("a")]), registry, cfg)
    assert len(rec.calls) == 1
    run(make_doc([make_finding("b")]), registry, cfg, only=["off"])
    assert rec.calls[-1][1] == "b" and len(rec.calls) == 2
    rep, _ = run(make_doc([]), registry, cfg, only=["nope"])
    assert rep.exit_code == 5 and "no sink named 'nope' (configured: on, off)" in rep.lines[0]


def test_broken_sinks_are_reported_not_fatal(rec, registry, write_config, state_dir):
    cfg = write_config([{"name": "bad", "type": "recorder", "broken_factory": True},
                        {"name": "unknown", "type": "carrier-pigeon"},
                        {"name": "good", "type": "recorder"}])
    rep, _ = run(make_doc([make_finding()]), registry, cfg)
    assert rep.exit_code == 5
    assert any("sinks[0] (bad): option 'broken_factory' is not supported" in line for line in rep.lines)
    assert any("unknown sink type 'carrier-pigeon'" in line for line in rep.lines)
    assert len(rec.calls) == 1
    rec.fail.append(KeyError("oops"))  # a bug inside a sink is a failed delivery, not a crash
    rep, _ = run(make_doc([make_finding("z")]), registry, cfg, only=["good"])
    assert rep.exit_code == 5 and "KeyError" in rep.lines[0]


def test_a_second_delivery_waits_for_the_lock(rec, registry, write_config, state_dir):
    cfg = write_config([{"name": "r", "type": "recorder"}], deadline=0.5)
    holder = Store.open(str(state_dir))
    try:
        rep, _ = run(make_doc([make_finding()]), registry, cfg)
    finally:
        holder.close()
    assert rep.exit_code == 5 and "another memdiag is delivering" in rep.lines[0]
    assert rec.calls == []


def test_no_config_and_bad_config(registry, write_config, tmp_path):
    rep = deliver(make_doc([]), registry=registry, config_path=None, only=None, dry_run=False, stream=None)
    assert rep.exit_code == 0 and rep.lines == []
    rep = deliver(make_doc([]), registry=registry, config_path=None, only=["x"], dry_run=False, stream=None)
    assert rep.exit_code == 5 and "--sink needs a configuration file" in rep.lines[0]
    bad = tmp_path / "bad.yaml"
    bad.write_text("sinks: [")
    rep = deliver(make_doc([]), registry=registry, config_path=str(bad), only=None, dry_run=False, stream=None)
    assert rep.exit_code == 5 and rep.lines[0].startswith(f"{bad}:") and "findings not delivered" in rep.lines[0]


def test_plugin_module_import_stays_light():
    code = ("import sys, memdiag.plugins.sinks, memdiag.delivery; "
            "heavy = ['urllib.request', 'http.client', 'ssl', 'sqlite3', 'smtplib', 'email.message', 'jsonschema',"
            " 'yaml', 'socket', 'json']; print([m for m in heavy if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out.strip() == "[]"


def test_resolves_are_resent_for_a_while_where_the_sink_asks(rec, registry, write_config, state_dir, monkeypatch):
    cfg = write_config([{"name": "r", "type": "recorder", "resend_resolved": 300}])
    run(make_doc([make_finding("a")]), registry, cfg)
    for _ in range(3):
        run(make_doc([]), registry, cfg)
    assert [c[0] for c in rec.calls] == ["trigger", "resolve", "resolve", "resolve"]
    import time as _time

    later = _time.time() + 301
    monkeypatch.setattr("memdiag.delivery.engine.time.time", lambda: later)
    run(make_doc([]), registry, cfg)  # past the window: quiet
    assert len(rec.calls) == 4
