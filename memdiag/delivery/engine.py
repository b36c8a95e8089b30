"""The lifecycle engine: decide what each sink must hear, queue it durably, deliver it in time.

A run (1) compares the current findings with each sink's state rows and queues events in the
outbox — new: trigger; still present: update as the sink's ``repeat`` policy says; gone (its rule
passed, not skipped): resolve — state and outbox changing in one transaction; (2) delivers every
due event, oldest first, each sink in its own worker thread that is abandoned at the sink's
deadline (DNS included); (3) records each outcome in its own transaction. A crash anywhere leaves
either the old or the new state, and an event leaves the outbox only once delivered, so nothing
is lost; ticket sinks look up by fingerprint before creating, so nothing is duplicated.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, TextIO

from memdiag.bounded import Deadline
from memdiag.delivery import outbox
from memdiag.delivery.config import Config, SinkEntry
from memdiag.delivery.sink import (
    DEFAULT_REPEAT, SEVERITY_RANK, STYLES, AmbiguousError, Context, Sink, SinkError, parse_time,
)
from memdiag.delivery.state import Event, StateRow, Store, now_iso

log = logging.getLogger("memdiag.delivery")


@dataclass
class Runtime:
    """A configured sink, ready to deliver."""

    entry: SinkEntry
    sink: Sink
    style: str
    repeat: str
    resend_resolved: float = 0.0

    @property
    def name(self) -> str:
        return self.entry.name


@dataclass
class SinkResult:
    name: str
    sent: int = 0
    failed: list[str] = field(default_factory=list)  # redacted one-line errors
    left: int = 0  # events still undelivered for this sink after the run
    timed_out: bool = False


def build(cfg: Config, registry, names: list[str] | None, problems: list[str]) -> list[Runtime]:
    """Instantiate the selected sinks (``names`` or every enabled one); bad ones go to ``problems``."""
    chosen: list[SinkEntry] = []
    if names:
        for n in names:
            entry = cfg.sink(n)
            if entry is None:
                known = ", ".join(s.name for s in cfg.sinks) or "none"
                problems.append(f"{cfg.path}: no sink named {n!r} (configured: {known})")
            elif entry not in chosen:
                chosen.append(entry)
    else:
        chosen = [s for s in cfg.sinks if s.enabled]
    out = []
    for entry in chosen:
        factory = registry.sinks.get(entry.type)
        if factory is None:
            known = ", ".join(sorted(registry.sinks)) or "none"
            problems.append(f"{cfg.path}: {entry.where}: unknown sink type {entry.type!r} (known: {known})")
            continue
        try:
            sink = factory(entry.name, dict(entry.options))
            style = getattr(sink, "style", "alert")
            if style not in STYLES:
                raise ValueError(f"sink type {entry.type!r} declares unknown style {style!r}")
            for opt in getattr(sink, "secret_options", ()):
                if opt in entry.literal and opt in entry.options:
                    raise ValueError(f"{opt!r} is a secret; give it as ${{VAR}} or {opt}_file, not in the file")
                cfg.redactor.add(entry.options.get(opt))
        except Exception as exc:  # a broken sink entry never stops the others
            problems.append(cfg.redactor.redact(f"{cfg.path}: {entry.where}: {exc}"))
            continue
        repeat = entry.repeat or getattr(sink, "default_repeat", None) or DEFAULT_REPEAT.get(style, "always")
        out.append(Runtime(entry, sink, style, repeat, float(getattr(sink, "resend_resolved", 0.0) or 0.0)))
    return out


# -- planning --------------------------------------------------------------------------------

def plan(store: Store, rt: Runtime, document: dict) -> int:
    """Queue the events ``document`` implies for one sink; returns how many were queued."""
    if rt.style == "snapshot":
        return 0
    host = document.get("host", "unknown")
    now = now_iso()
    current = {f["fingerprint"]: f for f in document.get("findings") or () if rt.entry.accepts(f)}
    unknown_rules = {r["id"] for r in document.get("rules") or () if r.get("state") in ("skipped", "error")}
    queued = 0
    with store.transaction():
        rows = store.rows(rt.name, host)
        for fp, finding in current.items():
            row = rows.get(fp)
            sev = finding.get("severity", "info")
            if row is None or row.status == "resolved":
                action = outbox.enqueue(store, sink=rt.name, fingerprint=fp, host=finding.get("host", host),
                                        action="trigger", finding=finding)
                fresh = action == "trigger" or row is None
                store.put_row(StateRow(
                    sink=rt.name, fingerprint=fp, host=finding.get("host", host), rule_id=finding["rule_id"],
                    status="firing", severity=sev, first_seen=now if fresh else row.first_seen, last_seen=now,
                    resolved_at=None, remote_id=None if fresh else row.remote_id,
                    meta={} if fresh else row.meta, finding=finding))
                queued += 1
                continue
            previous = row.severity
            if _wants_update(rt.repeat, previous, sev):
                outbox.enqueue(store, sink=rt.name, fingerprint=fp, host=row.host, action="update",
                               finding=finding, previous_severity=previous)
                row.severity = sev
                queued += 1
            row.last_seen, row.finding = now, finding
            store.put_row(row)
        horizon = time.time() - rt.resend_resolved
        for fp, row in rows.items():
            if fp in current:
                continue
            if row.status == "firing":
                if row.rule_id in unknown_rules:
                    continue  # its rule could not be evaluated: unknown is not gone
                resolved = dict(row.finding, time=now)
                if outbox.enqueue(store, sink=rt.name, fingerprint=fp, host=row.host, action="resolve",
                                  finding=resolved, previous_severity=row.severity) is not None:
                    queued += 1
                row.status, row.resolved_at, row.finding = "resolved", now, resolved
                store.put_row(row)
            elif rt.resend_resolved and row.resolved_at and _epoch(row.resolved_at) >= horizon:
                # an idempotent resolve, repeated for a while so a restarted receiver still hears it
                if not outbox.undelivered(store, rt.name, fp):
                    outbox.enqueue(store, sink=rt.name, fingerprint=fp, host=row.host, action="resolve",
                                   finding=row.finding)
                    queued += 1
    return queued


def _wants_update(repeat: str, previous: str, current: str) -> bool:
    if repeat == "always":
        return True
    if repeat == "change":
        return previous != current
    if repeat == "escalation":
        return SEVERITY_RANK.get(current, 0) > SEVERITY_RANK.get(previous, 0)
    return False


def _epoch(iso: str) -> float:
    import calendar

    try:
        return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return 0.0


# -- delivering ------------------------------------------------------------------------------

class _Worker(threading.Thread):
    """Delivers one sink's events in order; abandoned (not killed) when its deadline passes."""

    def __init__(self, rt: Runtime, jobs: list[tuple[str, dict | None, Context, Event | None]],
                 results: "queue.Queue", deadline: Deadline, redact: Callable[[str], str]) -> None:
        super().__init__(daemon=True, name=f"memdiag-sink-{rt.name}")
        self.rt, self.jobs, self.results, self.deadline, self.redact = rt, jobs, results, deadline, redact
        self.lock = threading.Lock()
        self.abandoned = False
        self.current: Event | None = None
        self.current_action: str | None = None
        self.finished = 0  # jobs done (delivered or failed)

    def run(self) -> None:
        carried: dict[str, tuple[str | None, dict]] = {}  # fp -> (remote id, meta) from this run
        blocked: set[str] = set()
        try:
            for action, finding, ctx, event in self.jobs:
                fp = event.fingerprint if event else (finding or {}).get("fingerprint", "")
                if self.abandoned or self.deadline.expired():
                    return
                if fp in blocked:
                    continue  # keep per-finding order: nothing after a failure
                if fp in carried:
                    ctx.remote_id, ctx.meta = carried[fp][0], dict(carried[fp][1])
                with self.lock:
                    self.current, self.current_action = event, action
                if ctx.dry_run:
                    label = f"{finding.get('rule_id', '')} [{fp}]" if finding else f"{len(ctx.findings)} finding(s)"
                    ctx.show(f"--- sink {self.rt.name} ({self.rt.entry.type}): {action} {label}")
                try:
                    remote = self.rt.sink.deliver(action, finding, ctx)
                except SinkError as exc:
                    outcome = ("error", event, action, self.redact(str(exc)), exc.permanent,
                               isinstance(exc, AmbiguousError))
                    blocked.add(fp)
                except Exception as exc:  # a buggy sink is a failed delivery, not a crash
                    outcome = ("error", event, action, self.redact(f"{type(exc).__name__}: {exc}"), False, False)
                    blocked.add(fp)
                else:
                    remote = remote if remote is not None else ctx.remote_id
                    carried[fp] = (remote, ctx.meta)
                    outcome = ("ok", event, action, remote, dict(ctx.meta))
                with self.lock:
                    self.current = None
                    self.finished += 1
                    if self.abandoned:
                        return
                    self.results.put((self, outcome))
        finally:
            with self.lock:
                if not self.abandoned:
                    self.results.put((self, ("done",)))


