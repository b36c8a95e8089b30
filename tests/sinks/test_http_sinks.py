"""Every HTTP sink against a local recording server that plays the vendor's API and validates
each request against the documented shape (tests/sinks/schemas/)."""

from __future__ import annotations

import io

import pytest
from sinkkit import FAST, make_doc, make_finding
from vendors import Chat, GitHub, Jira, Opsgenie, PagerDuty, ServiceNow, Webhook

from memdiag.delivery import deliver

PD_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"  # 32 characters, like a real integration key


def run(doc, registry, cfg, **kw):
    out = io.StringIO()
    rep = deliver(doc, registry=registry, config_path=cfg, only=kw.get("only"), dry_run=kw.get("dry", False),
                  stream=out)
    return rep, out.getvalue()


def test_pagerduty_trigger_twice_then_resolve(serve, registry, write_config, state_dir, monkeypatch):
    pd = PagerDuty(PD_KEY)
    srv = serve(pd)
    monkeypatch.setenv("PD_KEY", PD_KEY)
    cfg = write_config([{"name": "pd", "type": "pagerduty", "routing_key": "${PD_KEY}",
                         "url": f"{srv.url}/v2/enqueue", **FAST}])
    f = make_finding(severity="critical")
    for _ in range(2):
        rep, _ = run(make_doc([f]), registry, cfg)
        assert rep.exit_code == 0, rep.lines
    assert srv.violations == []
    alert = pd.alerts[f["fingerprint"]]
    assert alert["opened"] == 1 and alert["updates"] == 1 and alert["status"] == "triggered"
    rep, _ = run(make_doc([], rules={"vmware-balloon": "passed"}), registry, cfg)
    assert rep.exit_code == 0
    assert pd.alerts[f["fingerprint"]]["status"] == "resolved"
    assert [e["event_action"] for e in pd.events] == ["trigger", "trigger", "resolve"]
    assert pd.events[0]["payload"]["severity"] == "critical" and pd.events[0]["client"] == "memdiag"


def test_skipped_rule_does_not_resolve(serve, registry, write_config, state_dir, monkeypatch):
    pd = PagerDuty(PD_KEY)
    srv = serve(pd)
    monkeypatch.setenv("PD_KEY", PD_KEY)
    cfg = write_config([{"name": "pd", "type": "pagerduty", "routing_key": "${PD_KEY}",
                         "url": f"{srv.url}/v2/enqueue", **FAST}])
    f = make_finding()
    run(make_doc([f]), registry, cfg)
    run(make_doc([], rules={"vmware-balloon": "skipped"}), registry, cfg)  # facts missing: unknown
    assert pd.alerts[f["fingerprint"]]["status"] == "triggered"
    run(make_doc([], rules={"vmware-balloon": "passed"}), registry, cfg)
    assert pd.alerts[f["fingerprint"]]["status"] == "resolved"


def test_pagerduty_wrong_key_is_permanent_and_reported(serve, registry, write_config, state_dir, monkeypatch):
    srv = serve(PagerDuty(PD_KEY))
    monkeypatch.setenv("PD_KEY", "X" * 32)
    cfg = write_config([{"name": "pd", "type": "pagerduty", "routing_key": "${PD_KEY}",
                         "url": f"{srv.url}/v2/enqueue", **FAST}])
    rep, _ = run(make_doc([make_finding()]), registry, cfg)
    assert rep.exit_code == 5
    assert len(rep.lines) == 1 and "HTTP 400" in rep.lines[0] and "sink pd (pagerduty)" in rep.lines[0]
    assert len(srv.requests) == 1  # a 400 is never retried


def test_opsgenie_alias_lifecycle(serve, registry, write_config, state_dir, monkeypatch):
    og = Opsgenie("og-key-123456")
    srv = serve(og)
    monkeypatch.setenv("OG_KEY", "og-key-123456")
    cfg = write_config([{"name": "og", "type": "opsgenie", "api_key": "${OG_KEY}", "url": srv.url, **FAST}])
    f = make_finding(severity="critical")
    run(make_doc([f]), registry, cfg)
    run(make_doc([f]), registry, cfg)
    assert og.alerts[f["fingerprint"]] == {"status": "open", "count": 2, "message": f["title"]}
    rep, _ = run(make_doc([]), registry, cfg)
    assert rep.exit_code == 0 and og.alerts[f["fingerprint"]]["status"] == "closed"
    assert srv.violations == []


