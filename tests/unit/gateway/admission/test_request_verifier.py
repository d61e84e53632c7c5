"""`RequestVerifier`: how a request token is accepted or refused, offline.

Every refusal comes with its error class and code. Refusals before the signature checks
out are the plain error (nothing about the client is believed yet); refusals after it
come as `RejectedRequest` with the client, the token and its claims, for the record.
The clock's edges are tested exactly with `verify(now=...)`, and single use is tested
with a replay cache that remembers its calls: the jti is spent last, only by a token
that is otherwise valid. Clients live in a dict; the catalogue is the shipped one.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jws
from joserfc.jwk import ECKey, OKPKey

from gateway.admission import (
    MAX_LIFETIME,
    SKEW,
    TOKEN_TYPE,
    Client,
    ClientKey,
    MemoryReplayCache,
    RejectedRequest,
    RequestVerifier,
    VerifiedRequest,
    body_digest,
    sign_request,
)
from gateway.errors import (
    BadSignature,
    GatewayError,
    InvalidPurpose,
    RequestMismatch,
    ServiceUnavailable,
    TokenExpired,
    TokenReplayed,
    Unauthenticated,
)
from keys import eddsa_allowed
from policies import Catalogue, Purpose, UnknownProcedure, load_catalogue

AUDIENCE = "https://gateway.example.test"
CLIENT = "VN/GOV/UBND-HCM/mot-cua"
OTHER = "VN/GOV/UBND-HN/mot-cua"
RESIDENCE = "1.004222"  # does not allow hiding its accesses
HIDING = "LOCAL.criminal-case-identity-check"  # allows it
AN, BINH = "079203001234", "001185000777"
NOW = 1_800_000_000
MAX_HIDDEN = datetime.timedelta(days=30)
BODY = orjson.dumps({"query": f'{{ citizen(personalId: "{AN}") {{ fullName }} }}'})
PURPOSE = Purpose(RESIDENCE, "CASE-1", "officer-1", (AN,))
DROP = object()

ED = OKPKey.generate_key("Ed25519")
EC = ECKey.generate_key("P-256")
STRANGER = OKPKey.generate_key("Ed25519")


# -- helpers ----------------------------------------------------------------------------


class Clients:
    """The client registry as a dict: (client id, kid) -> (client, key)."""

    def __init__(self) -> None:
        self.found: dict[tuple[str, str], tuple[Client, ClientKey]] = {}

    def register(
        self,
        client_id: str,
        kid: str,
        key: OKPKey | ECKey,
        *,
        client_status: str = "active",
        key_status: str = "active",
    ) -> None:
        client = Client(client_id, "Một cửa", "UBND", frozenset({"commune_police"}), client_status)
        alg = "EdDSA" if isinstance(key, OKPKey) else "ES256"
        public = ClientKey(client_id, kid, alg, key.as_dict(private=False), key_status)
        self.found[(client_id, kid)] = (client, public)

    async def lookup(self, client_id: str, kid: str) -> tuple[Client, ClientKey] | None:
        return self.found.get((client_id, kid))


class SpyReplay:
    """The in-memory replay cache, remembering every call made to it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self.cache = MemoryReplayCache()

    async def first_use(self, issuer: str, jti: str, ttl: int, **_: Any) -> bool:
        self.calls.append((issuer, jti, ttl))
        return await self.cache.first_use(issuer, jti, ttl)


@dataclass
class Gate:
    """A verifier over `clients` and a spying replay cache."""

    clients: Clients
    replay: SpyReplay
    verifier: RequestVerifier

    async def verify(self, token: str, body: bytes = BODY, *, now: float = NOW) -> VerifiedRequest:
        return await self.verifier.verify(f"Bearer {token}", body, now=now)

    async def refusal(
        self, authorization: str | None, body: bytes = BODY, *, now: float = NOW
    ) -> GatewayError:
        """The plain error a request is refused with before its signature checks out."""
        spent = len(self.replay.calls)
        with pytest.raises(GatewayError) as caught:
            await self.verifier.verify(authorization, body, now=now)
        assert len(self.replay.calls) == spent
        return caught.value

    async def rejection(self, token: str, body: bytes = BODY, *, now: float = NOW) -> GatewayError:
        """The error of a signed token refused after its signature checked out."""
        with pytest.raises(RejectedRequest) as caught:
            await self.verify(token, body, now=now)
        rejected = caught.value
        assert rejected.token == token
        assert rejected.client.id == CLIENT
        assert rejected.claims == _payload(token)
        assert str(rejected) == rejected.error.code
        return rejected.error


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def _gate(clients: Clients, catalogue: Catalogue) -> Gate:
    replay = SpyReplay()
    verifier = RequestVerifier(
        clients=clients,
        replay=replay,
        audience=AUDIENCE,
        known_procedure=catalogue.get,
        hiding_allowed=lambda code: catalogue.get(code).hidden_access_allowed,
        max_hidden=MAX_HIDDEN,
    )
    return Gate(clients, replay, verifier)


