"""What keeps one slow or broken source from taking the gateway down.

- **The request's deadline.** A request has until its deadline to be answered
  (`GATEWAY_REQUEST_DEADLINE`, less a margin to record it). Each call to a source gets
  the smaller of its manifest's timeout and the time left; a call or a retry that
  cannot finish in time is not started, and its fields are `SOURCE_TIMEOUT`.
- **Retries** only for what may pass (429, 5xx, timeouts, refused connections:
  `SourceError.retriable`), after a backoff with jitter, so that replicas retrying
  together do not beat on a source in step.
- **A circuit breaker per source.** After `failures` failures in a row the breaker
  opens: calls fail at once with `SOURCE_UNAVAILABLE` (reason `circuit_open`) and the
  source is left alone for `reset_seconds`; then one trial call goes (half-open): its
  success closes the breaker, its failure opens it again. A source that answers, even
  "no" (4xx) or "not found", is up.
- **A bulkhead per source**: at most `max_concurrency` calls at once (the connectors'
  own semaphore), waited for within the same deadline.
- **A rate limit per source** (`connectors._ratelimit`, the manifest's `rate_limit`):
  each call waits for a permit only if it comes before the deadline, else fails at
  once with `SOURCE_RATE_LIMITED`, which the breaker does not count: the source is fine.

The deadline travels in a context variable set by `deadline_scope` around a fetch, so
every call a connector makes for that fetch (in tasks it starts) sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import random
import time
from collections.abc import Callable, Iterator
from typing import Final

import structlog
from prometheus_client import Counter, Gauge

from gateway.errors import SourceError, SourceRateLimited, SourceTimeout, SourceUnavailable

__all__ = [
    "BREAKER_STATE",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpen",
    "backoff",
    "call_budget",
    "deadline_scope",
    "time_left",
]

log = structlog.get_logger(__name__)

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "source_call_deadline", default=None
)
_MIN_CALL: Final = 0.05
"""Seconds below which a call is not worth starting: it could only time out."""

BREAKER_STATE = Gauge(
    "gateway_source_breaker_state",
    "Circuit breaker of each source: 0 closed, 1 half-open, 2 open.",
    ["connector"],
)
BREAKER_OPENED = Counter(
    "gateway_source_breaker_opened_total",
    "Times a source's circuit breaker opened.",
    ["connector"],
)


@contextlib.contextmanager
def deadline_scope(deadline: float | None) -> Iterator[None]:
    """Calls to sources made inside (and in tasks started inside) end by `deadline`.

    `deadline` is in the running loop's clock (`loop.time()`); `None` sets none.
    """
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def time_left() -> float | None:
    """Seconds until the deadline of the calls being made, or `None` without one."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return None
    return deadline - asyncio.get_running_loop().time()


def call_budget(timeout: float, *, source: str) -> float:
    """The time one call may take: `timeout`, cut to the deadline.

    Raises `SourceTimeout` when too little is left to start a call at all.
    """
    left = time_left()
    if left is None:
        return timeout
    if left < _MIN_CALL:
        raise SourceTimeout(source=source, reason="request_deadline")
    return min(timeout, left)


def backoff(attempt: int, base: float = 0.05) -> float:
    """The pause before retry `attempt` (1, 2, ...): grows with it, with full jitter."""
    # Jitter, not a secret: replicas must not retry in step.
    return base * attempt * random.uniform(0.5, 1.5)  # noqa: S311  # nosec B311


class CircuitOpen(SourceUnavailable):
    """The source's breaker is open: the call was not made. Not retried: the breaker
    would refuse the retry too."""

    retriable = False

    def __init__(self, *, source: str) -> None:
        super().__init__(source=source, reason="circuit_open")


class BreakerState(enum.IntEnum):
    """A breaker's state, as the metric gives it."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    """Closed, open or half-open, for one source; see the module's description."""

    __slots__ = (
        "_clock",
        "_failures",
        "_opened_at",
        "_trial",
        "name",
        "reset_seconds",
        "state",
        "threshold",
    )

    def __init__(
        self,
        name: str,
        *,
        failures: int = 5,
        reset_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.threshold = failures
        self.reset_seconds = reset_seconds
        self._clock = clock
        self.state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial = False
        BREAKER_STATE.labels(name).set(self.state)

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self.name!r}, state={self.state.name})"

    def before_call(self) -> None:
        """Let a call go, or raise `CircuitOpen` while the breaker is open."""
        if self.state is BreakerState.OPEN:
            if self._clock() - self._opened_at < self.reset_seconds:
                raise CircuitOpen(source=self.name)
            self._set(BreakerState.HALF_OPEN)
        if self.state is BreakerState.HALF_OPEN:
            if self._trial:  # one trial at a time; the others fail fast meanwhile
                raise CircuitOpen(source=self.name)
            self._trial = True

    def succeeded(self) -> None:
        """The source answered (a refusal or "not found" is an answer too)."""
        self._failures = 0
        self._trial = False
        if self.state is not BreakerState.CLOSED:
            log.info("breaker_closed", connector=self.name)
            self._set(BreakerState.CLOSED)

    @contextlib.contextmanager
    def attempt(self, timeout: float) -> Iterator[float]:
        """One call to the source, given its time (`call_budget`) and recorded here.

        Raises `CircuitOpen` while the breaker is open, and `SourceTimeout` when the
        request has no time left for a call; neither tells anything of the source.
        Then the call's outcome is recorded: a `SourceError` as `failed`, a call let go
        of (cancelled) or not made for the source's rate limit (`SourceRateLimited`) as
        `abandoned`, an end without error as `succeeded`.
        """
        self.before_call()
        try:
            budget = call_budget(timeout, source=self.name)
        except SourceError:
            self.abandoned()
            raise
        try:
            yield budget
        except SourceRateLimited:
            self.abandoned()  # our own limit: the source was not called
            raise
        except SourceError as exc:
            self.failed(exc)
            raise
        except BaseException:
            self.abandoned()
            raise
        self.succeeded()

    def abandoned(self) -> None:
        """A call let go of before it ended (its request's deadline): it tells nothing."""
        self._trial = False

    def failed(self, error: BaseException) -> None:
        """A call failed: the source's failures open the breaker; others are answers."""
        if isinstance(error, SourceError) and not error.retriable:
            self.succeeded()  # it answered, if with something unusable
            return
        self._trial = False
        self._failures += 1
        if self.state is BreakerState.HALF_OPEN or self._failures >= self.threshold:
            if self.state is not BreakerState.OPEN:
                BREAKER_OPENED.labels(self.name).inc()
                log.warning("breaker_open", connector=self.name, failures=self._failures)
            self._opened_at = self._clock()
            self._set(BreakerState.OPEN)

    def _set(self, state: BreakerState) -> None:
        self.state = state
        BREAKER_STATE.labels(self.name).set(state)
