"""A real sosreport of the machine the tests run on gives the facts a live run gives.

Needs Debian's sosreport package (scripts/apt-packages.txt) and root (sos refuses otherwise).
Without them the test is skipped on a workstation and fails in CI.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

import pytest

from memdiag import pipeline, registry
from memdiag.bounded import Deadline
from memdiag.evidence import live
from memdiag.facts import UNKNOWN
from memdiag.sources import collect

#: sos plugins holding what memdiag reads (meminfo/vmstat/slabinfo: memory; modules, uname,
#: dmesg: kernel; ps: process; hostname: host; the time: date). Keeps the run to seconds.
SOS_PLUGINS = "memory,kernel,process,host,date"


def _need(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def sos_archive(tmp_path_factory):
    sos = shutil.which("sos")
    if sos is None:
        _need("sos (Debian package sosreport) is not installed")
    if os.geteuid() != 0:
        _need("sos report must run as root")
    out = tmp_path_factory.mktemp("sos")
    run = subprocess.run([sos, "report", "--batch", "--tmp-dir", str(out), "-o", SOS_PLUGINS],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    found = [p for p in glob.glob(str(out / "sosreport-*.tar.*")) if not p.endswith((".md5", ".sha256"))]
    assert len(found) == 1, os.listdir(out)
    return found[0]


def test_real_sosreport_matches_live(sos_archive, tmp_path):
    reg = registry.load(autoload=False)
    ev = pipeline.open_input(sos_archive, reg, str(tmp_path))
    offline = collect(reg.sources, ev, deadline=Deadline(60))
    now = collect(reg.sources, live(), deadline=Deadline(60))
    assert ev.kind == "sosreport"
    assert ev.host == os.uname().nodename
    assert ev.captured_at is not None
    # fixed for the life of the boot: exactly equal
    for name in ("meminfo.MemTotal", "meminfo.SwapTotal", "meminfo.Hugepagesize", "meminfo.HugePages_Total",
                 "modules.loaded", "modules.balloon", "platform.hostname"):
        assert offline.get(name) == now.get(name), name
    assert offline.get("meminfo.MemTotal") is not UNKNOWN
    top = os.path.basename(sos_archive).split(".tar")[0]  # sos names its folder as its archive
    assert offline.origin("meminfo.MemTotal") == f"{sos_archive}:{top}/proc/meminfo"
    # the same fields, and values that moved only as much as a few seconds allow
    names = {n for n in now.facts if n.startswith("meminfo.")}
    assert {n for n in offline.facts if n.startswith("meminfo.")} == names
    total = now.get("meminfo.MemTotal")
    slack = 64 * 1024**2 + total // 20
    for name in ("meminfo.MemFree", "meminfo.MemAvailable", "meminfo.Cached", "meminfo.Slab",
                 "meminfo.AnonPages", "accounting.used_bytes", "accounting.unaccounted_bytes"):
        a, b = offline.get(name), now.get(name)
        if a is UNKNOWN and b is UNKNOWN:
            continue
        assert abs(a - b) <= slack, (name, a, b)
    assert offline.get("processes.count") > 0
