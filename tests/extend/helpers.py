"""Helpers for the extending-and-tuning tests: captured folders, plugin files, overrides files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SEED = REPO.parent / "shared" / "seed-case"
EXAMPLE = REPO / "examples" / "memdiag-example-plugin"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def host_tree(root: Path, host: str = "web01.example.com", extra: dict[str, str] | None = None) -> Path:
    """A host's files as memdiag reads them: the founding case's /proc/meminfo (5.07 GiB, 67%
    unaccounted) and a host name, plus ``extra`` files."""
    write(root / "proc" / "meminfo", (SEED / "meminfo").read_text())
    write(root / "proc" / "sys" / "kernel" / "hostname", host + "\n")
    for rel, text in (extra or {}).items():
        write(root / rel, text)
    return root


def collect(tree: Path, out_dir: Path, *, command: list[str] | None = None, env: dict | None = None) -> Path:
    """``memdiag collect`` run over ``tree`` as if it were the host (MEMDIAG_ROOT), the capture
    unpacked: the captured folder an engineer brings back from a host."""
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / "capture.tar.gz"
    full_env = {**os.environ, **(env or {}), "MEMDIAG_ROOT": str(tree)}
    proc = subprocess.run([*(command or [sys.executable, "-m", "memdiag"]), "collect", "-o", str(archive)],
                          capture_output=True, text=True, env=full_env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with tarfile.open(archive) as tar:
        tar.extractall(out_dir, filter="data")
    [folder] = [p for p in out_dir.iterdir() if p.is_dir() and p.name.startswith("memdiag-capture-")]
    return folder


def captured_folder(tmp: Path, host: str = "web01.example.com", extra: dict[str, str] | None = None) -> Path:
    return collect(host_tree(tmp / "host", host, extra), tmp / "captured")


#: A loose plugin adding one fact source with one fact, ``local.answer``.
GOOD_PLUGIN = '''
    """A site's own fact source, as a loose plugin file."""
    from memdiag.hookspecs import hookimpl
    from memdiag.sources import Source, spec

    __version__ = "1.2.3"


    class Answer(Source):
        name = "{name}"
        facts = (spec("{name}.answer", "count", "The answer."),)

        def collect(self, ev, out):
            out.set("{name}.answer", 42, "computed")


    @hookimpl
    def memdiag_fact_sources(register):
        register(Answer())
'''


def good_plugin(folder: Path, name: str) -> Path:
    return write(folder / f"{name}.py", GOOD_PLUGIN.replace("{name}", name))


def facts_of(doc: dict) -> dict:
    return doc.get("facts") or {}


def rule_states(doc: dict) -> dict[str, dict]:
    return {r["id"]: r for r in doc["rules"]}


def finding(doc: dict, rule_id: str) -> dict | None:
    return next((f for f in doc["findings"] if f["rule_id"] == rule_id), None)


def validate_document(doc: dict) -> None:
    """The findings document against schemas/findings.schema.json."""
    import jsonschema

    schema = json.loads((REPO / "schemas" / "findings.schema.json").read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(doc)
