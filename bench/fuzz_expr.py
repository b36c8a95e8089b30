"""Fuzz the rule expression language and message templates with 100,000+ generated inputs.

Every input is compiled (compile_expr or compile_template) and, when it compiles, evaluated or
rendered against a randomly built fact environment. The only acceptable outcomes are a value,
UNKNOWN, ExprError (compile time) and EvalError (run time); anything else is an unhandled
exception and makes the script exit 1. It also prints the slowest single input (the language
has no loops, so nothing may run long) and the cost of a typical condition.

    .venv/bin/python bench/fuzz_expr.py [--n 100000] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import timeit
import traceback
from collections import Counter

from memdiag.expr import (
    FILTERS, FUNCTIONS, UNKNOWN, EvalError, ExprError, MappingEnv, compile_expr, compile_template,
)

NAMES = ["a", "b.c", "m", "l", "s", "n", "x.y.z", "missing.fact", "params.min_ratio", "d.k", "d",
         "meminfo.MemTotal", "processes.top", "__class__", "a.__dict__", "_private"]
OPS = ["+", "-", "*", "/", "//", "%", "==", "!=", "<", "<=", ">", ">=", "in", "not in", "and",
       "or"]
REFUSED_OPS = ["**", "|", "&", "^", "<<", "is", "is not", "@"]
REFUSED = ["(lambda: 1)", "[i for i in l]", "{1: 2}", "{1, 2}", "(1, 2)", "f'{a}'", "(a := 1)",
           "().__class__", "''.join(l)", "a.lower()", "__import__('os')", "getattr(a, 'b')",
           "(yield a)", "b'x'", "1j", "...", "~a", "x[1, 2]", "max(*l)", "len(a=1)", "min"]
TOKENS = ["a", "b.c", "1", "0", "-1", "2.5", "1e999", "'x'", '"3.10.0"', "true", "none", "(", ")",
          "[", "]", "{", "}", ",", ":", ".", "+", "-", "*", "/", "//", "%", "**", "==", "<", ">=",
          "in", "not", "and", "or", "if", "else", "is", "lambda", "for", "min", "has", "version",
          "coalesce", "__class__", "|", "!r", "\n", " ", "#", "'", '"', "\\", "f'", "=", ":=",
          "\x00", "\ud800", "é", "\t", "\r", "{{", "}}"]
PIECES = "abcxyz019._()[]{}'\"+-*/%<>=!|&^~@#:,; \n\t\\\x00é\u2028"

# Large values are built once and shared: the fuzzer should exercise the bounds, not the heap.
BIG_STR = "v" * 40000
BIG_LIST = list(range(40000))
SCALARS = [0, 1, -1, 3, 2**64, 2**255, 10**400, -(2**300), 0.5, -2.5, 1e308, float("inf"),
           float("nan"), -0.0, True, False, None, "", "vmware", "3.10.0-693.el7.x86_64", "4.4",
           "ü", "x" * 100, BIG_STR]


class Gen:
    """Random inputs, from well-formed expressions to mutated and arbitrary text."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def value(self, depth: int = 0) -> object:
        r = self.rng.random()
        if depth < 2 and r < 0.15:
            return [self.value(depth + 1) for _ in range(self.rng.randint(0, 5))]
        if depth < 2 and r < 0.25:
            return {self.rng.choice(["k", "comm", "rss", "current", "__class__", ""]):
                    self.value(depth + 1) for _ in range(self.rng.randint(0, 4))}
        if r < 0.27:
            return BIG_LIST
        if r < 0.30:
            return (3, 10, 0)
        return self.rng.choice(SCALARS)

    def env(self) -> MappingEnv:
        rng = self.rng
        values = {name: self.value() for name in NAMES if rng.random() < 0.6}
        previous = ({name: self.value() for name in NAMES if rng.random() < 0.5}
                    if rng.random() < 0.7 else None)
        hours = rng.choice([None, 0, 0.0, 1, 2.5, -1, float("nan"), float("inf"), "x"])
        return MappingEnv(values, previous, hours)

    def atom(self) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.35:
            return rng.choice(NAMES)
        if r < 0.55:
            return str(rng.choice([0, 1, 2, 3, -7, 10**6, 2**255, 2**256, 4294967296]))
        if r < 0.65:
            return repr(rng.choice([0.25, 0.5, 1e999, 1e-300, 3.5]))
        if r < 0.8:
            return repr(rng.choice(["", "vmware", "}", "{", "a|b", "3.10", "%s", "{0.__class__}",
                                    "x" * rng.randint(0, 30)]))
        if r < 0.96:
            return rng.choice(["true", "false", "none", "True", "NONE", "[]", "elapsed_hours()"])
        return rng.choice(REFUSED)

    def expr(self, depth: int = 0) -> str:
        rng = self.rng
        if depth > rng.randint(1, 7) or rng.random() < 0.2:
            return self.atom()
        kind = rng.randrange(10)
        sub = lambda: self.expr(depth + 1)  # noqa: E731
        if kind < 3:
            op = rng.choice(REFUSED_OPS if rng.random() < 0.05 else OPS)
            return f"({sub()} {op} {sub()})"
        if kind == 3:
            return f"{rng.choice(['not ', '-', '+', 'not ', '-', '~'])}{sub()}"
        if kind == 4:
            return f"({sub()} if {sub()} else {sub()})"
        if kind == 5:
            return "[" + ", ".join(sub() for _ in range(rng.randint(0, 4))) + "]"
        if kind == 6:
            if rng.random() < 0.5:
                return f"{sub()}[{sub()}]"
            return f"{sub()}[{sub()}:{sub()}:{rng.choice(['', '0', '1', '-1'])}]"
        if kind == 7:
            name = rng.choice(sorted(FUNCTIONS) + ["mx", "eval"])
            return f"{name}({', '.join(sub() for _ in range(rng.randint(0, 3)))})"
        if kind == 8:
            return f"{sub()} < {sub()} <= {sub()}"
        # deep or wide shapes that press against the bounds
        shape = rng.randrange(5)
        n = rng.randint(10, 900)
        if shape == 0:
            return "-" * n + "1"
        if shape == 1:
            return " * ".join(["4294967296"] * rng.randint(2, 12))
        if shape == 2:
            return "(" * n + "1" + ")" * n
        if shape == 3:
            return "[" + ", ".join(["a"] * n) + "]"
        return "(s + s)" if rng.random() < 0.5 else "((s + s) + (s + s))"

    def mutate(self, text: str) -> str:
        rng = self.rng
        chars = list(text)
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(4)
            i = rng.randint(0, len(chars))
            if op == 0 or not chars:
                chars.insert(i, rng.choice(PIECES))
            elif op == 1:
                del chars[min(i, len(chars) - 1)]
            elif op == 2:
                j = rng.randint(0, len(chars))
                chars[i:i] = chars[min(i, j):max(i, j)][:50]
            else:
                chars.insert(i, rng.choice(TOKENS))
        return "".join(chars)

    def soup(self) -> str:
        rng = self.rng
        return rng.choice(["", " "]).join(rng.choice(TOKENS) for _ in range(rng.randint(0, 30)))

    def noise(self) -> str:
        rng = self.rng
        return "".join(chr(rng.choice([rng.randint(0, 127), rng.randint(0, 0x10FFFF)]))
                       for _ in range(rng.randint(0, 60)))

    def template(self) -> str:
        rng = self.rng
        parts = []
        for _ in range(rng.randint(0, 4)):
            parts.append(rng.choice(["The balloon holds ", " (", "{{", "}}", "\n", "", "% "]))
            flt = rng.choice([None, None, *FILTERS, "byts", ""])
            parts.append("{" + self.expr(3) + (f"|{flt}" if flt is not None else "") + "}")
        return "".join(parts)

    def case(self) -> tuple[str, str]:
        """(kind, text): kind names the generator and whether it is a template."""
        r = self.rng.random()
        if r < 0.40:
            return "expr", self.expr()
        if r < 0.55:
            return "expr-mutated", self.mutate(self.expr())
        if r < 0.65:
            return "expr-soup", self.soup()
        if r < 0.70:
            return "expr-noise", self.noise()
        if r < 0.85:
            return "template", self.template()
        if r < 0.95:
            return "template-mutated", self.mutate(self.template())
        return "template-noise", self.noise().replace("\x00", "{")


