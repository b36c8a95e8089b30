"""The findings document: what one diagnosis concluded, as versioned JSON.

Described by schemas/findings.schema.json. Report formats and sinks work from this document
only, so anything a report shows can also be shipped, stored and compared across hosts.
"""

from __future__ import annotations

import time

from memdiag import __version__
from memdiag.engine import CONFIDENCES, SEVERITIES, RuleResult
from memdiag.errors import EXIT_CRITICAL, EXIT_OK, EXIT_UNKNOWN, EXIT_WARNING
from memdiag.evidence import Evidence
from memdiag.facts import UNKNOWN, FactSet

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Any

SCHEMA_VERSION = 1
_RANK = {"ok": -1, **{s: i for i, s in enumerate(SEVERITIES)}, "unknown": len(SEVERITIES)}
#: Without one of these there is nothing to diagnose: the verdict is "unknown", not "ok".
_TOTALS = ("meminfo.MemTotal", "top.mem_total", "free.total")


def rfc3339(epoch: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if epoch is None else epoch))


def severity_rank(severity: str) -> int:
    return _RANK.get(severity, -1)


def host_of(facts: FactSet, ev: Evidence) -> str:
    host = facts.get("platform.hostname")
    return host if host is not UNKNOWN else (ev.host or "unknown")


def _oom_reports(facts: FactSet) -> bool:
    """An OOM-killer report is memory evidence of its own: the state of memory at the kill."""
    count = facts.get("oom.report.count")
    return isinstance(count, int) and count > 0


def build(ev: Evidence, facts: FactSet, results: list[RuleResult], *, host: str, now: str) -> dict:
    """Assemble the document from the evidence, facts and rule results."""
    fired = [r for r in results if r.finding is not None]
    # Suppressed findings (memdiag.overrides) are kept, after the ones that count.
    fired.sort(key=lambda r: (bool(r.finding.get("suppressed")), -severity_rank(r.finding["severity"]),
                              -(r.rule.priority if r.rule else 50),
                              -CONFIDENCES.index(r.finding["confidence"]), r.rule_id))
    findings = [r.finding for r in fired]
    active = [f for f in findings if not f.get("suppressed")]
    # sources the deadline cut short: what they did not read is missing, not absent from the host
    cut = len({p.source for p in facts.problems if p.kind == "timeout"})
    cut_note = f"{cut} source(s) timed out or were not run" if cut else ""
    if active:
        top = active[0]
        verdict = {"severity": top["severity"],
                   "summary": f"{top['title']} ({top['confidence']})" + (
                       f"; {len(active) - 1} more finding(s)" if len(active) > 1 else "") + (
                       f"; {cut_note}" if cut else ""),
                   "rule_id": top["rule_id"]}
    elif not any(name in facts for name in _TOTALS) and not _oom_reports(facts):
        verdict = {"severity": "unknown", "rule_id": None,
                   "summary": f"No memory evidence found in {ev.label}: no /proc/meminfo, free or top output, "
                              "no OOM-killer report" + (f" ({cut_note})" if cut else "")}
    else:
        skipped = sum(r.state == "skipped" for r in results)
        notes = [f"{len(findings)} finding(s) suppressed by overrides"] if findings else []
        if skipped:
            notes.append(f"{skipped} rule(s) could not be checked for lack of evidence")
        if cut:
            notes.append(cut_note)
        summary = "No memory problem found" + (f" ({'; '.join(notes)})" if notes else "")
        verdict = {"severity": "ok", "summary": summary, "rule_id": None}
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "memdiag", "version": __version__},
        "host": host,
        "time": now,
        "input": {"kind": ev.kind, "label": ev.label,
                  "captured_at": None if ev.captured_at is None else rfc3339(ev.captured_at)},
        "verdict": verdict,
        "findings": findings,
        "rules": [_rule_entry(r) for r in sorted(results, key=lambda r: r.rule_id)],
        "problems": [{"source": p.source, "message": p.message, "path": p.path, "kind": p.kind}
                     for p in facts.problems],
        # tuples as lists, as JSON has them (written inline: a call per fact cost more than the rest)
        "facts": {name: list(v) if isinstance(v := f.value, tuple) else v for name, f in sorted(facts.facts.items())},
    }
    accounting = _accounting(facts)
    if accounting:
        doc["accounting"] = accounting
    return doc


def _rule_entry(r: RuleResult) -> dict:
    entry: dict[str, Any] = {"id": r.rule_id, "state": r.state}
    if r.reason:
        entry["reason"] = r.reason
    if r.missing:
        entry["missing"] = r.missing
    return entry


def _accounting(facts: FactSet) -> dict:
    keys = {"total_bytes": "accounting.total_bytes", "used_bytes": "accounting.used_bytes",
            "kernel_bytes": "accounting.kernel_bytes", "user_bytes": "accounting.user_bytes",
            "unaccounted_bytes": "accounting.unaccounted_bytes", "unaccounted_ratio": "accounting.unaccounted_ratio",
            "formula": "accounting.formula", "notes": "accounting.notes", "segments": "accounting.segments"}
    return {k: facts.get(v) for k, v in keys.items() if facts.get(v) is not UNKNOWN}


def exit_code(doc: dict) -> int:
    """Nagios-compatible: 0 nothing above info, 1 warning, 2 critical, 3 no diagnosis possible."""
    sev = doc["verdict"]["severity"]
    return {"critical": EXIT_CRITICAL, "warning": EXIT_WARNING, "unknown": EXIT_UNKNOWN}.get(sev, EXIT_OK)
