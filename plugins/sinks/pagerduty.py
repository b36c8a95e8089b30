"""PagerDuty Events API v2 (``POST /v2/enqueue``): trigger and resolve by ``dedup_key``.

The dedup key is the finding's fingerprint, so re-sending a trigger every run updates the open
alert instead of paging again, and a resolve closes it. The routing key travels in the body, so
it is registered as a secret and masked in dry runs and messages.
"""

from __future__ import annotations

from memdiag.delivery.sink import Context, PermanentError, evidence_lines, headline, option

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"


class PagerDutySink:
    style = "alert"
    secret_options = ("routing_key",)

    def __init__(self, name: str, options: dict) -> None:
        self.name = name
        self.routing_key = option(options, "routing_key", str, required=True)
        self.url = option(options, "url", str, DEFAULT_URL)
        self.component = option(options, "component", str, "memory")
        self.group = option(options, "group", str)
        self.links = option(options, "links", list, [])

    def event(self, action: str, finding: dict, ctx: Context) -> dict:
        fp = finding.get("fingerprint", "")
        if action == "resolve":
            return {"routing_key": self.routing_key, "dedup_key": fp, "event_action": "resolve"}
        rem = finding.get("remediation") or {}
        details = {
            "message": finding.get("message", ""),
            "confidence": finding.get("confidence", ""),
            "evidence": evidence_lines(finding, 30),
            "remediation": rem.get("steps", ""),
            "confirm": rem.get("confirm", ""),
            "rule_id": finding.get("rule_id", ""),
            "first_seen": ctx.first_seen,
        }
        payload = {
            "summary": headline(finding, action, ctx.test)[:1024],
            "source": finding.get("host", "unknown"),
            "severity": finding.get("severity", "info"),
            "timestamp": finding.get("time"),
            "component": self.component,
            "class": finding.get("rule_id", ""),
            "custom_details": details,
        }
        if self.group:
            payload["group"] = self.group
        links = [{"href": r["url"], "text": r.get("title") or r["url"]}
                 for r in finding.get("references") or () if r.get("url")]
        links += [dict(link) for link in self.links]
        event = {"routing_key": self.routing_key, "event_action": "trigger", "dedup_key": fp,
                 "client": "memdiag", "payload": payload}
        if links:
            event["links"] = links
        return event

    def deliver(self, action: str, finding: dict | None, ctx: Context) -> str | None:
        assert finding is not None
        resp = ctx.http.request("POST", self.url, json=self.event(action, finding, ctx),
                                dry_result={"status": "success", "dedup_key": finding.get("fingerprint")})
        body = resp.json() or {}
        if isinstance(body, dict) and body.get("status") not in (None, "success"):
            raise PermanentError(f"PagerDuty refused the event: {body.get('message', body.get('status'))}")
        return finding.get("fingerprint")