def _registered(**statuses: str) -> Clients:
    clients = Clients()
    clients.register(CLIENT, "ed-1", ED, **statuses)
    clients.register(CLIENT, "es-1", EC, **statuses)
    clients.register(OTHER, "other-1", STRANGER)
    return clients


@pytest.fixture
def gate(catalogue: Catalogue) -> Gate:
    return _gate(_registered(), catalogue)


def _token(
    *,
    key: OKPKey | ECKey = ED,
    kid: str = "ed-1",
    client_id: str = CLIENT,
    body: bytes = BODY,
    purpose: Purpose = PURPOSE,
    now: int = NOW,
    ttl: int = 120,
    jti: str | None = None,
    audience: str = AUDIENCE,
) -> str:
    return sign_request(
        client_id=client_id,
        key=key,
        kid=kid,
        audience=audience,
        body=body,
        purpose=purpose,
        ttl=ttl,
        now=now,
        jti=jti,
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _payload(token: str) -> Any:
    part = token.split(".")[1]
    return orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _edit(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = {**base, **changes}
    return {k: v for k, v in out.items() if v is not DROP}


def _header(**changes: Any) -> dict[str, Any]:
    return _edit({"alg": "EdDSA", "typ": TOKEN_TYPE, "kid": "ed-1"}, changes)


def _claims(**changes: Any) -> dict[str, Any]:
    base = {
        "iss": CLIENT,
        "aud": AUDIENCE,
        "iat": NOW,
        "exp": NOW + 120,
        "jti": "jti-1",
        "req": body_digest(BODY),
        "purpose": PURPOSE.claim(),
    }
    return _edit(base, changes)


def _signed(
    header: dict[str, Any] | bytes, claims: dict[str, Any] | bytes, key: OKPKey | ECKey = ED
) -> str:
    """A compact JWS over exactly these bytes, validly signed by `key`."""
    head = header if isinstance(header, bytes) else orjson.dumps(header)
    body = claims if isinstance(claims, bytes) else orjson.dumps(claims)
    signing_input = f"{_b64(head)}.{_b64(body)}".encode()
    if isinstance(key, OKPKey):
        signature = key.private_key.sign(signing_input)
    else:
        r, s = decode_dss_signature(key.private_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{signing_input.decode()}.{_b64(signature)}"


def _at(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)


def _hidden(until: datetime.datetime) -> Purpose:
    return Purpose(HIDING, "CASE-H", "officer-1", (AN,), hidden_until=until)


def _sized(length: int) -> str:
    """A valid token of exactly `length` characters (padded with a claim and `cty`)."""
    shortest = len(_signed(_header(), _claims(pad="")))
    start = max(0, (length - shortest) * 3 // 4 - 8)
    for extra in range(4):
        for n in range(start, length):
            token = _signed(_header(cty="c" * extra), _claims(pad="x" * n))
            if len(token) == length:
                return token
            if len(token) > length:
                break
    raise AssertionError(f"no token of {length} characters")


# -- accepted ---------------------------------------------------------------------------


async def test_a_well_signed_token_is_accepted_with_who_asks_and_why(gate: Gate) -> None:
    token = _token(jti="jti-accepted")
    verified = await gate.verify(token)
    assert verified.client.id == CLIENT
    assert verified.kid == "ed-1"
    assert verified.jti == "jti-accepted"
    assert verified.purpose == PURPOSE
    assert (verified.issued_at, verified.expires_at) == (NOW, NOW + 120)
    assert verified.token == token


async def test_an_es256_key_verifies_its_tokens(gate: Gate) -> None:
    verified = await gate.verify(_token(key=EC, kid="es-1"))
    assert verified.kid == "es-1"


async def test_ed25519_is_accepted_as_the_other_name_of_eddsa(gate: Gate) -> None:
    with eddsa_allowed():
        token = str(
            jws.serialize_compact(
                _header(alg="Ed25519"), orjson.dumps(_claims()), ED, algorithms=["Ed25519"]
            )
        )
    assert (await gate.verify(token)).kid == "ed-1"


@pytest.mark.parametrize(
    "dump",
    [
        lambda value: json.dumps(value).encode(),  # spaces after separators
        lambda value: json.dumps(value, indent=2, ensure_ascii=True).encode(),
        lambda value: orjson.dumps(value, option=orjson.OPT_SORT_KEYS),
    ],
    ids=["spaced", "indented", "sorted"],
)
async def test_json_written_otherwise_than_compactly_reads_the_same(
    gate: Gate, dump: Callable[[Any], bytes]
) -> None:
    purpose = PURPOSE.claim() | {"officer": "Cán bộ Lê Văn Ánh"}
    verified = await gate.verify(_signed(dump(_header()), dump(_claims(purpose=purpose))))
    assert verified.kid == "ed-1"
    assert verified.purpose.officer == "Cán bộ Lê Văn Ánh"


@pytest.mark.parametrize("indent", [None, 1])
async def test_a_duplicate_is_refused_however_the_json_is_written(
    gate: Gate, indent: int | None
) -> None:
    claims = json.dumps(_claims(), indent=indent).encode()
    twice = claims[: claims.rindex(b"}")] + b', "jti": "jti-2"}'
    error = await gate.refusal(f"Bearer {_signed(_header(), twice)}")
    assert "unique member names" in error.message


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_the_bearer_scheme_is_case_insensitive(gate: Gate, scheme: str) -> None:
    verified = await gate.verifier.verify(f"{scheme} {_token()}", BODY, now=NOW)
    assert verified.client.id == CLIENT


async def test_a_get_request_signs_its_query_string(gate: Gate) -> None:
    query = b"query=%7B+__typename+%7D"
    assert (await gate.verify(_token(body=query), query)).client.id == CLIENT


async def test_a_purpose_may_name_nobody_and_up_to_fifty_subjects(gate: Gate) -> None:
    nobody = Purpose(RESIDENCE, "CASE-1", "officer-1", ())
    assert (await gate.verify(_token(purpose=nobody))).purpose.subjects == ()
    fifty = tuple(f"{i:012d}" for i in range(50))
    many = Purpose(RESIDENCE, "CASE-1", "officer-1", fifty)
    assert (await gate.verify(_token(purpose=many))).purpose.subjects == fifty


# -- refused before the signature: the plain error, nothing spent -----------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Bearer    ", "Basic dXNlcjpwYXNz", "Token abc.def.ghi"],
)
async def test_a_request_without_a_bearer_token_is_unauthenticated(
    gate: Gate, authorization: str | None
) -> None:
    error = await gate.refusal(authorization)
    assert type(error) is Unauthenticated
    assert error.code == "UNAUTHENTICATED"
    assert "Bearer" in error.message


async def test_a_token_of_8192_characters_is_read_and_one_more_is_refused(gate: Gate) -> None:
    token = _sized(8192)
    assert (await gate.verify(token)).client.id == CLIENT
    error = await gate.refusal(f"Bearer {token}A")
    assert type(error) is Unauthenticated
    assert "8192" in error.message


@pytest.mark.parametrize("token", ["abc", "abc.def", "a.b.c.d", "...."])
async def test_a_token_not_of_three_parts_is_refused(gate: Gate, token: str) -> None:
    error = await gate.refusal(f"Bearer {token}")
    assert type(error) is Unauthenticated
    assert "compact JWS" in error.message


@pytest.mark.parametrize(
    "part",
    [
        "a",  # not base64 at all
        _b64(b"not json"),
        _b64(b'{"a":"\xc3\x28"}'),  # not UTF-8
        _b64(b"[]"),  # JSON, not an object
        _b64(b'"text"'),
        _b64(b"[" * 3000),  # nested deeper than a JSON parser goes
    ],
)
@pytest.mark.parametrize("where", ["header", "claims"])
async def test_a_part_that_is_not_a_base64_json_object_is_refused(
    gate: Gate, part: str, where: str
) -> None:
    header, claims, signature = _token().split(".")
    token = f"{part}.{claims}.{signature}" if where == "header" else f"{header}.{part}.{signature}"
    error = await gate.refusal(f"Bearer {token}")
    assert type(error) is Unauthenticated
    assert "compact JWS" in error.message


async def test_a_duplicate_header_member_is_refused_though_signed(gate: Gate) -> None:
    header = orjson.dumps(_header())[:-1] + b',"kid":"es-1"}'
    error = await gate.refusal(f"Bearer {_signed(header, _claims())}")
    assert type(error) is Unauthenticated
    assert "unique member names" in error.message


async def test_a_duplicate_claim_is_refused_though_signed(gate: Gate) -> None:
    # Two purposes: parsers disagree on which one counts, so neither does.
    other = {"procedure": RESIDENCE, "case": "CASE-2", "officer": "o", "subjects": [BINH]}
    claims = orjson.dumps(_claims())[:-1] + b',"purpose":' + orjson.dumps(other) + b"}"
    error = await gate.refusal(f"Bearer {_signed(_header(), claims)}")
    assert type(error) is Unauthenticated
    assert "unique member names" in error.message


async def test_a_duplicate_nested_member_is_refused_too(gate: Gate) -> None:
    purpose = orjson.dumps(PURPOSE.claim())[:-1] + b',"case":"CASE-2"}'
    claims = orjson.dumps(_claims(purpose=DROP))[:-1] + b',"purpose":' + purpose + b"}"
    error = await gate.refusal(f"Bearer {_signed(_header(), claims)}")
    assert type(error) is Unauthenticated


@pytest.mark.parametrize("typ", [DROP, "JWT", "gw-request+JWT", "at+jwt", None])
async def test_a_token_of_another_type_is_refused(gate: Gate, typ: object) -> None:
    error = await gate.refusal(f"Bearer {_signed(_header(typ=typ), _claims())}")
    assert type(error) is Unauthenticated
    assert TOKEN_TYPE in error.message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("crit", ["exp"]),
        ("jku", "https://attacker.example/jwks.json"),
        ("jwk", STRANGER.as_dict(private=False)),
        ("x5u", "https://attacker.example/cert.pem"),
    ],
)
async def test_a_header_naming_its_own_key_is_refused(gate: Gate, name: str, value: Any) -> None:
    # Even signed by the registered key: keys come from the registry only.
    error = await gate.refusal(f"Bearer {_signed(_header(**{name: value}), _claims())}")
    assert type(error) is Unauthenticated
    assert "client registry" in error.message


async def test_a_key_carried_in_the_header_is_never_used(gate: Gate) -> None:
    header = _header(jwk=STRANGER.as_dict(private=False))
    error = await gate.refusal(f"Bearer {_signed(header, _claims(), STRANGER)}")
    assert type(error) is Unauthenticated


@pytest.mark.parametrize(
    ("header", "claims"),
    [
        (_header(), _claims(iss=DROP)),
        (_header(kid=DROP), _claims()),
        (_header(), _claims(iss=42)),
        (_header(kid=["ed-1"]), _claims()),
        (_header(), _claims(iss=None)),
    ],
)
async def test_a_token_without_issuer_or_kid_is_refused(
    gate: Gate, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    error = await gate.refusal(f"Bearer {_signed(header, claims)}")
    assert type(error) is Unauthenticated
    assert "`iss`" in error.message


async def test_an_unknown_client_is_a_bad_signature(gate: Gate) -> None:
    error = await gate.refusal(f"Bearer {_token(client_id='VN/GOV/NOBODY/system')}")
    assert type(error) is BadSignature
    assert error.code == "BAD_SIGNATURE"


async def test_an_unknown_kid_is_a_bad_signature(gate: Gate) -> None:
    error = await gate.refusal(f"Bearer {_token(kid='ed-2')}")
    assert type(error) is BadSignature


async def test_a_kid_of_another_client_is_looked_up_within_the_issuer(gate: Gate) -> None:
    # OTHER signs with its own key and kid but claims to be CLIENT.
    error = await gate.refusal(f"Bearer {_token(key=STRANGER, kid='other-1')}")
    assert type(error) is BadSignature
    # The same token under OTHER's own name checks out: the key was fine, the issuer not.
    verified = await gate.verify(_token(key=STRANGER, kid="other-1", client_id=OTHER))
    assert verified.client.id == OTHER


async def test_a_token_signed_by_another_key_under_the_clients_kid_is_refused(
    gate: Gate,
) -> None:
    error = await gate.refusal(f"Bearer {_token(key=STRANGER)}")
    assert type(error) is BadSignature


@pytest.mark.parametrize(
    ("alg", "kid"),
    [
        ("ES256", "ed-1"),  # an Ed25519 key named as a P-256 one
        ("EdDSA", "es-1"),
        ("Ed25519", "es-1"),
        ("RS256", "ed-1"),
        ("HS256", "ed-1"),
        ("none", "ed-1"),
        (DROP, "ed-1"),
    ],
)
async def test_an_alg_other_than_the_keys_is_a_bad_signature(
    gate: Gate, alg: object, kid: str
) -> None:
    key = ED if kid == "ed-1" else EC
    error = await gate.refusal(f"Bearer {_signed(_header(alg=alg, kid=kid), _claims(), key)}")
    assert type(error) is BadSignature


async def test_alg_none_without_a_signature_is_a_bad_signature(gate: Gate) -> None:
    token = f"{_b64(orjson.dumps(_header(alg='none')))}.{_b64(orjson.dumps(_claims()))}."
    error = await gate.refusal(f"Bearer {token}")
    assert type(error) is BadSignature


async def test_hs256_keyed_with_the_public_key_is_a_bad_signature(gate: Gate) -> None:
    signing_input = f"{_b64(orjson.dumps(_header(alg='HS256')))}.{_b64(orjson.dumps(_claims()))}"
    public = ED.as_dict(private=False)
    for secret in (ED.as_pem(private=False), base64.urlsafe_b64decode(public["x"] + "==")):
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        error = await gate.refusal(f"Bearer {signing_input}.{_b64(mac)}")
        assert type(error) is BadSignature


async def test_a_changed_signature_or_payload_is_a_bad_signature(gate: Gate) -> None:
    header, claims, signature = _token().split(".")
    garbage = f"{header}.{claims}.{_b64(b'x' * 64)}"
    assert type(await gate.refusal(f"Bearer {garbage}")) is BadSignature
    swapped = f"{header}.{_b64(orjson.dumps(_claims(jti='another')))}.{signature}"
    assert type(await gate.refusal(f"Bearer {swapped}")) is BadSignature


async def test_a_revoked_key_is_a_bad_signature_recorded_in_the_clients_name(
    catalogue: Catalogue,
) -> None:
    gate = _gate(_registered(key_status="revoked"), catalogue)
    # Its signature verified: a refusal to record (`rejection`), not an anonymous one.
    error = await gate.rejection(_token())
    assert type(error) is BadSignature
    assert error.message == "The key has been revoked."
    # A forged token for the revoked key does not learn that it is revoked.
    header, claims, _ = _token().split(".")
    forged = await gate.refusal(f"Bearer {header}.{claims}.{_b64(b'x' * 64)}")
    assert forged.message == BadSignature.default_message


async def test_a_suspended_client_is_refused_and_recorded(catalogue: Catalogue) -> None:
    gate = _gate(_registered(client_status="suspended"), catalogue)
    error = await gate.rejection(_token())
    assert type(error) is Unauthenticated
    assert error.message == "The client is suspended."
    # Only a signed token learns it: a forged one is a bad signature like any other.
    header, claims, _ = _token().split(".")
    forged = await gate.refusal(f"Bearer {header}.{claims}.{_b64(b'x' * 64)}")
    assert type(forged) is BadSignature


# -- refused after the signature: RejectedRequest, nothing spent ------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"iat": str(NOW)},
        {"iat": float(NOW)},
        {"iat": DROP},
        {"iat": None},
        {"iat": True},
        {"iat": False},
        {"exp": str(NOW + 60)},
        {"exp": float(NOW + 60)},
        {"exp": DROP},
        {"exp": True},
        {"exp": False},
    ],
)
async def test_iat_and_exp_must_be_integers(gate: Gate, changes: dict[str, Any]) -> None:
    error = await gate.rejection(_signed(_header(), _claims(**changes)))
    assert type(error) is Unauthenticated
    assert "integer" in error.message
    assert gate.replay.calls == []


