"""A small standard-library HTTP client for sinks: per-operation timeouts, retries, no leaks.

Retries only what may succeed later: network errors, 408, 429 and 5xx (with exponential backoff
and full jitter, ``Retry-After`` honoured when it fits in the deadline). A non-idempotent request
(a ticket create) is retried here only when it surely never reached the server (connection
refused, DNS failure, 408, 429); a timeout, reset or 5xx after sending raises
:class:`AmbiguousError` so the sink looks the object up before creating it again.

Socket timeouts cannot bound DNS resolution; the engine runs each sink in a worker thread and
abandons it at the sink's deadline, which is the hard limit. Error messages name the method and
host only (chat webhook URLs carry their secret in the path) and pass through the redactor.
"""

from __future__ import annotations

import http.client
import json as _json
import logging
import random
import socket
import ssl
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

from memdiag.bounded import Deadline
from memdiag.delivery.redact import Redactor
from memdiag.delivery.sink import AmbiguousError, PermanentError, TransientError

log = logging.getLogger("memdiag.delivery")

MAX_BODY = 1024 * 1024
USER_AGENT = "memdiag"
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "private-token"})


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""

    def json(self) -> Any:
        """The body as JSON, or ``None`` when it is empty or not JSON."""
        if not self.body:
            return None
        try:
            return _json.loads(self.body)
        except ValueError:
            return None

    def text(self, limit: int = 300) -> str:
        return self.body[:limit].decode("utf-8", "replace").strip().replace("\n", " ")


