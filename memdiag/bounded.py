"""Work that must finish on a host in trouble: deadlines around reads that may block.

A read of /proc/PID/* can sleep in the kernel (uninterruptible, behind the target's mmap lock),
and a FIFO planted in a captured folder blocks an ``open``. Python cannot interrupt a thread stuck
in a system call, so :func:`bounded_map` runs the work in a daemon worker, watches its progress,
and when one item stalls it abandons that worker and starts a fresh one at the next item. The
caller always gets control back within the deadline, with every result finished so far.
"""

from __future__ import annotations

import _thread  # threading's Thread and Event cost ~1 ms to import and a start-up handshake each
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Any, Callable, Iterable, Sequence


class Deadline:
    """A point in time work must finish by; ``None`` seconds means no limit."""

    __slots__ = ("end",)

    def __init__(self, seconds: float | None) -> None:
        self.end = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        return None if self.end is None else max(0.0, self.end - time.monotonic())

    def expired(self) -> bool:
        return self.end is not None and time.monotonic() >= self.end


class Abandoned(BaseException):
    """Raised into work that runs in the caller's thread, at its next read, once its time is up
    (sources over evidence held in memory: :func:`memdiag.sources.collect`). A BaseException, as
    asyncio's CancelledError is, so the work's own ``except Exception`` around one item does not
    take it for that item's failure and carry on. ``path``: what was about to be read."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


class Outcome:
    """What :func:`bounded_map` achieved: results in item order, and what it gave up on."""

    __slots__ = ("results", "errors", "timed_out", "not_started")

    def __init__(self) -> None:
        self.results: list[tuple[Any, Any]] = []
        self.errors: list[tuple[Any, BaseException]] = []
        self.timed_out: list[Any] = []  # stalled items, abandoned
        self.not_started: list[Any] = []  # left when the overall deadline passed

    def __repr__(self) -> str:
        return (f"Outcome(results={self.results!r}, errors={self.errors!r}, timed_out={self.timed_out!r}, "
                f"not_started={self.not_started!r})")


class _Worker:
    """Applies ``fn`` from item ``start`` on, in a thread of its own (a daemon: the process
    never waits for one stuck in a read). ``index`` (items finished) is its progress, read by
    the watcher without the lock; finished results wait in ``pending`` and are handed over,
    under the lock, ``batch`` at a time - or by the watcher, when it abandons this worker.
    ``done`` is held until the worker ends."""

    def __init__(self, items: Sequence[Any], start: int, fn: Callable[[Any], Any], sink: _Shared,
                 batch: int) -> None:
        self.items, self.index, self.fn, self.sink, self.batch = items, start, fn, sink, batch
        self.delivered = start  # items before this one are handed over
        self.pending: list[tuple[Any, bool, Any]] = []
        self.abandoned = False
        self.done = _thread.allocate_lock()
        self.done.acquire()

    def start(self) -> None:
        _thread.start_new_thread(self.run, ())

    def run(self) -> None:
        items, fn, batch, pending = self.items, self.fn, self.batch, self.pending
        append = pending.append
        i, end = self.index, len(items)
        try:
            while i < end:
                item = items[i]
                try:
                    append((item, True, fn(item)))
                except Exception as exc:  # recorded per item, never fatal
                    append((item, False, exc))
                i += 1
                self.index = i  # after the append: the watcher may hand over up to here
                if self.abandoned:  # given up on while this item ran; the watcher took the rest
                    return
                if (len(pending) >= batch or i == end) and not self._hand_over():
                    return
        finally:
            if pending and not self.abandoned:  # a BaseException: keep what was finished
                self._hand_over()
            self.done.release()

    def _hand_over(self) -> bool:
        """Hand over ``pending``; False when this worker was abandoned meanwhile."""
        with self.sink.lock:
            if self.abandoned:
                return False
            finished = self.pending[:]  # taken first: never handed over twice, whatever record raises
            self.pending.clear()
            self.delivered += len(finished)
            self.sink.record(finished)
            return True


class _Shared:
    def __init__(self, outcome: Outcome, on_result: Callable[[Any, Any], None] | None = None) -> None:
        self.lock = _thread.allocate_lock()
        self.outcome = outcome
        self.on_result = on_result

    def record(self, finished: list[tuple[Any, bool, Any]]) -> None:
        """Hand over finished items, in order; the caller holds the lock."""
        on_result, outcome = self.on_result, self.outcome
        for item, ok, value in finished:
            if not ok:
                outcome.errors.append((item, value))
            elif on_result is None:
                outcome.results.append((item, value))
            else:
                try:
                    on_result(item, value)
                except Exception as exc:  # a failing consumer is that item's error, not the worker's death
                    outcome.errors.append((item, exc))


def bounded_map(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    stall: float | Callable[[Any], float],
    deadline: Deadline,
    poll: float = 0.05,
    on_result: Callable[[Any, Any], None] | None = None,
    batch: int = 1,
) -> Outcome:
    """Apply ``fn`` to each item in order; give up on an item after ``stall`` seconds without
    progress (a number, or a function of the item), and on everything when ``deadline`` passes.
    Exceptions from ``fn`` are collected.

    With ``on_result``, each result is handed to it instead of being kept in ``results``: in
    item order, one call at a time, and never from a worker once it was abandoned. So a scan of
    100,000 processes can keep running totals rather than 100,000 rows. An exception it raises
    is recorded as that item's error.

    ``batch``: results are handed over this many at a time, one lock round per batch instead of
    per item (for many cheap items: a process scan). The stall guard is unchanged: the worker
    reports progress after every item, and when it is abandoned on a stuck item, the results it
    finished before that one are handed over by the watcher (in order, from the caller's
    thread), so no finished item is lost and none arrives after ``bounded_map`` returns."""
    seq = list(items)
    stall_of = stall if callable(stall) else (lambda _item, s=stall: s)
    outcome = Outcome()
    shared = _Shared(outcome, on_result)
    batch = max(1, batch)
    start = 0
    while start < len(seq):
        if deadline.expired():
            outcome.not_started.extend(seq[start:])
            break
        worker = _Worker(seq, start, fn, shared, batch)
        worker.start()
        last_progress, last_change = start, time.monotonic()
        finishing = False  # every item done: only the last hand-over (no reads) is left
        while True:
            remaining = deadline.remaining()
            wait = poll if remaining is None or finishing else min(poll, remaining)
            if worker.done.acquire(True, wait):
                return outcome
            now = time.monotonic()
            with shared.lock:  # the worker is not handing over meanwhile
                progress = worker.index
                if progress >= len(seq):
                    finishing = True
                    continue
                if progress != last_progress:
                    last_progress, last_change = progress, now
                    continue
                stalled = now - last_change >= stall_of(seq[progress])
                if stalled or deadline.expired():
                    worker.abandoned = True
                    # Items before ``progress`` are finished (the worker appends, then counts);
                    # a result after them is the stuck item's, come too late: it timed out.
                    shared.record(worker.pending[: progress - worker.delivered])
                    stuck = progress
                    break
        outcome.timed_out.append(seq[stuck])
        if stalled:
            start = stuck + 1
        else:
            outcome.not_started.extend(seq[stuck + 1 :])
            break
    return outcome