@pytest.mark.parametrize("lifetime", [0, -10])
async def test_a_token_expiring_before_it_is_issued_is_refused(gate: Gate, lifetime: int) -> None:
    error = await gate.rejection(_signed(_header(), _claims(exp=NOW + lifetime)))
    assert type(error) is Unauthenticated
    assert "`exp` is after its `iat`" in error.message
    assert gate.replay.calls == []


async def test_a_token_lives_at_most_300_seconds(gate: Gate) -> None:
    longest = _signed(_header(), _claims(exp=NOW + MAX_LIFETIME, jti="longest"))
    assert (await gate.verify(longest)).expires_at == NOW + 300
    too_long = _signed(_header(), _claims(exp=NOW + MAX_LIFETIME + 1))
    error = await gate.rejection(too_long)
    assert type(error) is Unauthenticated
    assert "300" in error.message


async def test_sign_request_never_signs_a_longer_life() -> None:
    claims = _payload(_token(ttl=3600))
    assert claims["exp"] - claims["iat"] == MAX_LIFETIME


async def test_a_token_issued_up_to_the_skew_ahead_is_accepted(gate: Gate) -> None:
    token = _token(now=NOW + SKEW, ttl=60)
    assert (await gate.verify(token, now=NOW)).issued_at == NOW + 30


