"""Citizen and staff sign-in: access tokens of an OpenID Connect issuer.

Citizens (VNeID in production, the sandbox issuer in the demo) and staff send
`Authorization: Bearer <JWT>`. `IdentityVerifier` checks the token against the
issuer's JWK set and turns its claims (`sub`, `roles`, `org`, `acr`) into an
`Identity`; the web room's dependencies (`gateway.web`) guard routes with it.

Only the configured issuer is trusted (its `iss`), only access tokens (header `typ`
`at+jwt` or `JWT`), and a citizen's subject must be a personal id. A missing or bad
token is 401 (`UNAUTHENTICATED`, `BAD_SIGNATURE`, `TOKEN_EXPIRED`); without usable keys
of the issuer (never fetched, or older than their maximum age) sign-in is 503.
Neither the token nor the subject (a citizen's personal id) ever appears in an error
message or a log line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import orjson
import structlog
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey, import_key
from joserfc.jws import CompactSignature

from gateway.config import GatewaySettings, is_loopback_url
from gateway.errors import (
    BadSignature,
    InvalidIdentifier,
    ServiceUnavailable,
    TokenExpired,
    Unauthenticated,
)
from gateway.identifiers import PersonalId, parse_identifier
from keys import verifying_registry

__all__ = ["CITIZEN_ROLE", "MAX_TOKEN_BYTES", "STAFF_ROLES", "Identity", "IdentityVerifier"]

log = structlog.get_logger(__name__)

CITIZEN_ROLE: Final = "citizen"
STAFF_ROLES: Final = frozenset({"agency_admin", "auditor", "operator", "policy_editor"})
MAX_TOKEN_BYTES: Final = 8 * 1024
"""Longer bearer tokens are refused before any parsing."""

CLOCK_SKEW: Final = 30
"""Seconds of clock difference tolerated for `exp`, `nbf` and `iat`."""

_MAX_JWKS_BYTES: Final = 256 * 1024
_FETCH_TIMEOUT: Final = 5.0
_RETRY_WITHOUT_KEYS: Final = 5.0
# The algorithms accepted and the key each needs: (kty, crv). Never HS* (a public key
# would become a shared secret) and never "none".
_ALGORITHMS: Final[Mapping[str, tuple[str, str | None]]] = {
    "EdDSA": ("OKP", "Ed25519"),
    "Ed25519": ("OKP", "Ed25519"),
    "ES256": ("EC", "P-256"),
    "RS256": ("RSA", None),
}
_KEY_TYPES: Final = frozenset(kty for kty, _ in _ALGORITHMS.values())
# RFC 9864 renamed "EdDSA" (for Ed25519 keys) to "Ed25519": a JWK may say either.
_SAME_ALG: Final = {"EdDSA": "Ed25519"}
_NOT_JWS: Final = "The token is not a compact JWS (header.payload.signature)."
# The header `typ` of an access token: RFC 9068's `at+jwt`, or the generic `JWT` that
# most issuers still send. Compared without case and without `application/` (RFC 7515
# §4.1.9). A token without `typ` is refused: logout tokens, security events and the
# gateway's own request tokens all say what they are, and an issuer that says nothing
# cannot be told apart from them.
_ACCESS_TOKEN_TYPES: Final = frozenset({"at+jwt", "jwt"})
_NOT_AN_ACCESS_TYPE: Final = "The token is not an access token (typ: at+jwt or JWT)."


def _is_access_token_type(typ: object) -> bool:
    if not isinstance(typ, str):
        return False
    kind = typ.lower()
    return kind.removeprefix("application/") in _ACCESS_TOKEN_TYPES


@dataclass(frozen=True, slots=True, repr=False)
class Identity:
    """Who signed in: a citizen (subject = personal id) or a member of staff.

    `repr` and `str` leave the subject out: for a citizen it is a personal id.
    """

    subject: str
    roles: frozenset[str]
    org: str | None
    acr: str | None
    issuer: str

    def __repr__(self) -> str:
        return (
            f"Identity(roles={sorted(self.roles)!r}, org={self.org!r}, "
            f"acr={self.acr!r}, issuer={self.issuer!r})"
        )

    __str__ = __repr__

    @property
    def is_citizen(self) -> bool:
        """Whether the identity signed in as a citizen."""
        return CITIZEN_ROLE in self.roles

    def has_level2(self, level2_acr: Collection[str]) -> bool:
        """Whether the sign-in was of level 2: its `acr` is one of `level2_acr`."""
        return self.acr is not None and self.acr in level2_acr


@dataclass(frozen=True, slots=True)
class _VerifyingKey:
    kid: str | None
    alg: str | None
    key: Key

    def fits(self, alg: str) -> bool:
        kty, crv = _ALGORITHMS[alg]
        if self.alg is not None and _SAME_ALG.get(self.alg, self.alg) != _SAME_ALG.get(alg, alg):
            return False
        if kty == "OKP":
            return isinstance(self.key, OKPKey) and self.key.curve_name == crv
        if kty == "EC":
            return isinstance(self.key, ECKey) and self.key.curve_name == crv
        return isinstance(self.key, RSAKey)


JwksFetcher = Callable[[], Awaitable[Any]]


def _parse_jwks(document: Any) -> list[_VerifyingKey]:
    """The signing keys of a JWK set; keys that cannot be used are left out."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK set (an object with a list of `keys`)")
    keys = []
    for member in document["keys"]:
        if not isinstance(member, Mapping) or member.get("use", "sig") != "sig":
            continue
        if member.get("kty") not in _KEY_TYPES:  # "oct" above all: a secret has no place here
            continue
        kid, alg = member.get("kid"), member.get("alg")
        try:
            key = import_key(dict(member))
            if key.is_private:  # verifying needs the public half only
                key = import_key(key.as_dict(private=False))
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            log.warning("jwk_skipped", kid=kid, reason=type(exc).__name__)
            continue
        keys.append(
            _VerifyingKey(
                kid if isinstance(kid, str) else None, alg if isinstance(alg, str) else None, key
            )
        )
    return keys