@pytest.mark.parametrize("kind,path", [("slack", "/services/T000/B000/XXXX"), ("teams", "/workflows/abc/invoke"),
                                       ("mattermost", "/hooks/abc123")])
def test_chat_posts_only_new_escalated_resolved(kind, path, serve, registry, write_config, state_dir, monkeypatch):
    chat = Chat(kind, path)
    srv = serve(chat)
    monkeypatch.setenv("CHAT_URL", srv.url + path)
    cfg = write_config([{"name": "chat", "type": kind, "url": "${CHAT_URL}", **FAST}])
    f = make_finding(severity="warning")
    for _ in range(3):
        assert run(make_doc([f]), registry, cfg)[0].exit_code == 0
    assert len(chat.posts) == 1  # still present: nothing more to say
    run(make_doc([make_finding(severity="info")]), registry, cfg)  # de-escalation: silent
    assert len(chat.posts) == 1
    run(make_doc([make_finding(severity="critical")]), registry, cfg)  # escalated
    assert len(chat.posts) == 2
    run(make_doc([]), registry, cfg)  # resolved
    assert len(chat.posts) == 3
    assert srv.violations == []
    text = str(chat.posts[2])
    assert "RESOLVED" in text
    assert "Escalated from" in str(chat.posts[1])


def test_webhook_signed_and_idempotent_ids(serve, registry, write_config, state_dir, monkeypatch):
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    wh = Webhook(secret)
    srv = serve(wh)
    monkeypatch.setenv("WH_SECRET", secret)
    cfg = write_config([{"name": "wh", "type": "webhook", "url": f"{srv.url}/hook", "secret": "${WH_SECRET}", **FAST}])
    f = make_finding()
    # the first answer is lost after processing: the retry must carry the same webhook-id
    srv.inject("process-then-drop")
    rep, _ = run(make_doc([f]), registry, cfg)
    assert rep.exit_code == 0, rep.lines
    assert len(wh.ids) == 2 and wh.ids[0] == wh.ids[1]
    assert len(wh.events) == 1 and wh.events[0]["data"]["action"] == "trigger"
    run(make_doc([make_finding(severity="critical")]), registry, cfg)  # change -> update
    run(make_doc([]), registry, cfg)
    assert [e["data"]["action"] for e in wh.events] == ["trigger", "update", "resolve"]
    assert srv.violations == []


def _jira_cfg(srv, flavor):
    base = {"name": "jira", "type": "jira", "url": srv.url, "project": "OPS", "token": "${JIRA_TOKEN}", **FAST}
    if flavor == "cloud":
        base["email"] = "oncall@example.org"
    else:
        base["flavor"] = "datacenter"
    return base


@pytest.mark.parametrize("flavor", ["cloud", "datacenter"])
def test_jira_find_before_create_comment_transition(flavor, serve, registry, write_config, state_dir, monkeypatch):
    jira = Jira(flavor, email="oncall@example.org", token="jira-token-abc123")
    srv = serve(jira)
    monkeypatch.setenv("JIRA_TOKEN", "jira-token-abc123")
    cfg = write_config([_jira_cfg(srv, flavor)])
    f = make_finding()
    run(make_doc([f]), registry, cfg)
    run(make_doc([f]), registry, cfg)  # still present, same severity: nothing
    assert len(jira.issues) == 1 and jira.issues["OPS-1"]["comments"] == []
    assert f"memdiag-fp-{f['fingerprint']}" in jira.issues["OPS-1"]["labels"]
    run(make_doc([make_finding(severity="critical")]), registry, cfg)  # severity changed: a comment
    assert len(jira.issues["OPS-1"]["comments"]) == 1
    rep, _ = run(make_doc([]), registry, cfg)
    assert rep.exit_code == 0
    assert jira.issues["OPS-1"]["status"] == "Done" and len(jira.issues["OPS-1"]["comments"]) == 2
    assert srv.violations == []
    # the same finding comes back: a new issue (the old one is closed)
    run(make_doc([f]), registry, cfg)
    assert len(jira.open_issues()) == 1 and jira.open_issues()[0]["key"] == "OPS-2"


