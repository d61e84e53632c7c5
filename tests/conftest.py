"""Markers from the path (unit/, integration/), as strawberry does."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        part = item.path.relative_to(TESTS).parts[0]
        if part in {"unit", "integration"}:
            item.add_marker(getattr(pytest.mark, part))
