"""The zfs source: ARC size, target, floor and ceiling from arcstats."""

from __future__ import annotations

from memdiag.units import GIB

from memdiag.plugins.sources.zfs import ZfsSource, parse_kstat
from .helpers import FIXTURES, Denying, kinds, run, run_live, tree

Z = FIXTURES / "zfs"
ARC = "proc/spl/kstat/zfs/arcstats"


def test_unbounded_arc_on_a_big_host():
    facts = run([ZfsSource()], Z / "arc-unlimited")
    assert facts.get("zfs.arc_size_bytes") == 135291469824
    assert facts.get("zfs.arc_target_bytes") == 135291469824
    assert facts.get("zfs.arc_min_bytes") == 8447008256
    assert facts.get("zfs.arc_max_bytes") == 135166302208
    assert facts.get("zfs.arc_shrinkable_bytes") == 135291469824 - 8447008256
    assert facts.get("zfs.memory_available_bytes") == 6 * GIB
    assert facts.get("zfs.arc_no_grow") is False
    assert facts.origin("zfs.arc_size_bytes").endswith(ARC)
    assert facts.problems == []


def test_capped_arc():
    facts = run([ZfsSource()], Z / "arc-capped")
    assert facts.get("zfs.arc_max_bytes") == 8 * GIB
    assert facts.get("zfs.arc_size_bytes") < 8 * GIB


def test_negative_memory_available_is_kept():
    rows = parse_kstat("x\nname type data\nsize 4 10\nmemory_available_bytes 3 -174063616\n")
    assert rows == {"size": 10, "memory_available_bytes": -174063616}


def test_no_zfs_means_no_facts_and_no_problem(tmp_path):
    facts = run([ZfsSource()], tmp_path)
    assert facts.facts == {} and facts.problems == []


def test_not_an_arcstats_table(tmp_path):
    facts = run([ZfsSource()], tree(tmp_path, {ARC: "hello world\n"}))
    assert kinds(facts) == [("zfs", "malformed")] and facts.facts == {}


def test_unreadable(tmp_path):
    root = tree(tmp_path, {ARC: "size 4 1\n"})
    facts = run([ZfsSource()], root, ev=Denying(str(root), {ARC}))
    assert kinds(facts) == [("zfs", "permission")]


def test_live():
    run_live([ZfsSource()])
