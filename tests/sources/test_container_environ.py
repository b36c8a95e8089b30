"""pid 1's environment is NUL-separated: it must be read as bytes, live and from a capture."""

from __future__ import annotations

from memdiag.bounded import Deadline
from memdiag.evidence import Evidence
from memdiag.plugins.sources.container import ContainerSource
from memdiag.sources import collect


def test_container_variable_of_pid_1_is_a_signal(tmp_path):
    (tmp_path / "proc" / "1").mkdir(parents=True)
    (tmp_path / "proc" / "1" / "environ").write_bytes(b"PATH=/bin\0container=podman\0HOME=/\0")
    facts = collect([ContainerSource()], Evidence(str(tmp_path), kind="capture"), deadline=Deadline(5))
    assert "pid 1 container=podman" in facts.get("container.signals")
