"""The ram source reads dmesg's boot lines with str code as the patterns it replaced did (kept here
as the reference)."""

from __future__ import annotations

import re

from hypothesis import example, given, settings

from patternkit import lines


# -- memdiag.plugins.sources.ram: the boot lines of dmesg -----------------------------------------

_BOOT = re.compile(r"Memory: ([0-9]+)K/([0-9]+)K available(?:.*?([0-9]+)K reserved)?")
_DMESG_CRASH = re.compile(r"Reserving ([0-9]+)MB of memory at [0-9]+MB for crashkernel")
_DMESG = (
    "[    0.000000] Memory: 3868156K/4193784K available (14339K kernel code, 2448K rwdata, 5352K rodata, "
    "2812K init, 4568K bss, 325368K reserved, 0K cma-reserved)",
    "Memory: 16262500k/17825792k available (5396k kernel code, 1049156k absent, 514136k reserved)",
    "[    0.000000] Memory: 2K/3K available 7K reservedK reserved", "Memory: 1K/2K available, 12\nK reserved",
    "Memory: 1K/2K availableMemory: 3K/4K available 5K reserved", "Memory: K/2K available", "Memory: 1K/2K available",
    "[    0.000000] Reserving 256MB of memory at 3808MB for crashkernel (System RAM: 4095MB)",
    "Reserving 128MB of memory at 48MB for crashkernel", "Reserving Reserving 1MB of memory at 2MB for crashkernel",
    "[    0.000000] Command line: BOOT_IMAGE=/vmlinuz ro crashkernel=auto",
)


@settings(max_examples=2000, deadline=None)
@given(lines(*_DMESG, max_size=80))
@example("Memory: \u0661K/2K available")
@example("Memory: 1K/2K available 3K reserved\n4K reserved")
@example("Memory: 1K/2K available\n3K reserved")
def test_the_boot_lines_read_as_by_the_patterns(line):
    from memdiag.plugins.sources.ram import boot_memory, crash_reservation

    m = _BOOT.search(line)
    assert boot_memory(line) == (None if m is None else m.groups())
    m = _DMESG_CRASH.search(line)
    assert crash_reservation(line) == (None if m is None else m.group(1))
