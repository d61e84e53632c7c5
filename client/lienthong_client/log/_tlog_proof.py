"""Offline proofs of inclusion (c2sp.org/tlog-proof@v1).

    c2sp.org/tlog-proof@v1
    extra <base64 of opaque data>        (optional: the gateway puts the public leaf)
    index <leaf index>
    <base64 hash>                        (the RFC 6962 inclusion proof, one per line)
    ...
    <blank line>
    <the signed checkpoint the proof leads to>

With the leaf in `extra`, the proof holds everything needed to verify it without the
log: a citizen's receipt, kept for years.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from lienthong_client.log._checkpoint import DECIMAL, Checkpoint

__all__ = ["TLOG_PROOF", "TlogProof", "read_tlog_proof", "tlog_proof"]

TLOG_PROOF = "c2sp.org/tlog-proof@v1"


@dataclass(frozen=True, slots=True)
class TlogProof:
    """A proof as written, not yet checked: its checkpoint is still a note to verify."""

    index: int
    hashes: list[bytes]
    note: str
    extra: bytes | None = None


def tlog_proof(
    index: int, hashes: list[bytes], checkpoint: Checkpoint, *, extra: bytes | None = None
) -> str:
    """The text of an offline proof that leaf `index` is in `checkpoint`."""
    lines = [TLOG_PROOF]
    if extra is not None:
        lines.append(f"extra {base64.b64encode(extra).decode()}")
    lines.append(f"index {index}")
    lines += [base64.b64encode(h).decode() for h in hashes]
    return "\n".join(lines) + "\n\n" + checkpoint.note


def read_tlog_proof(text: str) -> TlogProof:
    """The parts of an offline proof; `ValueError` saying what is malformed."""
    head, sep, note = text.partition("\n\n")
    lines = head.split("\n")
    if not sep or lines[0] != TLOG_PROOF:
        raise ValueError(f"not a {TLOG_PROOF} proof")
    rest = lines[1:]
    extra = None
    if rest and rest[0].startswith("extra "):
        extra = _b64(rest.pop(0)[len("extra ") :])
    if not rest or not rest[0].startswith("index "):
        raise ValueError("the proof has no `index` line")
    index_text = rest.pop(0)[len("index ") :]
    if not DECIMAL.fullmatch(index_text):
        raise ValueError("the index is a decimal number")
    return TlogProof(int(index_text), [_b64(h) for h in rest], note, extra)


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a line of the proof is not base64") from None
