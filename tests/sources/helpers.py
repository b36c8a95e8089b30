"""Helpers for the knowledge-base source tests: build evidence trees, run sources, inject facts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memdiag.bounded import Deadline
from memdiag.evidence import Captured, Evidence, Unreadable, live
from memdiag.facts import FactSet
from memdiag.sources import Source, collect, spec

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sources"


def tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``{relative path: text}`` under ``root`` (a proc/sys layout) and return root."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


class Given(Source):
    """Stands in for another team's source: sets the facts a derived source reads."""

    def __init__(self, name: str, facts: dict[str, Any]) -> None:
        self.name = name  # type: ignore[misc]
        self._values = facts
        self.facts = tuple(spec(n, "number", "test input") for n in facts)  # type: ignore[misc]

    def collect(self, ev: Evidence, out: FactSet) -> None:
        for n, v in self._values.items():
            out.set(n, v, "test")


class Denying(Evidence):
    """A capture read by someone who is not root: the listed paths refuse with EACCES."""

    def __init__(self, root: str, denied: set[str], **kw) -> None:
        super().__init__(root, kind="capture", **kw)
        self.denied = denied

    def _deny(self, rel: str) -> None:
        if rel in self.denied:
            raise Unreadable(self.origin(rel), "permission denied", "permission")

    def read_bytes(self, rel, limit=16 << 20):
        self._deny(rel)
        return super().read_bytes(rel, limit)

    def lines(self, rel, limit=1 << 30):
        self._deny(rel)
        return super().lines(rel, limit)

    def listdir(self, rel):
        self._deny(rel)
        return super().listdir(rel)


def run(sources: list[Source], root: Path | str, *, ev: Evidence | None = None,
        commands: dict[str, str] | None = None) -> FactSet:
    """Run ``sources`` over a captured folder; ``commands`` maps a command name to its output."""
    overlay = {f"cmd:{k}": Captured(v, f"<{k}>") for k, v in (commands or {}).items()}
    ev = ev or Evidence(str(root), kind="capture", overlay=overlay)
    return collect(sources, ev, deadline=Deadline(5))


def run_live(sources: list[Source]) -> FactSet:
    """Run ``sources`` on this machine; they must finish without a 'failed' or timeout problem."""
    facts = collect(sources, live(), deadline=Deadline(20))
    bad = [str(p) for p in facts.problems if p.kind in ("failed", "timeout")]
    assert not bad, bad
    return facts


def kinds(facts: FactSet) -> list[tuple[str, str]]:
    return [(p.source, p.kind) for p in facts.problems]
