"""The psi and oom sources: pressure stall averages; OOM kills from vmstat and written logs."""

from __future__ import annotations

from memdiag.evidence import Evidence, Unreadable

from memdiag.plugins.sources.pressure import OomSource, PsiSource, parse_psi
from .helpers import FIXTURES, Denying, Given, kinds, run, run_live, tree

# the layout of Documentation/accounting/psi.rst, values of a host in memory trouble
PSI = ("some avg10=42.17 avg60=30.05 avg300=12.50 total=987654321\n"
       "full avg10=18.00 avg60=9.75 avg300=3.20 total=123456789\n")
# quoted in leptonai/gpud#70 (cri-containerd), followed by the kill line a 5.x+ kernel prints
MEMCG = ("[ 9123.000001] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=cri-containerd-ec9e.scope,"
         "mems_allowed=0-1,oom_memcg=/kubepods.slice/pod1,task_memcg=/kubepods.slice/pod1/cri-containerd-ec9e.scope,"
         "task=pt_main_thread,pid=461754,uid=0\n"
         "[ 9123.000120] Memory cgroup out of memory: Killed process 461754 (pt_main_thread) total-vm:30000000kB, "
         "anon-rss:16000000kB, file-rss:100000kB, shmem-rss:0kB, UID:0 pgtables:33000kB oom_score_adj:936\n")
# CentOS 7 (3.10) prints the choice and the kill on two lines
OLD = ("[ 500.1] Out of memory: Kill process 2592 (mysqld) score 900 or sacrifice child\n"
       "[ 500.2] Killed process 2592 (mysqld) total-vm:9000000kB, anon-rss:7000000kB, file-rss:0kB\n")


def test_psi_fractions_and_totals(tmp_path):
    facts = run([PsiSource()], tree(tmp_path, {"proc/pressure/memory": PSI}))
    assert facts.get("psi.memory_some_avg10") == 0.4217
    assert facts.get("psi.memory_full_avg300") == 0.032
    assert facts.get("psi.memory_some_total_seconds") == 987.654321
    assert facts.problems == []


def test_psi_idle_line_of_the_doc():
    assert parse_psi("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n") == {
        "some": {"avg10": 0.0, "avg60": 0.0, "avg300": 0.0, "total": 0.0}}


class NoPsi(Evidence):
    """A kernel built with PSI but booted without it: reading the file fails with EOPNOTSUPP."""

    def read_bytes(self, rel, limit=16 << 20):
        if rel == "proc/pressure/memory":
            raise Unreadable(self.origin(rel), "Operation not supported")
        return super().read_bytes(rel, limit)


def test_psi_disabled_says_how_to_enable_it(tmp_path):
    facts = run([PsiSource()], tmp_path, ev=NoPsi(str(tmp_path), kind="capture"))
    assert facts.facts == {} and "psi=1" in facts.problems[0].message


def test_psi_absent_on_old_kernels(tmp_path):
    facts = run([PsiSource()], tmp_path)
    assert facts.facts == {} and facts.problems == []


def test_oom_from_var_log_kern_log():
    facts = run([OomSource(), Given("vmstat", {"vmstat.oom_kill": 4})], FIXTURES / "oom" / "docker-host")
    assert facts.get("oom.kills") == 4
    assert facts.get("oom.log_kills") == 4  # the oom_reaper lines are not kills
    assert facts.get("oom.memcg_kills") == 0
    assert facts.get("oom.log_source") == "var/log/kern.log"
    victims = facts.get("oom.victims")
    assert [v["process"] for v in victims] == ["python3", "(resolved)", "python3", "(resolved)"]
    assert victims[0] == {"pid": 15784, "process": "python3", "memcg": False, "anon_rss_bytes": 4288 * 1024,
                          "file_rss_bytes": 3028 * 1024, "shmem_rss_bytes": 0, "uptime_seconds": 518.050606}
    assert facts.get("oom.last_victim") == "(resolved)"
    assert "oom.last_kill_age_seconds" not in facts  # a log spanning boots has no age


def test_oom_from_captured_dmesg_with_memcg_and_age(tmp_path):
    root = tree(tmp_path, {"proc/uptime": "9723.50 1000.00\n"})
    facts = run([OomSource()], root, commands={"dmesg": OLD + MEMCG})
    assert facts.get("oom.log_kills") == 2 and facts.get("oom.memcg_kills") == 1
    assert facts.get("oom.victims")[0]["process"] == "mysqld"
    assert facts.get("oom.victims")[1]["memcg"] is True
    assert facts.get("oom.last_victim") == "pt_main_thread"
    assert abs(facts.get("oom.last_kill_age_seconds") - 600.49988) < 1e-6


def test_rhel6_kill_line(tmp_path):
    line = "Out of memory: Killed process 2592, UID 27, (mysqld) total-vm:9000000kB, anon-rss:7000000kB, file-rss:0kB\n"
    facts = run([OomSource()], tmp_path, commands={"dmesg": line})
    assert facts.get("oom.last_victim") == "mysqld"


def test_clean_log_counts_zero(tmp_path):
    facts = run([OomSource()], tmp_path, commands={"dmesg": "[ 0.0] Linux version 6.1\n"})
    assert facts.get("oom.log_kills") == 0 and "oom.victims" not in facts


def test_unreadable_log_is_reported_and_the_next_one_tried(tmp_path):
    root = tree(tmp_path, {"var/log/kern.log": "x\n", "var/log/syslog": OLD})
    facts = run([OomSource()], root, ev=Denying(str(root), {"var/log/kern.log"}))
    assert kinds(facts) == [("oom", "permission")]
    assert facts.get("oom.log_source") == "var/log/syslog" and facts.get("oom.log_kills") == 1


def test_live():
    run_live([PsiSource()])
    run_live([OomSource()])
