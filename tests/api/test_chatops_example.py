"""examples/chatops_handler.py, run against a local HTTP server standing in for the chat's
incoming webhook: a capture in (a path, or the bytes of an uploaded tarball), the Markdown
report posted."""

from __future__ import annotations

import importlib.util
import io
import sys
import tarfile

import pytest

import memdiag
from testkit import REPO, SEED

sys.path.insert(0, str(REPO / "tests" / "sinks"))
from peers import RecordingServer, Reply  # noqa: E402


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("chatops_handler", REPO / "examples" / "chatops_handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def chat():
    server = RecordingServer(lambda request: Reply(200, "ok")).start()
    yield server
    server.stop()


@pytest.fixture
def config(tmp_path, chat, monkeypatch):
    monkeypatch.setenv("CHAT_WEBHOOK_URL", f"{chat.url}/hooks/abc123")
    monkeypatch.setenv("MEMDIAG_STATE_DIR", str(tmp_path / "state"))
    path = tmp_path / "chat.yaml"
    path.write_text("sinks:\n  - name: chat\n    type: chat-report\n    url: ${CHAT_WEBHOOK_URL}\n"
                    "    channel: incidents\n    connect_timeout: 1\n    read_timeout: 2\n")
    return path


def tarball(folder) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname="web1-capture")
    return buf.getvalue()


def test_a_capture_path_is_posted_as_markdown(example, chat, config):
    result = example.ChatOpsHandler(config).handle(str(SEED))
    assert result.ok and result.sinks["chat"].sent == 1, result.messages
    [post] = chat.requests
    assert post.method == "POST" and post.path == "/hooks/abc123"
    body = post.json
    assert body["channel"] == "incidents"
    expected = memdiag.diagnose(SEED).to_markdown()
    # the same report, but for when it ran
    assert body["text"].split("\n")[:2] == expected.split("\n")[:2]
    strip = [line for line in expected.split("\n") if "diagnosed" not in line]
    assert [line for line in body["text"].split("\n") if "diagnosed" not in line] == strip
    assert "vmware-balloon" in body["text"]


def test_uploaded_bytes_and_the_exact_report(example, chat, config):
    handler = example.ChatOpsHandler(config)
    report = handler.diagnose(tarball(SEED), filename="web1.tar.gz")
    assert report.input.kind == "folder" and report.verdict.rule_id == "vmware-balloon"
    result = memdiag.deliver(report, sinks=["chat"], config=config)
    assert result.ok
    assert chat.requests[-1].json["text"] == report.to_markdown()


def test_a_dry_run_posts_nothing_and_masks_the_url(example, chat, config):
    result = example.ChatOpsHandler(config, dry_run=True).handle(str(SEED))
    assert result.ok and not chat.requests
    assert "vmware-balloon" in result.dry_run_output
    assert "abc123" not in result.dry_run_output and "***" in result.dry_run_output


def test_an_unreachable_chat_is_a_delivery_failure_not_a_crash(example, config, chat, monkeypatch):
    chat.stop()
    result = example.ChatOpsHandler(config).handle(str(SEED))
    assert not result.ok and result.exit_code == 5
    assert result.messages and "abc123" not in " ".join(result.messages)


def test_what_cannot_be_diagnosed_is_one_line(example, config):
    with pytest.raises(ValueError, match="cannot diagnose notes.txt: .*no recognised command output"):
        example.ChatOpsHandler(config).handle(b"just some words\n", filename="notes.txt")
