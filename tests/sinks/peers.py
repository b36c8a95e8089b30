"""Local peers for the sink tests: a recording HTTP server with fault injection, and sockets
that refuse or never answer. Everything listens on 127.0.0.1 only and stops by itself.

The server hands each request to an *app* (see vendors.py) that plays one vendor's API and
validates the request against the documented shape (tests/sinks/schemas/); a request that does
not validate is recorded in ``violations`` and answered 400, so the sink under test fails loudly.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import jsonschema

SCHEMAS = os.path.join(os.path.dirname(__file__), "schemas")
HANG_LIMIT = 20.0  # a hung handler gives up by itself, so no test can leave a thread forever


def _format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def _dt(value: object) -> bool:
        if not isinstance(value, str) or "T" not in value:
            return False
        datetime.fromisoformat(value.replace("Z", "+00:00"))
        return True

    @checker.checks("uri", raises=ValueError)
    def _uri(value: object) -> bool:
        return isinstance(value, str) and bool(urlsplit(value).scheme)

    return checker


_CHECKER = _format_checker()
_SCHEMA_CACHE: dict[str, dict] = {}


def schema(name: str) -> dict:
    if name not in _SCHEMA_CACHE:
        with open(os.path.join(SCHEMAS, name), encoding="utf-8") as f:
            _SCHEMA_CACHE[name] = json.load(f)
    return _SCHEMA_CACHE[name]


def problems(name: str, instance: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema(name), format_checker=_CHECKER)
    return [f"{name}: {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in validator.iter_errors(instance)]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def q(self, key: str, default: str | None = None) -> str | None:
        return self.query.get(key, [default])[0]


class Reply:
    def __init__(self, status: int, body: Any = b"", headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            self.body = json.dumps(body).encode()
            self.headers.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            self.body = body.encode()
            self.headers.setdefault("Content-Type", "text/plain")
        else:
            self.body = body


class Fault:
    """One injected misbehaviour, for the next ``times`` requests matching ``when``.

    kinds: ``status`` (answer ``status`` without processing; ``retry_after`` adds the header),
    ``hang`` (read the request, never answer), ``drop`` (close without reading or answering),
    ``process-then-drop`` / ``process-then-hang`` / ``process-then-status`` (the app handles the
    request — a ticket gets created — but the client sees no answer or an error: the ambiguous
    outcome)."""

    def __init__(self, kind: str, *, status: int = 500, retry_after: str | None = None, times: int = 1,
                 when: Callable[[Request], bool] | None = None) -> None:
        self.kind, self.status, self.retry_after = kind, status, retry_after
        self.times, self.when = times, when or (lambda r: True)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:  # dropped connections are the point
        pass


class RecordingServer:
    def __init__(self, app: Callable[[Request], Reply], port: int = 0, tls=None) -> None:
        self.app = app
        self.scheme = "https" if tls is not None else "http"
        self.requests: list[Request] = []
        self.violations: list[str] = []
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _any(self) -> None:
                server._handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.httpd = _QuietServer(("127.0.0.1", port), Handler)
        if tls is not None:  # an ssl.SSLContext with the server's certificate
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> "RecordingServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def inject(self, kind: str, **kw) -> Fault:
        fault = Fault(kind, **kw)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def _take_fault(self, req: Request) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.times > 0 and f.when(req):
                    f.times -= 1
                    return f
        return None

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        peek = Request(h.command, parts.path, parse_qs(parts.query), {k.lower(): v for k, v in h.headers.items()}, b"")
        fault = self._take_fault(peek)
        if fault is not None and fault.kind == "drop":
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        body = h.rfile.read(length) if length else b""
        req = Request(h.command, parts.path, peek.query, peek.headers, body)
        if fault is not None and fault.kind == "hang":
            self.stopping.wait(HANG_LIMIT)
            h.close_connection = True
            return
        if fault is not None and fault.kind == "status":
            with self.lock:
                self.requests.append(req)
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            self._send(h, Reply(fault.status, "injected fault", headers))
            return
        with self.lock:
            self.requests.append(req)
        try:
            reply = self.app(req)
        except Violation as v:
            with self.lock:
                self.violations.append(str(v))
            reply = Reply(400, {"errorMessages": [str(v)]})
        if fault is not None and fault.kind == "process-then-drop":
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None and fault.kind == "process-then-status":
            reply = Reply(fault.status, "injected fault after processing")
        if fault is not None and fault.kind == "process-then-hang":
            self.stopping.wait(HANG_LIMIT)
            h.close_connection = True
            return
        self._send(h, reply)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, reply: Reply) -> None:
        try:
            h.send_response(reply.status)
            for k, v in reply.headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(reply.body)))
            h.end_headers()
            h.wfile.write(reply.body)
        except OSError:
            pass


class Violation(Exception):
    """A request that does not match the vendor's documented shape."""


def check(name: str, instance: Any) -> None:
    found = problems(name, instance)
    if found:
        raise Violation("; ".join(found[:3]))


def refused_url() -> str:
    """A loopback URL where nothing listens: connections are refused (endpoint down)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


class SilentListener:
    """Accepts connections (the kernel does, from the backlog) and never reads or answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.sock.close()


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
