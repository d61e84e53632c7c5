"""Tiles (c2sp.org/tlog-tiles): the log's hashes and leaves in immutable, cacheable pieces.

A tile of level `L` holds 256 consecutive hashes of Merkle level `8 * L`; the entry
bundle `N` holds public leaves `256 * N` to `256 * N + 255`, each prefixed by its
length (uint16, big-endian). A tile not yet full is served as partial, `.p/<W>`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from gateway.errors import NotFound

__all__ = [
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "entry_bundle",
    "parse_tile_path",
    "read_entry_bundle",
    "tile_name",
    "tile_path",
]

TILE_HEIGHT: Final = 8
TILE_WIDTH: Final = 1 << TILE_HEIGHT

_INDEX_PART = re.compile(r"x[0-9]{3}")
_LAST_PART = re.compile(r"[0-9]{3}")
_NUMBER = re.compile(r"0|[1-9][0-9]{0,2}")
_MAX_TILE = (2**63 - 1) >> TILE_HEIGHT  # the first hash of a tile must have a 64-bit index


def tile_path(n: int) -> str:
    """The `<N>` of a tile path: 1234067 becomes `x001/x234/067`."""
    parts = [f"{n % 1000:03d}"]
    n //= 1000
    while n > 0:
        parts.insert(0, f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(parts)


def tile_name(n: int, width: int) -> str:
    """`<N>` with `.p/<W>` when the tile holds fewer than 256 hashes."""
    return tile_path(n) + ("" if width == TILE_WIDTH else f".p/{width}")


def parse_tile_path(path: str) -> tuple[str, int, int]:
    """`<L or entries>`, `N`, `W` of a tile path (W = 256 for a full tile).

    Raises `NotFound` for anything that is not the one spelling of a tile.
    """
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


def entry_bundle(leaves: Iterable[bytes]) -> bytes:
    """An entry bundle: each public leaf prefixed by its length (uint16)."""
    out = bytearray()
    for leaf in leaves:
        out += len(leaf).to_bytes(2, "big") + leaf
    return bytes(out)


def read_entry_bundle(bundle: bytes) -> list[bytes]:
    """The leaves of an entry bundle (a cut-short last entry comes back short)."""
    out, at = [], 0
    while at + 2 <= len(bundle):
        length = int.from_bytes(bundle[at : at + 2], "big")
        out.append(bundle[at + 2 : at + 2 + length])
        at += 2 + length
    return out
