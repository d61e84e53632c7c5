"""Request tokens: every GraphQL request is signed by the calling client.

A request token is a compact JWS (`typ: gw-request+jwt`) signed with a key registered
to the client named in `iss` (`VN/GOV/<org>/<system>`), and its claims bind it to one
request and one purpose:

- `aud`: the gateway's origin; `iat`, `exp`: at most 300 s apart;
- `jti`: single use (a replay cache remembers it until it expires), but for one retry
  of a request the gateway itself answered 503 (see `gateway.admission._replay`);
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
import contextlib
import datetime
import functools
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import orjson
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey
from lienthong_client import Signer

from gateway.admission._clients import Client, ClientKey
from gateway.admission._ratelimit import Hit
from gateway.admission._replay import ReplayCache, Spent
from gateway.errors import (
    BadSignature,
    GatewayError,
    InvalidPurpose,
    RequestMismatch,
    TokenExpired,
    TokenReplayed,
    Unauthenticated,
)
from keys import verifying_registry
from policies import Purpose, parse_hidden_until

__all__ = [
    "MAX_LIFETIME",
    "SKEW",
    "TOKEN_TYPE",
    "ClientLookup",
    "RejectedRequest",
    "RequestVerifier",
    "VerifiedRequest",
    "body_digest",
    "sign_request",
]

TOKEN_TYPE: Final = "gw-request+jwt"  # noqa: S105 (a media type, not a secret)
MAX_LIFETIME: Final = 300
MAX_TOKEN_BYTES: Final = 8192
SKEW: Final = 30
_ALGORITHMS: Final = {"EdDSA": "EdDSA", "Ed25519": "EdDSA", "ES256": "ES256"}
_TEXT_LIMIT: Final = 128


def body_digest(body: bytes) -> str:
    """The `req` claim for `body`: base64url SHA-256 without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()


class ClientLookup(Protocol):
    """Where the verifier finds a client and its key (the registry, or a test's dict)."""

    async def lookup(self, client_id: str, kid: str) -> tuple[Client, ClientKey] | None:
        """The client and its key `kid` (whatever their status), or `None`."""
        ...


