"""The durable outbox: events waiting for delivery, in order per sink and fingerprint.

Enqueueing coalesces, so the outbox stays small however long an endpoint is down, and the
remote side still sees a coherent history:

* an ``update`` folds into an undelivered ``trigger``/``update`` (the newest finding wins);
* a ``resolve`` replaces an undelivered ``update``; after an undelivered ``trigger`` it is queued
  behind it (the finding happened; it is delivered, then resolved) — unless that trigger was
  refused for good, in which case nothing was ever created and both are dropped;
* a ``trigger`` (the finding came back) cancels an undelivered ``resolve``: the remote side never
  heard it was gone, so it becomes an ``update`` of what is already there.

Events refused for good (4xx) stay as ``failed`` for ``memdiag sinks status``; a normal run
leaves them alone, ``memdiag flush`` tries them again (after the operator fixed the config).
"""

from __future__ import annotations

import json
import secrets

from memdiag.delivery.state import Event, Store, now_iso

_COLUMNS = ("id, sink, fingerprint, host, action, finding, previous_severity, event_id, enqueued_at,"
            " attempts, last_attempt, last_error, status, ambiguous_at")


def new_event_id() -> str:
    return "msg_" + secrets.token_hex(12)


def enqueue(store: Store, *, sink: str, fingerprint: str, host: str, action: str, finding: dict,
            previous_severity: str | None = None) -> str | None:
    """Queue an event (inside the caller's transaction); returns the action actually queued,
    or ``None`` when coalescing made the event unnecessary."""
    conn = store.conn
    waiting = undelivered(store, sink, fingerprint)
    last = waiting[-1] if waiting else None
    data = json.dumps(finding, separators=(",", ":"), ensure_ascii=False)

    def merge(ev: Event, new_action: str) -> str:
        conn.execute("UPDATE outbox SET action = ?, finding = ?, status = 'pending' WHERE id = ?",
                     (new_action, data, ev.id))
        return new_action

    if action == "update":
        if last is not None and last.action in ("trigger", "update"):
            return merge(last, last.action)
    elif action == "resolve":
        if last is not None and last.action == "update":
            return merge(last, "resolve")
        if last is not None and last.action == "trigger" and last.status == "failed":
            conn.execute("DELETE FROM outbox WHERE id = ?", (last.id,))
            return None
        if last is not None and last.action == "resolve":
            return merge(last, "resolve")
    elif action == "trigger":
        if last is not None and last.action == "resolve":
            conn.execute("DELETE FROM outbox WHERE id = ?", (last.id,))
            before = waiting[-2] if len(waiting) > 1 else None
            if before is not None and before.action in ("trigger", "update"):
                return merge(before, before.action)
            action = "update"
    else:
        raise ValueError(f"unknown action {action!r}")
    conn.execute(
        "INSERT INTO outbox (sink, fingerprint, host, action, finding, previous_severity, event_id,"
        " enqueued_at) VALUES (?,?,?,?,?,?,?,?)",
        (sink, fingerprint, host, action, data, previous_severity, new_event_id(), now_iso()),
    )
    return action


def undelivered(store: Store, sink: str, fingerprint: str) -> list[Event]:
    rows = store.conn.execute(
        f"SELECT {_COLUMNS} FROM outbox WHERE sink = ? AND fingerprint = ? ORDER BY id", (sink, fingerprint))
    return [_event(r) for r in rows]


def due(store: Store, sink: str, *, include_failed: bool = False) -> list[Event]:
    """Events to deliver now for ``sink``, oldest first."""
    statuses = ("pending", "failed") if include_failed else ("pending",)
    rows = store.conn.execute(
        f"SELECT {_COLUMNS} FROM outbox WHERE sink = ? AND status IN ({','.join('?' * len(statuses))})"
        " ORDER BY id", (sink, *statuses))
    return [_event(r) for r in rows]


def all_events(store: Store) -> list[Event]:
    return [_event(r) for r in store.conn.execute(f"SELECT {_COLUMNS} FROM outbox ORDER BY sink, id")]


def count(store: Store) -> int:
    return store.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]


def delivered(store: Store, event: Event) -> None:
    store.conn.execute("DELETE FROM outbox WHERE id = ?", (event.id,))


def failed(store: Store, event: Event, error: str, *, permanent: bool, ambiguous: bool = False) -> None:
    """Record a failed attempt. ``ambiguous``: the far end may have acted on it (a ticket may
    exist), which ticket sinks remember so they wait for their search to show it."""
    now = now_iso()
    store.conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_attempt = ?, last_error = ?, status = ?,"
        " ambiguous_at = COALESCE(?, ambiguous_at) WHERE id = ?",
        (now, error[:500], "failed" if permanent else "pending", now if ambiguous else None, event.id),
    )


def _event(r) -> Event:
    return Event(
        id=r["id"], sink=r["sink"], fingerprint=r["fingerprint"], host=r["host"], action=r["action"],
        finding=json.loads(r["finding"]), previous_severity=r["previous_severity"], event_id=r["event_id"],
        enqueued_at=r["enqueued_at"], attempts=r["attempts"], last_attempt=r["last_attempt"],
        last_error=r["last_error"], status=r["status"], ambiguous_at=r["ambiguous_at"],
    )
