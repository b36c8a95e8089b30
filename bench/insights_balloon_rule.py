"""memdiag's vmware-balloon rule written as an insights-core rule, for bench/bench_insights.py.

Same evidence and arithmetic as memdiag (rules/core.yaml ``vmware-balloon`` over the accounting
identity of plugins/sources/accounting.py): memory used but counted by no /proc/meminfo field,
at least 20% of MemTotal and 512 MiB, on a host with a VMware signal (DMI vendor, the vmtoolsd
guest agent, or a VMware module); "likely" when a balloon module is loaded, else "suspected".
The driver's own counter (debugfs vmmemctl) is not in a sosreport, so that step is left out in
both tools.

    insights-run -p insights_balloon_rule SOSREPORT_DIR     (with bench/ on PYTHONPATH)

This file is only imported by insights-core, in its own virtual environment.
"""

from insights.core.plugins import make_fail, make_pass, rule
from insights.parsers.dmidecode import DMIDecode
from insights.parsers.lsmod import LsMod
from insights.parsers.meminfo import MemInfo
from insights.parsers.ps import PsAuxww

MIN_RATIO = 0.2
MIN_BYTES = 512 * 1024 * 1024
KERNEL_TERMS = ("slab", "kernelstack", "shadowcallstack", "pagetables", "secpagetables", "percpu",
                "hardwarecorrupted", "bounce", "writebacktmp", "zswap")
VMWARE_MODULES = ("vmw_balloon", "vmware_balloon", "vmmemctl", "vmw_vmci", "vmwgfx", "vmxnet3", "vmw_pvscsi")
BALLOON_MODULES = ("vmw_balloon", "vmware_balloon", "vmmemctl")


def unaccounted(m):
    """(unaccounted bytes, MemTotal) by memdiag's version-aware identity; None without the basics."""
    if "memtotal" not in m or "memfree" not in m:
        return None
    kernel = sum(m.get(k, 0) for k in KERNEL_TERMS)
    if "kreclaimable" in m and "sreclaimable" in m:
        kernel += m["kreclaimable"] - m["sreclaimable"]
    chunk, vmalloc = m.get("vmallocchunk"), m.get("vmallocused")
    if chunk is not None and vmalloc is not None and chunk == 0 and vmalloc > 0:  # 5.3+: real pages
        kernel += max(0, vmalloc - m.get("kernelstack", 0))
    hugetlb = m["hugetlb"] if "hugetlb" in m else m.get("hugepages_total", 0) * m.get("hugepagesize", 0)
    if all(k in m for k in ("active", "inactive", "unevictable")):
        user = m["active"] + m["inactive"] + m["unevictable"] + hugetlb
    else:
        user = sum(m.get(k, 0) for k in ("buffers", "cached", "swapcached", "anonpages")) + hugetlb
    return (m["memtotal"] - m["memfree"]) - kernel - user, m["memtotal"]


@rule(MemInfo, [LsMod, PsAuxww, DMIDecode])
def report(meminfo, lsmod, ps, dmi):
    got = unaccounted(meminfo.data)
    if got is None:
        return None
    missing, total = got
    signals = []
    if dmi is not None and "vmware" in str(getattr(dmi, "system_info", {}).get("manufacturer", "")).lower():
        signals.append("DMI manufacturer is VMware")
    if ps is not None and "vmtoolsd" in ps.cmd_names:
        signals.append("guest agent vmtoolsd is running")
    modules = [name for name in VMWARE_MODULES if lsmod is not None and name in lsmod]
    signals += [f"module {name} is loaded" for name in modules]
    ratio = missing / total if total else 0.0
    if signals and ratio >= MIN_RATIO and missing >= MIN_BYTES:
        confidence = "likely" if any(m in BALLOON_MODULES for m in modules) else "suspected"
        return make_fail("VMWARE_BALLOON", confidence=confidence, unaccounted_bytes=missing,
                         unaccounted_ratio=round(ratio, 3), signals=signals)
    return make_pass("VMWARE_BALLOON", unaccounted_bytes=missing, unaccounted_ratio=round(ratio, 3))
