"""Several diagnoses at once in one process (a bot serving several requests) give exactly the
documents they give one after another, and plugins load once however many threads ask."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import memdiag
from memdiag import pipeline
from testkit import REPO, SEED

from .test_api import without_times

OFFLINE = REPO / "tests" / "fixtures" / "offline"
HOSTS = REPO / "tests" / "fleet" / "hosts"

#: (source, keyword arguments): captures, a sosreport, pasted files and text, live roots.
CASES = [
    (SEED, {}),
    (OFFLINE / "sos" / "sosreport-centos7-mini", {}),
    *((p, {}) for p in sorted((OFFLINE / "pasted").glob("*.txt"))),
    ("/", {"text": (OFFLINE / "pasted" / "ticket-centos7-crlf.txt").read_text()}),
    *((h, {"live": True}) for h in sorted(HOSTS.iterdir())),
    (SEED, {"params": {"vmware-balloon": {"min_unaccounted": "100GiB"}}}),
]


def run(case) -> dict:
    source, kwargs = case
    return without_times(memdiag.diagnose(source, **kwargs).document)


def test_concurrent_diagnoses_equal_sequential_ones(tmp_path, monkeypatch):
    sequential = [run(c) for c in CASES]
    assert len({str(d) for d in sequential}) == len(CASES)  # every case is a different diagnosis
    barrier = threading.Barrier(len(CASES))

    def together(case):
        barrier.wait(timeout=60)  # all start at once
        return run(case)

    for attempt in range(2):
        # an empty rule cache: every thread validates the packs and writes the same cache files
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / f"cache{attempt}"))
        with ThreadPoolExecutor(max_workers=len(CASES)) as pool:
            concurrent = list(pool.map(together, CASES))
        for case, alone, at_once in zip(CASES, sequential, concurrent):
            assert at_once == alone, f"{case[0]} differs when diagnosed alongside others"


def test_plugins_load_once_under_concurrency(monkeypatch):
    from memdiag import registry

    loads = []
    real = registry.load

    def counting(**kwargs):
        loads.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(registry, "load", counting)
    monkeypatch.setattr(pipeline, "_registries", {})
    selection = memdiag.Plugins(blocked=["nagios"])
    n = 12
    barrier = threading.Barrier(n)

    def diagnose(_):
        barrier.wait(timeout=60)
        return memdiag.diagnose(SEED, plugins=selection)

    with ThreadPoolExecutor(max_workers=n) as pool:
        reports = list(pool.map(diagnose, range(n)))
    assert len(loads) == 1
    assert len({id(r._registry) for r in reports}) == 1
    assert "nagios" not in reports[0]._registry.formats
    memdiag.diagnose(SEED, plugins=memdiag.Plugins(blocked=["nagios"]))  # an equal selection
    assert len(loads) == 1
    memdiag.diagnose(SEED)  # another selection
    assert len(loads) == 2


def test_reports_shared_between_threads_do_not_change():
    report = memdiag.diagnose(SEED)
    before = report.to_json()

    def read(_):
        doc = report.document
        doc["findings"].clear()
        dict(report.facts)
        return report.to_markdown()

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert len(set(pool.map(read, range(32)))) == 1
    assert report.to_json() == before
