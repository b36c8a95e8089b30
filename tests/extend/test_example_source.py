"""The example plugin's fact source and sink in-process, as docs/plugins.md shows a plugin
author testing theirs: good counters, malformed lines, an agent that is not installed."""

from __future__ import annotations

import json

import pytest

from memdiag.bounded import Deadline
from memdiag.delivery.sink import Context
from memdiag.evidence import Evidence
from memdiag.sources import collect

from .helpers import EXAMPLE, write

STATS = "run/example-agent/memory.stats"


@pytest.fixture
def example(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    from memdiag_example import sink, source

    return source, sink


def facts_from(source_mod, root):
    return collect([source_mod.ExampleAgentSource()], Evidence(str(root), kind="folder"), deadline=Deadline(5))


def test_counters_become_facts(example, tmp_path):
    source, _ = example
    write(tmp_path / STATS, "# c\nversion 2.3.1\npool_pinned_kb 4718592\npool_limit_kb 5242880\npool_clients 12\n")
    facts = facts_from(source, tmp_path)
    assert facts.get("example_agent.pool_bytes") == 4718592 * 1024
    assert facts.get("example_agent.pool_limit_bytes") == 5242880 * 1024
    assert facts.get("example_agent.clients") == 12 and facts.get("example_agent.version") == "2.3.1"
    assert facts.origin("example_agent.pool_bytes") == str(tmp_path / STATS)
    assert facts.problems == []


def test_malformed_lines_are_problems_and_the_rest_is_read(example, tmp_path):
    source, _ = example
    write(tmp_path / STATS, "pool_pinned_kb lots\npool_limit_kb -5\njunk\npool_clients 3\n")
    facts = facts_from(source, tmp_path)
    assert "example_agent.pool_bytes" not in facts and "example_agent.pool_limit_bytes" not in facts
    assert facts.get("example_agent.clients") == 3
    messages = sorted(p.message for p in facts.problems)
    assert messages == ["line 3: expected 'key value', got 'junk'", "pool_limit_kb: negative (-5)",
                        "pool_pinned_kb: not a whole number: 'lots'"]
    assert {p.kind for p in facts.problems} == {"malformed"}


def test_not_installed_means_unknown_not_zero(example, tmp_path):
    source, _ = example
    facts = facts_from(source, tmp_path)
    assert not [n for n in facts.facts if n.startswith("example_agent.")] and facts.problems == []


def test_sink_options_and_dry_run(example, tmp_path):
    _, sink = example
    with pytest.raises(ValueError, match="'queue_dir' is required"):
        sink.TicketQueueSink("t", {})
    with pytest.raises(ValueError, match="option 'project'"):
        sink.TicketQueueSink("t", {"queue_dir": str(tmp_path), "project": "lower"})
    s = sink.TicketQueueSink("t", {"queue_dir": str(tmp_path / "q")})
    shown: list[str] = []
    ctx = Context(sink_name="t", action="trigger", host="h", http=None, deadline=Deadline(5), dry_run=True,
                  show=shown.append)
    finding = {"rule_id": "r", "title": "T", "severity": "warning", "confidence": "likely", "message": "m",
               "fingerprint": "0123456789abcdef", "host": "h", "time": "2026-01-01T00:00:00Z", "tags": [],
               "evidence": [], "remediation": {"steps": "s"}, "references": []}
    assert s.deliver("trigger", finding, ctx) == "EX-1"
    assert not (tmp_path / "q").exists()  # a dry run writes nothing
    assert shown and json.loads(shown[0].split("\n", 1)[1])["fingerprint"] == "0123456789abcdef"
    ctx.dry_run = False
    assert s.deliver("trigger", finding, ctx) == "EX-1"
    ctx.remote_id = None
    assert s.deliver("trigger", finding, ctx) == "EX-1"  # found by fingerprint, not created twice