async def test_a_token_issued_beyond_the_skew_ahead_is_refused(gate: Gate) -> None:
    error = await gate.rejection(_token(now=NOW + SKEW + 1, ttl=60), now=NOW)
    assert type(error) is Unauthenticated
    assert "future" in error.message
    assert gate.replay.calls == []


async def test_a_token_expired_by_the_skew_is_refused(gate: Gate) -> None:
    token = _signed(_header(), _claims(iat=NOW - SKEW - 60, exp=NOW - SKEW))
    error = await gate.rejection(token)
    assert type(error) is TokenExpired
    assert error.code == "TOKEN_EXPIRED"
    assert gate.replay.calls == []


async def test_a_token_one_second_short_of_expiry_by_the_skew_is_accepted(gate: Gate) -> None:
    token = _signed(_header(), _claims(iat=NOW - SKEW - 59, exp=NOW - SKEW + 1))
    assert (await gate.verify(token)).expires_at == NOW - 29


async def test_expiry_is_judged_at_the_verifiers_clock(gate: Gate) -> None:
    token = _token(ttl=60)
    error = await gate.rejection(token, now=NOW + 60 + SKEW)
    assert type(error) is TokenExpired
    assert (await gate.verify(token, now=NOW + 60 + SKEW - 0.5)).jti


