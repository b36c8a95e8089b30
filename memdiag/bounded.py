"""Work that must finish on a host in trouble: deadlines around reads that may block.

A read of /proc/PID/* can sleep in the kernel (uninterruptible, behind the target's mmap lock),
and a FIFO planted in a captured folder blocks an ``open``. Python cannot interrupt a thread stuck
in a system call, so :func:`bounded_map` runs the work in a daemon worker, watches its progress,
and when one item stalls it abandons that worker and starts a fresh one at the next item. The
caller always gets control back within the deadline, with every result finished so far.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Generic, Iterable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Deadline:
    """A point in time work must finish by; ``None`` seconds means no limit."""

    __slots__ = ("end",)

    def __init__(self, seconds: float | None) -> None:
        self.end = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        return None if self.end is None else max(0.0, self.end - time.monotonic())

    def expired(self) -> bool:
        return self.end is not None and time.monotonic() >= self.end


class Outcome(Generic[T, R]):
    """What :func:`bounded_map` achieved: results in item order, and what it gave up on."""

    __slots__ = ("results", "errors", "timed_out", "not_started")

    def __init__(self) -> None:
        self.results: list[tuple[T, R]] = []
        self.errors: list[tuple[T, BaseException]] = []
        self.timed_out: list[T] = []  # stalled items, abandoned
        self.not_started: list[T] = []  # left when the overall deadline passed

    def __repr__(self) -> str:
        return (f"Outcome(results={self.results!r}, errors={self.errors!r}, timed_out={self.timed_out!r}, "
                f"not_started={self.not_started!r})")


class _Worker(threading.Thread):
    def __init__(self, items: Sequence, start: int, fn: Callable, sink: "_Shared") -> None:
        super().__init__(daemon=True, name="memdiag-bounded")
        self.items, self.index, self.fn, self.sink = items, start, fn, sink
        self.abandoned = False
        self.done = threading.Event()

    def run(self) -> None:
        items, fn, sink = self.items, self.fn, self.sink
        try:
            while self.index < len(items):
                item = items[self.index]
                try:
                    result = fn(item)
                except Exception as exc:  # recorded per item, never fatal
                    outcome = (False, exc)
                else:
                    outcome = (True, result)
                with sink.lock:
                    if self.abandoned:
                        return
                    sink.record(item, outcome)
                    self.index += 1
                    sink.progress += 1
        finally:
            self.done.set()


class _Shared:
    def __init__(self, outcome: Outcome, on_result: Callable | None = None) -> None:
        self.lock = threading.Lock()
        self.progress = 0
        self.outcome = outcome
        self.on_result = on_result

    def record(self, item, outcome) -> None:
        ok, value = outcome
        if ok and self.on_result is not None:
            try:
                self.on_result(item, value)
            except Exception as exc:  # a failing consumer is that item's error, not the worker's death
                self.outcome.errors.append((item, exc))
            return
        (self.outcome.results if ok else self.outcome.errors).append((item, value))


def bounded_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    stall: float | Callable[[T], float],
    deadline: Deadline,
    poll: float = 0.05,
    on_result: Callable[[T, R], None] | None = None,
) -> Outcome[T, R]:
    """Apply ``fn`` to each item in order; give up on an item after ``stall`` seconds without
    progress (a number, or a function of the item), and on everything when ``deadline`` passes.
    Exceptions from ``fn`` are collected.

    With ``on_result``, each result is handed to it instead of being kept in ``results``: in
    item order, from the worker thread, and never once that worker was abandoned. So a scan of
    100,000 processes can keep running totals rather than 100,000 rows. An exception it raises
    is recorded as that item's error."""
    seq = list(items)
    stall_of = stall if callable(stall) else (lambda _item, s=stall: s)
    outcome: Outcome[T, R] = Outcome()
    shared = _Shared(outcome, on_result)
    start = 0
    while start < len(seq):
        if deadline.expired():
            outcome.not_started.extend(seq[start:])
            break
        worker = _Worker(seq, start, fn, shared)
        worker.start()
        last_progress, last_change = shared.progress, time.monotonic()
        while True:
            remaining = deadline.remaining()
            wait = poll if remaining is None else min(poll, remaining)
            if worker.done.wait(wait):
                return outcome
            now = time.monotonic()
            with shared.lock:
                if shared.progress != last_progress:
                    last_progress, last_change = shared.progress, now
                    continue
                if worker.index >= len(seq):  # finished; done is about to be set
                    continue
                stalled = now - last_change >= stall_of(seq[worker.index])
                if stalled or deadline.expired():
                    worker.abandoned = True
                    stuck = worker.index
                    break
        if stalled:
            outcome.timed_out.append(seq[stuck])
            start = stuck + 1
        else:
            outcome.timed_out.append(seq[stuck])
            outcome.not_started.extend(seq[stuck + 1 :])
            break
    return outcome
