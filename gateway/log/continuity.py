"""Continuity: the log never signs a checkpoint that forks what was published of it.

A database restored from an older backup holds a smaller log than the one readers and
witnesses were shown. Signing on from there would publish a second history under the
same name: a fork that every witness refuses and every reader holding a newer
checkpoint detects. So before signing, the sequencer compares its log with the newest
checkpoint known outside the database:

- the *published file* (`GATEWAY_LOG_PUBLISHED_FILE`): the newest checkpoint this
  gateway signed, written after each commit on storage that is not restored with the
  database, so that a gateway without witnesses also notices;
- each witness (c2sp.org/tlog-witness): the newest checkpoint is submitted with the
  log's own size as the old size; a witness that holds a larger tree answers 409 with
  its size, one that holds another tree at a smaller size refuses the consistency
  proof (422), one that holds another root at this very size answers 409 with it.

When the log is behind (`LOG_BEHIND_PUBLISHED`) or inconsistent
(`LOG_INCONSISTENT_WITH_PUBLISHED`), the sequencer signs nothing: events are still
recorded and queued (no record is lost), and readiness names the sizes and the missing
leaves until an operator chooses (`docs/operations.md`): bring back the missing leaves
(a newer backup), or `gateway log declare-loss`, which continues the log under its next
*epoch* origin (`<origin>/epoch-<n>`), the statement of loss its first leaf.

A witness that does not answer, or does not know the log's origin, says nothing: a
witness down never stops the log (the published file still guards it).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx
import structlog
from lienthong_client.log import Checkpoint, CheckpointError, parse_checkpoint
from prometheus_client import Gauge

from gateway.errors import LogBehindPublished, LogDiscontinuity, LogInconsistentWithPublished
from gateway.log._epochs import epoch_of, family_verifiers, note_origin
from gateway.log.store import TransparencyLog
from gateway.log.witnessing import SIZE_MEDIA_TYPE, Witness
from keys import NoteVerifier

__all__ = ["ContinuityGuard", "PublishedFile", "ask_witness", "compare"]

log = structlog.get_logger(__name__)

_SIZE: Final = re.compile(r"(0|[1-9][0-9]{0,18})\n")
HALTED = Gauge(
    "gateway_log_signing_halted",
    "1 while the sequencer signs nothing because the log does not continue a checkpoint "
    "published of it (see /admin/readiness).",
)
MISSING = Gauge(
    "gateway_log_missing_leaves",
    "Leaves a published checkpoint has that the log lacks (0: none missing).",
)


@dataclass(frozen=True, slots=True)
class PublishedFile:
    """The newest checkpoint this gateway signed, kept outside the database."""

    path: Path

    def read(self, base: str, verifiers: Sequence[NoteVerifier]) -> Checkpoint | None:
        """The checkpoint in the file (`None` when there is none yet), signed by one of
        `verifiers`' keys under an origin of the log of `base`; else `CheckpointError`."""
        try:
            note = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        origin = note_origin(note)
        if epoch_of(base, origin) is None:
            raise CheckpointError(f"{self.path} holds a checkpoint of another log ({origin!r})")
        return parse_checkpoint(note, family_verifiers(verifiers, origin))

    def write(self, note: str) -> None:
        """Replace the file with `note`, on disk before returning (written whole)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        with temporary.open("w", encoding="utf-8") as out:
            out.write(note)
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(self.path)


def _behind(local: Checkpoint, size: int, source: str) -> LogBehindPublished:
    return LogBehindPublished(
        f"The log has {local.size} leaves; {source} has a checkpoint of {size}: leaves "
        f"{local.size} to {size - 1} are missing (a restore of an older backup?). Nothing is "
        f"signed until they are brought back or their loss is declared "
        f"(`gateway log declare-loss`).",
        size=local.size,
        publishedSize=size,
        missing=[local.size, size - 1],
        source=source,
        origin=local.origin,
    )


def _inconsistent(local: Checkpoint, size: int, source: str) -> LogInconsistentWithPublished:
    return LogInconsistentWithPublished(
        f"The log of {local.size} leaves is not consistent with the checkpoint of {size} "
        f"{source} has: the database holds another history. Nothing is signed until an "
        f"operator restores the published one or declares the loss "
        f"(`gateway log declare-loss`).",
        size=local.size,
        publishedSize=size,
        source=source,
        origin=local.origin,
    )


async def compare(
    base: str,
    local: Checkpoint,
    published: Checkpoint,
    root_at: Callable[[int], Awaitable[bytes]],
    *,
    source: str,
) -> None:
    """Raise `LogDiscontinuity` unless the log (newest checkpoint `local`) continues
    `published`; `root_at(n)` is the log's root at `n` leaves."""
    ours, theirs = epoch_of(base, local.origin), epoch_of(base, published.origin)
    if ours is None or theirs is None:
        return  # another log's checkpoint says nothing of this one
    if theirs < ours:
        return  # an epoch the log closed by a statement of loss
    if theirs > ours:
        raise LogBehindPublished(
            f"A checkpoint of {published.origin!r} was published ({source}), an epoch this "
            f"log ({local.origin!r}, {local.size} leaves) has not reached: the database is "
            f"older than a declared loss. Restore a newer backup.",
            size=local.size,
            publishedSize=published.size,
            publishedOrigin=published.origin,
            source=source,
            origin=local.origin,
        )
    if published.size > local.size:
        raise _behind(local, published.size, source)
    if published.size and await root_at(published.size) != published.root:
        raise _inconsistent(local, published.size, source)


