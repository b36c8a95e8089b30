"""The lifecycle shared by ticket sinks (Jira, ServiceNow incidents, GitHub issues).

Creating a ticket is not idempotent, so a ticket sink finds before it creates: the state store's
remote id first, then a search by the fingerprint (a label, or a correlation id). When a create
has an unknown outcome (timeout, reset, 5xx after sending) the sink searches again before
anything else; if the search still finds nothing the event stays in the outbox and the next run
searches once more, so a slow, eventually consistent search never causes a second ticket in the
same run.
"""

from __future__ import annotations

import time

from memdiag.delivery.sink import AmbiguousError, Context, TransientError, plain_text, update_note


class TicketSink:
    """Subclasses implement :meth:`lookup`, :meth:`create`, :meth:`comment` and :meth:`close`."""

    style = "ticket"
    #: seconds the search may lag behind a create (Jira Cloud's search is eventually consistent):
    #: after an ambiguous create, no new create happens until this long has passed
    search_settle: float = 0.0

    def lookup(self, finding: dict, ctx: Context) -> str | None:
        raise NotImplementedError

    def create(self, finding: dict, ctx: Context) -> str:
        raise NotImplementedError

    def comment(self, remote_id: str, text: str, finding: dict, ctx: Context) -> bool:
        """Add ``text`` to the ticket; ``False`` when the ticket no longer exists."""
        raise NotImplementedError

    def close(self, remote_id: str, finding: dict, ctx: Context) -> None:
        raise NotImplementedError

    def find_or_create(self, finding: dict, ctx: Context) -> str:
        found = self.lookup(finding, ctx)
        if found:
            return found
        if ctx.ambiguous_since is not None and not ctx.dry_run:
            wait = ctx.ambiguous_since + self.search_settle - time.time()
            if wait > 0:
                raise TransientError(f"an earlier create may have succeeded; waiting {wait:.0f} s more "
                                     "for the search to show it before creating again")
        try:
            return self.create(finding, ctx)
        except AmbiguousError:
            found = self.lookup(finding, ctx)
            if found:
                return found
            raise

    def deliver(self, action: str, finding: dict | None, ctx: Context) -> str | None:
        assert finding is not None
        remote = ctx.remote_id
        if action in ("trigger", "update"):
            if remote is None:
                return self.find_or_create(finding, ctx)
            if action == "trigger":
                return remote
            text = update_note(finding, ctx) + "\n\n" + plain_text(finding, action)
            if not self.comment(remote, text, finding, ctx):
                return self.find_or_create(finding, ctx)  # deleted by someone: open a new one
            return remote
        remote = remote or self.lookup(finding, ctx)
        if remote:
            self.close(remote, finding, ctx)
        return remote


def resolved_text(finding: dict, ctx: Context) -> str:
    return (f"Resolved: memdiag no longer finds this on {finding.get('host', '?')} "
            f"({finding.get('time', '')}).\nFingerprint: {finding.get('fingerprint')}")
