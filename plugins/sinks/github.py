"""GitHub issues: one issue per finding, labelled ``memdiag`` and ``memdiag-fp-<fingerprint>``.

Before creating, the sink lists open issues with the fingerprint label (the issues list, not the
Search API: it has no index lag and a separate, higher limit), skipping pull requests. The body
also carries ``<!-- memdiag-fp: ... -->``. Repeats comment; a resolve comments and closes the
issue as completed. Labels need push access: without it GitHub drops them silently and the
lookup cannot work, so give the token issues:write on the repository.
"""

from __future__ import annotations

from urllib.parse import urlencode

from memdiag.delivery.sink import Context, PermanentError, headline, option, plain_text
from memdiag.delivery.ticket import TicketSink, resolved_text

DEFAULT_API = "https://api.github.com"


class GitHubSink(TicketSink):
    secret_options = ("token",)

    def __init__(self, name: str, options: dict) -> None:
        self.name = name
        self.repo = option(options, "repo", str, required=True)
        if self.repo.count("/") != 1:
            raise ValueError("option 'repo' must be OWNER/NAME")
        self.token = option(options, "token", str)
        self.api = option(options, "api_url", str, DEFAULT_API).rstrip("/")
        self.labels = [str(x) for x in option(options, "labels", list, [])]

    def _headers(self) -> dict[str, str]:
        h = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        return h

    def _issues(self) -> str:
        return f"{self.api}/repos/{self.repo}/issues"

    @staticmethod
    def fp_label(finding: dict) -> str:
        return f"memdiag-fp-{finding.get('fingerprint', '')}"

    def lookup(self, finding: dict, ctx: Context) -> str | None:
        query = urlencode({"state": "open", "labels": self.fp_label(finding), "per_page": "10"})
        resp = ctx.http.request("GET", f"{self._issues()}?{query}", headers=self._headers(), dry_result=[])
        for issue in resp.json() or []:
            if isinstance(issue, dict) and "pull_request" not in issue and issue.get("number"):
                return str(issue["number"])
        return None

    def create(self, finding: dict, ctx: Context) -> str:
        body = (plain_text(finding, "trigger") + f"\n\n<!-- memdiag-fp: {finding.get('fingerprint')} -->")
        resp = ctx.http.request("POST", self._issues(), headers=self._headers(), idempotent=False, json={
            "title": headline(finding, "trigger", ctx.test)[:256],
            "body": body,
            "labels": ["memdiag", self.fp_label(finding), *self.labels],
        }, dry_result={"number": 0})
        number = (resp.json() or {}).get("number")
        if number is None:
            raise PermanentError(f"GitHub answered {resp.status} without an issue number")
        return str(number)

    def comment(self, remote_id: str, text: str, finding: dict, ctx: Context) -> bool:
        resp = ctx.http.request("POST", f"{self._issues()}/{remote_id}/comments", headers=self._headers(),
                                json={"body": text}, allow=(404, 410))
        return resp.status not in (404, 410)

    def close(self, remote_id: str, finding: dict, ctx: Context) -> None:
        if not self.comment(remote_id, resolved_text(finding, ctx), finding, ctx):
            return
        ctx.http.request("PATCH", f"{self._issues()}/{remote_id}", headers=self._headers(),
                         json={"state": "closed", "state_reason": "completed"})
