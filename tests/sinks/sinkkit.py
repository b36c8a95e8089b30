"""Helpers for the sink tests: hand-built findings documents and the fast delivery settings.
(Imported by name from test modules; a module named conftest would be ambiguous.)"""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def need_peer(what: str, why: str) -> None:
    """Skip, or fail under CI, when a real peer is missing."""
    message = f"{what} is missing: {why}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must provide it: scripts/test installs it)")
    pytest.skip(message)


# -- findings documents, built by hand as schemas/findings.schema.json describes ------------

def fingerprint(rule_id: str, host: str, *discriminators: str) -> str:
    return hashlib.sha256("|".join((rule_id, host, *discriminators)).encode()).hexdigest()[:16]


def make_finding(rule_id: str = "vmware-balloon", *, host: str = "web1", severity: str = "warning",
                 confidence: str = "suspected", tags=("balloon", "vmware"), unaccounted: int = 5_250_000_000,
                 discriminators: tuple[str, ...] = (), suppressed: dict | None = None) -> dict:
    gib = unaccounted / 2**30
    f = {
        "rule_id": rule_id,
        "title": f"{rule_id.replace('-', ' ').capitalize()} is holding memory",
        "severity": severity,
        "confidence": confidence,
        "message": f"The {rule_id} condition is {confidence}: {gib:.2f} GiB that no meminfo field accounts for.",
        "fingerprint": fingerprint(rule_id, host, *discriminators),
        "host": host,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tags": list(tags),
        "evidence": [
            {"fact": "accounting.unaccounted_bytes", "value": unaccounted, "display": f"{gib:.2f} GiB",
             "unit": "bytes", "origin": "proc/meminfo"},
            {"fact": "platform.hypervisor", "value": "vmware", "display": "vmware"},
        ],
        "remediation": {"steps": "Ask the vSphere admin about the balloon target for this VM.",
                        "confirm": "sudo cat /sys/kernel/debug/vmmemctl"},
        "references": [{"title": "vmw_balloon", "url": "https://www.kernel.org/doc/html/latest/"}],
    }
    if suppressed is not None:
        f["suppressed"] = suppressed
    return f


def make_doc(findings: list[dict], *, host: str = "web1", rules: dict[str, str] | None = None) -> dict:
    """A findings document; ``rules`` maps rule id -> state for rules that did not fire."""
    states = {f["rule_id"]: "fired" for f in findings}
    for rid, st in (rules or {}).items():
        states.setdefault(rid, st)
    worst = max((f["severity"] for f in findings), key=["info", "warning", "critical"].index, default="ok")
    doc = {
        "schema_version": 1,
        "tool": {"name": "memdiag", "version": "0.1.0"},
        "host": host,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "input": {"kind": "live", "label": "this host", "captured_at": None},
        "verdict": {"severity": worst, "summary": f"{len(findings)} finding(s)",
                    "rule_id": findings[0]["rule_id"] if findings else None},
        "findings": findings,
        "rules": [{"id": rid, "state": st} for rid, st in states.items()],
        "problems": [],
    }
    _validate_doc(doc)
    return doc


_DOC_SCHEMA = None


def _validate_doc(doc: dict) -> None:
    global _DOC_SCHEMA
    import jsonschema

    if _DOC_SCHEMA is None:
        with open(os.path.join(REPO, "schemas", "findings.schema.json"), encoding="utf-8") as f:
            _DOC_SCHEMA = json.load(f)
    jsonschema.validate(doc, _DOC_SCHEMA)


# -- memdiag side -----------------------------------------------------------------------------


FAST = {"deadline": 3, "connect_timeout": 1, "read_timeout": 1, "retries": 2, "backoff": 0.01, "backoff_cap": 0.05}
