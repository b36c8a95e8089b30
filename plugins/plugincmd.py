"""``memdiag plugins``: which plugins are installed, their versions, the hooks each implements,
what each registered, and why any of them did not load.

By default only third-party plugins (and any built-in that failed) are listed; ``--all`` adds
the built-ins. ``--format json`` prints the same as a list of objects for scripts.
"""

from __future__ import annotations

from memdiag.errors import EXIT_OK, UsageError
from memdiag.hookspecs import hookimpl

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: argparse is not imported by a plain diagnosis
    import argparse

_KINDS = (("sources", "sources"), ("rule_packs", "rule packs"), ("sinks", "sinks"), ("formats", "formats"),
          ("inputs", "inputs"), ("commands", "commands"))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all", action="store_true", help="include the built-in plugins")
    parser.add_argument("--hook", metavar="HOOK",
                        help="only plugins implementing HOOK (memdiag_sinks, or just sinks)")


def _version(info) -> str:
    """The dist-info folder name gives the version cheaply; egg-info folders do not."""
    if info.version or not info.dist:
        return info.version
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version(info.dist)
    except (ImportError, PackageNotFoundError, ValueError):
        return ""


def _selected(reg, args: argparse.Namespace) -> list:
    hook = args.hook
    if hook and not hook.startswith("memdiag_"):
        hook = "memdiag_" + hook
    from memdiag.registry import HOOK_TARGETS

    if hook and hook not in HOOK_TARGETS:
        raise UsageError(f"--hook {args.hook}: no such hook (hooks: {', '.join(HOOK_TARGETS)})")
    out = []
    for info in reg.plugins:
        if info.origin == "builtin" and not args.all and not info.error and not info.skipped:
            continue
        if hook and hook not in info.hooks:
            continue
        out.append(info)
    return out


def _as_json(info) -> dict:
    return {"name": info.name, "version": _version(info), "origin": info.origin, "distribution": info.dist or None,
            "target": info.target, "status": info.status, "hooks": info.hooks, "provides": info.provides,
            "error": info.error or None, "skipped": info.skipped or None,
            "load_ms": round(info.load_seconds * 1000, 2)}


def run(args: argparse.Namespace) -> int:
    from memdiag.cli import load_registry

    reg = load_registry(args)  # the run's own (args.registry), not a second load
    reg.resolve_all()  # built-ins deferred until used: listed as they really are
    if args.format not in ("text", "json"):
        raise UsageError(f"memdiag plugins: --format {args.format}: use text or json")
    chosen = _selected(reg, args)
    if args.format == "json":
        import json

        print(json.dumps([_as_json(i) for i in chosen], indent=2))
        return EXIT_OK
    rows = [("NAME", "VERSION", "ORIGIN", "HOOKS", "STATUS")]
    notes: list[list[str]] = [[]]
    for info in chosen:
        origin = f"entry point ({info.dist})" if info.dist else info.origin
        hooks = ", ".join(h.removeprefix("memdiag_") for h in info.hooks) or "-"
        status = f"failed: {info.error}" if info.error else f"skipped: {info.skipped}" if info.skipped else "loaded"
        rows.append((info.name, _version(info) or "-", origin, hooks, status))
        notes.append([f"{label}: {', '.join(info.provides[k])}" for k, label in _KINDS if info.provides.get(k)])
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row, extra in zip(rows if chosen else (), notes):
        print("  ".join(c.ljust(widths[i]) for i, c in enumerate(row[:4])) + "  " + row[4])
        for line in extra:
            print("    " + line)
    builtins = [i for i in reg.plugins if i.origin == "builtin"]
    third = [i for i in reg.plugins if i.origin != "builtin"]
    if not third:
        print("No third-party plugins installed (entry-point group 'memdiag', --plugins-dir, "
              "/etc/memdiag/plugins.d).")
    if not args.all:
        ok = sum(1 for i in builtins if i.status == "loaded")
        print(f"{ok} built-in plugin(s) loaded; --all lists them.")
    return EXIT_OK


@hookimpl
def memdiag_commands(register):
    register("plugins", "list plugins: versions, hooks, what each registered, load errors", configure, run)
