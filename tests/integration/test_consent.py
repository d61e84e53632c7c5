"""Consent, end to end: requested by a client, answered by the citizen, revoked."""

from __future__ import annotations

import base64
import datetime

import httpx
import rfc8785
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.storage import create_engine
from tests.rate_windows import inside_one_window

RESIDENCE = "1.004222"  # phone and email are read only with consent
REQUEST = """mutation($subject: String!, $until: DateTime!) {
  requestConsent(subject: $subject, procedure: "1.004222", fields: ["Citizen.phone"],
                 validUntil: $until) { id status fields answerBy }
}"""


def _until(days: int = 30) -> str:
    return (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=days)).isoformat()


def _phone_query(person: str) -> str:
    return f'{{ citizen(personalId: "{person}") {{ fullName phone }} }}'


async def _request(gateway, person: str, **purpose) -> dict:
    response = await gateway.post(
        REQUEST, {"subject": person, "until": _until()}, procedure=RESIDENCE, **purpose
    )
    return response.json()


async def _event_outcomes(url: str, client_id: str) -> list[tuple[str, str]]:
    """The type and outcome of each event of a client, oldest first."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text("SELECT type, outcome FROM events WHERE client_id = :c ORDER BY ts"),
                {"c": client_id},
            )
            return [(r.type, r.outcome) for r in rows]
    finally:
        await engine.dispose()


def _verify_grant(jwks: dict, grant: dict) -> None:
    """Check the detached JWS with the published consent key, without the gateway's code."""
    header_part, _, signature = grant["jws"].split(".")
    header = httpx.Response(200, content=base64.urlsafe_b64decode(header_part + "==")).json()
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    assert key["purpose"] == "consent"
    payload = base64.urlsafe_b64encode(rfc8785.dumps(grant["payload"])).rstrip(b"=")
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(key["x"] + "=="))
    public.verify(base64.urlsafe_b64decode(signature + "=="), header_part.encode() + b"." + payload)


async def test_consent_from_request_to_revocation(gateway, dataset, sign_in, migrated) -> None:
    person = dataset.sample.citizens[0]
    phone = dataset.citizens[person]["so_dien_thoai"]
    before = (await gateway.post(_phone_query(person), procedure=RESIDENCE)).json()
    assert before["data"]["citizen"]["phone"] is None
    assert before["errors"][0]["extensions"]["code"] == "CONSENT_REQUIRED"

    requested = await _request(gateway, person)
    consent = requested["data"]["requestConsent"]
    assert consent["status"] == "REQUESTED"
    assert consent["fields"] == ["Citizen.phone"]

    citizen = await sign_in.citizen(person, level=2)
    weak = await sign_in.citizen(person, level=1)
    async with gateway.client(auth=None) as http:
        pending = (await http.get("/me/consents?status=REQUESTED", headers=citizen)).json()
        assert [c["id"] for c in pending["consents"]] == [consent["id"]]
        assert pending["consents"][0]["procedureName"]["en"] == "Permanent residence registration"
        refused = await http.post(f"/me/consents/{consent['id']}/approve", headers=weak)
        assert refused.status_code == 403
        approved = await http.post(f"/me/consents/{consent['id']}/approve", headers=citizen)
        assert approved.json()["status"] == "ACTIVE"
        detail = (await http.get(f"/me/consents/{consent['id']}", headers=citizen)).json()
        jwks = (await http.get("/.well-known/jwks.json")).json()
        status = (await http.get(f"/consents/{consent['id']}/status")).json()
    _verify_grant(jwks, detail["grant"])
    assert detail["grant"]["payload"]["fields"] == ["Citizen.phone"]
    assert status == {
        "id": consent["id"],
        "status": "ACTIVE",
        "active": True,
        "validUntil": status["validUntil"],
    }

    after = (await gateway.post(_phone_query(person), procedure=RESIDENCE)).json()
    assert "errors" not in after, after
    assert after["data"]["citizen"]["phone"] == phone
    provenance = after["extensions"]["provenance"]["citizen.phone"]
    assert provenance == {
        "source": "population",
        "version": 1,
        "retrievedAt": provenance["retrievedAt"],
        "basis": "consent",
        "consentId": consent["id"],
    }

    async with gateway.client(auth=None) as http:
        revoked = await http.post(f"/me/consents/{consent['id']}/revoke", headers=citizen)
        assert revoked.json()["status"] == "REVOKED"
        status = (await http.get(f"/consents/{consent['id']}/status")).json()
    assert status["active"] is False
    again = (await gateway.post(_phone_query(person), procedure=RESIDENCE)).json()
    assert again["errors"][0]["extensions"]["code"] == "CONSENT_REQUIRED"

    events = await _event_outcomes(migrated, gateway.signer.client_id)
    outcomes = [o for o in events if o[0] == "consent"]
    assert outcomes == [("consent", "requested"), ("consent", "approved"), ("consent", "revoked")]
    report = await gateway.audit()
    assert report.ok, report.problem


