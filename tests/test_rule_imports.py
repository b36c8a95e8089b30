"""Start-up: once the rule caches are warm, a plain ``memdiag run`` loads its rules without
importing ast, json or typing from the rule modules (memdiag.expr, ruleset, overrides,
rulecmds). Checked on module names in a fresh interpreter (``-X importtime``), never on times.
"""

from __future__ import annotations

import os
import subprocess
import sys

from testkit import REPO

MINE = ("memdiag.expr", "memdiag.expr_analysis", "memdiag.ruleset", "memdiag.rulepacks", "memdiag.overrides",
        "memdiag.rulecmds")
FORBIDDEN = ("ast", "_ast", "json", "typing")

#: Runs ``memdiag run`` in-process, recording every import statement the rule modules execute
#: (``import x`` of a module someone else loaded first never shows in -X importtime).
RUN = f"""
import builtins, sys
MINE, FORBIDDEN = {MINE!r}, {FORBIDDEN!r}
seen = []
real = builtins.__import__
def spy(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {{}}).get("__name__")
    if importer in MINE and name.split(".")[0] in FORBIDDEN:
        seen.append(f"{{importer}} imports {{name}}")
    return real(name, globals, locals, fromlist, level)
builtins.__import__ = spy
from memdiag import cli
code = cli.main(["run", "--no-sinks", "--format", "text"])
print("IMPORTED-BY-RULE-MODULES:", seen, file=sys.stderr)
"""


def _subtrees(stderr: str) -> dict[str, list[str]]:
    """The modules each of MINE imported, from -X importtime's tree (children come before
    their parent, indented deeper)."""
    rows = []
    for line in stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            name = line.rsplit("|", 1)[1]
            rows.append((len(name) - len(name.lstrip()), name.strip()))
    out = {}
    for i, (depth, name) in enumerate(rows):
        if name in MINE:
            below = []
            j = i - 1
            while j >= 0 and rows[j][0] > depth:
                below.append(rows[j][1])
                j -= 1
            out[name] = below
    return out


def test_a_warm_run_imports_no_ast_json_or_typing_from_the_rule_modules(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_STATE_HOME": str(tmp_path / "state")}
    env.pop("MEMDIAG_OVERRIDES", None)
    first = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True, env=env, cwd=str(REPO),
                           timeout=120)
    assert "IMPORTED-BY-RULE-MODULES" in first.stderr, first.stderr  # the cold run: caches filled
    assert list((tmp_path / "cache" / "memdiag" / "rules").glob("set-*.marshal"))
    warm = subprocess.run([sys.executable, "-X", "importtime", "-c", RUN], capture_output=True, text=True,
                          env=env, cwd=str(REPO), timeout=120)
    trees = _subtrees(warm.stderr)
    assert {"memdiag.expr", "memdiag.ruleset"} <= set(trees), warm.stderr[-2000:]  # overrides: only with a site file
    for module, imported in trees.items():
        assert not [m for m in imported if m.split(".")[0] in FORBIDDEN], (module, imported)
    [report] = [line for line in warm.stderr.splitlines() if line.startswith("IMPORTED-BY-RULE-MODULES:")]
    assert report == "IMPORTED-BY-RULE-MODULES: []"
