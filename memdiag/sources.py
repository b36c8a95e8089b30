"""Fact sources: turn evidence into facts.

A source declares the facts it can produce (its part of the catalog) and fills them in from an
:class:`~memdiag.evidence.Evidence`. Sources that derive facts from other sources' facts name
those sources in ``after``. A source that cannot read something records a problem and carries on;
a source that raises is reported in one line and the others still run.
"""

from __future__ import annotations

import _thread  # threading's locks without its ~1 ms import

from memdiag.bounded import Deadline, bounded_map
from memdiag.evidence import Evidence, Unreadable
from memdiag.facts import Catalog, FactSet, FactSpec

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import ClassVar, Iterable


class Source:
    """Base class for fact sources. Subclasses set ``name`` and ``facts`` and implement collect."""

    name: ClassVar[str] = ""
    #: names of sources whose facts this one reads
    after: ClassVar[tuple[str, ...]] = ()
    #: the facts this source may produce (families end in ``.*``)
    facts: ClassVar[tuple[FactSpec, ...]] = ()
    #: seconds this source may take before it is abandoned
    timeout: ClassVar[float] = 5.0

    def catalog(self) -> Iterable[FactSpec]:
        return self.facts

    def collect(self, ev: Evidence, out: FactSet) -> None:  # pragma: no cover - interface
        raise NotImplementedError


def spec(name: str, type: str, doc: str, unit: str = "", since: str = "") -> FactSpec:
    """Shorthand used by sources for their fact tables."""
    return FactSpec(name=name, type=type, doc=doc, unit=unit, since=since)


def build_catalog(sources: Iterable[Source]) -> Catalog:
    catalog = Catalog()
    for src in sources:
        for s in src.catalog():
            catalog.add(FactSpec(s.name, s.type, s.doc, s.unit, s.source or src.name, s.since))
    return catalog


def order(sources: Iterable[Source]) -> list[Source]:
    """Sources sorted so each runs after those it names in ``after`` (stable otherwise)."""
    pending = list(sources)
    names = {s.name for s in pending}
    done: set[str] = set()
    ordered: list[Source] = []
    while pending:
        ready = [s for s in pending if all(a in done or a not in names for a in s.after)]
        if not ready:  # a cycle: run the rest in registration order rather than hang
            ready = pending[:1]
        for s in ready:
            ordered.append(s)
            done.add(s.name)
            pending.remove(s)
    return ordered


class _SourceFacts(FactSet):
    """The fact set as one source writes to it: the same facts and problems, until the source is
    given up on. A read stuck in the kernel may return minutes later, in a thread nobody waits
    for; its writes must not change a diagnosis already being evaluated and reported."""

    __slots__ = ("_lock", "closed")

    def __init__(self, shared: FactSet, lock: _thread.LockType) -> None:
        FactSet.__init__(self, shared.catalog, shared.facts, shared.problems)
        self._lock = lock
        self.closed = False

    def set(self, name: str, value, origin: str) -> None:
        with self._lock:
            if not self.closed:
                FactSet.set(self, name, value, origin)

    def set_many(self, items, origin: str) -> None:
        items = list(items)  # made before the lock is taken: a generator may read or raise
        with self._lock:
            if not self.closed:
                FactSet.set_many(self, items, origin)

    def problem(self, source: str, message: str, path: str = "", kind: str = "unreadable") -> None:
        with self._lock:
            if not self.closed:
                FactSet.problem(self, source, message, path, kind)


def collect(sources: Iterable[Source], ev: Evidence, *, deadline: Deadline,
            catalog: Catalog | None = None) -> FactSet:
    """Run every source over ``ev`` within ``deadline``; return facts and problems.

    ``catalog`` is the sources' catalog when the caller has it already (it is built once per
    registry: hundreds of specs)."""
    srcs = order(sources)
    out = FactSet(catalog if catalog is not None else build_catalog(srcs))
    threads: dict[str, int] = {}  # source -> the worker thread running it, to name a stuck read
    lock = _thread.allocate_lock()
    views = {id(src): _SourceFacts(out, lock) for src in srcs}

    def run(src: Source) -> None:
        threads[src.name] = _thread.get_ident()
        view = views[id(src)]
        try:
            src.collect(ev, view)
        except Unreadable as exc:
            view.problem(src.name, exc.message, exc.path or "", exc.kind)

    outcome = bounded_map(run, srcs, stall=lambda s: s.timeout, deadline=deadline)
    with lock:  # what abandoned sources wrote so far stays (partial); nothing more gets in
        for src in outcome.timed_out:
            views[id(src)].closed = True
    for src, exc in outcome.errors:
        out.problem(src.name, f"failed: {type(exc).__name__}: {exc}", kind="failed")
    for src in outcome.timed_out:
        path = ev.reading(threads.get(src.name, 0))
        what = f"timed out reading {path}" if path else "timed out"
        out.problem(src.name, f"{what}; its facts are partial or missing", path or "", kind="timeout")
    for src in outcome.not_started:
        out.problem(src.name, "not run: the overall deadline passed", kind="timeout")
    return out
