"""Envelope encryption of stored secrets (connector credentials) under key-encryption keys.

Each version of a secret is encrypted with AES-256-GCM under a random data key of its
own; the data key is wrapped (AES-256-GCM again) under a key-encryption key (KEK). The
connector's name, the secret's name and its version are the associated data of both,
so a ciphertext or a wrapped key moved to another row does not open; the wrapped key
also names its KEK.

KEKs are files under `<keys dir>/kek/<created>-<kek_id>.key` (hex, mode 0600), as the
signing keys are kept per purpose. Every KEK in the folder opens the data keys wrapped
under it (found by `kek_id`); the newest wraps new ones. Rotation: make a new KEK,
re-wrap every data key under it (the secret's ciphertext is left as it is), then retire
the old one once no row names it. A KEK's id is derived from the key, so a file whose
name and content disagree is refused.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keys._keyring import KeyRingError

__all__ = [
    "KEK_FOLDER",
    "KekRing",
    "KeyEncryptionKey",
    "SealedSecret",
    "SecretSealError",
    "open_secret",
    "rewrap_secret",
    "seal_secret",
]

log = structlog.get_logger(__name__)

KEK_FOLDER: Final = "kek"
"""Where the key-encryption keys are, under the keys directory."""

_SIZE = 32
_NONCE = 12
_ID_LABEL = b"gateway key-encryption key id v1"
_AAD_LABEL = "gateway connector secret v1"
_STAMP = "%Y%m%dT%H%M%S%fZ"


class SecretSealError(ValueError):
    """A stored secret that does not open: another row's, altered, or its KEK is gone."""


@dataclass(frozen=True, slots=True)
class KeyEncryptionKey:
    """One key-encryption key; its bytes never show in `repr`."""

    kek_id: str
    created: datetime.datetime
    key: bytes = field(repr=False, compare=False)


def _kek_id(key: bytes) -> str:
    """The public id of a KEK: it names the key without revealing anything of it."""
    return hmac.new(key, _ID_LABEL, hashlib.sha256).hexdigest()[:16]


def _load(path: Path) -> KeyEncryptionKey:
    stamp, _, named = path.stem.partition("-")
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise KeyRingError(f"{path}: not a usable key-encryption key") from exc
    if len(key) != _SIZE:
        raise KeyRingError(f"{path}: a key-encryption key is {_SIZE} bytes")
    kek_id = _kek_id(key)
    if named != kek_id:
        raise KeyRingError(f"{path}: the name does not match the key (id {kek_id})")
    try:
        created = datetime.datetime.strptime(stamp, _STAMP).replace(tzinfo=datetime.UTC)
    except ValueError as exc:
        raise KeyRingError(f"{path}: name must start with its creation time") from exc
    return KeyEncryptionKey(kek_id, created, key)


class KekRing:
    """Every key-encryption key of the keys directory, newest last."""

    def __init__(self, keks: Iterable[KeyEncryptionKey]) -> None:
        self._keks = sorted(keks, key=lambda k: k.created)

    def __repr__(self) -> str:
        return f"KekRing({[k.kek_id for k in self._keks]})"

    def __len__(self) -> int:
        return len(self._keks)

    @classmethod
    def load(cls, directory: Path) -> KekRing:
        """Every KEK under `directory/kek/` (none: an empty ring)."""
        return cls(_load(p) for p in sorted((directory / KEK_FOLDER).glob("*.key")))

    @classmethod
    def generate(cls, directory: Path) -> KeyEncryptionKey:
        """Write a new KEK under `directory/kek/`; it wraps new data keys from now on."""
        folder = directory / KEK_FOLDER
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = AESGCM.generate_key(bit_length=256)
        created = datetime.datetime.now(datetime.UTC)
        kek = KeyEncryptionKey(_kek_id(key), created, key)
        path = folder / f"{created.strftime(_STAMP)}-{kek.kek_id}.key"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(key.hex())
        log.info("kek_generated", kek_id=kek.kek_id)
        return kek

    @classmethod
    def ensure(cls, directory: Path) -> KekRing:
        """Load the KEKs, first making one when there is none."""
        ring = cls.load(directory)
        if not ring:
            cls.generate(directory)
            ring = cls.load(directory)
        return ring

    @staticmethod
    def retire(directory: Path, kek_id: str) -> None:
        """Delete the KEK `kek_id`: only once no stored secret is wrapped under it."""
        for path in (directory / KEK_FOLDER).glob(f"*-{kek_id}.key"):
            path.unlink()
            log.info("kek_retired", kek_id=kek_id)

    @property
    def ids(self) -> list[str]:
        """The ids of every KEK, oldest first."""
        return [k.kek_id for k in self._keks]

    def newest(self) -> KeyEncryptionKey:
        """The KEK that wraps new data keys; `KeyRingError` when there is none."""
        if not self._keks:
            raise KeyRingError(
                "no key-encryption key for stored secrets; run `gateway keys generate`"
            )
        return self._keks[-1]

    def find(self, kek_id: str) -> KeyEncryptionKey | None:
        """The KEK with this id, if the folder has it."""
        return next((k for k in self._keks if k.kek_id == kek_id), None)


