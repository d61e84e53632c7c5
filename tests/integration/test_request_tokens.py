"""Request tokens that must be refused, each with its code, and what gets recorded.

Refusals before the signature checks out are anonymous: nothing is written to the
access log. A request signed by a registered client but refused afterwards (expired,
replayed, another body, unknown procedure, rate limit) is recorded as rejected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
import uuid

import orjson
import pytest
import sqlalchemy as sa
from joserfc import jws
from joserfc.jwk import OKPKey

from gateway.admission import TOKEN_TYPE, body_digest, sign_request
from gateway.storage import create_engine
from keys import eddsa_allowed
from policies import Purpose

RESIDENCE = "1.004222"
GR = "application/graphql-response+json"


@pytest.fixture
def body(dataset) -> bytes:
    person = dataset.sample.citizens[0]
    return orjson.dumps({"query": f'{{ citizen(personalId: "{person}") {{ fullName }} }}'})


@pytest.fixture
def purpose(dataset) -> Purpose:
    return Purpose(RESIDENCE, "CASE-1", "officer-1", (dataset.sample.citizens[0],))


class Recorded:
    """The access records of the test's client, and how many access records were made in all.

    Registering a client or a key is an `admin` record of its own: not counted here.
    """

    def __init__(self, url: str, client_id: str) -> None:
        self.url, self.client_id = url, client_id
        self.before = 0

    async def _read(self, query: str, **params: str) -> list[str]:
        engine = create_engine(self.url)
        try:
            async with engine.connect() as conn:
                return [row[0] for row in await conn.execute(sa.text(query), params)]
        finally:
            await engine.dispose()

    async def count(self) -> int:
        """Access records, but not refusal summaries: those count earlier minutes' refusals
        of a client, and any gateway on the shared database writes them when a minute
        closes (or it stops), whatever test is running then."""
        envelopes = await self._read("SELECT envelope FROM events WHERE type = 'access'")
        return sum("refused" not in (json.loads(e) if isinstance(e, str) else e) for e in envelopes)

    async def outcomes(self) -> list[str]:
        """The outcome of each record of the test's client, oldest first."""
        return await self._read(
            "SELECT outcome FROM events WHERE client_id = :c AND type = 'access' ORDER BY ts",
            c=self.client_id,
        )

    async def none_made(self) -> bool:
        """No access record at all was made since the test began (whoever it would be of)."""
        return await self.count() == self.before


@pytest.fixture
async def recorded(migrated, signer) -> Recorded:
    found = Recorded(migrated, signer.client_id)
    found.before = await found.count()
    return found


async def _send(gateway, body: bytes, token: str | None):
    headers = {"Content-Type": "application/json", "Accept": GR}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with gateway.client(auth=None) as http:
        return await http.post("/graphql", content=body, headers=headers)


