"""The sources' top-N keeper gives what sorting everything would, with ties as the scans want."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from memdiag.plugins.sources._readers import Largest


@given(st.lists(st.integers(0, 50), max_size=400), st.integers(1, 20))
def test_it_keeps_the_n_largest_largest_first(values, n):
    items = [(v, -seen) for seen, v in enumerate(values)]  # ties: the first seen ranks first
    kept = Largest(n)
    for item in items:
        kept.add(item)
    assert kept.largest() == sorted(items, reverse=True)[:n]
    assert len(kept.items) < 2 * n  # never more than twice n held


def test_a_long_scan_turns_most_items_away_at_the_floor():
    kept = Largest(3)
    for v in range(10):
        kept.add((v, -v))
    assert kept.floor is not None
    held = len(kept.items)
    kept.add((kept.floor[0] - 1, 0))  # below the floor: not even held
    assert len(kept.items) == held
    assert kept.largest() == [(9, -9), (8, -8), (7, -7)]
