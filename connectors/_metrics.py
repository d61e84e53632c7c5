"""Metrics of outbound source calls (no personal data in labels or counts).

Prometheus counters for scraping, and each source's calls of the last hour in this
process, by minute, for the agency's view of its connector (`count_call` feeds both),
with the latencies of its recent calls for the operator's percentiles
(`observe_latency` feeds the histogram and them).
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final

from prometheus_client import Counter, Histogram

__all__ = [
    "ANSWERED",
    "RECENT_CALLS",
    "SOURCE_CALLS",
    "SOURCE_LATENCY",
    "RecentCalls",
    "count_call",
    "observe_latency",
    "percentile",
]

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

# The children of each label set, looked up once: every source call counts in both.
_calls = functools.lru_cache(maxsize=1024)(SOURCE_CALLS.labels)
_latency = functools.lru_cache(maxsize=1024)(SOURCE_LATENCY.labels)

ANSWERED: Final = frozenset({"ok", "not_found"})
"""Outcomes of a call the source answered; any other is an error."""


MAX_LATENCIES: Final = 2048
"""Latencies kept per source for the percentiles (the newest; memory stays bounded)."""


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of `values` (`fraction` in (0, 1]); `None` if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class RecentCalls:
    """Calls to each source and how many failed, per minute, over the last `minutes`;
    and the latencies of its last `MAX_LATENCIES` calls within them."""

    def __init__(
        self,
        minutes: int = 60,
        clock: Callable[[], float] = time.monotonic,
        max_latencies: int = MAX_LATENCIES,
    ) -> None:
        self._minutes = minutes
        self._clock = clock
        self._lock = threading.Lock()  # sql reads count from worker threads too
        self._buckets: dict[str, deque[list[int]]] = {}
        self._max_latencies = max_latencies
        self._latencies: dict[str, deque[tuple[float, float]]] = {}

    def add(self, connector: str, *, failed: bool) -> None:
        """Count one call to `connector`'s source."""
        minute = int(self._clock() // 60)
        with self._lock:
            buckets = self._buckets.setdefault(connector, deque())
            if not buckets or buckets[-1][0] != minute:
                buckets.append([minute, 0, 0])
            buckets[-1][1] += 1
            buckets[-1][2] += failed
            while buckets and buckets[0][0] <= minute - self._minutes:
                buckets.popleft()

    def last(self, connector: str) -> tuple[int, int]:
        """(calls, failed calls) to `connector`'s source over the last `minutes`."""
        since = int(self._clock() // 60) - self._minutes
        with self._lock:
            buckets = [b for b in self._buckets.get(connector, ()) if b[0] > since]
        return sum(b[1] for b in buckets), sum(b[2] for b in buckets)

    def add_latency(self, connector: str, seconds: float) -> None:
        """Keep how long one call to `connector`'s source took."""
        with self._lock:
            kept = self._latencies.get(connector)
            if kept is None:
                kept = self._latencies[connector] = deque(maxlen=self._max_latencies)
            kept.append((self._clock(), seconds))

    def latencies(self, connector: str) -> list[float]:
        """The kept latencies (seconds) of calls to `connector`'s source in the last `minutes`."""
        since = self._clock() - self._minutes * 60
        with self._lock:
            kept = self._latencies.get(connector, ())
            return [seconds for at, seconds in kept if at > since]

    def percentiles(self, connector: str) -> tuple[float | None, float | None]:
        """(p50, p95) of the latencies (seconds) of `connector`'s recent calls."""
        values = self.latencies(connector)
        return percentile(values, 0.5), percentile(values, 0.95)


RECENT_CALLS = RecentCalls()


def count_call(connector: str, route: str, outcome: str) -> None:
    """Count one call to a source, for the scrape and for the last hour."""
    _calls(connector, route, outcome).inc()
    RECENT_CALLS.add(connector, failed=outcome not in ANSWERED)


def observe_latency(connector: str, route: str, seconds: float) -> None:
    """Note how long one call to a source took, for the scrape and for the percentiles."""
    _latency(connector, route).observe(seconds)
    RECENT_CALLS.add_latency(connector, seconds)
