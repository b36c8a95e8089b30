#!/usr/bin/env python3
"""memdiag's process scan against ``ps -eo pid,rss,comm`` on the same host.

    .venv/bin/python bench/bench_ps.py [--counts 100,1000,10000] [--runs 10]

At each process count (sleeping processes added, then removed): ps as the command a user would
run (median wall and CPU of --runs runs), and memdiag's processes source as it runs inside
``memdiag run`` (ProcessesSource.collect over the live host: every /proc/PID/status read, parsed
and summed, with the per-process stall guard). ps reads /proc/PID/stat and status too, so both do
the same work; memdiag's interpreter start-up is not in its figure (it is in bench_run.py's), and
ps's process start (~1 ms) is in ps's. Target: the scan within 1.2x of ps.

"bare reads" is the floor under the scan: the same /proc/PID/status files opened, read and
closed from Python with nothing else done (the kernel producing them is most of it); the scan's
figure less this one is what memdiag's own code costs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from _common import Sleepers, print_machine, process_count, run_measured, table

TARGET = 1.2


def scan(runs: int) -> tuple[float, float, int]:
    """Median wall ms, median CPU ms and the last process count of memdiag's process scan."""
    from memdiag.bounded import Deadline
    from memdiag.evidence import live
    from memdiag.plugins.sources.processes import ProcessesSource
    from memdiag.sources import collect

    src = ProcessesSource()
    walls, cpus, count = [], [], 0
    for i in range(runs + 1):
        t, c = time.perf_counter(), time.process_time()
        out = collect([src], live(), deadline=Deadline(60))
        if i:  # the first run warms the dentry cache, as ps's warm-up does
            walls.append((time.perf_counter() - t) * 1000)
            cpus.append((time.process_time() - c) * 1000)
        count = out.get("processes.count")
    return statistics.median(walls), statistics.median(cpus), count


def bare_reads(runs: int) -> float:
    """Median wall ms of opening, reading and closing every /proc/PID/status, nothing more."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
    walls = []
    for i in range(runs + 1):
        t = time.perf_counter()
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                fd = os.open(f"/proc/{pid}/status", flags)
            except OSError:
                continue  # exited
            try:
                os.read(fd, 65537)
            except OSError:
                pass
            finally:
                os.close(fd)
        if i:
            walls.append((time.perf_counter() - t) * 1000)
    return statistics.median(walls)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", default="100,1000,10000")
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()

    print_machine()
    ps = ["ps", "-eo", "pid,rss,comm"]
    rows, ok, missed = [], True, []
    for want in (int(c) for c in args.counts.split(",")):
        with Sleepers(max(0, want - process_count())):
            have = process_count()
            run_measured(ps)
            samples = [run_measured(ps) for _ in range(args.runs)]
            ps_wall = statistics.median(s.wall * 1000 for s in samples)
            ps_cpu = statistics.median(s.cpu * 1000 for s in samples)
            ps_rows = len(subprocess.run(ps, capture_output=True, text=True).stdout.splitlines()) - 1
            wall, cpu, count = scan(args.runs)
            floor = bare_reads(args.runs)
            ratio = wall / ps_wall
            ok = ok and ratio <= TARGET
            missed += [] if ratio <= TARGET else [f"{want} ({ratio:.2f}x)"]
            rows.append((want, have, ps_wall, ps_cpu, wall, cpu, floor, f"{ratio:.2f}x", f"{ps_rows} / {count}"))
    print(table(("processes", "measured at", "ps ms", "ps CPU ms", "memdiag scan ms", "scan CPU ms",
                 "bare reads ms", "scan/ps", "rows ps / memdiag"), rows))
    print(f"\ntarget: the scan within {TARGET}x of ps (wall): "
          + ("met at every size" if ok else "MISSED at " + ", ".join(missed) + " processes"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
