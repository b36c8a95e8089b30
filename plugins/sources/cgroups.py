"""cgroups - memory use and limits of control groups, v2 and v1.

A cgroup can be out of memory while the host looks fine: its own limit, not the machine, is what
its processes hit. This source finds the memory hierarchy from mountinfo, reads the cgroup memdiag
itself runs in (in a container: the container), and walks the tree breadth-first - bounded in
cgroups visited and in time - to name the largest cgroups and the one closest to its limit.

Closeness to a limit is measured on the working set (usage - inactive_file, as kubelet does):
page cache fills any cgroup up to its limit and is reclaimed there, which is healthy.
"""

from __future__ import annotations

import time

from memdiag.evidence import Evidence, Unreadable
from memdiag.facts import FactSet, _Record
from memdiag.hookspecs import hookimpl
from memdiag.sources import Source, spec

from memdiag.plugins.sources._readers import MAX_DIGITS, compact, mounts, quiet_text, text, to_int

MAX_CGROUPS = 2000
MAX_DEPTH = 8
BUDGET_SECONDS = 1.5
TOP = 10
#: v1 prints "no limit" as a huge page-aligned number (PAGE_COUNTER_MAX x page size)
V1_UNLIMITED = 1 << 62
#: names of interface files, not child cgroups
_FILE_PREFIXES = ("cgroup.", "memory.", "cpu.", "cpuset.", "cpuacct.", "io.", "blkio.", "pids.",
                  "hugetlb.", "rdma.", "misc.", "irq.", "net_cls.", "net_prio.", "devices.",
                  "freezer.", "perf_event.")
_FILES = {"tasks", "notify_on_release", "release_agent"}

FACTS = (
    spec("cgroup.version", "str", "Which cgroup hierarchy holds the memory controller: v2 or v1."),
    spec("cgroup.own_path", "str",
         "The cgroup memdiag runs in (from /proc/self/cgroup); inside a container, the container."),
    spec("cgroup.own_usage_bytes", "bytes",
         "Memory charged to that cgroup: page cache and charged kernel memory included "
         "(memory.current, v1 memory.usage_in_bytes)."),
    spec("cgroup.own_limited", "bool", "That cgroup, or one above it, has a memory limit."),
    spec("cgroup.own_limit_bytes", "bytes",
         "The tightest memory limit over that cgroup and its visible ancestors (memory.max, v1 "
         "memory.limit_in_bytes / hierarchical_memory_limit). Unknown when unlimited."),
    spec("cgroup.own_working_set_bytes", "bytes",
         "Usage minus inactive page cache (memory.stat inactive_file): what cannot simply be "
         "dropped when the cgroup reaches its limit."),
    spec("cgroup.own_limit_ratio", "ratio", "cgroup.own_working_set_bytes / cgroup.own_limit_bytes."),
    spec("cgroup.own_stat", "map",
         "memory.stat of that cgroup: key -> value (bytes for sizes such as anon, file, shmem, "
         "slab_unreclaimable, kernel_stack; counts for event keys such as pgfault)."),
    spec("cgroup.own_events", "map",
         "Limit events of that cgroup, counts: v2 memory.events (low, high, max, oom, oom_kill); "
         "v1 failcnt and memory.oom_control oom_kill / under_oom."),
    spec("cgroup.own_oom_kills", "count", "Processes the OOM killer killed inside that cgroup.", unit="processes"),
    spec("cgroup.root_stat", "map", "memory.stat of the root of the hierarchy (whole host, where the kernel provides it)."),
    spec("cgroup.top", "table",
         f"The {TOP} cgroups using the most memory: path, usage_bytes, limit_bytes (absent when "
         "unlimited), working_set_bytes, limit_ratio, oom_kills, anon_bytes, file_bytes."),
    spec("cgroup.tightest", "map",
         "Of the limited cgroups walked, the one whose working set is closest to its limit: path, "
         "usage_bytes, limit_bytes, working_set_bytes, limit_ratio, oom_kills. "
         "Use cgroup.tightest.limit_ratio in rules."),
    spec("cgroup.walked", "count", "Cgroups visited by the bounded walk.", unit="cgroups"),
    spec("cgroup.walk_complete", "bool", "The walk saw every cgroup (no bound was hit)."),
)


