"""Property tests: whatever text arrives, the expression language fails only in its own words.

The in-suite example counts are modest; bench/fuzz_expr.py runs 100,000+ generated inputs.
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memdiag.expr import (
    FILTERS, UNKNOWN, EvalError, ExprError, MappingEnv, compile_expr, compile_template,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NAMES = ["a", "b.c", "m", "l", "s", "n", "missing.x", "params.p", "d.k", "d"]
VALUE_FUNCTIONS = ["min", "max", "abs", "len", "count", "round", "sum", "intersects", "lower",
                   "startswith", "contains", "kib", "mib", "gib", "version", "coalesce"]
TOKENS = ["a", "b.c", "1", "0", "-1", "2.5", "1e999", "'x'", '"3.10.0"', "true", "none", "(",
          ")", "[", "]", "{", "}", ",", ":", ".", "+", "-", "*", "/", "//", "%", "**", "==", "!=",
          "<", ">=", "in", "not", "and", "or", "if", "else", "is", "lambda", "for", "min", "has",
          "version", "coalesce", "__class__", "__import__", "|", "!r", "\n", " ", "#", "'", '"',
          "\\", "f'", "`", "=", ":=", "yield", "await", "*", "@", "~"]
PLAIN_TYPES = (int, float, str, bool, type(None), list, tuple, dict)

scalars = st.one_of(
    st.integers(), st.just(10**400), st.just(2**255), st.floats(), st.text(max_size=12),
    st.booleans(), st.none(), st.sampled_from(["3.10.0-693.el7", "vmware", "", "4.4"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner,
                                                                 max_size=3),
    max_leaves=8,
)
envs = st.builds(
    MappingEnv,
    st.dictionaries(st.sampled_from(NAMES), values, max_size=len(NAMES)),
    st.none() | st.dictionaries(st.sampled_from(NAMES), values, max_size=4),
    st.none() | st.floats(),
)

names = st.sampled_from(NAMES)
atoms = st.one_of(
    names,
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(max_size=8).map(repr),
    st.sampled_from(["true", "false", "none", "[]", "2**8", "elapsed_hours()"]),
)


def _composite(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    ops = st.sampled_from(["+", "-", "*", "/", "//", "%", "==", "!=", "<", "<=", ">", ">=", "in",
                           "not in", "and", "or"])
    return st.one_of(
        st.tuples(inner, ops, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["not ", "-", "+"]), inner).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}:]"),
        st.tuples(st.sampled_from(VALUE_FUNCTIONS), st.lists(inner, max_size=3)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.tuples(st.sampled_from(["has", "prev", "delta", "per_hour"]), names).map(
            lambda t: f"{t[0]}({t[1]})"),
    )


expressions = st.recursive(atoms, _composite, max_leaves=24)


def _check_value(value: object) -> None:
    assert value is UNKNOWN or type(value) in PLAIN_TYPES, type(value)


@FUZZ
@given(st.text(max_size=300))
def test_any_text_compiles_or_raises_expr_error(text):
    try:
        expr = compile_expr(text)
    except ExprError as exc:
        assert exc.message and "\n" not in exc.message
        return
    try:
        _check_value(expr.evaluate(MappingEnv({})))
    except EvalError:
        pass


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=40), envs)
def test_token_soup_compiles_or_raises_expr_error(tokens, env):
    text = " ".join(tokens)
    try:
        expr = compile_expr(text)
    except ExprError:
        return
    try:
        _check_value(expr.evaluate(env))
    except EvalError as exc:
        assert exc.message


@FUZZ
@given(st.text(max_size=300), envs)
def test_any_template_compiles_or_raises_expr_error(text, env):
    try:
        tpl = compile_template(text)
    except ExprError as exc:
        assert exc.message
        return
    try:
        assert isinstance(tpl.render(env, {"confidence": "likely"}), str)
    except EvalError:
        pass


@FUZZ
@given(expressions, envs)
def test_well_formed_expressions_give_a_value_unknown_or_eval_error(text, env):
    try:
        expr = compile_expr(text)
    except ExprError as exc:  # bounds, arity and refused constructs are compile-time errors
        assert exc.message
        return
    try:
        first = expr.evaluate(env)
    except EvalError as exc:
        assert exc.message and "\n" not in exc.message
        return
    _check_value(first)
    second = expr.evaluate(env)  # compiled once, evaluated many times: same answer
    if not (isinstance(first, float) and math.isnan(first)):
        assert second is first or second == first


@FUZZ
@given(
    st.lists(st.tuples(expressions, st.sampled_from([None, *FILTERS])), min_size=1, max_size=3),
    st.text(alphabet="ab {}|", max_size=6),
    envs,
)
def test_generated_templates_render_or_raise_eval_error(fields, literal, env):
    text = literal.replace("{", "{{").replace("}", "}}").join(
        "{" + expr + (f"|{flt}" if flt else "") + "}" for expr, flt in fields)
    try:
        tpl = compile_template(text)
    except ExprError:
        return
    try:
        assert isinstance(tpl.render(env), str)
    except EvalError:
        pass


# Kleene logic is monotone: an answer given with facts missing never changes when they arrive.
NUMERIC = ["p", "q", "r", "s"]
comparisons = st.tuples(st.sampled_from(NUMERIC), st.sampled_from(["<", "<=", "==", "!=", ">"]),
                        st.integers(-3, 3)).map(lambda t: f"{t[0]} {t[1]} {t[2]}")
logic = st.recursive(
    comparisons | st.sampled_from(["true", "false"]),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: f"({' '.join(t)})"),
        inner.map(lambda x: f"not ({x})"),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
    ),
    max_leaves=12,
)


@FUZZ
@given(logic, st.dictionaries(st.sampled_from(NUMERIC), st.integers(-4, 4)),
       st.fixed_dictionaries({k: st.integers(-4, 4) for k in NUMERIC}))
def test_a_definite_answer_survives_the_missing_facts_arriving(text, known, completion):
    expr = compile_expr(text)
    partial = expr.evaluate(MappingEnv(known))
    full = expr.evaluate(MappingEnv({**completion, **known}))
    assert full is not UNKNOWN
    if partial is not UNKNOWN:
        assert bool(partial) == bool(full)
