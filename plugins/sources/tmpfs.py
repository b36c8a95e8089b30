"""tmpfs and deleted - shared memory held by files.

Files on tmpfs (/dev/shm, /run, /tmp on many distributions) live in RAM and are counted in
Shmem, inside Cached, yet they cannot be dropped like page cache. Their usage comes from
statvfs() of each tmpfs mount listed in mountinfo (live), or from a captured ``df`` (snapshots).
Mounts in other mount namespaces (containers) are not seen from here.

A file deleted while a process still holds it open keeps its pages until the last descriptor is
closed; on tmpfs (and for memfd) that is Shmem nobody can see in ``du``. Finding them means
reading every process's fd table, which only makes sense live, and is bounded.
"""

from __future__ import annotations

import os

from memdiag.evidence import Evidence
from memdiag.facts import FactSet
from memdiag.hookspecs import hookimpl
from memdiag.sources import Source, spec
from memdiag.units import UnitError, parse_size

from memdiag.plugins.sources._readers import fd_table, live_path, mounts, quiet_text

MAX_MOUNTS = 5000
TOP = 10

TMPFS_FACTS = (
    spec("tmpfs.mounts", "table",
         "Each tmpfs mount (bind mounts of the same filesystem once): mountpoint, size_bytes (its "
         "size= limit), used_bytes, used_ratio."),
    spec("tmpfs.used_bytes", "bytes",
         "Bytes stored in all tmpfs mounts seen: RAM (or swap) held as Shmem, which page-cache "
         "reclaim cannot drop."),
    spec("tmpfs.size_bytes", "bytes", "Sum of the size limits of those tmpfs mounts."),
    spec("tmpfs.largest_mount", "str", "The tmpfs mount holding the most data."),
    spec("tmpfs.largest_used_bytes", "bytes", "Bytes stored in that mount."),
    spec("tmpfs.dev_shm_used_bytes", "bytes", "Bytes stored in /dev/shm (POSIX shared memory)."),
)

DELETED_FACTS = (
    spec("deleted.files", "count",
         "Deleted files still held open by a process (live scan of /proc/*/fd; memfd included).",
         unit="files"),
    spec("deleted.bytes", "bytes", "Space those files still occupy (allocated blocks)."),
    spec("deleted.shmem_bytes", "bytes",
         "Of deleted.bytes, files on tmpfs or memfd: Shmem that stays in RAM until the process "
         "closes them or exits."),
    spec("deleted.top", "table", f"The {TOP} largest: pid, process, path, bytes, shmem (bool)."),
    spec("deleted.complete", "bool", "Every process's fd table was read (no permission gaps, no bound hit)."),
)



class TmpfsSource(Source):
    name = "tmpfs"
    evidence_only = True
    facts = TMPFS_FACTS

    def collect(self, ev: Evidence, out: FactSet) -> None:
        table, found_in = mounts(ev)
        tmpfs = [m for m in table if m["fstype"] == "tmpfs"][:MAX_MOUNTS]
        rows: list[dict] = []
        origin = found_in or ""
        if ev.live and tmpfs:
            seen: set[str] = set()
            for m in reversed(tmpfs):  # the last mount on a path hides the earlier ones
                if m["dev"] in seen or m["mountpoint"] in seen:
                    continue
                seen.update((m["dev"], m["mountpoint"]))
                try:
                    st = os.statvfs(live_path(ev, m["mountpoint"].lstrip("/")))
                except OSError:
                    continue  # unmounted meanwhile, or hidden by another mount
                size, free = st.f_blocks * st.f_frsize, st.f_bfree * st.f_frsize
                rows.append(_row(m["mountpoint"], size, size - free))
        else:
            captured = ev.command("df")
            if captured is not None:
                rows = parse_df(captured.text)
                origin = captured.origin
            elif tmpfs:
                out.problem(self.name, "tmpfs usage needs statvfs on the live host or a captured "
                            "`df`; none in this input, skipped", origin, "unreadable")
        if not rows and not (ev.live and tmpfs):
            return
        out.set("tmpfs.mounts", rows, origin)
        out.set("tmpfs.used_bytes", sum(r["used_bytes"] for r in rows), origin)
        out.set("tmpfs.size_bytes", sum(r["size_bytes"] for r in rows), origin)
        if rows:
            big = max(rows, key=lambda r: r["used_bytes"])
            out.set("tmpfs.largest_mount", big["mountpoint"], origin)
            out.set("tmpfs.largest_used_bytes", big["used_bytes"], origin)
        shm = [r for r in rows if r["mountpoint"] == "/dev/shm"]
        if shm:
            out.set("tmpfs.dev_shm_used_bytes", shm[0]["used_bytes"], origin)


