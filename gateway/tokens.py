"""Request tokens: every GraphQL request is signed by the calling client.

A request token is a compact JWS (`typ: gw-request+jwt`) signed with a key registered
to the client named in `iss` (`VN/GOV/<org>/<system>`), and its claims bind it to one
request and one purpose:

- `aud`: the gateway's origin; `iat`, `exp`: at most 300 s apart;
- `jti`: single use (a replay cache remembers it until it expires);
- `req`: base64url (no padding) of the SHA-256 of the request body for POST, or of the
  raw query string for GET, so the token cannot be moved to another request;
- `purpose`: `{procedure, case, officer, subjects}`: the procedure code of the
  catalogue, the agency's case number, the officer's id, and at most 50 personal ids,
  enterprise codes or household ids the case is about (none for a request that reads
  nobody's data, such as introspection).

The client cannot later deny what it asked for and why: the signed token is kept with
the access record.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey

from gateway.clients import Client, ClientRegistry
from gateway.errors import (
    BadSignature,
    GatewayError,
    InvalidIdentifier,
    InvalidPurpose,
    RequestMismatch,
    TokenExpired,
    TokenReplayed,
    Unauthenticated,
)
from gateway.identifiers import EnterpriseCode, HouseholdId, PersonalId
from gateway.replay import ReplayCache
from keys import eddsa_allowed

__all__ = [
    "MAX_LIFETIME",
    "MAX_SUBJECTS",
    "SKEW",
    "TOKEN_TYPE",
    "Purpose",
    "RejectedRequest",
    "RequestVerifier",
    "VerifiedRequest",
    "body_digest",
    "sign_request",
]

TOKEN_TYPE: Final = "gw-request+jwt"  # noqa: S105 (a media type, not a secret)
MAX_LIFETIME: Final = 300
MAX_SUBJECTS: Final = 50
MAX_TOKEN_BYTES: Final = 8192
SKEW: Final = 30
_ALGORITHMS: Final = {"EdDSA": "EdDSA", "Ed25519": "EdDSA", "ES256": "ES256"}
_TEXT_LIMIT: Final = 128


def body_digest(body: bytes) -> str:
    """The `req` claim for `body`: base64url SHA-256 without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()


_SUBJECT_KINDS: Final = (PersonalId, EnterpriseCode, HouseholdId)


def _subject(value: Any) -> str:
    """A personal id, an enterprise code or a household id, checked for its form."""
    if isinstance(value, str):
        for kind in _SUBJECT_KINDS:
            try:
                return kind(value).value
            except InvalidIdentifier:
                continue
    raise InvalidPurpose(
        "Each subject is a 12-digit personal id, an enterprise code or a household id."
    )


@dataclass(frozen=True, slots=True)
class Purpose:
    """Why a request is made: procedure, case, officer, and whom it is about."""

    procedure: str
    case: str
    officer: str = field(repr=False)
    subjects: tuple[str, ...] = field(repr=False)
    hidden_until: datetime.datetime | None = None
    """Until then the subjects do not see this access (procedures that allow it only)."""

    @classmethod
    def from_claim(cls, claim: Any) -> Purpose:
        """Validate the `purpose` claim of a token."""
        if not isinstance(claim, dict):
            raise InvalidPurpose("The token needs a `purpose` object.")
        texts = {}
        for name in ("procedure", "case", "officer"):
            value = claim.get(name)
            if not isinstance(value, str) or not 0 < len(value) <= _TEXT_LIMIT:
                raise InvalidPurpose(
                    f"`purpose.{name}` is a string of 1 to {_TEXT_LIMIT} characters."
                )
            texts[name] = value
        subjects = claim.get("subjects")
        if not isinstance(subjects, list) or len(subjects) > MAX_SUBJECTS:
            # Empty is allowed: a request that reads nobody's data (introspection).
            raise InvalidPurpose(f"`purpose.subjects` lists at most {MAX_SUBJECTS} identifiers.")
        return cls(
            texts["procedure"],
            texts["case"],
            texts["officer"],
            tuple(dict.fromkeys(_subject(s) for s in subjects)),
            _hidden_until(claim.get("hiddenUntil")),
        )

    def claim(self) -> dict[str, Any]:
        """The `purpose` claim."""
        claim: dict[str, Any] = {
            "procedure": self.procedure,
            "case": self.case,
            "officer": self.officer,
            "subjects": list(self.subjects),
        }
        if self.hidden_until is not None:
            claim["hiddenUntil"] = format_instant(self.hidden_until)
        return claim


