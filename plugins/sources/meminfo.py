"""meminfo - file /proc/meminfo.

Every field any kernel prints, parsed by name (kernels and distributions add, drop and backport
fields freely). kB lines become bytes; HugePages_* lines stay page counts. Fields this memdiag
does not know are kept as ``meminfo.<Name>`` with a generic explanation.
"""

from __future__ import annotations

from memdiag.evidence import Evidence
from memdiag.facts import FactSet, FactSpec
from memdiag.hookspecs import hookimpl
from memdiag.sources import Source

PATH = "proc/meminfo"
#: 16 PiB: far beyond any machine, far below a wrapped or garbled counter.
MAX_PLAUSIBLE_RAM = 1 << 54


def fact_name(field: str) -> str:
    """``Active(anon)`` -> ``meminfo.Active_anon``: dotted names cannot hold parentheses."""
    return "meminfo." + field.replace("(", "_").replace(")", "")


def _catalog() -> tuple[FactSpec, ...]:
    from memdiag.plugins.sources.meminfo_fields import DOC_UNKNOWN_MEMINFO, FIELDS

    specs = [
        FactSpec(
            fact_name(f.name),
            "count" if f.kind == "count" else "bytes",
            f.doc,
            unit="huge pages" if f.kind == "count" else "bytes",
            since=f.since,
        )
        for f in FIELDS
    ]
    specs.append(FactSpec("meminfo.*", "bytes", DOC_UNKNOWN_MEMINFO))
    return tuple(specs)


class MeminfoSource(Source):
    name = "meminfo"
    evidence_only = True

    def catalog(self):
        return _catalog()

    def collect(self, ev: Evidence, out: FactSet) -> None:
        text = ev.read_text(PATH)
        if text is None:
            return
        origin = ev.origin(PATH)
        values, bad = parse(text)
        out.set_many([(fact_name(field), value) for field, value in values.items()], origin)
        for lineno, reason in bad:
            out.problem(self.name, f"line {lineno}: {reason}; field skipped", origin, "malformed")
        if not values:
            out.problem(self.name, "no meminfo fields found", origin, "malformed")


def parse(text: str) -> tuple[dict[str, int], list[tuple[int, str]]]:
    """Parse meminfo text into {field: bytes or count}; also return (line, reason) of bad lines.

    Lines with a unit other than kB, or no number, are refused rather than guessed at.
    """
    values: dict[str, int] = {}
    bad: list[tuple[int, str]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        field, sep, rest = line.partition(":")
        field = field.strip()
        parts = rest.split()
        if not sep or not field or " " in field or not parts:
            bad.append((lineno, f"not a meminfo line: {line[:60]!r}"))
            continue
        token = parts[0]
        digits = token[1:] if token[:1] == "-" else token
        if not (digits.isascii() and digits.isdigit()):
            bad.append((lineno, f"{field}: not a number: {token[:30]!r}"))
            continue
        # The kernel prints unsigned 64-bit counters: a negative or wider value is not its output.
        # A counter that wrapped below zero prints near 2**64 and is kept, for the sanity rules.
        number = int(token) if len(token) <= 21 else -1
        if number < 0 or number >= 1 << 64:
            bad.append((lineno, f"{field}: {token[:30]} cannot be a kernel counter"))
            continue
        if field == "MemTotal" and number * 1024 > MAX_PLAUSIBLE_RAM:
            bad.append((lineno, f"MemTotal: {parts[0][:30]} kB is not a plausible amount of memory"))
            continue
        unit = parts[1] if len(parts) > 1 else ""
        if unit == "kB":
            values[field] = number * 1024
        elif unit == "" and field.startswith("HugePages_"):
            values[field] = number
        elif unit == "" and number == 0:
            values[field] = 0
        else:
            bad.append((lineno, f"{field}: unknown unit {unit or '(none)'!r}"))
    return values, bad


@hookimpl
def memdiag_fact_sources(register):
    register(MeminfoSource())
