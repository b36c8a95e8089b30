#!/usr/bin/env python3
"""Batch throughput: 1,000 captures diagnosed by one process with the rules loaded once.

    .venv/bin/python bench/bench_batch.py [--n 1000] [--template PATH] [--workers 1,2] [--one-cpu]
                                          [--archives] [--format1] [--profile N]

The template is a ``memdiag collect`` capture of this host unless --template names a capture
folder or archive; the founding case's loose folder (meminfo + top) is measured too. Each of
the N copies gets its own host name and its own meminfo (numbers varied, so no two diagnoses
are alike); unchanged files are hard links, under /dev/shm when it exists.

What is timed, per capture: what ``memdiag analyze`` does for each input (pipeline.diagnose_source:
recognise the format, replay the capture's listings, run every source, evaluate every rule,
build the findings document) and serialising the document to JSON. Not timed: loading plugins
and rules (once per batch, as a batch tool would). captures/s/core = captures / CPU seconds of
the process(es) (user + system, all threads), so a busy host does not flatter or hurt the
figure; wall-clock throughput is shown beside it. With --workers K, K forked processes share
the list. --one-cpu adds a row for one process pinned to one CPU (with its threads): the batch
given exactly one core. Unpinned, a single process's sources over a folder run in a worker
thread (a folder's reads may block) that Linux starts on the idle second CPU, and waking it for
every capture costs CPU time of its own; an archive's are read from memory, in the process's
own thread. Target: >= 200 captures per second per core.

--format1 also measures the capture as memdiag wrote it before capture format 2 (each memory
block's state a file of its own; with --archives, archived as before too: a member per folder,
pax headers). --profile N diagnoses N captures once more, in one process, and prints where one
capture's CPU goes: each stage (process CPU, all threads) and cProfile's busiest functions
(every thread profiled on its own, in thread CPU time: the sources run in worker threads).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

from _common import SEED, memdiag_command, print_machine, table

TARGET = 200.0
_NUM = re.compile(r"^(\w[\w()]*:\s+)(\d+)( kB)$", re.M)


def workdir() -> Path:
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    return Path(tempfile.mkdtemp(prefix="memdiag-batch-", dir=base))


def template_capture(into: Path, explicit: str | None) -> Path:
    """A capture folder: --template (folder, or archive unpacked), else a fresh collect of this host."""
    if explicit and Path(explicit).is_dir():
        return Path(explicit)
    archive = Path(explicit) if explicit else into / "template.tar.gz"
    if not explicit:
        subprocess.run([memdiag_command(None), "collect", "-o", str(archive)], check=True, capture_output=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "template", filter="data")
    return next((into / "template").iterdir())


def vary_meminfo(text: str, rng: random.Random) -> str:
    """Every kB figure moved by up to ±30% (MemTotal kept): plausible, and different per copy."""
    def move(m: re.Match) -> str:
        if m.group(1).startswith("MemTotal"):
            return m.group(0)
        return f"{m.group(1)}{int(int(m.group(2)) * rng.uniform(0.7, 1.3))}{m.group(3)}"

    return _NUM.sub(move, text)


def make_copies(template: Path, dest: Path, n: int, meminfo_rel: str) -> list[Path]:
    """n copies of ``template``: hard links, but their own meminfo and capture metadata."""
    copies = []
    local = dest / f"{template.name}-template"  # hard links only work within one file system
    shutil.copytree(template, local, symlinks=True)
    template = local
    base_meminfo = (template / meminfo_rel).read_text()
    meta_path = template / "memdiag-capture.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else None
    for i in range(n):
        copy = dest / f"{template.name.removesuffix('-template')}-{i:04d}"
        for dirpath, dirnames, filenames in os.walk(template):
            rel = os.path.relpath(dirpath, template)
            os.makedirs(copy / rel, exist_ok=True)
            for f in filenames:
                src = Path(dirpath) / f
                if os.path.normpath(os.path.join(rel, f)) in (meminfo_rel, "memdiag-capture.json"):
                    continue
                if src.is_symlink():
                    os.symlink(os.readlink(src), copy / rel / f)
                else:
                    os.link(src, copy / rel / f)
        (copy / meminfo_rel).write_text(vary_meminfo(base_meminfo, random.Random(i)))
        if meta is not None:
            (copy / "memdiag-capture.json").write_text(json.dumps({**meta, "host": f"host{i:04d}"}))
        copies.append(copy)
    return copies


def unpack_format2(template: Path, into: Path) -> Path | None:
    """The capture ``template`` as format 1: every packed file written out as a file of its own
    (how captures held memory-block states before format 2); None when nothing was packed."""
    meta = json.loads((template / "memdiag-capture.json").read_text())
    if not meta.get("packed"):
        return None
    copy = into / template.name
    shutil.copytree(template, copy, symlinks=True)
    for rel, text in meta.pop("packed").items():
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        (copy / rel).write_text(text)
        meta["files"].append({"path": rel, "size": len(text)})
    meta["version"] = 1
    (copy / "memdiag-capture.json").write_text(json.dumps(meta, indent=1))
    return copy


def archive_copies(folders: list[Path], dest: Path) -> list[Path]:
    """Each folder as the archive ``memdiag collect`` writes (its own member writer: files only,
    ustar headers where names fit)."""
    from memdiag.plugins.collect import add_members

    out = []
    for folder in folders:
        path = dest / (folder.name + ".tar.gz")
        members = []
        for dirpath, _, filenames in os.walk(folder):
            for f in sorted(filenames):
                src = Path(dirpath) / f
                members.append((f"{folder.name}/{src.relative_to(folder)}", src.read_bytes()))
        members.sort(key=lambda m: (not m[0].endswith("/memdiag-capture.json"), m[0]))  # metadata first
        with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
            add_members(tar, members, int(time.time()))
        out.append(path)
    return out


def _as_format1_writes(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Members as ``memdiag collect`` wrote them before format 2: whole-second times, no owners
    (a float mtime would make tarfile add a pax header to every member)."""
    info.mtime = int(info.mtime)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def archive_copies_format1(folders: list[Path], dest: Path) -> list[Path]:
    """Each folder archived as captures were before format 2: a member per folder, pax headers."""
    out = []
    for folder in folders:
        path = dest / (folder.name + ".tar.gz")
        with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
            tar.add(folder, arcname=folder.name, filter=_as_format1_writes)
        out.append(path)
    return out