def _token(signer, body: bytes, purpose: Purpose, **options) -> str:
    return sign_request(
        client_id=options.pop("client_id", signer.client_id),
        key=options.pop("key", signer.key),
        kid=options.pop("kid", signer.kid),
        audience=options.pop("audience", signer.audience),
        body=body,
        purpose=purpose,
        **options,
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(signer, body: bytes, purpose: Purpose, **extra) -> dict:
    now = int(time.time())
    return {
        "iss": signer.client_id,
        "aud": signer.audience,
        "iat": now,
        "exp": now + 60,
        "jti": f"jti-{time.perf_counter_ns()}",
        "req": body_digest(body),
        "purpose": purpose.claim(),
        **extra,
    }


def _raw_jws(header: dict, claims: dict, key) -> str:
    with eddsa_allowed():
        return str(jws.serialize_compact(header, orjson.dumps(claims), key, algorithms=["EdDSA"]))


async def test_a_valid_token_is_served_and_recorded(
    gateway, signer, body, purpose, recorded
) -> None:
    response = await _send(gateway, body, _token(signer, body, purpose))
    assert response.status_code == 200
    assert "errors" not in response.json()
    assert await recorded.outcomes() == ["served"]


async def test_no_token(gateway, body, recorded) -> None:
    response = await _send(gateway, body, None)
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert await recorded.none_made()


async def test_replayed(gateway, signer, body, purpose, recorded) -> None:
    token = _token(signer, body, purpose)
    assert (await _send(gateway, body, token)).status_code == 200
    again = await _send(gateway, body, token)
    assert again.status_code == 401
    assert again.json()["code"] == "TOKEN_REPLAYED"
    assert await recorded.outcomes() == ["served", "rejected:TOKEN_REPLAYED"]


async def test_expired(gateway, signer, body, purpose, recorded) -> None:
    token = _token(signer, body, purpose, now=int(time.time()) - 400, ttl=120)
    response = await _send(gateway, body, token)
    assert response.status_code == 401
    assert response.json()["code"] == "TOKEN_EXPIRED"
    assert await recorded.outcomes() == ["rejected:TOKEN_EXPIRED"]


async def test_living_longer_than_300_seconds(gateway, signer, body, purpose) -> None:
    claims = _claims(signer, body, purpose)
    claims["exp"] = claims["iat"] + 301
    token = _raw_jws({"alg": "EdDSA", "typ": TOKEN_TYPE, "kid": signer.kid}, claims, signer.key)
    response = await _send(gateway, body, token)
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHENTICATED"


async def test_signed_with_another_key(gateway, signer, body, purpose, recorded) -> None:
    stranger = OKPKey.generate_key("Ed25519")
    response = await _send(gateway, body, _token(signer, body, purpose, key=stranger))
    assert response.status_code == 401
    assert response.json()["code"] == "BAD_SIGNATURE"
    assert await recorded.none_made()


async def test_wrong_audience(gateway, signer, body, purpose) -> None:
    token = _token(signer, body, purpose, audience="https://another-gateway.gov.vn")
    response = await _send(gateway, body, token)
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHENTICATED"
    assert "audience" in response.json()["message"]


async def test_unknown_client(gateway, signer, body, purpose, recorded) -> None:
    token = _token(signer, body, purpose, client_id="VN/GOV/NOBODY/system")
    response = await _send(gateway, body, token)
    assert response.status_code == 401
    assert response.json()["code"] == "BAD_SIGNATURE"
    assert await recorded.none_made()


async def test_another_clients_kid_never_authenticates(
    gateway, signer, another_client, body, purpose, recorded
) -> None:
    # B signs with its own key but claims to be A: B's kid is looked up within A.
    other = await another_client("VN/GOV/OTHER/system", ["commune_police"])
    token = _token(signer, body, purpose, key=other.key, kid=other.kid)
    response = await _send(gateway, body, token)
    assert response.status_code == 401
    assert response.json()["code"] == "BAD_SIGNATURE"
    assert await recorded.none_made()


async def test_alg_none(gateway, signer, body, purpose) -> None:
    header = {"alg": "none", "typ": TOKEN_TYPE, "kid": signer.kid}
    claims = _claims(signer, body, purpose)
    token = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}."
    response = await _send(gateway, body, token)
    assert response.status_code == 401
    assert response.json()["code"] == "BAD_SIGNATURE"


async def test_hs256_signed_with_the_public_key_as_secret(gateway, signer, body, purpose) -> None:
    header = {"alg": "HS256", "typ": TOKEN_TYPE, "kid": signer.kid}
    claims = _claims(signer, body, purpose)
    signing_input = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}"
    public = signer.key.as_pem(private=False)
    for secret in (public, base64.urlsafe_b64decode(signer.key.as_dict()["x"] + "==")):
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        response = await _send(gateway, body, f"{signing_input}.{_b64(mac)}")
        assert response.status_code == 401
        assert response.json()["code"] == "BAD_SIGNATURE"


async def test_missing_typ(gateway, signer, body, purpose) -> None:
    token = _raw_jws(
        {"alg": "EdDSA", "kid": signer.kid}, _claims(signer, body, purpose), signer.key
    )
    response = await _send(gateway, body, token)
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHENTICATED"
    assert "typ" in response.json()["message"]


async def test_a_key_in_the_header_is_never_used(gateway, signer, body, purpose) -> None:
    attacker = OKPKey.generate_key("Ed25519")
    header = {"alg": "EdDSA", "typ": TOKEN_TYPE, "kid": signer.kid, "jwk": attacker.as_dict()}
    token = _raw_jws(header, _claims(signer, body, purpose), attacker)
    response = await _send(gateway, body, token)
    assert response.status_code == 401


