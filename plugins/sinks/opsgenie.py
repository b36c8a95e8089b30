"""Opsgenie Alert API (``POST /v2/alerts``; close by alias). The product is reaching end of
support, so this sink is kept small; the base URL is configurable (EU: api.eu.opsgenie.com).

Only one open alert exists per ``alias`` (the fingerprint): repeat sends fold into it.
Processing is asynchronous: a 202 means accepted, not applied.
"""

from __future__ import annotations

from urllib.parse import quote

from memdiag.delivery.sink import Context, evidence_lines, option, plain_text

DEFAULT_URL = "https://api.opsgenie.com"
PRIORITY = {"critical": "P1", "warning": "P3", "info": "P5"}


class OpsgenieSink:
    style = "alert"
    secret_options = ("api_key",)

    def __init__(self, name: str, options: dict) -> None:
        self.name = name
        self.api_key = option(options, "api_key", str, required=True)
        self.url = option(options, "url", str, DEFAULT_URL).rstrip("/")
        self.responders = option(options, "responders", list, [])
        self.priority = {**PRIORITY, **option(options, "priority", dict, {})}

    def request(self, action: str, finding: dict, ctx: Context) -> tuple[str, dict]:
        fp = finding.get("fingerprint", "")
        if action == "resolve":
            return (f"{self.url}/v2/alerts/{quote(fp, safe='')}/close?identifierType=alias",
                    {"source": "memdiag", "note": f"memdiag no longer finds this on {finding.get('host')}"})
        details = {e.split(": ", 1)[0]: e.split(": ", 1)[-1][:1000] for e in evidence_lines(finding, 30)}
        details.update(rule_id=finding.get("rule_id", ""), confidence=finding.get("confidence", ""),
                       fingerprint=fp)
        body = {
            "message": (("[TEST] " if ctx.test else "") + finding.get("title", ""))[:130],
            "alias": fp,
            "description": plain_text(finding, action)[:15000],
            "details": details,
            "entity": finding.get("host", ""),
            "source": "memdiag",
            "priority": self.priority.get(finding.get("severity", "info"), "P3"),
            "tags": ["memdiag", *finding.get("tags", [])][:20],
        }
        if self.responders:
            body["responders"] = self.responders
        return f"{self.url}/v2/alerts", body

    def deliver(self, action: str, finding: dict | None, ctx: Context) -> str | None:
        assert finding is not None
        url, body = self.request(action, finding, ctx)
        ctx.http.request("POST", url, json=body, headers={"Authorization": f"GenieKey {self.api_key}"},
                         allow=(404,) if action == "resolve" else ())  # closing an alert that is gone is fine
        return finding.get("fingerprint")
