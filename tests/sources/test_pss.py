"""The pss source: smaps_rollup of the largest processes within a budget, and reconciliation."""

from __future__ import annotations

from memdiag.units import KIB, MIB

from memdiag.plugins.sources.pss import PssSource, parse_rollup
from .helpers import Denying, Given, kinds, run, run_live, tree


def rollup(rss: int, pss: int, anon: int, file: int, shmem: int, private: int, swap_pss: int = 0) -> str:
    """smaps_rollup in the layout of Documentation/filesystems/proc.rst (sizes in kB)."""
    return (f"00400000-7ffd3b3f5000 ---p 00000000 00:00 0                          [rollup]\n"
            f"Rss:            {rss} kB\nPss:            {pss} kB\nPss_Dirty:      {anon} kB\n"
            f"Pss_Anon:       {anon} kB\nPss_File:       {file} kB\nPss_Shmem:      {shmem} kB\n"
            f"Shared_Clean:   {rss - private} kB\nShared_Dirty:   0 kB\nPrivate_Clean:  0 kB\n"
            f"Private_Dirty:  {private} kB\nReferenced:     {rss} kB\nAnonymous:      {anon} kB\n"
            f"LazyFree:       0 kB\nAnonHugePages:  0 kB\nShmemPmdMapped: 0 kB\nFilePmdMapped:  0 kB\n"
            f"Shared_Hugetlb: 0 kB\nPrivate_Hugetlb: 0 kB\nSwap:           0 kB\nSwapPss:        {swap_pss} kB\n"
            f"Locked:         0 kB\n")


def host(tmp_path):
    return tree(tmp_path, {
        "proc/100/statm": "500000 262144 2000 100 0 300000 0\n", "proc/100/comm": "postgres\n",
        "proc/100/smaps_rollup": rollup(1048576, 700000, 600000, 80000, 20000, 600000, 1000),
        "proc/200/statm": "90000 65536 500 10 0 60000 0\n", "proc/200/comm": "sshd\n",
        "proc/200/smaps_rollup": rollup(262144, 150000, 100000, 50000, 0, 100000),
        "proc/300/statm": "4000 1024 10 1 0 900 0\n", "proc/300/comm": "cron\n",
        "proc/300/smaps_rollup": rollup(4096, 3000, 2000, 1000, 0, 2000),
        "proc/2/statm": "0 0 0 0 0 0 0\n",  # a kernel thread: no memory, not counted
    })


def test_sums_and_reconciliation(tmp_path):
    meminfo = Given("meminfo", {"meminfo.AnonPages": 720000 * KIB, "meminfo.Mapped": 160000 * KIB})
    facts = run([PssSource(), meminfo], host(tmp_path))
    assert facts.get("pss.total_bytes") == (700000 + 150000 + 3000) * KIB
    assert facts.get("pss.anon_bytes") == 702000 * KIB
    assert facts.get("pss.uss_bytes") == 702000 * KIB
    assert facts.get("pss.swap_pss_bytes") == 1000 * KIB
    assert facts.get("pss.processes_read") == 3 and facts.get("pss.processes_total") == 3
    assert facts.get("pss.complete") is True and facts.get("pss.rss_coverage_ratio") == 1.0
    assert facts.get("pss.expected_bytes") == 880000 * KIB
    assert round(facts.get("pss.reconciliation_ratio"), 3) == round(853000 / 880000, 3)
    assert round(facts.get("pss.anon_reconciliation_ratio"), 3) == round(702000 / 720000, 3)
    top = facts.get("pss.top")
    assert top[0] == {"pid": 100, "pss_bytes": 700000 * KIB, "uss_bytes": 600000 * KIB,
                      "rss_bytes": 1048576 * KIB, "swap_pss_bytes": 1000 * KIB, "process": "postgres"}
    assert facts.problems == []


def test_budget_reads_the_largest_first(tmp_path):
    src = PssSource()
    src.max_processes = 1
    facts = run([src], host(tmp_path))
    assert facts.get("pss.processes_read") == 1 and facts.get("pss.top")[0]["process"] == "postgres"
    assert facts.get("pss.complete") is False
    assert round(facts.get("pss.rss_coverage_ratio"), 3) == round(262144 / (262144 + 65536 + 1024), 3)


def test_permission_is_counted_once(tmp_path):
    root = host(tmp_path)
    ev = Denying(str(root), {"proc/100/smaps_rollup", "proc/200/smaps_rollup"})
    facts = run([PssSource()], root, ev=ev)
    assert facts.get("pss.denied") == 2 and facts.get("pss.processes_read") == 1
    assert kinds(facts) == [("pss", "permission")] and "2 processes" in facts.problems[0].message
    assert facts.get("pss.complete") is False


def test_kernel_without_smaps_rollup(tmp_path):
    root = tree(tmp_path, {"proc/100/statm": "500000 262144 2000 100 0 300000 0\n"})
    facts = run([PssSource()], root)
    assert facts.get("pss.processes_read") == 0 and "pss.total_bytes" not in facts


def test_parse_rollup_ignores_other_lines():
    assert parse_rollup("Pss: 12 kB\nPss_Anon: x kB\nFoo: 1 kB\n") == {"pss": 12 * KIB}


def test_live():
    facts = run_live([PssSource()])
    assert facts.get("pss.processes_read") >= 1  # at least this test process
    assert facts.get("pss.total_bytes") > MIB


def status(name: str, rss_kb: int) -> str:
    return f"Name:\t{name}\nUmask:\t0022\nState:\tS (sleeping)\nVmRSS:\t{rss_kb} kB\nRssAnon:\t{rss_kb} kB\n"


def test_reuses_the_process_scans_ranking(tmp_path):
    from memdiag.plugins.sources.processes import ProcessesSource

    root = host(tmp_path)
    for pid, name, rss in (("100", "postgres", 1048576), ("200", "sshd", 262144), ("300", "cron", 4096)):
        (root / f"proc/{pid}/statm").unlink()  # only the scan's ranking can name them now
        tree(root, {f"proc/{pid}/status": status(name, rss)})
    tree(root, {"proc/2/status": "Name:\tkthreadd\n"})
    (root / "proc/2/statm").unlink()
    facts = run([PssSource(), ProcessesSource()], root)  # pss runs after processes
    assert facts.get("pss.processes_read") == 3 and facts.get("pss.processes_total") == 3
    assert facts.get("pss.complete") is True and facts.get("pss.rss_coverage_ratio") == 1.0
    assert facts.origin("pss.processes_total").endswith("proc/*/status")


def test_walks_statm_when_the_ranking_runs_out(tmp_path, monkeypatch):
    from memdiag.plugins.sources import processes

    monkeypatch.setattr(processes, "RANK_N", 1)  # the scan hands over postgres only
    root = host(tmp_path)
    for pid, name, rss in (("100", "postgres", 1048576), ("200", "sshd", 262144), ("300", "cron", 4096)):
        tree(root, {f"proc/{pid}/status": status(name, rss)})
    ev = Denying(str(root), {"proc/100/smaps_rollup"})
    facts = run([PssSource(), processes.ProcessesSource()], root, ev=ev)
    assert facts.get("pss.denied") == 1 and facts.get("pss.processes_read") == 2  # sshd, cron from statm
    assert facts.get("pss.processes_total") == 3 and facts.get("pss.complete") is False
