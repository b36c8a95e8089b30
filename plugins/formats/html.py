"""HTML report (``--format html``): one self-contained file to attach to a ticket or postmortem.

Everything is inline: CSS in a ``<style>``, the memory breakdown as an inline SVG, no scripts,
fonts or images. A Content-Security-Policy meta tag forbids every fetch, so the file renders the
same offline, in a mail client's preview or behind a proxy, and leaks nothing when opened.
Reference links stay clickable (navigation is not a fetch).
"""

from __future__ import annotations

from memdiag.hookspecs import hookimpl
from memdiag.units import format_bytes

from ._document import (
    Breakdown,
    active_findings,
    breakdown,
    input_description,
    suppressed_findings,
    verdict_severity,
)

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

#: Colours of the usual accounting parts; other keys take the next colour of the fallback list.
PART_COLOURS = {
    "anon": "#1e88e5",
    "user": "#1e88e5",
    "cache": "#4fc3f7",
    "shmem": "#26c6da",
    "slab": "#9575cd",
    "kernel": "#7e57c2",
    "hugetlb": "#00897b",
    "hugepages": "#00897b",
    "free": "#9ccc65",
    "unaccounted": "#e53935",
}
FALLBACK_COLOURS = ("#fb8c00", "#8d6e63", "#26a69a", "#ec407a", "#5c6bc0", "#78909c")

SEVERITY_COLOURS = {"critical": "#c62828", "warning": "#ef6c00", "info": "#1565c0", "ok": "#2e7d32"}

