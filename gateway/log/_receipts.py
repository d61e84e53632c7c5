"""Receipts: a signed promise that an answered request is in the log, or soon will be.

Like a Certificate Transparency SCT, a receipt is given at once: the leaf hash of the
request's access record, its time, the log's origin and the maximum merge delay, signed
with the gateway's receipt key (Ed25519 over the RFC 8785 JSON of those fields). Once the
sequencer has integrated the leaf, `GET /log/tlog-proof?hash=<leafHash>` turns the receipt
into an offline inclusion proof.

Version 2 receipts carry the leaf hash and the signature in base64url without padding,
so that the leaf hash goes into that URL as it stands; version 1 receipts carried
standard base64, and still verify.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from lienthong_client.log import b64url, read_b64

from gateway.log._canonical import canonical_json
from gateway.log._leaf import format_ts
from keys import KeyRing, Signer

__all__ = ["Receipts", "verify_receipt"]


def _payload(receipt: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in receipt.items() if k not in {"kid", "signature"}}


@dataclass(frozen=True, slots=True)
class Receipts:
    """What signs receipts: the receipt key that signs now, the log's origin and its
    maximum merge delay. It pickles: the recorder signs a record's receipt with its
    commit, in its writer process where there is one, not on the event loop."""

    signer: Signer
    origin: str
    merge_delay: float

    @classmethod
    def of(cls, keyring: KeyRing, *, origin: str, merge_delay: float) -> Receipts:
        """Receipts signed with `keyring`'s current receipt key."""
        return cls(keyring.signing("receipts").signer, origin, merge_delay)

    def sign(self, leaf_hash: bytes, *, at: datetime.datetime | None = None) -> dict[str, Any]:
        """A receipt for the leaf, at `at` (now if not given)."""
        payload: dict[str, Any] = {
            "v": 2,
            "origin": self.origin,
            "leafHash": b64url(leaf_hash),
            "timestamp": format_ts(at or datetime.datetime.now(datetime.UTC)),
            # A whole number of seconds as an integer: the same canonical bytes (RFC 8785
            # writes 1.0 as 1), made without the reference's slower path for floats.
            "maxMergeDelaySeconds": int(self.merge_delay)
            if float(self.merge_delay).is_integer()
            else self.merge_delay,
        }
        signature = self.signer.sign(canonical_json(payload))
        return {**payload, "kid": self.signer.kid, "signature": b64url(signature)}


def verify_receipt(receipt: dict[str, Any], public: Ed25519PublicKey) -> bool:
    """Whether `public` signed this receipt (of version 2, or 1 as issued before)."""
    try:
        signature = read_b64(receipt["signature"])
        public.verify(signature, canonical_json(_payload(receipt)))
    except (KeyError, TypeError, ValueError, InvalidSignature):
        return False
    return True