def deliver_due(store: Store, runtimes: list[Runtime], cfg: Config, *, overall: Deadline,
                include_failed: bool = False, dry_run: bool = False, show: Callable[[str], None] | None = None,
                document: dict | None = None, http_factory: Callable | None = None,
                success_so_far: bool = True) -> dict[str, SinkResult]:
    """Deliver every due event of ``runtimes`` (then the snapshot sinks) within the deadlines."""
    results = {rt.name: SinkResult(rt.name) for rt in runtimes}
    eventful = [rt for rt in runtimes if rt.style != "snapshot"]
    snapshots = [rt for rt in runtimes if rt.style == "snapshot"]
    _run_phase(store, eventful, cfg, overall, results, dry_run, show, http_factory,
               lambda rt, dl, http: _event_jobs(store, rt, dl, http, cfg, include_failed, dry_run, show))
    if snapshots and document is not None:
        ok = success_so_far and not any(r.failed for r in results.values())
        pending = outbox.count(store)
        _run_phase(store, snapshots, cfg, overall, results, dry_run, show, http_factory,
                   lambda rt, dl, http: [("snapshot", None, _context(rt, "snapshot", dl, http, cfg, dry_run, show,
                                                                     document=document, pending=pending,
                                                                     success=ok), None)])
    for rt in eventful:
        results[rt.name].left = len(outbox.due(store, rt.name, include_failed=True))
    return results


