"""Built-in sinks and the delivery commands, registered through the same hooks a third party uses.

This module is imported on every memdiag run, so it imports nothing heavy: each sink type's
module (and urllib, smtplib, sqlite3 ...) is imported by its factory, when a configured sink is
actually used.
"""

from __future__ import annotations

from memdiag.hookspecs import hookimpl

#: sink type -> "module:Class" under memdiag.plugins.sinks
TYPES = {
    "alertmanager": "alertmanager:AlertmanagerSink",
    "pagerduty": "pagerduty:PagerDutySink",
    "opsgenie": "opsgenie:OpsgenieSink",
    "webhook": "webhook:WebhookSink",
    "slack": "slack:SlackSink",
    "teams": "teams:TeamsSink",
    "mattermost": "mattermost:MattermostSink",
    "jira": "jira:JiraSink",
    "servicenow": "servicenow:ServiceNowSink",
    "github": "github:GitHubSink",
    "email": "email:EmailSink",
    "journald": "journald:JournaldSink",
    "textfile": "textfile:TextfileSink",
}


class _LazyFactory:
    """``factory(name, options)`` that imports the sink module on first use."""

    def __init__(self, type_name: str, target: str) -> None:
        self.type_name = type_name
        self.target = target

    def __call__(self, name: str, options: dict):
        module, _, cls = self.target.partition(":")
        from memdiag.registry import import_module

        mod = import_module(f"{__name__}.{module}")
        return getattr(mod, cls)(name, options)

    def __repr__(self) -> str:
        return f"<sink type {self.type_name}>"


@hookimpl
def memdiag_sinks(register):
    for type_name, target in TYPES.items():
        register(type_name, _LazyFactory(type_name, target))


def _configure_flush(parser) -> None:
    parser.add_argument("names", nargs="*", metavar="SINK", help="only these sinks (default: all configured)")


def _run_flush(args) -> int:
    from memdiag.delivery.commands import run_flush

    return run_flush(args)


def _configure_sinks(parser) -> None:
    # plain positionals rather than nested subcommands, so global options work anywhere
    parser.add_argument("sinks_action", choices=("status", "test"), metavar="ACTION",
                        help="status: configured sinks, pending and failed deliveries with their last error; "
                             "test NAME: send a clearly marked test event to one sink")
    parser.add_argument("sink_name", nargs="?", metavar="NAME", help="the sink to test")


def _run_sinks(args) -> int:
    from memdiag.delivery.commands import run_sinks

    return run_sinks(args)


@hookimpl
def memdiag_commands(register):
    register("flush", "deliver what earlier runs could not (the outbox)", _configure_flush, _run_flush)
    register("sinks", "show delivery status, or send a test event to a sink", _configure_sinks, _run_sinks)