@dataclass(frozen=True, slots=True)
class SealedSecret:
    """One secret version as stored: which KEK wraps its data key, and the encrypted parts."""

    kek_id: str
    wrapped_key: bytes = field(repr=False)
    nonce: bytes = field(repr=False)
    ciphertext: bytes = field(repr=False)


def _aad(connector: str, name: str, version: int, *more: str) -> bytes:
    # A JSON array: unambiguous whatever the names hold.
    return json.dumps([_AAD_LABEL, connector, name, version, *more]).encode()


def seal_secret(
    ring: KekRing, value: str, *, connector: str, name: str, version: int
) -> SealedSecret:
    """`value` encrypted under a new data key, wrapped under the newest KEK."""
    kek = ring.newest()
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = secrets.token_bytes(_NONCE)
    ciphertext = AESGCM(data_key).encrypt(
        nonce, value.encode("utf-8"), _aad(connector, name, version)
    )
    return SealedSecret(
        kek.kek_id, _wrap(kek, data_key, connector, name, version), nonce, ciphertext
    )


def _wrap(kek: KeyEncryptionKey, data_key: bytes, connector: str, name: str, version: int) -> bytes:
    nonce = secrets.token_bytes(_NONCE)
    aad = _aad(connector, name, version, kek.kek_id)
    return nonce + AESGCM(kek.key).encrypt(nonce, data_key, aad)


def _unwrap(ring: KekRing, sealed: SealedSecret, connector: str, name: str, version: int) -> bytes:
    kek = ring.find(sealed.kek_id)
    if kek is None:
        raise SecretSealError(f"no key-encryption key {sealed.kek_id} in the keys directory")
    wrapped = sealed.wrapped_key
    try:
        return AESGCM(kek.key).decrypt(
            wrapped[:_NONCE], wrapped[_NONCE:], _aad(connector, name, version, kek.kek_id)
        )
    except (InvalidTag, ValueError):
        raise SecretSealError("the data key does not open (another row's, or altered)") from None


def open_secret(
    ring: KekRing, sealed: SealedSecret, *, connector: str, name: str, version: int
) -> str:
    """The value of a stored secret; `SecretSealError` when it does not open."""
    data_key = _unwrap(ring, sealed, connector, name, version)
    try:
        plain = AESGCM(data_key).decrypt(
            sealed.nonce, sealed.ciphertext, _aad(connector, name, version)
        )
    except (InvalidTag, ValueError):
        raise SecretSealError("the secret does not open (another row's, or altered)") from None
    return plain.decode("utf-8")


def rewrap_secret(
    ring: KekRing, sealed: SealedSecret, *, connector: str, name: str, version: int
) -> SealedSecret:
    """The same secret with its data key wrapped under the newest KEK instead."""
    kek = ring.newest()
    data_key = _unwrap(ring, sealed, connector, name, version)
    return SealedSecret(
        kek.kek_id, _wrap(kek, data_key, connector, name, version), sealed.nonce, sealed.ciphertext
    )
