"""Helpers shared by memdiag's tests (imported by name: keep this module name unique)."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEED = REPO.parent / "shared" / "seed-case"


def validate_document(doc: dict) -> None:
    """Assert ``doc`` is a valid findings document."""
    import jsonschema

    schema = json.loads((REPO / "schemas" / "findings.schema.json").read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(doc)


def make_tar(path, members, mode: str = "w:gz") -> str:
    """Write a tar archive of ``members``: (TarInfo fields as a dict with at least ``name``,
    bytes or None for members without data: folders, links, devices)."""
    with tarfile.open(path, mode) as tar:
        for spec, data in members:
            info = tarfile.TarInfo(spec["name"])
            for key, value in spec.items():
                if key != "name":
                    setattr(info, key, value)
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return str(path)


def host_statuses():
    """(pid, bytes) of every /proc/PID/status on this host that could be read (processes exit)."""
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/status", "rb") as f:
                yield pid, f.read()
        except OSError:
            continue  # exited meanwhile
