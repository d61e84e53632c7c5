"""Receipts: a signed promise that an answered request is in the log, or soon will be.

Like a Certificate Transparency SCT, a receipt is given at once: the leaf hash of the
request's access record, its time, the log's origin and the maximum merge delay, signed
with the gateway's receipt key (Ed25519 over the RFC 8785 JSON of those fields). Once the
sequencer has integrated the leaf, `GET /log/tlog-proof?hash=...` turns the receipt into
an offline inclusion proof.
"""

from __future__ import annotations

import base64
import datetime
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.log._leaf import format_ts
from keys import KeyRing

__all__ = ["make_receipt", "verify_receipt"]


def _payload(receipt: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in receipt.items() if k not in {"kid", "signature"}}


def make_receipt(
    keyring: KeyRing,
    *,
    leaf_hash: bytes,
    origin: str,
    merge_delay: float,
    at: datetime.datetime | None = None,
) -> dict[str, Any]:
    """A receipt for the leaf, signed with the current receipt key."""
    payload: dict[str, Any] = {
        "v": 1,
        "origin": origin,
        "leafHash": base64.b64encode(leaf_hash).decode(),
        "timestamp": format_ts(at or datetime.datetime.now(datetime.UTC)),
        "maxMergeDelaySeconds": merge_delay,
    }
    key = keyring.signing("receipts")
    signature = key.sign(rfc8785.dumps(payload))
    return {**payload, "kid": key.kid, "signature": base64.b64encode(signature).decode()}


def verify_receipt(receipt: dict[str, Any], public: Ed25519PublicKey) -> bool:
    """Whether `public` signed this receipt."""
    try:
        signature = base64.b64decode(receipt["signature"], validate=True)
        public.verify(signature, rfc8785.dumps(_payload(receipt)))
    except (KeyError, ValueError, InvalidSignature):
        return False
    return True
