"""Checking a receipt's signature with the gateway's published receipt keys.

A receipt is signed with Ed25519 over the RFC 8785 JSON of its fields but `kid` and
`signature`; the gateway publishes its keys at `/.well-known/jwks.json`. Version 2
receipts carry the signature in base64url, version 1 in standard base64.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from lienthong_client._answers import Receipt
from lienthong_client.log import read_b64

__all__ = ["ReceiptKeys", "verify_receipt"]


def verify_receipt(receipt: Receipt, key: Ed25519PublicKey) -> bool:
    """Whether `key` signed `receipt`."""
    payload = {k: v for k, v in receipt.document.items() if k not in ("kid", "signature")}
    try:
        key.verify(read_b64(receipt.signature), bytes(rfc8785.dumps(payload)))
    except (InvalidSignature, ValueError, binascii.Error, rfc8785.CanonicalizationError):
        return False
    return True


class ReceiptKeys:
    """The gateway's Ed25519 public keys by `kid`, from its JWKS."""

    def __init__(self) -> None:
        self._keys: dict[str, Ed25519PublicKey] = {}

    def knows(self, kid: str) -> bool:
        return kid in self._keys

    def load(self, jwks: Mapping[str, Any]) -> None:
        for jwk in jwks.get("keys", ()):
            if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or "kid" not in jwk:
                continue
            try:
                self._keys[str(jwk["kid"])] = Ed25519PublicKey.from_public_bytes(
                    read_b64(str(jwk["x"]))
                )
            except (KeyError, ValueError, binascii.Error):
                continue

    def verify(self, receipt: Receipt) -> bool:
        """Whether a known key of the receipt's `kid` signed it."""
        key = self._keys.get(receipt.kid)
        return key is not None and verify_receipt(receipt, key)
