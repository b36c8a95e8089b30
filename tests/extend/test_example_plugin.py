"""The plugin author's kit, proven: build examples/memdiag-example-plugin as a wheel, install it
next to memdiag in a fresh virtual environment, and use its fact source, its rule pack (and the
pack's tuning of a bundled rule) and its sink through the installed `memdiag` command.

pip reaches the package index for memdiag's own dependencies (pluggy, jsonschema, pyyaml)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from .helpers import EXAMPLE, REPO, collect, host_tree, rule_states, validate_document, write

STATS = "run/example-agent/memory.stats"
BIG_POOL = "# example-agent memory counters\nversion 2.3.1\npool_pinned_kb 4718592\npool_limit_kb 5242880\npool_clients 12\n"
SMALL_POOL = "version 2.3.1\npool_pinned_kb 65536\npool_limit_kb 5242880\npool_clients 1\n"


@dataclass
class Installed:
    venv: Path
    plugin_wheel: Path
    env: dict
    cwd: Path

    @property
    def memdiag(self) -> str:
        return str(self.venv / "bin" / "memdiag")

    def run(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([self.memdiag, *args], capture_output=True, text=True, cwd=self.cwd,
                              env={**self.env, **(env or {})}, timeout=120)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    base = tmp_path_factory.mktemp("example-plugin")
    wheels = base / "wheels"
    # Both built from clean copies: nothing is left in (or taken from) the shared checkout's build/.
    junk = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", ".venv", ".git", "tests",
                                  ".pytest_cache", ".hypothesis", "examples")
    core_src, example = base / "memdiag", base / "memdiag-example-plugin"
    shutil.copytree(REPO, core_src, ignore=junk)
    shutil.copytree(EXAMPLE, example, ignore=junk)
    for project in (core_src, example):
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(project)],
                       check=True, timeout=600)
    [core] = wheels.glob("memdiag-*.whl")
    [plugin] = wheels.glob("memdiag_example_plugin-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    str(core), str(plugin)], check=True, timeout=600)
    cwd = base / "elsewhere"  # nowhere near either source tree
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MEMDIAG_PLUGINS", "MEMDIAG_OVERRIDES")}
    return Installed(venv, plugin, env, cwd)


def test_the_wheel_carries_the_entry_point_and_the_rule_pack(installed):
    names = zipfile.ZipFile(installed.plugin_wheel).namelist()
    assert "memdiag_example/rules/example-agent.yaml" in names
    assert "memdiag_example/plugin.py" in names and "memdiag_example/sink.py" in names
    [ep] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(installed.plugin_wheel).read(ep).decode()
    assert "[memdiag]" in text and "example = memdiag_example.plugin" in text


def test_memdiag_plugins_lists_it_with_version_hooks_and_registrations(installed):
    r = installed.run("plugins")
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith("example "))
    assert "0.1.0" in row and "entry point (memdiag_example_plugin)" in row
    assert "fact_sources, rule_packs, sinks" in row and row.rstrip().endswith("loaded")
    r = installed.run("plugins", "--format", "json")
    [entry] = [p for p in json.loads(r.stdout) if p["name"] == "example"]
    assert entry["version"] == "0.1.0" and entry["origin"] == "entry point"
    assert entry["target"] == "memdiag_example.plugin"
    assert entry["hooks"] == ["memdiag_fact_sources", "memdiag_rule_packs", "memdiag_sinks"]
    assert entry["provides"]["sources"] == ["example_agent"] and entry["provides"]["sinks"] == ["example-tickets"]
    assert entry["provides"]["rule_packs"][0].endswith(os.path.join("memdiag_example", "rules"))
    assert str(installed.venv) in entry["provides"]["rule_packs"][0]


def test_its_facts_rules_and_rule_tests_join_memdiags_own(installed):
    r = installed.run("facts", "example_agent")
    names = [line.split()[0] for line in r.stdout.splitlines()]
    assert names == ["example_agent.clients", "example_agent.pool_bytes", "example_agent.pool_limit_bytes",
                     "example_agent.version"]
    r = installed.run("rules", "show", "example-agent-pool")
    assert r.returncode == 0 and "(example)" in r.stdout and "min_pool = 1073741824" in r.stdout
    # The pack's tuning of the bundled rule is in force, and says where it came from.
    r = installed.run("rules", "show", "unaccounted-memory")
    assert "example agent pool: when example_agent.pool_bytes >= 0.8 * accounting.unaccounted_bytes" in r.stdout
    assert "example-agent.yaml:" in r.stdout and "(overrides in rule pack example)" in r.stdout
    junit = installed.cwd / "rules.xml"
    r = installed.run("rules", "test", "--junit", str(junit))
    assert r.returncode == 0, r.stdout + r.stderr
    xml = junit.read_text()
    assert 'classname="example-agent-pool" name="read through the real source from the agent\'s stats file"' in xml
    assert "example-agent-pool" not in r.stdout  # no failure, no coverage gap


def test_fact_source_rule_and_sink_end_to_end(installed, tmp_path):
    host = host_tree(tmp_path / "rdma01", "rdma01.example.com", {STATS: BIG_POOL})
    # Collected by the installed memdiag: the plugin's source reads, so its file is captured.
    captured = collect(host, tmp_path / "c1", command=[installed.memdiag], env=installed.env)
    assert (captured / STATS).read_text() == BIG_POOL
    config = write(tmp_path / "memdiag.yaml", f"""
        delivery: {{state_dir: {tmp_path / 'state'}}}
        sinks:
          - name: agent-team
            type: example-tickets
            queue_dir: {tmp_path / 'queue'}
            project: AGENT
    """)
    args = ("analyze", str(captured), "--format", "json", "--config", str(config), "--sink", "agent-team",
            "--overrides", "")
    r = installed.run(*args)
    assert r.returncode == 1, r.stderr  # a warning
    doc = json.loads(r.stdout)
    validate_document(doc)
    assert doc["host"] == "rdma01.example.com"
    assert doc["facts"]["example_agent.pool_bytes"] == 4718592 * 1024
    top, second = doc["findings"]
    assert top["rule_id"] == "example-agent-pool" and top["severity"] == "warning" and top["confidence"] == "confirmed"
    assert "4.50 GiB" in top["message"] and "12 RDMA client(s)" in top["message"]
    pool = next(e for e in top["evidence"] if e["fact"] == "example_agent.pool_bytes")
    assert pool["display"] == "4.50 GiB" and pool["origin"].endswith(STATS)
    # The bundled rule still reports, suppressed by the plugin pack's exception: not dropped.
    assert second["rule_id"] == "unaccounted-memory"
    assert second["suppressed"]["reason"].startswith("the example agent's pinned RDMA pool accounts for this memory")
    assert "(overrides in rule pack example)" in second["suppressed"]["by"]
    assert doc["verdict"]["rule_id"] == "example-agent-pool"

    # The sink filed exactly one ticket, for the finding that counts.
    tickets = sorted((tmp_path / "queue").glob("AGENT-*.json"))
    assert [t.name for t in tickets] == ["AGENT-1.json"]
    ticket = json.loads(tickets[0].read_text())
    assert ticket["status"] == "open" and ticket["fingerprint"] == top["fingerprint"]
    assert ticket["rule_id"] == "example-agent-pool" and ticket["host"] == "rdma01.example.com"
    assert "4.50 GiB" in ticket["body"] and ticket["summary"].startswith("[memdiag][WARN][rdma01.example.com]")

    # Run again: found by its fingerprint, not filed twice.
    r = installed.run(*args)
    assert r.returncode == 1, r.stderr
    assert [t.name for t in sorted((tmp_path / "queue").glob("AGENT-*.json"))] == ["AGENT-1.json"]

    # The agent shrinks its pool: the rule passes and the ticket is closed.
    (host / STATS).write_text(SMALL_POOL)
    captured2 = collect(host, tmp_path / "c2", command=[installed.memdiag], env=installed.env)
    r = installed.run("analyze", str(captured2), "--format", "json", "--config", str(config), "--sink", "agent-team",
                      "--overrides", "")
    doc = json.loads(r.stdout)
    assert rule_states(doc)["example-agent-pool"]["state"] == "passed"
    assert [f["rule_id"] for f in doc["findings"]] == ["unaccounted-memory"] and r.returncode == 1
    ticket = json.loads((tmp_path / "queue" / "AGENT-1.json").read_text())
    assert ticket["status"] == "closed" and "Resolved" in ticket["comments"][-1]["text"]
    # With the pool no longer explaining it, the bundled finding counts again, and only now
    # does it reach the sink: suppressed findings never do.
    assert "suppressed" not in doc["findings"][0]
    assert json.loads((tmp_path / "queue" / "AGENT-2.json").read_text())["rule_id"] == "unaccounted-memory"


def test_blocking_the_installed_plugin(installed, tmp_path):
    host = host_tree(tmp_path / "h", "rdma02", {STATS: BIG_POOL})
    captured = collect(host, tmp_path / "c", command=[installed.memdiag], env=installed.env)
    for extra_env, extra_args in (({}, ("-p", "no:example")), ({"MEMDIAG_PLUGINS": ""}, ())):
        r = installed.run("analyze", str(captured), "--format", "json", "--overrides", "", *extra_args, env=extra_env)
        doc = json.loads(r.stdout)
        assert "example_agent.pool_bytes" not in doc["facts"]
        assert "example-agent-pool" not in rule_states(doc)
        assert doc["verdict"]["rule_id"] == "unaccounted-memory"  # no pack, no exception
    r = installed.run("plugins", env={"MEMDIAG_PLUGINS": "example"})
    assert any(line.startswith("example ") and line.rstrip().endswith("loaded") for line in r.stdout.splitlines())