def _read_jwks_file(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON") from exc


async def _get_json(http: httpx.AsyncClient, url: str) -> Any:
    response = await http.get(url, headers={"Accept": "application/json"}, timeout=_FETCH_TIMEOUT)
    response.raise_for_status()
    if len(response.content) > _MAX_JWKS_BYTES:
        raise ValueError(f"{url}: answer larger than {_MAX_JWKS_BYTES} bytes")
    return orjson.loads(response.content)


def _jwks_uri_refused(uri: str, issuer: str, *, production: bool) -> str | None:
    """Why keys may not be fetched from a discovered `uri`, or `None`.

    https always; plain http on this machine (the demo's issuer); plain http elsewhere
    only outside production and only for an issuer that is itself plain http, so that
    a discovery document cannot move the keys of an https issuer onto plain http.
    """
    if uri.startswith("https://"):
        return None
    if not uri.startswith("http://"):
        return "no usable jwks_uri"
    if is_loopback_url(uri) or (not production and not issuer.startswith("https://")):
        return None
    return "jwks_uri is plain http; keys are fetched over https only"


class _Discovery:
    """JWKS at the `jwks_uri` of `{issuer}/.well-known/openid-configuration`."""

    def __init__(self, http: httpx.AsyncClient, issuer: str, *, production: bool) -> None:
        self._http = http
        self._issuer = issuer
        self._production = production
        self._jwks_uri: str | None = None

    async def __call__(self) -> Any:
        if self._jwks_uri is None:
            url = f"{self._issuer.rstrip('/')}/.well-known/openid-configuration"
            document = await _get_json(self._http, url)
            if not isinstance(document, Mapping) or document.get("issuer") != self._issuer:
                # OpenID Connect Discovery 1.0 §4.3: the document must name this issuer.
                raise ValueError(f"{url}: the document names another issuer")
            uri = document.get("jwks_uri")
            if not isinstance(uri, str):
                raise ValueError(f"{url}: no usable jwks_uri")
            refused = _jwks_uri_refused(uri, self._issuer, production=self._production)
            if refused is not None:
                raise ValueError(f"{url}: {refused}")
            self._jwks_uri = uri
        try:
            return await _get_json(self._http, self._jwks_uri)
        except (httpx.HTTPError, ValueError):
            self._jwks_uri = None  # discover again next time: it may have moved
            raise


def _numeric(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthenticated(f"The token's `{name}` claim is not a number.")
    return float(value)


def _optional_text(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is not None and not isinstance(value, str):
        raise Unauthenticated(f"The token's `{name}` claim is not a string.")
    return value


class IdentityVerifier:
    """Verifies citizen and staff access tokens against the issuer's JWK set.

    The key set is cached. A token naming an unknown `kid` makes it fetch the set
    again, at most once per `refetch_interval` seconds, so a flood of forged kids
    cannot turn into a flood of requests to the issuer; the set is also fetched
    again once it is older than `max_age` (keys the issuer withdrew stop working).
    When it cannot be fetched again, the keys serve until `keys_max_age` after they
    were fetched; then sign-in is refused (503) rather than trusting keys the issuer
    may have withdrawn long ago.
    """

    def __init__(
        self,
        *,
        fetch_jwks: JwksFetcher,
        audience: str,
        issuer: str,
        jwks: Any = None,
        refetch_interval: float = 30.0,
        max_age: float = 3600.0,
        keys_max_age: float = 86400.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.audience = audience
        self.issuer = issuer
        self._fetch = fetch_jwks
        self._refetch_interval = refetch_interval
        self._max_age = min(max_age, keys_max_age)
        self._keys_max_age = keys_max_age
        self._clock = clock
        self._monotonic = monotonic
        self._lock = asyncio.Lock()
        self._keys: list[_VerifyingKey] = []
        self._loaded_at: float | None = None
        self._attempted_at: float | None = None
        if jwks is not None:
            self._keys = _parse_jwks(jwks)
            self._loaded_at = self._attempted_at = monotonic()

    def __repr__(self) -> str:
        return f"IdentityVerifier(issuer={self.issuer!r}, audience={self.audience!r})"

    @classmethod
    def from_settings(
        cls,
        settings: GatewaySettings,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> IdentityVerifier | None:
        """A verifier for the configured issuer, or `None` when sign-in is not configured.

        Keys come from `oidc_jwks_file` (read now, so a bad file fails start-up), else
        `oidc_jwks_url`, else the `jwks_uri` that `oidc_issuer` publishes by discovery.
        Raises `ValueError` when the JWKS file is unusable, or keys are configured
        without the issuer (settings refuse that too).
        """
        issuer = settings.oidc_issuer
        if issuer is None:
            if settings.oidc_jwks_file is not None or settings.oidc_jwks_url is not None:
                raise ValueError(
                    "GATEWAY_OIDC_JWKS_URL or GATEWAY_OIDC_JWKS_FILE is set without "
                    "GATEWAY_OIDC_ISSUER"
                )
            return None
        audience = settings.oidc_audience or settings.origin
        options: dict[str, Any] = {
            "audience": audience,
            "issuer": issuer,
            "keys_max_age": settings.oidc_jwks_max_age,
            "clock": clock,
            "monotonic": monotonic,
        }
        if settings.oidc_jwks_file is not None:
            path = settings.oidc_jwks_file

            async def read() -> Any:
                return await asyncio.to_thread(_read_jwks_file, path)

            try:
                verifier = cls(fetch_jwks=read, jwks=_read_jwks_file(path), **options)
            except (OSError, ValueError) as exc:
                raise ValueError(f"GATEWAY_OIDC_JWKS_FILE: {exc}") from exc
            if not verifier._keys:
                raise ValueError(f"GATEWAY_OIDC_JWKS_FILE: {path}: no usable signing key")
            return verifier
        if settings.oidc_jwks_url is not None:
            url = settings.oidc_jwks_url

            async def get() -> Any:
                return await _get_json(http, url)

            return cls(fetch_jwks=get, **options)
        production = settings.environment == "production"
        return cls(fetch_jwks=_Discovery(http, issuer, production=production), **options)

    async def verify(self, token: str) -> Identity:
        """The identity the token proves.

        Raises `Unauthenticated` (malformed, not an access token, wrong issuer or
        audience, not yet valid, a citizen whose subject is not a personal id),
        `TokenExpired`, `BadSignature` (unknown key, refused algorithm, key that does not
        fit the algorithm, bad signature), or `ServiceUnavailable` when the issuer's
        keys were never obtained or are older than their maximum age.
        """
        try:
            return await self._verify(token)
        except Unauthenticated as exc:
            log.info("sign_in_refused", code=exc.code, reason=exc.message)
            raise

    async def _verify(self, token: str) -> Identity:
        if len(token.encode("utf-8", "replace")) > MAX_TOKEN_BYTES:
            raise Unauthenticated(f"The token is longer than {MAX_TOKEN_BYTES} bytes.")
        signed = _parse(token)
        header = signed.headers()
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in _ALGORITHMS:
            raise BadSignature("The token's algorithm is not accepted: EdDSA, ES256 or RS256.")
        if "crit" in header:
            raise BadSignature("The token needs extensions (crit) the gateway does not support.")
        if not _is_access_token_type(header.get("typ")):
            raise Unauthenticated(_NOT_AN_ACCESS_TYPE)
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise Unauthenticated("The token's header is malformed (kid).")
        if not any(_signature_ok(signed, key.key, alg) for key in await self._keys_for(kid, alg)):
            raise BadSignature()
        return self._identity(_claims(signed))

    async def _keys_for(self, kid: str | None, alg: str) -> list[_VerifyingKey]:
        if self._loaded_at is None:
            await self._reload()
            if self._loaded_at is None:
                raise ServiceUnavailable("The identity provider's keys could not be obtained.")
        elif self._monotonic() - self._loaded_at > self._max_age:
            await self._reload()
            if self._monotonic() - self._loaded_at > self._keys_max_age:
                raise ServiceUnavailable(
                    "The identity provider's keys could not be refreshed; sign-in is "
                    "refused until they are."
                )
        named = [k for k in self._keys if kid is None or k.kid == kid]
        if not named and kid is not None and await self._reload(wanted=kid):
            named = [k for k in self._keys if k.kid == kid]
        if not named and kid is None:
            raise BadSignature("The token names no key (kid) and its issuer publishes none.")
        if not named:
            raise BadSignature("The token names a key (kid) its issuer does not publish.")
        fitting = [k for k in named if k.fits(alg)]
        if not fitting:
            raise BadSignature("The token's algorithm does not fit the issuer's key.")
        return fitting

    async def _reload(self, *, wanted: str | None = None) -> bool:
        """Fetch the key set unless fetched too recently; whether the keys changed."""
        async with self._lock:
            if wanted is not None and any(k.kid == wanted for k in self._keys):
                return True  # fetched by a concurrent request while this one waited
            now = self._monotonic()
            interval = (
                self._refetch_interval
                if self._loaded_at is not None
                else min(self._refetch_interval, _RETRY_WITHOUT_KEYS)
            )
            if self._attempted_at is not None and now - self._attempted_at < interval:
                return False
            self._attempted_at = now
            try:
                keys = _parse_jwks(await self._fetch())
            except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
                log.warning("jwks_fetch_failed", error=type(exc).__name__, reason=str(exc))
                return False
            self._keys, self._loaded_at = keys, now
            log.info("jwks_loaded", kids=[k.kid for k in keys])
            return True

    def _identity(self, claims: Mapping[str, Any]) -> Identity:
        issuer = claims.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise Unauthenticated("The token names no issuer (iss).")
        if issuer != self.issuer:
            raise Unauthenticated("The token comes from an issuer this gateway does not trust.")
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or self.audience not in audiences:
            raise Unauthenticated("The token is not meant for this gateway (aud).")
        now = self._clock()
        expires = _numeric(claims, "exp")
        if expires is None:
            raise Unauthenticated("The token has no expiry (exp).")
        if now > expires + CLOCK_SKEW:
            raise TokenExpired()
        not_before = _numeric(claims, "nbf")
        if not_before is not None and not_before > now + CLOCK_SKEW:
            raise Unauthenticated("The token is not valid yet (nbf).")
        issued = _numeric(claims, "iat")
        if issued is not None and issued > now + CLOCK_SKEW:
            raise Unauthenticated("The token's issue time (iat) is in the future.")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise Unauthenticated("The token names no subject (sub).")
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Unauthenticated("The token's `roles` claim is not a list of strings.")
        if CITIZEN_ROLE in roles:
            try:
                parse_identifier(subject, (PersonalId,), argument="sub")
            except InvalidIdentifier:
                # Never the value: it may be someone's id typed wrong.
                raise Unauthenticated(
                    "A citizen's token must name a 12-digit personal id as its subject (sub)."
                ) from None
        return Identity(
            subject=subject,
            roles=frozenset(roles),
            org=_optional_text(claims, "org"),
            acr=_optional_text(claims, "acr"),
            issuer=issuer,
        )


def _parse(token: str) -> CompactSignature:
    try:
        signed = jws.extract_compact(token.encode("ascii"))
    except (JoseError, ValueError, TypeError, AttributeError, KeyError) as exc:
        raise Unauthenticated(_NOT_JWS) from exc
    header: Any = signed.headers()  # JSON of the sender's choosing: maybe not an object
    if not isinstance(header, dict):
        raise Unauthenticated(_NOT_JWS)
    return signed


def _signature_ok(signed: CompactSignature, key: Key, alg: str) -> bool:
    registry = verifying_registry(alg, strict_check_header=False)
    try:
        return jws.validate_compact(signed, key, registry=registry)
    except (JoseError, ValueError, TypeError):
        return False


def _claims(signed: CompactSignature) -> dict[str, Any]:
    try:
        claims = orjson.loads(signed.payload or b"")
    except orjson.JSONDecodeError:
        claims = None
    if not isinstance(claims, dict):
        raise Unauthenticated("The token's payload is not a JSON object.")
    return claims
