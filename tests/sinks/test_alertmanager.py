"""Alertmanager sink against Debian's prometheus-alertmanager binary, started on loopback by
the fixture: one alert per finding with a stable fingerprint, endsAt as a lease, resolve."""

from __future__ import annotations

import io
import json
import time
import urllib.request
from datetime import datetime

from sinkkit import FAST, make_doc, make_finding
from peers import problems

from memdiag.delivery import deliver


def alerts(url: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/v2/alerts?active=true&silenced=true&inhibited=true", timeout=5) as r:
        return json.load(r)


def mine(url: str, fp: str) -> list[dict]:
    return [a for a in alerts(url) if a["labels"].get("memdiag_fp") == fp]


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def notified(receiver, fp: str, want: str, wait: float = 15.0) -> list[str]:
    """Statuses of the webhook notifications Alertmanager sent about ``fp`` (waits for ``want``)."""
    deadline = time.monotonic() + wait
    while True:
        statuses = [(r.json or {}).get("status") for r in list(receiver.requests)
                    if any(a["labels"].get("memdiag_fp") == fp for a in (r.json or {}).get("alerts", []))]
        if want in statuses or time.monotonic() > deadline:
            return statuses
        time.sleep(0.2)


def run(doc, registry, cfg):
    return deliver(doc, registry=registry, config_path=cfg, only=None, dry_run=False, stream=io.StringIO())


def test_same_finding_twice_is_one_alert_then_resolved(alertmanager, registry, write_config, state_dir):
    url = alertmanager["url"]
    cfg = write_config([{"name": "am", "type": "alertmanager", "url": url, "ttl": 600, **FAST}])
    f = make_finding("am-balloon", severity="warning")
    assert run(make_doc([f]), registry, cfg).exit_code == 0
    first = mine(url, f["fingerprint"])
    assert run(make_doc([f]), registry, cfg).exit_code == 0
    second = mine(url, f["fingerprint"])
    assert len(first) == 1 and len(second) == 1
    assert first[0]["fingerprint"] == second[0]["fingerprint"], "the label set is the identity"
    alert = second[0]
    assert alert["labels"] == {"alertname": "MemdiagFinding", "finding_id": "am-balloon", "severity": "warning",
                               "instance": "web1", "memdiag_fp": f["fingerprint"]}
    assert alert["annotations"]["summary"] == f["title"]
    assert json.loads(alert["annotations"]["evidence"])["accounting.unaccounted_bytes"].endswith("GiB")
    # endsAt is a lease renewed each run, not Alertmanager's 5-minute resolve_timeout
    lease = ts(alert["endsAt"]) - time.time()
    assert 590 < lease <= 600
    assert ts(alert["startsAt"]) <= time.time()

    receiver = alertmanager["receiver"]
    assert "firing" in notified(receiver, f["fingerprint"], "firing")

    rep = run(make_doc([], rules={"am-balloon": "passed"}), registry, cfg)
    assert rep.exit_code == 0
    assert mine(url, f["fingerprint"]) == []
    assert "resolved" in notified(receiver, f["fingerprint"], "resolved")


def test_severity_change_moves_the_alert(alertmanager, registry, write_config, state_dir):
    url = alertmanager["url"]
    cfg = write_config([{"name": "am", "type": "alertmanager", "url": url, **FAST}])
    f = make_finding("am-slab", severity="warning")
    run(make_doc([f]), registry, cfg)
    run(make_doc([dict(f, severity="critical")]), registry, cfg)
    now = mine(url, f["fingerprint"])
    assert [a["labels"]["severity"] for a in now] == ["critical"]


def test_requests_match_postable_alerts_schema(registry, write_config, state_dir, tmp_path):
    """The dry run prints exactly the body; it validates against the openapi postableAlerts shape."""
    cfg = write_config([{"name": "am", "type": "alertmanager", "url": "http://127.0.0.1:9", **FAST}])
    out = io.StringIO()
    deliver(make_doc([make_finding()]), registry=registry, config_path=cfg, only=None, dry_run=True, stream=out)
    body = json.loads(out.getvalue().strip().splitlines()[-1])
    assert problems("alertmanager-postable-alerts.json", body) == []