class RejectedRequest(Exception):
    """A request signed by a registered client but refused: it is recorded, then answered.

    Only requests whose signature verified are written to the access log (whatever
    refused them after that: a revoked key, a suspended client, the token's claims);
    refusals before that go to metrics and the application log only.
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
    spent: Spent | None = None
    """Its spend of the jti (`reused` when it reuses a token refused with 503)."""

    @property
    def reused(self) -> bool:
        """Whether the token was refused with 503 before and comes once more."""
        return self.spent is not None and self.spent.reused


def _key(jwk: dict[str, Any]) -> OKPKey | ECKey:
    """The key object of a registered public JWK (imported once per distinct key)."""
    try:
        return _imported(tuple(sorted(jwk.items())))
    except TypeError:  # a member that is not text: import it as it is
        return OKPKey.import_key(jwk) if jwk.get("kty") == "OKP" else ECKey.import_key(jwk)


@functools.lru_cache(maxsize=4096)
def _imported(members: tuple[tuple[str, Any], ...]) -> OKPKey | ECKey:
    jwk = dict(members)
    return OKPKey.import_key(jwk) if jwk.get("kty") == "OKP" else ECKey.import_key(jwk)


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
    """A request token for `body` (what `gateway token`, the demo page and the benchmark
    use), signed by the client library as any case-handling system signs one; `ttl` is
    at most `MAX_LIFETIME`."""
    signer = Signer(client_id, key, kid, audience=audience, ttl=min(ttl, MAX_LIFETIME))
    return signer.sign(body, purpose.stated(), now=now, jti=jti)


class RequestVerifier:
    """Checks request tokens against the client registry and the replay cache."""

    def __init__(
        self,
        *,
        clients: ClientLookup,
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

    def use_procedures(
        self, known_procedure: Callable[[str], object], hiding_allowed: Callable[[str], bool]
    ) -> None:
        """Check purposes against another catalogue from the next request on."""
        self._known_procedure = known_procedure
        self._hiding_allowed = hiding_allowed

    async def verify(
        self,
        authorization: str | None,
        body: bytes,
        *,
        now: float | None = None,
        hits: Callable[[str, Purpose], Sequence[Hit]] | None = None,
    ) -> VerifiedRequest:
        """The verified request, or the `Unauthenticated` family / `InvalidPurpose`.

        The order matters: nothing about the request is believed before the signature
        checks out, and the jti is spent only for a token that is otherwise valid.
        `hits(client id, purpose)`: the rate-limit hits the replay cache may count with
        the spend (`Spent.counted`).
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
            jws.deserialize_compact(
                token, _key(key.jwk), registry=verifying_registry(str(header["alg"]))
            )
        except (JoseError, ValueError) as exc:
            raise BadSignature from exc
        # The signature checked out: from here every refusal is recorded in the
        # client's name (see `gateway.admission._refusals`).
        try:
            if key.status != "active":
                raise BadSignature("The key has been revoked.")
            if not client.active:
                raise Unauthenticated("The client is suspended.")
            return await self._admit(client, kid, token, claims, body, now, hits)
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
        hits: Callable[[str, Purpose], Sequence[Hit]] | None,
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
        if not isinstance(jti, str) or not 0 < len(jti) <= _TEXT_LIMIT or not jti.isprintable():
            # Printable: no control characters or lone surrogates (they are keys of the
            # replay cache and go into the record).
            raise Unauthenticated("The token needs a `jti` of 1 to 128 printable characters.")
        purpose = Purpose.from_claim(claims.get("purpose"))
        self._known_procedure(purpose.procedure)
        if purpose.hidden_until is not None:
            self._check_hiding(purpose.procedure, purpose.hidden_until, clock)
        # Remembered until the token could no longer pass, skew included, rounded up.
        ttl = max(1, math.ceil(expires + SKEW - clock) + 1)
        counted = () if hits is None else hits(client.id, purpose)
        spent = await self._replay.first_use(client.id, jti, ttl, hits=counted)
        if spent is None:
            raise TokenReplayed
        return VerifiedRequest(client, kid, jti, purpose, issued, expires, token, spent)

    async def release(self, verified: VerifiedRequest) -> None:
        """The gateway answers 503 to `verified`: its token may come once more."""
        if verified.spent is not None:
            await self._replay.release(verified.spent)

    def claimed_hiding(self, purpose: Any, *, now: float | None = None) -> datetime.datetime | None:
        """Until when the access of a refused token stays hidden from the people it names.

        A token that asked to hide its access, for a procedure that allows hiding, is
        hidden as asked but at most `max_hidden` ahead, and that long when its date
        cannot be read: a covert check must not show through its refusal. `purpose`
        is the signed claim as it came, unvalidated.
        """
        if not isinstance(purpose, dict) or purpose.get("hiddenUntil") is None:
            return None
        procedure = purpose.get("procedure")
        try:
            if not isinstance(procedure, str) or not self._hiding_allowed(procedure):
                return None
        except GatewayError:  # not a procedure of the catalogue
            return None
        clock = datetime.datetime.fromtimestamp(time.time() if now is None else now, datetime.UTC)
        latest = clock + self._max_hidden
        try:
            until = min(parse_hidden_until(purpose["hiddenUntil"]) or latest, latest)
        except InvalidPurpose:
            until = latest
        return until if until > clock else None

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
    # Compact JSON, as signing libraries write it, is read by orjson: what orjson
    # writes back byte for byte names no member twice (orjson keeps one of two) and
    # reads as the standard library reads it. Anything else is read by the latter.
    with contextlib.suppress(orjson.JSONDecodeError):
        value = orjson.loads(raw)
        if orjson.dumps(value) == raw:
            return value
    return json.loads(raw, object_pairs_hook=_no_duplicates)


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims, read only to find the key; nothing is trusted yet."""
    parts = token.split(".")
    if len(parts) != 3:
        raise Unauthenticated("The token is not a compact JWS.")
    try:
        header, claims = _b64(parts[0]), _b64(parts[1])
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: JSON nested deeper than the parser goes, sent by anyone.
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
    integers = all(isinstance(v, int) and not isinstance(v, bool) for v in (issued, expires))
    if not integers or not isinstance(issued, int) or not isinstance(expires, int):
        raise Unauthenticated("The token needs integer `iat` and `exp`.")
    if expires <= issued:
        raise Unauthenticated("A token's `exp` is after its `iat`.")
    if expires - issued > MAX_LIFETIME:
        raise Unauthenticated(f"A token lives at most {MAX_LIFETIME} s (`exp` - `iat`).")
    if issued > now + SKEW:
        raise Unauthenticated("The token is issued in the future; check the client's clock.")
    if expires <= now - SKEW:
        raise TokenExpired
    return issued, expires
