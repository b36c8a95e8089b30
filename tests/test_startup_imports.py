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

CHECK = """
import contextlib, io, sys
before = set(sys.modules)
from memdiag.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
loaded = sorted(set(sys.modules) - before)
sys.stderr.write("LOADED " + repr([code, loaded]) + "\\n")
"""


@pytest.mark.parametrize("argv", [["run"], ["run", "--no-sinks"], ["analyze", str(SEED), "--no-sinks"]],
                         ids=["run", "run-no-sinks", "analyze-folder"])
def test_a_warm_diagnosis_imports_nothing_it_does_not_need(tmp_path, argv):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}  # no sink configured
    for var in ("MEMDIAG_CONFIG", "MEMDIAG_OVERRIDES", "MEMDIAG_PLUGINS"):
        env.pop(var, None)
    answers = []
    for _ in range(2):  # the first run fills the rule caches (and parses YAML)
        proc = subprocess.run([sys.executable, "-c", CHECK, *argv], capture_output=True, text=True, env=env,
                              cwd=str(tmp_path), timeout=120)
        [line] = [ln for ln in proc.stderr.splitlines() if ln.startswith("LOADED ")]
        answers.append(line)
    code, loaded = ast.literal_eval(answers[1][len("LOADED "):])
    assert code in (0, 1, 2), answers[1]
    unneeded = [m for m in loaded if any(m == u or m.startswith(u + ".") for u in UNNEEDED)]
    assert unneeded == [], unneeded