def format_instant(value: datetime.datetime) -> str:
    """RFC 3339 in UTC with a `Z`, as the gateway writes instants."""
    return value.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def _hidden_until(value: Any) -> datetime.datetime | None:
    if value is None:
        return None
    try:
        if not isinstance(value, str) or len(value) > 40:
            raise ValueError
        instant = datetime.datetime.fromisoformat(value)
        if instant.tzinfo is None:
            raise ValueError
    except ValueError:
        raise InvalidPurpose(
            "`purpose.hiddenUntil` is an RFC 3339 date-time with its offset, "
            "e.g. 2027-01-31T00:00:00+07:00."
        ) from None
    return instant.astimezone(datetime.UTC)


class RejectedRequest(Exception):
    """A request signed by a registered client but refused: it is recorded, then answered.

    Only requests whose signature verified are written to the access log; refusals
    before that go to metrics and the application log only.
    """

    def __init__(self, error: GatewayError, *, client: Client, token: str, claims: dict[str, Any]):
        super().__init__(error.code)
        self.error = error
        self.client = client
        self.token = token
        self.claims = claims


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    """A request whose token checked out: who asks, with which key, and why."""

    client: Client
    kid: str
    jti: str
    purpose: Purpose
    issued_at: int
    expires_at: int
    token: str = field(repr=False)


def _key(jwk: dict[str, Any]) -> OKPKey | ECKey:
    return OKPKey.import_key(jwk) if jwk.get("kty") == "OKP" else ECKey.import_key(jwk)


def _quietly(call: Callable[[], Any]) -> Any:
    with eddsa_allowed():
        return call()


def sign_request(
    *,
    client_id: str,
    key: OKPKey | ECKey,
    kid: str,
    audience: str,
    body: bytes,
    purpose: Purpose,
    ttl: int = 120,
    now: int | None = None,
    jti: str | None = None,
) -> str:
    """A request token for `body` (what `gateway token` and the demo page use)."""
    issued = int(time.time()) if now is None else now
    alg = "EdDSA" if isinstance(key, OKPKey) else "ES256"
    header = {"alg": alg, "typ": TOKEN_TYPE, "kid": kid}
    claims = {
        "iss": client_id,
        "aud": audience,
        "iat": issued,
        "exp": issued + min(ttl, MAX_LIFETIME),
        "jti": jti or uuid.uuid4().hex,
        "req": body_digest(body),
        "purpose": purpose.claim(),
    }
    token = _quietly(
        lambda: jws.serialize_compact(header, orjson.dumps(claims), key, algorithms=[alg])
    )
    return str(token)


