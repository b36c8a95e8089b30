"""text - the report for a person at a terminal: verdict first, then each finding with its
evidence and next step, then a picture of where memory went. Fits 80 columns; colour only on a
terminal and never when NO_COLOR is set (the caller decides, this module obeys ``color``)."""

from __future__ import annotations

from memdiag.hookspecs import hookimpl
from memdiag.units import format_bytes, format_ratio

# Segment key -> (fill character without colour, ANSI 256-colour background)
_STYLE = {
    "anon": ("#", 33), "cache": ("=", 37), "shmem": ("~", 141), "slab": ("s", 178),
    "kernel": ("k", 166), "hugetlb": ("H", 30), "balloon": ("B", 161), "unaccounted": ("?", 196),
    "free": (".", 240),
}
_SEV = {"critical": 196, "warning": 214, "info": 39, "ok": 34, "unknown": 244}


def _paint(text: str, code: int | None, color: bool, bold: bool = False) -> str:
    if not color or code is None:
        return text
    return f"\033[{'1;' if bold else ''}38;5;{code}m{text}\033[0m"


def render(doc: dict, options: dict) -> str:
    color = bool(options.get("color"))
    width = max(60, min(int(options.get("width", 80)), 100))
    out: list[str] = []
    inp = doc["input"]
    kind = "pasted output" if inp["kind"] == "text" else inp["kind"]
    source = "this host" if inp["kind"] == "live" else f"{inp['label']} ({kind})"
    out += _wrap(f"memdiag {doc['tool']['version']} - {doc['host']} - {source} - {doc['time']}", width, "")
    out.append("")
    verdict = doc["verdict"]
    sev = verdict["severity"]
    for line in _wrap(f"{sev.upper()}: {verdict['summary']}", width, ""):
        out.append(_paint(line, _SEV.get(sev), color, bold=True))

    for f in doc["findings"]:
        out += ["", *_finding(f, width, color)]
    acc = doc.get("accounting")
    if acc and acc.get("segments"):
        out += ["", *_breakdown(acc, width, color)]
    out += ["", *_footer(doc, width)]
    return "\n".join(out)


def _wrap(text: str, width: int, indent: str, rest: str | None = None) -> list[str]:
    """``text`` filled into lines of ``width``, the first after ``indent``, the others after
    ``rest`` (default: the same). Breaks only at whitespace: fact names, rule ids and paths are
    hyphenated and must stay whole to be copied; a word longer than a line is cut. (textwrap
    would break at hyphens, and importing it costs ~0.7 ms of every run.)"""
    rest = indent if rest is None else rest
    lines: list[str] = []
    line, fresh = indent, True
    for word in text.split():
        if len(line) + (0 if fresh else 1) + len(word) <= width:
            line, fresh = (line + word) if fresh else f"{line} {word}", False
            continue
        if not fresh:
            if len(word) > width - len(rest) and len(line) + 1 < width:
                line += " "  # too long for any line: cut, starting on this one
            else:
                lines.append(line)
                line = rest
        room = max(width - len(line), 1)
        while len(word) > room:
            lines.append(line + word[:room])
            word, line, room = word[room:], rest, max(width - len(rest), 1)
        line, fresh = line + word, not word
    lines.append(line)
    return lines


