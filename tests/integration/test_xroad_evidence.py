"""The X-Road security server's request hashes kept in the access record, as evidence.

The insurance agency answers X-Road style (`sandbox/insurance.py`): each answer carries
`X-Road-Request-Hash`. A wrapper in front of it notes, per `X-Road-Id`, the hashes it
sent back, so the test compares the record with what the source really answered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import pytest
import sqlalchemy as sa

from gateway.records import personal_parts
from gateway.storage import create_engine
from sandbox import insurance
from sandbox.config import SandboxSettings

HASHES = "xroadRequestHashes"
INSURANCE = """query($id: String!) {
  insurance(personalId: $id) { socialInsuranceNumber }
  citizen(personalId: $id) { fullName }
}"""
CITIZEN = "query($id: String!) { citizen(personalId: $id) { fullName } }"


class HashesSent:
    """An ASGI wrapper noting the `X-Road-Request-Hash` of every answer, by `X-Road-Id`."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sent: dict[str, list[str]] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent_id = dict(scope["headers"]).get(b"x-road-id", b"").decode()

        async def noted(message: Any) -> None:
            if message["type"] == "http.response.start":
                for name, value in message.get("headers", []):
                    if name.lower() == b"x-road-request-hash":
                        self.sent.setdefault(unquote(sent_id), []).append(value.decode())
            await send(message)

        await self.app(scope, receive, noted)


@pytest.fixture(scope="module")
def agency(population_data: Any, start_server: Callable[[Any], Any]) -> tuple[str, HashesSent]:
    """An insurance agency of the session's population, with its answers' hashes noted."""
    citizens = len(population_data.citizens)
    noted = HashesSent(insurance.create_app(SandboxSettings(citizens=citizens), population_data))
    return start_server(noted).url, noted


async def _records(gateway: Any) -> list[Any]:
    """The test client's access records, oldest first, with their personal parts."""
    engine = create_engine(gateway.settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text(
                        "SELECT id, request_id, envelope FROM events "
                        "WHERE client_id = :c AND type = 'access' ORDER BY ts"
                    ),
                    {"c": gateway.signer.client_id},
                )
            ).all()
            parts = await personal_parts(conn, [row.id for row in rows])
    finally:
        await engine.dispose()
    return [(row, parts[row.id].value()) for row in rows]


async def test_the_record_keeps_the_hash_the_security_server_answered(
    gateway_factory, dataset, agency, sign_in
) -> None:
    url, noted = agency
    gateway = gateway_factory(connector_urls={"insurance": url})
    person = dataset.sample.citizens[0]
    body = await gateway.query(INSURANCE, id=person)
    assert "errors" not in body, body
    assert body["data"]["insurance"]["socialInsuranceNumber"]
    body = await gateway.query(CITIZEN, id=person)
    assert "errors" not in body, body

    (read, personal), (plain, plain_personal) = await _records(gateway)
    # One call to the insurance agency, whose X-Road-Id is the record's request id.
    [answered] = noted.sent[read.request_id]
    assert personal["evidence"] == {"insurance": {HASHES: [answered]}}
    # The population registry (a plain REST source) gives none: no member at all.
    assert "evidence" not in plain_personal
    # Sealed evidence: nothing of it in the envelope.
    assert answered not in str(read.envelope)

    auditor = await sign_in.staff("auditor", org="VN/GOV/TTCP")
    as_person = await sign_in.citizen(person)
    async with gateway.client(auth=None) as http:
        shown = await http.get(f"/audit/events/{read.id}/evidence", headers=auditor)
        assert shown.status_code == 200, shown.text
        assert shown.json() == {
            "id": read.id,
            "requestId": read.request_id,
            "evidence": {"insurance": {HASHES: [answered]}},
        }
        none = await http.get(f"/audit/events/{plain.id}/evidence", headers=auditor)
        assert none.json()["evidence"] == {}
        missing = await http.get(f"/audit/events/{'0' * 32}/evidence", headers=auditor)
        assert missing.status_code == 404
        malformed = await http.get("/audit/events/not-an-id/evidence", headers=auditor)
        assert malformed.status_code == 400
        assert (await http.get(f"/audit/events/{read.id}/evidence")).status_code == 401
        denied = await http.get(f"/audit/events/{read.id}/evidence", headers=as_person)
        assert denied.status_code == 403

        accesses = (await http.get("/me/accesses", headers=as_person)).json()["accesses"]
    mine = {a["id"]: a for a in accesses}
    # The citizen is told which source confirmed the read, not the hashes.
    assert mine[read.id]["sourceEvidence"] == ["insurance"]
    assert "sourceEvidence" not in mine[plain.id]
    assert answered not in str(accesses)
    # Each look at evidence is recorded first, and the person it concerns sees it.
    looks = [a for a in accesses if a["kind"] == "audit"]
    assert len(looks) == 2
    assert {a["organisation"] for a in looks} == {"Thanh tra Chính phủ"}

    report = await gateway.audit()
    assert report.ok, report.problem
