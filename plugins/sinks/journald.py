"""The systemd journal, over its native protocol (no libsystemd), with syslog as the fallback.

Native protocol: one AF_UNIX datagram to /run/systemd/journal/socket holding ``KEY=value``
lines; a value containing a newline is sent as ``KEY\\n<u64 little-endian length><bytes>\\n``.
A datagram too large for the socket goes as a sealed memfd passed with SCM_RIGHTS, as
journald expects. Fields: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, MESSAGE_ID (one 128-bit id per
rule), and MEMDIAG_FINDING_ID/SEVERITY/CONFIDENCE/FINGERPRINT/ACTION/HOST/EVIDENCE, so
``journalctl MEMDIAG_FINGERPRINT=...`` finds every event of one finding.

Where the journal socket is missing, a classic syslog line goes to /dev/log instead (daemon
facility), with the fingerprint in the text so a SIEM can group it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import struct

from memdiag.delivery.sink import Context, PermanentError, TransientError, evidence_lines, headline, option

JOURNAL_SOCKET = "/run/systemd/journal/socket"
SYSLOG_SOCKET = "/dev/log"
PRIORITY = {"critical": 2, "warning": 4, "info": 6}
NOTICE = 5
FACILITY_DAEMON = 3


def message_id(rule_id: str) -> str:
    return hashlib.sha256(f"memdiag:{rule_id}".encode()).hexdigest()[:32]


def encode(fields: list[tuple[str, str]]) -> bytes:
    out = bytearray()
    for key, value in fields:
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            out += key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += key.encode() + b"=" + data + b"\n"
    return bytes(out)


def decode(datagram: bytes) -> dict[str, str]:
    """The inverse of :func:`encode` (used by tests and ``--dry-run`` checks)."""
    fields, i = {}, 0
    while i < len(datagram):
        nl = datagram.index(b"\n", i)
        line = datagram[i:nl]
        if b"=" in line:
            k, _, v = line.partition(b"=")
            fields[k.decode()] = v.decode("utf-8", "replace")
            i = nl + 1
        else:
            (size,) = struct.unpack("<Q", datagram[nl + 1 : nl + 9])
            fields[line.decode()] = datagram[nl + 9 : nl + 9 + size].decode("utf-8", "replace")
            i = nl + 9 + size + 1
    return fields


class JournaldSink:
    style = "log"
    secret_options = ()

    def __init__(self, name: str, options: dict) -> None:
        self.name = name
        self.socket = option(options, "socket", str, JOURNAL_SOCKET)
        self.syslog_socket = option(options, "syslog_socket", str, SYSLOG_SOCKET)
        self.identifier = option(options, "identifier", str, "memdiag")

    def fields(self, action: str, finding: dict, ctx: Context) -> list[tuple[str, str]]:
        sev = finding.get("severity", "info")
        prio = NOTICE if action == "resolve" else PRIORITY.get(sev, 6)
        text = headline(finding, action, ctx.test) + ": " + (
            "no longer found" if action == "resolve" else finding.get("message", ""))
        evidence = {e.split(": ", 1)[0]: e.split(": ", 1)[-1] for e in evidence_lines(finding, 30)}
        return [
            ("MESSAGE", text),
            ("PRIORITY", str(prio)),
            ("SYSLOG_IDENTIFIER", self.identifier),
            ("MESSAGE_ID", message_id(finding.get("rule_id", ""))),
            ("MEMDIAG_FINDING_ID", finding.get("rule_id", "")),
            ("MEMDIAG_SEVERITY", sev),
            ("MEMDIAG_CONFIDENCE", finding.get("confidence", "")),
            ("MEMDIAG_FINGERPRINT", finding.get("fingerprint", "")),
            ("MEMDIAG_ACTION", action + ("-test" if ctx.test else "")),
            ("MEMDIAG_HOST", finding.get("host", "")),
            ("MEMDIAG_EVIDENCE", json.dumps(evidence, ensure_ascii=False)),
        ]

    def deliver(self, action: str, finding: dict | None, ctx: Context) -> str | None:
        assert finding is not None
        fields = self.fields(action, finding, ctx)
        if ctx.dry_run:
            ctx.show(f"journal datagram to {self.socket} (else syslog {self.syslog_socket}):\n"
                     + "\n".join(f"{k}={v}" for k, v in fields))
            return None
        try:
            self._send_journal(encode(fields))
            return None
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            pass  # no journald here: fall back to syslog
        except OSError as exc:
            raise TransientError(f"journal socket {self.socket}: {exc.strerror or exc}") from None
        self._send_syslog(dict(fields), finding)
        return None

    def _send_journal(self, data: bytes) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            try:
                s.sendto(data, self.socket)
            except OSError as exc:
                if exc.errno not in (errno.EMSGSIZE, errno.ENOBUFS):
                    raise
                self._send_memfd(s, data)

    def _send_memfd(self, s: socket.socket, data: bytes) -> None:
        import array
        import fcntl

        fd = os.memfd_create("memdiag-journal", os.MFD_ALLOW_SEALING | os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                        fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL)
            s.sendmsg([], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))], 0, self.socket)
        finally:
            os.close(fd)

    def _send_syslog(self, fields: dict[str, str], finding: dict) -> None:
        pri = FACILITY_DAEMON * 8 + int(fields["PRIORITY"])
        line = (f"<{pri}>{self.identifier}[{os.getpid()}]: {fields['MESSAGE']} "
                f"[fp={fields['MEMDIAG_FINGERPRINT']} rule={fields['MEMDIAG_FINDING_ID']}]")
        line = line.replace("\n", " ")[:4000]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.sendto(line.encode("utf-8", "replace"), self.syslog_socket)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise PermanentError(f"neither the journal ({self.socket}) nor syslog ({self.syslog_socket}) "
                                 f"listens on this host ({exc.strerror})") from None
        except OSError as exc:
            raise TransientError(f"syslog socket {self.syslog_socket}: {exc.strerror or exc}") from None
