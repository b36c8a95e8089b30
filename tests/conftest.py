"""Shared fixtures: the plugin registry, the founding case, and running the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path  # noqa: F401

import pytest

from testkit import REPO, SEED


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path_factory, monkeypatch):
    """Keep every test's rule cache and delivery state out of the user's home."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("XDG_CACHE_HOME", str(base / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(base / "state"))
    monkeypatch.delenv("MEMDIAG_CONFIG", raising=False)
    monkeypatch.delenv("MEMDIAG_PLUGINS", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.fixture(scope="session")
def registry():
    from memdiag import registry as reg

    return reg.load(autoload=False)


@pytest.fixture(scope="session")
def seed_case() -> Path:
    assert SEED.is_dir(), f"the founding case is missing: {SEED}"
    return SEED


class Result:
    def __init__(self, proc: subprocess.CompletedProcess) -> None:
        self.code, self.out, self.err = proc.returncode, proc.stdout, proc.stderr

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def memdiag(tmp_path):
    """Run the memdiag command as a user would, in a subprocess."""

    def run(*args: str, env: dict | None = None, cwd: str | None = None, timeout: float = 120) -> Result:
        full_env = {**os.environ, **(env or {})}
        proc = subprocess.run([sys.executable, "-m", "memdiag", *args], capture_output=True, text=True,
                              env=full_env, cwd=cwd or str(REPO), timeout=timeout)
        return Result(proc)

    return run