def test_jira_adopts_an_existing_issue_when_state_is_lost(serve, registry, write_config, tmp_path, monkeypatch):
    jira = Jira("cloud", email="oncall@example.org", token="jira-token-abc123")
    srv = serve(jira)
    monkeypatch.setenv("JIRA_TOKEN", "jira-token-abc123")
    cfg = write_config([_jira_cfg(srv, "cloud")])
    f = make_finding()
    monkeypatch.setenv("MEMDIAG_STATE_DIR", str(tmp_path / "a"))
    run(make_doc([f]), registry, cfg)
    monkeypatch.setenv("MEMDIAG_STATE_DIR", str(tmp_path / "b"))  # a wiped state store
    run(make_doc([f]), registry, cfg)
    assert len(jira.issues) == 1
    run(make_doc([]), registry, cfg)
    assert jira.issues["OPS-1"]["status"] == "Done"


def test_jira_unknown_transition_is_a_clear_permanent_error(serve, registry, write_config, state_dir, monkeypatch):
    jira = Jira("cloud", email="oncall@example.org", token="jira-token-abc123")
    srv = serve(jira)
    monkeypatch.setenv("JIRA_TOKEN", "jira-token-abc123")
    cfg = write_config([{**_jira_cfg(srv, "cloud"), "done_transition": "Closed"}])
    run(make_doc([make_finding()]), registry, cfg)
    rep, _ = run(make_doc([]), registry, cfg)
    assert rep.exit_code == 5
    assert "no transition named 'Closed' (available: Done, In Progress, To Do)" in rep.lines[0]


def test_servicenow_table_lookup_notes_resolve(serve, registry, write_config, state_dir, monkeypatch):
    sn = ServiceNow(username="memdiag", password="sn-password-xyz")
    srv = serve(sn)
    monkeypatch.setenv("SN_PW", "sn-password-xyz")
    cfg = write_config([{"name": "sn", "type": "servicenow", "url": srv.url, "username": "memdiag",
                         "password": "${SN_PW}", **FAST}])
    f = make_finding(severity="critical")
    run(make_doc([f]), registry, cfg)
    run(make_doc([f]), registry, cfg)
    assert len(sn.records) == 1
    rec = next(iter(sn.records.values()))
    assert rec["correlation_id"] == f"memdiag:{f['fingerprint']}" and rec["urgency"] == "1"
    run(make_doc([make_finding(severity="warning")]), registry, cfg)
    assert len(rec["notes"]) == 1
    run(make_doc([]), registry, cfg)
    assert rec["active"] is False and rec["close_code"] == "Solved (Permanently)"
    assert srv.violations == []


def test_servicenow_event_management(serve, registry, write_config, state_dir, monkeypatch):
    sn = ServiceNow(token="sn-oauth-token-1")
    srv = serve(sn)
    monkeypatch.setenv("SN_TOKEN", "sn-oauth-token-1")
    cfg = write_config([{"name": "em", "type": "servicenow", "mode": "event", "url": srv.url,
                         "token": "${SN_TOKEN}", **FAST}])
    f = make_finding(severity="critical")
    run(make_doc([f]), registry, cfg)
    run(make_doc([]), registry, cfg)
    assert [e["severity"] for e in sn.events] == ["1", "0"]
    assert {e["message_key"] for e in sn.events} == {f"memdiag:{f['fingerprint']}"}
    assert srv.violations == []


def test_github_issue_lifecycle_skips_pull_requests(serve, registry, write_config, state_dir, monkeypatch):
    gh = GitHub("acme/ops", "ghp_testtoken123")
    srv = serve(gh)
    monkeypatch.setenv("GH_TOKEN", "ghp_testtoken123")
    cfg = write_config([{"name": "gh", "type": "github", "repo": "acme/ops", "api_url": srv.url,
                         "token": "${GH_TOKEN}", "labels": ["oncall"], **FAST}])
    f = make_finding()
    run(make_doc([f]), registry, cfg)
    run(make_doc([f]), registry, cfg)
    assert len(gh.issues) == 1
    issue = gh.issues[1]
    assert set(issue["labels"]) == {"memdiag", f"memdiag-fp-{f['fingerprint']}", "oncall"}
    assert f"<!-- memdiag-fp: {f['fingerprint']} -->" in issue["body"]
    run(make_doc([]), registry, cfg)
    assert issue["state"] == "closed" and len(issue["comments"]) == 1
    assert srv.violations == []


def test_filters_by_severity_tags_and_suppression(serve, registry, write_config, state_dir, monkeypatch):
    pd = PagerDuty(PD_KEY)
    srv = serve(pd)
    monkeypatch.setenv("PD_KEY", PD_KEY)
    cfg = write_config([{"name": "pd", "type": "pagerduty", "routing_key": "${PD_KEY}", "min_severity": "critical",
                         "tags": ["balloon", "slab"], "exclude_tags": ["noisy"], "url": f"{srv.url}/v2/enqueue",
                         **FAST}])
    keep = make_finding("vmware-balloon", severity="critical")
    docs = [keep,
            make_finding("low-one", severity="warning"),
            make_finding("other-tag", severity="critical", tags=["zfs"]),
            make_finding("noisy-one", severity="critical", tags=["balloon", "noisy"]),
            make_finding("suppressed-one", severity="critical", suppressed={"reason": "known", "by": "site.yaml"})]
    run(make_doc(docs), registry, cfg)
    assert set(pd.alerts) == {keep["fingerprint"]}


def test_other_hosts_findings_are_not_resolved(serve, registry, write_config, state_dir, monkeypatch):
    pd = PagerDuty(PD_KEY)
    srv = serve(pd)
    monkeypatch.setenv("PD_KEY", PD_KEY)
    cfg = write_config([{"name": "pd", "type": "pagerduty", "routing_key": "${PD_KEY}",
                         "url": f"{srv.url}/v2/enqueue", **FAST}])
    a, b = make_finding(host="web1"), make_finding(host="db7")
    run(make_doc([a], host="web1"), registry, cfg)
    run(make_doc([b], host="db7"), registry, cfg)  # analyzing another host's capture
    assert pd.alerts[a["fingerprint"]]["status"] == "triggered"
    assert pd.alerts[b["fingerprint"]]["status"] == "triggered"


def test_teams_refuses_retired_office365_connectors(registry, write_config, state_dir, monkeypatch):
    monkeypatch.setenv("TEAMS_URL", "https://contoso.webhook.office.com/webhookb2/abc/IncomingWebhook/def/ghi")
    cfg = write_config([{"name": "teams", "type": "teams", "url": "${TEAMS_URL}", **FAST}])
    rep, _ = run(make_doc([make_finding()]), registry, cfg)
    assert rep.exit_code == 5 and "create a Teams Workflows webhook" in rep.lines[0]
    assert "IncomingWebhook" not in rep.lines[0]


def test_https_with_a_private_ca(tls_cert, registry, write_config, state_dir, monkeypatch):
    from peers import RecordingServer

    cert, server_tls = tls_cert
    pd = PagerDuty(PD_KEY)
    srv = RecordingServer(pd, tls=server_tls).start()
    monkeypatch.setenv("PD_KEY", PD_KEY)
    try:
        trusted = write_config([{"name": "pd", "type": "pagerduty", "routing_key": "${PD_KEY}",
                                 "url": f"{srv.url}/v2/enqueue", "ca_file": cert, **FAST}], name="ok.yaml")
        untrusted = write_config([{"name": "pd2", "type": "pagerduty", "routing_key": "${PD_KEY}",
                                   "url": f"{srv.url}/v2/enqueue", **FAST}], name="bad.yaml")
        assert srv.url.startswith("https://")
        rep, _ = run(make_doc([make_finding()]), registry, untrusted)
        assert rep.exit_code == 5 and "TLS certificate not trusted" in rep.lines[0]
        rep, _ = run(make_doc([make_finding()]), registry, trusted)
        assert rep.exit_code == 0, rep.lines
    finally:
        srv.stop()
    assert len(pd.events) == 1
