"""The client library against a live gateway, on each backend: signed queries, field
errors with their codes, provenance, receipts checked against the published keys and
proofs against the log's checkpoint key, consents, prefill, and its rules for refusals."""

from __future__ import annotations

import asyncio
import datetime
import uuid

import pytest
from lienthong_client import AsyncGatewayClient, GatewayClient, Purpose, Refused

from tests.integration.conftest import AUDIENCE
from tests.rate_windows import inside_one_window

RESIDENCE = "1.004222"  # phone is read only with consent


def _client(gateway, signer=None) -> AsyncGatewayClient:
    signer = signer or gateway.signer
    return AsyncGatewayClient(
        gateway.url, signer.client_id, signer.key, signer.kid, audience=AUDIENCE, max_wait=0.05
    )


async def test_a_query_with_its_errors_provenance_and_receipt(gateway, dataset) -> None:
    person = dataset.sample.citizens[0]
    purpose = Purpose(RESIDENCE, "HS-CLIENT-1", "officer-7", (person,))
    query = "query($id: String!) { citizen(personalId: $id) { fullName phone } }"
    async with _client(gateway) as client:
        answer = await client.query(query, {"id": person}, purpose=purpose)
        assert answer.data is not None
        assert answer.data["citizen"]["fullName"] == dataset.citizens[person]["ho_ten"]
        phone = answer.error_at("citizen", "phone")
        assert phone is not None
        assert phone.code == "CONSENT_REQUIRED"
        origin = answer.provenance["citizen.fullName"]
        assert (origin.source, origin.basis) == ("population", "law")
        assert origin.legal_basis
        assert answer.receipt is not None
        assert await client.verify_receipt(answer)
        # A receipt altered after signing does not verify.
        forged = dict(answer.receipt.document, timestamp="2020-01-01T00:00:00.000000Z")
        altered = type(answer)(**{**vars(answer), "receipt": type(answer.receipt).parse(forged)})
        assert not await client.verify_receipt(altered)


async def test_a_receipt_becomes_a_proof_the_log_key_verifies(gateway, dataset) -> None:
    from gateway.log import checkpoint_verifiers, read_leaf_hash, verify_tlog_proof
    from keys import KeyRing

    person = dataset.sample.citizens[1]
    purpose = Purpose(RESIDENCE, "HS-CLIENT-2", "officer-7", (person,))
    async with _client(gateway) as client:
        answer = await client.query(
            "query($id: String!) { citizen(personalId: $id) { fullName } }",
            {"id": person},
            purpose=purpose,
            compact_provenance=True,
        )
        assert answer.provenance["citizen.fullName"].source == "population"
        await gateway.caught_up()
        proof = await client.inclusion_proof(answer)
        assert proof is not None
        # Checked by the client's own offline core, with the log's published key.
        proven = await client.check_inclusion(answer, proof)
        assert proven.leaf is not None
        assert proven.leaf["type"] == "access"
        # A proof is checked against the receipt's leaf: another answer's is refused.
        other = await client.query(
            "query($id: String!) { citizen(personalId: $id) { fullName } }",
            {"id": person},
            purpose=purpose,
        )
        with pytest.raises(ValueError, match="another leaf"):
            await client.check_inclusion(other, proof)
    assert answer.receipt is not None
    settings = gateway.settings
    verifiers = checkpoint_verifiers(KeyRing.load(settings.keys_dir), settings.checkpoint_origin)
    leaf = read_leaf_hash(answer.receipt.leaf_hash)
    verify_tlog_proof(proof.decode(), verifiers, leaf_hash=leaf)


async def test_consent_requested_and_read_back(gateway, dataset) -> None:
    person = dataset.sample.citizens[2]
    purpose = Purpose(RESIDENCE, f"HS-{uuid.uuid4().hex[:8]}", "officer-7", (person,))
    until = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)).isoformat()
    async with _client(gateway) as client:
        asked = await client.request_consent(person, ["Citizen.phone"], until, purpose=purpose)
        assert asked is not None
        assert asked["status"] == "REQUESTED"
        status = await client.consent_status(asked["id"], purpose=purpose)
    assert status is not None
    assert (status["id"], status["fields"]) == (asked["id"], ["Citizen.phone"])


async def test_the_prefilled_form_through_the_blocking_client(gateway, dataset) -> None:
    person = dataset.sample.citizens[3]
    signer = gateway.signer
    purpose = Purpose(RESIDENCE, "HS-CLIENT-4", "officer-7", (person,))

    def prefill() -> object:
        with GatewayClient(
            gateway.url, signer.client_id, signer.key, signer.kid, audience=AUDIENCE
        ) as client:
            answer = client.prefill(RESIDENCE, person, purpose=purpose)
            assert client.verify_receipt(answer)
            return answer

    answer = await asyncio.to_thread(prefill)
    form = answer.data["prefill"]  # type: ignore[attr-defined]
    fields = {f["name"]: f for f in form["fields"]}
    assert fields["full_name"]["value"] == dataset.citizens[person]["ho_ten"]


async def test_refusals_are_raised_with_their_codes_and_not_retried(gateway, dataset) -> None:
    person = dataset.sample.citizens[0]
    purpose = Purpose(RESIDENCE, "HS-CLIENT-5", "officer-7", (person,))
    query = "query($id: String!) { citizen(personalId: $id) { fullName } }"
    signer = gateway.signer
    wrong_kid = AsyncGatewayClient(
        gateway.url, signer.client_id, signer.key, "no-such-key", audience=AUDIENCE
    )
    async with wrong_kid:
        with pytest.raises(Refused) as caught:
            await wrong_kid.query(query, {"id": person}, purpose=purpose)
    assert (caught.value.code, caught.value.status) == ("BAD_SIGNATURE", 401)
    async with _client(gateway) as client:
        with pytest.raises(Refused) as unknown:
            await client.query(
                query, {"id": person}, purpose=Purpose("9.999999", "HS-X", "o", (person,))
            )
    assert unknown.value.code == "UNKNOWN_PROCEDURE"


async def test_a_rate_limit_is_retried_with_new_tokens_then_raised(
    gateway_factory, dataset
) -> None:
    gateway = gateway_factory(rate_limit_officer=1)
    await inside_one_window()  # both queries are counted in one minute's window
    person = dataset.sample.citizens[0]
    officer = f"busy-{uuid.uuid4().hex}"
    purpose = Purpose(RESIDENCE, "HS-CLIENT-6", officer, (person,))
    query = "query($id: String!) { citizen(personalId: $id) { fullName } }"
    async with _client(gateway) as client:
        assert (await client.query(query, {"id": person}, purpose=purpose)).data
        with pytest.raises(Refused) as caught:
            await client.query(query, {"id": person}, purpose=purpose)
    assert caught.value.code == "RATE_LIMITED"
    assert (caught.value.retry_after or 0) > 0
