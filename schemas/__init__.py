"""JSON Schemas for rule files, configuration and the findings document."""

from __future__ import annotations

import json
import os


def load(name: str) -> dict:
    """The schema ``NAME.schema.json`` shipped here: ``rule``, ``overrides``, ``config`` or ``findings``."""
    with open(os.path.join(os.path.dirname(__file__), f"{name}.schema.json"), encoding="utf-8") as f:
        return json.load(f)