def run_one(kind: str, text: str, env: MappingEnv) -> str:
    if kind.startswith("template"):
        try:
            tpl = compile_template(text)
        except ExprError:
            return "ExprError"
        try:
            out = tpl.render(env, {"confidence": "suspected", "severity": "warning"})
        except EvalError:
            return "EvalError"
        if not isinstance(out, str):
            raise AssertionError(f"render returned {type(out).__name__}")
        return "rendered"
    try:
        expr = compile_expr(text)
    except ExprError:
        return "ExprError"
    try:
        value = expr.evaluate(env)
    except EvalError:
        return "EvalError"
    if value is UNKNOWN:
        return "UNKNOWN"
    if type(value) not in (int, float, str, bool, type(None), list, tuple, dict):
        raise AssertionError(f"evaluate returned {type(value).__name__}")
    return "value"


def fuzz(n: int, seed: int) -> int:
    gen = Gen(random.Random(seed))
    outcomes: Counter[tuple[str, str]] = Counter()
    failures: list[tuple[str, str, str]] = []
    slowest = (0.0, "")
    start = time.perf_counter()
    for _ in range(n):
        kind, text = gen.case()
        env = gen.env()
        t0 = time.perf_counter()
        try:
            result = run_one(kind, text, env)
        except BaseException as exc:  # noqa: BLE001 - the point is to catch everything
            if isinstance(exc, KeyboardInterrupt):
                raise
            result = "UNHANDLED"
            if len(failures) < 10:
                failures.append((kind, text, traceback.format_exc()))
        took = time.perf_counter() - t0
        if took > slowest[0]:
            slowest = (took, text)
        outcomes[kind, result] += 1
    elapsed = time.perf_counter() - start

    kinds = sorted({k for k, _ in outcomes})
    columns = ["value", "UNKNOWN", "rendered", "ExprError", "EvalError", "UNHANDLED"]
    print(f"fuzz: {n:,} inputs, seed {seed}, {elapsed:.1f} s ({n / elapsed:,.0f} inputs/s)")
    print(f"{'generator':<18}" + "".join(f"{c:>11}" for c in columns) + f"{'total':>9}")
    for kind in kinds:
        row = [outcomes[kind, c] for c in columns]
        print(f"{kind:<18}" + "".join(f"{v:>11,}" for v in row) + f"{sum(row):>9,}")
    totals = [sum(outcomes[k, c] for k in kinds) for c in columns]
    print(f"{'all':<18}" + "".join(f"{v:>11,}" for v in totals) + f"{sum(totals):>9,}")
    print(f"slowest single input: {slowest[0] * 1e3:.2f} ms ({slowest[1][:60]!r})")
    unhandled = totals[-1]
    print(f"unhandled exceptions: {unhandled}")
    for kind, text, tb in failures:
        print(f"\n--- {kind}: {text[:300]!r}\n{tb}")
    return unhandled


