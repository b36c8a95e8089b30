"""Reading a findings document for presentation: shared by the nagios, markdown, html formats
and the fleet report.

Everything here works on the plain JSON document (schemas/findings.schema.json), never on engine
objects, so a report renders the same from a live run as from a JSON file gathered from another
host a week ago. Optional parts (accounting, facts) may be absent: every helper tolerates that.
"""

from __future__ import annotations


from memdiag.units import format_bytes, format_ratio

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Any

#: Verdict severities from most to least urgent, in Nagios precedence: "unknown" (the input held
#: no memory evidence at all) needs a look before anything calm. Findings are never "ok"/"unknown".
SEVERITY_ORDER = ("critical", "warning", "unknown", "info", "ok")
_RANK = {name: i for i, name in enumerate(SEVERITY_ORDER)}

#: Verdict severity -> (Nagios state word, exit code); the CLI maps verdicts to the same codes.
UNKNOWN_STATE = ("UNKNOWN", 3)
NAGIOS_STATE = {"ok": ("OK", 0), "info": ("OK", 0), "warning": ("WARNING", 1), "critical": ("CRITICAL", 2),
                "unknown": UNKNOWN_STATE}


def severity_rank(severity: str | None) -> int:
    """Sort key: critical 0 ... ok 4; anything unexpected sorts last."""
    return _RANK.get(severity or "", len(SEVERITY_ORDER))


def verdict_severity(document: dict) -> str:
    return str((document.get("verdict") or {}).get("severity") or "ok")


def active_findings(document: dict) -> list[dict]:
    """Findings not suppressed, most severe first (stable for equal severity)."""
    found = [f for f in document.get("findings") or () if not f.get("suppressed")]
    return sorted(found, key=lambda f: severity_rank(f.get("severity")))


def suppressed_findings(document: dict) -> list[dict]:
    return [f for f in document.get("findings") or () if f.get("suppressed")]


def count_by_severity(findings: list[dict]) -> dict[str, int]:
    counts = {"critical": 0, "warning": 0, "info": 0}
    for f in findings:
        sev = f.get("severity")
        if sev in counts:
            counts[sev] += 1
    return counts


def fact(document: dict, name: str) -> Any:
    """A fact's value from the document's ``facts`` map, or None.

    Accepts both plain values and ``{"value": ..., "origin": ...}`` entries.
    """
    facts = document.get("facts")
    if not isinstance(facts, dict) or name not in facts:
        return None
    value = facts[name]
    if isinstance(value, dict) and "value" in value:
        return value["value"]
    return value


def number(value: Any) -> float | None:
    """A JSON number (never a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def mem_total(document: dict) -> int | None:
    acc = document.get("accounting") or {}
    total = number(acc.get("total_bytes"))
    if total is None:
        total = number(fact(document, "meminfo.MemTotal"))
    return int(total) if total is not None and total > 0 else None


def unaccounted(document: dict) -> tuple[int | None, float | None]:
    """(bytes, ratio of MemTotal) not accounted for by any meminfo field or process."""
    acc = document.get("accounting") or {}
    nbytes = number(acc.get("unaccounted_bytes"))
    ratio = number(acc.get("unaccounted_ratio"))
    total = mem_total(document)
    if ratio is None and nbytes is not None and total:
        ratio = nbytes / total
    return (int(nbytes) if nbytes is not None else None, ratio)


def unaccounted_display(document: dict) -> str:
    nbytes, ratio = unaccounted(document)
    if nbytes is None:
        return "unknown"
    if ratio is None:
        return format_bytes(nbytes)
    return f"{format_bytes(nbytes)} ({format_ratio(ratio)})"


# Plain slotted classes rather than dataclasses: this module is imported on every memdiag start
# (the formats register at load time) and each dataclass costs about a millisecond to create.
class Part:
    """One part of the memory breakdown, ready to draw or tabulate."""

    __slots__ = ("key", "label", "bytes", "share")

    def __init__(self, key: str, label: str, nbytes: int, share: float) -> None:
        self.key, self.label, self.bytes, self.share = key, label, nbytes, share  # share of the total, 0..1

    @property
    def display(self) -> str:
        return format_bytes(self.bytes)

    @property
    def percent(self) -> str:
        return format_ratio(self.share, 1 if 0 < self.share < 0.01 else 0)


class Breakdown:
    """The parts of MemTotal; ``mismatch`` says when they do not add up (negative or over-full)."""

    __slots__ = ("total", "parts", "formula", "notes", "mismatch")

    def __init__(self, total: int, parts: list[Part], formula: str, notes: list[str], mismatch: str = "") -> None:
        self.total, self.parts, self.formula, self.notes, self.mismatch = total, parts, formula, notes, mismatch


def breakdown(document: dict) -> Breakdown | None:
    """The accounting segments as parts of MemTotal, or None when the document has none.

    Negative segments (an over-counted estimate) cannot be drawn; they are left out and the
    mismatch says so instead of distorting the picture.
    """
    acc = document.get("accounting") or {}
    segments = acc.get("segments") or []
    total = mem_total(document)
    if not segments or not total:
        return None
    parts, dropped = [], []
    for seg in segments:
        nbytes = number(seg.get("bytes"))
        if nbytes is None:
            continue
        if nbytes < 0:
            dropped.append(f"{seg.get('label') or seg.get('key')} is negative ({format_bytes(nbytes)})")
            continue
        parts.append(Part(str(seg.get("key", "")), str(seg.get("label") or seg.get("key", "")), int(nbytes), nbytes / total))
    mismatch = "; ".join(dropped)
    summed = sum(p.bytes for p in parts)
    # Parts are computed in kB by the kernel; a few KiB of rounding is not a mismatch.
    if abs(summed - total) > max(1 << 20, total // 1000):
        gap = f"parts add up to {format_bytes(summed)} of {format_bytes(total)}"
        mismatch = f"{mismatch}; {gap}" if mismatch else gap
    return Breakdown(total, parts, str(acc.get("formula") or ""), [str(n) for n in acc.get("notes") or ()], mismatch)


def input_description(document: dict) -> str:
    """``capture /tmp/x (captured 2024-05-01T10:00:00Z)``."""
    inp = document.get("input") or {}
    kind, label = str(inp.get("kind", "unknown")), str(inp.get("label", ""))
    text = label if kind == "live" and label else f"{kind} {label}".strip()
    if inp.get("captured_at"):
        text += f" (captured {inp['captured_at']})"
    return text


def finding_headline(finding: dict) -> str:
    """``vmware-balloon: VMware balloon driver is holding guest memory (suspected)``."""
    return f"{finding.get('rule_id', '?')}: {finding.get('title', '')} ({finding.get('confidence', '?')})"
