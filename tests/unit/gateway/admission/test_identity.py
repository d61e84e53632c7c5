"""Citizen and staff sign-in: token verification against a JWKS, and the route guards."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import warnings
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from joserfc import jws, jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey
from starlette.requests import Request
from starlette.responses import Response
from structlog.testing import capture_logs

from gateway.admission import Identity, IdentityVerifier
from gateway.config import GatewaySettings
from gateway.errors import (
    BadSignature,
    GatewayError,
    ServiceUnavailable,
    TokenExpired,
    Unauthenticated,
)
from gateway.web import (
    AuditorIdentity,
    CitizenIdentity,
    CurrentIdentity,
    Level2Citizen,
    OperatorIdentity,
    require_role,
)
from gateway.web._graphql import error_headers, error_response

ISSUER = "https://id.example.test"
AUDIENCE = "https://gateway.example.test"
PERSONAL_ID = "001099012345"
NOW = 1_800_000_000
DROP = object()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class SigningKey:
    """A key of the fake issuer: signs tokens, publishes its public half."""

    key: Key
    alg: str

    @property
    def kid(self) -> str:
        return str(self.key.thumbprint())

    def jwk(self) -> dict[str, Any]:
        return {**self.key.as_dict(private=False), "kid": self.kid, "alg": self.alg, "use": "sig"}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        full = {"alg": self.alg, "kid": self.kid, "typ": "JWT", **header}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "EdDSA is deprecated", SecurityWarning)
            return jwt.encode(full, claims, self.key, algorithms=[full["alg"]])


def ed25519(alg: str = "EdDSA") -> SigningKey:
    return SigningKey(OKPKey.generate_key("Ed25519"), alg)


def claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": PERSONAL_ID,
        "roles": ["citizen"],
        "acr": "vneid-level-2",
        "iat": NOW,
        "exp": NOW + 600,
        "jti": "j1",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not DROP}


def unsigned(header: dict[str, Any], body: dict[str, Any], signature: bytes = b"") -> str:
    parts = [_b64(json.dumps(header).encode()), _b64(json.dumps(body).encode())]
    return ".".join([*parts, _b64(signature)])


@dataclass
class Clock:
    now: float

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeIssuer:
    """An OIDC issuer behind httpx.MockTransport; counts the requests it answers.

    While `down`, it refuses connections (and answers, so counts, nothing).
    """

    keys: list[SigningKey]
    calls: Counter[str] = field(default_factory=Counter)
    discovery_issuer: str = ISSUER
    jwks_uri: str = f"{ISSUER}/keys"
    down: bool = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("refused", request=request)
        self.calls[request.url.path] += 1
        if request.url.path == "/.well-known/openid-configuration":
            document = {"issuer": self.discovery_issuer, "jwks_uri": self.jwks_uri}
            return httpx.Response(200, json=document)
        if request.url.path == "/keys":
            return httpx.Response(200, json={"keys": [k.jwk() for k in self.keys]})
        return httpx.Response(404)

    @property
    def jwks_fetches(self) -> int:
        return self.calls["/keys"]


def settings(**changes: Any) -> GatewaySettings:
    options: dict[str, Any] = {"origin": AUDIENCE, "oidc_issuer": ISSUER, **changes}
    return GatewaySettings(_env_file=None, **options)  # type: ignore[call-arg]


@dataclass
class Setup:
    key: SigningKey
    idp: FakeIssuer
    verifier: IdentityVerifier
    monotonic: Clock


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    key = ed25519()
    idp = FakeIssuer([key])
    monotonic = Clock(1000.0)
    async with httpx.AsyncClient(transport=httpx.MockTransport(idp.handle)) as http:
        verifier = IdentityVerifier.from_settings(
            settings(), http, clock=Clock(NOW), monotonic=monotonic
        )
        assert verifier is not None
        yield Setup(key, idp, verifier, monotonic)


# --- valid tokens -------------------------------------------------------------------


async def test_citizen_token_gives_the_identity(setup: Setup) -> None:
    who = await setup.verifier.verify(setup.key.sign(claims()))
    assert who.subject == PERSONAL_ID
    assert who.roles == frozenset({"citizen"})
    assert (who.org, who.acr, who.issuer) == (None, "vneid-level-2", ISSUER)
    assert who.is_citizen
    assert who.has_level2(["vneid-level-2"])
    assert not who.has_level2(["vneid-level-3"])
    assert setup.idp.calls == {"/.well-known/openid-configuration": 1, "/keys": 1}


async def test_staff_token_gives_roles_and_org(setup: Setup) -> None:
    token = setup.key.sign(
        claims(sub="nguyen.van.a", roles=["auditor", "operator"], org="VN/GOV/BTC", acr=DROP)
    )
    who = await setup.verifier.verify(token)
    assert (who.subject, who.org, who.acr) == ("nguyen.van.a", "VN/GOV/BTC", None)
    assert who.roles == frozenset({"auditor", "operator"})
    assert not who.is_citizen
    assert not who.has_level2(["vneid-level-2"])


async def test_keys_are_fetched_once_for_many_tokens(setup: Setup) -> None:
    for n in range(5):
        await setup.verifier.verify(setup.key.sign(claims(jti=f"j{n}")))
    assert setup.idp.jwks_fetches == 1


@pytest.mark.parametrize(
    "make",
    [
        lambda: ed25519("Ed25519"),
        lambda: SigningKey(ECKey.generate_key("P-256"), "ES256"),
        lambda: SigningKey(RSAKey.generate_key(2048), "RS256"),
    ],
    ids=["Ed25519", "ES256", "RS256"],
)
async def test_other_accepted_algorithms(setup: Setup, make: Any) -> None:
    key = make()
    setup.idp.keys.append(key)
    who = await setup.verifier.verify(key.sign(claims()))
    assert who.subject == PERSONAL_ID


async def test_audience_may_be_a_list(setup: Setup) -> None:
    token = setup.key.sign(claims(aud=["https://other.test", AUDIENCE]))
    assert (await setup.verifier.verify(token)).is_citizen


async def test_clock_skew_of_30_seconds_is_tolerated(setup: Setup) -> None:
    token = setup.key.sign(claims(exp=NOW - 29, iat=NOW + 29, nbf=NOW + 29))
    assert (await setup.verifier.verify(token)).is_citizen


# --- refused tokens -----------------------------------------------------------------


async def test_expired_token(setup: Setup) -> None:
    with pytest.raises(TokenExpired):
        await setup.verifier.verify(setup.key.sign(claims(iat=NOW - 700, exp=NOW - 31)))


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"iat": NOW + 120}, "issue time"),
        ({"nbf": NOW + 120}, "not valid yet"),
        ({"aud": "https://other.test"}, "not meant for this gateway"),
        ({"aud": ["https://other.test"]}, "not meant for this gateway"),
        ({"aud": DROP}, "not meant for this gateway"),
        ({"iss": "https://evil.test"}, "does not trust"),
        ({"iss": DROP}, "no issuer"),
        ({"sub": DROP}, "no subject"),
        ({"sub": ""}, "no subject"),
        ({"exp": DROP}, "no expiry"),
        ({"exp": "tomorrow"}, "not a number"),
        ({"roles": "citizen"}, "roles"),
        ({"acr": 2}, "acr"),
    ],
)
async def test_claims_that_are_refused(setup: Setup, changes: dict[str, Any], words: str) -> None:
    with pytest.raises(Unauthenticated) as refused:
        await setup.verifier.verify(setup.key.sign(claims(**changes)))
    assert type(refused.value) is Unauthenticated
    assert words in refused.value.message


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "JWT", "jwt"])
async def test_access_token_types_are_accepted(setup: Setup, typ: str) -> None:
    # RFC 9068 §2.1: `at+jwt`; many issuers still say `JWT`; media types compare
    # case-insensitively and may carry `application/` (RFC 7515 §4.1.9).
    assert (await setup.verifier.verify(setup.key.sign(claims(), typ=typ))).is_citizen


@pytest.mark.parametrize(
    "typ",
    ["logout+jwt", "secevent+jwt", "gw-request+jwt", "id_token+jwt", "JOSE", "", 1, DROP],
)
async def test_tokens_of_other_types_are_refused(setup: Setup, typ: Any) -> None:
    # A back-channel logout token, a security event, a request token, an untyped token:
    # signed by the same issuer maybe, but not an access token for this gateway.
    header = {"alg": setup.key.alg, "kid": setup.key.kid}
    if typ is not DROP:
        header["typ"] = typ
    signing_input = unsigned(header, claims()).rsplit(".", 1)[0]
    okp = setup.key.key
    assert isinstance(okp, OKPKey)
    signature = okp.private_key.sign(signing_input.encode())  # type: ignore[union-attr]
    token = f"{signing_input}.{_b64(signature)}"
    with pytest.raises(Unauthenticated, match="typ") as refused:
        await setup.verifier.verify(token)
    assert type(refused.value) is Unauthenticated


@pytest.mark.parametrize(
    "sub", ["nguyen.van.a", "00109901234", "0010990123456", "00109901234a", "\uff10" * 12]
)
async def test_citizen_subject_must_be_a_personal_id(setup: Setup, sub: str) -> None:
    with capture_logs() as logs, pytest.raises(Unauthenticated, match="personal id") as refused:
        await setup.verifier.verify(setup.key.sign(claims(sub=sub)))
    assert type(refused.value) is Unauthenticated
    shown = f"{refused.value} {refused.value.to_body()} {refused.value!r} {logs!r}"
    assert sub not in shown
    # The same subject is a staff member's name like any other.
    staff = claims(sub=sub, roles=["auditor"], org="VN/GOV/KTNN", acr=DROP)
    assert (await setup.verifier.verify(setup.key.sign(staff))).subject == sub


async def test_unknown_kid_refetches_once_then_bad_signature(setup: Setup) -> None:
    await setup.verifier.verify(setup.key.sign(claims()))
    assert setup.idp.jwks_fetches == 1
    setup.monotonic.now += 60
    with pytest.raises(BadSignature, match="does not publish"):
        await setup.verifier.verify(ed25519().sign(claims()))
    assert setup.idp.jwks_fetches == 2


async def test_unknown_kid_right_after_loading_does_not_refetch(setup: Setup) -> None:
    with pytest.raises(BadSignature, match="does not publish"):
        await setup.verifier.verify(ed25519().sign(claims()))
    assert setup.idp.jwks_fetches == 1  # the keys were fetched this very moment


async def test_refetch_finds_a_rotated_key(setup: Setup) -> None:
    await setup.verifier.verify(setup.key.sign(claims()))
    setup.monotonic.now += 31
    rotated = ed25519()
    setup.idp.keys.append(rotated)
    who = await setup.verifier.verify(rotated.sign(claims()))
    assert who.subject == PERSONAL_ID
    assert setup.idp.jwks_fetches == 2


async def test_refetches_are_rate_limited(setup: Setup) -> None:
    await setup.verifier.verify(setup.key.sign(claims()))
    setup.monotonic.now += 31
    for _ in range(20):
        with pytest.raises(BadSignature):
            await setup.verifier.verify(ed25519().sign(claims()))
        setup.monotonic.now += 1
    # One refetch for the first unknown kid; the next 19 came within 30 s of it.
    assert setup.idp.jwks_fetches == 2
    setup.monotonic.now += 30
    with pytest.raises(BadSignature):
        await setup.verifier.verify(ed25519().sign(claims()))
    assert setup.idp.jwks_fetches == 3


async def test_concurrent_unknown_kids_share_one_refetch(setup: Setup) -> None:
    await setup.verifier.verify(setup.key.sign(claims()))
    setup.monotonic.now += 60
    strangers = [ed25519().sign(claims()) for _ in range(10)]
    results = await asyncio.gather(
        *(setup.verifier.verify(t) for t in strangers), return_exceptions=True
    )
    assert all(isinstance(r, BadSignature) for r in results)
    assert setup.idp.jwks_fetches == 2


async def test_critical_extensions_are_refused(setup: Setup) -> None:
    header = {"alg": "EdDSA", "kid": setup.key.kid, "crit": ["exp"], "exp": 1}
    with pytest.raises(BadSignature, match="crit"):
        await setup.verifier.verify(unsigned(header, claims(), b"x" * 64))


async def test_alg_none_is_refused(setup: Setup) -> None:
    token = unsigned({"alg": "none", "typ": "JWT"}, claims())
    with pytest.raises(BadSignature, match="algorithm"):
        await setup.verifier.verify(token)
    token = unsigned({"alg": "none", "kid": setup.key.kid}, claims())
    with pytest.raises(BadSignature):
        await setup.verifier.verify(token)


@pytest.mark.parametrize("secret_of", ["jwk_x", "pem"])
async def test_hs256_with_the_public_key_as_secret_is_refused(setup: Setup, secret_of: str) -> None:
    # The classic confusion: an HMAC "signed" with bytes anyone can read from the JWKS.
    okp = setup.key.key
    assert isinstance(okp, OKPKey)
    secret = (
        base64.urlsafe_b64decode(okp.as_dict(private=False)["x"] + "==")
        if secret_of == "jwk_x"
        else okp.as_pem(private=False)
    )
    header = {"alg": "HS256", "kid": setup.key.kid, "typ": "JWT"}
    signing_input = unsigned(header, claims()).rsplit(".", 1)[0]
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(BadSignature, match="algorithm"):
        await setup.verifier.verify(f"{signing_input}.{_b64(mac)}")


async def test_rs256_token_naming_an_okp_key_is_refused(setup: Setup) -> None:
    attacker = SigningKey(RSAKey.generate_key(2048), "RS256")
    token = attacker.sign(claims(), kid=setup.key.kid)
    with pytest.raises(BadSignature, match="does not fit"):
        await setup.verifier.verify(token)


async def test_eddsa_token_for_a_key_published_as_es256_is_refused(setup: Setup) -> None:
    setup.idp.keys = [SigningKey(setup.key.key, "ES256")]  # the JWK says alg ES256
    with pytest.raises(BadSignature, match="does not fit"):
        await setup.verifier.verify(setup.key.sign(claims()))


async def test_tampered_payload_is_a_bad_signature(setup: Setup) -> None:
    header, _, signature = setup.key.sign(claims()).split(".")
    forged = _b64(json.dumps(claims(sub="079301000002")).encode())
    with pytest.raises(BadSignature):
        await setup.verifier.verify(f"{header}.{forged}.{signature}")


async def test_oversized_token_is_refused_before_parsing(setup: Setup) -> None:
    token = setup.key.sign(claims(padding="x" * 9000))
    with pytest.raises(Unauthenticated, match="8192 bytes"):
        await setup.verifier.verify(token)
    assert setup.idp.jwks_fetches == 0


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "a.b.c",
        "a.b.c.d.e",
        "é.é.é",
        _b64(b'["alg"]') + "." + _b64(b"{}") + ".",
        _b64(b'{"typ": "JWT"}') + "." + _b64(b"{}") + ".",
    ],
)
async def test_malformed_tokens(setup: Setup, token: str) -> None:
    with pytest.raises(Unauthenticated) as refused:
        await setup.verifier.verify(token)
    assert type(refused.value) is Unauthenticated


async def test_payload_that_is_not_an_object(setup: Setup) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "EdDSA is deprecated", SecurityWarning)
        token = jws.serialize_compact(
            {"alg": "EdDSA", "kid": setup.key.kid, "typ": "at+jwt"},
            b"[1, 2]",
            setup.key.key,
            ["EdDSA"],
        )
    with pytest.raises(Unauthenticated, match="not a JSON object"):
        await setup.verifier.verify(token)


async def test_errors_and_logs_never_show_the_token_or_subject(setup: Setup) -> None:
    tokens = [
        setup.key.sign(claims(exp=NOW - 100)),
        setup.key.sign(claims(aud="https://other.test")),
        ed25519().sign(claims()),
        setup.key.sign(claims(iat=NOW + 100)),
    ]
    with capture_logs() as logs:
        for token in tokens:
            with pytest.raises(Unauthenticated) as refused:
                await setup.verifier.verify(token)
            shown = f"{refused.value} {refused.value.to_body()} {refused.value!r}"
            assert PERSONAL_ID not in shown
            assert token not in shown
    assert logs, "refusals are logged"
    for event in logs:
        assert PERSONAL_ID not in repr(event)
        assert not any(token in repr(event) for token in tokens)


# --- where the keys come from -------------------------------------------------------


def test_nothing_configured_means_no_verifier() -> None:
    plain = GatewaySettings(_env_file=None)  # type: ignore[call-arg]
    assert IdentityVerifier.from_settings(plain, httpx.AsyncClient()) is None


def _no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected request to {request.url}")


async def test_jwks_from_a_file(tmp_path: Path) -> None:
    key = ed25519()
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [key.jwk()]}), encoding="utf-8")
    async with httpx.AsyncClient(transport=httpx.MockTransport(_no_network)) as http:
        verifier = IdentityVerifier.from_settings(
            settings(oidc_jwks_file=path), http, clock=Clock(NOW)
        )
        assert verifier is not None
        assert (await verifier.verify(key.sign(claims()))).issuer == ISSUER
        # The issuer is pinned with a file too: another tenant's token of the same
        # key set is refused.
        with pytest.raises(Unauthenticated, match="does not trust"):
            await verifier.verify(key.sign(claims(iss="https://anyone.test")))


@pytest.mark.parametrize("keys", ["oidc_jwks_url", "oidc_jwks_file"])
def test_a_jwks_without_the_issuer_gives_no_verifier(keys: str) -> None:
    # Settings refuse it (tests/unit/gateway/test_settings.py); settings built around
    # that check still get no verifier that would trust any issuer.
    source: Any = Path("jwks.json") if keys == "oidc_jwks_file" else f"{ISSUER}/keys"
    unpinned = GatewaySettings.model_construct(origin=AUDIENCE, oidc_issuer=None, **{keys: source})
    with pytest.raises(ValueError, match="GATEWAY_OIDC_ISSUER"):
        IdentityVerifier.from_settings(unpinned, httpx.AsyncClient())


@pytest.mark.parametrize(
    "content", ["not json", '{"no": "keys"}', '{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}']
)
def test_unusable_jwks_file_fails_at_start(tmp_path: Path, content: str) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match="GATEWAY_OIDC_JWKS_FILE"):
        IdentityVerifier.from_settings(settings(oidc_jwks_file=path), httpx.AsyncClient())


def test_missing_jwks_file_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="GATEWAY_OIDC_JWKS_FILE"):
        IdentityVerifier.from_settings(
            settings(oidc_jwks_file=tmp_path / "absent.json"), httpx.AsyncClient()
        )


async def test_jwks_url_is_used_without_discovery() -> None:
    key = ed25519()
    idp = FakeIssuer([key])
    async with httpx.AsyncClient(transport=httpx.MockTransport(idp.handle)) as http:
        verifier = IdentityVerifier.from_settings(
            settings(oidc_jwks_url=f"{ISSUER}/keys"), http, clock=Clock(NOW)
        )
        assert verifier is not None
        await verifier.verify(key.sign(claims()))
    assert idp.calls == {"/keys": 1}


async def test_audience_defaults_to_the_origin_and_can_be_set() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(_no_network)) as http:
        default = IdentityVerifier.from_settings(settings(), http)
        configured = IdentityVerifier.from_settings(settings(oidc_audience="urn:gw"), http)
    assert default is not None
    assert configured is not None
    assert (default.audience, configured.audience) == (AUDIENCE, "urn:gw")


async def test_discovery_naming_another_issuer_is_not_trusted() -> None:
    key = ed25519()
    idp = FakeIssuer([key], discovery_issuer="https://evil.test")
    async with httpx.AsyncClient(transport=httpx.MockTransport(idp.handle)) as http:
        verifier = IdentityVerifier.from_settings(settings(), http, clock=Clock(NOW))
        assert verifier is not None
        with pytest.raises(ServiceUnavailable):
            await verifier.verify(key.sign(claims()))
    assert idp.jwks_fetches == 0


@pytest.mark.parametrize("environment", ["development", "production"])
async def test_discovery_refuses_a_plain_http_jwks_uri(environment: str) -> None:
    key = ed25519()
    idp = FakeIssuer([key], jwks_uri="http://id.example.test/keys")
    async with httpx.AsyncClient(transport=httpx.MockTransport(idp.handle)) as http:
        verifier = IdentityVerifier.from_settings(
            settings(environment=environment), http, clock=Clock(NOW)
        )
        assert verifier is not None
        with capture_logs() as logs, pytest.raises(ServiceUnavailable):
            await verifier.verify(key.sign(claims()))
    assert idp.jwks_fetches == 0
    assert any("https" in str(event.get("reason")) for event in logs)


@pytest.mark.parametrize(
    ("jwks_uri", "trusted"),
    [
        ("http://127.0.0.1:8103/keys", True),
        ("http://localhost:8103/keys", True),
        ("https://keys.example.test/keys", True),
        ("http://keys.example.test/keys", False),
    ],
)
async def test_discovery_in_production_takes_plain_http_only_on_loopback(
    jwks_uri: str, trusted: bool
) -> None:
    key = ed25519()
    issuer = "http://127.0.0.1:8103"
    idp = FakeIssuer([key], discovery_issuer=issuer, jwks_uri=jwks_uri)
    async with httpx.AsyncClient(transport=httpx.MockTransport(idp.handle)) as http:
        verifier = IdentityVerifier.from_settings(
            settings(environment="production", oidc_issuer=issuer), http, clock=Clock(NOW)
        )
        assert verifier is not None
        token = key.sign(claims(iss=issuer))
        if trusted:
            assert (await verifier.verify(token)).is_citizen
        else:
            with pytest.raises(ServiceUnavailable):
                await verifier.verify(token)
    assert idp.jwks_fetches == (1 if trusted else 0)


async def test_unreachable_issuer_is_503_and_retried_later() -> None:
    key = ed25519()
    idp = FakeIssuer([key], down=True)

    monotonic = Clock(0.0)
    async with httpx.AsyncClient(transport=httpx.MockTransport(idp.handle)) as http:
        verifier = IdentityVerifier.from_settings(
            settings(), http, clock=Clock(NOW), monotonic=monotonic
        )
        assert verifier is not None
        with pytest.raises(ServiceUnavailable) as unavailable:
            await verifier.verify(key.sign(claims()))
        assert unavailable.value.http_status == 503
        idp.down = False
        with pytest.raises(ServiceUnavailable):  # too soon to ask again
            await verifier.verify(key.sign(claims()))
        monotonic.now += 5
        assert (await verifier.verify(key.sign(claims()))).is_citizen


async def test_old_key_sets_are_refreshed(setup: Setup) -> None:
    await setup.verifier.verify(setup.key.sign(claims()))
    setup.idp.keys = [ed25519()]  # the issuer withdrew the key
    setup.monotonic.now += 3601
    with pytest.raises(BadSignature):
        await setup.verifier.verify(setup.key.sign(claims()))


async def test_keys_older_than_their_maximum_age_are_not_trusted() -> None:
    key = ed25519()
    idp = FakeIssuer([key])

    monotonic = Clock(0.0)
    async with httpx.AsyncClient(transport=httpx.MockTransport(idp.handle)) as http:
        verifier = IdentityVerifier.from_settings(
            settings(), http, clock=Clock(NOW), monotonic=monotonic
        )
        assert verifier is not None
        assert (await verifier.verify(key.sign(claims()))).is_citizen
        idp.down = True
        monotonic.now += 3601  # due for a refresh that fails: the keys still serve
        assert (await verifier.verify(key.sign(claims()))).is_citizen
        monotonic.now = 86400 + 1  # a day since they were fetched: no longer
        with pytest.raises(ServiceUnavailable, match="could not be refreshed") as stale:
            await verifier.verify(key.sign(claims()))
        assert stale.value.http_status == 503
        idp.down = False
        monotonic.now += 30
        assert (await verifier.verify(key.sign(claims()))).is_citizen


async def test_the_keys_maximum_age_comes_from_settings() -> None:
    key = ed25519()
    idp = FakeIssuer([key])

    monotonic = Clock(0.0)
    async with httpx.AsyncClient(transport=httpx.MockTransport(idp.handle)) as http:
        verifier = IdentityVerifier.from_settings(
            settings(oidc_jwks_max_age=600), http, clock=Clock(NOW), monotonic=monotonic
        )
        assert verifier is not None
        await verifier.verify(key.sign(claims()))
        idp.down = True
        monotonic.now += 601  # refreshed before the usual hour, and refused when it fails
        with pytest.raises(ServiceUnavailable):
            await verifier.verify(key.sign(claims()))
    assert idp.jwks_fetches == 1


# --- Identity -----------------------------------------------------------------------


def test_identity_repr_and_str_hide_the_subject() -> None:
    who = Identity(PERSONAL_ID, frozenset({"citizen"}), None, "vneid-level-2", ISSUER)
    for shown in (repr(who), str(who), f"{who}", repr([who])):
        assert PERSONAL_ID not in shown
        assert "vneid-level-2" in shown
    assert repr(who).startswith("Identity(roles=['citizen']")


# --- the route guards ---------------------------------------------------------------


def _app(verifier: IdentityVerifier | None, gateway_settings: GatewaySettings) -> FastAPI:
    app = FastAPI()
    app.state.gateway = SimpleNamespace(identity=verifier, settings=gateway_settings)

    @app.exception_handler(GatewayError)
    async def gateway_error(_request: Request, exc: GatewayError) -> Response:
        return error_response(exc, headers=error_headers(exc))  # as gateway.app answers

    @app.get("/me")
    async def me(who: CurrentIdentity) -> dict[str, Any]:
        return {"roles": sorted(who.roles)}

    @app.get("/citizen")
    async def citizen(who: CitizenIdentity) -> dict[str, Any]:
        return {"acr": who.acr}

    @app.post("/consent")
    async def consent(who: Level2Citizen) -> dict[str, Any]:
        return {"acr": who.acr}

    @app.get("/audit")
    async def audit(who: AuditorIdentity) -> dict[str, Any]:
        return {"org": who.org}

    @app.get("/ops", dependencies=[Depends(require_role("operator", "agency_admin"))])
    async def ops() -> dict[str, Any]:
        return {}

    @app.get("/operator")
    async def operator(who: OperatorIdentity) -> dict[str, Any]:
        return {"org": who.org}

    return app


@dataclass
class Guarded:
    client: httpx.AsyncClient
    key: SigningKey

    async def get(self, path: str, token: str | None, method: str = "GET") -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return await self.client.request(method, path, headers=headers)


@pytest.fixture
async def guarded(setup: Setup) -> AsyncIterator[Guarded]:
    app = _app(setup.verifier, settings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield Guarded(client, setup.key)


async def test_missing_token_is_401_with_a_challenge(guarded: Guarded) -> None:
    response = await guarded.get("/me", None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "token"])
async def test_other_authorization_schemes_are_401(guarded: Guarded, value: str) -> None:
    response = await guarded.client.get("/me", headers={"Authorization": value})
    assert response.status_code == 401
    assert "Bearer" in response.json()["message"]


async def test_bad_token_answers_with_its_code(guarded: Guarded) -> None:
    expired = guarded.key.sign(claims(exp=NOW - 100))
    response = await guarded.get("/me", expired)
    assert (response.status_code, response.json()["code"]) == (401, "TOKEN_EXPIRED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    response = await guarded.get("/me", ed25519().sign(claims()))
    assert (response.status_code, response.json()["code"]) == (401, "BAD_SIGNATURE")
    assert PERSONAL_ID not in response.text


async def test_any_signed_in_identity_passes_current_identity(guarded: Guarded) -> None:
    response = await guarded.get("/me", guarded.key.sign(claims()))
    assert response.status_code == 200
    assert response.json() == {"roles": ["citizen"]}


async def test_require_role_passes_the_role_and_refuses_others(guarded: Guarded) -> None:
    auditor = guarded.key.sign(claims(sub="kiem.toan", roles=["auditor"], org="VN/GOV/KTNN"))
    operator = guarded.key.sign(claims(sub="van.hanh", roles=["operator"], org="VN/GOV/BCA"))
    citizen = guarded.key.sign(claims())
    assert (await guarded.get("/audit", auditor)).json() == {"org": "VN/GOV/KTNN"}
    for token in (operator, citizen):
        response = await guarded.get("/audit", token)
        assert response.status_code == 403
        assert response.json()["code"] == "FORBIDDEN"
        assert "WWW-Authenticate" not in response.headers
    assert (await guarded.get("/ops", operator)).status_code == 200
    assert (await guarded.get("/ops", auditor)).status_code == 403
    assert (await guarded.get("/operator", operator)).status_code == 200


async def test_require_citizen(guarded: Guarded) -> None:
    staff = guarded.key.sign(claims(sub="van.hanh", roles=["operator"], org="VN/GOV/BCA"))
    level1 = guarded.key.sign(claims(acr="vneid-level-1"))
    level2 = guarded.key.sign(claims())
    assert (await guarded.get("/citizen", level1)).json() == {"acr": "vneid-level-1"}
    assert (await guarded.get("/citizen", staff)).status_code == 403
    refused = await guarded.get("/consent", level1, "POST")
    assert refused.status_code == 403
    assert "level 2" in refused.json()["message"]
    assert (await guarded.get("/consent", level2, "POST")).json() == {"acr": "vneid-level-2"}
    assert (await guarded.get("/consent", staff, "POST")).status_code == 403


async def test_level2_acr_comes_from_settings(setup: Setup) -> None:
    app = _app(setup.verifier, settings(oidc_level2_acr=["urn:vneid:loa:high"]))
    token = setup.key.sign(claims(acr="urn:vneid:loa:high"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
        response = await c.post("/consent", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        default_acr = setup.key.sign(claims())
        response = await c.post("/consent", headers={"Authorization": f"Bearer {default_acr}"})
        assert response.status_code == 403


@pytest.mark.parametrize("state", ["no verifier", "no gateway state"])
async def test_without_a_verifier_every_guard_is_401(setup: Setup, state: str) -> None:
    app = _app(None, settings())
    if state == "no gateway state":
        del app.state.gateway
    token = setup.key.sign(claims())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
        for path in ("/me", "/citizen", "/audit"):
            response = await c.get(path, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401
            assert response.json()["code"] == "UNAUTHENTICATED"
            assert "not configured" in response.json()["message"]


def test_require_role_needs_a_role() -> None:
    with pytest.raises(ValueError, match="at least one role"):
        require_role()
