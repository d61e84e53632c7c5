"""The rule for recording refused requests.

Every request whose signature verified is recorded, whatever refused it: a suspended
client, a revoked key, an expired or replayed token, a bad purpose, a rate limit, a
replay cache or rate limiter that cannot answer, and any refusal code added later.
A flood of refusals must not grow the public log without bound, so for each client,
refusal code and minute (UTC):

- the first refusal is recorded in full, and committed before its answer leaves;
- the others of that minute are counted, and when the minute closes one summary record
  says how many there were (`refused`, for the `minute` it covers, dated at the
  minute's end), with no token and no personal part: at most two records per client,
  code, procedure and minute on each replica (the procedure a refused token named,
  when it is one of the catalogue's, so that the figures per procedure add up).

When the first refusal cannot be recorded (the database is down) the answer is 503
`AUDIT_UNAVAILABLE` and the refusal is counted in metrics; the next refusal of that
minute tries again. A summary that cannot be written is retried at each flush and,
after `retry_minutes`, dropped into the same metric. Refusals before the signature
verified (no such client or key, a bad signature, a malformed token) are never
recorded: anyone can send them. They are counted in metrics only.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

import structlog
from prometheus_client import Counter

from gateway.errors import AuditUnavailable
from gateway.instants import format_instant
from gateway.records import EnvelopeBody, Event, count_refusal

__all__ = ["REFUSALS_NOT_RECORDED", "RefusalSink", "Refusals"]

log = structlog.get_logger(__name__)

REFUSALS_NOT_RECORDED: Final = Counter(
    "gateway_refusals_not_recorded_total",
    "Refusals whose record (first or summary) could not be written: the database was down.",
)
_FLUSH_EVERY: Final = 5.0


class RefusalSink(Protocol):
    """Where refusals are recorded (the recorder, or a test's list)."""

    async def record(self, event: Event) -> bytes:
        """Return once `event` is committed; `AuditUnavailable` if it cannot be."""
        ...


@dataclass(slots=True)
class _Minute:
    """One client's refusals with one code (and procedure) in one minute, after the first."""

    organisation: str | None
    procedure: str | None
    status: int
    first_recorded: bool = False
    others: int = 0


class Refusals:
    """Records refusals by the rule above; `start` flushes summaries as minutes close."""

    def __init__(
        self,
        sink: RefusalSink,
        *,
        policy_version: str,
        clock: Callable[[], float] = time.time,
        retry_minutes: int = 10,
    ) -> None:
        self._sink = sink
        self.policy_version = policy_version
        self._clock = clock
        self._retry = retry_minutes
        self._minutes: dict[tuple[str, str, str, int], _Minute] = {}
        self._task: asyncio.Task[None] | None = None

    async def refused(self, event: Event, *, code: str, status: int) -> None:
        """Record a refusal (`event`, its full record) by the rule; counts it in metrics.

        Raises `AuditUnavailable` when a first refusal cannot be committed.
        """
        client = event.client_id or ""
        organisation = event.envelope.get("organisation")
        count_refusal(event.procedure, organisation, code)
        key = (client, code, event.procedure or "", int(self._clock() // 60))
        minute = self._minutes.get(key)
        if minute is None:
            minute = self._minutes[key] = _Minute(organisation, event.procedure, status)
        if minute.first_recorded:
            minute.others += 1
            return
        # Claimed before the commit is awaited: concurrent refusals of the same minute
        # are counted for the summary rather than recorded in full each.
        minute.first_recorded = True
        try:
            await self._sink.record(event)
        except AuditUnavailable:
            minute.first_recorded = False
            REFUSALS_NOT_RECORDED.inc()
            raise

    def pending(self) -> int:
        """Refusals counted and not yet written in a summary."""
        return sum(m.others for m in self._minutes.values())

    async def flush(self, *, everything: bool = False) -> int:
        """Write the summaries of closed minutes (all minutes with `everything`).

        Returns how many summary records were written.
        """
        now = int(self._clock() // 60)
        written = 0
        for key in sorted(self._minutes):
            client, code, _, at = key
            if at >= now and not everything:
                continue
            minute = self._minutes[key]
            if minute.others:
                try:
                    await self._sink.record(self._summary(client, code, at, minute))
                except AuditUnavailable:
                    if now - at < self._retry and not everything:
                        continue  # kept, to retry at the next flush
                    REFUSALS_NOT_RECORDED.inc(minute.others)
                    log.warning("refusal_summary_dropped", code=code, refused=minute.others)
                else:
                    written += 1
            del self._minutes[key]
        return written

    def _summary(self, client: str, code: str, at: int, minute: _Minute) -> Event:
        start = datetime.datetime.fromtimestamp(at * 60, datetime.UTC)
        # Dated within its minute (its last instant), so that a period cut at a minute
        # counts it where its refusals happened, however late it is written.
        end = start + datetime.timedelta(minutes=1) - datetime.timedelta(microseconds=1)
        envelope: EnvelopeBody = {
            "client": client,
            "organisation": minute.organisation or "",
            "procedure": minute.procedure,
            "status": minute.status,
            "errors": [code],
            "refused": minute.others,
            "minute": format_instant(start),
        }
        return Event(
            type="access",
            request_id=uuid.uuid4().hex,
            outcome=f"rejected:{code}",
            policy_version=self.policy_version,
            envelope=envelope,
            personal={},
            client_id=client,
            procedure=minute.procedure,
            ts=end,
        )

    async def start(self) -> None:
        """Flush closed minutes every few seconds until `stop`."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="refusals")

    async def stop(self) -> None:
        """Stop flushing, and write what is counted (the current minute too)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush(everything=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_EVERY)
            try:
                await self.flush()
            except Exception:
                log.exception("refusal_flush_failed")