async def ask_witness(
    http: httpx.AsyncClient,
    witness: Witness,
    local: Checkpoint,
    proof: Callable[[int, int], Awaitable[list[bytes]]],
) -> None:
    """Raise `LogDiscontinuity` if the witness holds a tree the log does not continue.

    The log's newest checkpoint goes to the witness with the log's own size as the old
    size: a witness at that size cosigns it again; one at another size answers 409 with
    it. A larger size is a tree the log lacks; a smaller one is checked with the
    consistency proof from there (422 if the witness holds another tree).
    """
    source = f"the witness {witness.name}"
    said = await _submit(http, witness, local, local.size, [])
    if said is None:
        return
    if said > local.size:
        raise _behind(local, said, source)
    if said == local.size:
        raise _inconsistent(local, said, source)  # another root at the log's size
    hashes = [] if said == 0 else await proof(said, local.size)  # none from 0 (a new log)
    answer = await _submit(http, witness, local, said, hashes)
    if answer == -1:
        raise _inconsistent(local, said, source)


async def _submit(
    http: httpx.AsyncClient, witness: Witness, local: Checkpoint, old: int, proof: list[bytes]
) -> int | None:
    """Submit from `old`: the size of a 409, -1 for a proof refused (422), else `None`
    (cosigned, or no answer that says anything)."""
    lines = "".join(f"{base64.b64encode(h).decode()}\n" for h in proof)
    body = f"old {old}\n{lines}\n{local.note}"
    try:
        response = await http.post(
            f"{witness.url}/add-checkpoint",
            content=body.encode(),
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
    except httpx.HTTPError as exc:
        log.warning(
            "continuity_witness_unreachable", witness=witness.name, error=type(exc).__name__
        )
        return None
    media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if response.status_code == 409 and media == SIZE_MEDIA_TYPE:
        found = _SIZE.fullmatch(response.text)
        return None if found is None else int(found.group(1))
    if response.status_code == 422 and old:
        return -1
    return None


class ContinuityGuard:
    """Whether the sequencer may sign: the log continues what was published of it."""

    def __init__(
        self,
        store: TransparencyLog,
        verifiers: Sequence[NoteVerifier],
        *,
        published: PublishedFile | None = None,
        witnesses: Sequence[Witness] = (),
        ask_every: float = 30.0,
        timeout: float = 5.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._store = store
        self._base = store.base_origin
        self.verifiers = list(verifiers)
        self.published = published
        self._witnesses = tuple(witnesses)
        self._ask_every = ask_every
        self._timeout = timeout
        self._http = http
        self._next_ask = 0.0
        self.halted: LogDiscontinuity | None = None
        """Why nothing is signed, or `None`."""
        self._published_seen = False

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def allows(self) -> bool:
        """Whether the log may be signed now; asks the witnesses every `ask_every`
        seconds (every two while halted), reads the published file every time."""
        now = asyncio.get_running_loop().time()
        ask = bool(self._witnesses) and now >= self._next_ask
        if self.published is None and not ask:
            return self.halted is None  # nothing to read between the witnesses' turns
        if ask:
            self._next_ask = now + (2.0 if self.halted is not None else self._ask_every)
        try:
            await self.check(ask_witnesses=ask)
        except LogDiscontinuity as exc:
            if self.halted is None or self.halted.message != exc.message:
                log.error("log_signing_halted", code=exc.code, **exc.detail)
            self.halted = exc
            self._next_ask = min(self._next_ask, now + 2.0)
        else:
            if self.halted is None:
                await self._first_published()
            if self.halted is not None and (ask or not self._witnesses_halted()):
                log.warning("log_signing_resumed", code=self.halted.code)
                self.halted = None
        HALTED.set(0 if self.halted is None else 1)
        MISSING.set(_missing(self.halted))
        return self.halted is None

    def _witnesses_halted(self) -> bool:
        """Whether the halt came from a witness (lifted only once it is asked again)."""
        return self.halted is not None and str(self.halted.detail.get("source", "")).startswith(
            "the witness"
        )

    async def check(self, *, ask_witnesses: bool = True) -> None:
        """Raise `LogDiscontinuity` if the log does not continue what was published."""
        local = await self._store.latest()
        if local is None:
            return
        if self.published is not None:
            try:
                found = await asyncio.to_thread(self.published.read, self._base, self.verifiers)
            except CheckpointError as exc:
                log.error("published_file_unreadable", error=str(exc))
                found = None
            if found is not None:
                local = await self._again(local, self._against_file(found))
        if ask_witnesses and self._witnesses:
            if self._http is None:
                self._http = httpx.AsyncClient(
                    timeout=self._timeout, follow_redirects=False, trust_env=False
                )
            http = self._http
            answers = await asyncio.gather(
                *(self._ask(http, w, local) for w in self._witnesses), return_exceptions=True
            )
            for answer in answers:
                if isinstance(answer, LogDiscontinuity):
                    raise answer
                if isinstance(answer, Exception):
                    log.warning("continuity_check_failed", error=type(answer).__name__)

    def _against_file(self, found: Checkpoint) -> Callable[[Checkpoint], Awaitable[None]]:
        source = "" if self.published is None else str(self.published.path)

        async def against(local: Checkpoint) -> None:
            await compare(self._base, local, found, self._store.root, source=source)

        return against

    async def _again(
        self, local: Checkpoint, check: Callable[[Checkpoint], Awaitable[None]]
    ) -> Checkpoint:
        """`check(local)`; when it finds the log behind, once more with the newest
        checkpoint if there is a newer one (another replica signed meanwhile, and
        published it): the checkpoint it passed with."""
        try:
            await check(local)
        except LogBehindPublished:
            newest = await self._store.latest()
            if newest is None or newest.size <= local.size:
                raise
            await check(newest)
            return newest
        return local

    async def _ask(self, http: httpx.AsyncClient, witness: Witness, local: Checkpoint) -> None:
        async def asked(checkpoint: Checkpoint) -> None:
            await ask_witness(http, witness, checkpoint, self._store.consistency_proof)

        async with asyncio.timeout(self._timeout * 2 + 1):
            await self._again(local, asked)

    async def _first_published(self) -> None:
        """Start the published file with the newest checkpoint when it has none yet."""
        if self.published is None or self._published_seen:
            return
        if not await asyncio.to_thread(self.published.path.exists):
            latest = await self._store.latest()
            if latest is not None:
                await asyncio.to_thread(self.published.write, latest.note)
        self._published_seen = True

    async def signed(self, checkpoint: Checkpoint) -> None:
        """Keep `checkpoint`, just committed, in the published file (unless the file
        holds a newer one: another replica's)."""
        if self.published is None:
            return
        with contextlib.suppress(CheckpointError):
            held = await asyncio.to_thread(self.published.read, self._base, self.verifiers)
            if held is not None and _newer(self._base, held, checkpoint):
                return
        await asyncio.to_thread(self.published.write, checkpoint.note)


def _newer(base: str, held: Checkpoint, new: Checkpoint) -> bool:
    """Whether `held` is past `new`: a later epoch, or a larger size in the same one."""
    return (epoch_of(base, held.origin) or 0, held.size) > (
        epoch_of(base, new.origin) or 0,
        new.size,
    )


def _missing(halted: LogDiscontinuity | None) -> int:
    if isinstance(halted, LogBehindPublished):
        size, published = halted.detail.get("size"), halted.detail.get("publishedSize")
        if isinstance(size, int) and isinstance(published, int):
            return max(0, published - size)
    return 0
