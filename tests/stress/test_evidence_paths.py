"""The fast link resolution a snapshot uses to refuse links out of it agrees with os.path.realpath
on every kind of path: plain, through links in and out, dangling, looping, with ``..``, absent."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memdiag.evidence import Evidence, Unreadable, _realpath

NAMES = ["a", "b", "file", "fifo", "in", "out", "abs_in", "dangling", "loop", "up", "..", ".", "", "absent"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("paths")
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret").write_text("MemTotal: 1 kB\n")
    root = base / "snap"
    for d in ("a/b", "b/a"):
        (root / d).mkdir(parents=True)
    for d in (root, root / "a", root / "a/b", root / "b"):
        (d / "file").write_text("x")
        os.mkfifo(d / "fifo")
        os.symlink("b", d / "in") if d != root / "a/b" else os.symlink("..", d / "in")
        os.symlink(str(outside), d / "out")
        os.symlink(str(root / "a"), d / "abs_in")
        os.symlink("nowhere", d / "dangling")
        os.symlink("loop", d / "loop")
        os.symlink("../..", d / "up")
    return root


@settings(max_examples=500, deadline=None)
@given(parts=st.lists(st.sampled_from(NAMES), min_size=1, max_size=6))
def test_agrees_with_realpath(tree, parts):
    path = os.path.join(str(tree), *parts)
    assert _realpath(path) == os.path.realpath(path)


def test_links_out_are_still_refused_and_links_in_followed(tree):
    ev = Evidence(str(tree), kind="capture")
    with pytest.raises(Unreadable, match="link leads outside the snapshot"):
        ev.read_text("out/secret")
    with pytest.raises(Unreadable, match="link leads outside the snapshot"):
        ev.read_text("a/up/outside/secret")
    assert ev.read_text("abs_in/file") == "x" and ev.read_text("in/file") == "x"
    assert ev.read_bytes("dangling") is None and ev.read_bytes("absent/file") is None
    with pytest.raises(Unreadable, match="FIFO"):
        ev.read_bytes("a/fifo")