def _event_jobs(store: Store, rt: Runtime, deadline: Deadline, http, cfg: Config, include_failed: bool,
                dry_run: bool, show) -> list:
    jobs = []
    for ev in outbox.due(store, rt.name, include_failed=include_failed):
        row = store.row(rt.name, ev.fingerprint)
        ctx = _context(rt, ev.action, deadline, http, cfg, dry_run, show)
        ctx.event_id, ctx.attempt, ctx.previous_severity = ev.event_id, ev.attempts + 1, ev.previous_severity
        ctx.host = ev.host
        ctx.ambiguous_since = parse_time(ev.ambiguous_at)
        if row is not None:
            ctx.remote_id, ctx.meta = row.remote_id, dict(row.meta)
            ctx.first_seen, ctx.resolved_at = row.first_seen, row.resolved_at or ""
        ctx.first_seen = ctx.first_seen or ev.finding.get("time", "")
        jobs.append((ev.action, ev.finding, ctx, ev))
    return jobs


def _context(rt: Runtime, action: str, deadline: Deadline, http, cfg: Config, dry_run: bool, show, *,
             document: dict | None = None, pending: int = 0, success: bool = True) -> Context:
    def shown(text: str) -> None:
        if show is not None:
            show(cfg.redactor.redact(text))

    ctx = Context(sink_name=rt.name, action=action, host=(document or {}).get("host", ""), http=http,
                  deadline=deadline, dry_run=dry_run, show=shown,
                  redact=cfg.redactor.redact, document=document, outbox_pending=pending)
    if document is not None:
        ctx.findings = [f for f in document.get("findings") or () if rt.entry.accepts(f)]
        ctx.meta = {"run_success": success}
    return ctx


def _run_phase(store: Store, runtimes: list[Runtime], cfg: Config, overall: Deadline,
               results: dict[str, SinkResult], dry_run: bool, show, http_factory, make_jobs) -> None:
    from memdiag.delivery.http import DryRunHttp, HttpClient

    if not runtimes:
        return
    q: queue.Queue = queue.Queue()
    workers: list[_Worker] = []
    for rt in runtimes:
        e = rt.entry
        remaining = overall.remaining()
        deadline = Deadline(e.deadline if remaining is None else min(e.deadline, remaining))
        if dry_run:
            http = DryRunHttp(show or (lambda s: None), cfg.redactor, deadline)
        elif http_factory is not None:
            http = http_factory(rt, deadline)
        else:
            http = HttpClient(deadline=deadline, redactor=cfg.redactor, connect_timeout=e.connect_timeout,
                              read_timeout=e.read_timeout, retries=e.retries, backoff=e.backoff,
                              backoff_cap=e.backoff_cap, ca_file=e.ca_file)
        jobs = make_jobs(rt, deadline, http)
        if not jobs:
            continue
        worker = _Worker(rt, jobs, q, deadline, cfg.redactor.redact)
        workers.append(worker)
    if dry_run:  # nothing leaves the host: run in order, in this thread, for readable output
        for w in workers:  # (the store is a throw-away copy, so recording shows the after-state)
            w.run()
        _drain(store, q, results)
        return
    for w in workers:
        w.start()
    active = set(workers)
    while active:
        try:
            w, outcome = q.get(timeout=0.05)
        except queue.Empty:
            for w in list(active):
                if w.deadline.expired():
                    _abandon(store, w, results, cfg)
                    active.discard(w)
            continue
        if outcome[0] == "done":
            active.discard(w)
            continue
        _record(store, w.rt, outcome, results[w.rt.name])
    _drain(store, q, results)


