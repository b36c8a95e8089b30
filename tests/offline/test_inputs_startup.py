"""What `memdiag analyze` loads and makes for each kind of input: a folder (sosreport, capture,
loose outputs) is read in place, so neither memdiag.archive nor tempfile is imported and no
temporary folder is made; an archive held in memory makes none either; pasted text, loose
archives and archives too large for memory get their private work folder, removed afterwards;
sos's `date --utc` stamp is read without _strptime/calendar, exactly as strptime reads it."""

from __future__ import annotations

import calendar
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memdiag import pipeline, registry
from memdiag.evidence import Evidence
from memdiag.hookspecs import hookimpl
from memdiag.plugins.inputs.sosreport import capture_time, utc_seconds
from testkit import REPO, SEED, make_tar

FIX = Path(__file__).parent.parent / "fixtures" / "offline"
SOS = FIX / "sos" / "sosreport-centos7-mini"

#: Modules only archives, pasted text, loose outputs or a strptime call should load.
WATCHED = ("memdiag.archive", "tempfile", "shutil", "tarfile", "_strptime", "calendar", "datetime",
           "dataclasses", "memdiag.recognize", "memdiag.plugins.inputs.loose", "json")

_PROBE = """
import sys
from memdiag.cli import main
try:
    code = main(sys.argv[2:])
except SystemExit as exc:
    code = exc.code
loaded = sorted(m for m in sys.argv[1].split(",") if m in sys.modules)
import json  # only now: json is watched too
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""


def _run(path, tmp: Path, cache: Path) -> tuple[set[str], list[str]]:
    tmp.mkdir(exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", _PROBE, ",".join(WATCHED), "analyze", str(path), "--no-sinks",
                           "--format", "text"], capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, "TMPDIR": str(tmp), "XDG_CACHE_HOME": str(cache)})
    assert "memdiag" in proc.stdout and "Traceback" not in proc.stderr, proc.stderr  # a report
    probe = json.loads(proc.stderr.strip().splitlines()[-1])
    assert probe["code"] in (0, 1, 2), proc.stderr
    return set(probe["loaded"]), sorted(os.listdir(tmp))


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """A rule cache already written, as on any host after memdiag's first run (a cold cache
    validates and writes the packs, which loads modules of its own)."""
    where = tmp_path_factory.mktemp("cache")
    _run(SOS, where / "tmp", where)
    return where


@pytest.fixture
def analyze(cache):
    def run(path, tmp_path) -> tuple[set[str], list[str]]:
        """`memdiag analyze PATH` in a fresh interpreter: the watched modules it loaded, and what
        is left in its temporary folder ($TMPDIR) afterwards."""
        return _run(path, tmp_path / "tmpdir", cache)

    return run


def capture_folder(tmp_path) -> Path:
    cap = tmp_path / "memdiag-capture-db02-20241125T160000Z"
    (cap / "proc").mkdir(parents=True)
    shutil.copy(SEED / "meminfo", cap / "proc" / "meminfo")
    (cap / "memdiag-capture.json").write_text(json.dumps({"format": "memdiag-capture", "version": 1, "host": "db02"}))
    return cap


def test_a_sosreport_folder_loads_no_archive_code_and_makes_no_temporary_folder(analyze, tmp_path):
    loaded, left = analyze(SOS, tmp_path)  # its sos_commands/date/date_--utc is read, too
    assert loaded == set(), loaded
    assert left == []


def test_a_capture_folder_likewise(analyze, tmp_path):
    loaded, left = analyze(capture_folder(tmp_path), tmp_path)
    assert loaded == {"json"}, loaded  # its metadata; a sosreport's analysis does without
    assert left == []


def test_loose_outputs_load_the_recogniser_but_nothing_to_unpack_archives(analyze, tmp_path):
    loaded, left = analyze(SEED, tmp_path)
    # memdiag.archive's magic check tells whether the folder's files are archives (a folder of
    # several would be analysed one by one); it imports nothing else
    assert loaded == {"memdiag.recognize", "memdiag.plugins.inputs.loose", "memdiag.archive"}, loaded
    assert left == []


def test_an_archive_read_in_memory_makes_no_work_folder(analyze, tmp_path):
    sos = tmp_path / "sos.tar.gz"
    shutil.make_archive(str(tmp_path / "sos"), "gztar", root_dir=SOS.parent, base_dir=SOS.name)
    loaded, left = analyze(sos, tmp_path)
    assert "memdiag.archive" in loaded and "tarfile" not in loaded  # headers read by memdiag.tarheaders
    assert "tempfile" not in loaded  # nothing written: the members are held in memory
    assert left == []


def test_an_archive_too_large_for_memory_spills_into_its_work_folder_and_it_is_removed(tmp_path):
    from memdiag import archive

    sos = tmp_path / "sos.tar.gz"
    shutil.make_archive(str(tmp_path / "sos"), "gztar", root_dir=SOS.parent, base_dir=SOS.name)
    made = []

    def workdir() -> str:
        made.append(tmp_path / "work")
        made[0].mkdir()
        return str(made[0])

    tree = archive.index(str(sos), workdir, memory=0)  # every byte past 0 spills
    try:
        assert made and tree.read(tree.entries[f"{SOS.name}/proc/meminfo"])  # read back from the spill file
        assert os.listdir(made[0]) == []  # the spill file has no name on disk
    finally:
        tree.store.close()


def test_a_loose_archive_is_extracted_into_the_work_folder_and_it_is_removed(analyze, tmp_path):
    path = make_tar(tmp_path / "ticket.tar.gz", [({"name": "t/meminfo"}, (SEED / "meminfo").read_bytes()),
                                                 ({"name": "t/top.txt"}, (SEED / "top.txt").read_bytes())])
    loaded, left = analyze(path, tmp_path)
    assert {"memdiag.archive", "tempfile", "shutil"} <= loaded
    assert left == []


def test_a_pasted_file_gets_a_work_folder_and_it_is_removed(analyze, tmp_path):
    paste = tmp_path / "ticket.txt"
    paste.write_bytes((SEED / "meminfo").read_bytes())
    loaded, left = analyze(paste, tmp_path)
    assert "tempfile" in loaded
    assert left == []


# -- the work folder, in process ----------------------------------------------------------------


@pytest.fixture(scope="module")
def reg():
    return registry.load(autoload=False)


def test_built_in_openers_take_their_work_folder_lazily(reg):
    assert all(getattr(opener, "lazy_workdir", False) for _, opener in reg.inputs)


def test_open_input_makes_the_work_folder_only_when_an_opener_needs_it(reg, tmp_path):
    calls = []

    def make() -> str:
        calls.append(1)
        path = tmp_path / "work"
        path.mkdir(exist_ok=True)
        return str(path)

    assert pipeline.open_input(str(SOS), reg, make).kind == "sosreport"
    assert pipeline.open_input(str(SEED), reg, make).kind == "folder"
    assert calls == []
    paste = tmp_path / "ticket.txt"
    paste.write_bytes((SEED / "meminfo").read_bytes())
    ev = pipeline.open_input(str(paste), reg, make)
    assert ev.kind == "text" and calls == [1]
    assert os.path.dirname(ev.root) == str(tmp_path / "work")  # its empty private root is in there


class _FifoOpener:
    """A third-party opener (not marked lazy_workdir): it is handed a folder that exists."""

    seen: list[str] = []

    @hookimpl
    def memdiag_inputs(self, register):
        def opener(path: str, workdir: str):
            assert isinstance(workdir, str) and os.path.isdir(workdir)
            self.seen.append(workdir)
            return Evidence(workdir, kind="capture")

        register("fifo", opener)


def test_a_third_party_opener_gets_a_real_work_folder_which_is_removed(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # no built-in opener takes a FIFO
    plugin = _FifoOpener()
    reg = pipeline.load_registry(autoload=False, extra=[("fifo-test", plugin)], cached=False)
    rules = pipeline.load_rules(reg, use_site=False)
    diag = pipeline.diagnose_source(str(fifo), registry=reg, rules=rules)
    assert diag.evidence.kind == "capture" and len(plugin.seen) == 1
    assert not os.path.exists(plugin.seen[0])


def test_pasted_text_uses_a_work_folder_that_is_removed(reg, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR is read again
    rules = pipeline.load_rules(reg, use_site=False)
    diag = pipeline.diagnose_source("", registry=reg, rules=rules, text=(SEED / "meminfo").read_text())
    assert diag.evidence.kind == "text" and diag.facts.get("meminfo.MemTotal")
    assert os.listdir(tmp_path) == []


# -- sos's date --utc ---------------------------------------------------------------------------


def _strptime_seconds(line: str):
    try:
        return float(calendar.timegm(time.strptime(line, "%a %b %d %H:%M:%S UTC %Y")))
    except ValueError:
        return "ValueError"


def _ours(line: str):
    try:
        return utc_seconds(line)
    except ValueError:
        return "ValueError"


def _stamp(t: time.struct_time) -> str:
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", t)


def test_utc_stamp_every_day_from_1900_to_2100_and_random_ones_agree_with_calendar():
    day = calendar.timegm((1900, 1, 1, 0, 0, 0, 0, 0, 0))
    end = calendar.timegm((2101, 1, 1, 0, 0, 0, 0, 0, 0))
    rnd = random.Random(8)
    while day < end:
        t = time.gmtime(day + rnd.randrange(86400))
        line = _stamp(t)
        assert utc_seconds(line) == float(calendar.timegm(t)), line
        day += 86400
    for _ in range(20000):  # year 1 to 9999, leap seconds and the odd spacing strptime allows
        y, mo, d = rnd.randint(1, 9999), rnd.randint(1, 12), rnd.randint(1, 31)
        h, mi, s = rnd.randint(0, 23), rnd.randint(0, 59), rnd.randint(0, 61)
        wd = rnd.choice(["Mon", "tue", "WED", "Thu", "Fri", "Sat", "Sun"])
        mon = rnd.choice(["Jan", "feb", "MAR", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])
        sep = rnd.choice([" ", "  ", "\t", " \n"])
        line = f"{wd}{sep}{mon} {d:0{rnd.choice([1, 2])}d} {h}:{mi:02d}:{s:02d} UTC {y:04d}"
        assert _ours(line) == _strptime_seconds(line), line


@pytest.mark.parametrize("line", [
    "Thu Nov 26 10:00:00 UTC 2026", "Thu Nov  6 10:00:00 UTC 2026", "thu NOV 26 1:2:3 utc 2026",
    "Sun Feb 29 00:00:00 UTC 2000", "Sun Feb 29 00:00:00 UTC 1900", "Sun Feb 30 00:00:00 UTC 2000",
    "Mon Apr 31 00:00:00 UTC 2021", "Mon Jan 01 00:00:00 UTC 0000", "Mon Jan 01 00:00:00 UTC 0001",
    "Mon Jan 01 24:00:00 UTC 1970", "Mon Jan 01 00:60:00 UTC 1970", "Mon Jan 01 00:00:62 UTC 1970",
    "Mon Jan 00 00:00:00 UTC 1970", "Mon Jan 32 00:00:00 UTC 1970", "Monday Jan 01 00:00:00 UTC 1970",
    "Mon January 01 00:00:00 UTC 1970", "Mon Jan 01 00:00:00 UTC 19700", "Mon Jan 01 00:00:00 UTC 197",
    " Mon Jan 01 00:00:00 UTC 1970", "Mon Jan 01 00:00:00 UTC 1970 ", "Mon Jan 01 00:00:00 CET 1970",
    "\u017fun Jan 01 00:00:00 UTC 1970", "Sun Jan 1\u0665 00:00:00 UTC \u0662\u0660\u0662\u0666",
    "Mon\u00a0Jan 01 00:00:00 UTC 1970", "Mon Jan 01 00:00:00 UTC 1970\n", "Mon Jan 01 000:00:00 UTC 1970",
])
def test_utc_stamp_edge_cases_agree_with_strptime(line):
    assert _ours(line) == _strptime_seconds(line)


def test_capture_time_of_a_sosreport_folder():
    assert capture_time(str(SOS)) == utc_seconds((SOS / "sos_commands/date/date_--utc").read_text().strip())
