"""Hostile captured folders through the command line: binary junk, UTF-16, CRLF, absurd and
negative values, truncated files, wrong units, links out, broken archives. Each ends in a report
or one clear line naming the file and the problem, with a documented exit code; never a
traceback. (FIFOs: test_bounded_collection.py.)"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from testkit import validate_document

from .helpers import REPO, SEED, write_tree

MEMINFO = (SEED / "meminfo").read_text()
TOP = (SEED / "top.txt").read_text()
DOCUMENTED = {0, 1, 2, 3}  # ok, warning, critical, could not diagnose (memdiag.errors)


class Outcome:
    def __init__(self, proc: subprocess.CompletedProcess) -> None:
        self.code, self.out, self.err = proc.returncode, proc.stdout, proc.stderr
        assert self.code in DOCUMENTED, (self.code, self.err)
        assert "Traceback" not in self.err and "internal error" not in self.err, self.err
        self.doc = None
        if self.out.strip():
            self.doc = json.loads(self.out)
            validate_document(self.doc)
        else:  # no report: exactly one line saying why
            lines = self.err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("memdiag: "), self.err

    def problems(self, source: str | None = None) -> list[tuple[str, str, str]]:
        return [(p["kind"], p["message"], p["path"]) for p in self.doc["problems"]
                if source is None or p["source"] == source]

    def fired(self) -> set[str]:
        return {f["rule_id"] for f in self.doc["findings"]}


def analyze(path: Path, *extra: str, env: dict | None = None) -> Outcome:
    proc = subprocess.run([sys.executable, "-m", "memdiag", "analyze", str(path), "--format", "json",
                           "--no-sinks", *extra], capture_output=True, text=True, timeout=300, cwd=REPO,
                          env={**os.environ, **(env or {})})
    return Outcome(proc)


def host(tmp_path: Path, files: dict[str, str | bytes], name: str = "host") -> Path:
    return write_tree(tmp_path / name, {"sys/kernel/mm/.keep": "", **files})


def junk(n: int = 4096) -> bytes:
    rng = random.Random(8)
    return bytes(rng.randrange(256) for _ in range(n))


@pytest.fixture(scope="module")
def seed_result(tmp_path_factory):
    return analyze(host(tmp_path_factory.mktemp("seed"), {"proc/meminfo": MEMINFO, "top.txt": TOP}))


def test_the_reference_capture(seed_result):
    assert seed_result.code == 1 and "vmware-balloon" in seed_result.fired()


def test_binary_junk_where_meminfo_should_be(tmp_path):
    r = analyze(host(tmp_path, {"proc/meminfo": junk()}))
    assert r.code == 3 and r.doc["verdict"]["severity"] == "unknown"
    assert ("malformed", "binary data where text was expected", str(tmp_path / "host/proc/meminfo")) \
        in r.problems("meminfo")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_utf16_and_bom_text_reads_like_the_original(tmp_path, encoding, seed_result):
    r = analyze(host(tmp_path, {"proc/meminfo": MEMINFO.encode(encoding), "top.txt": TOP.encode(encoding)}))
    assert r.code == 1 and r.fired() == seed_result.fired()
    assert {k: v for k, v in r.doc["facts"].items() if k.startswith("meminfo.")} == \
        {k: v for k, v in seed_result.doc["facts"].items() if k.startswith("meminfo.")}


def test_utf16_without_a_bom_is_refused_as_binary(tmp_path):
    r = analyze(host(tmp_path, {"proc/meminfo": MEMINFO.encode("utf-16-le")}))
    assert r.code == 3
    assert r.problems("meminfo") == [("malformed", "binary data where text was expected",
                                      str(tmp_path / "host/proc/meminfo"))]


def test_crlf_line_ends_change_nothing(tmp_path, seed_result):
    r = analyze(host(tmp_path, {"proc/meminfo": MEMINFO.replace("\n", "\r\n"), "top.txt": TOP.replace("\n", "\r\n")}))
    assert r.code == 1 and r.fired() == seed_result.fired()
    assert r.doc["facts"]["processes.count"] == seed_result.doc["facts"]["processes.count"]
    assert r.doc["facts"]["accounting.unaccounted_bytes"] == seed_result.doc["facts"]["accounting.unaccounted_bytes"]


def test_a_truncated_meminfo_names_the_cut_line_and_still_diagnoses(tmp_path):
    cut = MEMINFO.index("Active(file):") + len("Active(file):   ")
    r = analyze(host(tmp_path, {"proc/meminfo": MEMINFO[:cut], "top.txt": TOP[:700]}))
    assert r.code in (0, 1, 2)
    assert r.problems("meminfo") == [("malformed", "line 11: not a meminfo line: 'Active(file):   '; field skipped",
                                      str(tmp_path / "host/proc/meminfo"))]
    assert r.doc["facts"]["meminfo.Inactive_anon"] == 717156 * 1024  # the lines before the cut count


def test_wrong_units_are_refused_not_guessed(tmp_path):
    r = analyze(host(tmp_path, {"proc/meminfo": MEMINFO.replace(" kB", " MB")}))
    assert r.code == 3  # nothing usable: no diagnosis rather than one off by 1024
    assert ("malformed", "line 1: MemTotal: unknown unit 'MB'; field skipped",
            str(tmp_path / "host/proc/meminfo")) in r.problems("meminfo")
    assert "meminfo.MemTotal" not in r.doc["facts"]


@pytest.mark.parametrize("change", [("  125256 kB", " -125256 kB"), ("7994080", "9" * 26)], ids=["negative", "absurd"])
def test_negative_or_absurd_sizes_are_refused(tmp_path, change):
    r = analyze(host(tmp_path, {"proc/meminfo": MEMINFO.replace(*change)}))
    assert any(k == "malformed" for k, _, _ in r.problems("meminfo"))
    assert "critical" not in {f["severity"] for f in r.doc["findings"]}


@pytest.mark.parametrize("files", [
    {"notes.bin": junk(), "top.txt": TOP},
    {"meminfo.txt": MEMINFO.encode("utf-16"), "top.txt": TOP.encode("utf-16")},
    {"meminfo.txt": MEMINFO.replace("\n", "\r\n"), "top.txt": TOP.replace("\n", "\r\n")},
    {"meminfo.txt": MEMINFO[:300], "top.txt": TOP[:500]},
    {"meminfo.txt": MEMINFO.replace(" kB", " GB"), "top.txt": TOP},
], ids=["binary", "utf16", "crlf", "truncated", "wrong-units"])
def test_loose_files_of_every_kind(tmp_path, files):
    folder = write_tree(tmp_path / "ticket", files)
    r = analyze(folder)
    assert r.code in (0, 1, 2)
    for _kind, message, path in r.problems("input"):
        assert path.startswith(str(folder)) and message.endswith("skipped")
    if "notes.bin" in files:
        assert ("malformed", "binary data where text was expected; skipped", str(folder / "notes.bin")) in r.problems()


@pytest.mark.parametrize("files", [{}, {"readme.md": "hello\n"}], ids=["empty", "nothing-known"])
def test_no_evidence_at_all_is_one_line_and_exit_3(tmp_path, files):
    folder = tmp_path / "empty"
    folder.mkdir()
    write_tree(folder, files)
    r = analyze(folder)
    assert r.code == 3 and r.doc is None and str(folder) in r.err


def test_a_link_out_of_the_snapshot_is_refused(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("MemTotal: 1 kB\n")
    root = host(tmp_path, {"top.txt": TOP})
    (root / "proc").mkdir()
    os.symlink(secret, root / "proc/meminfo")
    r = analyze(root)
    assert ("malformed", "link leads outside the snapshot", str(root / "proc/meminfo")) in r.problems("meminfo")
    assert r.doc["facts"].get("meminfo.MemTotal") != 1024


def test_a_directory_where_a_file_should_be(tmp_path):
    root = host(tmp_path, {"proc/meminfo/oops": "x", "top.txt": TOP})
    r = analyze(root)
    assert r.code in (0, 1, 2, 3) and r.doc is not None


def test_a_truncated_archive_is_one_clear_line(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(SEED, arcname="case")
    data = buf.getvalue()
    (tmp_path / "case.tar.gz").write_bytes(data[: len(data) // 2])
    r = analyze(tmp_path / "case.tar.gz")
    assert r.code == 3 and r.doc is None and "case.tar.gz" in r.err
    (tmp_path / "junk.tar.gz").write_bytes(gzip.compress(junk()))
    r = analyze(tmp_path / "junk.tar.gz")
    assert r.code == 3 and "junk.tar.gz" in r.err


def test_a_big_pasted_file_fits_in_64_mib(tmp_path):
    """A 15 MB file of prose beside the outputs: split over line offsets, the text held once."""
    folder = write_tree(tmp_path / "ticket", {"meminfo.txt": MEMINFO, "top.txt": TOP})
    with open(folder / "notes.txt", "w") as f:
        while f.tell() < 15_000_000:
            f.write("lorem ipsum dolor sit amet, nothing memdiag knows here\n")
    prlimit = shutil.which("prlimit")
    assert prlimit
    proc = subprocess.run([prlimit, "--as=67108864", "--", sys.executable, "-m", "memdiag", "analyze", str(folder),
                           "--format", "json", "--no-sinks"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 1 and "MemoryError" not in proc.stderr, proc.stderr
