"""The public API, pinned: names, signatures and fields. A change here breaks embedding
programs; if it is meant, change the pin, docs/api.md and the version together."""

from __future__ import annotations

import dataclasses
import inspect
import json
import subprocess
import sys

import memdiag
from testkit import REPO

PUBLIC = [
    "Confidence", "DeliveryError", "DeliveryResult", "Facts", "Finding", "FindingEvidence", "InputError",
    "InputInfo", "MemdiagError", "Plugins", "Problem", "Reference", "Remediation", "Report", "RuleError",
    "RuleOutcome", "RuleState", "Severity", "SinkOutcome", "Suppression", "UsageError", "Verdict",
    "VerdictSeverity", "__version__", "deliver", "diagnose",
]

SIGNATURES = {
    "diagnose": "(source: 'PathLike' = '/', *, text: 'str | None' = None, live: 'bool | None' = None, "
                "rules: 'Sequence[PathLike]' = (), params: 'Mapping[str, Mapping[str, Any]] | None' = None, "
                "overrides: 'PathLike | None' = None, timeout: 'float' = 20.0, plugins: 'Plugins | None' = None)"
                " -> 'Report'",
    "deliver": "(report: 'Report', *, sinks: 'Sequence[str] | None' = None, config: 'PathLike | None' = None, "
               "dry_run: 'bool' = False) -> 'DeliveryResult'",
    "Report.render": "(self, format_name: 'str', *, color: 'bool' = False, width: 'int' = 80) -> 'str'",
    "Report.to_text": "(self, *, width: 'int' = 80, color: 'bool' = False) -> 'str'",
    "Report.to_json": "(self) -> 'str'",
    "Report.to_markdown": "(self) -> 'str'",
    "Report.from_document": "(document: 'Mapping[str, Any]', *, plugins: 'Plugins | None' = None) -> 'Report'",
    "Facts.origin": "(self, name: 'str') -> 'str | None'",
}

FIELDS = {
    "Finding": ["rule_id", "title", "severity", "confidence", "message", "fingerprint", "host", "time", "tags",
                "evidence", "remediation", "references", "partial", "suppressed"],
    "FindingEvidence": ["fact", "display", "value", "unit", "origin", "doc"],
    "Remediation": ["steps", "confirm"],
    "Reference": ["url", "title"],
    "Suppression": ["reason", "by"],
    "Verdict": ["severity", "summary", "rule_id"],
    "RuleOutcome": ["id", "state", "reason", "missing"],
    "Problem": ["source", "message", "kind", "path"],
    "InputInfo": ["kind", "label", "captured_at"],
    "Plugins": ["blocked", "dirs", "extra", "allow", "entry_points", "strict"],
    "DeliveryResult": ["exit_code", "messages", "sinks", "dry_run_output"],
    "SinkOutcome": ["name", "sent", "failed", "left", "timed_out"],
}

REPORT_MEMBERS = ["accounting", "document", "exit_code", "facts", "findings", "from_document", "host", "input", "notes",
                  "problems", "render", "rules", "time", "to_json", "to_markdown", "to_text", "verdict"]


def test_public_names():
    assert sorted(memdiag.__all__) == PUBLIC
    for name in memdiag.__all__:
        assert getattr(memdiag, name) is not None
    assert set(PUBLIC) <= set(dir(memdiag))


def test_signatures():
    for dotted, expected in SIGNATURES.items():
        obj = memdiag
        for part in dotted.split("."):
            obj = getattr(obj, part)
        assert str(inspect.signature(obj)) == expected, dotted


def test_fields():
    for name, expected in FIELDS.items():
        cls = getattr(memdiag, name)
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, name
        assert [f.name for f in dataclasses.fields(cls)] == expected, name
    assert [n for n in dir(memdiag.Report) if not n.startswith("_")] == REPORT_MEMBERS


def test_finding_mirrors_the_findings_schema():
    schema = json.loads((REPO / "schemas" / "findings.schema.json").read_text())
    assert set(FIELDS["Finding"]) == set(schema["$defs"]["finding"]["properties"])
    evidence = schema["$defs"]["finding"]["properties"]["evidence"]["items"]["properties"]
    assert set(FIELDS["FindingEvidence"]) == set(evidence)
    assert set(FIELDS["Verdict"]) == set(schema["properties"]["verdict"]["properties"])
    assert set(FIELDS["InputInfo"]) == set(schema["properties"]["input"]["properties"])
    assert set(FIELDS["RuleOutcome"]) == set(schema["properties"]["rules"]["items"]["properties"])
    assert set(FIELDS["Problem"]) == set(schema["properties"]["problems"]["items"]["properties"])


def test_errors_keep_their_exit_codes():
    assert issubclass(memdiag.InputError, memdiag.MemdiagError)
    assert issubclass(memdiag.UsageError, memdiag.MemdiagError)
    assert (memdiag.MemdiagError("x").exit_code, memdiag.RuleError("x").exit_code,
            memdiag.DeliveryError("x").exit_code) == (3, 4, 5)


def test_import_memdiag_loads_nothing_else():
    """The public names are loaded on first use: ``import memdiag`` (and so the command line's
    start-up) pays for none of them."""
    code = ("import sys, memdiag; print(sorted(m for m in sys.modules if m.startswith('memdiag')));"
            "memdiag.Report; print('memdiag.api' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "['memdiag']" and out[1] == "True"
    code = "import sys; from memdiag.cli import main; print('memdiag.api' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_unknown_names_are_attribute_errors():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'pipeline_internal'"):
        memdiag.pipeline_internal  # noqa: B018


def test_one_list_of_public_names():
    from memdiag import api

    assert sorted(api.__all__) == sorted(set(memdiag.__all__) - {"__version__"})
    init = (REPO / "memdiag" / "__init__.py").read_text()
    checked = init.split("if TYPE_CHECKING:")[1].split("def __getattr__")[0]
    assert sorted(n.strip(" ,") for n in checked.split("(")[1].split(")")[0].split()) == sorted(api.__all__)
