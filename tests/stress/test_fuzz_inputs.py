"""Hostile input, a modest dose (bench/fuzz_all.py runs 100,000+): every text parser on arbitrary
text and on damaged real samples, every source over a snapshot of damaged files, the rule loader
on damaged rule packs, and the engine, document and every report format over what comes out.
Only the exceptions a parser's contract names may escape it."""

from __future__ import annotations

import random
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memdiag import pipeline

from .helpers import REPO

sys.path.insert(0, str(REPO / "bench"))
import fuzzkit  # noqa: E402  (bench/fuzzkit.py: the generator bench/fuzz_all.py uses)

CORPUS = fuzzkit.load_corpus(live=False)
PARSERS = {name: (fn, allowed) for name, fn, _hints, allowed in fuzzkit.text_parsers()}
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Unhandled exceptions fuzzing has found and that are not fixed yet (none now), marked
#: non-strict: hypothesis may or may not reach them in a given run.
KNOWN: dict[str, str] = {}


@pytest.fixture(scope="module")
def loaded(registry):
    from memdiag.sources import build_catalog

    fuzzkit.set_catalog(build_catalog(registry.sources))
    return registry, pipeline.load_rules(registry, use_cache=False)


def check(name: str, run, allowed) -> None:
    try:
        run()
    except allowed:
        pass


def names(all_names):
    return [pytest.param(n, marks=pytest.mark.xfail(reason=KNOWN[n], strict=False)) if n in KNOWN else n
            for n in sorted(all_names)]


@pytest.mark.parametrize("name", names(PARSERS))
@SETTINGS
@given(text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_parsers_on_arbitrary_text(name, text):
    fn, allowed = PARSERS[name]
    check(name, lambda: fn(text), allowed)


@pytest.mark.parametrize("name", names(PARSERS))
@SETTINGS
@given(text=st.lists(st.sampled_from(fuzzkit.ABSURD + fuzzkit.UNITS + fuzzkit.SEPARATORS
                                     + ["MemTotal:", "VmRSS:", " ", ":", "kB", "\n", "PID", "Mem:", "slabdata",
                                        "=", "some", "total", "-", "0x1f", "tunables", "pages="]),
                     max_size=60).map("".join))
def test_parsers_on_their_own_vocabulary(name, text):
    """Text made of the tokens parsers look for, in every order: finds what random text cannot."""
    fn, allowed = PARSERS[name]
    check(name, lambda: fn(text), allowed)


def target_names():
    from memdiag import registry

    return names(t.name for t in fuzzkit.targets(registry.load(autoload=False), rules=object()))


@pytest.mark.parametrize("name", target_names())
@SETTINGS
@given(seed=st.integers(0, 2**32))
def test_targets_on_damaged_real_samples(name, seed, loaded):
    registry, rules = loaded
    target = next(t for t in fuzzkit.targets(registry, rules) if t.name == name)
    check(name, lambda: target.run(fuzzkit.Mutator(random.Random(seed), CORPUS)), target.allowed)


@SETTINGS
@given(data=st.binary(max_size=400))
def test_decoding_arbitrary_bytes_is_text_or_a_clear_refusal(data):
    from memdiag.evidence import Unreadable, decode

    try:
        text = decode(data, "f")
    except Unreadable as exc:
        assert exc.message == "binary data where text was expected" and exc.path == "f"
    else:
        assert isinstance(text, str)


def test_the_mutator_really_damages_inputs():
    """The harness proves nothing if what it feeds is always the pristine sample."""
    m = fuzzkit.Mutator(random.Random(7), CORPUS)
    samples = {t for _, t in CORPUS}
    made = [m.text("meminfo") for _ in range(200)]
    assert sum(t not in samples for t in made) > 100
    assert any("\r\n" in t for t in made) and any(a in t for t in made for a in ("²", "١٢٣", "1e999"))
