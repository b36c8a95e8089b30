"""example-tickets - files findings into the example agent team's ticket queue.

The queue is a folder of JSON tickets (``<queue_dir>/<PROJECT>-<n>.json``) that the team's
ticket system imports. It follows memdiag's ticket lifecycle (:class:`TicketSink`): a finding
opens one ticket, found again by its fingerprint rather than created twice; a change of
severity adds a comment; a finding that is gone closes the ticket.

Configuration (``sinks:`` in memdiag's config file)::

    - name: agent-team
      type: example-tickets
      queue_dir: /var/spool/example-tickets
      project: AGENT            # ticket key prefix (default EX)
      min_severity: warning     # memdiag's own filters apply as to every sink

A sink raises :class:`TransientError` when trying again later may help (the event stays in
memdiag's outbox) and :class:`PermanentError` when it will not.
"""

from __future__ import annotations

import json
import os
import re
import tempfile

from memdiag.delivery.sink import Context, PermanentError, TransientError, headline, option, plain_text
from memdiag.delivery.ticket import TicketSink, resolved_text

_PROJECT = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")


class TicketQueueSink(TicketSink):
    style = "ticket"
    secret_options = ()

    def __init__(self, name: str, options: dict) -> None:
        self.name = name
        self.queue_dir = option(options, "queue_dir", str, required=True)
        self.project = option(options, "project", str, "EX")
        if not _PROJECT.match(self.project):
            raise ValueError(f"option 'project' must be 2-10 capital letters or digits, not {self.project!r}")

    # -- the queue ---------------------------------------------------------------------------

    def _tickets(self):
        try:
            names = sorted(n for n in os.listdir(self.queue_dir) if n.startswith(self.project + "-")
                           and n.endswith(".json"))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise TransientError(f"cannot list {self.queue_dir}: {exc.strerror or exc}") from None
        for n in names:
            try:
                with open(os.path.join(self.queue_dir, n), encoding="utf-8") as f:
                    yield json.load(f)
            except (OSError, ValueError):
                continue  # being written by the importer, or not ours: skip it

    def _path(self, key: str) -> str:
        return os.path.join(self.queue_dir, key + ".json")

    def _write(self, ticket: dict, ctx: Context) -> None:
        if ctx.dry_run:
            ctx.show(f"write {self._path(ticket['key'])}:\n{json.dumps(ticket, indent=2)}")
            return
        try:
            os.makedirs(self.queue_dir, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.queue_dir, prefix=".tmp-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(ticket, f, indent=2)
            os.replace(tmp, self._path(ticket["key"]))  # the importer never sees half a ticket
        except PermissionError as exc:
            raise PermanentError(f"cannot write to {self.queue_dir}: {exc.strerror}") from None
        except OSError as exc:
            raise TransientError(f"cannot write to {self.queue_dir}: {exc.strerror or exc}") from None

    def _load(self, key: str) -> dict | None:
        try:
            with open(self._path(key), encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise TransientError(f"cannot read ticket {key}: {exc}") from None

    # -- the ticket lifecycle ----------------------------------------------------------------

    def lookup(self, finding: dict, ctx: Context) -> str | None:
        for ticket in self._tickets():
            if ticket.get("fingerprint") == finding.get("fingerprint") and ticket.get("status") == "open":
                return ticket["key"]
        return None

    def create(self, finding: dict, ctx: Context) -> str:
        key_re = re.compile(rf"^{self.project}-(\d+)$")
        numbers = [int(m.group(1)) for t in self._tickets() if (m := key_re.match(str(t.get("key", ""))))]
        key = f"{self.project}-{max(numbers, default=0) + 1}"
        self._write({
            "key": key,
            "status": "open",
            "fingerprint": finding.get("fingerprint"),
            "summary": headline(finding, "trigger", ctx.test),
            "severity": finding.get("severity"),
            "host": finding.get("host"),
            "rule_id": finding.get("rule_id"),
            "body": plain_text(finding, "trigger"),
            "opened": finding.get("time"),
            "comments": [],
        }, ctx)
        return key

    def comment(self, remote_id: str, text: str, finding: dict, ctx: Context) -> bool:
        ticket = self._load(remote_id)
        if ticket is None:
            return False
        ticket["comments"].append({"time": finding.get("time"), "text": text})
        ticket["severity"] = finding.get("severity", ticket.get("severity"))
        self._write(ticket, ctx)
        return True

    def close(self, remote_id: str, finding: dict, ctx: Context) -> None:
        ticket = self._load(remote_id)
        if ticket is None or ticket.get("status") == "closed":
            return
        ticket["status"] = "closed"
        ticket["comments"].append({"time": finding.get("time"), "text": resolved_text(finding, ctx)})
        self._write(ticket, ctx)
