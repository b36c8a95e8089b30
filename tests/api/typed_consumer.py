"""A program embedding memdiag, as a type checker sees it (tests/api/test_typing.py runs
``mypy --strict`` over it). Not a test module: it is checked, never collected."""

from __future__ import annotations

from pathlib import Path

import memdiag
from memdiag import DeliveryResult, Finding, Report


def worst(report: Report) -> Finding | None:
    active = [f for f in report.findings if f.active]
    return active[0] if active else None


def summary(path: Path, chat_config: str) -> tuple[int, str]:
    report = memdiag.diagnose(path, rules=[Path("site-rules")], params={"vmware-balloon": {"min_unaccounted": "1GiB"}},
                              timeout=10.0, plugins=memdiag.Plugins(blocked=["html"]))
    severity: memdiag.VerdictSeverity = report.verdict.severity
    top = worst(report)
    lines = [f"{severity}: {report.verdict.summary}"]
    if top is not None:
        sev: memdiag.Severity = top.severity
        lines.append(f"{sev} {top.rule_id} {top.fingerprint}: {top.message}")
        lines += [f"  {e.fact} = {e.display} (from {e.origin or '?'})" for e in top.evidence]
        lines.append(top.remediation.steps)
    total = report.facts.get("meminfo.MemTotal")
    origin: str | None = report.facts.origin("meminfo.MemTotal")
    lines.append(f"MemTotal {total} from {origin}")
    pasted = memdiag.diagnose(text="MemTotal: 1024 kB\n")
    lines.append(pasted.to_text(width=100, color=False))
    try:
        result: DeliveryResult = memdiag.deliver(report, sinks=["chat"], config=chat_config, dry_run=True)
    except memdiag.UsageError as exc:
        return exc.exit_code, str(exc)
    failed = [name for name, outcome in result.sinks.items() if not outcome.ok]
    return report.exit_code + (5 if failed else 0), report.to_markdown() + "\n".join(lines)
