"""The ram source: installed RAM from memory blocks or dmesg, crash kernel, the MemTotal gap."""

from __future__ import annotations

from memdiag.units import GIB, MIB

from memdiag.plugins.sources.ram import RamSource, crashkernel_from_cmdline
from .helpers import Given, kinds, run, run_live, tree

# The boot line of the live Firecracker guest this project is developed on (6.18 kernel).
DMESG_FIRECRACKER = ("[    0.264878] Memory: 3218172K/25165432K available (18478K kernel code, 2544K rwdata, "
                     "10280K rodata, 3728K init, 1168K bss, 496508K reserved, 0K cma-reserved)\n")
# The RHEL/CentOS 7 kdump reservation message, as mm/... prints it on 3.10 kernels.
DMESG_CRASH = "[    0.000000] Reserving 256MB of memory at 896MB for crashkernel (System RAM: 16383MB)\n"


def blocks(n_online: int, n_offline: int = 0, size_hex: str = "8000000") -> dict[str, str]:
    files = {"sys/devices/system/memory/block_size_bytes": size_hex + "\n"}
    for i in range(n_online + n_offline):
        files[f"sys/devices/system/memory/memory{i}/state"] = "online\n" if i < n_online else "offline\n"
    return files


def test_installed_ram_from_memory_blocks_and_gap(tmp_path):
    root = tree(tmp_path, blocks(64, 2))  # 64 x 128 MiB online = 8 GiB
    facts = run([RamSource(), Given("meminfo", {"meminfo.MemTotal": 8 * GIB - 400 * MIB})], root)
    assert facts.get("ram.block_size_bytes") == 128 * MIB
    assert facts.get("ram.blocks_online") == 64 and facts.get("ram.blocks_offline") == 2
    assert facts.get("ram.installed_bytes") == 8 * GIB
    assert facts.get("ram.memtotal_gap_bytes") == 400 * MIB
    assert abs(facts.get("ram.memtotal_gap_ratio") - 400 / 8192) < 1e-9


def test_virtio_balloon_shrinking_memtotal_shows_as_a_large_gap(tmp_path):
    root = tree(tmp_path, blocks(128))  # 16 GiB online, balloon took 6 GiB out of MemTotal
    facts = run([RamSource(), Given("meminfo", {"meminfo.MemTotal": 10 * GIB - 300 * MIB})], root)
    assert facts.get("ram.memtotal_gap_bytes") == 6 * GIB + 300 * MIB
    assert facts.get("ram.memtotal_gap_ratio") > 0.35


def test_dmesg_boot_line_is_the_fallback(tmp_path):
    facts = run([RamSource()], tmp_path, commands={"dmesg": DMESG_FIRECRACKER + DMESG_CRASH})
    assert facts.get("ram.boot_total_bytes") == 25165432 * 1024
    assert facts.get("ram.boot_reserved_bytes") == 496508 * 1024
    assert facts.get("ram.installed_bytes") == 25165432 * 1024
    assert facts.get("ram.crashkernel_bytes") == 256 * MIB


def test_crash_size_sysfs_wins_over_cmdline(tmp_path):
    root = tree(tmp_path, {"sys/kernel/kexec_crash_size": "536870912\n",
                           "proc/cmdline": "ro crashkernel=256M quiet\n"})
    assert run([RamSource()], root).get("ram.crashkernel_bytes") == 512 * MIB


def test_crashkernel_cmdline_forms():
    assert crashkernel_from_cmdline("ro crashkernel=256M quiet", None) == 256 * MIB
    assert crashkernel_from_cmdline("crashkernel=128M@16M", None) == 128 * MIB
    assert crashkernel_from_cmdline("crashkernel=512M,high crashkernel=72M,low", None) == 584 * MIB
    ranges = "crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M"
    assert crashkernel_from_cmdline(ranges, 16 * GIB) == 256 * MIB
    assert crashkernel_from_cmdline(ranges, 512 * MIB) == 0  # below every range: nothing reserved
    assert crashkernel_from_cmdline(ranges, None) is None  # depends on RAM we do not know
    assert crashkernel_from_cmdline("quiet splash", None) is None
    assert crashkernel_from_cmdline("crashkernel=auto", None) is None


def test_cmdline_ranges_use_installed_ram(tmp_path):
    root = tree(tmp_path, {**blocks(256), "proc/cmdline": "crashkernel=1G-4G:192M,4G-64G:256M\n"})
    assert run([RamSource()], root).get("ram.crashkernel_bytes") == 256 * MIB


def test_malformed_block_size_and_nothing_else(tmp_path):
    root = tree(tmp_path, {"sys/devices/system/memory/block_size_bytes": "zz\n"})
    facts = run([RamSource()], root)
    assert "ram.installed_bytes" not in facts and kinds(facts) == []


def test_live():
    facts = run_live([RamSource()])
    assert facts.get("ram.installed_bytes", 1) > 0
