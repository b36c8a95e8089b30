"""The Ansible collection (ansible/ansible_collections/memdiag/memdiag) with real ansible-core:
the module on several hosts (local connection, per-host inventory variables, each host analysing
a different capture or the live system), the fleet playbook, and the report it leaves behind."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path


from memdiag.plugins import fleet

from .helpers import BIN, HERE, REPO, require_tool

COLLECTIONS = REPO / "ansible"
HOSTS = HERE / "hosts"
MEMDIAG = str(BIN / "memdiag")


def ansible_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
        ANSIBLE_HOME=str(tmp / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-local"),
        ANSIBLE_REMOTE_TEMP=str(tmp / "ansible-remote"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_CONFIG=str(tmp / "no-ansible.cfg"),
    )
    return env


def run(tmp: Path, program: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([require_tool(program), *args], capture_output=True, text=True, timeout=600,
                          env=ansible_env(tmp), cwd=cwd or tmp)


def inventory(tmp: Path, hosts: dict[str, dict]) -> Path:
    """An inventory of local-connection hosts, each with its own variables."""
    path = tmp / "inventory.json"
    path.write_text(json.dumps({"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "hosts": hosts,
    }}))
    return path


def source_tree(tmp: Path) -> Path:
    """A copy of the project to pip-install from, as one would copy a release to a host."""
    dest = tmp / "memdiag-src"
    shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(
        ".git", ".venv", "tests", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis",
        "ansible", "examples", "bench", "docs"))
    return dest


def test_module_documentation_parses(tmp_path):
    proc = run(tmp_path, "ansible-doc", "--json", "memdiag.memdiag.diagnose")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["memdiag.memdiag.diagnose"]
    assert {"path", "executable", "install_from", "install_dir", "fail_on"} <= set(doc["doc"]["options"])
    assert {"document", "verdict", "severity", "findings"} <= set(doc["return"])


def test_module_returns_structured_findings_per_host(tmp_path):
    inv = inventory(tmp_path, {
        "vmware-guest": {"memdiag_path": str(HOSTS / "vmware-guest")},
        "healthy": {"memdiag_path": str(HOSTS / "healthy")},
        "balloon-critical": {"memdiag_path": str(HOSTS / "balloon-critical")},
    })
    tree = tmp_path / "tree"
    proc = run(tmp_path, "ansible", "all", "-i", str(inv), "-m", "memdiag.memdiag.diagnose",
               "-a", json.dumps({"path": "{{ memdiag_path }}", "executable": MEMDIAG}), "--tree", str(tree))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = {p.name: json.loads(p.read_text()) for p in tree.iterdir()}
    assert set(results) == {"vmware-guest", "healthy", "balloon-critical"}
    vm = results["vmware-guest"]
    assert vm["changed"] is False and vm["installed"] is False and vm["exit_code"] == 1
    assert vm["severity"] == "warning" and vm["verdict"]["rule_id"] == "vmware-balloon"
    balloon = next(f for f in vm["findings"] if f["rule_id"] == "vmware-balloon")
    assert balloon["confidence"] == "suspected"
    assert any(e["fact"] == "accounting.unaccounted_bytes" and e["display"] == "5.07 GiB" for e in balloon["evidence"])
    assert vm["document"]["accounting"]["unaccounted_bytes"] == 5444485120
    assert vm["cmd"][:3] == [MEMDIAG, "analyze", str(HOSTS / "vmware-guest")] and "--no-sinks" in vm["cmd"]
    assert vm["memdiag"] == {"executable": MEMDIAG, "version": "0.1.0"}
    assert results["balloon-critical"]["severity"] == "critical" and results["balloon-critical"]["exit_code"] == 2
    assert results["healthy"]["severity"] == "ok" and results["healthy"]["findings"] == []


def test_module_gate_and_check_mode(tmp_path):
    inv = inventory(tmp_path, {"vmware-guest": {}, "bare": {}})
    gate = run(tmp_path, "ansible", "vmware-guest", "-i", str(inv), "-m", "memdiag.memdiag.diagnose", "-o",
               "-a", json.dumps({"path": str(HOSTS / "vmware-guest"), "executable": MEMDIAG, "fail_on": "warning"}))
    assert gate.returncode == 2, gate.stdout + gate.stderr
    assert "memdiag verdict on this host is warning: VMware balloon driver is holding guest memory" in gate.stdout
    assert '"document"' in gate.stdout  # the evidence comes back with the failure
    dry = run(tmp_path, "ansible", "bare", "-i", str(inv), "-m", "memdiag.memdiag.diagnose", "-o", "--check",
              "-a", json.dumps({"install_from": "memdiag", "install_dir": str(tmp_path / "never")}))
    assert dry.returncode == 2
    assert "memdiag would be installed from memdiag (not done in check mode)" in dry.stdout
    assert not (tmp_path / "never").exists()


def test_fleet_playbook(tmp_path):
    """Five hosts: three captures with an existing install, one live host that gets memdiag
    pip-installed from a source copy, one where memdiag is missing. One report at the end."""
    results = tmp_path / "results"
    venv = tmp_path / "fresh-venv"
    inv = inventory(tmp_path, {
        "vmware-guest": {"memdiag_path": str(HOSTS / "vmware-guest"), "memdiag_executable": MEMDIAG},
        "healthy": {"memdiag_path": str(HOSTS / "healthy"), "memdiag_executable": MEMDIAG},
        "balloon-critical": {"memdiag_path": str(HOSTS / "balloon-critical"), "memdiag_executable": MEMDIAG},
        "fresh": {"memdiag_install_from": str(source_tree(tmp_path)), "memdiag_install_dir": str(venv),
                  "memdiag_install_python": sys.executable},
        "broken": {"memdiag_executable": str(tmp_path / "nowhere" / "memdiag")},
    })
    proc = run(tmp_path, "ansible-playbook", "-i", str(inv), "memdiag.memdiag.fleet",
               "-e", f"memdiag_results_dir={results}", "-e", f"memdiag_controller={MEMDIAG}")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    recap = proc.stdout[proc.stdout.index("PLAY RECAP"):]
    assert "broken " in recap and "rescued=1" in recap and "failed=0" in recap
    assert sorted(p.name for p in results.iterdir()) == [
        "balloon-critical.json", "broken.json", "fleet-report.md", "fleet-report.txt", "fresh.json",
        "healthy.json", "vmware-guest.json"]

    # the fresh host really got its own memdiag, which diagnosed the live system
    assert (venv / "bin" / "memdiag").exists()
    fresh = json.loads((results / "fresh.json").read_text())
    assert fresh["input"]["kind"] == "live"

    f = fleet.load_fleet([str(results)])
    assert [x.host for x in f.failed] == ["broken"]
    assert "memdiag not found" in f.failed[0].error
    severities = {r.host: r.severity for r in f.hosts}
    assert severities["esx-guest-17"] == "critical"
    assert severities["centos74-app01"] == "warning"
    assert severities["web-07"] == "ok"
    assert len(f.hosts) == 4  # the live host is the fourth, under its own name

    text = (results / "fleet-report.txt").read_text()
    lines = text.splitlines()
    assert lines[0].startswith("5 hosts: 1 critical, 1 warning, 1 failed")
    assert [line.split()[0] for line in lines[3:6]] == ["esx-guest-17", "centos74-app01", "broken"]
    assert "  2 hosts: VMware balloon driver is holding guest memory (vmware-balloon, critical, suspected)" in text
    md = (results / "fleet-report.md").read_text()
    assert md.startswith("## memdiag fleet report: 5 hosts: 1 critical, 1 warning, 1 failed")
    # "+N" counts further findings, which other rule packs may add
    assert re.search(r"^\| esx-guest-17 \| CRITICAL \| vmware-balloon \(suspected\)( \+\d+)? \|", md, re.M)
    # the playbook shows the report in its output too
    assert "2 hosts: VMware balloon driver is holding guest memory" in proc.stdout


def test_collection_builds_and_installs(tmp_path):
    """The layout is a real collection: ansible-galaxy builds it, installs it, and ansible finds it."""
    built = run(tmp_path, "ansible-galaxy", "collection", "build", str(COLLECTIONS / "ansible_collections" / "memdiag"
                                                                          / "memdiag"), "--output-path", str(tmp_path))
    assert built.returncode == 0, built.stderr
    tarball = tmp_path / "memdiag-memdiag-0.1.0.tar.gz"
    installed = tmp_path / "installed"
    proc = run(tmp_path, "ansible-galaxy", "collection", "install", "--force", str(tarball), "-p", str(installed))
    assert proc.returncode == 0, proc.stderr
    assert (installed / "ansible_collections" / "memdiag" / "memdiag" / "plugins" / "modules" / "diagnose.py").exists()
    env = {**ansible_env(tmp_path), "ANSIBLE_COLLECTIONS_PATH": str(installed)}
    listed = subprocess.run([require_tool("ansible-doc"), "-l", "memdiag.memdiag"], capture_output=True, text=True,
                            env=env, timeout=120)
    assert "memdiag.memdiag.diagnose" in listed.stdout, listed.stderr
