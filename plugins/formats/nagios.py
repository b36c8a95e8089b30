"""Nagios plugin output (also read by Icinga, Sensu, Naemon, Checkmk): ``--format nagios``.

Line 1 is ``MEMDIAG <STATE> - <summary> | <perfdata>``; lines 2+ are the long output, one line per
finding, then one per evidence problem. The state word follows the verdict exactly as the exit
code does (ok/info 0 OK, warning 1, critical 2; memdiag's own failure 3 UNKNOWN), so the text and
the exit code a monitoring server sees never disagree.

Perfdata follows the plugin guidelines: ``'label'=value[UOM];[warn];[crit];[min];[max]``, C locale
numbers (Python's formatting never uses the locale), labels without ``'`` or ``=``, sizes in
``B``. Only values the diagnosis established are emitted; an unknown value is left out, never 0.
"""

from __future__ import annotations

import re

from memdiag.hookspecs import hookimpl

from ._document import (
    NAGIOS_STATE,
    UNKNOWN_STATE,
    active_findings,
    count_by_severity,
    fact,
    mem_total,
    number,
    suppressed_findings,
    unaccounted,
    verdict_severity,
)

#: How many finding ids the status line names before "+N more".
STATUS_IDS = 5


def state(document: dict) -> tuple[str, int]:
    """(state word, exit code) for a findings document."""
    return NAGIOS_STATE.get(verdict_severity(document), UNKNOWN_STATE)


def clean(text: object) -> str:
    """One line of plugin output: no newlines, and no ``|`` (it starts the perfdata)."""
    return re.sub(r"\s+", " ", str(text)).replace("|", "/").strip()


def _label(name: str) -> str:
    return "'" + re.sub(r"['=]", "_", name) + "'"


def _num(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def perf(label: str, value: float, uom: str = "", warn: str = "", crit: str = "",
         minimum: float | None = None, maximum: float | None = None) -> str:
    """One perfdata item; trailing empty fields are dropped, as the guidelines allow."""
    fields = [
        warn,
        crit,
        "" if minimum is None else _num(minimum),
        "" if maximum is None else _num(maximum),
    ]
    while fields and fields[-1] == "":
        fields.pop()
    return f"{_label(label)}={_num(value)}{uom}" + "".join(";" + f for f in fields)


def perfdata(document: dict) -> list[str]:
    """The perfdata items of a document.

    The findings counts carry the thresholds that decide the state (range ``0``: alert above 0),
    so a grapher shows the same boundaries the check applies; measured sizes carry min and max.
    """
    findings = active_findings(document)
    counts = count_by_severity(findings)
    items = [
        perf("findings_critical", counts["critical"], crit="0", minimum=0),
        perf("findings_warning", counts["warning"], warn="0", minimum=0),
        perf("findings_info", counts["info"], minimum=0),
        perf("evidence_problems", len(document.get("problems") or ()), minimum=0),
    ]
    total = mem_total(document)
    acc = document.get("accounting") or {}
    if total:
        items.append(perf("mem_total", total, "B", minimum=0))
    available = number(fact(document, "meminfo.MemAvailable"))
    if available is not None:
        items.append(perf("mem_available", available, "B", minimum=0, maximum=total))
    used = number(acc.get("used_bytes"))
    if used is not None:
        items.append(perf("mem_used", used, "B", minimum=0, maximum=total))
    gap, ratio = unaccounted(document)
    if gap is not None:
        items.append(perf("mem_unaccounted", gap, "B", minimum=0, maximum=total))
    if ratio is not None:
        items.append(perf("mem_unaccounted_ratio", round(ratio * 100, 2), "%", minimum=0, maximum=100))
    swap_total = number(fact(document, "meminfo.SwapTotal"))
    swap_free = number(fact(document, "meminfo.SwapFree"))
    if swap_total is not None and swap_free is not None:
        items.append(perf("swap_used", swap_total - swap_free, "B", minimum=0, maximum=swap_total))
    return items


def status_line(document: dict) -> str:
    word, _ = state(document)
    findings = active_findings(document)
    summary = clean((document.get("verdict") or {}).get("summary") or "").rstrip(".")
    if findings:
        names = [f"{f.get('rule_id', '?')}({f.get('severity', '?')})" for f in findings[:STATUS_IDS]]
        if len(findings) > STATUS_IDS:
            names.append(f"+{len(findings) - STATUS_IDS} more")
        noun = "finding" if len(findings) == 1 else "findings"
        top = findings[0]
        # The top finding's title, not the verdict summary: that one also counts the findings.
        text = f"{len(findings)} {noun}: {', '.join(names)}; {top.get('title', '')} ({top.get('confidence', '?')})"
    else:
        text = summary or "no memory problem found"
    problems = len(document.get("problems") or ())
    if problems:
        text += f"; {problems} evidence problem{'s' if problems != 1 else ''}"
    return f"MEMDIAG {word} - {clean(text)}"


def long_output(document: dict) -> list[str]:
    lines = []
    for f in active_findings(document):
        partial = " [partial evidence]" if f.get("partial") else ""
        lines.append(clean(
            f"{str(f.get('severity', '?')).upper()} {f.get('rule_id', '?')} ({f.get('confidence', '?')}): "
            f"{f.get('message') or f.get('title', '')}{partial}"
        ))
    for f in suppressed_findings(document):
        reason = (f.get("suppressed") or {}).get("reason", "")
        lines.append(clean(f"SUPPRESSED {f.get('rule_id', '?')} ({f.get('severity', '?')}): {reason}"))
    for rule in document.get("rules") or ():
        if rule.get("state") == "error":
            lines.append(clean(f"RULE ERROR {rule.get('id', '?')}: {rule.get('reason', '')}"))
    for p in document.get("problems") or ():
        where = f"{p['path']}: " if p.get("path") else ""
        lines.append(clean(f"PROBLEM {p.get('source', '?')} ({p.get('kind', '?')}): {where}{p.get('message', '')}"))
    return lines


def render(document: dict, options: dict | None = None) -> str:
    """The complete plugin output for ``document``."""
    first = status_line(document) + " | " + " ".join(perfdata(document))
    return "\n".join([first, *long_output(document)])


def render_unknown(message: str) -> str:
    """Output for a check that could not run: the state is memdiag's own failure."""
    return f"MEMDIAG {UNKNOWN_STATE[0]} - {clean(message)}"


@hookimpl
def memdiag_report_formats(register):
    register("nagios", render)
