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

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def need_peer(what: str, why: str) -> None:
    """Skip, or fail under CI, when a real peer is missing."""
    message = f"{what} is missing: {why}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must provide it: scripts/test installs it)")
    pytest.skip(message)


# -- findings documents, built by hand as schemas/findings.schema.json describes ------------

def fingerprint(rule_id: str, host: str, *discriminators: str) -> str:
    return hashlib.sha256("|".join((rule_id, host, *discriminators)).encode()).hexdigest()[:16]


def make_finding(rule_id: str = "vmware-balloon", *, host: str = "web1", severity: str = "warning",
                 confidence: str = "suspected", tags=("balloon", "vmware"), unaccounted: int = 5_250_000_000,
                 discriminators: tuple[str, ...] = (), suppressed: dict | None = None) -> dict:
    gib = unaccounted / 2**30
    f = {
        "rule_id": rule_id,
        "title": f"{rule_id.replace('-', ' ').capitalize()} is holding memory",
        "severity": severity,
        "confidence": confidence,
        "message": f"The {rule_id} condition is {confidence}: {gib:.2f} GiB that no meminfo field accounts for.",
        "fingerprint": fingerprint(rule_id, host, *discriminators),
        "host": host,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tags": list(tags),
        "evidence": [
            {"fact": "accounting.unaccounted_bytes", "value": unaccounted, "display": f"{gib:.2f} GiB",
             "unit": "bytes", "origin": "proc/meminfo"},
            {"fact": "platform.hypervisor", "value": "vmware", "display": "vmware"},
        ],
        "remediation": {"steps": "Ask the vSphere admin about the balloon target for this VM.",
                        "confirm": "sudo cat /sys/kernel/debug/vmmemctl"},
        "references": [{"title": "vmw_balloon", "url": "https://www.kernel.org/doc/html/latest/"}],
    }
    if suppressed is not None:
        f["suppressed"] = suppressed
    return f


def make_doc(findings: list[dict], *, host: str = "web1", rules: dict[str, str] | None = None) -> dict:
    """A findings document; ``rules`` maps rule id -> state for rules that did not fire."""
    states = {f["rule_id"]: "fired" for f in findings}
    for rid, st in (rules or {}).items():
        states.setdefault(rid, st)
    worst = max((f["severity"] for f in findings), key=["info", "warning", "critical"].index, default="ok")
    doc = {
        "schema_version": 1,
        "tool": {"name": "memdiag", "version": "0.1.0"},
        "host": host,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "input": {"kind": "live", "label": "this host", "captured_at": None},
        "verdict": {"severity": worst, "summary": f"{len(findings)} finding(s)",
                    "rule_id": findings[0]["rule_id"] if findings else None},
        "findings": findings,
        "rules": [{"id": rid, "state": st} for rid, st in states.items()],
        "problems": [],
    }
    _validate_doc(doc)
    return doc


_DOC_SCHEMA = None


def _validate_doc(doc: dict) -> None:
    global _DOC_SCHEMA
    import jsonschema

    if _DOC_SCHEMA is None:
        with open(os.path.join(REPO, "schemas", "findings.schema.json"), encoding="utf-8") as f:
            _DOC_SCHEMA = json.load(f)
    jsonschema.validate(doc, _DOC_SCHEMA)


# -- memdiag side -----------------------------------------------------------------------------

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


FAST = {"deadline": 3, "connect_timeout": 1, "read_timeout": 1, "retries": 2, "backoff": 0.01, "backoff_cap": 0.05}


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
