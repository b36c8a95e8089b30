#!/usr/bin/env python3
"""memdiag inside a 64 MiB address-space limit (``prlimit --as``), live and on a huge capture.

    .venv/bin/python bench/bench_lowmem.py [--runs 5] [--processes 100000] [--big-mib 64]

Rows: a live ``memdiag run`` with cold caches (rule packs parsed and validated) and warm ones;
then ``memdiag analyze`` of a generated host tree with --processes /proc/PID/status files and a
slabinfo and vmallocinfo of --big-mib MiB each (four times the largest file memdiag reads whole),
of a folder holding a 15 MB pasted text file, and of a sosreport with a 15 MB dmesg; all built
under /dev/shm when it exists. A source that ran out of memory is named below the table. Each shows wall and CPU time, peak RSS (the child's
ru_maxrss) and the exit code; a MemoryError would show as exit 3.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import SEED, bench_env, memdiag_command, print_machine, run_measured, summarize, table

LIMIT = 64 * 1024 * 1024

STATUS = ("Name:\t{name}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t{pid}\nPid:\t{pid}\nPPid:\t1\n"
          "VmPeak:\t  {peak} kB\nVmSize:\t  {peak} kB\nVmHWM:\t  {rss} kB\nVmRSS:\t  {rss} kB\n"
          "RssAnon:\t  {anon} kB\nRssFile:\t  {file} kB\nRssShmem:\t  0 kB\nVmSwap:\t  0 kB\nThreads:\t1\n")


def build_host(root: Path, processes: int, big: int) -> None:
    (root / "proc").mkdir(parents=True)
    (root / "sys/kernel/mm").mkdir(parents=True)
    # 512 MiB of unreclaimable slab: enough for the slab source to parse slabinfo (it skips the
    # file when meminfo says slab is too small to matter), which is what this row must stream.
    meminfo = (SEED / "meminfo").read_text().replace("Slab:             143220 kB", "Slab:             611008 kB")
    (root / "proc/meminfo").write_text(meminfo.replace("SUnreclaim:        56500 kB", "SUnreclaim:       524288 kB"))
    for pid in range(2, processes + 2):
        d = root / "proc" / str(pid)
        d.mkdir()
        rss = 1000 + pid % 5000
        (d / "status").write_text(STATUS.format(name=f"worker{pid % 97}", pid=pid, rss=rss, anon=rss // 2,
                                                file=rss - rss // 2, peak=rss * 2))
    with open(root / "proc/slabinfo", "w") as f:
        f.write("slabinfo - version: 2.1\n# name <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
                " : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n")
        i = 0
        while f.tell() < big:
            f.write(f"cache_{i:08d}  1000   1000    128   32    1 : tunables    0    0    0 : slabdata     31     31      0\n")
            i += 1
    with open(root / "proc/vmallocinfo", "w") as f:
        i = 0
        while f.tell() < big:
            f.write(f"0xffffc9{i:010x}-0xffffc9{i + 1:010x}    8192 module_alloc+0x1a/0x100 pages=1 vmalloc N0=1\n")
            i += 1


def build_logs(base: Path) -> tuple[Path, Path]:
    """A ticket folder with a 15 MB text file beside two outputs, and a sosreport with a 15 MB dmesg."""
    ticket = base / "ticket"
    ticket.mkdir()
    shutil.copy(SEED / "meminfo", ticket / "meminfo.txt")
    with open(ticket / "notes.txt", "w") as f:
        while f.tell() < 15_000_000:
            f.write("lorem ipsum dolor sit amet, nothing memdiag knows here\n")
    sos = base / "sosreport-big"
    (sos / "proc").mkdir(parents=True)
    (sos / "sos_commands/kernel").mkdir(parents=True)
    shutil.copy(SEED / "meminfo", sos / "proc/meminfo")
    with open(sos / "sos_commands/kernel/dmesg", "w") as f:
        f.write("[    0.412345] Memory: 16314580K/16776692K available (14339K kernel code, 462112K reserved)\n")
        i = 0
        while f.tell() < 15_000_000:
            f.write(f"[{100 + i / 1000:12.6f}] audit: type=1400 apparmor=\"ALLOWED\" operation=\"open\" n={i}\n")
            i += 1
    return ticket, sos


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--processes", type=int, default=100_000)
    ap.add_argument("--big-mib", type=int, default=64)
    ap.add_argument("--memdiag", help="memdiag executable (default: the repository venv's)")
    args = ap.parse_args()

    exe = memdiag_command(args.memdiag)
    prlimit = shutil.which("prlimit")
    if not prlimit:
        sys.exit("bench: prlimit (util-linux) is needed")
    shm = Path("/dev/shm")
    base = Path(tempfile.mkdtemp(prefix="memdiag-lowmem-", dir=shm if shm.is_dir() else None))
    try:
        print_machine()
        limited = [prlimit, f"--as={LIMIT}", "--"]
        rows = []
        cold_env = bench_env(str(base / "cold"))
        cold = run_measured([*limited, exe, "run", "--no-sinks"], cold_env)
        rows.append(("live run, cold caches", 1, cold.wall * 1000, cold.cpu * 1000, cold.maxrss / 1024, cold.code))
        s = summarize("warm", [run_measured([*limited, exe, "run", "--no-sinks"], cold_env) for _ in range(args.runs)])
        rows.append(("live run", s.runs, s.median_ms, s.cpu_ms, s.rss_max_mib, ",".join(map(str, sorted(s.codes)))))

        host = base / "host"
        print(f"building a host tree: {args.processes:,} processes, {args.big_mib} MiB slabinfo and vmallocinfo "
              f"under {host} ...", file=sys.stderr)
        build_host(host, args.processes, args.big_mib << 20)
        argv = [*limited, exe, "analyze", str(host), "--no-sinks", "--format", "json"]
        big = run_measured(argv, cold_env, timeout=600)
        facts = json.loads(subprocess.run(argv, capture_output=True, text=True, env=cold_env).stdout or "{}").get("facts", {})
        rows.append((f"analyze {args.processes:,} processes + 2x{args.big_mib} MiB", 1, big.wall * 1000, big.cpu * 1000,
                     big.maxrss / 1024, big.code))
        ticket, sos = build_logs(base)
        failed = {}
        for label, path in (("analyze a folder with a 15 MB pasted text file", ticket),
                            ("analyze a sosreport with a 15 MB dmesg", sos)):
            argv = [*limited, exe, "analyze", str(path), "--no-sinks", "--format", "json"]
            r = run_measured(argv, cold_env, timeout=600)
            rows.append((label, 1, r.wall * 1000, r.cpu * 1000, r.maxrss / 1024, r.code))
            doc = json.loads(subprocess.run(argv, capture_output=True, text=True, env=cold_env).stdout or "{}")
            failed[label] = [p["source"] for p in doc.get("problems", []) if "MemoryError" in p.get("message", "")]
        print(table(("under prlimit --as=64 MiB", "runs", "wall ms", "CPU ms", "peak RSS MiB", "exit"), rows))
        for label, sources in failed.items():
            if sources:
                print(f"{label}: MemoryError in source(s) {', '.join(sources)} (the run went on without them)")
        print(f"\nread from the big tree: processes.count {facts.get('processes.count')}, "
              f"slab.caches {facts.get('slab.caches')}, vmalloc.areas {facts.get('vmalloc.areas')}")
        ok = all(r[5] in (0, 1, 2) or r[5] in ("0", "1", "2") for r in rows) and \
            facts.get("processes.count") == args.processes
        return 0 if ok else 1
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
