"""The public read API of the access log: no sign-in, no personal data.

GET /log/checkpoint                          the newest checkpoint its witnesses cosigned (C2SP)
GET /log/checkpoint/latest                   the newest signed checkpoint, cosigned or not
GET /log/key                                 the checkpoint verifier keys, newest first
GET /log/tile/<L>/<N>[.p/<W>]                hash tiles (c2sp.org/tlog-tiles)
GET /log/tile/entries/<N>[.p/<W>]            public leaves, uint16-length-prefixed
GET /log/proof/inclusion?index=I&size=S      or ?hash=<base64url leaf hash>&size=S
GET /log/proof/consistency?first=A&second=B
GET /log/tlog-proof?index=I | ?hash=H        an offline proof (c2sp.org/tlog-proof)

Hashes in the JSON answers are base64url without padding, as receipts' `leafHash`; a
`hash` parameter may be base64url or standard base64 (as version 1 receipts wrote it),
padded or not, even with its `+` pasted unescaped. The offline proof is a C2SP text, in
standard base64, with the public leaf in its `extra` line: the leaf the entry bundles
publish, nothing personal, so that it verifies on its own
(`gateway audit verify-proof`).

With witnesses configured (`GATEWAY_WITNESSES`), `/log/checkpoint` is the newest
checkpoint with the cosignatures `GATEWAY_WITNESS_QUORUM` asks for, their lines after
the log's signature; an offline proof is against it when it holds the leaf, else
against the newest checkpoint, with the cosignatures that one has (perhaps none).
Without witnesses, both are the newest checkpoint.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from gateway.errors import InvalidArgument, NotFound
from gateway.log import TILE_WIDTH, b64url, parse_tile_path, read_leaf_hash, tlog_proof
from gateway.log.store import TransparencyLog
from gateway.state import State
from keys import verifier_key

__all__ = ["log_router"]

_IMMUTABLE = "public, max-age=31536000, immutable"


def _b64(hashes: list[bytes]) -> list[str]:
    return [b64url(h) for h in hashes]


def _leaf_hash(value: str) -> bytes:
    # A `+` of standard base64 pasted unescaped reaches here as a space.
    try:
        return read_leaf_hash(value.replace(" ", "+"))
    except ValueError:
        raise InvalidArgument(
            "A leaf hash is 32 bytes in base64url (or standard base64).", argument="hash"
        ) from None


async def _index_of(store: TransparencyLog, index: int | None, digest: str | None) -> int:
    """The leaf index asked for, by index or by leaf hash (exactly one of them)."""
    if digest is not None and index is None:
        found, _ = await store.find_leaf(_leaf_hash(digest))
        return found
    if index is not None and digest is None:
        return index
    raise InvalidArgument("Give either `index` or `hash`.", argument="index")


def _note(note: str) -> Response:
    return Response(
        note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-cache"}
    )


def log_router() -> APIRouter:
    """The routes under `/log`."""
    router = APIRouter(prefix="/log", tags=["log"])

    @router.get("/checkpoint")
    async def checkpoint(state: State) -> Response:
        needed = state.settings.cosignatures_needed
        found = await state.log.cosigned(needed, state.settings.witness_names)
        if found is None:
            if needed and await state.log.latest() is not None:
                raise NotFound(
                    f"No checkpoint has the {needed} witness cosignatures it needs yet; the "
                    "newest, not yet cosigned, is at /log/checkpoint/latest.",
                    kind="Checkpoint",
                )
            raise NotFound("No checkpoint has been signed yet.", kind="Checkpoint")
        return _note(found.note)

    @router.get("/checkpoint/latest")
    async def latest_checkpoint(state: State) -> Response:
        found = await state.log.cosigned(0, state.settings.witness_names)
        if found is None:
            raise NotFound("No checkpoint has been signed yet.", kind="Checkpoint")
        return _note(found.note)

    @router.get("/key")
    async def key(state: State) -> Response:
        store = state.log
        keys = [verifier_key(v.name, v.public) for v in reversed(store.verifiers())]
        return Response("\n".join(keys) + "\n", media_type="text/plain; charset=utf-8")

    @router.get("/tile/{path:path}")
    async def tile(state: State, path: str) -> Response:
        level, index, width = parse_tile_path(path)
        store = state.log
        if level == "entries":
            body = await store.entries(index, width)
        else:
            body = await store.tile(int(level), index, width)
        full = width == TILE_WIDTH
        return Response(
            body,
            media_type="application/octet-stream",
            headers={"Cache-Control": _IMMUTABLE if full else "no-cache"},
        )

    @router.get("/proof/inclusion")
    async def inclusion(
        state: State,
        size: Annotated[int, Query(ge=1)],
        index: Annotated[int | None, Query(ge=0)] = None,
        hash: Annotated[str | None, Query()] = None,
    ) -> dict[str, Any]:
        store = state.log
        index = await _index_of(store, index, hash)
        proof = await store.inclusion_proof(index, size)
        return {"index": index, "size": size, "hashes": _b64(proof)}

    @router.get("/proof/consistency")
    async def consistency(
        state: State,
        first: Annotated[int, Query(ge=1)],
        second: Annotated[int, Query(ge=1)],
    ) -> dict[str, Any]:
        proof = await state.log.consistency_proof(first, second)
        return {"first": first, "second": second, "hashes": _b64(proof)}

    @router.get("/tlog-proof")
    async def offline_proof(
        state: State,
        index: Annotated[int | None, Query(ge=0)] = None,
        hash: Annotated[str | None, Query()] = None,
    ) -> Response:
        store = state.log
        index = await _index_of(store, index, hash)
        latest = await store.to_prove(
            state.settings.cosignatures_needed, index, witnesses=state.settings.witness_names
        )
        if latest is None:
            raise NotFound("The leaf is not in a signed checkpoint yet.", kind="Leaf")
        leaf = await store.leaf(index)
        proof = await store.inclusion_proof(index, latest.size)
        return Response(
            tlog_proof(index, proof, latest, extra=leaf), media_type="text/plain; charset=utf-8"
        )

    return router
