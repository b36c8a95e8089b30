"""Markdown report (``--format markdown``): paste-ready for a ticket, a chat thread or a postmortem.

GitHub-flavoured Markdown (tables, fenced code), which GitLab, Jira Cloud's editor, Mattermost,
Teams and most wikis render. Free text from rules and evidence is escaped so a process called
``my_app*`` or a message with ``|`` cannot break a table or start emphasis.
"""

from __future__ import annotations

import re

from memdiag.hookspecs import hookimpl
from memdiag.units import format_bytes

from ._document import (
    active_findings,
    breakdown,
    input_description,
    suppressed_findings,
    verdict_severity,
)

_ESCAPE = re.compile(r"([\\`*_\[\]<>|])")


def text(value: object) -> str:
    """Free text as inline Markdown: one line, special characters escaped."""
    return _ESCAPE.sub(r"\\\1", re.sub(r"\s+", " ", str(value)).strip())


def code(value: object, in_table: bool = False) -> str:
    """An inline code span that survives backticks in the value (and ``|`` inside a table,
    where GFM splits cells before it reads code spans)."""
    s = re.sub(r"\s+", " ", str(value)).strip()
    if in_table:
        s = s.replace("|", "\\|")
    fence = "``" if "`" in s else "`"
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def code_block(value: str, lang: str = "sh") -> list[str]:
    fence = "~~~" if "```" in value else "```"
    return [f"{fence}{lang}", value.rstrip("\n"), fence]


def table(header: list[str], rows: list[list[str]], align: str = "") -> list[str]:
    """A GFM table; ``align`` has one letter per column, ``r`` for right-aligned numbers."""
    marks = ["---:" if (align[i:i + 1] == "r") else "---" for i in range(len(header))]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    out += ["| " + " | ".join(cell.replace("\n", " ") for cell in row) + " |" for row in rows]
    return out


def _breakdown_section(document: dict) -> list[str]:
    bd = breakdown(document)
    if bd is None:
        return []
    rows = [[text(p.label), p.display, p.percent] for p in bd.parts]
    rows.append(["**MemTotal**", f"**{format_bytes(bd.total)}**", "**100%**"])
    out = ["### Where the memory went", "", *table(["Part", "Size", "Share"], rows, "lrr"), ""]
    if bd.formula:
        out += [f"Computed as {code(bd.formula)}.", ""]
    if bd.mismatch:
        out += [f"Note: {text(bd.mismatch)}.", ""]
    out += [f"- {text(n)}" for n in bd.notes]
    if bd.notes:
        out.append("")
    return out


def _finding(f: dict) -> list[str]:
    head = f"#### {str(f.get('severity', '?')).upper()}: {text(f.get('title', ''))}"
    meta = f"{code(f.get('rule_id', '?'))} · confidence: {text(f.get('confidence', '?'))}"
    if f.get("partial"):
        meta += " · partial evidence (some of it could not be read)"
    meta += f" · fingerprint {code(f.get('fingerprint', ''))}"
    out = [head, "", meta, "", text(f.get("message", "")), ""]
    evidence = f.get("evidence") or []
    if evidence:
        rows = [
            [code(e.get("fact", ""), True), text(e.get("display", "")), code(e["origin"], True) if e.get("origin") else ""]
            for e in evidence
        ]
        out += [*table(["Evidence", "Value", "From"], rows), ""]
    rem = f.get("remediation") or {}
    if rem.get("steps"):
        out += [f"**Next step:** {text(rem['steps'])}", ""]
    if rem.get("confirm"):
        out += ["**Confirm with:**", "", *code_block(str(rem["confirm"])), ""]
    refs = [r for r in f.get("references") or () if r.get("url")]
    if refs:
        links = ", ".join(f"[{text(r.get('title') or r['url'])}]({r['url'].replace(')', '%29')})" for r in refs)
        out += [f"**References:** {links}", ""]
    return out


def render(document: dict, options: dict | None = None) -> str:
    """The Markdown report for one findings document."""
    sev = verdict_severity(document)
    verdict = document.get("verdict") or {}
    tool = document.get("tool") or {}
    out = [
        f"## memdiag: {sev.upper()} on {code(document.get('host', 'unknown'))}",
        "",
        f"**{text(verdict.get('summary', ''))}**",
        "",
        f"Input: {text(input_description(document))} · diagnosed {text(document.get('time', ''))}"
        f" · memdiag {text(tool.get('version', ''))}",
        "",
    ]
    out += _breakdown_section(document)
    findings = active_findings(document)
    out += [f"### Findings ({len(findings)})", ""]
    if not findings:
        out += ["No rule found a problem.", ""]
    for f in findings:
        out += _finding(f)
    suppressed = suppressed_findings(document)
    if suppressed:
        out += ["### Suppressed", ""]
        out += [
            f"- {code(f.get('rule_id', '?'))} ({text(f.get('severity', '?'))}): "
            f"{text((f.get('suppressed') or {}).get('reason', ''))}"
            for f in suppressed
        ]
        out.append("")
    broken = [r for r in document.get("rules") or () if r.get("state") == "error"]
    problems = document.get("problems") or []
    if broken or problems:
        out += ["### What could not be checked", ""]
        out += [f"- rule {code(r.get('id', '?'))} failed: {text(r.get('reason', ''))}" for r in broken]
        for p in problems:
            where = f"{code(p['path'])}: " if p.get("path") else ""
            out.append(f"- {text(p.get('source', '?'))} ({text(p.get('kind', '?'))}): {where}{text(p.get('message', ''))}")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


@hookimpl
def memdiag_report_formats(register):
    register("markdown", render)
