"""balloon - how much guest memory each hypervisor's balloon driver holds.

Evidence, per driver (../shared/reference/memory-accounting.md §4):

- VMware ``vmw_balloon``: debugfs ``vmmemctl`` (root only; ``target``/``current`` in 4 KiB frames,
  in the pre-2018 ``current: N pages`` layout or the later ``%-22s: %16llu`` one), the old
  out-of-tree module's ``/proc/vmmemctl``, or captured ``vmware-toolbox-cmd stat balloon`` (MB).
- Pages moved by the balloon-compaction core (vmw_balloon since 2018, virtio_balloon, cmm):
  ``vmstat.balloon_inflate - vmstat.balloon_deflate``, read from the vmstat source's facts.
- Hyper-V ``hv_balloon``: debugfs ``hv-balloon`` (pages_ballooned / pages_added / pages_onlined).
- Xen: ``/sys/devices/system/xen_memory/xen_memory0`` target_kb, info/current_kb, low_kb, high_kb.
- virtio: a virtio device with id 5 is a balloon; feature bit 2 (DEFLATE_ON_OOM) decides whether
  ballooned pages shrink MemTotal (bit clear, kernels 4.3+) or show as used (bit set).
- 6.15+ kernels: the ``Balloon:`` meminfo line (fact ``meminfo.Balloon``).
"""

from __future__ import annotations

from memdiag.evidence import Evidence
from memdiag.facts import FactSet
from memdiag.hookspecs import hookimpl
from memdiag.parsers import LazyPattern
from memdiag.sources import Source, spec
from memdiag.units import MIB

from memdiag.plugins.sources._readers import PAGE, colon_pairs, digits, quiet_text, text, to_int

VMMEMCTL = "sys/kernel/debug/vmmemctl"
VMMEMCTL_PROC = "proc/vmmemctl"
HV_BALLOON = "sys/kernel/debug/hv-balloon"
XEN = "sys/devices/system/xen_memory/xen_memory0"
VIRTIO = "sys/bus/virtio/devices"
VIRTIO_ID_BALLOON = 5
DEFLATE_ON_OOM_BIT = 2

#: Module names (as /proc/modules prints them) of balloon drivers, by family.
DRIVERS = {
    "vmware": ("vmw_balloon", "vmware_balloon", "vmmemctl"),
    "virtio": ("virtio_balloon",),
    "hyperv": ("hv_balloon",),
    "xen": ("xen_balloon",),
    "cmm": ("cmm",),
}

FACTS = (
    spec("balloon.vmware_bytes", "bytes",
         "Guest memory the VMware balloon driver holds right now: pages the host took back. They "
         "stay inside MemTotal, count as used, and no /proc/meminfo field before 6.15 names them. "
         "From the driver's own counter (debugfs vmmemctl `current`, or /proc/vmmemctl of the old "
         "VMware Tools module, or `vmware-toolbox-cmd stat balloon`); failing that, from the "
         "balloon-compaction counters or the Balloon: meminfo line when a VMware balloon module "
         "is the only balloon driver loaded."),
    spec("balloon.vmware_target_bytes", "bytes",
         "The size the VMware host has asked its balloon to reach (debugfs vmmemctl `target`). "
         "Above balloon.vmware_bytes means the balloon is still inflating."),
    spec("balloon.vmware_evidence", "str",
         "Which evidence gave balloon.vmware_bytes: vmmemctl, proc-vmmemctl, vmware-toolbox, "
         "vmstat or meminfo. Only the first three are the driver's own counter."),
    spec("balloon.compaction_bytes", "bytes",
         "Pages held through the kernel's balloon-compaction core: (balloon_inflate - "
         "balloon_deflate) from /proc/vmstat times 4 KiB. Covers vmw_balloon (2018 and later; a "
         "2 MiB page counts as 512), virtio_balloon and cmm, not hv_balloon or Xen."),
    spec("balloon.hyperv_ballooned_bytes", "bytes",
         "Memory the Hyper-V balloon (hv_balloon) has given back to the host (debugfs hv-balloon "
         "pages_ballooned x page_size). Since 5.11 these pages leave MemTotal; before, they "
         "counted as used."),
    spec("balloon.hyperv_hot_added_bytes", "bytes",
         "Memory Hyper-V hot-added to the guest (debugfs hv-balloon pages_added x page_size)."),
    spec("balloon.hyperv_onlined_bytes", "bytes",
         "Hot-added memory that was brought online (debugfs hv-balloon pages_onlined x "
         "page_size)."),
    spec("balloon.xen_target_bytes", "bytes",
         "The memory size the Xen toolstack asks this guest to have (xen_memory0/target_kb)."),
    spec("balloon.xen_current_bytes", "bytes",
         "The memory this Xen guest has now according to its balloon (xen_memory0/info/current_kb)."),
    spec("balloon.xen_ballooned_bytes", "bytes",
         "Pages the Xen balloon has handed back to the hypervisor (info/low_kb + info/high_kb). "
         "The Xen balloon shrinks MemTotal instead of showing as used."),
    spec("balloon.virtio_present", "bool",
         "A virtio memory balloon device (virtio device id 5) is attached to this guest."),
    spec("balloon.virtio_deflate_on_oom", "bool",
         "The virtio balloon negotiated VIRTIO_BALLOON_F_DEFLATE_ON_OOM (feature bit 2): its pages "
         "then count as used inside MemTotal. Without it (kernels 4.3+) ballooned pages are taken "
         "out of MemTotal, so they show as a smaller machine rather than as used memory."),
    spec("balloon.virtio_bytes", "bytes",
         "Memory the virtio balloon holds: the balloon-compaction counters or the Balloon: meminfo "
         "line when virtio_balloon is the only balloon driver present."),
    spec("balloon.drivers", "list",
         "Balloon drivers present in this guest, by module name: from /proc/modules, /sys/module, "
         "and the drivers' own sysfs/debugfs files (a built-in driver is not in /proc/modules)."),
    spec("balloon.held_bytes", "bytes",
         "The best estimate of all memory balloon drivers hold, whichever driver: the larger of the "
         "Balloon: meminfo line (6.15+) and the sum of the per-driver figures above."),
)