def speed() -> None:
    """The cost of one typical rule condition and message (best of 5 repeats)."""
    cond = ("accounting.unaccounted_ratio >= params.min_unaccounted_ratio\n"
            "  and accounting.unaccounted_bytes >= params.min_unaccounted\n"
            "  and platform.hypervisor == \"vmware\"\n")
    message = ("The VMware balloon driver is {confidence} of holding "
               "{accounting.unaccounted_bytes|bytes} ({accounting.unaccounted_ratio|pct} of "
               "MemTotal) that no meminfo field or process accounts for.")
    env = MappingEnv({"accounting.unaccounted_ratio": 0.64,
                      "accounting.unaccounted_bytes": 5444485120,
                      "params": {"min_unaccounted_ratio": 0.25, "min_unaccounted": 1 << 30},
                      "platform.hypervisor": "vmware"})
    expr, tpl = compile_expr(cond), compile_template(message)
    extra = {"confidence": "suspected"}
    rows = [
        ("compile_expr (3-clause condition)", lambda: compile_expr(cond), 2000),
        ("Expr.evaluate", lambda: expr.evaluate(env), 50000),
        ("compile_template (message)", lambda: compile_template(message), 2000),
        ("Template.render", lambda: tpl.render(env, extra), 50000),
    ]
    print("\nspeed (best of 5):")
    for label, fn, number in rows:
        best = min(timeit.repeat(fn, number=number, repeat=5)) / number
        print(f"  {label:<36}{best * 1e6:>9.1f} us")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="inputs to generate")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    unhandled = fuzz(args.n, args.seed)
    speed()
    return 1 if unhandled else 0


if __name__ == "__main__":
    sys.exit(main())
