"""Email sink against a real SMTP server (aiosmtpd, in process) with STARTTLS and AUTH:
stable Message-ID, threading of repeats, Auto-Submitted, retry on 4xx, refusal on 5xx."""

from __future__ import annotations

import email
import email.policy
import io

import pytest
from sinkkit import FAST, make_doc, make_finding

from memdiag.delivery import deliver


def run(doc, registry, cfg):
    return deliver(doc, registry=registry, config_path=cfg, only=None, dry_run=False, stream=io.StringIO())


@pytest.fixture
def mail_cfg(smtp_server, write_config, monkeypatch):
    monkeypatch.setenv("SMTP_PASSWORD", "smtp-secret-pw-4711")
    smtp_server["handler"].messages.clear()

    def make(**extra) -> str:
        entry = {"name": "mail", "type": "email", "host": smtp_server["host"], "port": smtp_server["port"],
                 "security": "starttls", "username": "memdiag", "password": "${SMTP_PASSWORD}",
                 "from": "memdiag@example.org", "to": ["oncall@example.org", "ops@example.org"],
                 "ca_file": smtp_server["ca_file"], **FAST, **extra}
        return write_config([entry])
    return make


def parsed(handler) -> list[email.message.Message]:
    return [email.message_from_bytes(m["data"], policy=email.policy.default) for m in handler.messages]


def test_threaded_mail_over_starttls(smtp_server, mail_cfg, registry, state_dir):
    cfg = mail_cfg()
    handler = smtp_server["handler"]
    f = make_finding(severity="warning")
    assert run(make_doc([f]), registry, cfg).exit_code == 0
    assert run(make_doc([f]), registry, cfg).exit_code == 0  # still present: no second mail
    assert len(handler.messages) == 1
    first = parsed(handler)[0]
    assert handler.messages[0]["tls"] and handler.messages[0]["auth"]
    assert handler.messages[0]["to"] == ["oncall@example.org", "ops@example.org"]
    assert first["Auto-Submitted"] == "auto-generated"
    assert first["Subject"] == f"[memdiag][WARN][web1] {f['title']}"
    root = first["Message-ID"]
    assert root.startswith(f"<memdiag.{f['fingerprint']}.")
    run(make_doc([dict(f, severity="critical")]), registry, cfg)  # escalated: a reply in the thread
    run(make_doc([]), registry, cfg)  # resolved: another reply
    msgs = parsed(handler)
    assert len(msgs) == 3
    for reply in msgs[1:]:
        assert reply["In-Reply-To"] == root and reply["References"] == root
        assert reply["Message-ID"] != root and reply["Subject"].startswith("Re: ")
    assert "Escalated from warning to critical" in msgs[1].get_content()
    assert "Resolved" in msgs[2].get_content()


def test_4xx_is_retried_with_the_same_message_id(smtp_server, mail_cfg, registry, state_dir):
    cfg = mail_cfg()
    handler = smtp_server["handler"]
    handler.reject_next = ["451 4.3.0 try again later"]
    f = make_finding("mail-retry")
    rep = run(make_doc([f]), registry, cfg)
    assert rep.exit_code == 5 and "451" in rep.lines[0]
    assert run(make_doc([f]), registry, cfg).exit_code == 0
    assert len(handler.messages) == 1
    assert parsed(handler)[0]["Message-ID"].startswith(f"<memdiag.{f['fingerprint']}.")


def test_5xx_is_permanent(smtp_server, mail_cfg, registry, state_dir):
    cfg = mail_cfg()
    smtp_server["handler"].reject_next = ["554 5.7.1 rejected by policy"]
    rep = run(make_doc([make_finding("mail-refused")]), registry, cfg)
    assert rep.exit_code == 5 and "554" in rep.lines[0]
    import sqlite3

    with sqlite3.connect(state_dir / "delivery.sqlite3") as c:
        assert c.execute("SELECT status FROM outbox").fetchall() == [("failed",)]


def test_untrusted_certificate_is_refused(smtp_server, mail_cfg, registry, state_dir, write_config):
    cfg = mail_cfg(ca_file=None)
    rep = run(make_doc([make_finding("mail-tls")]), registry, cfg)
    assert rep.exit_code == 5 and "certificate" in rep.lines[0]
    assert smtp_server["handler"].messages == []


def test_wrong_password_is_refused(smtp_server, mail_cfg, registry, state_dir, monkeypatch):
    cfg = mail_cfg()
    monkeypatch.setenv("SMTP_PASSWORD", "wrong-password")
    rep = run(make_doc([make_finding("mail-auth")]), registry, cfg)
    assert rep.exit_code == 5 and "login refused" in rep.lines[0]
    assert "wrong-password" not in rep.lines[0]
