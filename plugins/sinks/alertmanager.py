"""Prometheus Alertmanager, API v2 (``POST /api/v2/alerts``).

Labels are the alert's identity, so they hold only stable things (alert name, rule id, severity,
instance, fingerprint); measured values go in annotations, which the latest send overwrites.
``endsAt`` is a lease (``ttl``, default 30 min) renewed every run: without it Alertmanager would
resolve a one-shot CLI's alert after its ``resolve_timeout``. A resolve re-posts the same labels
with ``endsAt`` = now, and is repeated for ``resend_resolved`` seconds (default 300) so a restarted Alertmanager
still hears it. When a finding's severity changes, the alert under the old severity label is
resolved in the same request.
"""

from __future__ import annotations

import json
import time

from memdiag.delivery.sink import Context, evidence_lines, option, parse_time, rfc3339


class AlertmanagerSink:
    style = "alert"
    secret_options = ("password", "token")

    def __init__(self, name: str, options: dict) -> None:
        self.name = name
        self.url = option(options, "url", str, required=True).rstrip("/")
        self.ttl = option(options, "ttl", float, 1800.0)
        self.alertname = option(options, "alertname", str, "MemdiagFinding")
        self.labels = option(options, "labels", dict, {})
        self.generator_url = option(options, "generator_url", str)
        self.resend_resolved = option(options, "resend_resolved", float, 300.0)
        self.username = option(options, "username", str)
        self.password = option(options, "password", str)
        self.token = option(options, "token", str)
        if self.ttl <= 0:
            raise ValueError("option 'ttl' must be positive")

    def _labels(self, finding: dict, severity: str) -> dict[str, str]:
        return {
            **{str(k): str(v) for k, v in self.labels.items()},
            "alertname": self.alertname,
            "finding_id": finding.get("rule_id", ""),
            "severity": severity,
            "instance": finding.get("host", ""),
            "memdiag_fp": finding.get("fingerprint", ""),
        }

    def alerts(self, action: str, finding: dict, ctx: Context, now: float) -> list[dict]:
        severity = finding.get("severity", "info")
        starts = parse_time(ctx.first_seen) or parse_time(finding.get("time")) or now
        if action == "resolve":
            ends = max(now, starts + 0.001)
        else:
            ends = now + self.ttl
        rem = finding.get("remediation") or {}
        annotations = {
            "summary": ("[TEST] " if ctx.test else "") + finding.get("title", ""),
            "description": finding.get("message", ""),
            "confidence": finding.get("confidence", ""),
            "evidence": json.dumps({e.split(": ", 1)[0]: e.split(": ", 1)[-1] for e in evidence_lines(finding, 30)},
                                   ensure_ascii=False),
        }
        if rem.get("steps"):
            annotations["remediation"] = rem["steps"].strip()
        if rem.get("confirm"):
            annotations["confirm"] = rem["confirm"].strip()
        alert = {"labels": self._labels(finding, severity), "annotations": annotations,
                 "startsAt": rfc3339(starts, millis=True), "endsAt": rfc3339(ends, millis=True)}
        if self.generator_url:
            alert["generatorURL"] = self.generator_url
        out = [alert]
        previous = ctx.previous_severity
        if action == "update" and previous and previous != severity:
            out.append({"labels": self._labels(finding, previous), "annotations": annotations,
                        "startsAt": alert["startsAt"], "endsAt": rfc3339(max(now, starts + 0.001), millis=True)})
        return out

    def deliver(self, action: str, finding: dict | None, ctx: Context) -> str | None:
        assert finding is not None
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        elif self.username and self.password:
            import base64

            headers["Authorization"] = "Basic " + base64.b64encode(
                f"{self.username}:{self.password}".encode()).decode()
        ctx.http.request("POST", f"{self.url}/api/v2/alerts", headers=headers,
                         json=self.alerts(action, finding, ctx, time.time()))
        return None
