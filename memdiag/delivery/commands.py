"""``memdiag flush`` and ``memdiag sinks status|test NAME`` (registered by the sinks plugin)."""

from __future__ import annotations

import os
import socket
import sqlite3
import sys

from memdiag.errors import EXIT_DELIVERY, EXIT_OK, EXIT_UNKNOWN, MemdiagError

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    from argparse import Namespace


def _registry(args: Namespace):
    """The plugins, loaded as the CLI loads them (its load errors were already printed)."""
    from memdiag import registry

    dirs = list(getattr(args, "plugins_dir", None) or [])
    if os.path.isdir(registry.PLUGINS_DIR):
        dirs.append(registry.PLUGINS_DIR)
    allow_env = os.environ.get("MEMDIAG_PLUGINS")
    allow = None if allow_env is None else {n.strip() for n in allow_env.split(",") if n.strip()}
    blocked = {f[3:] for f in getattr(args, "plugin_flags", None) or [] if f.startswith("no:")}
    return registry.load(plugins_dirs=dirs, blocked=blocked, allow=allow)


def _config_path(args: Namespace) -> str | None:
    from memdiag.delivery import find_config

    return find_config(getattr(args, "config", None))


def run_flush(args: Namespace) -> int:
    from memdiag.delivery import flush

    path = _config_path(args)
    if not path:
        print("memdiag: flush: no configuration file (--config FILE, $MEMDIAG_CONFIG, "
              "~/.config/memdiag/config.yaml or /etc/memdiag/config.yaml)", file=sys.stderr)
        return EXIT_UNKNOWN
    report = flush(registry=_registry(args), config_path=path, only=getattr(args, "names", None) or None,
                   dry_run=bool(getattr(args, "dry_run", False)), stream=sys.stdout)
    for line in report.lines:
        print(f"memdiag: {line}", file=sys.stderr)
    sent = sum(r.sent for r in report.results.values())
    left = sum(r.left for r in report.results.values())
    if not getattr(args, "dry_run", False):
        print(f"memdiag: flush: {sent} event(s) delivered, {left} left in the outbox", file=sys.stderr)
    return report.exit_code


def run_sinks(args: Namespace) -> int:
    action = getattr(args, "sinks_action", None)
    if action == "test":
        return _test(args)
    return _status(args)


def _test(args: Namespace) -> int:
    from memdiag.delivery import engine
    from memdiag.delivery.config import load_config

    if not getattr(args, "sink_name", None):
        print("memdiag: sinks test: name the sink to test (memdiag sinks test NAME)", file=sys.stderr)
        return EXIT_UNKNOWN

    path = _config_path(args)
    if not path:
        print("memdiag: sinks test: no configuration file", file=sys.stderr)
        return EXIT_UNKNOWN
    try:
        cfg = load_config(path)
    except MemdiagError as exc:
        print(f"memdiag: {exc}", file=sys.stderr)
        return exc.exit_code
    problems: list[str] = []
    runtimes = engine.build(cfg, _registry(args), [args.sink_name], problems)
    for p in problems:
        print(f"memdiag: {p}", file=sys.stderr)
    if not runtimes:
        return EXIT_UNKNOWN
    rt = runtimes[0]
    dry = bool(getattr(args, "dry_run", False))
    res = engine.send_test(rt, cfg, socket.gethostname(), dry_run=dry, show=engine.show_to(sys.stdout))
    if res.failed:
        print("memdiag: " + engine.describe_failure(rt, res, kept=False), file=sys.stderr)
        return EXIT_DELIVERY
    if not dry:
        print(f"memdiag: sent a test event to {rt.name} ({rt.entry.type})", file=sys.stderr)
    return EXIT_OK


def _status(args: Namespace) -> int:
    from memdiag.delivery import outbox
    from memdiag.delivery.config import load_config
    from memdiag.delivery.state import DB_NAME, Store, state_dir

    path = _config_path(args)
    cfg = None
    if path:
        try:
            cfg = load_config(path)
        except MemdiagError as exc:
            print(f"memdiag: {exc}", file=sys.stderr)
    directory = state_dir(cfg.state_dir if cfg else None)
    db = os.path.join(directory, DB_NAME)
    print(f"Configuration: {path or '(none found)'}")
    print(f"State store:   {db}")
    rows, events = [], []
    if os.path.exists(db):
        try:
            store = Store.scratch_copy(directory)
            rows, events = store.all_rows(), outbox.all_events(store)
            store.close()
        except sqlite3.Error as exc:
            print(f"memdiag: {db}: cannot read the state store: {exc}", file=sys.stderr)
            return EXIT_UNKNOWN
    names = [s.name for s in cfg.sinks] if cfg else []
    names += sorted(({r.sink for r in rows} | {e.sink for e in events}) - set(names))
    types = {s.name: s.type + ("" if s.enabled else " (disabled)") for s in cfg.sinks} if cfg else {}
    table = [("SINK", "TYPE", "OPEN", "PENDING", "FAILED", "LAST ERROR")]
    for n in names:
        mine = [e for e in events if e.sink == n]
        errors = [e.last_error for e in mine if e.last_error]
        table.append((n, types.get(n, "(not configured)"),
                      str(sum(1 for r in rows if r.sink == n and r.status == "firing")),
                      str(sum(1 for e in mine if e.status == "pending")),
                      str(sum(1 for e in mine if e.status == "failed")),
                      (errors[-1] if errors else "")[:100]))
    print()
    if len(table) == 1:
        print("No sinks configured and nothing delivered yet.")
    else:
        widths = [max(len(r[i]) for r in table) for i in range(5)]
        for r in table:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[5])
    if events:
        print("\nUndelivered events (oldest first):")
        for e in sorted(events, key=lambda e: e.id):
            print(f"  #{e.id} {e.sink} {e.action} {e.finding.get('rule_id', '?')} [{e.fingerprint}] "
                  f"{e.status}, {e.attempts} attempt(s), queued {e.enqueued_at}"
                  + (f"\n      last error: {e.last_error}" if e.last_error else ""))
    return EXIT_DELIVERY if events else EXIT_OK
