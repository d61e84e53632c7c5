"""Request tokens, signed to the gateway's contract (README, "Calling the gateway").

Each request carries a fresh token: `typ` `gw-request+jwt`, `iss` the client id, `aud`
the gateway's origin, `iat`/`exp` at most 300 s apart, a fresh `jti`, `req` the
base64url SHA-256 of the exact bytes sent, and the `purpose`.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import time
import uuid
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey

__all__ = ["MAX_LIFETIME", "TOKEN_TYPE", "Purpose", "Signer", "body_digest"]

TOKEN_TYPE: Final = "gw-request+jwt"  # noqa: S105 (a media type, not a secret)
MAX_LIFETIME: Final = 300
"""Seconds a token may live (`exp` - `iat`)."""

SigningKey = OKPKey | ECKey | Ed25519PrivateKey | EllipticCurvePrivateKey | bytes | str | Path


@dataclass(frozen=True)
class Purpose:
    """Why a request is made: the procedure's code, the case, the officer, whom it is about.

    `subjects`: at most 50 personal ids, enterprise codes or household ids, every one
    the request reads. `hidden_until`: for procedures that allow it, until when the
    subjects do not see the access.
    """

    procedure: str
    case: str
    officer: str = field(repr=False)
    subjects: tuple[str, ...] = field(default=(), repr=False)
    hidden_until: datetime.datetime | None = None

    def claim(self) -> dict[str, Any]:
        """The token's `purpose` claim."""
        claim: dict[str, Any] = {
            "procedure": self.procedure,
            "case": self.case,
            "officer": self.officer,
            "subjects": list(self.subjects),
        }
        if self.hidden_until is not None:
            if self.hidden_until.tzinfo is None:
                raise ValueError("hidden_until needs its time zone")
            claim["hiddenUntil"] = (
                self.hidden_until.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")
            )
        return claim


def body_digest(body: bytes) -> str:
    """The `req` claim for `body`: base64url SHA-256 without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _jose_key(key: SigningKey) -> OKPKey | ECKey:
    if isinstance(key, OKPKey | ECKey):
        return key
    if isinstance(key, Path):
        key = key.read_bytes()
    if isinstance(key, str):
        key = key.encode()
    if isinstance(key, Ed25519PrivateKey):
        return OKPKey.import_key(key)
    if isinstance(key, EllipticCurvePrivateKey):
        return ECKey.import_key(key)
    try:
        return OKPKey.import_key(key)
    except Exception:  # not an OKP key: an EC key, or nothing usable
        return ECKey.import_key(key)


class Signer:
    """Signs request tokens for one client with one of its registered keys.

    `key`: an Ed25519 (EdDSA) or P-256 (ES256) private key, as a PEM file's path or bytes,
    a `cryptography` key or a `joserfc` key. The key never shows in `repr`.
    """

    def __init__(
        self, client_id: str, key: SigningKey, kid: str, *, audience: str, ttl: int = 120
    ) -> None:
        if not 0 < ttl <= MAX_LIFETIME:
            raise ValueError(f"ttl is 1 to {MAX_LIFETIME} seconds")
        self.client_id = client_id
        self.kid = kid
        self.audience = audience
        self.ttl = ttl
        self._key = _jose_key(key)
        self._alg = "EdDSA" if isinstance(self._key, OKPKey) else "ES256"

    def __repr__(self) -> str:
        return f"Signer(client_id={self.client_id!r}, kid={self.kid!r}, alg={self._alg!r})"

    def sign(
        self, body: bytes, purpose: Purpose, *, now: int | None = None, jti: str | None = None
    ) -> str:
        """A token for exactly `body` (for a GET, the raw query string's bytes); a
        fresh `jti` unless one is given."""
        issued = int(time.time()) if now is None else now
        claims = {
            "iss": self.client_id,
            "aud": self.audience,
            "iat": issued,
            "exp": issued + self.ttl,
            "jti": jti or uuid.uuid4().hex,
            "req": body_digest(body),
            "purpose": purpose.claim(),
        }
        header = {"alg": self._alg, "typ": TOKEN_TYPE, "kid": self.kid}
        with warnings.catch_warnings():
            # joserfc prefers the name "Ed25519" (RFC 9864); the contract says "EdDSA".
            warnings.filterwarnings("ignore", "EdDSA is deprecated", SecurityWarning)
            return str(jws.serialize_compact(header, _json(claims), self._key, [self._alg]))

    def sign_many(
        self, requests: Iterable[tuple[bytes, Purpose]], *, now: int | None = None
    ) -> Iterator[str]:
        """Tokens for many (body, purpose) pairs, in order: for load tests. Each is
        used once, before it expires (`ttl` seconds from `now`)."""
        issued = int(time.time()) if now is None else now
        for body, purpose in requests:
            yield self.sign(body, purpose, now=issued)
