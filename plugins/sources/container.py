"""container - is memdiag looking at a container, and whose memory does /proc/meminfo show.

/proc/meminfo is not namespaced: inside Docker or Kubernetes it shows the host's memory, unless
LXCFS bind-mounts a copy computed from the container's cgroup. Either way the container's real
budget is its cgroup limit, so the cgroup figures are republished here as ``container.*``.
Host-level memory sinks (balloons, ZFS, zram) are not visible from inside.
"""

from __future__ import annotations

from memdiag.evidence import Evidence, Unreadable
from memdiag.facts import FactSet
from memdiag.hookspecs import hookimpl
from memdiag.sources import Source, spec

from memdiag.plugins.sources._readers import mounts, quiet_text

#: substrings of a cgroup path -> runtime
CGROUP_HINTS = (("kubepods", "kubernetes"), ("/docker", "docker"), ("docker-", "docker"),
                ("libpod", "podman"), ("/lxc", "lxc"), ("lxc.payload", "lxc"),
                ("containerd", "containerd"), ("machine.slice", "systemd-nspawn"))

FACTS = (
    spec("container.detected", "bool", "memdiag runs inside a container (or the capture was taken in one)."),
    spec("container.runtime", "str",
         "The container runtime the signals point at: docker, podman, kubernetes, lxc, "
         "containerd, systemd-nspawn, openvz, or unknown."),
    spec("container.signals", "list", "What gave the container away (marker files, cgroup paths, mounts)."),
    spec("container.lxcfs", "bool",
         "/proc/meminfo is virtualised by LXCFS: its figures are the container's cgroup, not the host."),
    spec("container.meminfo_is_host", "bool",
         "Inside a container without LXCFS: /proc/meminfo shows the whole host's memory, so host "
         "figures must not be read as the container's."),
    spec("container.limit_bytes", "bytes", "The container's memory limit (its cgroup's; unknown when unlimited)."),
    spec("container.usage_bytes", "bytes", "Memory charged to the container's cgroup, page cache included."),
    spec("container.working_set_bytes", "bytes", "The container's usage minus inactive page cache."),
    spec("container.limit_ratio", "ratio", "container.working_set_bytes / container.limit_bytes."),
)


class ContainerSource(Source):
    name = "container"
    evidence_only = True
    after = ("cgroups", "meminfo")
    facts = FACTS

    def collect(self, ev: Evidence, out: FactSet) -> None:
        signals: list[str] = []
        runtime = None
        for rel, label, rt in ((".dockerenv", "/.dockerenv", "docker"),
                               ("run/.containerenv", "/run/.containerenv", "podman")):
            if ev.exists(rel):
                signals.append(label)
                runtime = runtime or rt
        marker = quiet_text(ev, "run/systemd/container")
        if marker and marker.strip():
            signals.append(f"/run/systemd/container={marker.strip()}")
            runtime = runtime or marker.strip()
        environ = _environ(ev, "proc/1/environ")  # root only: a bonus when readable
        for var in environ:
            if var.startswith("container="):
                signals.append(f"pid 1 {var}")
                runtime = runtime or var.split("=", 1)[1] or None
        if ev.exists("proc/vz") and not ev.exists("proc/bc"):
            signals.append("/proc/vz without /proc/bc")
            runtime = runtime or "openvz"
        cgroup = quiet_text(ev, "proc/1/cgroup") or quiet_text(ev, "proc/self/cgroup") or ""
        for needle, rt in CGROUP_HINTS:
            if needle in cgroup:
                signals.append(f"cgroup path contains {needle.strip('/')}")
                runtime = runtime or rt
                break
        table = mounts(ev)[0]
        lxcfs = any(m["mountpoint"] == "/proc/meminfo" and ("lxcfs" in m["fstype"] or "lxcfs" in m["source"])
                    for m in table)
        if lxcfs:
            signals.append("/proc/meminfo mounted from lxcfs")
        root = next((m for m in reversed(table) if m["mountpoint"] == "/"), None)
        if root is not None and root["fstype"] in ("overlay", "aufs", "fuse-overlayfs"):
            signals.append(f"root filesystem is {root['fstype']}")

        limit, memtotal = out.get("cgroup.own_limit_bytes"), out.get("meminfo.MemTotal")
        if not lxcfs and signals and isinstance(limit, int) and memtotal == limit:
            lxcfs = True  # meminfo reports exactly the cgroup limit: virtualised
            signals.append("MemTotal equals the cgroup memory limit")

        where = "derived: container signals"
        detected = bool(signals)
        out.set("container.detected", detected, where)
        out.set("container.signals", signals, where)
        if not detected:
            return
        out.set("container.runtime", runtime or "unknown", where)
        out.set("container.lxcfs", lxcfs, where)
        out.set("container.meminfo_is_host", not lxcfs, where)
        for fact, src in (("container.limit_bytes", "cgroup.own_limit_bytes"),
                          ("container.usage_bytes", "cgroup.own_usage_bytes"),
                          ("container.working_set_bytes", "cgroup.own_working_set_bytes"),
                          ("container.limit_ratio", "cgroup.own_limit_ratio")):
            if src in out:
                out.set(fact, out.get(src), out.origin(src) or "cgroups")


@hookimpl
def memdiag_fact_sources(register):
    register(ContainerSource())


def _environ(ev: Evidence, rel: str) -> list[str]:
    """NUL-separated ``VAR=value`` entries; read as bytes, since text reads refuse NUL bytes."""
    try:
        data = ev.read_bytes(rel, limit=1 << 20)
    except Unreadable:
        return []
    return [v.decode("utf-8", "replace") for v in (data or b"").split(b"\0") if v]