class Layout(_Record):
    """Which cgroup hierarchy the evidence has and where it is mounted."""

    __slots__ = _FIELDS = ("version", "mount", "mount_root", "files")

    def __init__(self, version: str, mount: str, mount_root: str, files: dict | None = None) -> None:
        self.version = version  # "v2" | "v1"
        self.mount = mount  # mount point relative to the evidence root, e.g. sys/fs/cgroup/memory
        self.mount_root = mount_root  # the cgroup path the mount shows at its top ("/" unless namespaced oddly)
        self.files: dict = {} if files is None else files


V2 = {"usage": "memory.current", "limit": "memory.max", "stat": "memory.stat", "events": "memory.events"}
V1 = {"usage": "memory.usage_in_bytes", "limit": "memory.limit_in_bytes", "stat": "memory.stat",
      "events": "memory.oom_control", "failcnt": "memory.failcnt"}


class CgroupsSource(Source):
    name = "cgroups"
    evidence_only = True
    facts = FACTS

    def collect(self, ev: Evidence, out: FactSet) -> None:
        if not ev.live:
            ev = _ReadOnce(ev)  # type: ignore[assignment]  # an Evidence in all this source uses
        layout = find_layout(ev)
        if layout is None:
            return
        out.set("cgroup.version", layout.version, ev.origin(layout.mount))
        self._own(ev, out, layout)
        root_stat = quiet_text(ev, f"{layout.mount}/memory.stat")
        if root_stat:
            out.set("cgroup.root_stat", _flat(ev, root_stat), ev.origin(f"{layout.mount}/memory.stat"))
        self._walk(ev, out, layout)

    def _own(self, ev: Evidence, out: FactSet, layout: Layout) -> None:
        path = own_cgroup(ev, layout.version)
        if path is None:
            return
        rel = cgroup_dir(layout, path)
        origin = ev.origin(rel)
        info = read_cgroup(ev, out, self.name, layout, rel, full=True)
        if info is None:
            return
        out.set("cgroup.own_path", path, origin)
        limit = info["limit_bytes"]
        # a limit set above us also binds us (v2: walk up; v1: hierarchical_memory_limit)
        parent = rel
        while layout.version == "v2" and parent.count("/") > layout.mount.count("/"):
            parent = parent.rsplit("/", 1)[0]
            plim = limit_of(quiet_text(ev, f"{parent}/memory.max"))
            if plim is not None and (limit is None or plim < limit):
                limit = plim
        hier = limit_of(str(info["stat"].get("hierarchical_memory_limit", "")))
        if hier is not None and (limit is None or hier < limit):
            limit = hier
        out.set("cgroup.own_usage_bytes", info["usage_bytes"], origin)
        out.set("cgroup.own_limited", limit is not None, origin)
        out.set("cgroup.own_limit_bytes", limit, origin)
        out.set("cgroup.own_working_set_bytes", info["working_set_bytes"], origin)
        if limit and info["working_set_bytes"] is not None:
            out.set("cgroup.own_limit_ratio", info["working_set_bytes"] / limit, origin)
        out.set("cgroup.own_stat", info["stat"] or None, origin)
        out.set("cgroup.own_events", info["events"] or None, origin)
        out.set("cgroup.own_oom_kills", info["oom_kills"], origin)

    def _walk(self, ev: Evidence, out: FactSet, layout: Layout) -> None:
        stop = time.monotonic() + BUDGET_SECONDS
        queue: list[tuple[str, int]] = [(layout.mount, 0)]  # breadth first: taken from the front
        taken = 0
        found: list[dict] = []
        complete = True
        while taken < len(queue):
            if len(found) >= MAX_CGROUPS or time.monotonic() > stop:
                complete = False
                break
            rel, depth = queue[taken]
            taken += 1
            info = read_cgroup(ev, out, self.name, layout, rel, full=False)
            if info is None:
                continue
            if rel != layout.mount:  # the root's usage is the host's; it is not a cgroup to rank
                found.append(info)
            if depth >= MAX_DEPTH:
                complete = complete and not _children(ev, rel)
                continue
            queue.extend((f"{rel}/{c}", depth + 1) for c in sorted(_children(ev, rel)))
        origin = ev.origin(layout.mount)
        out.set("cgroup.walked", len(found), origin)
        out.set("cgroup.walk_complete", complete, origin)
        if not found:
            return
        top = sorted(found, key=lambda i: i["usage_bytes"] or 0, reverse=True)[:TOP]
        limited = [i for i in found if i["limit_bytes"]]
        # only these need memory.stat and events: the biggest, and the fullest limited ones
        near = sorted(limited, key=lambda i: (i["usage_bytes"] or 0) / i["limit_bytes"], reverse=True)[:TOP]
        detail = {i["rel"]: i for i in top + near}
        for rel in detail:
            full = read_cgroup(ev, out, self.name, layout, rel, full=True)
            if full is not None:
                detail[rel].update(full)
        out.set("cgroup.top", [_row(layout, i) for i in top], origin)
        ranked = [i for i in near if i.get("working_set_bytes") is not None]
        if ranked:
            best = max(ranked, key=lambda i: i["working_set_bytes"] / i["limit_bytes"])
            out.set("cgroup.tightest", _row(layout, best), ev.origin(best["rel"]))