class RequestVerifier:
    """Checks request tokens against the client registry and the replay cache."""

    def __init__(
        self,
        *,
        clients: ClientRegistry,
        replay: ReplayCache,
        audience: str,
        known_procedure: Callable[[str], object],
        hiding_allowed: Callable[[str], bool] = lambda _procedure: False,
        max_hidden: datetime.timedelta = datetime.timedelta(days=365),
    ) -> None:
        """`hiding_allowed(procedure)`: whether its accesses may be hidden from subjects."""
        self._clients = clients
        self._replay = replay
        self._audience = audience
        self._known_procedure = known_procedure
        self._hiding_allowed = hiding_allowed
        self._max_hidden = max_hidden

    async def verify(
        self, authorization: str | None, body: bytes, *, now: float | None = None
    ) -> VerifiedRequest:
        """The verified request, or the `Unauthenticated` family / `InvalidPurpose`.

        The order matters: nothing about the request is believed before the signature
        checks out, and the jti is spent only for a token that is otherwise valid.
        """
        token = _bearer(authorization)
        header, claims = _unverified(token)
        client_id, kid = claims.get("iss"), header.get("kid")
        if not isinstance(client_id, str) or not isinstance(kid, str):
            raise Unauthenticated("The token needs `iss` (the client id) and a `kid`.")
        # Until the signature checks out, every refusal looks the same: an unsigned
        # caller learns nothing about which clients and keys exist or their status.
        found = await self._clients.lookup(client_id, kid)
        if found is None:
            raise BadSignature
        client, key = found
        alg = _ALGORITHMS.get(str(header.get("alg")))
        if alg is None or alg != key.alg:
            raise BadSignature
        try:
            _quietly(
                lambda: jws.deserialize_compact(
                    token, _key(key.jwk), algorithms=[str(header["alg"])]
                )
            )
        except (JoseError, ValueError) as exc:
            raise BadSignature from exc
        if key.status != "active":
            raise BadSignature("The key has been revoked.")
        if not client.active:
            raise Unauthenticated("The client is suspended.")
        try:
            return await self._admit(client, kid, token, claims, body, now)
        except GatewayError as exc:
            raise RejectedRequest(exc, client=client, token=token, claims=claims) from exc

    async def _admit(
        self,
        client: Client,
        kid: str,
        token: str,
        claims: dict[str, Any],
        body: bytes,
        now: float | None,
    ) -> VerifiedRequest:
        """The checks after the signature: time, audience, body, purpose, single use."""
        clock = time.time() if now is None else now
        issued, expires = _times(claims, clock)
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self._audience not in audiences:
            raise Unauthenticated("The token is meant for another audience.")
        if claims.get("req") != body_digest(body):
            raise RequestMismatch
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= _TEXT_LIMIT:
            raise Unauthenticated("The token needs a `jti` of 1 to 128 characters.")
        purpose = Purpose.from_claim(claims.get("purpose"))
        self._known_procedure(purpose.procedure)
        if purpose.hidden_until is not None:
            self._check_hiding(purpose.procedure, purpose.hidden_until, clock)
        # Remembered until the token could no longer pass, skew included, rounded up.
        ttl = max(1, math.ceil(expires + SKEW - clock) + 1)
        if not await self._replay.first_use(client.id, jti, ttl):
            raise TokenReplayed
        return VerifiedRequest(client, kid, jti, purpose, issued, expires, token)

    def _check_hiding(self, procedure: str, until: datetime.datetime, clock: float) -> None:
        if not self._hiding_allowed(procedure):
            raise InvalidPurpose(
                f"Procedure {procedure} does not allow hiding an access from its "
                f"subjects: leave out `purpose.hiddenUntil`."
            )
        now = datetime.datetime.fromtimestamp(clock, datetime.UTC)
        if until <= now:
            raise InvalidPurpose("`purpose.hiddenUntil` is in the past.")
        if until > now + self._max_hidden:
            raise InvalidPurpose(
                f"`purpose.hiddenUntil` is at most {self._max_hidden.days} days ahead.",
            )


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise Unauthenticated("Send `Authorization: Bearer <request token>`.")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("Send `Authorization: Bearer <request token>`.")
    if len(token) > MAX_TOKEN_BYTES:
        raise Unauthenticated(f"The token is longer than {MAX_TOKEN_BYTES} bytes.")
    return token


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        # Two members of one name: parsers disagree on which counts, so neither does.
        raise ValueError("duplicate member name")
    return dict(pairs)


def _b64(part: str) -> Any:
    raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    return json.loads(raw, object_pairs_hook=_no_duplicates)


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims, read only to find the key; nothing is trusted yet."""
    parts = token.split(".")
    if len(parts) != 3:
        raise Unauthenticated("The token is not a compact JWS.")
    try:
        header, claims = _b64(parts[0]), _b64(parts[1])
    except (ValueError, UnicodeDecodeError):
        raise Unauthenticated("The token is not a compact JWS with unique member names.") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise Unauthenticated("The token is not a compact JWS.")
    if header.get("typ") != TOKEN_TYPE:
        raise Unauthenticated(f"The token's `typ` must be {TOKEN_TYPE!r}.")
    if "crit" in header or "jku" in header or "jwk" in header or "x5u" in header:
        raise Unauthenticated("Keys are taken from the client registry, never from the token.")
    return header, claims


def _times(claims: dict[str, Any], now: float) -> tuple[int, int]:
    issued, expires = claims.get("iat"), claims.get("exp")
    if not isinstance(issued, int) or not isinstance(expires, int) or True in (issued, expires):
        raise Unauthenticated("The token needs integer `iat` and `exp`.")
    if expires - issued > MAX_LIFETIME:
        raise Unauthenticated(f"A token lives at most {MAX_LIFETIME} s (`exp` - `iat`).")
    if issued > now + SKEW:
        raise Unauthenticated("The token is issued in the future; check the client's clock.")
    if expires <= now - SKEW:
        raise TokenExpired
    return issued, expires