STYLE = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1d2330;background:#f4f6f9}
main{max-width:1100px;margin:0 auto;padding:24px}
header.verdict{color:#fff;border-radius:10px;padding:20px 24px;margin-bottom:20px}
header.verdict h1{margin:0 0 6px;font-size:24px}
header.verdict p{margin:0;font-size:17px}
.meta{color:#5a6272;font-size:13px}
header.verdict .meta{color:#fff;opacity:.9;margin-top:8px}
section{background:#fff;border-radius:10px;padding:18px 24px;margin-bottom:20px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
h2{margin:0 0 12px;font-size:19px}
h3{margin:0 0 4px;font-size:17px}
table{border-collapse:collapse;width:100%;margin:10px 0}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #e3e7ee;vertical-align:top}
th{background:#f0f3f7;font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:8px;vertical-align:-1px}
.finding{border-left:6px solid #999;padding:12px 16px;margin:14px 0;background:#fafbfc;border-radius:6px}
.badge{display:inline-block;color:#fff;border-radius:4px;padding:1px 8px;font-size:12px;font-weight:700;letter-spacing:.04em;margin-right:8px}
code,pre{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:13px}
pre{background:#1d2330;color:#e8eaf0;padding:10px 12px;border-radius:6px;overflow-x:auto}
ul{margin:6px 0;padding-left:22px}
svg.breakdown{width:100%;height:auto;display:block}
footer{color:#5a6272;font-size:12px;text-align:center;padding:8px}
"""


def _e(value: object) -> str:
    """Text and attribute values escaped (what html.escape does, without importing html at start)."""
    return (str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#x27;"))


def part_colours(bd: Breakdown) -> list[str]:
    colours, spare = [], list(FALLBACK_COLOURS)
    for i, part in enumerate(bd.parts):
        colour = PART_COLOURS.get(part.key)
        if colour is None:
            colour = spare.pop(0) if spare else FALLBACK_COLOURS[i % len(FALLBACK_COLOURS)]
        colours.append(colour)
    return colours


def breakdown_svg(bd: Breakdown, colours: list[str]) -> str:
    """A stacked bar of the parts of MemTotal, labelled where a part is wide enough to read."""
    width, bar_y, bar_h = 1000.0, 8.0, 64.0
    scale = width / bd.total
    pieces = [
        f'<svg class="breakdown" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1000 80" role="img" '
        f'aria-label="Memory breakdown of {_e(format_bytes(bd.total))}">'
    ]
    x = 0.0
    for part, colour in zip(bd.parts, colours):
        w = part.bytes * scale
        tip = f"{part.label}: {part.display} ({part.percent})"
        pieces.append(
            f'<rect class="segment" data-key="{_e(part.key)}" data-bytes="{part.bytes}" x="{x:.2f}" y="{bar_y}" '
            f'width="{w:.2f}" height="{bar_h}" fill="{colour}"><title>{_e(tip)}</title></rect>'
        )
        # Labels only where they fit (about 9 px per bold character, 8 px per plain one);
        # the table below names every part anyway.
        label = next((t for t in (part.label, part.key) if len(t) * 9 <= w - 10), None)
        value = next((t for t in (f"{part.display} · {part.percent}", part.percent) if len(t) * 8 <= w - 10), None)
        if label and value:
            pieces.append(
                f'<text x="{x + w / 2:.2f}" y="{bar_y + 28}" text-anchor="middle" fill="#fff" '
                f'font-size="16" font-weight="600" font-family="sans-serif">{_e(label)}</text>'
                f'<text x="{x + w / 2:.2f}" y="{bar_y + 50}" text-anchor="middle" fill="#fff" '
                f'font-size="15" font-family="sans-serif">{_e(value)}</text>'
            )
        x += w
    pieces.append("</svg>")
    return "".join(pieces)


def _breakdown_section(document: dict) -> str:
    bd = breakdown(document)
    if bd is None:
        return ""
    colours = part_colours(bd)
    rows = "".join(
        f'<tr><td><span class="swatch" style="background:{c}"></span>{_e(p.label)}</td>'
        f'<td class="num">{_e(p.display)}</td><td class="num">{_e(p.percent)}</td></tr>'
        for p, c in zip(bd.parts, colours)
    )
    rows += f'<tr><th>MemTotal</th><th class="num">{_e(format_bytes(bd.total))}</th><th class="num">100%</th></tr>'
    extra = ""
    if bd.formula:
        extra += f'<p class="meta">Computed as <code>{_e(bd.formula)}</code>.</p>'
    if bd.mismatch:
        extra += f'<p class="meta">Note: {_e(bd.mismatch)}.</p>'
    if bd.notes:
        extra += "<ul>" + "".join(f"<li>{_e(n)}</li>" for n in bd.notes) + "</ul>"
    return (
        f'<section id="breakdown"><h2>Where the memory went</h2>{breakdown_svg(bd, colours)}'
        f'<table class="parts"><thead><tr><th>Part</th><th class="num">Size</th><th class="num">Share</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>{extra}</section>"
    )


def _finding(f: dict) -> str:
    sev = str(f.get("severity", "info"))
    colour = SEVERITY_COLOURS.get(sev, "#616161")
    meta = f"<code>{_e(f.get('rule_id', '?'))}</code> · confidence: {_e(f.get('confidence', '?'))}"
    if f.get("partial"):
        meta += " · partial evidence (some of it could not be read)"
    meta += f" · fingerprint <code>{_e(f.get('fingerprint', ''))}</code>"
    out = [
        f'<article class="finding" data-rule="{_e(f.get("rule_id", ""))}" data-severity="{_e(sev)}" '
        f'style="border-left-color:{colour}">',
        f'<h3><span class="badge" style="background:{colour}">{_e(sev.upper())}</span>{_e(f.get("title", ""))}</h3>',
        f'<div class="meta">{meta}</div>',
        f'<p class="message">{_e(f.get("message", ""))}</p>',
    ]
    evidence = f.get("evidence") or []
    if evidence:
        rows = "".join(
            f"<tr><td><code>{_e(e.get('fact', ''))}</code></td><td>{_e(e.get('display', ''))}</td>"
            f"<td>{'<code>' + _e(e['origin']) + '</code>' if e.get('origin') else ''}</td></tr>"
            for e in evidence
        )
        out.append(
            '<table class="evidence"><thead><tr><th>Evidence</th><th>Value</th><th>From</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>"
        )
    rem = f.get("remediation") or {}
    if rem.get("steps"):
        out.append(f'<p class="steps"><strong>Next step:</strong> {_e(rem["steps"])}</p>')
    if rem.get("confirm"):
        out.append(f'<p><strong>Confirm with:</strong></p><pre class="confirm"><code>{_e(rem["confirm"])}</code></pre>')
    refs = [r for r in f.get("references") or () if r.get("url")]
    if refs:
        links = ", ".join(
            f'<a href="{_e(r["url"])}" rel="noreferrer noopener">{_e(r.get("title") or r["url"])}</a>' for r in refs
        )
        out.append(f"<p><strong>References:</strong> {links}</p>")
    out.append("</article>")
    return "".join(out)


def _problems_section(document: dict) -> str:
    items = [
        f"<li>rule <code>{_e(r.get('id', '?'))}</code> failed: {_e(r.get('reason', ''))}</li>"
        for r in document.get("rules") or ()
        if r.get("state") == "error"
    ]
    for p in document.get("problems") or ():
        where = f"<code>{_e(p['path'])}</code>: " if p.get("path") else ""
        items.append(f"<li>{_e(p.get('source', '?'))} ({_e(p.get('kind', '?'))}): {where}{_e(p.get('message', ''))}</li>")
    for f in suppressed_findings(document):
        reason = (f.get("suppressed") or {}).get("reason", "")
        items.append(f"<li>suppressed <code>{_e(f.get('rule_id', '?'))}</code> ({_e(f.get('severity', '?'))}): {_e(reason)}</li>")
    if not items:
        return ""
    return f'<section id="problems"><h2>What could not be checked</h2><ul>{"".join(items)}</ul></section>'


def _rules_line(document: dict) -> str:
    counts: dict[str, int] = {}
    for r in document.get("rules") or ():
        counts[r.get("state", "?")] = counts.get(r.get("state", "?"), 0) + 1
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def render(document: dict, options: dict | None = None) -> str:
    """The complete HTML page for one findings document."""
    sev = verdict_severity(document)
    verdict = document.get("verdict") or {}
    host = document.get("host", "unknown")
    tool = document.get("tool") or {}
    findings = active_findings(document)
    finding_html = "".join(_finding(f) for f in findings) or "<p>No rule found a problem.</p>"
    rules = _rules_line(document)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>memdiag: {_e(sev.upper())} on {_e(host)}</title><style>{STYLE}</style></head><body><main>"
        f'<header class="verdict" id="verdict" data-severity="{_e(sev)}" '
        f'style="background:{SEVERITY_COLOURS.get(sev, "#616161")}">'
        f"<h1>{_e(sev.upper())} on {_e(host)}</h1><p>{_e(verdict.get('summary', ''))}</p>"
        f'<div class="meta">Input: {_e(input_description(document))} · diagnosed {_e(document.get("time", ""))}</div>'
        "</header>"
        f"{_breakdown_section(document)}"
        f'<section id="findings"><h2>Findings ({len(findings)})</h2>{finding_html}</section>'
        f"{_problems_section(document)}"
        f"<footer>memdiag {_e(tool.get('version', ''))}"
        f"{' · rules: ' + _e(rules) if rules else ''}</footer>"
        "</main></body></html>\n"
    )


@hookimpl
def memdiag_report_formats(register):
    register("html", render)