class BalloonSource(Source):
    name = "balloon"
    evidence_only = True
    after = ("vmstat", "meminfo", "modules")
    facts = FACTS

    def collect(self, ev: Evidence, out: FactSet) -> None:
        drivers: set[str] = set()
        loaded = out.get("modules.loaded")
        if isinstance(loaded, (list, tuple, set)):
            drivers |= {m for names in DRIVERS.values() for m in names if m in loaded}
        for names in DRIVERS.values():
            drivers |= {m for m in names if ev.exists("sys/module/" + m)}

        vmware = self._vmware(ev, out)
        if vmware:
            drivers.add("vmw_balloon")
        if self._hyperv(ev, out):
            drivers.add("hv_balloon")
        if self._xen(ev, out):
            drivers.add("xen_balloon")
        if self._virtio(ev, out):
            drivers.add("virtio_balloon")

        compaction = self._compaction(out)
        meminfo = out.get("meminfo.Balloon")
        self._attribute(out, drivers, compaction, meminfo)

        out.set("balloon.drivers", sorted(drivers), "derived: /proc/modules, /sys/module, balloon files")
        parts = [out.get(n) for n in ("balloon.vmware_bytes", "balloon.hyperv_ballooned_bytes",
                                      "balloon.xen_ballooned_bytes", "balloon.virtio_bytes")]
        known = [p for p in parts if isinstance(p, int)]
        candidates = [sum(known)] if known else []
        if isinstance(meminfo, int):
            candidates.append(meminfo)
        if not candidates and isinstance(compaction, int):
            candidates.append(compaction)
        if candidates:
            out.set("balloon.held_bytes", max(candidates), "derived: per-driver balloon figures")

    # -- VMware ------------------------------------------------------------------------------

    def _vmware(self, ev: Evidence, out: FactSet) -> bool:
        """Read the VMware balloon's own counter; True when any VMware balloon evidence exists."""
        present = False
        for rel, label in ((VMMEMCTL, "vmmemctl"), (VMMEMCTL_PROC, "proc-vmmemctl")):
            raw = text(ev, out, self.name, rel)
            if raw is None:
                present = present or ev.exists(rel)  # unreadable (not root): problem recorded
                continue
            target, current = parse_vmmemctl(raw)
            if current is None:
                out.problem(self.name, "no `current` line found", ev.origin(rel), "malformed")
                return True
            out.set("balloon.vmware_bytes", current * PAGE, ev.origin(rel))
            out.set("balloon.vmware_evidence", label, ev.origin(rel))
            if target is not None:
                out.set("balloon.vmware_target_bytes", target * PAGE, ev.origin(rel))
            return True
        captured = ev.command("vmware-toolbox-cmd-stat-balloon")
        if captured is not None:
            size = parse_toolbox(captured.text)
            if size is not None:
                out.set("balloon.vmware_bytes", size, captured.origin)
                out.set("balloon.vmware_evidence", "vmware-toolbox", captured.origin)
                return True
        return present

    # -- Hyper-V -----------------------------------------------------------------------------

    def _hyperv(self, ev: Evidence, out: FactSet) -> bool:
        raw = text(ev, out, self.name, HV_BALLOON)
        if raw is None:
            return ev.exists(HV_BALLOON)
        pairs = colon_pairs(raw)
        page = to_int(pairs.get("page_size", "4096")) or 4096
        origin = ev.origin(HV_BALLOON)
        # upstream prints pages_ballooned; a vendor kernel prints pages_ballooned_out
        for key, fact in (("pages_ballooned", "balloon.hyperv_ballooned_bytes"),
                          ("pages_ballooned_out", "balloon.hyperv_ballooned_bytes"),
                          ("pages_added", "balloon.hyperv_hot_added_bytes"),
                          ("pages_onlined", "balloon.hyperv_onlined_bytes")):
            value = to_int(pairs.get(key, "").split(" ")[0]) if key in pairs else None
            if value is not None and fact not in out:
                out.set(fact, value * page, origin)
        return True

    # -- Xen ---------------------------------------------------------------------------------

    def _xen(self, ev: Evidence, out: FactSet) -> bool:
        if not ev.exists(XEN):
            return False
        values = {}
        for key, rel in (("target", "target_kb"), ("current", "info/current_kb"),
                         ("low", "info/low_kb"), ("high", "info/high_kb")):
            raw = text(ev, out, self.name, f"{XEN}/{rel}", root_only=False)
            value = to_int(raw) if raw is not None else None
            if value is not None:
                values[key] = value * 1024
        origin = ev.origin(XEN)
        out.set("balloon.xen_target_bytes", values.get("target"), origin)
        out.set("balloon.xen_current_bytes", values.get("current"), origin)
        if "low" in values and "high" in values:
            out.set("balloon.xen_ballooned_bytes", values["low"] + values["high"], origin)
        return True

    # -- virtio ------------------------------------------------------------------------------

    def _virtio(self, ev: Evidence, out: FactSet) -> bool:
        found = False
        for dev in sorted(ev.listdir(VIRTIO)):
            rel = f"{VIRTIO}/{dev}"
            device = quiet_text(ev, rel + "/device")
            if device is None or to_int(device) != VIRTIO_ID_BALLOON:
                continue
            found = True
            out.set("balloon.virtio_present", True, ev.origin(rel + "/device"))
            features = quiet_text(ev, rel + "/features")
            if features is not None and len(features.strip()) > DEFLATE_ON_OOM_BIT:
                # sysfs prints one '0'/'1' per feature bit, bit 0 first
                out.set("balloon.virtio_deflate_on_oom", features.strip()[DEFLATE_ON_OOM_BIT] == "1",
                        ev.origin(rel + "/features"))
            break
        return found

    # -- counters shared by several drivers --------------------------------------------------

    def _compaction(self, out: FactSet) -> int | None:
        inflate, deflate = out.get("vmstat.balloon_inflate"), out.get("vmstat.balloon_deflate")
        if not (isinstance(inflate, int) and isinstance(deflate, int)):
            return None
        value = max(0, inflate - deflate) * PAGE
        out.set("balloon.compaction_bytes", value, out.origin("vmstat.balloon_inflate") or "vmstat")
        return value

    def _attribute(self, out: FactSet, drivers: set[str], compaction, meminfo) -> None:
        """Give the shared counters to a driver only when exactly one such driver is present."""
        users = {family for family in ("vmware", "virtio", "cmm")
                 if drivers & set(DRIVERS[family])}
        if out.get("balloon.virtio_present", False) is True:
            users.add("virtio")
        shared = [(compaction, "vmstat", "vmstat: balloon_inflate - balloon_deflate")]
        if isinstance(meminfo, int) and not drivers & {"hv_balloon", "xen_balloon"}:
            shared.insert(0, (meminfo, "meminfo", out.origin("meminfo.Balloon") or "meminfo"))
        if len(users) != 1:
            return
        family = users.pop()
        for value, label, origin in shared:
            if not isinstance(value, int):
                continue
            if family == "vmware" and "balloon.vmware_bytes" not in out:
                out.set("balloon.vmware_bytes", value, origin)
                out.set("balloon.vmware_evidence", label, origin)
            elif family == "virtio" and "balloon.virtio_bytes" not in out:
                out.set("balloon.virtio_bytes", value, origin)


_LEADING_INT = LazyPattern(r"^\s*([0-9]+)")


def parse_vmmemctl(raw: str) -> tuple[int | None, int | None]:
    """(target, current) in 4 KiB frames from either vmmemctl layout.

    Both layouts later repeat ``target`` as a command counter (``target: 118 ( 0 failed)``), so
    only the first occurrence of each key counts.
    """
    found: dict[str, int] = {}
    for line in raw.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or key not in ("target", "current") or key in found:
            continue
        m = _LEADING_INT.match(value)
        number = digits(m.group(1)) if m else None
        if number is not None:
            found[key] = number
    return found.get("target"), found.get("current")


_TOOLBOX = LazyPattern(r"(?im)^\s*([0-9]+)\s*(MB|MiB)\s*$")  # flags inline: no re import to spell them


def parse_toolbox(raw: str) -> int | None:
    """``vmware-toolbox-cmd stat balloon`` prints the balloon size as ``N MB`` (MiB)."""
    m = _TOOLBOX.search(raw)
    size = digits(m.group(1)) if m else None
    return None if size is None else size * MIB


@hookimpl
def memdiag_fact_sources(register):
    register(BalloonSource())
