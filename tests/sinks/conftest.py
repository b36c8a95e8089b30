"""Fixtures for the sink tests: hand-built findings documents, a private state folder, the
built-in sink types, config files, and the real peers (recording HTTP server, Alertmanager,
SMTP). A missing peer skips locally and FAILS under CI (the environment variable CI is set)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

sys.path.insert(0, os.path.dirname(__file__))  # peers.py, vendors.py

from peers import RecordingServer, free_port  # noqa: E402

from memdiag.registry import Registry  # noqa: E402
from sinkkit import FAST, REPO, need_peer  # noqa: E402,F401

@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    d = tmp_path / "state"
    monkeypatch.setenv("MEMDIAG_STATE_DIR", str(d))
    return d


@pytest.fixture
def registry():
    """Only the built-in sinks, registered through their hook exactly as the loader does."""
    from memdiag.plugins import sinks

    reg = Registry()
    sinks.memdiag_sinks(register=lambda name, factory: reg.sinks.__setitem__(name, factory))
    sinks.memdiag_commands(register=lambda name, help, configure, run: reg.commands.__setitem__(
        name, (help, configure, run)))
    return reg




@pytest.fixture
def write_config(tmp_path):
    def write(sinks: list[dict], name: str = "config.yaml", **delivery) -> str:
        data: dict = {"sinks": sinks}
        if delivery:
            data["delivery"] = delivery
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return str(path)
    return write


@pytest.fixture
def serve():
    started: list[RecordingServer] = []

    def start(app) -> RecordingServer:
        srv = RecordingServer(app).start()
        started.append(srv)
        return srv
    yield start
    for srv in started:
        srv.stop()


# -- Alertmanager (Debian's prometheus-alertmanager, started by the test) --------------------

AM_BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory):
    if AM_BINARY is None:
        need_peer("prometheus-alertmanager", "apt-get install prometheus-alertmanager")
    receiver = RecordingServer(lambda req: __import__("peers").Reply(200, "")).start()
    d = tmp_path_factory.mktemp("am")
    (d / "am.yml").write_text(yaml.safe_dump({
        "route": {"receiver": "rec", "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h",
                  "group_by": ["alertname", "memdiag_fp"]},
        "receivers": [{"name": "rec", "webhook_configs": [{"url": f"{receiver.url}/am", "send_resolved": True}]}],
    }))
    port = free_port()
    proc = subprocess.Popen(
        [AM_BINARY, f"--config.file={d / 'am.yml'}", f"--storage.path={d / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=open(d / "am.log", "wb"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"alertmanager did not start: {(d / 'am.log').read_text()[-2000:]}")
        time.sleep(0.1)
    yield {"url": url, "receiver": receiver}
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
    receiver.stop()


# -- SMTP (aiosmtpd, in process, with STARTTLS and AUTH) ---------------------------------------

@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (cert path, server SSLContext)."""
    import ssl

    if shutil.which("openssl") is None:
        need_peer("openssl", "needed to make the test servers' certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(str(cert), str(key))
    return str(cert), server


@pytest.fixture(scope="module")
def smtp_server(tls_cert):
    try:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword
    except ImportError:
        need_peer("aiosmtpd", "pip install aiosmtpd (the test extra)")
    cert, tls = tls_cert

    class Handler:
        def __init__(self) -> None:
            self.messages: list[dict] = []
            self.reject_next: list[str] = []  # e.g. "451 4.3.0 try later"

        async def handle_DATA(self, server, session, envelope):
            if self.reject_next:
                return self.reject_next.pop(0)
            self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                  "data": envelope.content, "tls": session.ssl is not None,
                                  "auth": session.authenticated})
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"memdiag" and \
            auth_data.password == b"smtp-secret-pw-4711"
        # an explicit 535: aiosmtpd 1.4 sends nothing for a bare failed AuthResult
        return AuthResult(success=True) if ok else AuthResult(
            success=False, handled=False, message="535 5.7.8 Authentication credentials invalid")

    handler = Handler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, tls_context=tls, require_starttls=True,
                            authenticator=authenticator, auth_require_tls=True)
    controller.start()
    yield {"host": "127.0.0.1", "port": port, "handler": handler, "ca_file": cert}
    controller.stop()
