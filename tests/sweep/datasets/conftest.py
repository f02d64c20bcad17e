"""Fixtures for the data-source tests: the real data in ../shared/data (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

# tests/sweep/datasets/conftest.py -> parents[3] is the repository root; the data sits beside it.
SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def _shared(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"shared test data {path} is absent (expected ../shared/data beside the "
                    "repository)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _shared("")


@pytest.fixture(scope="session")
def criteo_sample() -> Path:
    """200 raw Criteo Kaggle lines."""
    return _shared("criteo-sample/train.txt")


@pytest.fixture(scope="session")
def ml100k() -> Path:
    """MovieLens-100K as RecBole atomic files."""
    return _shared("ml-100k")
