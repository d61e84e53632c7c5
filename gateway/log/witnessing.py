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
import datetime
import re
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

from gateway.background import Background
from gateway.log.store import TransparencyLog

__all__ = ["Witness", "Witnessing"]

log = structlog.get_logger(__name__)

SIZE_MEDIA_TYPE: Final = "text/x.tlog.size"
_SIZE: Final = re.compile(r"(0|[1-9][0-9]{0,18})\n")
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


class Witnessing(Background):
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
        self._timeout = timeout

    _name = "witnessing"

    async def stop(self) -> None:
        await self._cancel()
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
        """Submit the newest checkpoint to every witness that has not cosigned it; each
        witness on its own, bounded in time, so one slow or broken never holds another."""
        latest = await self._log.latest()
        if latest is None:
            return
        known = await self._log.witnesses()
        done = await asyncio.gather(
            *(self._bounded(w, latest, *known.get(w.name, (0, False))) for w in self.witnesses),
            return_exceptions=True,
        )
        for witness, outcome in zip(self.witnesses, done, strict=True):
            if isinstance(outcome, Exception):
                SUBMISSIONS.labels(witness.name, "failed").inc()
                log.error("witnessing_failed", witness=witness.name, error=type(outcome).__name__)

    async def _bounded(self, witness: Witness, latest: Checkpoint, old: int, signed: bool) -> None:
        async with asyncio.timeout(self._timeout * 2 + 1):
            await self._bring_up(witness, latest, old, signed)

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

    async def _fork(self, witness: Witness, latest: Checkpoint, said: int, why: str) -> None:
        """Raise the alarm: the witness holds a tree of this log that is not this one.

        A size above the newest checkpoint first reads the newest again: another replica
        may have had a newer one cosigned meanwhile, which is no fork.
        """
        if why == "larger":
            newest = await self._log.latest()
            if newest is not None and newest.size >= said:
                return
        FORKS.labels(witness.name).inc()
        log.error(
            "witness_saw_another_tree", witness=witness.name, why=why, size=said,
            log_size=latest.size,
        )  # fmt: skip

    async def _submit(
        self, witness: Witness, latest: Checkpoint, old: int
    ) -> tuple[bool, int | None]:
        """Submit `latest` from `old`: whether it was cosigned (and kept), and on a 409
        the size the witness says it has."""
        if old > latest.size:
            await self._fork(witness, latest, old, "larger")
            return False, None
        proof = (
            [] if old in (0, latest.size) else await self._log.consistency_proof(old, latest.size)
        )
        lines = "".join(f"{base64.b64encode(h).decode()}\n" for h in proof)
        body = f"old {old}\n{lines}\n{latest.note}"
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
        if response.status_code == 409 and _media_type(response) == SIZE_MEDIA_TYPE:
            SUBMISSIONS.labels(witness.name, "conflict").inc()
            found = _SIZE.fullmatch(response.text)
            if found is None:
                log.warning("witness_size_unreadable", witness=witness.name)
                return False, None
            said = int(found.group(1))
            if said > latest.size:
                await self._fork(witness, latest, said, "larger")
                return False, None
            if said == old:
                # It has this size and refused: another root at this very size.
                await self._fork(witness, latest, said, "same size, another root")
                return False, None
            await self._log.witnessed(
                witness.name, said, line=None, cosigned_at=datetime.datetime.now(datetime.UTC)
            )
            return False, said
        if response.status_code == 422:
            # The log's proof from the size the witness has does not reach its tree.
            SUBMISSIONS.labels(witness.name, "422").inc()
            await self._fork(witness, latest, old, "inconsistent")
            return False, None
        if response.status_code != 200:
            SUBMISSIONS.labels(witness.name, str(response.status_code)).inc()
            log.warning("witness_refused", witness=witness.name, status=response.status_code)
            return False, None
        kept = _own_cosignature(response.text, witness, latest)
        if kept is None:
            SUBMISSIONS.labels(witness.name, "bad_cosignature").inc()
            log.error("witness_cosignature_invalid", witness=witness.name)
            return False, None
        line, when = kept
        await self._log.witnessed(witness.name, latest.size, line=line, cosigned_at=when)
        SUBMISSIONS.labels(witness.name, "cosigned").inc()
        LAG.labels(witness.name).set(0)
        return True, None


def _media_type(response: httpx.Response) -> str:
    value: str = response.headers.get("content-type", "")
    return value.split(";", 1)[0].strip().lower()


def _own_cosignature(
    text: str, witness: Witness, latest: Checkpoint
) -> tuple[str, datetime.datetime] | None:
    """The line of the answer that is a valid cosignature of `latest` by the witness's
    configured key (it may answer several, with other keys), and its time."""
    for raw in text.splitlines():
        if not raw.startswith(f"\u2014 {witness.name} "):
            continue
        line = raw + "\n"
        try:
            found = cosignatures(latest.note + line, [witness.key])
            if found:
                return line, datetime.datetime.fromtimestamp(found[0].timestamp, datetime.UTC)
        except (CheckpointError, ValueError, OverflowError, OSError):
            continue
    return None
