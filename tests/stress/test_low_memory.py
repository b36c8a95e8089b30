"""Low memory: memdiag runs inside a 64 MiB address-space limit (``prlimit --as``), and no source
reads an unbounded file whole: slabinfo and vmallocinfo far past the 16 MiB whole-file limit are
streamed, and the process scan keeps running totals, not rows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from testkit import validate_document

from .helpers import REPO, SEED_MEMINFO, status_text, write_tree

LIMIT = 64 * 1024 * 1024
SLABINFO_HEAD = ("slabinfo - version: 2.1\n# name            <active_objs> <num_objs> <objsize> <objperslab> "
                 "<pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> "
                 "<num_slabs> <sharedavail>\n")


def run_limited(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, int]:
    """``memdiag ARGS`` under a 64 MiB address-space limit; the result and its peak RSS (KiB)."""
    prlimit = shutil.which("prlimit")
    assert prlimit, "prlimit (util-linux) is needed"
    argv = [prlimit, f"--as={LIMIT}", "--", sys.executable, "-m", "memdiag", *args, "--format", "json", "--no-sinks"]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, text=True, env=env, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)  # prlimit execs memdiag: same process, its rusage
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(argv, proc.returncode, out.read(), err.read()), usage.ru_maxrss


@pytest.fixture
def env(tmp_path):
    return {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_STATE_HOME": str(tmp_path / "state")}


def test_a_live_run_fits_in_64_mib_cold_and_warm(env, record_property):
    # cold: rule packs parsed with yaml and validated with jsonschema, caches written
    for phase in ("cold", "warm"):
        proc, peak = run_limited(["run"], env)
        assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr, proc.stderr
        assert proc.returncode in (0, 1, 2), proc.stderr
        doc = json.loads(proc.stdout)
        validate_document(doc)
        assert doc["facts"]["meminfo.MemTotal"] > 0 and doc["facts"]["processes.count"] > 0
        record_property(f"peak_rss_kib_{phase}", peak)
        print(f"live run under prlimit --as={LIMIT} ({phase}): peak RSS {peak / 1024:.1f} MiB")


def test_huge_slabinfo_and_vmallocinfo_are_streamed_not_read_whole(tmp_path, env):
    # 512 MiB of unreclaimable slab: enough for /proc/slabinfo to be worth reading
    meminfo = SEED_MEMINFO.replace("Slab:             143220 kB", "Slab:             611008 kB") \
        .replace("SUnreclaim:        56500 kB", "SUnreclaim:       524288 kB")
    assert meminfo != SEED_MEMINFO
    root = write_tree(tmp_path / "host", {"proc/meminfo": meminfo, "sys/kernel/mm/.keep": ""})
    size = 24 * 1024 * 1024  # past the 16 MiB whole-file limit: reading it whole would be refused
    with open(root / "proc/slabinfo", "w") as f:
        f.write(SLABINFO_HEAD)
        i = 0
        while f.tell() < size:
            f.write(f"cache_{i:07d}  1000   1000    128   32    1 : tunables    0    0    0 : "
                    f"slabdata     31     31      0\n")
            i += 1
    caches = i
    with open(root / "proc/vmallocinfo", "w") as f:
        i = 0
        while f.tell() < size:
            f.write(f"0xffffc90000{i:08x}-0xffffc90000{i + 1:08x}    8192 module_alloc+0x1a/0x100 pages=1 vmalloc N0=1\n")
            i += 1
    areas = i
    proc, _ = run_limited(["analyze", str(root)], env)
    assert "Traceback" not in proc.stderr and proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert not [p for p in doc["problems"] if p["source"] in ("slab", "vmalloc")], doc["problems"]
    assert doc["facts"]["slab.caches"] == caches
    assert doc["facts"]["slab.total_bytes"] == caches * 31 * 4096
    assert doc["facts"]["vmalloc.areas"] == areas


def test_ten_thousand_captured_processes_fit(tmp_path, env):
    files: dict[str, str | bytes] = {"proc/meminfo": SEED_MEMINFO, "sys/kernel/mm/.keep": ""}
    for pid in range(2, 10002):
        files[f"proc/{pid}/status"] = status_text(pid, f"worker{pid % 50}", 1000 + pid % 3000)
    root = write_tree(tmp_path / "host", files)
    proc, _ = run_limited(["analyze", str(root)], env)
    assert "Traceback" not in proc.stderr and proc.returncode == 1, proc.stderr
    facts = json.loads(proc.stdout)["facts"]
    assert facts["processes.count"] == 10000
    assert facts["processes.rss_total"] == sum(1000 + pid % 3000 for pid in range(2, 10002)) * 1024
    assert len(facts["processes.names"]) == 50 and len(facts["processes.top"]) == 10


def test_the_limit_is_real(env):
    """The harness would prove nothing if the limit were not enforced: 64 MiB cannot hold 100 MB."""
    proc = subprocess.run([shutil.which("prlimit") or "prlimit", f"--as={LIMIT}", "--", sys.executable, "-c",
                           "b = bytearray(100 * 1024 * 1024)"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "MemoryError" in proc.stderr
    assert Path(REPO).is_dir()


def _big_dmesg_sosreport(tmp_path) -> Path:
    """A sosreport whose dmesg is 15 MB (a chatty host's ring buffer), boot lines at its head."""
    root = write_tree(tmp_path / "sosreport-big", {
        "proc/meminfo": SEED_MEMINFO,
        "sos_commands/kernel/uname_-a": "Linux big 5.14.0-70.el9.x86_64 #1 SMP x86_64 GNU/Linux\n",
    })
    with open(root / "sos_commands/kernel/dmesg", "w") as f:
        f.write("[    0.000000] Reserving 256MB of memory at 1024MB for crashkernel (System RAM: 16383MB)\n"
                "[    0.412345] Memory: 16314580K/16776692K available (14339K kernel code, 2339K rwdata, "
                "462112K reserved, 0K cma-reserved)\n")
        i = 0
        while f.tell() < 15_000_000:
            f.write(f"[{100 + i / 1000:12.6f}] audit: type=1400 apparmor=\"ALLOWED\" operation=\"open\" n={i}\n")
            i += 1
    return root


def test_a_15_mb_captured_dmesg_is_searched_not_held(tmp_path, env):
    """The ram source finds the boot lines of a 15 MB captured dmesg inside 64 MiB: it streams
    the log (Evidence.command_lines) and stops at the lines it needs."""
    proc, peak = run_limited(["analyze", str(_big_dmesg_sosreport(tmp_path))], env)
    assert "Traceback" not in proc.stderr and proc.returncode in (0, 1, 2), proc.stderr
    doc = json.loads(proc.stdout)
    assert not [p for p in doc["problems"] if p["source"] == "ram"], doc["problems"]
    facts = doc["facts"]
    assert facts["ram.boot_total_bytes"] == 16776692 * 1024
    assert facts["ram.boot_reserved_bytes"] == 462112 * 1024
    assert facts["ram.crashkernel_bytes"] == 256 * 1024 * 1024
    print(f"15 MB dmesg under prlimit --as={LIMIT}: peak RSS {peak / 1024:.1f} MiB")


def test_no_source_runs_out_of_memory_on_a_15_mb_dmesg(tmp_path, env):
    proc, _ = run_limited(["analyze", str(_big_dmesg_sosreport(tmp_path))], env)
    assert "Traceback" not in proc.stderr and proc.returncode in (0, 1, 2), proc.stderr
    failed = [p for p in json.loads(proc.stdout)["problems"] if "MemoryError" in p["message"]]
    assert not failed, failed
