"""Small, stateful stand-ins for each vendor API, as documented (integrations.md and the
vendors' references). Each validates every request body against tests/sinks/schemas/ and
checks authentication, so a sink that drifts from the documented shape fails its test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import time
from typing import Any

from peers import Reply, Request, Violation, check


def _need_json(req: Request) -> Any:
    if not req.headers.get("content-type", "").startswith("application/json"):
        raise Violation(f"{req.method} {req.path}: Content-Type must be application/json")
    try:
        return req.json
    except ValueError:
        raise Violation(f"{req.method} {req.path}: body is not JSON") from None


class PagerDuty:
    """Events v2: dedup by dedup_key per routing key; a trigger after resolve opens a new alert."""

    def __init__(self, routing_key: str) -> None:
        self.key = routing_key
        self.alerts: dict[str, dict] = {}
        self.events: list[dict] = []

    def __call__(self, req: Request) -> Reply:
        if req.method != "POST" or req.path != "/v2/enqueue":
            return Reply(404, "not found")
        body = _need_json(req)
        check("pagerduty-events-v2.json", body)
        if body["routing_key"] != self.key:
            return Reply(400, {"status": "invalid event", "message": "Event object is invalid",
                               "errors": ["Invalid routing key"]})
        self.events.append(body)
        dk = body.get("dedup_key")
        alert = self.alerts.get(dk)
        if body["event_action"] == "trigger":
            if alert is None or alert["status"] == "resolved":
                self.alerts[dk] = alert = {"status": "triggered", "opened": (alert or {}).get("opened", 0) + 1,
                                           "updates": 0, "summary": body["payload"]["summary"]}
            else:
                alert["updates"] += 1
                alert["summary"] = body["payload"]["summary"]
        elif body["event_action"] == "resolve" and alert is not None and alert["status"] == "triggered":
            alert["status"] = "resolved"
        return Reply(202, {"status": "success", "message": "Event processed", "dedup_key": dk})


class Opsgenie:
    def __init__(self, api_key: str) -> None:
        self.key = api_key
        self.alerts: dict[str, dict] = {}

    def __call__(self, req: Request) -> Reply:
        if req.headers.get("authorization") != f"GenieKey {self.key}":
            return Reply(401, {"message": "Could not authenticate"})
        m = re.fullmatch(r"/v2/alerts/([^/]+)/close", req.path)
        if req.method == "POST" and req.path == "/v2/alerts":
            body = _need_json(req)
            check("opsgenie-alert.json", body)
            alias = body.get("alias")
            alert = self.alerts.get(alias)
            if alert is None or alert["status"] == "closed":
                self.alerts[alias] = {"status": "open", "count": 1, "message": body["message"]}
            else:
                alert["count"] += 1
        elif req.method == "POST" and m:
            if req.q("identifierType") != "alias":
                raise Violation("close must say identifierType=alias")
            check("opsgenie-close.json", _need_json(req))
            alert = self.alerts.get(m.group(1))
            if alert is None:
                return Reply(404, {"message": "Alert does not exist"})
            alert["status"] = "closed"
        else:
            return Reply(404, {"message": "not found"})
        return Reply(202, {"result": "Request will be processed", "took": 0.01, "requestId": "r-1"})


class Chat:
    """Slack, Teams Workflows or Mattermost: validate the message shape, keep every post."""

    REPLIES = {"slack": Reply(200, "ok"), "teams": Reply(202, ""), "mattermost": Reply(200, "ok")}
    SCHEMAS = {"slack": "slack-incoming-webhook.json", "teams": "teams-workflows-adaptive-card.json",
               "mattermost": "mattermost-incoming-webhook.json"}

    def __init__(self, kind: str, path: str) -> None:
        self.kind, self.path = kind, path
        self.posts: list[dict] = []

    def __call__(self, req: Request) -> Reply:
        if req.method != "POST" or req.path != self.path:
            return Reply(404, "no_service" if self.kind == "slack" else "not found")
        body = _need_json(req)
        check(self.SCHEMAS[self.kind], body)
        self.posts.append(body)
        return self.REPLIES[self.kind]


class Webhook:
    """A Standard Webhooks receiver: verifies the signature and timestamp, drops repeated ids."""

    def __init__(self, secret: str) -> None:
        self.key = base64.b64decode(secret.removeprefix("whsec_"))
        self.events: list[dict] = []
        self.ids: list[str] = []

    def __call__(self, req: Request) -> Reply:
        msg_id, ts, sig = (req.headers.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
        if not (msg_id and ts and sig):
            raise Violation("missing webhook-id / webhook-timestamp / webhook-signature")
        if abs(time.time() - int(ts)) > 300:
            raise Violation("timestamp outside the 5 minute tolerance")
        expected = base64.b64encode(hmac.new(self.key, f"{msg_id}.{ts}.".encode() + req.body,
                                             hashlib.sha256).digest()).decode()
        if not any(s.startswith("v1,") and hmac.compare_digest(s[3:], expected) for s in sig.split()):
            raise Violation("signature does not verify")
        body = _need_json(req)
        check("memdiag-webhook-event.json", body)
        self.ids.append(msg_id)
        if msg_id not in self.ids[:-1]:
            self.events.append(body)
        return Reply(204)


class Jira:
    """Cloud (v3, ADF, Basic email:token) or Data Center (v2, Bearer PAT)."""

    TRANSITIONS = [{"id": "11", "name": "To Do"}, {"id": "21", "name": "In Progress"}, {"id": "31", "name": "Done"}]

    def __init__(self, flavor: str = "cloud", *, email: str = "", token: str = "", project: str = "OPS",
                 search_lag: float = 0.0) -> None:
        self.flavor, self.project, self.search_lag = flavor, project, search_lag
        self.v = "3" if flavor == "cloud" else "2"
        self.auth = ("Basic " + base64.b64encode(f"{email}:{token}".encode()).decode()
                     if flavor == "cloud" else f"Bearer {token}")
        self.issues: dict[str, dict] = {}
        self.lock = threading.Lock()

    def open_issues(self) -> list[dict]:
        return [i for i in self.issues.values() if i["status"] != "Done"]

    def __call__(self, req: Request) -> Reply:
        if req.headers.get("authorization") != self.auth:
            return Reply(401, {"errorMessages": ["unauthorized"]})
        api = f"/rest/api/{self.v}"
        if req.path == "/rest/api/3/search":
            return Reply(410, {"errorMessages": ["The requested API has been removed. Use /rest/api/3/search/jql."]})
        search = f"{api}/search/jql" if self.flavor == "cloud" else f"{api}/search"
        if req.method == "GET" and req.path == search:
            return self._search(req.q("jql") or "")
        if req.method == "POST" and req.path == f"{api}/issue":
            body = _need_json(req)
            check(f"jira-create-v{self.v}.json", body)
            with self.lock:
                key = f"{self.project}-{len(self.issues) + 1}"
                self.issues[key] = {"key": key, "fields": body["fields"], "labels": body["fields"].get("labels", []),
                                    "status": "To Do", "comments": [], "created": time.monotonic()}
            return Reply(201, {"id": str(10000 + len(self.issues)), "key": key, "self": f"{api}/issue/{key}"})
        m = re.fullmatch(rf"{api}/issue/([A-Z]+-\d+)/(comment|transitions)", req.path)
        if not m or m.group(1) not in self.issues:
            return Reply(404, {"errorMessages": ["Issue does not exist or you do not have permission to see it."]})
        issue = self.issues[m.group(1)]
        if m.group(2) == "comment" and req.method == "POST":
            body = _need_json(req)
            check(f"jira-comment-v{self.v}.json", body)
            issue["comments"].append(body["body"])
            return Reply(201, {"id": str(len(issue["comments"]))})
        if m.group(2) == "transitions" and req.method == "GET":
            return Reply(200, {"transitions": self.TRANSITIONS})
        if m.group(2) == "transitions" and req.method == "POST":
            body = _need_json(req)
            check("jira-transition.json", body)
            name = next((t["name"] for t in self.TRANSITIONS if t["id"] == body["transition"]["id"]), None)
            if name is None:
                return Reply(400, {"errorMessages": ["Transition id is not valid"]})
            issue["status"] = name
            return Reply(204)
        return Reply(405, {"errorMessages": ["method not allowed"]})

    def _search(self, jql: str) -> Reply:
        label = re.search(r'labels = "([^"]+)"', jql)
        project = re.search(r'project = "([^"]+)"', jql)
        if not label or not project or "statusCategory != Done" not in jql:
            raise Violation(f"unexpected JQL: {jql}")
        now = time.monotonic()
        hits = [i for i in self.issues.values()
                if label.group(1) in i["labels"] and i["status"] != "Done" and now - i["created"] >= self.search_lag]
        return Reply(200, {"issues": [{"key": i["key"], "fields": {"status": {"name": i["status"]}}} for i in hits[:1]],
                           "isLast": True})


class ServiceNow:
    def __init__(self, *, username: str = "", password: str = "", token: str = "") -> None:
        self.auth = f"Bearer {token}" if token else "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.records: dict[str, dict] = {}
        self.events: list[dict] = []
        self.lock = threading.Lock()

    def open_records(self) -> list[dict]:
        return [r for r in self.records.values() if r["active"]]

    def __call__(self, req: Request) -> Reply:
        if req.headers.get("authorization") != self.auth:
            return Reply(401, {"error": {"message": "User Not Authenticated"}})
        if req.method == "POST" and req.path == "/api/global/em/jsonv2":
            body = _need_json(req)
            check("servicenow-em.json", body)
            self.events.extend(body["records"])
            return Reply(200, {"result": {"Default Bulk Endpoint": f"{len(body['records'])} events were inserted"}})
        if req.path == "/api/now/table/incident":
            if req.method == "GET":
                query = req.q("sysparm_query") or ""
                m = re.fullmatch(r"correlation_id=(memdiag:[0-9a-f]{16})\^active=true", query)
                if not m:
                    raise Violation(f"unexpected sysparm_query {query!r}")
                hits = [{"sys_id": r["sys_id"], "number": r["number"]} for r in self.records.values()
                        if r["correlation_id"] == m.group(1) and r["active"]]
                return Reply(200, {"result": hits[: int(req.q("sysparm_limit") or 100)]})
            if req.method == "POST":
                body = _need_json(req)
                check("servicenow-incident.json", body)
                if "short_description" not in body:
                    raise Violation("create needs short_description")
                with self.lock:
                    n = len(self.records) + 1
                    rec = {**body, "sys_id": f"{n:032x}", "number": f"INC{n:07d}", "active": True, "notes": []}
                    self.records[rec["sys_id"]] = rec
                return Reply(201, {"result": {"sys_id": rec["sys_id"], "number": rec["number"]}})
        m = re.fullmatch(r"/api/now/table/incident/([0-9a-f]{32})", req.path)
        if m and req.method == "PATCH":
            rec = self.records.get(m.group(1))
            if rec is None:
                return Reply(404, {"error": {"message": "No Record found"}})
            body = _need_json(req)
            check("servicenow-incident.json", body)
            if "work_notes" in body:
                rec["notes"].append(body["work_notes"])
            if body.get("state") == "6":
                rec["active"] = False
                rec["close_code"] = body.get("close_code")
            return Reply(200, {"result": {"sys_id": rec["sys_id"], "number": rec["number"]}})
        return Reply(400, {"error": {"message": f"Invalid path {req.path}"}})


class GitHub:
    def __init__(self, repo: str, token: str) -> None:
        self.repo, self.token = repo, token
        self.issues: dict[int, dict] = {}
        self.lock = threading.Lock()
        self.pull = {"number": 999, "labels": [], "state": "open", "pull_request": {"url": "x"}}

    def open_issues(self) -> list[dict]:
        return [i for i in self.issues.values() if i["state"] == "open"]

    def __call__(self, req: Request) -> Reply:
        if req.headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, {"message": "Bad credentials"})
        if req.headers.get("accept") != "application/vnd.github+json" or "x-github-api-version" not in req.headers:
            raise Violation("GitHub requests need Accept: application/vnd.github+json and X-GitHub-Api-Version")
        base = f"/repos/{self.repo}/issues"
        if req.path == base and req.method == "GET":
            wanted = set(filter(None, (req.q("labels") or "").split(",")))
            state = req.q("state") or "open"
            hits = [dict(i) for i in self.issues.values()
                    if i["state"] == state and wanted.issubset(i["labels"])]
            return Reply(200, [self.pull] + hits)  # a PR shares the label: the sink must skip it
        if req.path == base and req.method == "POST":
            body = _need_json(req)
            check("github-issue-create.json", body)
            with self.lock:
                n = len(self.issues) + 1
                self.issues[n] = {"number": n, "title": body["title"], "body": body.get("body", ""),
                                  "labels": body.get("labels", []), "state": "open", "comments": []}
            return Reply(201, {"number": n, "html_url": f"https://github.test/{self.repo}/issues/{n}"})
        m = re.fullmatch(rf"{re.escape(base)}/(\d+)(/comments)?", req.path)
        if not m or int(m.group(1)) not in self.issues:
            return Reply(404, {"message": "Not Found"})
        issue = self.issues[int(m.group(1))]
        if m.group(2) and req.method == "POST":
            body = _need_json(req)
            check("github-comment.json", body)
            issue["comments"].append(body["body"])
            return Reply(201, {"id": len(issue["comments"])})
        if not m.group(2) and req.method == "PATCH":
            body = _need_json(req)
            check("github-issue-update.json", body)
            issue["state"] = body.get("state", issue["state"])
            return Reply(200, {"number": issue["number"], "state": issue["state"]})
        return Reply(404, {"message": "Not Found"})
