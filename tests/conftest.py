"""Markers from the path (unit/, integration/), as strawberry does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway import tracing

TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        part = item.path.relative_to(TESTS).parts[0]
        if part in {"unit", "integration"}:
            item.add_marker(getattr(pytest.mark, part))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The gateway traces into memory for the test: its finished spans."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.start(provider=provider)
    try:
        yield exporter
    finally:
        tracing.stop()