def _row(mountpoint: str, size: int, used: int) -> dict:
    return {"mountpoint": mountpoint, "size_bytes": size, "used_bytes": used,
            "used_ratio": used / size if size else None}


def parse_df(raw: str) -> list[dict]:
    """tmpfs rows of ``df``, ``df -k``, ``df -h`` or ``df -T`` output (procps/coreutils layout)."""
    lines = raw.splitlines()
    header = next((l for l in lines if l.startswith("Filesystem")), None)
    if header is None:
        return []
    typed = " Type " in header
    unit = "" if "Size" in header.split() else ("M" if "1M-blocks" in header else "K")
    rows, seen = [], set()
    for line in lines:
        parts = line.split()
        if len(parts) < (7 if typed else 6) or parts[0] == "Filesystem":
            continue
        fstype = parts[1] if typed else parts[0]
        if fstype not in ("tmpfs", "shm"):
            continue
        nums = parts[2:4] if typed else parts[1:3]
        mountpoint = " ".join(parts[(6 if typed else 5):])
        try:
            size, used = (parse_size(n, unit) for n in nums)
        except UnitError:
            continue
        if mountpoint not in seen:
            seen.add(mountpoint)
            rows.append(_row(mountpoint, size, used))
    return rows


#: Below this much Shmem no deleted file can pin much of it, so every process's descriptors
#: (the costliest walk of a run on a busy host) are not read.
SCAN_FROM_SHMEM = 256 * 1024 * 1024


class DeletedSource(Source):
    name = "deleted"
    evidence_only = True
    after = ("meminfo",)
    facts = DELETED_FACTS

    def collect(self, ev: Evidence, out: FactSet) -> None:
        if not ev.live:
            return  # needs readlink/stat of live descriptors
        shmem = out.get("meminfo.Shmem")
        if isinstance(shmem, int) and shmem < SCAN_FROM_SHMEM:
            return
        tmpfs_devs = {m["dev"] for m in mounts(ev)[0] if m["fstype"] == "tmpfs"}
        table = fd_table(ev)
        seen: set[tuple[int, int]] = set()
        files: list[dict] = []
        for pid, fd, target in table.links:
            if not target.endswith(" (deleted)"):
                continue
            try:
                st = os.stat(live_path(ev, f"proc/{pid}/fd/{fd}"))
            except OSError:
                continue  # closed or exited meanwhile
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
            shmem = target.startswith("/memfd:") or dev in tmpfs_devs
            files.append({"pid": int(pid), "path": target[: -len(" (deleted)")],
                          "bytes": st.st_blocks * 512, "shmem": shmem})
        if table.denied:
            out.problem(self.name, f"fd tables of {table.denied} processes not readable "
                        "(permission: needs root or the process's own user)", ev.origin("proc"), "permission")
        complete = table.complete
        origin = ev.origin("proc/*/fd")
        out.set("deleted.files", len(files), origin)
        out.set("deleted.bytes", sum(f["bytes"] for f in files), origin)
        out.set("deleted.shmem_bytes", sum(f["bytes"] for f in files if f["shmem"]), origin)
        out.set("deleted.complete", complete, origin)
        top = sorted(files, key=lambda f: f["bytes"], reverse=True)[:TOP]
        for f in top:
            comm = quiet_text(ev, f"proc/{f['pid']}/comm")
            if comm:
                f["process"] = comm.strip()
        out.set("deleted.top", top, origin)


@hookimpl
def memdiag_fact_sources(register):
    register(TmpfsSource())
    register(DeletedSource())
