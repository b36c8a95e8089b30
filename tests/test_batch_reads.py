"""Many facts or files in one call: FactSet.set_many and Evidence.read_each answer exactly as the
one-at-a-time calls they stand for (the batch analysis of captures uses them)."""

from __future__ import annotations

import os
import threading

import pytest

from memdiag.evidence import Captured, Evidence, Unreadable
from memdiag.facts import UNKNOWN, Catalog, FactSet
from memdiag.plugins.inputs._evidence import OfflineEvidence
from memdiag.sources import _SourceFacts


def test_set_many_is_set_of_each():
    one, many = FactSet(Catalog()), FactSet(Catalog())
    items = [("a.x", 1), ("a.y", None), ("a.z", UNKNOWN), ("a.x", 2), ("a.w", 0)]
    for name, value in items:
        one.set(name, value, "here")
    many.set_many(items, "here")
    assert many.facts == one.facts
    assert list(many.facts) == list(one.facts)  # same order: a repeated name keeps its place


def test_set_many_of_a_source_given_up_on_writes_nothing():
    shared, lock = FactSet(Catalog()), threading.Lock()
    view = _SourceFacts(shared, lock)
    view.set_many([("a.x", 1)], "here")
    view.closed = True
    view.set_many([("a.y", 2)], "there")
    assert {n: f.value for n, f in shared.facts.items()} == {"a.x": 1}


@pytest.fixture
def snapshot(tmp_path):
    root = tmp_path / "snap"
    (root / "blocks/b1").mkdir(parents=True)
    (root / "blocks/b1/state").write_text("online\n")
    (root / "blocks/b2").mkdir()
    os.mkfifo(root / "blocks/b2/state")  # refused, never waited on
    (root / "blocks/b3").mkdir()
    (root / "blocks/b3/state").write_bytes(b"\x00\x01")
    return root


RELS = ["blocks/b1/state", "blocks/b2/state", "blocks/b3/state", "blocks/b4/state", "blocks/b5/state",
        "blocks/b6/state", "../outside", "blocks/b1"]


def _one_by_one(ev: Evidence) -> list:
    out = []
    for rel in RELS:
        try:
            out.append((rel, ev.read_bytes(rel)))
        except Unreadable as exc:
            out.append((rel, (exc.path, exc.message, exc.kind)))
    return out


def _batched(ev: Evidence) -> list:
    return [(rel, (v.path, v.message, v.kind) if isinstance(v, Unreadable) else v) for rel, v in ev.read_each(RELS)]


def test_read_each_answers_as_read_bytes_on_a_snapshot(snapshot):
    ev = Evidence(str(snapshot), kind="capture")
    assert _batched(ev) == _one_by_one(ev)
    assert _batched(ev)[0] == ("blocks/b1/state", b"online\n")
    assert _batched(ev)[1][1][2] == "malformed"  # the FIFO


def test_read_each_answers_as_read_bytes_on_a_capture_with_packed_and_replayed_files(snapshot):
    def make() -> OfflineEvidence:
        overlay = {"blocks/b5/state": Captured("offline\n", "x/blocks/b5/state"),
                   "blocks/b6/state": Captured("online\n", "x/blocks/b6/state")}
        return OfflineEvidence(str(snapshot), kind="capture", shown_as="cap:", overlay=overlay,
                               unreadable={"blocks/b6/state": ("permission denied", "permission"),
                                           "blocks/b4/state": ("gone", "unreadable")})

    assert _batched(make()) == _one_by_one(make())
    got = dict(_batched(make()))
    assert got["blocks/b5/state"] == b"offline\n"
    assert got["blocks/b6/state"] == ("x/blocks/b6/state", "permission denied", "permission")


def test_read_each_lets_a_subclass_see_every_read(snapshot):
    seen = []

    class Watching(OfflineEvidence):
        def read_bytes(self, rel, limit=16 * 1024 * 1024):
            seen.append(rel)
            return super().read_bytes(rel, limit)

    ev = Watching(str(snapshot), kind="capture", overlay={"blocks/b5/state": Captured("online\n", "o")})
    list(ev.read_each(RELS))
    assert seen == RELS
