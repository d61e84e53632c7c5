"""The prefill of what an applicant holds: one value per held record, errors kept."""

from __future__ import annotations

import datetime

from gateway.errors import SourceDataInvalid
from policies import Allowed
from schema._context import SubjectDecision
from schema._prefill import _field_outcome
from schema._service import Fetched

WHEN = datetime.datetime(2026, 12, 6, tzinfo=datetime.UTC)
LAW = Allowed("law", "Luật Cư trú 2020, Điều 20")


def _held(values: dict[str, object]) -> dict[str, Fetched | Exception]:
    decision = SubjectDecision(allowed=dict.fromkeys(values, LAW), denied={})
    origin = dict.fromkeys(values, ("land", WHEN))
    return {"LandParcel": Fetched(dict(values), origin, decision)}


def test_each_held_record_gives_its_value() -> None:
    records = _held({"address": [{"wardName": "Phường Ba Đình"}, {"wardName": "Xã Tân Hòa"}]})
    value, error, _ = _field_outcome(records, "LandParcel.address.wardName")
    assert (value, error) == (["Phường Ba Đình", "Xã Tân Hòa"], None)


def test_one_held_record_that_cannot_be_read_makes_the_field_an_error() -> None:
    # The paper is not avoided on the strength of the records that could be read.
    bad = SourceDataInvalid("The source gave a value this field does not know.", source="land")
    records = _held({"certificateSerial": ["CS 000001", bad]})
    value, error, _ = _field_outcome(records, "LandParcel.certificateSerial")
    assert (value, error) == (None, "SOURCE_DATA_INVALID")
