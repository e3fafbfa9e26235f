"""Fixtures for the evaluate tests: the digits pool written once per test session."""

from __future__ import annotations

import pytest

from tests.evaluate._data import write_digits


@pytest.fixture(scope="session")
def digits_pool(tmp_path_factory):
    """All 1,797 digits; 30% of the 1,400 train rows have a flipped label (``flipped``)."""
    return write_digits(tmp_path_factory.mktemp("digits") / "pool")
