"""Run one delivery in a child process and kill it (os._exit, no cleanup) at a chosen point,
as a power cut or OOM kill would: ``after-send`` (the far end acted, the state store never
heard) or ``before-send`` (events queued durably, nothing sent yet).

usage: python crash_driver.py POINT DOCUMENT.json CONFIG.yaml
"""

from __future__ import annotations

import json
import os
import sys

from memdiag.delivery import deliver, engine, outbox
from memdiag.plugins import sinks
from memdiag.registry import Registry


def main() -> None:
    point, doc_path, cfg = sys.argv[1:4]
    if point == "after-send":
        outbox.delivered = lambda store, event: os._exit(137)
    elif point == "before-send":
        engine._run_phase = lambda *a, **k: os._exit(137)
    else:
        raise SystemExit(f"unknown crash point {point}")
    reg = Registry()
    sinks.memdiag_sinks(register=lambda name, factory: reg.sinks.__setitem__(name, factory))
    with open(doc_path, encoding="utf-8") as f:
        doc = json.load(f)
    deliver(doc, registry=reg, config_path=cfg, only=None, dry_run=False, stream=None)
    os._exit(0)  # the crash point was never reached


if __name__ == "__main__":
    main()
