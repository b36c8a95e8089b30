"""The local state store: what each sink was told about each finding, and the outbox.

One SQLite file (``delivery.sqlite3``) in a 0700 folder, itself 0600: the ``state`` table holds,
per sink and fingerprint, what the remote side has been (or is about to be) told — status, last
announced severity, remote id (ticket key, Message-ID) — and the ``outbox`` table the events not
yet delivered. Changing both happens in one transaction, and SQLite's rollback journal with
``synchronous=FULL`` makes each transaction all-or-nothing across crashes and power loss.
Neither table ever holds a secret: events carry the finding, and requests are rendered at
delivery time from the configuration.

A run holds an exclusive ``flock`` on ``delivery.lock`` for the whole delivery, so two memdiag
processes never deliver the same event twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

from memdiag.errors import DeliveryError

DB_NAME = "delivery.sqlite3"
LOCK_NAME = "delivery.lock"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS state (
    sink TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    host TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    severity TEXT NOT NULL,          -- the severity last announced to this sink
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    resolved_at TEXT,
    remote_id TEXT,                  -- what the sink returned on create (ticket key, Message-ID)
    meta TEXT NOT NULL DEFAULT '{}', -- sink-private JSON, never secrets
    finding TEXT NOT NULL,           -- the latest finding, for resolves and re-sends
    PRIMARY KEY (sink, fingerprint)
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    host TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('trigger', 'update', 'resolve')),
    finding TEXT NOT NULL,
    previous_severity TEXT,
    event_id TEXT NOT NULL,          -- stable across retries (webhook-id, Message-ID)
    enqueued_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_attempt TEXT,
    last_error TEXT,
    ambiguous_at TEXT,               -- a create may have happened then (timeout, reset, 5xx)
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'failed'))
);
CREATE INDEX IF NOT EXISTS outbox_by_finding ON outbox (sink, fingerprint, id);
"""


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def state_dir(configured: str | None = None) -> str:
    """``$MEMDIAG_STATE_DIR``, the config's ``state_dir``, /var/lib/memdiag for root, else
    ``$XDG_STATE_HOME/memdiag`` (never a tmpfs: the outbox must survive a reboot)."""
    env = os.environ.get("MEMDIAG_STATE_DIR")
    if env:
        return env
    if configured:
        return configured
    if os.geteuid() == 0:
        return "/var/lib/memdiag"
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "memdiag")


@dataclass
class StateRow:
    sink: str
    fingerprint: str
    host: str
    rule_id: str
    status: str
    severity: str
    first_seen: str
    last_seen: str
    resolved_at: str | None
    remote_id: str | None
    meta: dict[str, Any]
    finding: dict[str, Any]


@dataclass
class Event:
    id: int
    sink: str
    fingerprint: str
    host: str
    action: str
    finding: dict[str, Any]
    previous_severity: str | None
    event_id: str
    enqueued_at: str
    attempts: int = 0
    last_attempt: str | None = None
    last_error: str | None = None
    status: str = "pending"
    ambiguous_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Store:
    """The SQLite file; use :meth:`open` (real, locked) or :meth:`scratch_copy` (dry runs)."""

    def __init__(self, conn: sqlite3.Connection, path: str, lock_fd: int | None = None) -> None:
        self.conn = conn
        self.path = path
        self._lock_fd = lock_fd

    @classmethod
    def open(cls, directory: str, *, lock_timeout: float = 10.0) -> "Store":
        """Create (0700/0600) or open the store and take the delivery lock."""
        try:
            _ensure_private_dir(directory)
            lock_fd = _lock(os.path.join(directory, LOCK_NAME), lock_timeout)
        except OSError as exc:
            raise DeliveryError(f"cannot use the state folder: {exc.strerror or exc}", path=directory) from None
        path = os.path.join(directory, DB_NAME)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            if os.stat(path).st_uid == os.geteuid():
                os.chmod(path, 0o600)
            conn = _connect(path)
        except (OSError, sqlite3.Error) as exc:
            os.close(lock_fd)
            raise DeliveryError(f"cannot open the state store: {exc}", path=path) from None
        return cls(conn, path, lock_fd)

    @classmethod
    def scratch_copy(cls, directory: str) -> "Store":
        """An in-memory copy of the store (or an empty one), for ``--dry-run``: nothing persists."""
        mem = sqlite3.connect(":memory:", isolation_level=None)
        path = os.path.join(directory, DB_NAME)
        if os.path.exists(path):
            try:
                src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
                src.backup(mem)
                src.close()
            except sqlite3.Error:
                pass  # unreadable as this user: show what a fresh store would do
        mem.executescript(_SCHEMA)
        mem.row_factory = sqlite3.Row
        return cls(mem, ":memory:")

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- state rows --------------------------------------------------------------------------

    def rows(self, sink: str, host: str | None = None) -> dict[str, StateRow]:
        sql, args = "SELECT * FROM state WHERE sink = ?", [sink]
        if host is not None:
            sql += " AND host = ?"
            args.append(host)
        return {r["fingerprint"]: _row(r) for r in self.conn.execute(sql, args)}

    def row(self, sink: str, fingerprint: str) -> StateRow | None:
        r = self.conn.execute("SELECT * FROM state WHERE sink = ? AND fingerprint = ?", (sink, fingerprint)).fetchone()
        return None if r is None else _row(r)

    def put_row(self, row: StateRow) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO state (sink, fingerprint, host, rule_id, status, severity, first_seen,"
            " last_seen, resolved_at, remote_id, meta, finding) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (row.sink, row.fingerprint, row.host, row.rule_id, row.status, row.severity, row.first_seen,
             row.last_seen, row.resolved_at, row.remote_id, _dump(row.meta), _dump(row.finding)),
        )

    def set_remote(self, sink: str, fingerprint: str, remote_id: str | None, meta: dict) -> None:
        if remote_id is None:
            self.conn.execute("UPDATE state SET meta = ? WHERE sink = ? AND fingerprint = ?",
                              (_dump(meta), sink, fingerprint))
        else:
            self.conn.execute("UPDATE state SET remote_id = ?, meta = ? WHERE sink = ? AND fingerprint = ?",
                              (remote_id, _dump(meta), sink, fingerprint))

    def all_rows(self) -> list[StateRow]:
        return [_row(r) for r in self.conn.execute("SELECT * FROM state ORDER BY sink, fingerprint")]


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=True)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA synchronous = FULL")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(f"written by a newer memdiag (schema {version})")
    conn.executescript(_SCHEMA)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return conn


def _ensure_private_dir(directory: str) -> None:
    os.makedirs(directory, mode=0o700, exist_ok=True)
    st = os.stat(directory)
    if st.st_uid == os.geteuid() and st.st_mode & 0o077:
        os.chmod(directory, 0o700)


def _lock(path: str, timeout: float) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    end = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= end:
                os.close(fd)
                raise OSError(f"another memdiag is delivering (lock {path} held for {timeout:g} s)") from None
            time.sleep(0.05)


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _row(r: sqlite3.Row) -> StateRow:
    return StateRow(
        sink=r["sink"], fingerprint=r["fingerprint"], host=r["host"], rule_id=r["rule_id"],
        status=r["status"], severity=r["severity"], first_seen=r["first_seen"], last_seen=r["last_seen"],
        resolved_at=r["resolved_at"], remote_id=r["remote_id"], meta=json.loads(r["meta"] or "{}"),
        finding=json.loads(r["finding"]),
    )
