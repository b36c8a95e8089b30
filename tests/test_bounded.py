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


# -- results handed over in batches ------------------------------------------------------------

def test_batches_hand_over_every_result_in_order():
    seen = []
    out = bounded_map(lambda i: i * 2, range(1000), stall=5, deadline=Deadline(60), batch=64,
                      on_result=lambda item, r: seen.append((item, r)))
    assert seen == [(i, i * 2) for i in range(1000)]
    assert not (out.results or out.errors or out.timed_out or out.not_started)


def test_a_stall_inside_a_batch_keeps_the_items_finished_before_it():
    """Items 0-2 are finished but not yet handed over (the batch is 16) when item 3 sticks: the
    watcher hands them over, item 3 times out, and a fresh worker goes on from item 4. The stuck
    worker never delivers, even once it comes back."""
    release, seen = threading.Event(), []

    def work(i: int) -> int:
        if i == 3:
            release.wait(60)
        if i == 5:
            raise ValueError("bad")
        return i

    out = bounded_map(work, range(40), stall=0.2, deadline=Deadline(60), batch=16,
                      on_result=lambda item, r: seen.append(item))
    handed_over = list(seen)
    release.set()
    time.sleep(0.3)  # give the abandoned worker every chance to (wrongly) deliver
    assert out.timed_out == [3]
    assert [(i, str(e)) for i, e in out.errors] == [(5, "bad")]
    assert handed_over == [i for i in range(40) if i not in (3, 5)] and seen == handed_over


def test_batches_and_the_overall_deadline_account_for_every_item():
    out = bounded_map(lambda i: time.sleep(0.02), range(100), stall=5, deadline=Deadline(0.3), batch=8)
    assert out.results and out.not_started and len(out.timed_out) == 1
    done = [i for i, _ in out.results]
    assert done == list(range(len(done)))  # in order, none lost before the one given up on
    assert done + out.timed_out + out.not_started == list(range(100))


def test_a_worker_ended_by_a_base_exception_keeps_what_it_finished():
    def work(i: int) -> int:
        if i == 2:
            raise SystemExit  # ends the worker thread, not the process
        return i

    out = bounded_map(work, range(6), stall=5, deadline=Deadline(60), batch=4)
    assert out.results == [(0, 0), (1, 1)]
