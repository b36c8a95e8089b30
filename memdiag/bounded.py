"""Work that must finish on a host in trouble: deadlines around reads that may block.

A read of /proc/PID/* can sleep in the kernel (uninterruptible, behind the target's mmap lock),
and a FIFO planted in a captured folder blocks an ``open``. Python cannot interrupt a thread stuck
in a system call, so :func:`bounded_map` runs the work in a daemon worker, watches its progress,
and when one item stalls it abandons that worker and starts a fresh one at the next item. The
caller always gets control back within the deadline, with every result finished so far. A
worker's thread that finishes its items waits a while for the next call's (see PARK_SECONDS);
one abandoned is never given work again.
"""

from __future__ import annotations

import os
import threading
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


#: A reading thread that finished its items waits this long for the next bounded_map before it
#: ends: a batch diagnosing capture after capture, or a live scan inside the sources' run, takes
#: it up instead of starting a thread each time (a fresh thread's first work runs cold: ~0.2 ms
#: more CPU per diagnosis than in a thread that ran before).
PARK_SECONDS = 2.0
#: At most this many finished threads wait at once (the sources' run and a scan inside it: two).
PARK_MAX = 4

_parked: list[_Thread] = []  # finished threads waiting for work, the last parked on top
_parked_lock = threading.Lock()


class _Worker:
    """Applies ``fn`` from item ``start`` on. ``index`` (items finished) is its progress, read by
    the watcher without the lock; finished results wait in ``pending`` and are handed over,
    under the lock, ``batch`` at a time - or by the watcher, when it abandons this worker."""

    def __init__(self, items: Sequence[Any], start: int, fn: Callable[[Any], Any], sink: _Shared,
                 batch: int) -> None:
        self.items, self.index, self.fn, self.sink, self.batch = items, start, fn, sink, batch
        self.delivered = start  # items before this one are handed over
        self.pending: list[tuple[Any, bool, Any]] = []
        self.abandoned = False
        self.done = threading.Event()

    def run(self) -> bool:
        """Apply ``fn`` to the items; True when every one was done (the thread may take more
        work), False when this worker was abandoned or a BaseException ended it."""
        items, fn, sink, batch, pending = self.items, self.fn, self.sink, self.batch, self.pending
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
                    return False
                if (len(pending) >= batch or i == end) and not self._hand_over():
                    return False
            return True
        finally:
            if pending and not self.abandoned:  # a BaseException: keep what was finished
                self._hand_over()

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


class _Thread(threading.Thread):
    """A daemon thread running one worker after another: between two it is parked (at most
    PARK_SECONDS). A worker abandoned on a stuck item takes its thread with it: that thread
    ends when (if ever) the item returns, and is never parked or given work again."""

    def __init__(self, worker: _Worker) -> None:
        super().__init__(daemon=True, name="memdiag-bounded")
        self.worker: _Worker | None = worker
        self.wake = threading.Lock()
        self.wake.acquire()  # released when a worker is handed to this thread

    def run(self) -> None:
        worker, self.worker = self.worker, None
        while worker is not None:
            finished = False
            try:
                finished = worker.run()
            finally:
                # parked before the caller learns the work is done: its next call finds this thread
                parked = finished and self._park()
                worker.done.set()
            worker = None  # nothing of a finished run is held while parked
            if parked:
                worker = self._next()

    def _park(self) -> bool:
        with _parked_lock:
            if len(_parked) >= PARK_MAX:
                return False
            _parked.append(self)
            return True

    def _next(self) -> _Worker | None:
        """The next worker handed to this thread, or None when none came in PARK_SECONDS."""
        if not self.wake.acquire(timeout=PARK_SECONDS):
            with _parked_lock:
                if self in _parked:
                    _parked.remove(self)
                    return None
            self.wake.acquire()  # taken off the pile just now: its worker is on the way
        worker, self.worker = self.worker, None
        return worker


def _start(worker: _Worker) -> None:
    """Run ``worker`` on a parked thread, or on a new one."""
    with _parked_lock:
        thread = _parked.pop() if _parked else None
    if thread is None:
        _Thread(worker).start()
    else:
        thread.worker = worker
        thread.wake.release()


def _forget_parked() -> None:
    """In a forked child: the parked threads were the parent's (a fork copies only its caller)."""
    global _parked_lock
    _parked.clear()
    _parked_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_parked)


class _Shared:
    def __init__(self, outcome: Outcome, on_result: Callable[[Any, Any], None] | None = None) -> None:
        self.lock = threading.Lock()
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
        _start(worker)
        last_progress, last_change = start, time.monotonic()
        finishing = False  # every item done: only the last hand-over (no reads) is left
        while True:
            remaining = deadline.remaining()
            wait = poll if remaining is None or finishing else min(poll, remaining)
            if worker.done.wait(wait):
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
