"""The sandbox issuer's Ed25519 signing key: kept in a PEM file, or made per process."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jwt
from joserfc.jwk import OKPKey

from keys import eddsa_allowed

ALGORITHM = "EdDSA"


@dataclass(frozen=True, slots=True)
class IssuerKey:
    """The key tokens are signed with; its private half never shows in `repr`."""

    kid: str
    private: Ed25519PrivateKey = field(repr=False, compare=False)

    @classmethod
    def from_private(cls, private: Ed25519PrivateKey) -> IssuerKey:
        """Wrap `private`; its `kid` is the RFC 7638 thumbprint of the public key."""
        return cls(str(OKPKey.import_key(private.public_key()).thumbprint()), private)

    def public_jwk(self) -> dict[str, Any]:
        """The public key as a JWK, with `kid`, `alg` and `use`."""
        jwk = OKPKey.import_key(self.private.public_key()).as_dict(private=False)
        return {**jwk, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}

    def sign(self, claims: Mapping[str, Any], *, typ: str = "at+jwt") -> str:
        """An access token of `claims`, header `{"alg": "EdDSA", "kid", "typ": "at+jwt"}`.

        `at+jwt` is RFC 9068's type of a JWT access token: the gateway refuses tokens of
        other types (logout tokens, security events). An ID token is `typ` `JWT`.
        """
        header = {"alg": ALGORITHM, "kid": self.kid, "typ": typ}
        with eddsa_allowed():
            return jwt.encode(
                header, dict(claims), OKPKey.import_key(self.private), algorithms=[ALGORITHM]
            )


def _read(path: Path) -> Ed25519PrivateKey:
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not an unencrypted PEM private key") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return private


def _write(path: Path, private: Ed25519PrivateKey) -> None:
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # O_EXCL: two issuers started at once must not overwrite each other's key.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)


def load_or_create(path: Path | None) -> IssuerKey:
    """The key in `path`, generated and written (mode 0600) first if the file is missing.

    With no path, a fresh key that lives as long as the process.
    """
    if path is None:
        return IssuerKey.from_private(Ed25519PrivateKey.generate())
    if not path.exists():
        # FileExistsError: another process wrote it a moment ago; use that one.
        with contextlib.suppress(FileExistsError):
            _write(path, Ed25519PrivateKey.generate())
    return IssuerKey.from_private(_read(path))
