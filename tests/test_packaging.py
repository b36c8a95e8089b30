"""A plain wheel in a fresh virtual environment: the command, python -m, rules and schemas,
with no source tree anywhere near."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

from testkit import REPO


def test_wheel_installs_and_runs_without_the_source_tree(tmp_path, seed_case):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)],
                   check=True, timeout=600)
    [wheel] = wheels.glob("memdiag-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "memdiag/rules/core.yaml" in names
    assert "memdiag/schemas/findings.schema.json" in names and "memdiag/schemas/rule.schema.json" in names
    assert "memdiag/plugins/sources/meminfo.py" in names
    assert "memdiag/py.typed" in names  # type checkers use the API's annotations
    [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "[pytest11]\nmemdiag = memdiag.pytest_plugin" in zipfile.ZipFile(wheel).read(entry_points).decode()
    # Every module of the source tree made it into the wheel (the package list is explicit).
    for top, prefix in (("memdiag", "memdiag"), ("plugins", "memdiag/plugins"), ("rules", "memdiag/rules")):
        for dirpath, _, files in os.walk(REPO / top):
            if "__pycache__" in dirpath:
                continue
            rel = os.path.relpath(dirpath, REPO / top)
            for f in files:
                if f.endswith((".py", ".yaml")):
                    member = os.path.normpath(os.path.join(prefix, rel, f))
                    assert member in names, f"{member} is not in the wheel: add its package to pyproject.toml"

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], check=True, timeout=600)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([str(venv / "bin" / "memdiag"), "--version"], capture_output=True, text=True,
                         cwd=elsewhere, env=env)
    assert out.returncode == 0 and out.stdout.startswith("memdiag ")
    out = subprocess.run([str(py), "-m", "memdiag", "analyze", str(seed_case), "--format", "json"],
                         capture_output=True, text=True, cwd=elsewhere, env=env)
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert doc["verdict"]["rule_id"] == "vmware-balloon"
    assert str(REPO) not in out.stdout.replace(str(seed_case), "")  # nothing came from the checkout
    out = subprocess.run([str(venv / "bin" / "memdiag"), "rules", "validate"], capture_output=True, text=True,
                         cwd=elsewhere, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    # The installed command is bin/memdiag, not a generated script: a live run imports no re
    # (nor enum, threading, functools, collections) before or after memdiag's own modules.
    head = (venv / "bin" / "memdiag").read_text().splitlines()[0]
    assert head.startswith(f"#!{venv}/bin/python"), head  # the installer wrote the environment's interpreter
    env = {**env, "XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    for _ in range(2):  # the first run fills the rule cache (and parses YAML)
        out = subprocess.run([str(venv / "bin" / "memdiag"), "run", "--no-sinks"], capture_output=True, text=True,
                             cwd=elsewhere, env={**env, "PYTHONPROFILEIMPORTTIME": "1"})
    assert out.returncode in (0, 1, 2), out.stderr[-2000:]
    imported = {line.rsplit("|", 1)[1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert "memdiag.plugins.sources.meminfo" in imported
    assert not imported & {"re", "enum", "threading", "functools", "collections", "heapq"}, sorted(imported)
