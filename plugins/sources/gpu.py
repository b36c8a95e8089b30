"""gpu - memory GPU drivers hold for their clients, from DRM fdinfo.

Each open DRM file prints usage in /proc/PID/fdinfo/FD (Documentation/gpu/drm-usage-stats.rst):
``drm-total-<region>: N [KiB|MiB]`` (6.5+; amdgpu's older ``drm-memory-<region>`` is the same
figure). One client (``drm-client-id``) can be open in several processes and several times, so
clients are counted once. Buffers in system RAM (regions gtt, cpu, system*, memory) are RAM that
no meminfo field names (TTM allocates raw pages); VRAM is the card's own memory.

Live, only descriptors that point at /dev/dri are read (from the shared, bounded fd walk), and
only when the host has a DRM device at all: without one no descriptor can be a DRM client, and
the walk (every process's descriptors, readlink of each: ~25 ms at 1,000 processes) is skipped.
A memdiag capture replays the answer its collection got, and where that was "no device" it
kept no fdinfo, so the capture's own walk (a listing per process) is skipped too - in captures
of format 2 or later, all written since the check exists (older ones walk, as they always did).
"""

from __future__ import annotations

from memdiag.evidence import Evidence, Unreadable
from memdiag.facts import FactSet
from memdiag.hookspecs import hookimpl
from memdiag.sources import Source, spec
from memdiag.units import UnitError, parse_size

from memdiag.plugins.sources._readers import fd_table, is_pid, quiet_text

MAX_FDS = 200000
TOP = 10

FACTS = (
    spec("gpu.clients", "count", "Distinct DRM clients (drm-client-id) found.", unit="clients"),
    spec("gpu.drivers", "list", "DRM drivers serving those clients (drm-driver)."),
    spec("gpu.system_bytes", "bytes",
         "GPU buffers in system RAM over all clients (regions gtt, cpu, system*, memory): RAM the "
         "graphics driver holds that no /proc/meminfo field counts unless it is shmem-backed."),
    spec("gpu.vram_bytes", "bytes", "GPU buffers in the card's own memory (vram, local*): not host RAM."),
    spec("gpu.regions", "map", "Bytes per memory region name, summed over clients."),
    spec("gpu.top", "table",
         f"The {TOP} clients with the most system-RAM buffers: pid, process, driver, system_bytes, vram_bytes."),
    spec("gpu.complete", "bool", "Every process's descriptors were looked at (no bound hit, no permission gap)."),
)


def drm_devices(ev: Evidence) -> bool | None:
    """Whether the host has a DRM device (a /sys/class/drm card or render node, or /dev/dri);
    ``None`` when that cannot be told (sysfs not mounted, as in some containers)."""
    if ev.exists("dev/dri"):
        return True
    try:
        if any(n.startswith(("card", "renderD")) for n in ev.listdir("sys/class/drm")):
            return True
    except Unreadable:
        return None
    return False if ev.exists("sys/class") else None


def _checked_capture(ev: Evidence) -> bool:
    """A memdiag capture whose collection asked :func:`drm_devices` before reading any fdinfo
    (format 2 on; the check is older than that format, not as old as format 1)."""
    version = (ev.metadata.get("capture") or {}).get("version")
    return isinstance(version, int) and version >= 2


def is_system_region(region: str) -> bool:
    return region in ("gtt", "cpu", "memory") or region.startswith("system")


class GpuSource(Source):
    name = "gpu"
    evidence_only = True
    facts = FACTS

    def collect(self, ev: Evidence, out: FactSet) -> None:
        clients: dict[tuple[str, str], dict] = {}
        complete = True
        if ev.live and drm_devices(ev) is False:
            where = f"no DRM device ({ev.origin('sys/class/drm')}, {ev.origin('dev/dri')}); descriptors not read"
            out.set("gpu.clients", 0, where)
            out.set("gpu.complete", True, where)
            return
        if ev.live:  # only descriptors that point at a DRM device
            table = fd_table(ev)
            complete = table.complete
            candidates = [(pid, fd) for pid, fd, target in table.links if target.startswith("/dev/dri/")]
        elif _checked_capture(ev) and drm_devices(ev) is False:
            return  # the walk below would find nothing: the collection kept no fdinfo
        else:  # a capture holds only the fdinfo files someone chose to keep
            candidates = []
            for pid in (p for p in ev.listdir("proc") if is_pid(p)):
                try:
                    candidates.extend((pid, fd) for fd in ev.listdir(f"proc/{pid}/fdinfo"))
                except Unreadable:
                    complete = False
                if len(candidates) > MAX_FDS:
                    complete = False
                    break
        for pid, fd in candidates:
            raw = quiet_text(ev, f"proc/{pid}/fdinfo/{fd}")
            info = parse_fdinfo(raw) if raw and "drm-" in raw else None
            if info is None:
                continue
            key = (info["pdev"] or info["driver"], info["client_id"])
            if key not in clients:
                info["pid"] = int(pid)
                clients[key] = info
        if not clients:
            return
        origin = ev.origin("proc/*/fdinfo")
        regions: dict[str, int] = {}
        for c in clients.values():
            for region, size in c["regions"].items():
                regions[region] = regions.get(region, 0) + size
        out.set("gpu.clients", len(clients), origin)
        out.set("gpu.drivers", sorted({c["driver"] for c in clients.values() if c["driver"]}), origin)
        out.set("gpu.regions", regions, origin)
        out.set("gpu.system_bytes", sum(v for r, v in regions.items() if is_system_region(r)), origin)
        out.set("gpu.vram_bytes", sum(v for r, v in regions.items() if not is_system_region(r)
                                      and not r.startswith("stolen")), origin)
        out.set("gpu.complete", complete, origin)
        rows = []
        for c in clients.values():
            system = sum(v for r, v in c["regions"].items() if is_system_region(r))
            vram = sum(v for r, v in c["regions"].items() if not is_system_region(r) and not r.startswith("stolen"))
            rows.append({"pid": c["pid"], "driver": c["driver"], "system_bytes": system, "vram_bytes": vram})
        rows.sort(key=lambda r: r["system_bytes"], reverse=True)
        for r in rows[:TOP]:
            comm = quiet_text(ev, f"proc/{r['pid']}/comm")
            if comm:
                r["process"] = comm.strip()
        out.set("gpu.top", rows[:TOP], origin)


def parse_fdinfo(raw: str) -> dict | None:
    """The DRM part of one fdinfo file, or ``None`` when it is not a DRM client."""
    pairs = {}
    for line in raw.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.startswith("drm-"):
            pairs[key.strip()] = value.strip()
    if "drm-client-id" not in pairs:
        return None
    regions: dict[str, int] = {}
    legacy: dict[str, int] = {}
    for key, value in pairs.items():
        for prefix, into in (("drm-total-", regions), ("drm-memory-", legacy)):
            if key.startswith(prefix):
                try:
                    into[key[len(prefix):]] = parse_size(value)
                except UnitError:
                    pass
    for region, size in legacy.items():  # drm-memory-* is the older name of drm-total-*
        regions.setdefault(region, size)
    return {"driver": pairs.get("drm-driver"), "client_id": pairs["drm-client-id"],
            "pdev": pairs.get("drm-pdev"), "regions": regions}


@hookimpl
def memdiag_fact_sources(register):
    register(GpuSource())
