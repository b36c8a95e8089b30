"""docs/runbooks.md: every snippet marked ``<!-- runbook-test: ... -->`` is extracted and used for
real: shell snippets run in bash, files are written and exercised (systemd units verified and
their ExecStart run, NRPE and Icinga commands run, the inventory parsed by Ansible).

System paths in the snippets are mapped to a temporary tree, and "live" diagnoses look at a
captured host through MEMDIAG_ROOT, so the results are known in advance."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from .helpers import BIN, HERE, REPO, require_tool

DOC = REPO / "docs" / "runbooks.md"
HOSTS = HERE / "hosts"
MARKED = re.compile(r"^<!-- runbook-test: (?P<kind>run|file (?P<path>\S+)) -->\n```[\w-]*\n(?P<body>.*?)\n```", re.S | re.M)


@dataclass
class Snippet:
    kind: str  # "run" or "file"
    path: str  # the file's path, for files
    body: str


def snippets() -> list[Snippet]:
    text = DOC.read_text(encoding="utf-8")
    found = [Snippet(m["kind"].split()[0], m["path"] or "", m["body"]) for m in MARKED.finditer(text)]
    markers = len(re.findall(r"^<!-- runbook-test:", text, re.M))
    assert len(found) == markers, "a marker not followed by a fenced block"
    return found


RUNS = [s for s in snippets() if s.kind == "run"]
FILES = {s.path: s for s in snippets() if s.kind == "file"}


class Sandbox:
    """System paths -> a temporary tree; runs snippets there."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.paths = {
            "/usr/local/bin/memdiag": str(BIN / "memdiag"),
            "/opt/src/memdiag": str(REPO),
            "/etc/memdiag": str(tmp / "etc-memdiag"),
            "/etc/systemd/system": str(tmp / "systemd"),
            "/etc/prometheus": str(tmp / "prometheus"),
            "/etc/nagios/nrpe.d": str(tmp / "nrpe.d"),
            "/etc/icinga2/conf.d": str(tmp / "icinga2"),
            "/var/lib/prometheus/node-exporter": str(tmp / "node-exporter"),
            "/var/lib/memdiag": str(tmp / "memdiag-state"),
        }

    def map(self, text: str) -> str:
        for real in sorted(self.paths, key=len, reverse=True):
            text = text.replace(real, self.paths[real])
        return text

    def write(self, path: str) -> Path:
        target = Path(self.map(path)) if path.startswith("/") else self.tmp / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.map(FILES[path].body) + "\n", encoding="utf-8")
        return target

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MEMDIAG_"))}
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
        env.update(extra)
        return env

    def run(self, snippet: Snippet, **env: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(["bash", "-c", self.map(snippet.body)], cwd=self.tmp, env=self.env(**env),
                              capture_output=True, text=True, timeout=600)
        for bad in ("command not found", "No such file or directory", "Traceback"):
            assert bad not in proc.stderr, proc.stderr
        return proc

    def command(self, argv: list[str], **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.map(a) for a in argv], cwd=self.tmp, env=self.env(**env),
                              capture_output=True, text=True, timeout=120)


@pytest.fixture
def sandbox(tmp_path) -> Sandbox:
    return Sandbox(tmp_path)


def run_snippet(containing: str) -> Snippet:
    matches = [s for s in RUNS if containing in s.body]
    assert len(matches) == 1, containing
    return matches[0]


def test_the_page_marks_what_the_tests_use():
    assert len(RUNS) == 4
    assert set(FILES) == {
        "inventory.ini", "/etc/memdiag/memdiag.yaml", "/etc/systemd/system/memdiag-textfile.service",
        "/etc/systemd/system/memdiag-textfile.timer", "/etc/nagios/nrpe.d/memdiag.cfg",
        "/etc/icinga2/conf.d/memdiag.conf",
    }


# --------------------------------------------------------------------------- 1. shell runbook


def test_shell_runbook(sandbox, tmp_path):
    snippet = run_snippet("memdiag render")
    out = tmp_path / "incident"
    proc = sandbox.run(snippet, MEMDIAG_OUT=str(out), MEMDIAG_ROOT=str(HOSTS / "vmware-guest"))
    assert proc.returncode == 0, proc.stderr
    assert f"memdiag: paste {out}/ticket.md into the ticket, attach {out}/report.html" in proc.stdout
    assert "WARNING: VMware balloon driver is holding guest memory (suspected)" in proc.stdout
    doc = json.loads((out / "findings.json").read_text())
    assert doc["verdict"]["rule_id"] == "vmware-balloon"
    assert (out / "ticket.md").read_text().startswith("## memdiag: WARNING on `centos74-app01`")
    assert 'class="segment"' in (out / "report.html").read_text()


def test_shell_runbook_when_memdiag_cannot_diagnose(sandbox, tmp_path):
    empty = tmp_path / "empty-root"
    empty.mkdir()
    proc = sandbox.run(run_snippet("memdiag render"), MEMDIAG_OUT=str(tmp_path / "o"), MEMDIAG_ROOT=str(empty))
    assert "memdiag could not diagnose this host (exit 3): collect by hand" in proc.stderr


# --------------------------------------------------------------------------- 2. Ansible


