"""Delivering findings to sinks: configuration, state store, outbox, HTTP, lifecycle.

The CLI calls :func:`deliver` after it has printed the report, so a sink failure can never
change or hide the diagnosis: it comes back as one-line messages and exit code 5
(:data:`memdiag.errors.EXIT_DELIVERY`). Nothing heavy is imported until delivery happens.
"""

from __future__ import annotations

from memdiag.errors import EXIT_DELIVERY, EXIT_OK, MemdiagError
from memdiag.facts import _Record

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: every run imports this module, and typing costs ~3 ms
    from typing import TextIO

    from memdiag.delivery.engine import SinkResult


class DeliveryReport(_Record):
    """What delivery achieved: ``lines`` (one-line messages, without a ``memdiag:`` prefix) go
    to stderr; ``exit_code`` is 0 or 5. Written out, not a dataclass: every run imports this
    module, and building a dataclass (with its imports) costs ~7 ms of start-up."""

    __slots__ = ("exit_code", "lines", "results")
    _FIELDS = __slots__

    def __init__(self, exit_code: int = EXIT_OK, lines: list[str] | None = None,
                 results: dict[str, "SinkResult"] | None = None) -> None:
        self.exit_code = exit_code
        self.lines = [] if lines is None else lines
        self.results = {} if results is None else results

    def fail(self, line: str) -> "DeliveryReport":
        self.lines.append(line)
        self.exit_code = EXIT_DELIVERY
        return self


def find_config(explicit: str | None) -> str | None:
    """``--config``, then ``$MEMDIAG_CONFIG``, then the user's and the system's config file.

    Kept here, on the start-up path of every run, so that a host without a configuration never
    imports the configuration machinery at all."""
    import os

    if explicit:
        return explicit
    env = os.environ.get("MEMDIAG_CONFIG")
    if env:
        return env
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    for candidate in (os.path.join(base, "memdiag", "config.yaml"), "/etc/memdiag/config.yaml"):
        if os.path.isfile(candidate):
            return candidate
    return None


def deliver(document: dict, *, registry, config_path: str | None, only: list[str] | None,
            dry_run: bool, stream: TextIO | None) -> DeliveryReport:
    """Deliver ``document``'s findings to the configured sinks (``only``: those named by --sink).

    Undelivered events of earlier runs go first. ``dry_run`` prints to ``stream`` exactly what
    each sink would send (secrets masked) and changes nothing, locally or remotely."""
    return _run(document, registry=registry, config_path=config_path, only=only, dry_run=dry_run,
                stream=stream, include_failed=False)


def flush(*, registry, config_path: str | None, only: list[str] | None = None, dry_run: bool = False,
          stream: TextIO | None = None) -> DeliveryReport:
    """Deliver the outbox (pending and failed events) without a new diagnosis."""
    return _run(None, registry=registry, config_path=config_path, only=only, dry_run=dry_run,
                stream=stream, include_failed=True)


def _run(document: dict | None, *, registry, config_path, only, dry_run, stream, include_failed) -> DeliveryReport:
    from memdiag.bounded import Deadline
    from memdiag.delivery import engine
    from memdiag.delivery.config import load_config
    from memdiag.delivery.state import Store, state_dir

    report = DeliveryReport()
    if not config_path:
        if only:
            report.fail("--sink needs a configuration file (--config FILE, $MEMDIAG_CONFIG, "
                        "~/.config/memdiag/config.yaml or /etc/memdiag/config.yaml)")
        return report
    try:
        cfg = load_config(config_path)
    except MemdiagError as exc:
        return report.fail(f"{exc}; findings not delivered")
    overall = Deadline(cfg.deadline)
    problems: list[str] = []
    runtimes = engine.build(cfg, registry, only, problems)
    for p in problems:
        report.fail(p)
    if not runtimes:
        return report
    directory = state_dir(cfg.state_dir)
    show = engine.show_to(stream)
    try:
        store = Store.scratch_copy(directory) if dry_run else Store.open(directory, lock_timeout=min(10.0, cfg.deadline))
    except MemdiagError as exc:
        return report.fail(f"{exc}; findings not delivered")
    try:
        if document is not None:
            for rt in runtimes:
                engine.plan(store, rt, document)
        results = engine.deliver_due(store, runtimes, cfg, overall=overall, include_failed=include_failed,
                                     dry_run=dry_run, show=show, document=document,
                                     success_so_far=not problems)
    except Exception as exc:  # the store itself failed (disk full, read-only): say so, never crash
        return report.fail(cfg.redactor.redact(f"delivery stopped: {type(exc).__name__}: {exc}"))
    finally:
        store.close()
    report.results = results
    by_name = {rt.name: rt for rt in runtimes}
    for name, res in results.items():
        if res.failed:
            report.fail(engine.describe_failure(by_name[name], res, kept=not dry_run))
    if not dry_run and document is not None:
        lingering = sum(r.left for r in results.values() if not r.failed)
        if lingering:
            report.lines.append(f"{lingering} earlier delivery(ies) failed for good and wait in the "
                                "outbox; see `memdiag sinks status`, then `memdiag flush`")
    return report
