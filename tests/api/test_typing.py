"""The public surface is typed: memdiag/api.py and memdiag/__init__.py pass ``mypy --strict``,
a typed consumer of the API passes too, and misuse of the API is caught by the checker (so the
types are real, not Any). Missing mypy skips locally and FAILS under CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testkit import REPO

HERE = Path(__file__).resolve().parent


def mypy(*args: str) -> subprocess.CompletedProcess:
    try:
        import mypy  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("mypy is missing (CI must provide it: pip install '.[test]')")
        pytest.skip("mypy is missing: pip install mypy")
    env = {**os.environ, "MYPYPATH": str(REPO)}
    # --follow-imports=silent: memdiag's private modules are read for their types, but only the
    # public surface is held to --strict.
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental",
                           "--python-version", "3.11", *args], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=600)


def test_the_public_surface_is_mypy_strict_clean():
    out = mypy("memdiag/api.py", "memdiag/__init__.py")
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_typed_consumer_checks_and_misuse_does_not(tmp_path):
    out = mypy(str(HERE / "typed_consumer.py"))
    assert out.returncode == 0, out.stdout + out.stderr
    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        "import memdiag\n"
        "report = memdiag.diagnose(timeout='soon')\n"
        "count: int = report.verdict.summary\n"
        "report.findings[0].severity = 'ok'\n"
        "memdiag.deliver(report, sinks='chat', dry=True)\n"
        "memdiag.diagnoze('/')\n")
    out = mypy(str(wrong))
    assert out.returncode == 1
    for line in ("wrong.py:2", "wrong.py:3", "wrong.py:4", "wrong.py:5", "wrong.py:6"):
        assert line in out.stdout, out.stdout


def test_py_typed_marks_the_package():
    assert (REPO / "memdiag" / "py.typed").is_file()
