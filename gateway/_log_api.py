"""The public read API of the access log: no sign-in, no personal data.

GET /log/checkpoint                          the newest signed checkpoint (C2SP)
GET /log/key                                 the checkpoint verifier keys, newest first
GET /log/tile/<L>/<N>[.p/<W>]                hash tiles (c2sp.org/tlog-tiles)
GET /log/tile/entries/<N>[.p/<W>]            public leaves, uint16-length-prefixed
GET /log/proof/inclusion?index=I&size=S      or ?hash=<base64url leaf hash>&size=S
GET /log/proof/consistency?first=A&second=B
GET /log/tlog-proof?index=I | ?hash=H        an offline proof (c2sp.org/tlog-proof)
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from gateway.accesslog import TILE_WIDTH, Checkpoint, TransparencyLog, tile_path
from gateway.errors import InvalidArgument, NotFound
from keys import verifier_key

if TYPE_CHECKING:
    from gateway.app import GatewayState

__all__ = ["log_router", "parse_tile_path", "tile_path", "tlog_proof"]

_INDEX_PART = re.compile(r"x[0-9]{3}")
_LAST_PART = re.compile(r"[0-9]{3}")
_NUMBER = re.compile(r"0|[1-9][0-9]{0,2}")
_MAX_TILE = (2**63 - 1) >> 8  # the first hash of a tile must have a 64-bit index
_IMMUTABLE = "public, max-age=31536000, immutable"


def parse_tile_path(path: str) -> tuple[str, int, int]:
    """`<L or entries>`, `N`, `W` of a tile path (W = 256 for a full tile)."""
    parts = path.split("/")
    if len(parts) < 2:
        raise NotFound("No such tile.", kind="Tile")
    level, rest = parts[0], parts[1:]
    width = TILE_WIDTH
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        if not _NUMBER.fullmatch(rest[-1]) or not 0 < int(rest[-1]) < TILE_WIDTH:
            raise NotFound("No such tile.", kind="Tile")
        width = int(rest[-1])
        rest = [*rest[:-2], rest[-2][:-2]]
    ok = (
        0 < len(rest) <= 7
        and all(_INDEX_PART.fullmatch(p) for p in rest[:-1])
        and bool(_LAST_PART.fullmatch(rest[-1]))
    )
    if level != "entries" and (not _NUMBER.fullmatch(level) or int(level) > 7):
        ok = False
    if not ok:
        raise NotFound("No such tile.", kind="Tile")
    index = int("".join(p.lstrip("x") for p in rest))
    # One spelling per tile (no `x000/005` for `005`): caches key on the path.
    if index > _MAX_TILE or tile_path(index) != "/".join(rest):
        raise NotFound("No such tile.", kind="Tile")
    return level, index, width


def tlog_proof(
    index: int, hashes: list[bytes], checkpoint: Checkpoint, *, extra: bytes | None = None
) -> str:
    """An offline proof of inclusion (c2sp.org/tlog-proof@v1).

    `extra`: opaque data carried along; the gateway puts the public leaf there, so the
    proof holds everything needed to verify it without the log.
    """
    lines = ["c2sp.org/tlog-proof@v1"]
    if extra is not None:
        lines.append(f"extra {base64.b64encode(extra).decode()}")
    lines.append(f"index {index}")
    lines += [base64.b64encode(h).decode() for h in hashes]
    return "\n".join(lines) + "\n\n" + checkpoint.note


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


def _leaf_hash(value: str) -> bytes:
    try:
        digest = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, binascii.Error):
        digest = b""
    if len(digest) != 32:
        raise InvalidArgument("A leaf hash is 32 bytes in base64url.", argument="hash")
    return digest


async def _index_of(store: TransparencyLog, index: int | None, digest: str | None) -> int:
    """The leaf index asked for, by index or by leaf hash (exactly one of them)."""
    if digest is not None and index is None:
        found, _ = await store.find_leaf(_leaf_hash(digest))
        return found
    if index is not None and digest is None:
        return index
    raise InvalidArgument("Give either `index` or `hash`.", argument="index")


def _log(request: Request) -> TransparencyLog:
    state: GatewayState = request.app.state.gateway
    return state.log


def log_router() -> APIRouter:
    """The routes under `/log`."""
    router = APIRouter(prefix="/log", tags=["log"])

    @router.get("/checkpoint")
    async def checkpoint(request: Request) -> Response:
        latest = await _log(request).latest()
        if latest is None:
            raise NotFound("No checkpoint has been signed yet.", kind="Checkpoint")
        return Response(
            latest.note,
            media_type="text/plain; charset=utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    @router.get("/key")
    async def key(request: Request) -> Response:
        store = _log(request)
        keys = [verifier_key(v.name, v.public) for v in reversed(store.verifiers())]
        return Response("\n".join(keys) + "\n", media_type="text/plain; charset=utf-8")

    @router.get("/tile/{path:path}")
    async def tile(request: Request, path: str) -> Response:
        level, index, width = parse_tile_path(path)
        store = _log(request)
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
        request: Request,
        size: Annotated[int, Query(ge=1)],
        index: Annotated[int | None, Query(ge=0)] = None,
        hash: Annotated[str | None, Query()] = None,
    ) -> dict[str, Any]:
        store = _log(request)
        index = await _index_of(store, index, hash)
        proof = await store.inclusion_proof(index, size)
        return {"index": index, "size": size, "hashes": _b64(proof)}

    @router.get("/proof/consistency")
    async def consistency(
        request: Request,
        first: Annotated[int, Query(ge=1)],
        second: Annotated[int, Query(ge=1)],
    ) -> dict[str, Any]:
        proof = await _log(request).consistency_proof(first, second)
        return {"first": first, "second": second, "hashes": _b64(proof)}

    @router.get("/tlog-proof")
    async def offline_proof(
        request: Request,
        index: Annotated[int | None, Query(ge=0)] = None,
        hash: Annotated[str | None, Query()] = None,
    ) -> Response:
        store = _log(request)
        index = await _index_of(store, index, hash)
        latest = await store.latest()
        if latest is None or index >= latest.size:
            raise NotFound("The leaf is not in a signed checkpoint yet.", kind="Leaf")
        proof = await store.inclusion_proof(index, latest.size)
        return Response(tlog_proof(index, proof, latest), media_type="text/plain; charset=utf-8")

    return router