async def test_a_consent_is_read_only_under_the_case_it_was_given_for(
    gateway, dataset, sign_in, migrated
) -> None:
    """The same client and procedure under another case needs the citizen's consent again."""
    person = dataset.sample.citizens[0]
    phone = dataset.citizens[person]["so_dien_thoai"]
    given, other = "HS-2026-0042", "HS-2026-0043"
    consent = (await _request(gateway, person, case=given))["data"]["requestConsent"]
    citizen = await sign_in.citizen(person, level=2)
    async with gateway.client(auth=None) as http:
        approved = await http.post(f"/me/consents/{consent['id']}/approve", headers=citizen)
        assert approved.json()["status"] == "ACTIVE"
        detail = (await http.get(f"/me/consents/{consent['id']}", headers=citizen)).json()
        jwks = (await http.get("/.well-known/jwks.json")).json()
    _verify_grant(jwks, detail["grant"])
    assert detail["grant"]["payload"]["case"] == given

    elsewhere = (await gateway.post(_phone_query(person), procedure=RESIDENCE, case=other)).json()
    assert elsewhere["data"]["citizen"]["phone"] is None
    assert elsewhere["errors"][0]["extensions"]["code"] == "CONSENT_REQUIRED"

    here = (await gateway.post(_phone_query(person), procedure=RESIDENCE, case=given)).json()
    assert "errors" not in here, here
    assert here["data"]["citizen"]["phone"] == phone
    assert here["extensions"]["provenance"]["citizen.phone"]["consentId"] == consent["id"]

    # The case stays out of every public envelope: pseudonyms only.
    engine = create_engine(migrated)
    try:
        async with engine.connect() as conn:
            envelopes = (
                await conn.scalars(
                    sa.text("SELECT envelope FROM events WHERE client_id = :c"),
                    {"c": gateway.signer.client_id},
                )
            ).all()
    finally:
        await engine.dispose()
    assert envelopes
    assert not [e for e in envelopes if given in str(e) or other in str(e)]


async def test_a_citizen_sees_and_changes_only_their_own_consents(
    gateway, dataset, sign_in
) -> None:
    alice, bob = dataset.sample.citizens[0], dataset.sample.citizens[1]
    consent = (await _request(gateway, alice))["data"]["requestConsent"]
    as_bob = await sign_in.citizen(bob)
    async with gateway.client(auth=None) as http:
        assert (await http.get("/me/consents", headers=as_bob)).json() == {"consents": []}
        for action in ("approve", "deny"):
            response = await http.post(f"/me/consents/{consent['id']}/{action}", headers=as_bob)
            assert response.status_code == 404
        assert (await http.get(f"/me/consents/{consent['id']}", headers=as_bob)).status_code == 404
        as_alice = await sign_in.citizen(alice)
        mine = (await http.get("/me/consents", headers=as_alice)).json()["consents"]
    assert [c["id"] for c in mine] == [consent["id"]]
    assert mine[0]["status"] == "REQUESTED"


async def test_denied_then_answered_again_is_a_conflict(gateway, dataset, sign_in) -> None:
    person = dataset.sample.citizens[0]
    consent = (await _request(gateway, person))["data"]["requestConsent"]
    citizen = await sign_in.citizen(person)
    async with gateway.client(auth=None) as http:
        denied = await http.post(f"/me/consents/{consent['id']}/deny", headers=citizen)
        assert denied.json()["status"] == "DENIED"
        late = await http.post(f"/me/consents/{consent['id']}/approve", headers=citizen)
    assert late.status_code == 409
    assert late.json()["code"] == "CONFLICT"


