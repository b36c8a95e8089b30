"""Sinks that stay on the host: journald (native protocol, memfd for big entries, syslog
fallback) on AF_UNIX sockets bound in a temporary folder, and the node_exporter textfile
checked by Prometheus's own promtool."""

from __future__ import annotations

import array
import io
import os
import shutil
import socket
import stat
import subprocess

import pytest
from sinkkit import FAST, make_doc, make_finding, need_peer

from memdiag.delivery import deliver
from memdiag.plugins.sinks.journald import decode


def run(doc, registry, cfg, dry=False):
    out = io.StringIO()
    rep = deliver(doc, registry=registry, config_path=cfg, only=None, dry_run=dry, stream=out)
    return rep, out.getvalue()


@pytest.fixture
def dgram(tmp_path):
    made = []

    def bind(name: str) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(str(tmp_path / name))
        s.settimeout(2)
        made.append(s)
        return s
    yield bind
    for s in made:
        s.close()


def receive(sock: socket.socket) -> bytes:
    """One datagram, or the memfd journald would receive in its place."""
    msg, ancdata, _flags, _addr = sock.recvmsg(1 << 20, socket.CMSG_SPACE(4))
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fd = array.array("i", data[:4])[0]
            try:  # read from the start, as journald does (the sender's offset is shared)
                return os.pread(fd, os.fstat(fd).st_size, 0)
            finally:
                os.close(fd)
    return msg


def test_journald_native_fields(dgram, tmp_path, registry, write_config, state_dir):
    journal = dgram("journal.sock")
    cfg = write_config([{"name": "journal", "type": "journald", "socket": str(tmp_path / "journal.sock"),
                         "syslog_socket": str(tmp_path / "nothing"), **FAST}])
    f = make_finding(severity="critical")
    f["message"] = "two lines\nof message"  # newlines use the binary length form
    rep, _ = run(make_doc([f]), registry, cfg)
    assert rep.exit_code == 0, rep.lines
    fields = decode(receive(journal))
    assert fields["PRIORITY"] == "2" and fields["SYSLOG_IDENTIFIER"] == "memdiag"
    assert fields["MEMDIAG_FINGERPRINT"] == f["fingerprint"] and fields["MEMDIAG_ACTION"] == "trigger"
    assert "two lines\nof message" in fields["MESSAGE"]
    assert len(fields["MESSAGE_ID"]) == 32 and int(fields["MESSAGE_ID"], 16) >= 0
    run(make_doc([]), registry, cfg)
    fields = decode(receive(journal))
    assert fields["MEMDIAG_ACTION"] == "resolve" and fields["PRIORITY"] == "5"


def test_journald_large_entry_goes_by_memfd(dgram, tmp_path, registry, write_config, state_dir):
    journal = dgram("journal.sock")
    journal.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    cfg = write_config([{"name": "journal", "type": "journald", "socket": str(tmp_path / "journal.sock"), **FAST}])
    f = make_finding()
    f["evidence"] = [{"fact": f"slab.cache{i}", "display": "x" * 9000} for i in range(30)]
    rep, _ = run(make_doc([f]), registry, cfg)
    assert rep.exit_code == 0, rep.lines
    fields = decode(receive(journal))
    assert fields["MEMDIAG_FINGERPRINT"] == f["fingerprint"] and len(fields["MEMDIAG_EVIDENCE"]) > 200_000


def test_syslog_fallback_without_journald(dgram, tmp_path, registry, write_config, state_dir):
    syslog = dgram("log.sock")
    cfg = write_config([{"name": "journal", "type": "journald", "socket": str(tmp_path / "no-journal"),
                         "syslog_socket": str(tmp_path / "log.sock"), **FAST}])
    f = make_finding(severity="warning")
    rep, _ = run(make_doc([f]), registry, cfg)
    assert rep.exit_code == 0, rep.lines
    line = syslog.recv(8192).decode()
    assert line.startswith("<28>memdiag[")  # daemon.warning
    assert f"fp={f['fingerprint']}" in line


def test_neither_journal_nor_syslog_is_reported(tmp_path, registry, write_config, state_dir):
    cfg = write_config([{"name": "journal", "type": "journald", "socket": str(tmp_path / "a"),
                         "syslog_socket": str(tmp_path / "b"), **FAST}])
    rep, _ = run(make_doc([make_finding()]), registry, cfg)
    assert rep.exit_code == 5 and "neither the journal" in rep.lines[0]


def promtool_check(path: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        need_peer("promtool", "apt-get install prometheus")
    with open(path, "rb") as f:
        proc = subprocess.run([promtool, "check", "metrics"], stdin=f, capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()


def test_textfile_rewritten_every_run(tmp_path, registry, write_config, state_dir):
    out = tmp_path / "textfile"
    out.mkdir()
    cfg = write_config([{"name": "prom", "type": "textfile", "directory": str(out)}])
    crit, warn = make_finding("rule-a", severity="critical"), make_finding("rule-b", severity="warning")
    warn["rule_id"] = 'we"ird\\rule'  # label values are escaped
    rep, _ = run(make_doc([crit, warn]), registry, cfg)
    assert rep.exit_code == 0, rep.lines
    path = out / "memdiag.prom"
    text = path.read_text()
    promtool_check(str(path))
    assert f'memdiag_finding_active{{finding_id="rule-a",severity="critical",fingerprint="{crit["fingerprint"]}"}} 1' in text
    assert 'finding_id="we\\"ird\\\\rule"' in text
    assert 'memdiag_findings{severity="critical"} 1' in text and "memdiag_last_run_success 1" in text
    assert "memdiag_spool_pending 0" in text and 'memdiag_build_info{version="' in text
    assert text.endswith("\n") and "host=" not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    first_mtime = path.stat().st_mtime_ns
    run(make_doc([]), registry, cfg)  # nothing found: still rewritten, with no active findings
    text = path.read_text()
    promtool_check(str(path))
    assert "memdiag_finding_active{" not in text and 'memdiag_findings{severity="critical"} 0' in text
    assert path.stat().st_mtime_ns >= first_mtime
    assert [p.name for p in out.iterdir()] == ["memdiag.prom"]  # no temporary files left


def test_textfile_reports_failed_delivery_and_pending(tmp_path, registry, write_config, state_dir, monkeypatch):
    from peers import refused_url

    out = tmp_path / "textfile"
    out.mkdir()
    monkeypatch.setenv("PD_KEY", "R0UT1NGKEY0123456789abcdefABCDEF")
    cfg = write_config([{"name": "pd", "type": "pagerduty", "routing_key": "${PD_KEY}",
                         "url": refused_url() + "/v2/enqueue", **FAST},
                        {"name": "prom", "type": "textfile", "directory": str(out)}])
    rep, _ = run(make_doc([make_finding()]), registry, cfg)
    assert rep.exit_code == 5
    text = (out / "memdiag.prom").read_text()
    assert "memdiag_last_run_success 0" in text and "memdiag_spool_pending 1" in text
