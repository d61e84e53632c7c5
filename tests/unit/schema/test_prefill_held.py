"""The prefill of what an applicant holds: one value per held record, errors kept."""

from __future__ import annotations

import datetime

from gateway.errors import DocumentSignatureInvalid, SourceDataInvalid
from policies import Allowed
from schema._context import SubjectDecision
from schema._prefill import _field_outcome, _Held
from schema._service import Fetched

WHEN = datetime.datetime(2026, 12, 6, tzinfo=datetime.UTC)
LATER = WHEN + datetime.timedelta(seconds=1)
LAW = Allowed("law", "Luật Cư trú 2020, Điều 20")


def _held(values: dict[str, object]) -> dict[str, Fetched | _Held | Exception]:
    decision = SubjectDecision(allowed=dict.fromkeys(values, LAW), denied={})
    origin = dict.fromkeys(values, ("land", WHEN))
    return {"LandParcel": Fetched(dict(values), origin, decision)}


def test_each_held_record_gives_its_value() -> None:
    records = _held({"address": [{"wardName": "Phường Ba Đình"}, {"wardName": "Xã Tân Hòa"}]})
    outcome = _field_outcome(records, "LandParcel.address.wardName")
    assert (outcome.value, outcome.error) == (["Phường Ba Đình", "Xã Tân Hòa"], None)


def test_one_held_record_that_cannot_be_read_makes_the_field_an_error() -> None:
    # The paper is not avoided on the strength of the records that could be read.
    bad = SourceDataInvalid("The source gave a value this field does not know.", source="land")
    records = _held({"certificateSerial": ["CS 000001", bad]})
    outcome = _field_outcome(records, "LandParcel.certificateSerial")
    assert (outcome.value, outcome.error) == (None, "SOURCE_DATA_INVALID")


def _documents(
    kinds: list[object], numbers: list[object]
) -> dict[str, Fetched | _Held | Exception]:
    """Held documents: the first from the business registry, the rest from civil status."""
    values = {"kind": kinds, "documentId": numbers}
    decision = SubjectDecision(allowed=dict.fromkeys(values, LAW), denied={})
    origins = [("business", WHEN)] + [("civil", LATER)] * (len(kinds) - 1)
    fetched = Fetched(values, dict.fromkeys(values, ("business", WHEN)), decision)
    return {"Document": _Held(fetched, origins)}


def test_a_document_path_of_a_kind_reads_the_documents_of_that_kind_and_their_source() -> None:
    records = _documents(
        [
            "HOUSEHOLD_BUSINESS_REGISTRATION_CERTIFICATE",
            "BIRTH_CERTIFICATE",
            "MARRIAGE_CERTIFICATE",
        ],
        ["HKD-1", "KS-1", "KH-1"],
    )
    outcome = _field_outcome(records, "Document.documentId", "MARRIAGE_CERTIFICATE")
    assert (outcome.value, outcome.error, outcome.origin) == (["KH-1"], None, ("civil", LATER))
    unfiltered = _field_outcome(records, "Document.documentId")
    assert unfiltered.value == ["HKD-1", "KS-1", "KH-1"]


def test_no_document_of_the_kind_is_not_found() -> None:
    records = _documents(["BIRTH_CERTIFICATE"], ["KS-1"])
    outcome = _field_outcome(records, "Document.documentId", "MARRIAGE_CERTIFICATE")
    assert (outcome.value, outcome.error) == (None, "NOT_FOUND")


def test_a_withheld_document_may_be_the_one_and_says_why() -> None:
    withheld = DocumentSignatureInvalid(source="civil", field="kind", reason="content")
    records = _documents(["BIRTH_CERTIFICATE", withheld], ["KS-1", withheld])
    outcome = _field_outcome(records, "Document.documentId", "MARRIAGE_CERTIFICATE")
    assert (outcome.value, outcome.error) == (None, "DOCUMENT_SIGNATURE_INVALID")