async def test_a_level_1_sign_in_neither_sees_nor_answers_consents(
    gateway, dataset, sign_in
) -> None:
    """Consents and their signed grants name procedures and agencies: level 2, as accesses."""
    person = dataset.sample.citizens[0]
    consent = (await _request(gateway, person))["data"]["requestConsent"]
    weak = await sign_in.citizen(person, level=1)
    async with gateway.client(auth=None) as http:
        refused = [
            await http.get("/me/consents", headers=weak),
            await http.get("/me/consents?status=REQUESTED", headers=weak),
            await http.get(f"/me/consents/{consent['id']}", headers=weak),
            await http.post(f"/me/consents/{consent['id']}/approve", headers=weak),
            await http.post(f"/me/consents/{consent['id']}/deny", headers=weak),
            await http.post(f"/me/consents/{consent['id']}/revoke", headers=weak),
        ]
        strong = await sign_in.citizen(person, level=2)
        still = (await http.get(f"/me/consents/{consent['id']}", headers=strong)).json()
    assert [r.status_code for r in refused] == [403] * 6
    assert {r.json()["code"] for r in refused} == {"FORBIDDEN"}
    assert still["status"] == "REQUESTED"


async def test_an_unanswered_request_expires(gateway, dataset, sign_in, migrated) -> None:
    person = dataset.sample.citizens[0]
    consent = (await _request(gateway, person))["data"]["requestConsent"]
    engine = create_engine(migrated)
    try:
        async with engine.begin() as conn:
            past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
            await conn.execute(
                sa.text("UPDATE consents SET answer_by = :t WHERE id = :i"),
                {"t": past, "i": consent["id"]},
            )
    finally:
        await engine.dispose()
    citizen = await sign_in.citizen(person)
    async with gateway.client(auth=None) as http:
        listed = (await http.get("/me/consents", headers=citizen)).json()["consents"]
        assert listed[0]["status"] == "EXPIRED"
        late = await http.post(f"/me/consents/{consent['id']}/approve", headers=citizen)
    assert late.status_code == 409


async def test_what_a_client_may_ask_consent_for(gateway, dataset) -> None:
    person, other = dataset.sample.citizens[:2]

    async def ask(subject: str, fields: list[str], procedure: str = RESIDENCE, **purpose) -> str:
        response = await gateway.post(
            """mutation($s: String!, $p: String!, $f: [String!]!, $u: DateTime!) {
                 requestConsent(subject: $s, procedure: $p, fields: $f, validUntil: $u) { id } }""",
            {"s": subject, "p": procedure, "f": fields, "u": _until()},
            procedure=RESIDENCE,
            **purpose,
        )
        return response.json()["errors"][0]["extensions"]["code"]

    assert await ask(other, ["Citizen.phone"], subjects=[person]) == "SUBJECT_NOT_IN_CASE"
    assert await ask(person, ["Citizen.fullName"]) == "INVALID_ARGUMENT"  # read by law
    assert await ask(person, ["Citizen.religion"]) == "PURPOSE_NOT_ALLOWED"
    assert await ask(person, ["Citizen.phone"], procedure="1.000894") == "PURPOSE_NOT_ALLOWED"
    assert await ask(person, ["Citizen.phone"], procedure="9.999999") == "UNKNOWN_PROCEDURE"


async def test_a_consent_is_visible_only_to_the_client_that_asked(
    gateway, dataset, another_client
) -> None:
    person = dataset.sample.citizens[0]
    consent = (await _request(gateway, person))["data"]["requestConsent"]
    query = f'{{ consent(id: "{consent["id"]}") {{ status procedure }} }}'
    mine = (await gateway.post(query, procedure=RESIDENCE)).json()
    assert mine["data"]["consent"] == {"status": "REQUESTED", "procedure": RESIDENCE}
    police = await another_client("VN/GOV/CA-HN/cu-tru", ["commune_police"])
    theirs = (await gateway.post(query, signer=police, procedure=RESIDENCE)).json()
    assert theirs["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_consent_requests_are_rate_limited(gateway_factory, dataset) -> None:
    gateway = gateway_factory(consent_requests_per_minute=2)
    person = dataset.sample.citizens[0]
    await inside_one_window()  # the three are counted in one minute's window
    results = [await _request(gateway, person) for _ in range(3)]
    assert [r["data"]["requestConsent"] is not None for r in results] == [True, True, False]
    assert results[2]["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
