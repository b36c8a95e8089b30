"""``memdiag diff BEFORE AFTER``: what grew and what shrank between two moments of one host.

Both inputs are anything ``memdiag analyze`` reads (captures, sosreports, folders, pasted text).
The earlier one's facts become the ``previous`` snapshot of the later one's diagnosis, so growth
rules (``delta()``, ``per_hour()``, ``elapsed_hours()`` in their conditions) are evaluated over
the pair. The elapsed time comes from the inputs' capture times, or ``--hours`` when an input
does not carry one (pasted text). The report lists every size fact that changed, in bytes and
per hour, largest change first, then the diagnosis of the later moment.
"""

from __future__ import annotations

import sys

from memdiag.errors import UsageError
from memdiag.hookspecs import hookimpl

#: Changes listed in the text report unless --all.
TOP = 25


class Change:
    """One numeric fact that differs between the two moments."""

    __slots__ = ("fact", "before", "after", "type")

    def __init__(self, fact: str, before: int | float, after: int | float, type: str) -> None:
        self.fact, self.before, self.after, self.type = fact, before, after, type  # type: bytes | count

    @property
    def delta(self) -> int | float:
        return self.after - self.before


def changes(before, after, catalog, *, counts: bool = False) -> list[Change]:
    """Numeric facts present in both snapshots whose value changed, largest change first."""
    kinds = ("bytes", "count") if counts else ("bytes",)
    out = []
    for name, fact in after.facts.items():
        spec = catalog.get(name)
        if spec is None or spec.type not in kinds or name not in before:
            continue
        old, new = before.get(name), fact.value
        if isinstance(old, bool) or isinstance(new, bool):
            continue
        if isinstance(old, (int, float)) and isinstance(new, (int, float)) and old != new:
            out.append(Change(name, old, new, spec.type))
    out.sort(key=lambda c: (-abs(c.delta), c.fact))
    return out


def elapsed_hours(ev_before, ev_after, hours: float | None) -> float | None:
    if hours is not None:
        if hours <= 0:
            raise UsageError("--hours must be positive")
        return hours
    if ev_before.captured_at is None or ev_after.captured_at is None:
        return None
    span = (ev_after.captured_at - ev_before.captured_at) / 3600
    if span < 0:
        raise UsageError(
            f"{ev_before.label} was captured after {ev_after.label}; give the earlier one first (BEFORE AFTER)"
        )
    return span or None


def render_text(items: list[Change], hours: float | None, labels: tuple[str, str], limit: int | None) -> str:
    from memdiag.units import format_bytes

    def size(v, kind):
        return format_bytes(v) if kind == "bytes" else f"{v:,}"

    def signed(v, kind):
        return ("+" if v > 0 else "") + size(v, kind)

    head = f"Changes from {labels[0]} to {labels[1]}"
    head += f" over {hours:.1f} hours" if hours else " (elapsed time unknown: give --hours for rates)"
    rows = [("FACT", "BEFORE", "AFTER", "CHANGE", "PER HOUR")]
    shown = items if limit is None else items[:limit]
    for c in shown:
        rate = signed(c.delta / hours, c.type) + "/h" if hours else "-"
        rows.append((c.fact, size(c.before, c.type), size(c.after, c.type), signed(c.delta, c.type), rate))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [head, ""]
    for r in rows:
        lines.append("  " + r[0].ljust(widths[0]) + "  " + "  ".join(r[i].rjust(widths[i]) for i in range(1, 5)))
    if not items:
        lines.append("  (no size changed)")
    elif len(shown) < len(items):
        lines.append(f"  ... {len(items) - len(shown)} smaller changes (--all lists them)")
    return "\n".join(lines) + "\n"


def configure(parser) -> None:
    parser.add_argument("before", metavar="BEFORE", help="the earlier capture, sosreport or output")
    parser.add_argument("after", metavar="AFTER", help="the later one, of the same host")
    parser.add_argument("--hours", type=float, metavar="H",
                        help="hours between the two (needed when an input carries no capture time)")
    parser.add_argument("--all", action="store_true", help="list every change, counts included")
    parser.add_argument("--any-host", action="store_true", help="compare inputs of different hosts anyway")


def run(args) -> int:
    import json
    import os
    import tempfile

    from memdiag import document, pipeline, sources
    from memdiag.bounded import Deadline
    from memdiag.cli import load_registry, render_document, rules_for

    reg = load_registry(args)
    rules = rules_for(args, reg)
    with tempfile.TemporaryDirectory(prefix="memdiag-") as work:
        evs = []
        for name, path in (("before", args.before), ("after", args.after)):
            folder = os.path.join(work, name)
            os.mkdir(folder, 0o700)
            evs.append(pipeline.open_input(path, reg, folder))
        before_ev, after_ev = evs
        hours = elapsed_hours(before_ev, after_ev, args.hours)
        before = sources.collect(reg.sources, before_ev, deadline=Deadline(args.timeout), catalog=reg.catalog)
        diag = pipeline.diagnose(after_ev, registry=reg, rules=rules, previous=before, elapsed_hours=hours,
                                 deadline=Deadline(args.timeout))
    hosts = (document.host_of(before, before_ev), diag.document.get("host"))
    if "unknown" not in hosts and hosts[0] != hosts[1] and not args.any_host:
        raise UsageError(f"the inputs are of different hosts ({hosts[0]}, {hosts[1]}); --any-host compares anyway")
    found = changes(before, diag.facts, pipeline.catalog(reg), counts=args.all)
    if args.format == "json":
        doc = {
            "before": {"input": args.before, "host": hosts[0], "captured_at": before_ev.captured_at},
            "after": {"input": args.after, "host": hosts[1], "captured_at": after_ev.captured_at},
            "elapsed_hours": hours,
            "changes": [{"fact": c.fact, "type": c.type, "before": c.before, "after": c.after, "change": c.delta,
                         "per_hour": None if not hours else c.delta / hours} for c in found],
            "diagnosis": diag.document,
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(found, hours, (args.before, args.after), None if args.all else TOP))
        sys.stdout.write("\n")
        text = render_document(diag.document, args, reg)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return diag.exit_code


@hookimpl
def memdiag_commands(register):
    register("diff", "compare two captures of one host: what grew, per hour, and the growth rules", configure, run)
