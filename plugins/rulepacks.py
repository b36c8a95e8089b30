"""The bundled rule packs (the rules/ folder), registered like any plugin's rule pack."""

from __future__ import annotations

import os

from memdiag.hookspecs import hookimpl


@hookimpl
def memdiag_rule_packs(register):
    import memdiag.rules

    register(os.path.dirname(memdiag.rules.__file__))