@pytest.mark.parametrize(
    "audience",
    [
        "https://another-gateway.example.test",
        AUDIENCE + "/",
        ["https://another-gateway.example.test"],
        [],
        DROP,
        None,
    ],
)
async def test_a_token_for_another_audience_is_refused(gate: Gate, audience: object) -> None:
    error = await gate.rejection(_signed(_header(), _claims(aud=audience)))
    assert type(error) is Unauthenticated
    assert "audience" in error.message
    assert gate.replay.calls == []


async def test_a_list_of_audiences_naming_this_gateway_is_accepted(gate: Gate) -> None:
    token = _signed(_header(), _claims(aud=["https://another.example.test", AUDIENCE]))
    assert (await gate.verify(token)).client.id == CLIENT


async def test_a_token_for_another_body_is_a_request_mismatch(gate: Gate) -> None:
    error = await gate.rejection(_token(), BODY.replace(b"fullName", b"birthDate"))
    assert type(error) is RequestMismatch
    assert error.code == "REQUEST_MISMATCH"
    assert gate.replay.calls == []


async def test_a_token_without_req_is_a_request_mismatch(gate: Gate) -> None:
    error = await gate.rejection(_signed(_header(), _claims(req=DROP)))
    assert type(error) is RequestMismatch


@pytest.mark.parametrize("jti", [DROP, "", "j" * 129, 42, None, ["jti-1"]])
async def test_a_jti_of_1_to_128_characters_is_required(gate: Gate, jti: object) -> None:
    error = await gate.rejection(_signed(_header(), _claims(jti=jti)))
    assert type(error) is Unauthenticated
    assert "jti" in error.message
    assert gate.replay.calls == []