def _finding(f: dict, width: int, color: bool) -> list[str]:
    head = f"[{f['severity'].upper()}] {f['title']} - {f['confidence']}"
    if f.get("suppressed"):
        head += f" (suppressed: {f['suppressed'].get('reason', '')})"
    lines = [_paint(line, _SEV.get(f["severity"]), color, bold=True) for line in _wrap(head, width, "")]
    lines += _wrap(f["message"], width, "  ")
    if f.get("partial"):
        lines += _wrap("Some evidence could not be read in time; confidence was lowered.", width, "  ")
    if f["evidence"]:
        lines.append("  Evidence:")
        name_w = min(max(len(e["fact"]) for e in f["evidence"]), 34)
        for e in f["evidence"]:
            lead = f"    {e['fact'].ljust(name_w)}  "
            lines += _wrap(e["display"], width, lead, " " * len(lead))
        origins = list(dict.fromkeys(o for e in f["evidence"] for o in (e.get("origin") or "").split(", ") if o))
        if origins:
            lines += _wrap("Read from: " + ", ".join(origins), width, "  ")
    rem = f.get("remediation", {})
    if rem.get("steps"):
        lines += _wrap("Next step: " + rem["steps"], width, "  ")
    if rem.get("confirm"):
        lines.append("  Confirm with:")
        lines += ["    " + line for line in rem["confirm"].splitlines()]
    for ref in f.get("references", [])[:3]:
        if ref.get("title"):
            lines += _wrap("See: " + ref["title"], width, "  ")
            lines.append("       " + ref["url"])  # never wrapped: it must stay clickable
        else:
            lines.append("  See: " + ref["url"])
    return lines


def _cells(sizes: list[int], width: int) -> list[int]:
    """Split ``width`` cells among ``sizes`` in proportion: largest remainders get the spare
    cells, and a part of at least 0.5% never vanishes. Bounded work whatever the sizes."""
    whole = sum(sizes) or 1
    exact = [n / whole * width for n in sizes]
    cells = [int(x) for x in exact]
    for j, n in enumerate(sizes):
        if cells[j] == 0 and n / whole >= 0.005:
            cells[j] = 1
    for _ in range(max(0, sum(cells) - width)):  # at most one per part forced visible
        cells[max(range(len(cells)), key=cells.__getitem__)] -= 1
    spare = width - sum(cells)
    for j in sorted(range(len(sizes)), key=lambda j: exact[j] - int(exact[j]), reverse=True)[:max(0, spare)]:
        cells[j] += 1
    return cells


def _breakdown(acc: dict, width: int, color: bool) -> list[str]:
    total = acc["total_bytes"]
    if total <= 0:
        return []
    segs = [s for s in acc["segments"] if s["bytes"] > 0]
    cells = _cells([s["bytes"] for s in segs], width - 4)
    bar = ""
    for s, n in zip(segs, cells):
        ch, code = _STYLE.get(s["key"], ("*", None))
        bar += f"\033[48;5;{code}m{' ' * n}\033[0m" if color and code is not None else ch * n
    lines = [f"Where memory went (MemTotal {format_bytes(total)})", f"  [{bar}]"]
    for s in acc["segments"]:
        ch, code = _STYLE.get(s["key"], ("*", None))
        key = _paint("  ", None, False) + (f"\033[48;5;{code}m \033[0m" if color and code else ch)
        lines.append(f"{key} {s['label']:<22} {format_bytes(s['bytes']):>11} {format_ratio(s['bytes'] / total):>5}")
    if "unaccounted_bytes" in acc:
        lines += _wrap(f"Unaccounted by meminfo: {format_bytes(acc['unaccounted_bytes'])} "
                       f"({format_ratio(acc['unaccounted_ratio'])} of MemTotal).", width, "  ")
    for note in acc.get("notes", []):
        lines += _wrap("Note: " + note, width, "  ")
    return lines


def _footer(doc: dict, width: int) -> list[str]:
    states: dict[str, int] = {}
    for r in doc["rules"]:
        states[r["state"]] = states.get(r["state"], 0) + 1
    lines = ["Rules: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items()))]
    for r in doc["rules"]:
        if r["state"] == "error":
            lines += _wrap(f"rule {r['id']} failed: {r.get('reason', '')}", width, "  ")
    if doc["problems"]:
        lines.append(f"Evidence not used ({len(doc['problems'])}):")
        for p in doc["problems"][:8]:
            where = f"{p['path']}: " if p.get("path") else ""
            lines += _wrap(f"{p['source']}: {where}{p['message']}", width, "  ")
        if len(doc["problems"]) > 8:
            lines.append(f"  ... and {len(doc['problems']) - 8} more (see --format json)")
    return lines


@hookimpl
def memdiag_report_formats(register):
    register("text", render)