def diagnose_all(paths: list[str]) -> tuple[int, dict[int, int]]:
    """Diagnose each input in this process; (inputs done, count per exit code)."""
    from memdiag import pipeline
    from memdiag.document import exit_code

    reg, rules = _LOADED
    codes: dict[int, int] = {}
    for path in paths:  # as `memdiag analyze` diagnoses each input (a work folder only if needed)
        diag = pipeline.diagnose_source(path, registry=reg, rules=rules, timeout=60)
        json.dumps(diag.document)
        code = exit_code(diag.document)
        codes[code] = codes.get(code, 0) + 1
    return len(paths), codes


_LOADED: tuple = ()


def profile(paths: list[str], top: int = 25) -> None:
    """Where one capture's CPU goes: stage by stage, then function by function."""
    import _thread
    import cProfile
    import pstats

    from memdiag import bounded, document, engine, pipeline, sources
    from memdiag.bounded import Deadline

    reg, rules = _LOADED
    stages = dict.fromkeys(("open the input", "sources", "rules", "document", "JSON"), 0.0)

    def one(path: str) -> None:
        clock = time.process_time  # all threads: the sources run in workers
        with tempfile.TemporaryDirectory(prefix="memdiag-") as wd:
            t0 = clock()
            ev = pipeline.open_input(path, reg, lambda: wd)  # the work folder made ahead, untimed
            t1 = clock()
            facts = sources.collect(reg.sources, ev, deadline=Deadline(60), catalog=reg.catalog)
            t2 = clock()
            host, now = document.host_of(facts, ev), document.rfc3339()
            results = engine.run(rules, facts, host=host, now=now)
            t3 = clock()
            doc = document.build(ev, facts, results, host=host, now=now)
            t4 = clock()
            json.dumps(doc)
            t5 = clock()
        for name, spent in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            stages[name] += spent

    for path in paths:  # the stages, unprofiled (the profiler costs more than what it measures)
        one(path)
    total = sum(stages.values())
    print(f"\nwhere one capture's CPU goes ({len(paths)} captures, process CPU, all threads):")
    print(table(("stage", "ms each", "share"), [(k, v * 1000 / len(paths), f"{v / total:.0%}")
                                                for k, v in stages.items()] +
                [("total", total * 1000 / len(paths), "")]))
    profiles: list[cProfile.Profile] = []

    def profiled(run):  # the bounded worker's body, profiled in its own thread and CPU time
        def body() -> None:
            prof = cProfile.Profile(time.thread_time)
            profiles.append(prof)
            prof.enable()
            try:
                run()
            finally:
                prof.disable()
        return body

    # bounded's worker is started with _thread (threading.setprofile never sees it)
    start = bounded._Worker.start
    bounded._Worker.start = lambda self: _thread.start_new_thread(profiled(self.run), ())
    main = cProfile.Profile(time.thread_time)
    main.enable()
    try:
        for path in paths:
            one(path)
    finally:
        main.disable()
        bounded._Worker.start = start
    stats = pstats.Stats(main)
    for prof in profiles:  # their threads have ended
        stats.add(prof)
    print(f"\ncProfile, every thread in its own CPU time (profiled: slower than above), "
          f"{len(paths)} captures, by own time:")
    stats.sort_stats("tottime").print_stats(top)


