"""Slack incoming webhook: a message with blocks (header, text, evidence, next step).

The webhook URL is the secret (give it as ``${VAR}`` or ``url_file``). A webhook cannot edit or
deduplicate messages, so this is a chat sink: it posts when a finding is new, escalates or is
resolved. Limits respected: header <= 150 chars, section text <= 3000, <= 50 blocks; ``& < >``
are escaped in mrkdwn.
"""

from __future__ import annotations

from memdiag.delivery.sink import Context, evidence_lines, headline, option, update_note


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def blocks(action: str, finding: dict, ctx: Context) -> dict:
    title = headline(finding, action, ctx.test)
    if action == "resolve":
        text = f"Resolved: memdiag no longer finds this on *{escape(finding.get('host', '?'))}*."
    elif action == "update":
        text = update_note(finding, ctx) + "\n" + escape(finding.get("message", ""))
    else:
        text = escape(finding.get("message", ""))
    out = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, 150)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text or title, 3000)}},
    ]
    ev = evidence_lines(finding)
    if ev and action != "resolve":
        out.append({"type": "section", "text": {"type": "mrkdwn",
                                                "text": _clip("\n".join(f"• {escape(e)}" for e in ev), 3000)}})
    rem = finding.get("remediation") or {}
    if action != "resolve" and (rem.get("steps") or rem.get("confirm")):
        parts = []
        if rem.get("steps"):
            parts.append("*Next step:* " + escape(rem["steps"].strip()))
        if rem.get("confirm"):
            parts.append("*Confirm:* `" + escape(rem["confirm"].strip()) + "`")
        out.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip("\n".join(parts), 3000)}})
    out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(escape(
        f"{finding.get('rule_id')} · {finding.get('confidence')} · fp {finding.get('fingerprint')}"), 3000)}]})
    return {"text": title, "blocks": out[:50]}


class SlackSink:
    style = "chat"
    secret_options = ("url",)

    def __init__(self, name: str, options: dict) -> None:
        self.name = name
        self.url = option(options, "url", str, required=True)

    def deliver(self, action: str, finding: dict | None, ctx: Context) -> str | None:
        assert finding is not None
        ctx.http.request("POST", self.url, json=blocks(action, finding, ctx))
        return None
