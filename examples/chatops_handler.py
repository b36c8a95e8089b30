"""A minimal chat-ops handler built on memdiag's Python API (docs/api.md).

Someone drops a host's capture into the chat (``memdiag collect`` output, a sosreport, or a
file of pasted command output); the bot diagnoses it and posts the Markdown report back to the
channel through a sink, with memdiag's delivery machinery (secrets masked, deadlines, retries):

    handler = ChatOpsHandler(config="/etc/chatops/memdiag.yaml")
    result = handler.handle(upload_bytes, filename="web1.tar.gz")   # or handle(path)

The sink is a small plugin of this program's own, handed to memdiag with
``memdiag.Plugins(extra=[...])``: a *snapshot* sink that posts the whole report, Markdown as
Mattermost and Slack incoming webhooks take it (``{"text": ...}``). The configuration file
names it like any sink:

    sinks:
      - name: chat
        type: chat-report
        url: ${CHAT_WEBHOOK_URL}       # a webhook URL is a secret: from the environment
        channel: incidents             # optional

Run it by hand: ``python examples/chatops_handler.py CAPTURE --config chat.yaml [--dry-run]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Any

import memdiag
from memdiag.hookspecs import hookimpl

#: Mattermost's post limit is 16383 characters (Slack's is larger); longer reports are cut.
POST_LIMIT = 16000


class ChatReportSink:
    """Posts the Markdown report of each diagnosis to an incoming webhook."""

    style = "snapshot"  # handed the whole document every run, rather than per-finding events
    secret_options = ("url",)

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        self.name = name
        self.url = options.get("url")
        if not isinstance(self.url, str) or not self.url:
            raise ValueError("option 'url' is required")
        self.channel = options.get("channel")

    def deliver(self, action: str, finding: dict | None, ctx: Any) -> None:
        if ctx.document is None:
            return None
        text = memdiag.Report.from_document(ctx.document).to_markdown()
        if len(text) > POST_LIMIT:
            text = text[:POST_LIMIT] + "\n\n… (report cut; ask for the JSON report for everything)"
        body: dict[str, Any] = {"text": text}
        if self.channel:
            body["channel"] = self.channel
        ctx.http.request("POST", self.url, json=body)
        return None


class ChatOpsPlugin:
    """This program's memdiag plugin: adds the ``chat-report`` sink type."""

    __name__ = "chatops"

    @hookimpl
    def memdiag_sinks(self, register: Any) -> None:
        register("chat-report", ChatReportSink)


PLUGINS = memdiag.Plugins(extra=[ChatOpsPlugin()])


class ChatOpsHandler:
    """Diagnoses what it is handed and posts the report to the configured ``sink``."""

    def __init__(self, config: str | os.PathLike[str], sink: str = "chat", *, dry_run: bool = False) -> None:
        self.config = config
        self.sink = sink
        self.dry_run = dry_run

    def diagnose(self, capture: str | os.PathLike[str] | bytes, filename: str = "upload") -> memdiag.Report:
        """A capture as a path, or as the bytes of an uploaded file (kept in a private folder
        only while it is read)."""
        if not isinstance(capture, bytes):
            return memdiag.diagnose(capture, plugins=PLUGINS)
        with tempfile.TemporaryDirectory(prefix="chatops-") as folder:
            path = os.path.join(folder, os.path.basename(filename) or "upload")
            with open(path, "wb") as f:
                f.write(capture)
            return memdiag.diagnose(path, plugins=PLUGINS)

    def handle(self, capture: str | os.PathLike[str] | bytes, filename: str = "upload") -> memdiag.DeliveryResult:
        try:
            report = self.diagnose(capture, filename)
        except memdiag.InputError as exc:  # tell the channel, in one line, what was wrong
            raise ValueError(f"cannot diagnose {filename}: {exc}") from None
        return memdiag.deliver(report, sinks=[self.sink], config=self.config, dry_run=self.dry_run)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Diagnose a capture and post the report to chat.")
    ap.add_argument("capture")
    ap.add_argument("--config", required=True)
    ap.add_argument("--sink", default="chat")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    result = ChatOpsHandler(args.config, args.sink, dry_run=args.dry_run).handle(args.capture, args.capture)
    sys.stdout.write(result.dry_run_output)
    for line in result.messages:
        print(f"chatops: {line}", file=sys.stderr)
    return result.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