def load_once() -> None:
    global _LOADED
    from memdiag import pipeline, registry

    reg = registry.load(autoload=False)
    _LOADED = (reg, pipeline.load_rules(reg))
    gc.freeze()  # as `memdiag analyze` of several inputs does once its rules are loaded


def one_cpu() -> int:
    return min(os.sched_getaffinity(0))


def measure(paths: list[Path], workers: int, pinned: bool = False) -> tuple[float, float, dict[int, int]]:
    """(wall seconds, CPU seconds of every process involved, exit codes) for the batch;
    ``pinned``: one forked process, it and its threads on one CPU."""
    items = [str(p) for p in paths]
    start_self = resource.getrusage(resource.RUSAGE_SELF)
    start_kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    codes: dict[int, int] = {}
    if pinned:
        with get_context("fork").Pool(1, initializer=os.sched_setaffinity, initargs=(0, {one_cpu()})) as pool:
            _, codes = pool.apply(diagnose_all, (items,))
    elif workers == 1:
        _, codes = diagnose_all(items)
    else:
        chunks = [items[i::workers] for i in range(workers)]
        with get_context("fork").Pool(workers) as pool:  # forked after load_once(): rules shared
            for _, part in pool.map(diagnose_all, chunks):
                for k, v in part.items():
                    codes[k] = codes.get(k, 0) + v
    wall = time.perf_counter() - t
    end_self = resource.getrusage(resource.RUSAGE_SELF)
    end_kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(getattr(e, f) - getattr(s, f) for s, e in ((start_self, end_self), (start_kids, end_kids))
              for f in ("ru_utime", "ru_stime"))
    return wall, cpu, codes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--template", help="a capture folder or archive (default: memdiag collect of this host)")
    ap.add_argument("--workers", default="1", help="comma-separated process counts, e.g. 1,2")
    ap.add_argument("--one-cpu", action="store_true", help="also measure one process pinned to one CPU")
    ap.add_argument("--archives", action="store_true", help="also measure the captures as .tar.gz archives")
    ap.add_argument("--format1", action="store_true",
                    help="also measure the capture as format 1 (one file per memory-block state)")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="then profile N captures: CPU per stage and the busiest functions")
    ap.add_argument("--keep", action="store_true", help="keep the generated captures")
    args = ap.parse_args()

    work = workdir()
    try:
        template = template_capture(work, args.template)
        files = sum(len(f) for _, _, f in os.walk(template))
        print_machine()
        print(f"template: {template.name} ({files} files); {args.n} copies each under {work}\n")
        meta = json.loads((template / "memdiag-capture.json").read_text())
        packed = len(meta.get("packed") or ())
        shape = f"{files} files" + (f" + {packed} packed" if packed else "")
        sets = [(f"memdiag capture ({shape})", make_copies(template, work / "captures", args.n, "proc/meminfo")),
                ("founding case (2 loose files)", make_copies(SEED, work / "seed", args.n, "meminfo"))]
        if args.archives:
            sets.append((f"capture .tar.gz ({shape})", archive_copies(sets[0][1], work)))
        old = unpack_format2(template, work / "format1") if args.format1 else None
        if old is not None:
            old_files = sum(len(f) for _, _, f in os.walk(old))
            sets.append((f"format 1 capture ({old_files} files)", make_copies(old, work / "format1", args.n,
                                                                          "proc/meminfo")))
            if args.archives:
                (work / "format1-archives").mkdir()
                sets.append((f"format 1 .tar.gz ({old_files} files)",
                             archive_copies_format1(sets[-1][1], work / "format1-archives")))
        load_once()
        diagnose_all([str(sets[0][1][0]), str(sets[1][1][0])])  # warm caches and imports
        rows, worst = [], None
        for label, paths in sets:
            runs = [(int(w), False) for w in args.workers.split(",")] + ([(1, True)] if args.one_cpu else [])
            for k, pinned in runs:
                wall, cpu, codes = measure(paths, k, pinned)
                per_core = len(paths) / cpu
                rows.append((label, f"1 on CPU {one_cpu()}" if pinned else str(k), len(paths), wall, len(paths) / wall,
                             cpu * 1000 / len(paths), per_core,
                             " ".join(f"{c}:{n}" for c, n in sorted(codes.items()))))
                worst = per_core if worst is None else min(worst, per_core)
        print(table(("captures", "processes", "n", "wall s", "captures/s", "CPU ms each", "captures/s/core",
                     "exit codes"), rows))
        print(f"\ntarget >= {TARGET:.0f} captures/s/core: " +
              "; ".join(f"{r[0]}, processes {r[1]}: {'met' if r[6] >= TARGET else 'MISSED'} ({r[6]:.0f})" for r in rows))
        if args.profile > 0:
            profile([str(p) for p in sets[0][1][:args.profile]])
        return 0 if worst is not None and worst >= TARGET else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
