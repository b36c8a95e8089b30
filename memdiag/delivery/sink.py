"""What a sink is, for built-in and third-party sink types alike.

A plugin registers a sink type with ``register(type_name, factory)`` on the ``memdiag_sinks``
hook. ``factory(name, options)`` gets the entry's name and its type-specific options (secrets
already resolved) and returns an object following :class:`Sink`: raise ``ValueError`` (or
:class:`memdiag.errors.UsageError`) for bad options. The engine then calls
``sink.deliver(action, finding, ctx)`` once per event; ``deliver`` returns the remote id of the
thing it created (ticket key, issue number, Message-ID) or ``None``, and raises
:class:`TransientError` (kept in the outbox, retried) or :class:`PermanentError` (kept as failed,
retried by ``memdiag flush``) when it cannot deliver. Anything else it raises counts as
transient. See docs/sinks.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from memdiag.bounded import Deadline

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}

#: How the engine treats a sink type's events (see docs/sinks.md, "Lifecycle").
#:   alert    - state-based and idempotent API: re-sent every run (a lease), resolved when gone
#:   ticket   - creates an object once (found by fingerprint before creating), comments, closes
#:   chat     - cannot deduplicate: posts on new, escalated and resolved only
#:   log      - a line per event, every run
#:   snapshot - receives the whole current set every run (no events, no outbox)
STYLES = ("alert", "ticket", "chat", "log", "snapshot")
DEFAULT_REPEAT = {"alert": "always", "ticket": "change", "chat": "escalation", "log": "always"}
ACTIONS = ("trigger", "update", "resolve", "snapshot")


class SinkError(Exception):
    """A delivery that did not happen. The message must never contain a secret."""

    permanent = False


class TransientError(SinkError):
    """Network trouble, 408, 429, 5xx: try again later."""


class AmbiguousError(TransientError):
    """A non-idempotent request may or may not have been processed (timeout, reset, 5xx):
    look the object up before creating it again."""


class PermanentError(SinkError):
    """The far end refused the event (4xx): retrying the same event will not help."""

    permanent = True


@dataclass
class Context:
    """Everything a sink may need for one event, besides the finding itself."""

    sink_name: str
    action: str
    host: str
    http: Any  # memdiag.delivery.http.HttpClient (or its dry-run twin)
    deadline: Deadline
    event_id: str = ""  # stable across retries of this event (Standard Webhooks id, Message-ID)
    remote_id: str | None = None  # what an earlier trigger returned (ticket key ...)
    meta: dict[str, Any] = field(default_factory=dict)  # sink-private, kept in the state store
    first_seen: str = ""
    resolved_at: str = ""
    previous_severity: str | None = None
    attempt: int = 1
    ambiguous_since: float | None = None  # an earlier attempt may have created the object then
    test: bool = False
    dry_run: bool = False
    show: Callable[[str], None] = print  # dry-run output (already redacted by the engine)
    redact: Callable[[str], str] = lambda s: s
    findings: list[dict] = field(default_factory=list)  # snapshot sinks: the current set
    document: dict | None = None
    outbox_pending: int = 0  # snapshot sinks: undelivered events across all sinks


class Sink(Protocol):
    """The object a sink factory returns."""

    #: one of :data:`STYLES`
    style: str
    #: option names whose values are secret even when written literally (e.g. a Slack URL)
    secret_options: tuple[str, ...]

    def deliver(self, action: str, finding: dict | None, ctx: Context) -> str | None: ...


def short_severity(severity: str) -> str:
    return {"critical": "CRIT", "warning": "WARN", "info": "INFO"}.get(severity, severity.upper())


def evidence_lines(finding: dict, limit: int = 12) -> list[str]:
    """``fact: display`` lines for people; the measured values live here, never in identities."""
    out = []
    for ev in (finding.get("evidence") or [])[:limit]:
        out.append(f"{ev.get('fact', '?')}: {ev.get('display', '')}")
    return out


def plain_text(finding: dict, action: str) -> str:
    """A plain-text body shared by tickets, email and logs."""
    lines = [finding.get("message", "")]
    ev = evidence_lines(finding)
    if ev:
        lines += ["", "Evidence:"] + [f"  {e}" for e in ev]
    rem = finding.get("remediation") or {}
    if rem.get("steps"):
        lines += ["", "What to do: " + rem["steps"].strip()]
    if rem.get("confirm"):
        lines += ["Confirm with: " + rem["confirm"].strip()]
    refs = [r.get("url") for r in finding.get("references") or () if r.get("url")]
    if refs:
        lines += ["", "References:"] + [f"  {u}" for u in refs]
    lines += ["", f"Host: {finding.get('host', '?')}  Rule: {finding.get('rule_id', '?')}  "
                  f"Severity: {finding.get('severity')}  Confidence: {finding.get('confidence')}",
              f"Fingerprint: {finding.get('fingerprint')}  ({action} by memdiag)"]
    return "\n".join(lines)


def headline(finding: dict, action: str, test: bool = False) -> str:
    """``[memdiag][CRIT][host] title`` style one-liner; resolved and test events say so."""
    prefix = "[memdiag]" + ("[TEST]" if test else "")
    state = "RESOLVED" if action == "resolve" else short_severity(finding.get("severity", "info"))
    return f"{prefix}[{state}][{finding.get('host', '?')}] {finding.get('title', finding.get('rule_id', ''))}"


def socket_timeout(ctx: Context, default: float = 10.0) -> float:
    """A per-operation timeout for non-HTTP transports (SMTP, sockets) within the deadline."""
    base = float(getattr(ctx.http, "read_timeout", default) or default)
    remaining = ctx.deadline.remaining()
    if remaining is None:
        return base
    if remaining <= 0.01:
        raise TransientError("the sink's deadline has passed")
    return min(base, remaining)


def rfc3339(epoch: float, *, millis: bool = False) -> str:
    import time

    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))
    return f"{base}.{int((epoch % 1) * 1000):03d}Z" if millis else base + "Z"


def parse_time(text: str | None) -> float | None:
    """Seconds since the epoch for an RFC 3339 UTC time as memdiag writes them."""
    if not text:
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def option(options: dict, key: str, kind: type, default=None, *, required: bool = False):
    """Read one option with a clear error; sinks validate their own options (plugins too)."""
    if key not in options or options[key] is None:
        if required:
            raise ValueError(f"option {key!r} is required")
        return default
    value = options[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind):
        raise ValueError(f"option {key!r} must be a {kind.__name__}")
    return value


def update_note(finding: dict, ctx: Context) -> str:
    """One sentence saying why an update is sent: escalated, changed, or still present."""
    now, before = finding.get("severity", "info"), ctx.previous_severity
    if before and SEVERITY_RANK.get(now, 0) > SEVERITY_RANK.get(before, 0):
        return f"Escalated from {before} to {now}."
    if before and before != now:
        return f"Severity changed from {before} to {now}."
    return f"Still present ({now})."
