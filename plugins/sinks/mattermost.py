"""Mattermost incoming webhook (``POST /hooks/<key>``): Markdown text with a coloured,
Slack-style attachment. The URL is the secret. Chat sink: new, escalated and resolved only.
"""

from __future__ import annotations

from memdiag.delivery.sink import Context, evidence_lines, headline, option, update_note

COLOR = {"critical": "#d00000", "warning": "#e0a000", "info": "#2070d0"}


def message(action: str, finding: dict, ctx: Context, channel: str | None, username: str | None,
            icon_url: str | None) -> dict:
    title = headline(finding, action, ctx.test)
    if action == "resolve":
        text = f"#### {title}\nResolved: memdiag no longer finds this on **{finding.get('host', '?')}**."
        attach = []
    else:
        lead = update_note(finding, ctx) + "\n" if action == "update" else ""
        text = f"#### {title}\n{lead}{finding.get('message', '')}"
        rem = finding.get("remediation") or {}
        fields = [{"short": True, "title": e.split(": ", 1)[0], "value": e.split(": ", 1)[-1]}
                  for e in evidence_lines(finding)]
        attach = [{
            "fallback": title,
            "color": COLOR.get(finding.get("severity", "info"), "#808080"),
            "fields": fields,
            "text": "\n".join(filter(None, [
                ("**Next step:** " + rem["steps"].strip()) if rem.get("steps") else "",
                ("**Confirm:** `" + rem["confirm"].strip() + "`") if rem.get("confirm") else "",
            ])),
            "footer": f"memdiag · {finding.get('rule_id')} · fp {finding.get('fingerprint')}",
        }]
    body: dict = {"text": text}
    if attach:
        body["attachments"] = attach
    if channel:
        body["channel"] = channel
    if username:
        body["username"] = username
    if icon_url:
        body["icon_url"] = icon_url
    return body


class MattermostSink:
    style = "chat"
    secret_options = ("url",)

    def __init__(self, name: str, options: dict) -> None:
        self.name = name
        self.url = option(options, "url", str, required=True)
        self.channel = option(options, "channel", str)
        self.username = option(options, "username", str)
        self.icon_url = option(options, "icon_url", str)

    def deliver(self, action: str, finding: dict | None, ctx: Context) -> str | None:
        assert finding is not None
        ctx.http.request("POST", self.url,
                         json=message(action, finding, ctx, self.channel, self.username, self.icon_url))
        return None