class HttpClient:
    """One per sink per run; every request shares the sink's deadline."""

    dry_run = False

    def __init__(
        self,
        *,
        deadline: Deadline,
        redactor: Redactor,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 1.0,
        backoff_cap: float = 30.0,
        ca_file: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.deadline = deadline
        self.redactor = redactor
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retries = retries
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.ca_file = ca_file
        self._sleep = sleep
        self._ssl: ssl.SSLContext | None = None

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        json: Any = None,
        data: bytes | None = None,
        idempotent: bool = True,
        allow: tuple[int, ...] = (),
        dry_result: Any = None,
    ) -> Response:
        """Send one request, retrying as described above. 2xx and ``allow`` statuses return;
        everything else raises a :class:`~memdiag.delivery.sink.SinkError`."""
        hdrs = {"User-Agent": USER_AGENT, **(headers or {})}
        for name, value in hdrs.items():  # derived credentials (Basic base64) are secrets too
            if name.lower() in SENSITIVE_HEADERS:
                self.redactor.add(value)
                self.redactor.add(value.partition(" ")[2])
        if json is not None:
            data = _json.dumps(json, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            hdrs.setdefault("Content-Type", "application/json")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PermanentError(self.redactor.redact(f"not an http(s) URL: {url}"))
        where = f"{method} {parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                resp = self._once(method, parts, hdrs, data)
            except _NotSent as exc:
                problem = f"{where}: {exc}"
            except ssl.SSLCertVerificationError as exc:
                raise PermanentError(self._clean(f"{where}: TLS certificate not trusted: {exc.verify_message}")) from None
            except (OSError, http.client.HTTPException) as exc:
                problem = f"{where}: {_describe(exc)}"
                if not idempotent:
                    raise AmbiguousError(self._clean(problem + " (the request may have been processed)")) from None
            else:
                if 200 <= resp.status < 300 or resp.status in allow:
                    log.debug("%s", self._clean(f"{where}: HTTP {resp.status}"))
                    return resp
                problem = f"{where}: HTTP {resp.status}: {resp.text()}".rstrip(": ")
                limited = resp.status in (408, 429) or (
                    resp.status == 403 and ("retry-after" in resp.headers
                                            or resp.headers.get("x-ratelimit-remaining") == "0"))
                if limited:
                    retry_after = _retry_after(resp.headers.get("retry-after"))
                elif resp.status >= 500:
                    if not idempotent:
                        raise AmbiguousError(self._clean(problem))
                    retry_after = _retry_after(resp.headers.get("retry-after"))
                else:
                    raise PermanentError(self._clean(problem))
            log.debug("%s", self._clean(f"attempt {attempt}: {problem}"))
            if attempt > self.retries:
                raise TransientError(self._clean(problem))
            delay = retry_after if retry_after is not None else random.uniform(
                0, min(self.backoff_cap, self.backoff * 2 ** (attempt - 1)))
            remaining = self.deadline.remaining()
            if remaining is not None and delay >= remaining:
                why = f"Retry-After {retry_after:g} s" if retry_after is not None else "the next retry"
                raise TransientError(self._clean(f"{problem} ({why} is beyond the deadline)"))
            self._sleep(delay)

    # -- one attempt -------------------------------------------------------------------------

    def _once(self, method: str, parts, headers: dict[str, str], body: bytes | None) -> Response:
        connect_t, read_t = self._timeouts()
        host, port = parts.hostname, parts.port
        proxy = _proxy_for(parts)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        if parts.scheme == "https":
            ctx = self._ssl_context()
            if proxy:
                conn = http.client.HTTPSConnection(proxy[0], proxy[1], timeout=connect_t, context=ctx)
                conn.set_tunnel(host, port or 443)
            else:
                conn = http.client.HTTPSConnection(host, port or 443, timeout=connect_t, context=ctx)
        elif proxy:
            conn = http.client.HTTPConnection(proxy[0], proxy[1], timeout=connect_t)
            target = parts.geturl()
        else:
            conn = http.client.HTTPConnection(host, port or 80, timeout=connect_t)
        try:
            try:
                conn.connect()
            except ssl.SSLCertVerificationError:
                raise
            except (OSError, http.client.HTTPException) as exc:
                raise _NotSent(_describe(exc)) from None
            conn.sock.settimeout(read_t)
            conn.request(method, target, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read(MAX_BODY)
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def _timeouts(self) -> tuple[float, float]:
        remaining = self.deadline.remaining()
        if remaining is not None and remaining <= 0.01:
            raise _NotSent("the sink's deadline has passed")
        if remaining is None:
            return self.connect_timeout, self.read_timeout
        return min(self.connect_timeout, remaining), min(self.read_timeout, remaining)

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=self.ca_file)
        return self._ssl

    def _clean(self, text: str) -> str:
        return self.redactor.redact(text)


class DryRunHttp:
    """Prints each request exactly as it would be sent (secrets masked) and sends nothing.

    Look-ups answer with the sink's ``dry_result`` (an empty search, usually), so the output
    shows what a run would do on a fresh remote side."""

    dry_run = True

    def __init__(self, show: Callable[[str], None], redactor: Redactor, deadline: Deadline | None = None) -> None:
        self.show = show
        self.redactor = redactor
        self.deadline = deadline or Deadline(None)

    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None, json: Any = None,
                data: bytes | None = None, idempotent: bool = True, allow: tuple[int, ...] = (),
                dry_result: Any = None) -> Response:
        hdrs = {"User-Agent": USER_AGENT, **(headers or {})}
        if json is not None:
            data = _json.dumps(json, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            hdrs.setdefault("Content-Type", "application/json")
        lines = [f"{method} {url}"]
        for k, v in hdrs.items():
            if k.lower() in SENSITIVE_HEADERS:
                scheme, _, _ = v.partition(" ")
                v = f"{scheme} ***" if scheme and scheme != v else "***"
            lines.append(f"{k}: {v}")
        if data:
            lines += ["", data.decode("utf-8", "replace")]
        self.show(self.redactor.redact("\n".join(lines)))
        return Response(200, {}, _json.dumps(dry_result if dry_result is not None else {}).encode())


class _NotSent(Exception):
    """The request never left this host (connect failed), so retrying cannot duplicate it."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "no answer within the timeout"
    if isinstance(exc, socket.gaierror):
        return f"name resolution failed ({exc.strerror or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (ConnectionResetError, http.client.RemoteDisconnected)):
        return "connection closed by the server without an answer"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or exc})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


_LOOPBACK = frozenset({"localhost", "::1"})


def _proxy_for(parts) -> tuple[str, int] | None:
    """The ``*_proxy`` environment variables, as urllib reads them (``no_proxy`` included)."""
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme)
    host = parts.hostname or ""
    if not proxy or host in _LOOPBACK or host.startswith("127.") or urllib.request.proxy_bypass(host):
        return None
    p = urlsplit(proxy if "://" in proxy else "http://" + proxy)
    if not p.hostname:
        return None
    return p.hostname, p.port or 8080