@pytest.mark.parametrize("jti", ["\\u0000", "a\\ud800b", "line\\r\\nbreak", "\\u202e"])
async def test_a_jti_of_unprintable_characters_is_refused_before_the_replay_cache(
    gate: Gate, jti: str
) -> None:
    # JSON escapes: a lone surrogate cannot be written any other way.
    claims = orjson.dumps(_claims(jti="JTI")).replace(b'"JTI"', f'"{jti}"'.encode())
    with pytest.raises(RejectedRequest) as caught:
        await gate.verify(_signed(_header(), claims))
    error = caught.value.error
    assert type(error) is Unauthenticated
    assert "printable" in error.message
    assert gate.replay.calls == []


async def test_a_jti_of_128_characters_is_accepted(gate: Gate) -> None:
    assert (await gate.verify(_token(jti="j" * 128))).jti == "j" * 128


def _purpose(**changes: Any) -> dict[str, Any]:
    return _edit(PURPOSE.claim(), changes)


@pytest.mark.parametrize(
    "purpose",
    [
        DROP,
        None,
        "1.004222",
        [RESIDENCE, "CASE-1", "officer-1", [AN]],
        _purpose(procedure=DROP),
        _purpose(case=DROP),
        _purpose(officer=DROP),
        _purpose(procedure=""),
        _purpose(case=""),
        _purpose(officer=""),
        _purpose(case="c" * 129),
        _purpose(officer="o" * 129),
        _purpose(officer=7),
        _purpose(subjects=DROP),
        _purpose(subjects=AN),
        _purpose(subjects=[f"{i:012d}" for i in range(51)]),
        _purpose(subjects=["12345"]),
        _purpose(subjects=[AN, 79203001234]),
        _purpose(subjects=[AN, "079-203"]),
        _purpose(hiddenUntil="2027-01-31T00:00:00"),  # no offset
        _purpose(hiddenUntil="tomorrow"),
    ],
)
async def test_a_malformed_purpose_is_an_invalid_purpose(gate: Gate, purpose: Any) -> None:
    error = await gate.rejection(_signed(_header(), _claims(purpose=purpose)))
    assert type(error) is InvalidPurpose
    assert error.code == "INVALID_PURPOSE"
    assert gate.replay.calls == []


