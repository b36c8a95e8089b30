"""Microsoft Teams through a Workflows webhook ("When a Teams webhook request is received"),
posting an Adaptive Card 1.4. Office 365 connector URLs (webhook.office.com) are being retired,
so they are refused with a pointer to Workflows.

The URL carries its signature (``sig=``) and is the secret. Teams cannot deduplicate, so this is
a chat sink: new, escalated and resolved only. A 202 means the flow accepted the card.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from memdiag.delivery.sink import Context, evidence_lines, headline, option, update_note

COLOR = {"critical": "Attention", "warning": "Warning", "info": "Default"}


def card(action: str, finding: dict, ctx: Context) -> dict:
    title = headline(finding, action, ctx.test)
    if action == "resolve":
        text = f"Resolved: memdiag no longer finds this on {finding.get('host', '?')}."
    elif action == "update":
        text = f"{update_note(finding, ctx)} {finding.get('message', '')}"
    else:
        text = finding.get("message", "")
    body: list[dict] = [
        {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": True,
         "color": "Good" if action == "resolve" else COLOR.get(finding.get("severity", "info"), "Default")},
        {"type": "TextBlock", "text": text, "wrap": True},
    ]
    facts = [{"title": e.split(": ", 1)[0], "value": e.split(": ", 1)[-1]} for e in evidence_lines(finding)]
    facts.append({"title": "fingerprint", "value": finding.get("fingerprint", "")})
    if action != "resolve":
        body.append({"type": "FactSet", "facts": facts})
        rem = finding.get("remediation") or {}
        if rem.get("steps"):
            body.append({"type": "TextBlock", "text": "Next step: " + rem["steps"].strip(), "wrap": True})
        if rem.get("confirm"):
            body.append({"type": "TextBlock", "text": "Confirm: " + rem["confirm"].strip(), "wrap": True,
                         "fontType": "Monospace"})
    content = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
               "version": "1.4", "body": body}
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": content}]}


class TeamsSink:
    style = "chat"
    secret_options = ("url",)

    def __init__(self, name: str, options: dict) -> None:
        self.name = name
        self.url = option(options, "url", str, required=True)
        host = (urlsplit(self.url).hostname or "").lower()
        if host.endswith("webhook.office.com") or host.endswith("outlook.office.com"):
            raise ValueError("Office 365 connector webhooks are being retired; "
                             "create a Teams Workflows webhook and use its URL")

    def deliver(self, action: str, finding: dict | None, ctx: Context) -> str | None:
        assert finding is not None
        ctx.http.request("POST", self.url, json=card(action, finding, ctx))
        return None