def _abandon(store: Store, w: _Worker, results: dict[str, SinkResult], cfg: Config) -> None:
    with w.lock:
        w.abandoned = True
        ev, unfinished = w.current, w.finished < len(w.jobs)
    res = results[w.rt.name]
    res.timed_out = True
    msg = f"no answer within the sink's deadline ({w.rt.entry.deadline:g} s)"
    if ev is not None:  # it may have been acted on just before the deadline
        with store.transaction():
            outbox.failed(store, ev, msg, permanent=False, ambiguous=True)
        res.failed.append(msg)
    elif unfinished:
        res.failed.append(msg)


def _drain(store: Store, q: "queue.Queue", results: dict[str, SinkResult]) -> None:
    while True:
        try:
            w, outcome = q.get_nowait()
        except queue.Empty:
            return
        if outcome[0] != "done":
            _record(store, w.rt, outcome, results[w.rt.name])


def _record(store: Store, rt: Runtime, outcome: tuple, res: SinkResult) -> None:
    kind, event = outcome[0], outcome[1]
    if kind == "ok":
        _, _, action, remote, meta = outcome
        res.sent += 1
        if event is None:
            return
        with store.transaction():
            outbox.delivered(store, event)
            store.set_remote(rt.name, event.fingerprint, remote, meta)
        log.debug("sink %s: %s %s delivered", rt.name, action, event.fingerprint)
    else:
        _, _, action, message, permanent, ambiguous = outcome
        res.failed.append(message)
        if event is not None:
            with store.transaction():
                outbox.failed(store, event, message, permanent=permanent, ambiguous=ambiguous)
        log.debug("sink %s: %s failed: %s", rt.name, action, message)


# -- test events -----------------------------------------------------------------------------

def test_finding(host: str) -> dict:
    fp = hashlib.sha256(f"memdiag-test|{host}".encode()).hexdigest()[:16]
    return {
        "rule_id": "memdiag-test", "title": "memdiag test event - please ignore", "severity": "info",
        "confidence": "confirmed", "fingerprint": fp, "host": host, "time": now_iso(), "tags": ["test"],
        "message": "This is a test event sent by `memdiag sinks test`. It says nothing about this host.",
        "evidence": [], "remediation": {"steps": "Nothing to do: this only checks that delivery works."},
        "references": [],
    }


def send_test(rt: Runtime, cfg: Config, host: str, *, dry_run: bool, show) -> SinkResult:
    """Send one clearly marked test event outside the state store (alerts and tickets are
    resolved right after, so nothing stays open)."""
    from memdiag.delivery.http import DryRunHttp, HttpClient

    e = rt.entry
    deadline = Deadline(e.deadline)
    http = (DryRunHttp(show, cfg.redactor, deadline) if dry_run else
            HttpClient(deadline=deadline, redactor=cfg.redactor, connect_timeout=e.connect_timeout,
                       read_timeout=e.read_timeout, retries=e.retries, backoff=e.backoff,
                       backoff_cap=e.backoff_cap, ca_file=e.ca_file))
    finding = test_finding(host)
    doc = {"host": host, "findings": [finding], "rules": []}
    actions = {"alert": ["trigger", "resolve"], "ticket": ["trigger", "resolve"],
               "snapshot": ["snapshot"]}.get(rt.style, ["trigger"])
    jobs = []
    for action in actions:
        ctx = _context(rt, action, deadline, http, cfg, dry_run, show,
                       document=doc if action == "snapshot" else None)
        ctx.test, ctx.host, ctx.first_seen = True, host, finding["time"]
        ctx.event_id = outbox.new_event_id()
        jobs.append((action, None if action == "snapshot" else finding, ctx, None))
    q: queue.Queue = queue.Queue()
    w = _Worker(rt, jobs, q, deadline, cfg.redactor.redact)
    res = SinkResult(rt.name)
    if dry_run:
        w.run()
    else:
        w.start()
        w.join(deadline.remaining())
        if w.is_alive():
            with w.lock:
                w.abandoned = True
            res.timed_out = True
            res.failed.append(f"no answer within the sink's deadline ({e.deadline:g} s)")
    while True:
        try:
            _, outcome = q.get_nowait()
        except queue.Empty:
            break
        if outcome[0] == "ok":
            res.sent += 1
        elif outcome[0] == "error":
            res.failed.append(outcome[3])
    return res


def describe_failure(rt: Runtime, res: SinkResult, *, kept: bool = True) -> str:
    first = res.failed[0] if res.failed else "not delivered"
    more = f" (+{len(res.failed) - 1} more)" if len(res.failed) > 1 else ""
    tail = (f"; {res.left} event(s) kept in the outbox for the next run or `memdiag flush`"
            if kept and res.left else "")
    return f"sink {rt.name} ({rt.entry.type}): {first}{more}{tail}"


def show_to(stream: TextIO | None) -> Callable[[str], None]:
    def show(text: str) -> None:
        if stream is not None:
            stream.write(text.rstrip("\n") + "\n")
    return show

