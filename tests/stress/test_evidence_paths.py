"""The fast link resolution a snapshot uses to refuse links out of it agrees with os.path.realpath
on every kind of path: plain, through links in and out, dangling, looping, with ``..``, absent."""

from __future__ import annotations

import errno
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


def _oracle(root: str, rel: str, verb: str):
    """What a snapshot must answer, by the plain definition: resolve the whole path with
    os.path.realpath; outside the root is refused, inside is read as the kernel opens it."""
    path = os.path.join(root, rel)
    real = os.path.realpath(path)
    inside = real == root or real.startswith(root + os.sep)
    if verb == "exists":
        return inside and os.path.lexists(path)
    if verb == "listdir":
        if not inside:
            return []
        try:
            return sorted(os.listdir(path))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:  # a link loop lists as nothing (it once escaped as a traceback)
            return [] if exc.errno == errno.ELOOP else type(exc).__name__
    if not inside:
        return "outside"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return "error"
    try:
        import stat

        return os.read(fd, 100) if stat.S_ISREG(os.fstat(fd).st_mode) else "not regular"
    finally:
        os.close(fd)


def _answer(ev: Evidence, rel: str, verb: str):
    if verb == "exists":
        return ev.exists(rel)
    if verb == "listdir":
        try:
            return sorted(ev.listdir(rel))
        except OSError as exc:
            return type(exc).__name__
    try:
        return ev.read_bytes(rel)
    except Unreadable as exc:
        return ("outside" if "outside" in exc.message else "not regular" if "regular" in exc.message
                else "error")


@settings(max_examples=1500, deadline=None)
@given(parts=st.lists(st.sampled_from(NAMES), min_size=1, max_size=5),
       verb=st.sampled_from(["read", "exists", "listdir"]))
def test_snapshot_reads_agree_with_whole_path_resolution(tree, parts, verb):
    """The folder cache and O_NOFOLLOW leaf (links checked only where there are links) answer
    every read, existence check and listing as resolving the whole path each time would."""
    ev = Evidence(str(tree), kind="capture")
    rel = "/".join(parts)
    for _ in range(2):  # a second time, from the cache
        assert _answer(ev, rel, verb) == _oracle(str(tree), rel, verb), rel


def test_an_absent_folder_is_looked_at_once(tree, monkeypatch):
    """Sources probe absent folders (proc/PID/fdinfo of every process in a capture): once one is
    known to be absent, reads, listings and existence checks below it ask the file system nothing."""
    ev = Evidence(str(tree), kind="capture")
    calls: list[str] = []
    for name in ("lstat", "open", "listdir", "stat"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    for _ in range(3):
        assert ev.listdir("a/absent") == [] and ev.listdir("a/absent/deeper") == []
        assert ev.read_bytes("a/absent/file") is None and ev.lines("a/absent/deeper/file") is None
        assert not ev.exists("a/absent/file") and not ev.exists("a/absent/deeper")
    assert calls == ["lstat", "lstat"]  # "a", then "a/absent"; nothing more


@pytest.fixture(scope="module")
def crowded(tmp_path_factory):
    """One folder of many sub-folders, as proc/ has a folder per process: plain ones, links in,
    out, dangling and looping, a file and a FIFO where a folder could be, each with a file."""
    base = tmp_path_factory.mktemp("crowded")
    outside = base / "outside"
    outside.mkdir()
    (outside / "status").write_text("secret\n")
    root = base / "snap"
    proc = root / "proc"
    proc.mkdir(parents=True)
    for pid in range(1, 40):
        (proc / str(pid)).mkdir()
        (proc / str(pid) / "status").write_text(f"Pid: {pid}\n")
    os.symlink("7", proc / "self")
    os.symlink(str(outside), proc / "100")
    os.symlink("../..", proc / "101")
    os.symlink("nowhere", proc / "102")
    os.symlink("103", proc / "103")
    (proc / "104").write_text("a file, not a folder\n")
    os.mkfifo(proc / "105")
    return root


NAMES_IN_PROC = [str(p) for p in range(1, 45)] + ["100", "101", "102", "103", "104", "105", "106", "self"]


@settings(max_examples=300, deadline=None)
@given(order=st.permutations(NAMES_IN_PROC), verb=st.sampled_from(["read", "exists", "listdir"]),
       leaf=st.sampled_from(["status", "", "absent"]))
def test_a_listed_folder_answers_as_looking_at_each_would(crowded, order, verb, leaf):
    """After a few of its sub-folders are looked at one by one, proc/ is listed once and its
    entries' types taken from the listing: every answer stays what resolving each path gives."""
    ev = Evidence(str(crowded), kind="capture")
    for name in order:
        rel = f"proc/{name}/{leaf}" if leaf else f"proc/{name}"
        for _ in range(2):
            assert _answer(ev, rel, verb) == _oracle(str(crowded), rel, verb), rel


def test_a_crowded_folder_is_listed_once_not_looked_at_entry_by_entry(crowded, monkeypatch):
    ev = Evidence(str(crowded), kind="capture")
    calls: list[str] = []
    for name in ("lstat", "scandir"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    for pid in range(1, 40):
        assert ev.read_bytes(f"proc/{pid}/status") == f"Pid: {pid}\n".encode()
    assert calls.count("scandir") == 1 and calls.count("lstat") <= 3  # proc, then two of its folders
