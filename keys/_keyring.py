"""Signing keys of the gateway: one Ed25519 key per purpose, with rotation.

Keys live as PKCS#8 PEM files under a directory outside the packages (development
keys go to `var/keys/`, which git ignores): `<dir>/<purpose>/<created>-<kid>.pem`.
The newest key of a purpose signs; every key of the purpose still verifies, so
rotation never invalidates what was signed before.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from joserfc.jwk import OKPKey

from keys import _ed25519 as ed25519

__all__ = ["PURPOSES", "KeyRing", "KeyRingError", "Signer", "SigningKey"]

log = structlog.get_logger(__name__)

PURPOSES: Final = ("checkpoints", "consent", "receipts")
"""What keys sign: log checkpoints, consent grants, request receipts."""


class KeyRingError(RuntimeError):
    """The key directory is missing a key, or holds one that cannot be used."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One Ed25519 key pair of one purpose; its private half never shows in `repr`."""

    purpose: str
    kid: str
    created: datetime.datetime
    private: Ed25519PrivateKey = field(repr=False, compare=False)
    signer: Signer = field(init=False, repr=False, compare=False)
    """Its signing half alone: `private` as libsodium holds it, which signs faster
    (`keys._ed25519`), and pickles for a process of the gateway's own."""

    def __post_init__(self) -> None:
        signer = Signer(self.kid, ed25519.secret_key(self.private))
        object.__setattr__(self, "signer", signer)

    @property
    def public(self) -> Ed25519PublicKey:
        """The public half."""
        return self.private.public_key()

    def public_jwk(self) -> dict[str, Any]:
        """The public key as a JWK with its `kid` and intended use."""
        jwk = OKPKey.import_key(self.public).as_dict(private=False)
        return {**jwk, "kid": self.kid, "alg": "EdDSA", "use": "sig", "purpose": self.purpose}

    def sign(self, message: bytes) -> bytes:
        """An Ed25519 signature of `message` (the same bytes as `private.sign`'s)."""
        return self.signer.sign(message)


@dataclass(frozen=True, slots=True)
class Signer:
    """A signing key's `kid` and its private half as libsodium holds it: what signs.

    Nothing else (no creation time, no OpenSSL object), so that it pickles for a process
    of the gateway's own (the recorder's writer process signs receipts with it). Its
    secret never shows in `repr`.
    """

    kid: str
    secret: bytes = field(repr=False)

    def sign(self, message: bytes) -> bytes:
        """An Ed25519 signature of `message`, as `SigningKey.sign` makes it."""
        return ed25519.sign(self.secret, message)


def _thumbprint(private: Ed25519PrivateKey) -> str:
    """RFC 7638 thumbprint of the public key: the key's `kid`."""
    return str(OKPKey.import_key(private.public_key()).thumbprint())


def _load(purpose: str, path: Path) -> SigningKey:
    try:
        key = OKPKey.import_key(path.read_bytes())
    except Exception as exc:
        raise KeyRingError(f"{path}: not a usable PEM private key") from exc
    private = key.private_key
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyRingError(f"{path}: not an Ed25519 private key")
    stamp = path.name.split("-", 1)[0]
    try:
        created = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=datetime.UTC)
    except ValueError as exc:
        raise KeyRingError(f"{path}: name must start with its creation time") from exc
    return SigningKey(purpose, _thumbprint(private), created, private)


class KeyRing:
    """All signing keys, by purpose, newest last."""

    def __init__(self, keys: Iterable[SigningKey]) -> None:
        self._by_purpose: dict[str, list[SigningKey]] = {}
        for key in sorted(keys, key=lambda k: k.created):
            self._by_purpose.setdefault(key.purpose, []).append(key)

    def __repr__(self) -> str:
        counts = {p: len(ks) for p, ks in sorted(self._by_purpose.items())}
        return f"KeyRing({counts})"

    @classmethod
    def load(cls, directory: Path) -> KeyRing:
        """Read every key under `directory`; every purpose must have at least one."""
        keys = [
            _load(purpose, path)
            for purpose in PURPOSES
            for path in sorted((directory / purpose).glob("*.pem"))
        ]
        ring = cls(keys)
        missing = [p for p in PURPOSES if p not in ring._by_purpose]
        if missing:
            raise KeyRingError(
                f"{directory}: no key for {', '.join(missing)}; "
                "run `gateway keys generate` (development) or install the keys"
            )
        return ring

    @classmethod
    def generate(cls, directory: Path, purposes: Iterable[str] = PURPOSES) -> list[SigningKey]:
        """Write a new key for each of `purposes`; it becomes the signing key."""
        made = []
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for purpose in purposes:
            if purpose not in PURPOSES:
                raise KeyRingError(f"unknown purpose {purpose!r}; one of {', '.join(PURPOSES)}")
            folder = directory / purpose
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            private = Ed25519PrivateKey.generate()
            created = datetime.datetime.now(datetime.UTC)
            kid = _thumbprint(private)
            path = folder / f"{created:%Y%m%dT%H%M%S%f}Z-{kid}.pem"
            pem = OKPKey.import_key(private).as_pem(private=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
            log.info("key_generated", purpose=purpose, kid=kid)
            made.append(SigningKey(purpose, kid, created, private))
        return made

    @classmethod
    def ensure(cls, directory: Path) -> KeyRing:
        """Load the keys, first generating one for each purpose that has none."""
        missing = [p for p in PURPOSES if not any((directory / p).glob("*.pem"))]
        if missing:
            cls.generate(directory, missing)
        return cls.load(directory)

    def signing(self, purpose: str) -> SigningKey:
        """The key that signs for `purpose` now: the newest."""
        return self._by_purpose[purpose][-1]

    def verifying(self, purpose: str) -> list[SigningKey]:
        """Every key that verifies for `purpose`, oldest first."""
        return list(self._by_purpose.get(purpose, ()))

    def find(self, kid: str) -> SigningKey | None:
        """The key with this `kid`, of any purpose."""
        return next((k for ks in self._by_purpose.values() for k in ks if k.kid == kid), None)

    def jwks(self) -> dict[str, Any]:
        """Every public key, for `/.well-known/jwks.json`."""
        return {"keys": [k.public_jwk() for ks in self._by_purpose.values() for k in ks]}
