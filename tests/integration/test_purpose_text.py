"""Officers and cases in any script reach the sources; control characters never do.

Officers are named in Vietnamese and case numbers carry Vietnamese letters: such a
purpose reads data through a real source, its officer and case sent percent-encoded
in the X-Road headers. A purpose whose officer or case holds a NUL, CR LF, a bidi
override or a lone surrogate is refused with `INVALID_PURPOSE` and recorded, like any
other refusal of a signed token.
"""

from __future__ import annotations

import json
import time

import orjson
import pytest
import sqlalchemy as sa
from joserfc import jws

from gateway.admission import TOKEN_TYPE, body_digest
from gateway.storage import create_engine
from keys import eddsa_allowed

RESIDENCE = "1.004222"
GR = "application/graphql-response+json"


async def _outcomes(database_url: str, client_id: str) -> list[str]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text(
                    "SELECT outcome FROM events WHERE client_id = :c AND type = 'access' "
                    "ORDER BY ts"
                ),
                {"c": client_id},
            )
            return [row[0] for row in rows]
    finally:
        await engine.dispose()


def _token(signer, body: bytes, purpose: dict) -> str:
    """A signed token whose claims are written by `json` (ASCII escapes: lone surrogates too)."""
    now = int(time.time())
    claims = {
        "iss": signer.client_id,
        "aud": signer.audience,
        "iat": now,
        "exp": now + 60,
        "jti": f"jti-{time.perf_counter_ns()}",
        "req": body_digest(body),
        "purpose": purpose,
    }
    header = {"alg": "EdDSA", "typ": TOKEN_TYPE, "kid": signer.kid}
    payload = json.dumps(claims).encode("ascii")
    with eddsa_allowed():
        return str(jws.serialize_compact(header, payload, signer.key, algorithms=["EdDSA"]))


async def test_a_vietnamese_officer_and_case_read_through_a_real_source(gateway, dataset) -> None:
    person = dataset.sample.citizens[0]
    response = await gateway.post(
        f'{{ citizen(personalId: "{person}") {{ fullName }} }}',
        procedure=RESIDENCE,
        officer="Nguyễn Văn An",
        case="HS-2026/Đắk Lắk-000123 (hồ sơ thường trú)",
    )
    body = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body
    assert body["data"]["citizen"]["fullName"] == dataset.citizens[person]["ho_ten"]
    assert body["extensions"]["provenance"]["citizen.fullName"]["source"] == "population"


@pytest.mark.parametrize("part", ["officer", "case"])
@pytest.mark.parametrize(
    "value",
    ["can-bo\x00-7", "can-bo-7\r\nX-Road-Client: VN/GOV/X/Y", "can-bo-\ud800", "\u202ecan-bo-7"],
    ids=["nul", "crlf", "lone-surrogate", "bidi-override"],
)
async def test_control_characters_are_refused_and_recorded(
    gateway, signer, dataset, migrated, part: str, value: str
) -> None:
    person = dataset.sample.citizens[0]
    body = orjson.dumps({"query": f'{{ citizen(personalId: "{person}") {{ fullName }} }}'})
    purpose = {
        "procedure": RESIDENCE,
        "case": "HS-2026-000123",
        "officer": "Nguyễn Văn An",
        "subjects": [person],
        part: value,
    }
    async with gateway.client(auth=None) as http:
        response = await http.post(
            "/graphql",
            content=body,
            headers={
                "Content-Type": "application/json",
                "Accept": GR,
                "Authorization": f"Bearer {_token(signer, body, purpose)}",
            },
        )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "INVALID_PURPOSE"
    assert f"purpose.{part}" in response.json()["message"]
    assert await _outcomes(migrated, signer.client_id) == ["rejected:INVALID_PURPOSE"]
