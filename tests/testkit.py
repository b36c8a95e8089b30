"""Helpers shared by memdiag's tests (imported by name: keep this module name unique)."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEED = REPO.parent / "shared" / "seed-case"


def validate_document(doc: dict) -> None:
    """Assert ``doc`` is a valid findings document."""
    import jsonschema

    schema = json.loads((REPO / "schemas" / "findings.schema.json").read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(doc)
