"""ram - installed RAM against MemTotal, and the crash-kernel reservation.

A balloon that shrinks MemTotal (virtio without DEFLATE_ON_OOM, Hyper-V since 5.11, Xen) never
shows as used memory; it shows as a smaller machine. Comparing MemTotal with the RAM the kernel
has online catches it. The memory-block sysfs (Documentation/admin-guide/mm/memory-hotplug.rst)
gives online blocks x block size; the boot line ``Memory: <avail>K/<total>K available`` of a
captured dmesg is the fallback. Normal memblock reservations (kernel image, struct page array,
crash kernel, firmware) keep MemTotal a few percent below installed RAM on a healthy host.
"""

from __future__ import annotations

import time

from memdiag.evidence import Evidence, Unreadable, decode
from memdiag.facts import FactSet
from memdiag.hookspecs import hookimpl
from memdiag.sources import Source, spec
from memdiag.units import UnitError, parse_size

from memdiag.plugins.sources._readers import digits, note, text, to_int

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs ~3 ms of start-up
    from typing import Iterator

MEMORY = "sys/devices/system/memory"
CRASH_SIZE = "sys/kernel/kexec_crash_size"
CMDLINE = "proc/cmdline"
#: More memory blocks than this (1 PiB at 128 MiB each... or a hostile snapshot) are not walked.
MAX_BLOCKS = 65536
BUDGET_SECONDS = 1.0

FACTS = (
    spec("ram.block_size_bytes", "bytes",
         "Size of one hot-pluggable memory block (/sys/devices/system/memory/block_size_bytes)."),
    spec("ram.blocks_online", "count", "Memory blocks in state `online`.", unit="memory blocks"),
    spec("ram.blocks_offline", "count",
         "Memory blocks present but not online (hot-removed or never onlined).", unit="memory blocks"),
    spec("ram.installed_bytes", "bytes",
         "RAM the kernel has online: online memory blocks x block size, or failing that the total "
         "of the boot line `Memory: avail/total available` in dmesg. Includes what MemTotal leaves "
         "out (kernel image, struct page array, crash kernel, firmware). A block that spans a hole "
         "counts whole, so this can be slightly above the DIMMs' size."),
    spec("ram.boot_total_bytes", "bytes",
         "Total RAM the kernel found at boot (dmesg `Memory: avail/total available`)."),
    spec("ram.boot_reserved_bytes", "bytes",
         "RAM reserved at boot, outside MemTotal (the `reserved` figure of the same dmesg line)."),
    spec("ram.crashkernel_bytes", "bytes",
         "Memory reserved for a crash (kdump) kernel, outside MemTotal: /sys/kernel/kexec_crash_size, "
         "else dmesg `Reserving ... for crashkernel`, else the crashkernel= boot parameter "
         "(what was asked for; the reservation may have failed)."),
    spec("ram.memtotal_gap_bytes", "bytes",
         "ram.installed_bytes - meminfo.MemTotal: RAM online but not in MemTotal. A few percent is "
         "normal (reservations); more points at a balloon that shrinks MemTotal, a large crash "
         "kernel or hugepages reserved at boot by firmware."),
    spec("ram.memtotal_gap_ratio", "ratio", "ram.memtotal_gap_bytes as a share of ram.installed_bytes."),
)

# The two boot lines are read by str code, as the patterns in the docstrings would read them:
# compiling those cost ~0.1 ms of every run. [0-9] is ASCII digits only (not str.isdigit).


def _digits_then(line: str, at: int, label: str) -> int:
    """Where the ASCII digits starting at ``at`` end, when there is at least one and ``label``
    follows them; -1 otherwise (a run of [0-9]+ ends only where a non-digit comes)."""
    end = at
    while end < len(line) and "0" <= line[end] <= "9":
        end += 1
    return end if end > at and line.startswith(label, end) else -1


def boot_memory(line: str) -> tuple[str, str, str | None] | None:
    r"""(available, total, reserved or None) from the first match of
    ``Memory: ([0-9]+)K/([0-9]+)K available(?:.*?([0-9]+)K reserved)?`` in ``line``."""
    start = line.find("Memory: ")
    while start >= 0:
        a = start + 8
        b = _digits_then(line, a, "K/")
        c = _digits_then(line, b + 2, "K available") if b >= 0 else -1
        if c >= 0:
            return line[a:b], line[b + 2:c], _reserved(line, c + 11)
        start = line.find("Memory: ", start + 1)
    return None


def _reserved(line: str, after: int) -> str | None:
    """``(?:.*?([0-9]+)K reserved)?`` from ``after``: the first "K reserved" digits lead, on the
    same line (``.`` stops at a newline); the digits as far back as ``after``."""
    stop = line.find("\n", after)
    stop = len(line) if stop < 0 else stop
    at = line.find("K reserved", after)
    while 0 <= at < stop:
        start = at
        while start > after and "0" <= line[start - 1] <= "9":
            start -= 1
        if start < at:
            return line[start:at]
        at = line.find("K reserved", at + 1)
    return None


def crash_reservation(line: str) -> str | None:
    r"""The MB of the first match of ``Reserving ([0-9]+)MB of memory at [0-9]+MB for crashkernel``."""
    start = line.find("Reserving ")
    while start >= 0:
        a = start + 10
        b = _digits_then(line, a, "MB of memory at ")
        if b >= 0 and _digits_then(line, b + 16, "MB for crashkernel") >= 0:
            return line[a:b]
        start = line.find("Reserving ", start + 1)
    return None


