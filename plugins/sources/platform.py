"""platform - what the host is: hypervisor signals, kernel release, host name, page size.

The hypervisor is inferred from independent signals (DMI strings, /sys/hypervisor/type, guest
agent processes, paravirtual driver modules); each signal found is listed so a report can say
*why* memdiag thinks the host is a VMware guest, not just that it does.
"""

from __future__ import annotations

import os

from memdiag.evidence import Evidence, Unreadable
from memdiag.facts import FactSet
from memdiag.hookspecs import hookimpl
from memdiag.sources import Source, spec

_DMI_VENDORS = (
    ("vmware", "vmware"),
    ("qemu", "kvm"), ("kvm", "kvm"), ("red hat", "kvm"), ("amazon ec2", "kvm"), ("google", "kvm"),
    ("microsoft corporation", "hyperv"),
    ("xen", "xen"),
    ("innotek", "virtualbox"), ("virtualbox", "virtualbox"),
)
_AGENTS = {
    "vmtoolsd": "vmware", "vmware-guestd": "vmware",
    "qemu-ga": "kvm", "qemu-guest-agen": "kvm",
    "hv_kvp_daemon": "hyperv", "hypervkvpd": "hyperv", "hv_vss_daemon": "hyperv",
    "xe-daemon": "xen", "xenstored": "xen",
    "VBoxService": "virtualbox",
}
_MODULES = {
    "vmw_balloon": "vmware", "vmware_balloon": "vmware", "vmmemctl": "vmware", "vmw_vmci": "vmware",
    "vmwgfx": "vmware", "vmxnet3": "vmware", "vmw_pvscsi": "vmware",
    "virtio_balloon": "kvm", "virtio_pci": "kvm", "virtio_net": "kvm",
    "hv_vmbus": "hyperv", "hv_balloon": "hyperv", "hv_utils": "hyperv", "hv_netvsc": "hyperv",
    "xen_blkfront": "xen", "xen_netfront": "xen", "xen_balloon": "xen",
    "vboxguest": "virtualbox",
}


class PlatformSource(Source):
    name = "platform"
    evidence_only = True
    after = ("processes", "modules")
    facts = (
        spec("platform.hypervisor", "str", "The hypervisor this host runs under, inferred from the signals: "
             "vmware, kvm, hyperv, xen, virtualbox; 'none' on bare metal; unknown without evidence."),
        spec("platform.hypervisor_signals", "list", "Each piece of evidence about the hypervisor, in words "
             "(e.g. 'guest agent vmtoolsd is running')."),
        spec("platform.virtualized", "bool", "Whether the host is a virtual machine."),
        spec("platform.kernel_release", "str", "Kernel release (uname -r), e.g. 3.10.0-693.el7.x86_64."),
        spec("platform.hostname", "str", "Host name."),
        spec("platform.page_size", "bytes", "Base page size; 4 KiB unless the input says otherwise."),
    )

    def collect(self, ev: Evidence, out: FactSet) -> None:
        self._identity(ev, out)
        votes: dict[str, int] = {}  # kind -> signals for it, in the order first seen
        signals: list[str] = []
        origins: list[str] = []

        def vote(kind: str, why: str, origin: str) -> None:
            votes[kind] = votes.get(kind, 0) + 1
            signals.append(why)
            origins.append(origin)

        for key in ("sys_vendor", "product_name"):
            rel = f"sys/class/dmi/id/{key}"
            value = _first_line(ev, rel)
            if value:
                low = value.lower()
                for needle, kind in _DMI_VENDORS:
                    if needle in low:
                        vote(kind, f"DMI {key} is '{value}'", ev.origin(rel))
                        break
        hv_type = _first_line(ev, "sys/hypervisor/type")
        if hv_type:
            vote(hv_type.lower(), f"/sys/hypervisor/type is '{hv_type}'", ev.origin("sys/hypervisor/type"))
        for name in out.get("processes.names", []) or []:
            kind = _AGENTS.get(name)
            if kind:
                vote(kind, f"guest agent {name} is running", out.origin("processes.names") or "")
        for name in out.get("modules.loaded", []) or []:
            kind = _MODULES.get(name)
            if kind:
                vote(kind, f"module {name} is loaded", out.origin("modules.loaded") or "")

        cpu_flag = _cpuinfo_hypervisor_flag(ev)
        origin = ", ".join(dict.fromkeys(o for o in origins if o)) or ev.origin("proc/cpuinfo")
        if votes:
            kind = max(votes, key=votes.__getitem__)  # ties: the first seen, as Counter.most_common
            out.set("platform.hypervisor", kind, origin)
            out.set("platform.virtualized", True, origin)
        elif cpu_flag is True:
            signals.append("CPU flag 'hypervisor' is set")
            out.set("platform.hypervisor", "other", ev.origin("proc/cpuinfo"))
            out.set("platform.virtualized", True, ev.origin("proc/cpuinfo"))
        elif cpu_flag is False:
            out.set("platform.hypervisor", "none", ev.origin("proc/cpuinfo"))
            out.set("platform.virtualized", False, ev.origin("proc/cpuinfo"))
        if cpu_flag is True and votes:
            signals.append("CPU flag 'hypervisor' is set")
        if signals:
            out.set("platform.hypervisor_signals", signals, origin)

    @staticmethod
    def _identity(ev: Evidence, out: FactSet) -> None:
        release = _first_line(ev, "proc/sys/kernel/osrelease")
        release_origin = ev.origin("proc/sys/kernel/osrelease")
        host = _first_line(ev, "proc/sys/kernel/hostname") if ev.live else None
        host_origin = ev.origin("proc/sys/kernel/hostname")
        uname = ev.command("uname")
        if uname is not None and (not release or not host):
            from memdiag.parsers.uname import parse_uname

            u_host, u_release = parse_uname(uname.text, uname.origin)
            if not release and u_release:
                release, release_origin = u_release, uname.origin
            if not host and u_host:
                host, host_origin = u_host, uname.origin
        release = release or ev.metadata.get("kernel")
        host = host or ev.host or _first_line(ev, "proc/sys/kernel/hostname") or _first_line(ev, "etc/hostname")
        if release:
            out.set("platform.kernel_release", release, release_origin)
        if host:
            out.set("platform.hostname", host, host_origin)
        page = os.sysconf("SC_PAGE_SIZE") if ev.live else int(ev.metadata.get("page_size", 4096))
        out.set("platform.page_size", page, "live host" if ev.live else ev.label)


def _first_line(ev: Evidence, rel: str) -> str | None:
    try:
        text = ev.read_text(rel, limit=4096)
    except Unreadable:
        return None
    if not text:
        return None
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    return line or None


def _cpuinfo_hypervisor_flag(ev: Evidence) -> bool | None:
    """True/False from the first ``flags`` line of /proc/cpuinfo; None when there is none."""
    try:
        lines = ev.lines("proc/cpuinfo")
    except Unreadable:
        return None
    if lines is None:
        return None
    for line in lines:
        if line.startswith("flags"):
            return "hypervisor" in line.split(":", 1)[-1].split()
    return None


@hookimpl
def memdiag_fact_sources(register):
    register(PlatformSource())
