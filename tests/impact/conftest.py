"""Fixtures shared by the impact tests."""

from __future__ import annotations

import pytest

from tests.support import Clock


@pytest.fixture
def clock() -> Clock:
    """A settable clock: the impact tests say when changes happened."""
    return Clock()
