"""The envelope: one type, written and read in one place, its version kept."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from gateway.log import canonical_hash, leaf_hash, public_leaf
from gateway.records import ENVELOPE_VERSION, Event, read_envelope
from gateway.records._envelope import Envelope, indexed_columns, personal_hash, seal

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
    assert envelope["v"] == ENVELOPE_VERSION == 2
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
        salt, {"subjects": ["079203001234"], "officer": "o-1"}
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
