"""The envelope: one type, written and read in one place, its version kept."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from gateway.log import canonical_hash, leaf_hash, public_leaf
from gateway.records import ENVELOPE_VERSION, Event, read_envelope
from gateway.records._envelope import (
    Envelope,
    canonical_personal,
    indexed_columns,
    personal_hash,
    seal,
)
from gateway.records._recorder import consent_commitment
from keys import SealError, open_sealed, unwrap_key

TS = datetime.datetime(2026, 12, 1, 8, 30, tzinfo=datetime.UTC)
FIXTURE = Path(__file__).parents[3] / "data" / "log-v1" / "export.jsonl"
HEADER = {
    "v",
    "id",
    "type",
    "ts",
    "requestId",
    "outcome",
    "policyVersion",
    "subjectCommitments",
    "personalHash",
}


def _sealed(**body: object) -> Envelope:
    return seal(
        body,  # type: ignore[arg-type]
        id="e1",
        type="access",
        ts=TS,
        request_id="r1",
        outcome="served",
        policy_version="p1",
        subject_commitments=["c1"],
        personal_hash="h1",
    )


def test_the_header_surrounds_the_body_and_the_body_cannot_overwrite_it() -> None:
    envelope = _sealed(client="VN/GOV/A/b", outcome="no_data", v=1)
    assert envelope["v"] == ENVELOPE_VERSION == 3
    assert envelope["outcome"] == "served"
    assert set(envelope) == HEADER | {"client"}
    assert envelope["ts"] == "2026-12-01T08:30:00+00:00"


def test_every_envelope_written_before_reads_as_the_type_with_its_header() -> None:
    lines = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
    records = [line for line in lines if line.get("kind") == "record"]
    assert {r["type"] for r in records} >= {"access", "consent", "admin", "auditor_search"}
    for record in records:
        envelope = read_envelope(json.dumps(record["envelope"]))
        assert set(envelope) >= HEADER
        assert envelope["v"] == 1
        assert canonical_hash(envelope) == record["envelopeHash"]


def test_an_event_is_stored_as_its_sealed_envelope_and_committed_to_by_its_leaf() -> None:
    event = Event(
        type="access",
        request_id="r-9",
        outcome="served",
        policy_version="p1",
        envelope={"client": "VN/GOV/A/b", "organisation": "A", "hiddenUntil": TS.isoformat()},
        personal={"subjects": ("079203001234",), "officer": "o-1"},
        ts=TS,
    )
    rows = event.rows()
    stored = rows.event["envelope"]
    salt = rows.personal["salt"]
    assert stored["personalHash"] == personal_hash(
        salt, canonical_personal({"subjects": ["079203001234"], "officer": "o-1"})
    )
    assert rows.event["envelope_hash"] == canonical_hash(stored)
    leaf = public_leaf(
        type="access", ts=TS, envelope_hash=canonical_hash(stored), policy_version="p1"
    )
    assert event.leaf_hash == leaf_hash(leaf)
    assert rows.event["organisation"] == "A"
    assert rows.event["hidden_until"] == TS
    assert indexed_columns(stored)["organisation"] == "A"
    assert "079203001234" not in json.dumps(stored)


@pytest.mark.parametrize("value", ["[]", "3", b'"text"', None])
def test_what_is_not_an_envelope_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="JSON object"):
        read_envelope(value)


AN, BINH, CHI = "079203001234", "001199004567", "036185000042"
KEYS = {AN: bytes(range(32)), BINH: bytes(range(32, 64)), CHI: bytes(range(64, 96))}


def _access(**extra: object) -> Event:
    return Event(
        type="access",
        request_id="r-1",
        outcome="served",
        policy_version="p1",
        envelope={
            "client": "VN/GOV/A/b",
            "decisions": [
                {
                    "path": "Citizen.phone",
                    "decision": "ALLOWED_BY_CONSENT",
                    "basis": "c-17",
                    "subjects": [0],
                },
                {
                    "path": "Citizen.fullName",
                    "decision": "ALLOWED_BY_LAW",
                    "basis": "c-17",
                    "subjects": [0, 1],
                },
            ],
            "actions": [{"consent": "c-18", "action": "requested", "fields": ["Citizen.email"]}],
        },
        personal={"subjects": [AN, BINH], "officer": "o-1", "token": "eyJ..."},
        subjects=[AN, BINH],
        **extra,  # type: ignore[arg-type]
    )


def test_a_personal_part_naming_people_is_sealed_and_opens_with_each_of_their_keys() -> None:
    event = _access()
    rows = event.rows(KEYS)
    assert rows.personal["personal"] is None
    sealed = rows.personal["sealed"]
    assert AN.encode() not in sealed
    assert b"o-1" not in sealed
    wrapped = {r["subject"]: r["wrapped_key"] for r in rows.subjects}
    assert set(wrapped) == {AN, BINH}
    opened = {
        open_sealed(unwrap_key(KEYS[s], wrapped[s], event.id), sealed, event.id) for s in wrapped
    }
    [plain] = opened
    assert json.loads(plain) == {"subjects": [AN, BINH], "officer": "o-1", "token": "eyJ..."}
    assert rows.event["envelope"]["personalHash"] == personal_hash(rows.personal["salt"], plain)
    # Another person's key, or the wrapped key of another record, opens nothing.
    with pytest.raises(SealError):
        unwrap_key(KEYS[CHI], wrapped[AN], event.id)
    with pytest.raises(SealError):
        unwrap_key(KEYS[AN], wrapped[AN], "another-record")


def test_an_envelope_names_consents_by_commitments_that_only_the_givers_key_makes() -> None:
    event = _access(consents={"c-17": AN, "c-18": BINH})
    rows = event.rows(KEYS)
    envelope = rows.event["envelope"]
    text = json.dumps(envelope)
    assert "c-17" not in text.replace('"ALLOWED_BY_LAW", "basis": "c-17"', "")
    assert "c-18" not in text
    consent_17 = consent_commitment(KEYS[AN], "c-17")
    consent_18 = consent_commitment(KEYS[BINH], "c-18")
    by_consent, by_law = envelope["decisions"]
    assert by_consent["basis"] == consent_17
    assert by_law["basis"] == "c-17"  # a legal citation is not a consent: kept as it is
    assert envelope["actions"][0]["consent"] == consent_18
    assert consent_commitment(KEYS[CHI], "c-17") != consent_17
    # The personal part maps each commitment back to its consent, for the people it names.
    wrapped = {r["subject"]: r["wrapped_key"] for r in rows.subjects}
    plain = open_sealed(
        unwrap_key(KEYS[AN], wrapped[AN], event.id), rows.personal["sealed"], event.id
    )
    assert json.loads(plain)["consents"] == {consent_17: "c-17", consent_18: "c-18"}
