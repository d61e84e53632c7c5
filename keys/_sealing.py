"""Envelope encryption of personal parts: a data key per part, wrapped per person.

A personal part is sealed with AES-256-GCM under a random data key of its own; the data
key is wrapped (AES-256-GCM again) under a key-encryption key derived from the key of
each person the part names. Whoever holds one of those persons' keys can open the part;
once every one of them is deleted, nobody can (crypto-shredding). The record's id is
the associated data of both, so a sealed part or a wrapped key moved to another record
does not open.

Sealed bytes: a 12-byte nonce, then the ciphertext with its 16-byte tag. A wrapped key
is the same form around the 32-byte data key (60 bytes).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["SealError", "open_sealed", "seal", "unwrap_key", "wrap_key"]

_NONCE = 12
_WRAP_LABEL = b"gateway personal part key wrap v1"


class SealError(ValueError):
    """A sealed part or wrapped key does not open with the key given (wrong key, or altered)."""


def _kek(person_key: bytes) -> bytes:
    """The key-encryption key of one person, kept apart from their commitment key."""
    return hmac.new(person_key, _WRAP_LABEL, hashlib.sha256).digest()


def _encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(_NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _decrypt(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], aad)
    except (InvalidTag, ValueError):
        raise SealError("does not open with this key (another key, or altered)") from None


def seal(plaintext: bytes, record_id: str) -> tuple[bytes, bytes]:
    """`(data_key, sealed)`: `plaintext` sealed under a new data key, bound to the record."""
    data_key = AESGCM.generate_key(bit_length=256)
    return data_key, _encrypt(data_key, plaintext, record_id.encode())


def open_sealed(data_key: bytes, sealed: bytes, record_id: str) -> bytes:
    """The plaintext of a sealed part; `SealError` when it does not open."""
    return _decrypt(data_key, sealed, record_id.encode())


def wrap_key(person_key: bytes, data_key: bytes, record_id: str) -> bytes:
    """`data_key` wrapped for one person (their 32-byte key), bound to the record."""
    return _encrypt(_kek(person_key), data_key, record_id.encode())


def unwrap_key(person_key: bytes, wrapped: bytes, record_id: str) -> bytes:
    """The data key a person's wrapped copy holds; `SealError` when it does not open."""
    return _decrypt(_kek(person_key), wrapped, record_id.encode())
