"""Jira: Cloud (REST v3, descriptions in Atlassian Document Format, Basic email:API-token) and
Data Center (REST v2, wiki text, Bearer personal access token).

Each issue carries the labels ``memdiag`` and ``memdiag-fp-<fingerprint>``; before creating,
the sink searches ``labels = "memdiag-fp-<fp>" AND statusCategory != Done`` (Cloud's
``/search/jql``; the old ``/search`` answers 410 there). Repeats add a comment; a resolve adds a
comment and applies the transition named by ``done_transition`` (default "Done"), since
transition ids differ per workflow.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from memdiag.delivery.sink import Context, PermanentError, evidence_lines, headline, option, plain_text
from memdiag.delivery.ticket import TicketSink, resolved_text


def adf(text: str, code: list[str] | None = None) -> dict:
    """A minimal ADF document: one paragraph per text block, evidence as a code block."""
    content: list[dict] = []
    for block in text.split("\n\n"):
        if block.strip():
            content.append({"type": "paragraph", "content": [{"type": "text", "text": block.strip()}]})
    if code:
        content.append({"type": "codeBlock", "content": [{"type": "text", "text": "\n".join(code)}]})
    return {"type": "doc", "version": 1, "content": content or [{"type": "paragraph", "content": []}]}


class JiraSink(TicketSink):
    secret_options = ("token",)

    def __init__(self, name: str, options: dict) -> None:
        self.name = name
        self.url = option(options, "url", str, required=True).rstrip("/")
        self.flavor = option(options, "flavor", str, "cloud")
        if self.flavor not in ("cloud", "datacenter"):
            raise ValueError("option 'flavor' must be cloud or datacenter")
        self.project = option(options, "project", str, required=True)
        self.issue_type = option(options, "issue_type", str, "Task")
        self.email = option(options, "email", str)
        self.token = option(options, "token", str)
        self.labels = [str(x) for x in option(options, "labels", list, [])]
        self.done = option(options, "done_transition", str, "Done")
        self.priority = option(options, "priority", dict, {})
        self.search_settle = option(options, "search_settle", float, 60.0 if self.flavor == "cloud" else 5.0)
        if self.flavor == "cloud" and self.token and not self.email:
            raise ValueError("Jira Cloud needs 'email' with the API token")
        self.api = f"{self.url}/rest/api/{'3' if self.flavor == 'cloud' else '2'}"

    # -- requests ----------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        h = {"Accept": "application/json"}
        if self.token:
            if self.flavor == "cloud":
                import base64

                h["Authorization"] = "Basic " + base64.b64encode(f"{self.email}:{self.token}".encode()).decode()
            else:
                h["Authorization"] = f"Bearer {self.token}"
        return h

    def _doc(self, text: str, code: list[str] | None = None):
        if self.flavor == "cloud":
            return adf(text, code)
        return text + ("\n{noformat}\n" + "\n".join(code) + "\n{noformat}" if code else "")

    @staticmethod
    def fp_label(finding: dict) -> str:
        return f"memdiag-fp-{finding.get('fingerprint', '')}"

    # -- lifecycle ---------------------------------------------------------------------------

    def lookup(self, finding: dict, ctx: Context) -> str | None:
        jql = (f'project = "{self.project}" AND labels = "{self.fp_label(finding)}" '
               "AND statusCategory != Done ORDER BY created ASC")
        path = "/search/jql" if self.flavor == "cloud" else "/search"
        query = urlencode({"jql": jql, "fields": "key,status", "maxResults": "1"})
        resp = ctx.http.request("GET", f"{self.api}{path}?{query}", headers=self._headers(),
                                dry_result={"issues": []})
        issues = (resp.json() or {}).get("issues") or []
        return issues[0].get("key") if issues else None

    def create(self, finding: dict, ctx: Context) -> str:
        fields: dict = {
            "project": {"key": self.project},
            "issuetype": {"name": self.issue_type},
            "summary": headline(finding, "trigger", ctx.test)[:255],
            "description": self._doc(plain_text(finding, "trigger"), evidence_lines(finding, 30) or None),
            "labels": ["memdiag", self.fp_label(finding), *self.labels],
        }
        prio = self.priority.get(finding.get("severity", "info"))
        if prio:
            fields["priority"] = {"name": prio}
        resp = ctx.http.request("POST", f"{self.api}/issue", headers=self._headers(), json={"fields": fields},
                                idempotent=False, dry_result={"key": f"{self.project}-0"})
        key = (resp.json() or {}).get("key")
        if not key:
            raise PermanentError(f"Jira answered {resp.status} without an issue key")
        return key

    def comment(self, remote_id: str, text: str, finding: dict, ctx: Context) -> bool:
        resp = ctx.http.request("POST", f"{self.api}/issue/{quote(remote_id)}/comment", headers=self._headers(),
                                json={"body": self._doc(text)}, allow=(404,))
        return resp.status != 404

    def close(self, remote_id: str, finding: dict, ctx: Context) -> None:
        if not self.comment(remote_id, resolved_text(finding, ctx), finding, ctx):
            return  # gone already
        base = f"{self.api}/issue/{quote(remote_id)}/transitions"
        resp = ctx.http.request("GET", base, headers=self._headers(),
                                dry_result={"transitions": [{"id": "0", "name": self.done}]})
        transitions = (resp.json() or {}).get("transitions") or []
        match = next((t for t in transitions if str(t.get("name", "")).lower() == self.done.lower()), None)
        if match is None:
            names = ", ".join(sorted(str(t.get("name")) for t in transitions)) or "none"
            raise PermanentError(f"Jira issue {remote_id} has no transition named {self.done!r} "
                                 f"(available: {names}); set done_transition")
        ctx.http.request("POST", base, headers=self._headers(), json={"transition": {"id": str(match["id"])}})
