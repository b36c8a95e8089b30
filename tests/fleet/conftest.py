"""Fixtures of the fleet/report tests."""

from __future__ import annotations

import pytest

from .helpers import DOC_NAMES, load_doc


@pytest.fixture(params=DOC_NAMES)
def any_doc(request) -> dict:
    """Each hand-made findings document in turn."""
    return load_doc(request.param)