async def test_body_not_matching_req(gateway, signer, body, purpose, recorded) -> None:
    token = _token(signer, body, purpose)
    other = body.replace(b"fullName", b"birthDate")
    response = await _send(gateway, other, token)
    assert response.status_code == 401
    assert response.json()["code"] == "REQUEST_MISMATCH"
    assert await recorded.outcomes() == ["rejected:REQUEST_MISMATCH"]


async def test_oversized_token(gateway, signer, body, purpose) -> None:
    claims = _claims(signer, body, purpose, padding="x" * 9000)
    token = _raw_jws({"alg": "EdDSA", "typ": TOKEN_TYPE, "kid": signer.kid}, claims, signer.key)
    response = await _send(gateway, body, token)
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHENTICATED"


async def test_unknown_procedure(gateway, signer, body, dataset, recorded) -> None:
    purpose = Purpose("9.999999", "CASE-1", "officer-1", (dataset.sample.citizens[0],))
    response = await _send(gateway, body, _token(signer, body, purpose))
    assert response.status_code == 400
    assert response.json()["code"] == "UNKNOWN_PROCEDURE"
    assert await recorded.outcomes() == ["rejected:UNKNOWN_PROCEDURE"]


async def test_too_many_subjects(gateway, signer, body, dataset) -> None:
    subjects = tuple(list(dataset.citizens)[:51])
    purpose = Purpose(RESIDENCE, "CASE-1", "officer-1", subjects)
    response = await _send(gateway, body, _token(signer, body, purpose))
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_PURPOSE"


async def test_a_malformed_subject(gateway, signer, body) -> None:
    purpose = Purpose(RESIDENCE, "CASE-1", "officer-1", ("12345",))
    response = await _send(gateway, body, _token(signer, body, purpose))
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_PURPOSE"


