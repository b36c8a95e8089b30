"""Inputs for differential tests of str code against the regular expression it replaces."""

from __future__ import annotations

import sys

from hypothesis import strategies as st

#: Every code point a str may hold (surrogates left out).
ALL = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)

#: Characters where \d, \s, \w, [0-9], IGNORECASE and str methods could disagree.
_HOSTILE = ("0123456789\u0660\u0669\u06f5\u0966\uff10\uff19\u00b2\u00bd\u2167"  # digits, non-ASCII digits, numerics
            " \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u1680\u2000\u2028\u3000\u200b\ufeff"  # blanks, and look-alikes
            "aAbBgGiIkKmMpPtTsSzZ\u0130\u0131\u017f\u212a\u00e9\u00df_"  # letters, İ ı ſ K (Kelvin)
            "#$%>[]<.,:;@~/+-=*()'\"\\")


def lines(*samples: str, max_size: int = 60) -> st.SearchStrategy[str]:
    """Realistic samples, random text of hostile characters, and samples with a few of them
    inserted, replaced or cut away."""

    @st.composite
    def mutated(draw) -> str:
        s = draw(st.sampled_from(samples))
        for _ in range(draw(st.integers(0, 3))):
            i = draw(st.integers(0, len(s)))
            op = draw(st.sampled_from(("insert", "replace", "cut", "newline")))
            c = draw(st.sampled_from(_HOSTILE))
            if op == "insert":
                s = s[:i] + c + s[i:]
            elif op == "replace":
                s = s[:i] + c + s[i + 1:]
            elif op == "cut":
                s = s[:i] + s[i + draw(st.integers(1, 4)):]
            else:
                s = s + "\n"
        return s

    return st.one_of(st.sampled_from(samples), mutated(), st.text(st.sampled_from(_HOSTILE), max_size=max_size))
