"""Reference witness of transparency logs (c2sp.org/tlog-witness), its own process.

``POST /add-checkpoint`` takes ``old <size>``, the consistency proof from that size
(one base64 hash a line, at most 63), an empty line and a signed checkpoint. It
cosigns (c2sp.org/tlog-cosignature, Ed25519) only a checkpoint that one of the log
keys it was given signed, and that is consistent with the last checkpoint of that log
it cosigned:

- an origin it has no key for is 404; a checkpoint no key of it signed is 403;
- a malformed body, or an old size above the checkpoint's, is 400;
- an old size that is not the size it last cosigned is 409, with that size as the body
  (``text/x.tlog.size``): the log must prove consistency from there; the same size
  with another root is 409 too (a fork);
- a consistency proof that does not verify is 422;
- else it keeps the new size and root, on disk before it answers, and answers the
  cosignature line. The check and the update are one step under a lock.

Its state (per log: size and root) is a JSON file written whole and moved into place:
a restart keeps it. ``GET /key`` gives its verifier key, ``GET /healthz`` its health.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI, Request, Response
from lienthong_client.log import (
    EMPTY_ROOT,
    BadCheckpointSignature,
    CheckpointError,
    NoteVerifier,
    ProofError,
    UnknownCheckpointKey,
    cosign,
    cosigner_key,
    parse_checkpoint,
    verify_consistency,
)

__all__ = ["SIZE_MEDIA_TYPE", "WitnessState", "create_app"]

SIZE_MEDIA_TYPE: Final = "text/x.tlog.size"
_OLD: Final = re.compile(r"old (0|[1-9][0-9]{0,18})")
_MAX_PROOF: Final = 63
_MAX_BODY: Final = 64 * 1024


class WitnessState:
    """The last checkpoint cosigned per log origin: (size, root), kept in a JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._logs: dict[str, tuple[int, bytes]] = {}
        if path.exists():
            stored = json.loads(path.read_text(encoding="utf-8"))
            self._logs = {
                origin: (int(v["size"]), base64.b64decode(v["root"]))
                for origin, v in stored.items()
            }

    def get(self, origin: str) -> tuple[int, bytes]:
        return self._logs.get(origin, (0, EMPTY_ROOT))

    def put(self, origin: str, size: int, root: bytes) -> None:
        """Keep (size, root) for `origin`, on disk before returning."""
        logs = {**self._logs, origin: (size, root)}
        body = {o: {"size": s, "root": base64.b64encode(r).decode()} for o, (s, r) in logs.items()}
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("w", encoding="utf-8") as out:
            json.dump(body, out, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(self.path)
        self._logs = logs


def _text(status: int, message: str, media_type: str = "text/plain; charset=utf-8") -> Response:
    # The header as given: a 409's `text/x.tlog.size` is exact, without a charset.
    return Response(message.encode(), status_code=status, headers={"Content-Type": media_type})


def _request(body: bytes) -> tuple[int, list[bytes], str]:
    """(old size, consistency proof, checkpoint note) of an add-checkpoint body."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the body is UTF-8 text") from None
    head, separator, note = text.partition("\n\n")
    if not separator:
        raise ValueError("an empty line ends the old size and the proof")
    lines = head.split("\n")
    found = _OLD.fullmatch(lines[0])
    if found is None:
        raise ValueError("the first line is `old <size>`")
    if len(lines) - 1 > _MAX_PROOF:
        raise ValueError(f"at most {_MAX_PROOF} consistency proof lines")
    proof = []
    for line in lines[1:]:
        try:
            digest = base64.b64decode(line, validate=True)
        except (ValueError, binascii.Error):
            raise ValueError("a proof line is one base64 hash") from None
        if len(digest) != 32:
            raise ValueError("a proof line is one base64 hash")
        proof.append(digest)
    return int(found.group(1)), proof, note


def create_app(
    *,
    name: str,
    key: Ed25519PrivateKey,
    logs: Mapping[str, Sequence[NoteVerifier]],
    state: WitnessState,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """The witness `name` cosigning with `key` the logs of `logs` (origin -> its keys)."""
    app = FastAPI(title=f"Sandbox: witness {name}", version="1")
    lock = asyncio.Lock()
    verifier = cosigner_key(name, key.public_key())
    app.state.cosigned = 0

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        body = await request.body()
        if len(body) > _MAX_BODY:
            return _text(400, "the body is too large\n")
        try:
            old, proof, note = _request(body)
        except ValueError as exc:
            return _text(400, f"{exc}\n")
        origin = note.split("\n", 1)[0]
        keys = logs.get(origin)
        if keys is None:
            return _text(404, "unknown log origin\n")
        try:
            checkpoint = parse_checkpoint(note, list(keys))
        except (UnknownCheckpointKey, BadCheckpointSignature):
            return _text(403, "no key of this log signed the checkpoint\n")
        except CheckpointError as exc:
            return _text(400, f"{exc}\n")
        if old > checkpoint.size:
            return _text(400, "the old size is above the checkpoint's size\n")
        async with lock:
            size, root = state.get(origin)
            if old != size:
                return _text(409, f"{size}\n", SIZE_MEDIA_TYPE)
            if old == checkpoint.size:
                if checkpoint.root != root:
                    return _text(409, f"{size}\n", SIZE_MEDIA_TYPE)
                if proof:  # the proof between equal sizes is empty (RFC 9162 2.1.4.2)
                    return _text(422, "the consistency proof does not verify\n")
            elif old == 0:
                if proof:
                    return _text(422, "a proof from size 0 is empty\n")
            else:
                try:
                    verify_consistency(old, checkpoint.size, root, checkpoint.root, proof)
                except ProofError:
                    return _text(422, "the consistency proof does not verify\n")
            # Kept on disk before the cosignature leaves, in the same step as the check.
            await asyncio.to_thread(state.put, origin, checkpoint.size, checkpoint.root)
            app.state.cosigned += 1
        text = note[: note.rfind("\n\n") + 1]  # the text its signature was checked over
        return _text(200, cosign(text, name, key, int(clock())))

    @app.get("/key")
    async def witness_key() -> Response:
        return _text(200, verifier.text + "\n")

    @app.get("/healthz")
    async def healthz() -> Response:
        body: dict[str, Any] = {"status": "ok", "witness": name, "cosigned": app.state.cosigned}
        return Response(json.dumps(body), media_type="application/json")

    return app