async def test_an_unknown_procedure_is_refused_with_what_the_catalogue_raises(
    gate: Gate,
) -> None:
    unknown = Purpose("9.999999", "CASE-1", "officer-1", (AN,))
    error = await gate.rejection(_token(purpose=unknown))
    assert type(error) is UnknownProcedure
    assert error.code == "UNKNOWN_PROCEDURE"
    assert gate.replay.calls == []


async def test_whatever_known_procedure_raises_is_the_refusal(catalogue: Catalogue) -> None:
    def closed(code: str) -> None:
        raise ServiceUnavailable("The catalogue is being reloaded.")

    gate = _gate(_registered(), catalogue)
    gate.verifier = RequestVerifier(
        clients=gate.clients, replay=gate.replay, audience=AUDIENCE, known_procedure=closed
    )
    error = await gate.rejection(_token())
    assert type(error) is ServiceUnavailable
    assert gate.replay.calls == []


async def test_hiding_is_refused_for_a_procedure_that_does_not_allow_it(gate: Gate) -> None:
    purpose = Purpose(RESIDENCE, "CASE-1", "officer-1", (AN,), hidden_until=_at(NOW + 3600))
    error = await gate.rejection(_token(purpose=purpose))
    assert type(error) is InvalidPurpose
    assert RESIDENCE in error.message
    assert gate.replay.calls == []


async def test_hiding_is_accepted_for_a_procedure_that_allows_it(gate: Gate) -> None:
    until = _at(NOW + 3600)
    assert (await gate.verify(_token(purpose=_hidden(until)))).purpose.hidden_until == until


async def test_hiding_until_now_or_before_is_refused(gate: Gate) -> None:
    for until in (_at(NOW), _at(NOW - 1)):
        error = await gate.rejection(_token(purpose=_hidden(until)))
        assert type(error) is InvalidPurpose
        assert "past" in error.message
    assert (await gate.verify(_token(purpose=_hidden(_at(NOW + 1))))).jti
    assert len(gate.replay.calls) == 1


async def test_hiding_is_at_most_max_hidden_ahead(gate: Gate) -> None:
    furthest = _at(NOW) + MAX_HIDDEN
    assert (await gate.verify(_token(purpose=_hidden(furthest)))).purpose.hidden_until == furthest
    beyond = furthest + datetime.timedelta(seconds=1)
    error = await gate.rejection(_token(purpose=_hidden(beyond)))
    assert type(error) is InvalidPurpose
    assert "30 days" in error.message


async def test_hiding_is_judged_as_an_instant_whatever_its_offset(gate: Gate) -> None:
    hanoi = datetime.timezone(datetime.timedelta(hours=7))
    furthest = _at(NOW) + MAX_HIDDEN
    claim = _purpose(procedure=HIDING, hiddenUntil=furthest.astimezone(hanoi).isoformat())
    assert "+07:00" in claim["hiddenUntil"]
    verified = await gate.verify(_signed(_header(), _claims(purpose=claim)))
    assert verified.purpose.hidden_until == furthest
    assert verified.purpose.hidden_until.tzinfo == datetime.UTC
    beyond = (furthest + datetime.timedelta(seconds=1)).astimezone(hanoi).isoformat()
    late = _purpose(procedure=HIDING, hiddenUntil=beyond)
    error = await gate.rejection(_signed(_header(), _claims(jti="late", purpose=late)))
    assert type(error) is InvalidPurpose


# -- single use -------------------------------------------------------------------------


async def test_a_token_is_accepted_once(gate: Gate) -> None:
    token = _token()
    await gate.verify(token)
    error = await gate.rejection(token)
    assert type(error) is TokenReplayed
    assert error.code == "TOKEN_REPLAYED"


