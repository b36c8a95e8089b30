"""Secrets never appear in stdout, stderr, logs, the outbox or the state store — even when a
server echoes the request (credentials included) back in its error messages."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import subprocess
import sys

import pytest
from sinkkit import FAST, REPO, make_doc, make_finding
from peers import Reply, refused_url

from memdiag.delivery import deliver, flush
from memdiag.errors import UsageError

SECRETS = {
    "PD_KEY": "PDsecretKEY0123456789abcdefABCDE",
    "GH_TOKEN": "ghp_SECRETgithubTOKEN000111222333",
    "SLACK_URL_PATH": "T0SECRET/B0SECRET/slackSECRETpath99",
    "OG_KEY": "opsgenie-SECRET-key-5555",
    "SN_PASSWORD": "servicenow-SECRET-pw-6666",
    "AM_PASSWORD": "alertmanager-SECRET-pw-7777",
    "SMTP_PASSWORD": "smtp-SECRET-pw-8888",
}
JIRA_TOKEN = "jira-SECRET-token-9999"
WH_SECRET = "whsec_" + base64.b64encode(b"webhook-SECRET-key-000").decode()


def forbidden() -> list[str]:
    values = list(SECRETS.values()) + [JIRA_TOKEN, WH_SECRET, WH_SECRET[len("whsec_"):]]
    values += [base64.b64encode(f"{u}:{p}".encode()).decode() for u, p in [
        ("oncall@example.org", JIRA_TOKEN), ("memdiag", SECRETS["SN_PASSWORD"]), ("memdiag", SECRETS["AM_PASSWORD"])]]
    return values


def echo(req) -> Reply:
    """A careless server: its error message repeats the request, headers and body included."""
    text = json.dumps({"you_sent": {"path": req.path, "query": req.query, "headers": req.headers,
                                    "body": req.body.decode("utf-8", "replace")}})
    return Reply(401 if "atlassian" in req.path or "incident" in req.path else 500, text)


@pytest.fixture
def secret_config(serve, write_config, tmp_path, monkeypatch):
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    (tmp_path / "jira.token").write_text(JIRA_TOKEN + "\n")
    (tmp_path / "wh.secret").write_text(WH_SECRET)
    srv = serve(echo)
    u = srv.url
    fast = dict(FAST, retries=0)
    return write_config([
        {"name": "pd", "type": "pagerduty", "routing_key": "${PD_KEY}", "url": f"{u}/v2/enqueue", **fast},
        {"name": "jira", "type": "jira", "url": f"{u}/atlassian", "project": "OPS", "email": "oncall@example.org",
         "token_file": str(tmp_path / "jira.token"), **fast},
        {"name": "gh", "type": "github", "repo": "acme/ops", "api_url": u, "token": "${GH_TOKEN}", **fast},
        {"name": "slack", "type": "slack", "url": u + "/services/${SLACK_URL_PATH}", **fast},
        {"name": "og", "type": "opsgenie", "url": u, "api_key": "${OG_KEY}", **fast},
        {"name": "sn", "type": "servicenow", "url": u, "username": "memdiag", "password": "${SN_PASSWORD}", **fast},
        {"name": "am", "type": "alertmanager", "url": u, "username": "memdiag", "password": "${AM_PASSWORD}", **fast},
        {"name": "wh", "type": "webhook", "url": f"{u}/hook", "secret_file": str(tmp_path / "wh.secret"), **fast},
        {"name": "mail", "type": "email", "host": "127.0.0.1", "port": int(refused_url().rsplit(":", 1)[1]),
         "username": "memdiag", "password": "${SMTP_PASSWORD}", "from": "m@example.org", "to": "o@example.org",
         **fast},
    ])


def assert_clean(where: str, text: str) -> None:
    for secret in forbidden():
        assert secret not in text, f"a secret leaked into {where}"


def test_no_secret_in_output_logs_outbox_or_state(secret_config, registry, state_dir, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    out = io.StringIO()
    doc = make_doc([make_finding(severity="critical")])
    reports = [deliver(doc, registry=registry, config_path=secret_config, only=None, dry_run=False, stream=out),
               deliver(doc, registry=registry, config_path=secret_config, only=None, dry_run=True, stream=out),
               deliver(make_doc([]), registry=registry, config_path=secret_config, only=None, dry_run=False,
                       stream=out),
               flush(registry=registry, config_path=secret_config, stream=out)]
    lines = "\n".join(line for r in reports for line in r.lines)
    assert reports[0].exit_code == 5 and len(reports[0].lines) == 9  # every sink failed, each said so
    assert "HTTP 500" in lines and "you_sent" in lines  # the echo did reach the messages, masked
    assert_clean("report lines", lines)
    assert_clean("dry-run output", out.getvalue())
    assert "Authorization: Basic ***" in out.getvalue() and '"routing_key":"***"' in out.getvalue()
    assert_clean("logs", caplog.text)
    captured = capsys.readouterr()
    assert_clean("stdout", captured.out)
    assert_clean("stderr", captured.err)
    stored = b"".join(p.read_bytes() for p in state_dir.iterdir() if p.is_file())
    assert b"vmware-balloon" in stored or b"trigger" in stored  # the outbox does hold the events...
    assert_clean("state store", stored.decode("utf-8", "replace"))  # ...but never a secret


def test_no_secret_through_the_cli(secret_config, state_dir):
    env = {**os.environ, "MEMDIAG_STATE_DIR": str(state_dir), **SECRETS}
    commands = [
        ["sinks", "test", "jira", "--config", secret_config, "--debug"],
        ["sinks", "test", "pd", "--config", secret_config, "--dry-run"],
        ["flush", "--config", secret_config, "--debug"],
        ["sinks", "status", "--config", secret_config],
    ]
    for args in commands:
        proc = subprocess.run([sys.executable, "-m", "memdiag", *args], capture_output=True, text=True, env=env,
                              cwd=REPO, timeout=60)
        assert "Traceback" not in proc.stderr, proc.stderr
        assert_clean(f"stdout of memdiag {' '.join(args[:2])}", proc.stdout)
        assert_clean(f"stderr of memdiag {' '.join(args[:2])}", proc.stderr)
    assert proc.returncode in (0, 5)


def test_literal_credentials_are_refused(write_config):
    from memdiag.delivery.config import load_config

    cfg = write_config([{"name": "pd", "type": "pagerduty", "routing_key": "literal-key-in-the-file"}])
    with pytest.raises(UsageError) as err:
        load_config(cfg)
    assert "'routing_key' is a secret; give it as ${VAR} or routing_key_file" in str(err.value)
    assert "literal-key-in-the-file" not in str(err.value)


def test_literal_chat_url_is_refused_by_the_sink(write_config, registry, state_dir):
    cfg = write_config([{"name": "slack", "type": "slack", "url": "https://hooks.slack.com/services/T/B/hookSECRETxyz"}])
    rep = deliver(make_doc([make_finding()]), registry=registry, config_path=cfg, only=None, dry_run=False,
                  stream=None)
    assert rep.exit_code == 5 and "'url' is a secret" in rep.lines[0] and "hookSECRETxyz" not in rep.lines[0]


def test_missing_variable_names_the_variable_only(write_config, monkeypatch):
    from memdiag.delivery.config import load_config

    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    cfg = write_config([{"name": "pd", "type": "pagerduty", "routing_key": "${NOT_SET_ANYWHERE}"}])
    with pytest.raises(UsageError, match="needs environment variable NOT_SET_ANYWHERE, which is not set"):
        load_config(cfg)
