#!/usr/bin/env python3
"""A live ``memdiag run`` on a host with 100, 1,000 and 10,000 processes.

    .venv/bin/python bench/bench_scale.py [--counts 100,1000,10000] [--runs 5]

Sleeping processes (/bin/sleep) are added until the host has the wanted number, the run is timed
as a whole process (median wall and CPU, peak RSS, after one warm-up), then the sleepers are
killed. A second table shows where the time goes at each size: each source's own time, in this
process, over the live host. Target: under 100 ms and 35 MB at 1,000 processes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from _common import (Sleepers, bench_env, memdiag_command, print_machine, process_count, run_measured,
                     summarize, table)

TARGET_MS, TARGET_MIB, TARGET_AT = 100.0, 35.0, 1000


def source_times(rounds: int = 3) -> dict[str, float]:
    """Median ms per source over the live host, run one after another in this process."""
    from memdiag import registry, sources
    from memdiag.evidence import live
    from memdiag.facts import FactSet

    reg = registry.load(autoload=False)
    srcs = sources.order(reg.sources)
    runs: dict[str, list[float]] = {s.name: [] for s in srcs}
    for _ in range(rounds):
        out = FactSet(sources.build_catalog(srcs))
        ev = live()
        for src in srcs:
            t = time.perf_counter()
            try:
                src.collect(ev, out)
            except Exception:  # noqa: BLE001 - a failing source costs what it cost
                pass
            runs[src.name].append((time.perf_counter() - t) * 1000)
    return {name: sorted(v)[len(v) // 2] for name, v in runs.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", default="100,1000,10000", help="process counts to measure at")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--memdiag", help="memdiag executable (default: the repository venv's)")
    ap.add_argument("--top", type=int, default=5, help="sources shown per size")
    args = ap.parse_args()

    exe = memdiag_command(args.memdiag)
    env = bench_env(tempfile.mkdtemp(prefix="memdiag-bench-"))
    print_machine()
    base = process_count()
    print(f"{base} processes before the bench; {args.runs} runs per size after one warm-up\n")
    rows, breakdown, ok = [], [], True
    for want in (int(c) for c in args.counts.split(",")):
        with Sleepers(max(0, want - process_count())):
            have = process_count()
            argv = [exe, "run", "--no-sinks"]
            run_measured(argv, env)
            s = summarize(f"{have}", [run_measured(argv, env) for _ in range(args.runs)])
            rows.append((want, have, s.median_ms, s.min_ms, s.cpu_ms, s.rss_mib, ",".join(map(str, sorted(s.codes)))))
            per = source_times()
            top = sorted(per.items(), key=lambda kv: -kv[1])[: args.top]
            breakdown.append((want, sum(per.values()), ", ".join(f"{n} {ms:.1f}" for n, ms in top)))
            if want == TARGET_AT:
                ok = s.median_ms < TARGET_MS and s.rss_mib < TARGET_MIB
                verdict = (f"target at {TARGET_AT} processes: < {TARGET_MS:.0f} ms "
                           f"{'met' if s.median_ms < TARGET_MS else 'MISSED'} ({s.median_ms:.0f} ms), "
                           f"< {TARGET_MIB:.0f} MB {'met' if s.rss_mib < TARGET_MIB else 'MISSED'} "
                           f"({s.rss_mib:.1f} MiB)")
    print(table(("processes", "measured at", "median ms", "min ms", "CPU ms", "peak RSS MiB", "exit"), rows))
    print()
    print(table(("processes", "all sources ms", "costliest sources (ms, in-process)"), breakdown))
    if any(r[0] == TARGET_AT for r in rows):
        print("\n" + verdict)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