class RamSource(Source):
    name = "ram"
    evidence_only = True
    after = ("meminfo",)
    facts = FACTS

    def collect(self, ev: Evidence, out: FactSet) -> None:
        installed = self._blocks(ev, out)
        try:
            dmesg = ev.command_lines("dmesg")
        except Unreadable as exc:
            note(out, self.name, exc, root_only=False)
            dmesg = None
        if dmesg is not None:
            lines, origin = dmesg
            self._dmesg(lines, origin, out)
            if installed is None and "ram.boot_total_bytes" in out:
                installed = out.get("ram.boot_total_bytes")
                out.set("ram.installed_bytes", installed, origin)
        self._crashkernel(ev, out, installed)
        memtotal = out.get("meminfo.MemTotal")
        if isinstance(installed, int) and installed > 0 and isinstance(memtotal, int):
            gap = installed - memtotal
            out.set("ram.memtotal_gap_bytes", gap, "derived: ram.installed_bytes - meminfo.MemTotal")
            out.set("ram.memtotal_gap_ratio", gap / installed, "derived: ram.memtotal_gap_bytes / ram.installed_bytes")

    def _blocks(self, ev: Evidence, out: FactSet) -> int | None:
        raw = text(ev, out, self.name, MEMORY + "/block_size_bytes", root_only=False)
        size = to_int("0x" + raw.strip()) if raw and raw.strip() else None  # printed in hex, no 0x
        if not size:
            return None
        names = [n for n in ev.listdir(MEMORY) if n.startswith("memory") and n[6:].isdigit()]
        if not names or len(names) > MAX_BLOCKS:
            return None
        online = offline = 0
        stop = time.monotonic() + BUDGET_SECONDS
        # 193 of them on a 24 GiB host, read in one call; the usual answer is compared as
        # bytes, undecoded; the clock is asked every 64 blocks
        states = ev.read_each([f"{MEMORY}/{n}/state" for n in names])
        for i, (_, raw) in enumerate(states):
            if i and not i % 64 and time.monotonic() > stop:
                out.problem(self.name, f"memory blocks: gave up after {BUDGET_SECONDS:g} s; "
                            "installed RAM unknown", ev.origin(MEMORY), "timeout")
                return None
            if raw is None or isinstance(raw, Unreadable):
                continue
            if raw.strip() == b"online":
                online += 1
            else:
                try:
                    state = decode(raw, names[i])
                except Unreadable:
                    continue
                if state.strip() == "online":
                    online += 1
                else:
                    offline += 1
        origin = ev.origin(MEMORY)
        out.set("ram.block_size_bytes", size, ev.origin(MEMORY + "/block_size_bytes"))
        out.set("ram.blocks_online", online, origin)
        out.set("ram.blocks_offline", offline, origin)
        if online == 0:
            return None
        out.set("ram.installed_bytes", online * size, origin)
        return online * size

    def _dmesg(self, lines: Iterator[str], origin: str, out: FactSet) -> None:
        """The boot lines, searched line by line (a sosreport's dmesg can be large), stopping
        once both are found; the first of each counts, as in a search of the whole text."""
        boot = crash = None
        try:
            for line in lines:
                if boot is None and "Memory: " in line:
                    boot = boot_memory(line)
                if crash is None and "crashkernel" in line:
                    crash = crash_reservation(line)
                if boot is not None and crash is not None:
                    break
        except Unreadable as exc:  # what was read before the bad part still counts
            note(out, self.name, exc, root_only=False)
        finally:
            close = getattr(lines, "close", None)
            if close is not None:
                close()  # a stream stopped early gives its file back now
        _, total_k, reserved_k = boot or (None, None, None)
        total = digits(total_k) if total_k else None
        if total is not None:
            out.set("ram.boot_total_bytes", total * 1024, origin)
            reserved = digits(reserved_k or "")
            if reserved is not None:
                out.set("ram.boot_reserved_bytes", reserved * 1024, origin)
        size = digits(crash) if crash else None
        if size is not None:
            out.set("ram.crashkernel_bytes", size * 1024 * 1024, origin)

    def _crashkernel(self, ev: Evidence, out: FactSet, installed: int | None) -> None:
        raw = text(ev, out, self.name, CRASH_SIZE, root_only=False)
        if raw is not None and to_int(raw) is not None:
            out.set("ram.crashkernel_bytes", to_int(raw), ev.origin(CRASH_SIZE))  # sysfs wins
            return
        if "ram.crashkernel_bytes" in out:
            return
        cmdline = text(ev, out, self.name, CMDLINE, root_only=False)
        if cmdline is None:
            return
        size = crashkernel_from_cmdline(cmdline, installed)
        if size is not None:
            out.set("ram.crashkernel_bytes", size, ev.origin(CMDLINE))


def crashkernel_from_cmdline(cmdline: str, installed: int | None) -> int | None:
    """Size asked for by ``crashkernel=`` (Documentation/admin-guide/kdump/kdump.rst):
    ``256M``, ``256M@16M``, ``512M,high`` or ranges ``1G-4G:192M,4G-:256M`` (chosen by RAM size;
    unknown without it). Several crashkernel= options (high and low) add up."""
    total, seen = 0, False
    for word in cmdline.split():
        if not word.startswith("crashkernel="):
            continue
        value = word.split("=", 1)[1].split("@", 1)[0]
        size = _crash_value(value, installed)
        if size is not None:
            total += size
            seen = True
    return total if seen else None


def _crash_value(value: str, installed: int | None) -> int | None:
    try:
        if ":" not in value:
            return parse_size(value.split(",", 1)[0])
        if installed is None:
            return None
        for part in value.split(","):
            rng, _, size = part.partition(":")
            start, _, end = rng.partition("-")
            lo = parse_size(start)
            hi = parse_size(end) if end else None
            if lo <= installed and (hi is None or installed < hi):
                return parse_size(size)
        return 0
    except UnitError:
        return None


@hookimpl
def memdiag_fact_sources(register):
    register(RamSource())
