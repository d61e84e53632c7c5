"""Prometheus metrics of outbound source calls (no personal data in labels)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["SOURCE_CALLS", "SOURCE_LATENCY"]

SOURCE_CALLS = Counter(
    "gateway_source_calls_total",
    "HTTP calls made to sources, by connector, route and outcome.",
    ["connector", "route", "outcome"],
)
SOURCE_LATENCY = Histogram(
    "gateway_source_call_seconds",
    "Time a source call took, retries counted separately.",
    ["connector", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
