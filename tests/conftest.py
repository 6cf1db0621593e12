"""Shared fixtures: where the real market data lives."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` beside the repository; fail loudly if it is not there."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.fail(
            f"real market data not found at {SHARED_DATA}: tests expect ../shared/data beside "
            "the repository (CI always provides it)"
        )
    return SHARED_DATA