async def test_a_jti_is_single_use_whatever_token_carries_it(gate: Gate) -> None:
    await gate.verify(_token(jti="once"))
    error = await gate.rejection(_token(jti="once", now=NOW + 5))
    assert type(error) is TokenReplayed


async def test_a_jti_is_spent_per_client(gate: Gate) -> None:
    await gate.verify(_token(jti="shared"))
    other = _token(key=STRANGER, kid="other-1", client_id=OTHER, jti="shared")
    assert (await gate.verify(other)).client.id == OTHER


def _refused_then_fixed() -> Iterator[Any]:
    """(token refused, body, clock), each with the jti the fixed token uses."""
    jti = "spent-last"
    yield pytest.param(_token(jti=jti, audience="https://elsewhere.test"), BODY, NOW, id="aud")
    yield pytest.param(_token(jti=jti), b'{"query":"{ other }"}', NOW, id="body")
    bad = _signed(_header(), _claims(jti=jti, purpose=_purpose(case="")))
    yield pytest.param(bad, BODY, NOW, id="purpose")
    unknown = Purpose("9.999999", "CASE-1", "officer-1", (AN,))
    yield pytest.param(_token(jti=jti, purpose=unknown), BODY, NOW, id="procedure")
    hidden = Purpose(RESIDENCE, "CASE-1", "officer-1", (AN,), hidden_until=_at(NOW + 60))
    yield pytest.param(_token(jti=jti, purpose=hidden), BODY, NOW, id="hiding")
    yield pytest.param(_token(jti=jti, ttl=60), BODY, NOW + 60 + SKEW, id="expired")
    yield pytest.param(_token(jti=jti, now=NOW + SKEW + 1), BODY, NOW, id="future")
    too_long = _signed(_header(), _claims(jti=jti, exp=NOW + 301))
    yield pytest.param(too_long, BODY, NOW, id="lifetime")


@pytest.mark.parametrize(("token", "body", "clock"), list(_refused_then_fixed()))
async def test_a_refused_token_does_not_spend_its_jti(
    gate: Gate, token: str, body: bytes, clock: int
) -> None:
    error = await gate.rejection(token, body, now=clock)
    assert not isinstance(error, TokenReplayed)
    assert gate.replay.calls == []
    verified = await gate.verify(_token(jti="spent-last"))
    assert verified.jti == "spent-last"


async def test_the_same_token_with_its_right_body_is_accepted_after_a_mismatch(
    gate: Gate,
) -> None:
    token = _token()
    assert type(await gate.rejection(token, b"another body")) is RequestMismatch
    assert (await gate.verify(token, BODY)).token == token
    assert type(await gate.rejection(token, BODY)) is TokenReplayed


async def test_a_token_refused_before_its_signature_spends_nothing(gate: Gate) -> None:
    header, claims, _ = _token(jti="forged").split(".")
    await gate.refusal(f"Bearer {header}.{claims}.{_b64(b'x' * 64)}")
    assert (await gate.verify(_token(jti="forged"))).jti == "forged"


@pytest.mark.parametrize(
    ("ttl", "clock"),
    [
        (120, NOW),
        (300, NOW),
        (1, NOW),
        (120, NOW + 0.25),
        (120, NOW + 119.9),
        (60, NOW + 60 + SKEW - 0.5),  # just short of expiring
        (60, NOW - SKEW + 0.5),  # issued just within the skew ahead
    ],
)
async def test_the_jti_is_remembered_for_the_tokens_remaining_life_and_skew(
    gate: Gate, ttl: int, clock: float
) -> None:
    verified = await gate.verify(_token(ttl=ttl), now=clock)
    [(issuer, jti, remembered)] = gate.replay.calls
    assert (issuer, jti) == (CLIENT, verified.jti)
    assert remembered >= 1
    assert remembered >= verified.expires_at + SKEW - clock


async def test_a_replay_cache_that_cannot_answer_refuses_the_token(
    catalogue: Catalogue,
) -> None:
    class Down:
        async def first_use(self, issuer: str, jti: str, ttl: int, **_: Any) -> bool:
            raise ServiceUnavailable("The replay cache does not answer.")

    gate = _gate(_registered(), catalogue)
    gate.verifier = RequestVerifier(
        clients=gate.clients, replay=Down(), audience=AUDIENCE, known_procedure=catalogue.get
    )
    error = await gate.rejection(_token())
    assert type(error) is ServiceUnavailable