def _row(layout: Layout, info: dict) -> dict:
    ws, limit = info.get("working_set_bytes"), info["limit_bytes"]
    stat = info.get("stat") or {}
    return compact({
        "path": "/" + info["rel"][len(layout.mount):].strip("/"),
        "usage_bytes": info["usage_bytes"],
        "limit_bytes": limit,
        "working_set_bytes": ws,
        "limit_ratio": (ws / limit) if (ws is not None and limit) else None,
        "oom_kills": info.get("oom_kills"),
        "anon_bytes": stat.get("anon", stat.get("total_rss")),
        "file_bytes": stat.get("file", stat.get("total_cache")),
    })


def _children(ev: Evidence, rel: str) -> list[str]:
    try:
        names = ev.listdir(rel)
    except Unreadable:  # permission on one subtree: skip it, keep walking
        return []
    return [n for n in names if n not in _FILES and not n.startswith(_FILE_PREFIXES)]


def read_cgroup(ev: Evidence, out: FactSet, source: str, layout: Layout, rel: str, *, full: bool) -> dict | None:
    """Usage and limit of one cgroup (and with ``full`` its memory.stat and events)."""
    files = V2 if layout.version == "v2" else V1
    usage_raw = quiet_text(ev, f"{rel}/{files['usage']}")
    if usage_raw is None:
        if rel == layout.mount and layout.version == "v2":  # v2 root has no memory.current
            usage = None
        else:
            return None
    else:
        usage = to_int(usage_raw.strip() or "x")
    info = {"rel": rel, "usage_bytes": usage, "limit_bytes": limit_of(quiet_text(ev, f"{rel}/{files['limit']}"))}
    if not full:
        return info
    stat_raw = text(ev, out, source, f"{rel}/{files['stat']}", root_only=False)
    stat = _flat(ev, stat_raw) if stat_raw else {}
    events = _flat(ev, quiet_text(ev, f"{rel}/{files['events']}") or "")
    if layout.version == "v1":
        fail = to_int(quiet_text(ev, f"{rel}/{files['failcnt']}") or "x")
        if fail is not None:
            events["failcnt"] = fail
    inactive = stat.get("inactive_file", stat.get("total_inactive_file"))
    info.update(
        stat=stat,
        events=events,
        oom_kills=events.get("oom_kill"),
        working_set_bytes=max(0, usage - inactive) if (usage is not None and inactive is not None) else None,
    )
    return info