async def test_get_requests_sign_their_query_string(gateway, signer, dataset) -> None:
    from urllib.parse import urlencode

    person = dataset.sample.citizens[0]
    query = urlencode({"query": f'{{ citizen(personalId: "{person}") {{ fullName }} }}'})
    purpose = Purpose(RESIDENCE, "CASE-1", "officer-1", (person,))
    token = _token(signer, query.encode(), purpose)
    async with gateway.client(auth=None) as http:
        ok = await http.get(f"/graphql?{query}", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        assert ok.json()["data"]["citizen"]["fullName"]
        moved = _token(signer, b"another query string", purpose)
        refused = await http.get(f"/graphql?{query}", headers={"Authorization": f"Bearer {moved}"})
    assert refused.json()["code"] == "REQUEST_MISMATCH"


def test_a_malformed_catalogue_stops_start_up_naming_file_and_line(migrated, tmp_path) -> None:
    from policies import CATALOGUE_DIR

    folder = tmp_path / "catalogue"
    folder.mkdir()
    for path in CATALOGUE_DIR.glob("*.yaml"):
        (folder / path.name).write_bytes(path.read_bytes())
    broken = folder / "marriage-registration.yaml"
    lines = broken.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("online_level:"))
    lines[at] = "online_level: sometimes"
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--port", "0"],
        env={
            "PATH": "/usr/bin:/bin",
            "GATEWAY_DATABASE_URL": migrated,
            "GATEWAY_KEYS_DIR": str(tmp_path / "keys"),
            "GATEWAY_CATALOGUE_DIR": str(folder),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"marriage-registration.yaml:{at + 1}: online_level" in result.stderr


async def test_both_names_of_ed25519_are_accepted(gateway, signer, body, purpose) -> None:
    claims = _claims(signer, body, purpose)
    header = {"alg": "Ed25519", "typ": TOKEN_TYPE, "kid": signer.kid}
    with eddsa_allowed():
        token = str(
            jws.serialize_compact(header, orjson.dumps(claims), signer.key, algorithms=["Ed25519"])
        )
    assert (await _send(gateway, body, token)).status_code == 200


async def test_an_es256_client(gateway, migrated, tmp_path, body, purpose) -> None:
    client = f"VN/GOV/EC/system-{uuid.uuid4().hex[:8]}"
    from gateway.admission import ClientRegistry, generate_local_key
    from gateway.records import admin_recorder

    record = admin_recorder(
        pseudonym_key=b"tests", policy_version="tests", operator="tests", operator_org=None
    )
    engine = create_engine(migrated)
    try:
        registry = ClientRegistry(engine)
        await registry.add(
            client,
            name="n",
            organisation="o",
            agency_kinds=["commune_police"],
            record=record,
        )
        key, public, kid = generate_local_key(tmp_path / "ec", client, alg="ES256")
        await registry.add_key(client, public, record=record)
    finally:
        await engine.dispose()
    token = sign_request(
        client_id=client,
        key=key,
        kid=kid,
        audience=gateway.signer.audience,
        body=body,
        purpose=purpose,
    )
    response = await _send(gateway, body, token)
    assert response.status_code == 200, response.text
    # The same key under the other algorithm's name is refused.
    header = {"alg": "EdDSA", "typ": TOKEN_TYPE, "kid": kid}
    forged = f"{_b64(orjson.dumps(header))}.{token.split('.')[1]}.{token.split('.')[2]}"
    assert (await _send(gateway, body, forged)).json()["code"] == "BAD_SIGNATURE"


async def test_before_the_signature_every_refusal_looks_the_same(
    gateway, signer, body, purpose, sign_in
) -> None:
    # An unsigned caller cannot learn which clients exist or whether one is suspended.
    token = _token(signer, body, purpose)
    garbage = token.rsplit(".", 1)[0] + "." + _b64(b"x" * 64)
    unknown = _token(signer, body, purpose, client_id="VN/GOV/NOBODY/system")
    forged_unknown = unknown.rsplit(".", 1)[0] + "." + _b64(b"x" * 64)
    answers = [(await _send(gateway, body, t)).json() for t in (garbage, forged_unknown)]
    operator = await sign_in.staff("operator")
    async with gateway.client(auth=None) as http:
        await http.post(f"/admin/clients/{signer.client_id}/suspend", headers=operator)
    answers.append((await _send(gateway, body, garbage)).json())
    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["code"] == "BAD_SIGNATURE"
    suspended = await _send(gateway, body, _token(signer, body, purpose))
    assert suspended.json()["message"] == "The client is suspended."


async def test_a_duplicate_claim_is_refused(gateway, signer, body, dataset) -> None:
    claims = _claims(signer, body, Purpose(RESIDENCE, "CASE-A", "o", (dataset.sample.citizens[0],)))
    payload = (
        orjson.dumps(claims)[:-1]
        + b',"purpose":'
        + orjson.dumps({"procedure": RESIDENCE, "case": "CASE-B", "officer": "o", "subjects": []})
        + b"}"
    )
    header = {"alg": "EdDSA", "typ": TOKEN_TYPE, "kid": signer.kid}
    signing_input = f"{_b64(orjson.dumps(header))}.{_b64(payload)}"
    signature = signer.key.private_key.sign(signing_input.encode())
    response = await _send(gateway, body, f"{signing_input}.{_b64(signature)}")
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHENTICATED"


async def test_replaying_an_old_token_cannot_flood_the_record(
    gateway_factory, signer, body, purpose, recorded
) -> None:
    gateway = gateway_factory(rate_limit_client=3)
    token = _token(signer, body, purpose, now=int(time.time()) - 3600, ttl=60)
    statuses = [(await _send(gateway, body, token)).status_code for _ in range(8)]
    assert statuses == [401] * 8
    # The first of the minute in full; the rest wait for the minute's summary (see
    # test_refusals.py). A minute may close during the loop: then two firsts.
    outcomes = await recorded.outcomes()
    assert outcomes[:1] == ["rejected:TOKEN_EXPIRED"]
    assert set(outcomes) == {"rejected:TOKEN_EXPIRED"}
    assert len(outcomes) <= 3


async def test_a_token_is_single_use_across_a_restart(
    gateway_factory, signer, body, purpose
) -> None:
    token = _token(signer, body, purpose)
    first = gateway_factory.start()
    assert (await _send(first, body, token)).status_code == 200
    first.server.stop()
    second = gateway_factory.start()
    again = await _send(second, body, token)
    assert again.json()["code"] == "TOKEN_REPLAYED"
