"""Fact sources: turn evidence into facts.

A source declares the facts it can produce (its part of the catalog) and fills them in from an
:class:`~memdiag.evidence.Evidence`. Sources that derive facts from other sources' facts name
those sources in ``after``. A source that cannot read something records a problem and carries on;
a source that raises is reported in one line and the others still run.
"""

from __future__ import annotations

import _thread  # threading's locks without its ~1 ms import
from time import monotonic

from memdiag.bounded import Abandoned, Deadline, Outcome, bounded_map
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
    #: collect() reads nothing but the Evidence it is given (no file, socket or command of its
    #: own), so over evidence held in memory it cannot block and needs no worker thread. Leave
    #: False for a source that does any I/O of its own: it is always run by a watched worker.
    evidence_only: ClassVar[bool] = False

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
    if ev.in_memory and all(src.evidence_only for src in srcs):
        outcome, stuck_on = _run_here(srcs, ev, out, deadline)
    else:
        outcome, stuck_on = _run_watched(srcs, ev, out, deadline)
    for src, exc in outcome.errors:
        out.problem(src.name, f"failed: {type(exc).__name__}: {exc}", kind="failed")
    for src in outcome.timed_out:
        path = stuck_on.get(src.name)
        what = f"timed out reading {path}" if path else "timed out"
        out.problem(src.name, f"{what}; its facts are partial or missing", path or "", kind="timeout")
    for src in outcome.not_started:
        out.problem(src.name, "not run: the overall deadline passed", kind="timeout")
    return out


def _run_watched(srcs: list[Source], ev: Evidence, out: FactSet, deadline: Deadline) -> tuple[Outcome, dict[str, str]]:
    """The sources in a worker watched by :func:`bounded_map`: a read stuck in the kernel is
    abandoned. Returns the outcome and, per abandoned source, the file it was reading."""
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
    stuck_on = {}
    for src in outcome.timed_out:
        path = ev.reading(threads.get(src.name, 0))
        if path:
            stuck_on[src.name] = path
    return outcome, stuck_on


def _run_here(srcs: list[Source], ev: Evidence, out: FactSet, deadline: Deadline) -> tuple[Outcome, dict[str, str]]:
    """The sources in this thread, over evidence whose reads cannot block (waking a worker cost
    0.2-0.6 ms of a ~5 ms capture). The same time limits hold, checked at each read instead of
    by a watcher: a source past its own timeout or the overall deadline stops at its next read
    (:class:`Abandoned`), keeping what it wrote so far, as an abandoned worker's source does."""
    outcome, stuck_on = Outcome(), {}
    end = deadline.end
    try:
        for i, src in enumerate(srcs):
            if deadline.expired():
                outcome.not_started.extend(srcs[i:])
                break
            due = monotonic() + src.timeout
            ev.due = due if end is None or due < end else end
            try:
                src.collect(ev, out)
            except Unreadable as exc:
                out.problem(src.name, exc.message, exc.path or "", exc.kind)
            except Abandoned as exc:
                outcome.timed_out.append(src)
                stuck_on[src.name] = exc.path
            except Exception as exc:  # one source's failure, never the diagnosis's
                outcome.errors.append((src, exc))
    finally:
        ev.due = None
    return outcome, stuck_on
