"""Witnessing: each new checkpoint goes to the configured witnesses for cosigning.

A witness (c2sp.org/tlog-witness) cosigns a checkpoint only when it is consistent with
the last one it cosigned, so a log cannot show one history to some readers and another
to others without a witness refusing one of them. The gateway submits the newest
checkpoint, read back from the database after its commit (never one of a batch that
may still roll back), with the consistency proof from the size the witness last
cosigned (`old`), and keeps the cosignature it answers (`checkpoint_cosignatures`).
A witness that answers 409 with another size gets the proof from that size, at once;
one that says it saw a larger tree than the log has is a fork alarm (logged, counted).

A witness down or slow never holds up recording: the sequencer signs and the log
grows; the newest checkpoint is cosigned when the witness answers again, and the lag
shows in `/readyz` and `gateway_witness_lag_leaves`. Every replica runs it: a second
submission of the same checkpoint is answered from the witness's state (409 or the
same cosignature again), and what is kept is kept once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import httpx
import structlog
from lienthong_client.log import (
    Checkpoint,
    CheckpointError,
    CosignerKey,
    cosignatures,
    parse_cosigner_key,
)
from prometheus_client import Counter, Gauge, Histogram

from gateway.log.store import TransparencyLog

__all__ = ["Witness", "Witnessing"]

log = structlog.get_logger(__name__)

SIZE_MEDIA_TYPE: Final = "text/x.tlog.size"
LAG = Gauge(
    "gateway_witness_lag_leaves",
    "Leaves of the newest checkpoint the witness has not cosigned yet.",
    ["witness"],
)
SUBMISSIONS = Counter(
    "gateway_witness_submissions_total",
    "Checkpoints submitted to a witness, by outcome.",
    ["witness", "outcome"],
)
ROUND_TRIP = Histogram(
    "gateway_witness_submission_seconds",
    "From a checkpoint's submission to its cosignature kept (proof, HTTP, check, store).",
    ["witness"],
)
FORKS = Counter(
    "gateway_witness_fork_alarms_total",
    "A witness said it cosigned a larger tree of this log than the log has.",
    ["witness"],
)


@dataclass(frozen=True, slots=True)
class Witness:
    """A witness: its submission prefix and cosigning key."""

    url: str
    key: CosignerKey

    @property
    def name(self) -> str:
        return self.key.name

    @classmethod
    def of(cls, url: str, key: str) -> Witness:
        return cls(url.rstrip("/"), parse_cosigner_key(key))


class Witnessing:
    """Submits the log's newest checkpoint to each witness, in the background."""

    def __init__(
        self,
        log_store: TransparencyLog,
        witnesses: Sequence[Witness],
        *,
        interval: float,
        timeout: float = 5.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._log = log_store
        self.witnesses = tuple(witnesses)
        self._interval = interval
        self._http = http or httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, trust_env=False
        )
        self._own_http = http is None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="witnessing")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._own_http:
            await self._http.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self.once()
            except Exception as exc:  # the next turn tries again
                log.error("witnessing_failed", error=type(exc).__name__)
            await asyncio.sleep(self._interval)

    async def once(self) -> None:
        """Submit the newest checkpoint to every witness that has not cosigned it."""
        latest = await self._log.latest()
        if latest is None:
            return
        known = await self._log.witnesses()
        await asyncio.gather(
            *(self._bring_up(w, latest, *known.get(w.name, (0, False))) for w in self.witnesses)
        )

    async def _bring_up(self, witness: Witness, latest: Checkpoint, old: int, signed: bool) -> None:
        if signed:
            LAG.labels(witness.name).set(0)
            return
        LAG.labels(witness.name).set(max(0, latest.size - old))
        started = asyncio.get_running_loop().time()
        cosigned, said = await self._submit(witness, latest, old)
        if not cosigned and said is not None and said != old:
            # Its state is not what the log remembered (a restart of either, another
            # replica's submission): once more from the size it has.
            cosigned, _ = await self._submit(witness, latest, said)
        if cosigned:
            ROUND_TRIP.labels(witness.name).observe(asyncio.get_running_loop().time() - started)

    async def _submit(
        self, witness: Witness, latest: Checkpoint, old: int
    ) -> tuple[bool, int | None]:
        """Submit `latest` from `old`: whether it was cosigned (and kept), and on a 409
        the size the witness says it has."""
        if old > latest.size:
            FORKS.labels(witness.name).inc()
            log.error(
                "witness_has_larger_tree", witness=witness.name, size=old, log_size=latest.size
            )
            return False, None
        proof = (
            [] if old in (0, latest.size) else await self._log.consistency_proof(old, latest.size)
        )
        body = (
            f"old {old}\n"
            + "".join(f"{base64.b64encode(h).decode()}\n" for h in proof)
            + "\n"
            + latest.note
        )
        try:
            response = await self._http.post(
                f"{witness.url}/add-checkpoint",
                content=body.encode(),
                headers={"Content-Type": "text/plain; charset=utf-8"},
            )
        except httpx.HTTPError as exc:
            SUBMISSIONS.labels(witness.name, "unreachable").inc()
            log.warning("witness_unreachable", witness=witness.name, error=type(exc).__name__)
            return False, None
        if response.status_code == 409 and response.headers.get("content-type", "").startswith(
            SIZE_MEDIA_TYPE
        ):
            SUBMISSIONS.labels(witness.name, "conflict").inc()
            try:
                said = int(response.text.strip())
            except ValueError:
                return False, None
            if said > latest.size:
                FORKS.labels(witness.name).inc()
                log.error(
                    "witness_has_larger_tree", witness=witness.name, size=said, log_size=latest.size
                )
                return False, None
            await self._log.witnessed(
                witness.name, said, line=None, cosigned_at=datetime.datetime.now(datetime.UTC)
            )
            return False, said
        if response.status_code != 200:
            SUBMISSIONS.labels(witness.name, str(response.status_code)).inc()
            log.warning("witness_refused", witness=witness.name, status=response.status_code)
            return False, None
        line = _own_line(response.text, witness)
        try:
            [cosignature] = cosignatures(latest.note + (line or ""), [witness.key])
        except (CheckpointError, ValueError):
            SUBMISSIONS.labels(witness.name, "bad_cosignature").inc()
            log.error("witness_cosignature_invalid", witness=witness.name)
            return False, None
        assert line is not None  # a cosignature was found in it
        await self._log.witnessed(
            witness.name,
            latest.size,
            line=line,
            cosigned_at=datetime.datetime.fromtimestamp(cosignature.timestamp, datetime.UTC),
        )
        SUBMISSIONS.labels(witness.name, "cosigned").inc()
        LAG.labels(witness.name).set(0)
        return True, None


def _own_line(text: str, witness: Witness) -> str | None:
    """The witness's own cosignature line of its answer (it may sign with several keys)."""
    for line in text.splitlines():
        if line.startswith(f"\u2014 {witness.name} "):
            return line + "\n"
    return None
