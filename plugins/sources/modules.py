"""modules - file /proc/modules, or captured `lsmod` output: which kernel modules are loaded."""

from __future__ import annotations

from memdiag.evidence import Evidence
from memdiag.facts import FactSet
from memdiag.hookspecs import hookimpl
from memdiag.sources import Source, spec

PATH = "proc/modules"

#: Balloon drivers by module name. vmmemctl is the out-of-tree module of old VMware Tools.
BALLOON_MODULES = {
    "vmw_balloon": "vmware",
    "vmware_balloon": "vmware",
    "vmmemctl": "vmware",
    "virtio_balloon": "kvm",
    "hv_balloon": "hyperv",
    "xen_balloon": "xen",
}


class ModulesSource(Source):
    name = "modules"
    evidence_only = True
    facts = (
        spec("modules.loaded", "list", "Names of the loaded kernel modules. Built-in drivers are not listed here."),
        spec("modules.balloon", "list", "Loaded balloon driver modules (vmw_balloon, vmware_balloon, vmmemctl, "
             "virtio_balloon, hv_balloon, xen_balloon); empty when none is loaded."),
    )

    def collect(self, ev: Evidence, out: FactSet) -> None:
        from memdiag.parsers.modules import parse_modules

        text = ev.read_text(PATH)
        if text is not None:
            origin = ev.origin(PATH)
        else:
            captured = ev.command("lsmod")
            if captured is None:
                return
            text, origin = captured.text, captured.origin
        names = parse_modules(text, origin)
        out.set("modules.loaded", names, origin)
        out.set("modules.balloon", [n for n in names if n in BALLOON_MODULES], origin)


@hookimpl
def memdiag_fact_sources(register):
    register(ModulesSource())
