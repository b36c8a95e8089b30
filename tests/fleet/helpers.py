"""Helpers of the fleet/report tests: the hand-made findings documents and real peer programs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO = HERE.parent.parent
DOCS = HERE / "docs"
DOC_NAMES = ("vmware-balloon", "healthy", "oom-critical", "problems")
SEED_CASE = Path(os.environ.get("MEMDIAG_SEED_CASE", REPO.parent / "shared" / "seed-case"))
BIN = Path(sys.executable).parent


def load_doc(name: str) -> dict:
    return json.loads((DOCS / f"{name}.json").read_text())


def require_tool(name: str) -> str:
    """Path of a real peer program; skipped when absent, but a failure under CI (CI=...)."""
    path = shutil.which(name) or (str(BIN / name) if (BIN / name).exists() else None)
    if path is None:
        message = f"{name} is not installed (scripts/apt-packages.txt / the test extra provide it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def memdiag(*args: str, check: bool = False, **kwargs) -> subprocess.CompletedProcess:
    """Run the installed memdiag CLI in a subprocess, as a user or a runbook does."""
    proc = subprocess.run([str(BIN / "memdiag"), *args], capture_output=True, text=True, timeout=120, **kwargs)
    if check and proc.returncode not in (0, 1, 2):
        raise AssertionError(f"memdiag {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc
