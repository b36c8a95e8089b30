"""Start-up: with warm caches, a plain diagnosis imports none of the modules it does not need.

memdiag runs on hosts already in trouble, and each of these costs milliseconds of every run
(typing ~3 ms, dataclasses with inspect ~5 ms, yaml and jsonschema far more). Checked on the
module names a fresh interpreter holds after ``cli.main``, never on times; bench/bench_run.py
measures the times.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import sysconfig

import pytest

from memdiag import registry
from testkit import REPO, SEED

#: Never needed to diagnose and report as text once the rule caches are warm.
UNNEEDED = ("typing", "dataclasses", "inspect", "textwrap", "tempfile", "shutil", "ast", "json", "yaml",
            "jsonschema", "importlib.metadata", "pluggy", "_hashlib", "ssl", "http", "socket", "sqlite3",
            "email", "asyncio", "urllib.request", "weakref", "argparse", "gettext", "locale", "math",
            "memdiag.overrides", "fnmatch",
            "memdiag.expr_analysis", "memdiag.rulepacks",
            *registry.DEFERRED)

#: What a live run and a sosreport folder need of the standard library beyond what the
#: interpreter loads itself: none of these (re with enum ~3 ms, threading ~1 ms, functools and
#: collections, heapq, importlib with warnings). The installed launcher (bin/memdiag) imports
#: only memdiag.cli. Loose command outputs (the founding case) still need re to recognise them.
STDLIB_UNNEEDED = ("re", "enum", "threading", "functools", "collections", "heapq", "importlib", "warnings",
                   "types", "operator", "contextlib")

SOS = REPO / "tests" / "fixtures" / "offline" / "sos" / "sosreport-centos7-mini"

#: Run by an interpreter without site (-S): an editable install's finder, loaded from a .pth file
#: at start-up, imports re, importlib and more before memdiag could, and would hide them here.
CHECK = """
import os, sys
sys.path[:0] = [os.environ["LAYOUT"]]
sys.path.append(os.environ["PURELIB"])  # pluggy, yaml and jsonschema, for the first (cold) run
before = set(sys.modules)
from memdiag.cli import main
sys.stdout = open(os.devnull, "w")
code = main(sys.argv[1:])
loaded = sorted(set(sys.modules) - before)
sys.stderr.write("LOADED " + repr([code, loaded]) + "\\n")
"""


def _installed_layout(root) -> str:
    """The package laid out as a wheel installs it (plugins/, rules/ and schemas/ inside
    memdiag/), made of links into the checkout."""
    top = root / "memdiag"
    top.mkdir(parents=True)
    for entry in (REPO / "memdiag").iterdir():
        if entry.name != "__pycache__":
            (top / entry.name).symlink_to(entry)
    for name in ("plugins", "rules", "schemas"):
        (top / name).symlink_to(REPO / name)
    return str(root)


@pytest.mark.parametrize("argv, stdlib", [
    (["run"], True),
    (["run", "--no-sinks"], True),
    (["analyze", str(SOS), "--no-sinks"], True),
    (["analyze", str(SEED), "--no-sinks"], False),
], ids=["run", "run-no-sinks", "analyze-sosreport", "analyze-loose-folder"])
def test_a_warm_diagnosis_imports_nothing_it_does_not_need(tmp_path, argv, stdlib):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"),  # no sink configured
           "LAYOUT": _installed_layout(tmp_path / "layout"), "PURELIB": sysconfig.get_paths()["purelib"]}
    for var in ("MEMDIAG_CONFIG", "MEMDIAG_OVERRIDES", "MEMDIAG_PLUGINS", "PYTHONPATH"):
        env.pop(var, None)
    answers = []
    for _ in range(2):  # the first run fills the rule caches (and parses YAML)
        proc = subprocess.run([sys.executable, "-S", "-c", CHECK, *argv], capture_output=True, text=True, env=env,
                              cwd=str(tmp_path), timeout=120)
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("LOADED ")]
        assert len(lines) == 1, proc.stderr
        answers.append(lines[0])
    code, loaded = ast.literal_eval(answers[1][len("LOADED "):])
    assert code in (0, 1, 2), answers[1]
    assert "memdiag.plugins.sources.meminfo" in loaded  # the checkout's memdiag, through the layout
    unneeded = [m for m in loaded if any(m == u or m.startswith(u + ".")
                                         for u in UNNEEDED + (STDLIB_UNNEEDED if stdlib else ()))]
    assert unneeded == [], unneeded


def test_the_installed_launcher_imports_only_the_command_line():
    source = (REPO / "bin" / "memdiag").read_text()
    assert source.startswith("#!python\n")  # the installer writes the environment's interpreter here
    imported = [n for node in ast.walk(ast.parse(source)) if isinstance(node, (ast.Import, ast.ImportFrom))
                for n in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module])]
    assert imported == ["sys", "memdiag.cli"]