def limit_of(raw: str | None) -> int | None:
    """A memory limit, or ``None`` when unlimited (``max``, or v1's huge sentinel) or unknown."""
    if raw is None or not raw.strip() or raw.strip() == "max":
        return None
    value = to_int(raw.split()[0])
    return None if value is None or value >= V1_UNLIMITED else value


_MISSING = object()


class _ReadOnce:
    """A snapshot as this source reads it: each file's text read, and each memory.stat parsed,
    once. The walk, its detail pass and the own cgroup ask for the same files (a third of the
    reads, on a capture); a snapshot cannot change between them. A live host is read again
    each time: a second look is a fresher one. Failed reads are not remembered, so each is
    reported where it was before."""

    __slots__ = ("_ev", "_texts", "_flat")

    def __init__(self, ev: Evidence) -> None:
        self._ev = ev
        self._texts: dict[str, str | None] = {}
        self._flat: dict[str, dict[str, int]] = {}

    def read_text(self, rel: str) -> str | None:
        hit = self._texts.get(rel, _MISSING)
        if hit is _MISSING:
            hit = self._texts[rel] = self._ev.read_text(rel)
        return hit  # type: ignore[return-value]

    def flat(self, raw: str) -> dict[str, int]:
        parsed = self._flat.get(raw)
        if parsed is None:
            parsed = self._flat[raw] = parse_flat(raw)
        return dict(parsed)  # each caller its own: events gain failcnt

    def __getattr__(self, name: str):
        return getattr(self._ev, name)


def _flat(ev: Evidence, raw: str) -> dict[str, int]:
    return ev.flat(raw) if isinstance(ev, _ReadOnce) else parse_flat(raw)


def parse_flat(raw: str) -> dict[str, int]:
    """``key value`` lines (memory.stat, memory.events) -> {key: int}."""
    result = {}
    for line in raw.splitlines():
        parts = line.split()
        if len(parts) == 2:
            key, word = parts
            # nearly every value is plain ASCII digits: int() of those is what to_int() answers
            value = int(word) if word.isdigit() and word.isascii() and len(word) <= MAX_DIGITS else to_int(word)
            if value is not None:
                result[key] = value
    return result


def find_layout(ev: Evidence) -> Layout | None:
    """Where the memory controller is mounted: mountinfo first, the usual paths otherwise."""
    v1 = v2 = None
    for m in mounts(ev)[0]:
        point = m["mountpoint"].lstrip("/")
        if m["fstype"] == "cgroup2" and v2 is None:
            controllers = quiet_text(ev, f"{point}/cgroup.controllers") or ""
            if "memory" in controllers.split():
                v2 = Layout("v2", point, m["root"])
        elif m["fstype"] == "cgroup" and "memory" in m["options"].split(",") and v1 is None:
            v1 = Layout("v1", point, m["root"])
    if v2 or v1:
        return v2 or v1
    base = "sys/fs/cgroup"
    if "memory" in (quiet_text(ev, f"{base}/cgroup.controllers") or "").split():
        return Layout("v2", base, "/")
    if ev.exists(f"{base}/memory/memory.usage_in_bytes"):
        return Layout("v1", f"{base}/memory", "/")
    return None


def own_cgroup(ev: Evidence, version: str) -> str | None:
    """This process's cgroup path in the memory hierarchy (/proc/self/cgroup)."""
    raw = quiet_text(ev, "proc/self/cgroup") or quiet_text(ev, "proc/1/cgroup")
    if raw is None:
        return None
    for line in raw.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if version == "v2" and parts[0] == "0" and parts[1] == "":
            return parts[2]
        if version == "v1" and "memory" in parts[1].split(","):
            return parts[2]
    return None


def cgroup_dir(layout: Layout, path: str) -> str:
    """The directory of cgroup ``path`` under the mount (which may show a subtree only)."""
    root = layout.mount_root.rstrip("/")
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root):]
    return (layout.mount + "/" + path.strip("/")).rstrip("/")


@hookimpl
def memdiag_fact_sources(register):
    register(CgroupsSource())
