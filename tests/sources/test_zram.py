"""The zram and swap sources."""

from __future__ import annotations

from memdiag.units import GIB

from memdiag.plugins.sources.zram import SwapSource, ZramSource, parse_swaps
from .helpers import kinds, run, run_live, tree

# the mm_stat example of Documentation/blockdev/zram.txt (the 4.x layout, 7 fields)
MM_STAT_DOC = "181977088 57352941 64512000        0 106196992     3992        0\n"
# /proc/swaps of util-linux/util-linux#3903: an 8 GB zram swap nearly full
SWAPS_ZRAM = ("Filename                                Type            Size            Used            Priority\n"
              "/dev/zram0                              partition       8388604         7475912         100\n")


def test_mm_stat_of_the_kernel_doc(tmp_path):
    root = tree(tmp_path, {"sys/block/zram0/disksize": f"{4 * GIB}\n", "sys/block/zram0/mm_stat": MM_STAT_DOC,
                           "sys/block/zram1/disksize": "0\n", "sys/block/vda/size": "1\n"})
    facts = run([ZramSource()], root)
    assert facts.get("zram.devices") == [{"name": "zram0", "disksize_bytes": 4 * GIB, "orig_data_bytes": 181977088,
                                          "compr_data_bytes": 57352941, "mem_used_bytes": 64512000,
                                          "mem_limit_bytes": 0, "same_pages": 3992}]
    assert facts.get("zram.mem_used_bytes") == 64512000
    assert round(facts.get("zram.compression_ratio"), 2) == 2.82
    assert facts.problems == []


def test_pre_41_separate_files(tmp_path):
    root = tree(tmp_path, {"sys/block/zram0/disksize": "1073741824\n", "sys/block/zram0/orig_data_size": "4096000\n",
                           "sys/block/zram0/compr_data_size": "1024000\n", "sys/block/zram0/mem_used_total": "1200000\n"})
    assert run([ZramSource()], root).get("zram.mem_used_bytes") == 1200000


def test_truncated_mm_stat(tmp_path):
    root = tree(tmp_path, {"sys/block/zram0/disksize": "1073741824\n", "sys/block/zram0/mm_stat": "12\n"})
    facts = run([ZramSource()], root)
    assert kinds(facts) == [("zram", "malformed")] and "zram.mem_used_bytes" not in facts


def test_swaps_on_zram(tmp_path):
    facts = run([SwapSource()], tree(tmp_path, {"proc/swaps": SWAPS_ZRAM}))
    assert facts.get("swap.total_bytes") == 8388604 * 1024
    assert facts.get("swap.used_bytes") == 7475912 * 1024
    assert round(facts.get("swap.used_ratio"), 3) == 0.891
    assert facts.get("swap.zram_total_bytes") == 8388604 * 1024
    assert facts.get("swap.device_count") == 1


def test_no_swap_header_only(tmp_path):
    facts = run([SwapSource()], tree(tmp_path, {"proc/swaps": SWAPS_ZRAM.splitlines()[0] + "\n"}))
    assert facts.get("swap.total_bytes") == 0 and "swap.used_ratio" not in facts


def test_swap_file_name_with_space():
    rows = parse_swaps("Filename Type Size Used Priority\n/swap\\040file file 1024 0 -2\n")
    assert rows[0]["name"] == "/swap file" and rows[0]["priority"] == -2 and rows[0]["zram"] is False


def test_live():
    run_live([ZramSource(), SwapSource()])