def test_inventory_snippet_parses(sandbox):
    inv = sandbox.write("inventory.ini")
    proc = sandbox.command([require_tool("ansible-inventory"), "-i", str(inv), "--list"],
                           ANSIBLE_COLLECTIONS_PATH=str(REPO / "ansible"))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["app"]["hosts"] == ["app01.example.com", "app02.example.com"]
    assert data["db"]["hosts"] == ["db01.example.com", "db02.example.com"]
    hostvars = data["_meta"]["hostvars"]
    assert hostvars["app01.example.com"]["memdiag_install_from"] == "/srv/wheels/memdiag-0.1.0-py3-none-any.whl"
    assert hostvars["db01.example.com"]["memdiag_executable"] == str(BIN / "memdiag")
    assert hostvars["db02.example.com"]["memdiag_path"] == "/var/tmp/sosreport-db02.tar.xz"


def test_fleet_snippet(sandbox, tmp_path):
    inventory = tmp_path / "local-hosts.json"
    memdiag = str(BIN / "memdiag")
    inventory.write_text(json.dumps({"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                 "memdiag_executable": memdiag, "memdiag_controller": memdiag},
        "hosts": {name: {"memdiag_path": str(HOSTS / name)} for name in ("vmware-guest", "healthy", "balloon-critical")},
    }}))
    require_tool("ansible-playbook")
    proc = sandbox.run(run_snippet("ansible-playbook"), INVENTORY=str(inventory),
                       ANSIBLE_LOCAL_TEMP=str(tmp_path / "a-local"), ANSIBLE_REMOTE_TEMP=str(tmp_path / "a-remote"),
                       ANSIBLE_HOME=str(tmp_path / "a-home"), ANSIBLE_NOCOLOR="1")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "3 hosts: 1 critical, 1 warning, 1 ok" in proc.stdout
    assert proc.stdout.rstrip().endswith("worst state across the fleet: 2")
    fleet_md = (tmp_path / "fleet.md").read_text()
    assert "- **2 hosts: VMware balloon driver is holding guest memory**" in fleet_md
    assert sorted(p.name for p in (tmp_path / "memdiag-results").glob("*.json")) == [
        "balloon-critical.json", "healthy.json", "vmware-guest.json"]


# --------------------------------------------------------------------------- 3. systemd timer


def test_systemd_timer_feeds_the_textfile_collector(sandbox, tmp_path):
    for path in FILES:
        if path.startswith(("/etc/memdiag/", "/etc/systemd/")):
            sandbox.write(path)
    (tmp_path / "node-exporter").mkdir()
    service = tmp_path / "systemd" / "memdiag-textfile.service"
    timer = tmp_path / "systemd" / "memdiag-textfile.timer"
    verify = sandbox.command([require_tool("systemd-analyze"), "verify", str(service), str(timer)])
    assert verify.returncode == 0, verify.stderr
    assert "memdiag-textfile" not in verify.stderr, verify.stderr  # no warnings about our units

    # Run what the timer starts, as systemd would (its ExecStart and accepted exit codes).
    unit = service.read_text()
    exec_start = re.search(r"^ExecStart=(.+)$", unit, re.M).group(1)
    accepted = {0, *map(int, re.search(r"^SuccessExitStatus=(.+)$", unit, re.M).group(1).split())}
    proc = sandbox.command(shlex.split(exec_start), MEMDIAG_ROOT=str(HOSTS / "balloon-critical"))
    assert proc.returncode in accepted and proc.returncode == 2, proc.stderr

    shown = sandbox.run(run_snippet("memdiag.prom"))
    assert shown.returncode == 0
    assert re.search(r'^memdiag_finding_active\{finding_id="vmware-balloon",severity="critical"[^}]*\} 1$',
                     shown.stdout, re.M)
    assert "memdiag_last_run_success 1" in shown.stdout
    lint = subprocess.run([require_tool("promtool"), "check", "metrics"], input=shown.stdout,
                          capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_prometheus_rules_snippet(sandbox, tmp_path):
    require_tool("promtool")
    proc = sandbox.run(run_snippet("promtool check rules"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 8 rules found" in proc.stdout
    assert (tmp_path / "prometheus" / "memdiag-alerts.yml").exists()


# --------------------------------------------------------------------------- 4. monitoring check


def test_nrpe_and_icinga_commands(sandbox):
    nrpe = sandbox.write("/etc/nagios/nrpe.d/memdiag.cfg").read_text()
    nrpe_cmd = shlex.split(re.search(r"^command\[check_memdiag\]=(.+)$", nrpe, re.M).group(1))
    icinga = sandbox.write("/etc/icinga2/conf.d/memdiag.conf").read_text()
    icinga_cmd = re.findall(r'"([^"]*)"', re.search(r"command = \[(.*?)\]", icinga).group(1))
    for argv in (nrpe_cmd, icinga_cmd):
        proc = sandbox.command(argv, MEMDIAG_ROOT=str(HOSTS / "vmware-guest"))
        assert proc.returncode == 1, proc.stderr
        assert proc.stdout.startswith("MEMDIAG WARNING - 1 finding: vmware-balloon(warning)")
        assert "'mem_unaccounted'=5444485120B;;;0;8185937920" in proc.stdout
