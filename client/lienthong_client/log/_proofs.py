"""Checking an offline proof (c2sp.org/tlog-proof@v1) with the log's checkpoint keys.

A citizen's receipt, turned into a proof, is checked here without the gateway: the
checkpoint's signature and origin, then the leaf's inclusion under its root (RFC 9162).
The proof's `extra` line, when present, is the public leaf itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lienthong_client.log._checkpoint import Checkpoint, CheckpointError, parse_checkpoint
from lienthong_client.log._encoding import b64url
from lienthong_client.log._merkle import ProofError, verify_inclusion
from lienthong_client.log._merkle import leaf_hash as _leaf_hash
from lienthong_client.log._notes import NoteVerifier
from lienthong_client.log._tlog_proof import read_tlog_proof

__all__ = ["ProvenLeaf", "verify_tlog_proof"]


@dataclass(frozen=True, slots=True)
class ProvenLeaf:
    """A leaf hash proven to be in a signed checkpoint, and the leaf when the proof has it.

    `data` is the leaf as the proof carries it (its `extra` line), `None` when the proof
    carries none: then only `leaf_hash` was proven, not what the leaf says. `leaf` is
    `data` read as a JSON object (the public leaf), if it is one.
    """

    index: int
    leaf: dict[str, Any] | None
    checkpoint: Checkpoint
    leaf_hash: bytes
    data: bytes | None = None


def verify_tlog_proof(
    text: str, verifiers: Sequence[NoteVerifier], *, leaf_hash: bytes | None = None
) -> ProvenLeaf:
    """Check a c2sp.org/tlog-proof@v1; `ValueError` saying what is wrong.

    The leaf proven is the one in the proof's `extra` line, which must then hash to
    `leaf_hash` if that is given; without an `extra` line, `leaf_hash` is proven (and
    must be given: a proof alone does not name a leaf).
    """
    proof = read_tlog_proof(text)
    try:
        signed = parse_checkpoint(proof.note, verifiers)
    except CheckpointError as exc:
        raise ValueError(f"the checkpoint does not verify: {exc}") from None
    if proof.extra is not None:
        digest = _leaf_hash(proof.extra)
        if leaf_hash is not None and leaf_hash != digest:
            raise ValueError(
                f"the proof carries another leaf than the hash given: its leaf hashes to "
                f"{b64url(digest)}, not {b64url(leaf_hash)}"
            )
    elif leaf_hash is not None:
        digest = leaf_hash
    else:
        raise ValueError(
            "the proof carries no leaf (`extra` line) and no leaf hash was given: "
            "nothing to check it against"
        )
    try:
        verify_inclusion(proof.index, signed.size, digest, proof.hashes, signed.root)
    except ProofError:
        raise ValueError(
            f"the proof of leaf {proof.index} does not lead to the checkpoint's root"
        ) from None
    leaf = None
    if proof.extra is not None:
        try:
            leaf = json.loads(proof.extra)
        except ValueError:
            leaf = None
    return ProvenLeaf(
        proof.index, leaf if isinstance(leaf, dict) else None, signed, digest, proof.extra
    )
