"""json - the findings document as versioned JSON (schemas/findings.schema.json)."""

from __future__ import annotations

from memdiag.hookspecs import hookimpl


def render(document: dict, options: dict) -> str:
    import json

    return json.dumps(document, indent=2, ensure_ascii=False)


@hookimpl
def memdiag_report_formats(register):
    register("json", render)
