"""Work that stalls is abandoned and the rest goes on, within the deadline."""

from __future__ import annotations

import threading
import time

from memdiag.bounded import Deadline, bounded_map


def test_a_stalled_item_is_abandoned_and_the_next_ones_run():
    release, came_back = threading.Event(), threading.Event()

    def work(i: int) -> int:
        if i == 2:
            release.wait(60)  # a read stuck in the kernel
            came_back.set()
        if i == 3:
            raise ValueError("bad")
        return i * 10

    out = bounded_map(work, range(6), stall=0.2, deadline=Deadline(60))
    returned_while_stuck = not came_back.is_set()  # it did not wait for the stuck item
    release.set()
    assert returned_while_stuck
    assert out.results == [(0, 0), (1, 10), (4, 40), (5, 50)]
    assert out.timed_out == [2]
    assert [(i, type(e).__name__) for i, e in out.errors] == [(3, "ValueError")]


def test_the_overall_deadline_stops_everything():
    out = bounded_map(lambda i: time.sleep(0.15), range(20), stall=5, deadline=Deadline(0.4))
    assert out.results and out.not_started
    assert len(out.results) + len(out.timed_out) + len(out.not_started) == 20


def test_per_item_stall():
    out = bounded_map(lambda s: time.sleep(s), [0.3, 0.01], stall=lambda s: 1.0 if s > 0.2 else 0.1,
                      deadline=Deadline(5))
    assert [i for i, _ in out.results] == [0.3, 0.01]
