"""Prometheus metrics of the gateway itself (no personal data in any label)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["GRAPHQL_ERRORS", "GRAPHQL_SOURCE_CALLS", "HTTP_LATENCY", "HTTP_REQUESTS"]

HTTP_REQUESTS = Counter(
    "gateway_http_requests_total", "HTTP requests by route and status.", ["route", "status"]
)
HTTP_LATENCY = Histogram(
    "gateway_http_request_seconds",
    "Time from request to response, by route.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
GRAPHQL_ERRORS = Counter(
    "gateway_graphql_errors_total", "GraphQL errors in responses, by code.", ["code"]
)
GRAPHQL_SOURCE_CALLS = Histogram(
    "gateway_graphql_source_batches",
    "Source batches sent per GraphQL request.",
    buckets=(0, 1, 2, 3, 4, 6, 8, 12, 16),
)
