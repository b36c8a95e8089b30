"""Prometheus node_exporter textfile collector: ``DIR/memdiag.prom``, rewritten every run.

node_exporter serves the last file forever, so the file is rewritten on every run, even with no
findings (alert on ``time() - node_textfile_mtime_seconds`` for staleness). It is written to a
temporary file in the same folder, fsynced and renamed over the old one, so a scrape never sees
half a file. No timestamps (the collector refuses them) and no ``host`` label (Prometheus adds
``instance``). Metrics:

    memdiag_finding_active{finding_id,severity,fingerprint} 1
    memdiag_findings{severity}              findings per severity (all three, zeros included)
    memdiag_last_run_timestamp_seconds      when this file was written
    memdiag_last_run_success                1 if the diagnosis ran and every delivery succeeded
    memdiag_spool_pending                   events waiting in the delivery outbox
    memdiag_build_info{version} 1
"""

from __future__ import annotations

import os
import time

from memdiag.delivery.sink import Context, TransientError, option

SEVERITIES = ("info", "warning", "critical")


def label_value(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(findings: list[dict], *, success: bool, pending: int, now: float) -> str:
    from memdiag import __version__

    lines: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: list[tuple[str, float | int]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lines.append(f"{name}{labels} {value}")

    active = [(f'{{finding_id="{label_value(f.get("rule_id", ""))}",severity="{label_value(f.get("severity", ""))}",'
               f'fingerprint="{label_value(f.get("fingerprint", ""))}"}}', 1) for f in findings]
    family("memdiag_finding_active", "gauge", "A finding memdiag reports now (1 per finding).", active)
    counts = {s: 0 for s in SEVERITIES}
    for f in findings:
        counts[f.get("severity", "info")] = counts.get(f.get("severity", "info"), 0) + 1
    family("memdiag_findings", "gauge", "Findings of the last run by severity.",
           [(f'{{severity="{s}"}}', n) for s, n in counts.items()])
    family("memdiag_last_run_timestamp_seconds", "gauge", "When memdiag last wrote this file (Unix time).",
           [("", round(now, 3))])
    family("memdiag_last_run_success", "gauge", "1 if the last run diagnosed and delivered everything.",
           [("", 1 if success else 0)])
    family("memdiag_spool_pending", "gauge", "Delivery events waiting in memdiag's outbox.", [("", pending)])
    family("memdiag_build_info", "gauge", "memdiag version.", [(f'{{version="{label_value(__version__)}"}}', 1)])
    return "\n".join(lines) + "\n"


def write_atomic(directory: str, filename: str, text: str) -> str:
    path = os.path.join(directory, filename)
    tmp = f"{path}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return path


class TextfileSink:
    style = "snapshot"
    secret_options = ()

    def __init__(self, name: str, options: dict) -> None:
        self.name = name
        self.directory = os.path.expanduser(option(options, "directory", str, required=True))
        self.filename = option(options, "filename", str, "memdiag.prom")
        if "/" in self.filename or not self.filename.endswith(".prom"):
            raise ValueError("option 'filename' must be a plain name ending in .prom")

    def deliver(self, action: str, finding: dict | None, ctx: Context) -> str | None:
        if ctx.test:  # a test must not leave a fake finding for Prometheus to alert on
            return self._check_writable(ctx)
        text = render(ctx.findings, success=bool(ctx.meta.get("run_success", True)),
                      pending=ctx.outbox_pending, now=time.time())
        if ctx.dry_run:
            ctx.show(f"write {os.path.join(self.directory, self.filename)}:\n{text}")
            return None
        try:
            write_atomic(self.directory, self.filename, text)
        except OSError as exc:
            raise TransientError(f"cannot write {os.path.join(self.directory, self.filename)}: "
                                 f"{exc.strerror or exc}") from None
        return None

    def _check_writable(self, ctx: Context) -> None:
        probe = os.path.join(self.directory, f".memdiag-test.{os.getpid()}")
        if ctx.dry_run:
            ctx.show(f"test: create and remove {probe}")
            return None
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise TransientError(f"cannot write in {self.directory}: {exc.strerror or exc}") from None
        return None
