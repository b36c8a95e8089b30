"""ServiceNow: incidents through the Table API (``mode: table``, the default) or events through
Event Management (``mode: event``), which deduplicates on the server by ``message_key``.

Table API: ``correlation_id`` (``memdiag:<fp>``) is not unique on the server, so the sink looks
up an active record with it before creating; repeats add work notes; a resolve sets the
resolved state (``resolved_state``, default "6") with ``close_code`` and ``close_notes``.
Event Management: severities 1 Critical, 4 Warning, 5 Info, and 0 Clear for a resolve.
"""

from __future__ import annotations

import json
import time
from urllib.parse import quote, urlencode

from memdiag.delivery.sink import Context, PermanentError, evidence_lines, headline, option, plain_text
from memdiag.delivery.ticket import TicketSink, resolved_text

URGENCY = {"critical": "1", "warning": "2", "info": "3"}
EM_SEVERITY = {"critical": "1", "warning": "4", "info": "5"}


class ServiceNowSink(TicketSink):
    secret_options = ("password", "token")

    def __init__(self, name: str, options: dict) -> None:
        self.name = name
        self.url = option(options, "url", str, required=True).rstrip("/")
        self.mode = option(options, "mode", str, "table")
        if self.mode not in ("table", "event"):
            raise ValueError("option 'mode' must be table or event")
        self.style = "ticket" if self.mode == "table" else "alert"
        self.table = option(options, "table", str, "incident")
        self.username = option(options, "username", str)
        self.password = option(options, "password", str)
        self.token = option(options, "token", str)
        self.assignment_group = option(options, "assignment_group", str)
        self.caller_id = option(options, "caller_id", str)
        self.resolved_state = option(options, "resolved_state", str, "6")
        self.close_code = option(options, "close_code", str, "Solved (Permanently)")
        self.close_notes = option(options, "close_notes", str, "memdiag no longer finds this condition.")
        self.event_type = option(options, "event_type", str, "Memory")
        if self.username and not self.password:
            raise ValueError("'username' needs 'password' (as ${VAR} or password_file)")

    def _headers(self) -> dict[str, str]:
        h = {"Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        elif self.username:
            import base64

            h["Authorization"] = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return h

    @staticmethod
    def correlation(finding: dict) -> str:
        return f"memdiag:{finding.get('fingerprint', '')}"

    # -- Event Management --------------------------------------------------------------------

    def event(self, action: str, finding: dict, ctx: Context) -> dict:
        evidence = {e.split(": ", 1)[0]: e.split(": ", 1)[-1] for e in evidence_lines(finding, 30)}
        record = {
            "source": "memdiag",
            "node": finding.get("host", ""),
            "type": self.event_type,
            "resource": "memory",
            "metric_name": finding.get("rule_id", ""),
            "message_key": self.correlation(finding),
            "severity": "0" if action == "resolve" else EM_SEVERITY.get(finding.get("severity", "info"), "5"),
            "description": headline(finding, action, ctx.test) + "\n" + finding.get("message", ""),
            "additional_info": json.dumps({"evidence": evidence, "confidence": finding.get("confidence"),
                                           "fingerprint": finding.get("fingerprint")}, ensure_ascii=False),
            "time_of_event": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        }
        if action == "resolve":
            record["resolution_state"] = "Closing"
        return {"records": [record]}

    # -- Table API ---------------------------------------------------------------------------

    def lookup(self, finding: dict, ctx: Context) -> str | None:
        query = urlencode({"sysparm_query": f"correlation_id={self.correlation(finding)}^active=true",
                           "sysparm_fields": "sys_id,number", "sysparm_limit": "1"})
        resp = ctx.http.request("GET", f"{self.url}/api/now/table/{self.table}?{query}", headers=self._headers(),
                                dry_result={"result": []})
        result = (resp.json() or {}).get("result") or []
        return result[0].get("sys_id") if result else None

    def create(self, finding: dict, ctx: Context) -> str:
        sev = finding.get("severity", "info")
        body = {
            "short_description": headline(finding, "trigger", ctx.test)[:160],
            "description": plain_text(finding, "trigger"),
            "correlation_id": self.correlation(finding),
            "correlation_display": "memdiag",
            "urgency": URGENCY.get(sev, "3"),
            "impact": URGENCY.get(sev, "3"),
        }
        if self.assignment_group:
            body["assignment_group"] = self.assignment_group
        if self.caller_id:
            body["caller_id"] = self.caller_id
        resp = ctx.http.request("POST", f"{self.url}/api/now/table/{self.table}", headers=self._headers(),
                                json=body, idempotent=False, dry_result={"result": {"sys_id": "dry-run"}})
        sys_id = ((resp.json() or {}).get("result") or {}).get("sys_id")
        if not sys_id:
            raise PermanentError(f"ServiceNow answered {resp.status} without a sys_id")
        return sys_id

    def _patch(self, remote_id: str, body: dict, ctx: Context) -> bool:
        resp = ctx.http.request("PATCH", f"{self.url}/api/now/table/{self.table}/{quote(remote_id)}",
                                headers=self._headers(), json=body, allow=(404,))
        return resp.status != 404

    def comment(self, remote_id: str, text: str, finding: dict, ctx: Context) -> bool:
        return self._patch(remote_id, {"work_notes": text}, ctx)

    def close(self, remote_id: str, finding: dict, ctx: Context) -> None:
        self._patch(remote_id, {"state": self.resolved_state, "close_code": self.close_code,
                                "close_notes": self.close_notes, "work_notes": resolved_text(finding, ctx)}, ctx)

    def deliver(self, action: str, finding: dict | None, ctx: Context) -> str | None:
        assert finding is not None
        if self.mode == "event":
            ctx.http.request("POST", f"{self.url}/api/global/em/jsonv2", headers=self._headers(),
                             json=self.event(action, finding, ctx))
            return self.correlation(finding)
        return super().deliver(action, finding, ctx)
