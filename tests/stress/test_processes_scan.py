"""The process scan's fast paths give exactly what the plain ones would: the status parser that
finds five keys instead of splitting every line, and the streamed totals that replace the list
of every row."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from memdiag.bounded import Deadline
from memdiag.evidence import Evidence
from memdiag.facts import FactSet
from memdiag.plugins.sources.processes import TOP_N, ProcessesSource, _parse_status, _Totals
from memdiag.sources import build_catalog, collect

from .helpers import status_text, write_tree

FIELDS = {b"VmRSS": 0, b"RssAnon": 1, b"RssFile": 2, b"RssShmem": 3, b"VmSwap": 4}


def reference_parse(data: bytes) -> tuple[str, list[int | None]]:
    """Line by line, as the scan used to: the last well-formed line of each key wins. (The old
    loop also took a bare ``Name`` line without its colon as an empty name; that is no name line.)"""
    values: list[int | None] = [None] * 5
    name = ""
    for line in data.split(b"\n"):
        key, sep, rest = line.partition(b":")
        if key == b"Name" and sep:
            name = rest.strip().decode("utf-8", "replace")
            continue
        idx = FIELDS.get(key)
        if idx is not None:
            parts = rest.split()
            if parts and parts[0].isdigit() and len(parts[0]) <= 24:  # longer is not a size
                values[idx] = int(parts[0]) * 1024
    return name, values


keys = st.sampled_from([b"Name", b"VmRSS", b"RssAnon", b"RssFile", b"RssShmem", b"VmSwap", b"VmHWM",
                        b"Threads", b" VmRSS", b"vmrss", b"VmRSSx", b""])
values = st.one_of(st.integers(0, 10**12).map(lambda n: f"\t  {n} kB".encode()),
                   st.sampled_from([b"\t" + b"9" * 5000 + b" kB", b"\t" + b"1" * 24, b"\t" + b"1" * 25]),
                   st.binary(max_size=12), st.sampled_from([b"", b"\t", b" -5 kB", b"\t12", b"\t\xff\xfe"]))
lines = st.tuples(keys, st.sampled_from([b":", b"", b"::"]), values).map(lambda t: b"".join(t))
documents = st.lists(lines, max_size=12).flatmap(
    lambda ls: st.sampled_from([b"\n", b"\r\n"]).map(lambda nl: nl.join(ls)))


@settings(max_examples=400, deadline=None)
@given(documents)
def test_the_fast_status_parser_agrees_with_reading_every_line(data):
    assert _parse_status(data) == reference_parse(data)


def test_it_reads_a_real_status_file():
    with open("/proc/self/status", "rb") as f:
        data = f.read()
    assert _parse_status(data) == reference_parse(data)
    assert _parse_status(data)[1][0] > 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "kworker"]),
                          st.one_of(st.none(), st.integers(0, 10**9))), max_size=40))
def test_streamed_totals_equal_the_sums_over_all_rows(procs):
    acc = _Totals()
    rows = []
    for pid, (name, rss) in enumerate(procs, 1):
        vals = [rss, None if rss is None else rss // 2, None, None, 7]
        acc.add(str(pid), (name, vals))
        rows.append((pid, name, rss or 0))
    assert acc.count == len(rows)
    assert acc.totals[0] == sum(r[2] for r in rows)
    assert acc.totals[4] == 7 * len(rows)
    assert acc.names == {r[1] for r in rows}
    # the same top list (ties in scan order) as sorting every row
    assert acc.top() == sorted(rows, key=lambda r: r[2], reverse=True)[:TOP_N]


def test_a_captured_proc_tree_is_summed_row_by_row(tmp_path):
    procs = {pid: (f"p{pid % 7}", (pid * 37) % 5000) for pid in range(2, 300)}
    write_tree(tmp_path, {f"proc/{pid}/status": status_text(pid, n, rss) for pid, (n, rss) in procs.items()})
    (tmp_path / "proc/999").mkdir()  # a process that exited between listing and reading
    out = collect([ProcessesSource()], Evidence(str(tmp_path), kind="capture"), deadline=Deadline(60))
    assert out.get("processes.count") == len(procs)
    assert out.get("processes.rss_total") == sum(rss for _, rss in procs.values()) * 1024
    assert out.get("processes.unreadable") == 1
    top = out.get("processes.top")
    assert len(top) == TOP_N and [r["rss"] for r in top] == sorted((r["rss"] for r in top), reverse=True)
    assert out.get("processes.names") == sorted({n for n, _ in procs.values()})
    assert isinstance(out, FactSet) and build_catalog([ProcessesSource()]).get("processes.count")
