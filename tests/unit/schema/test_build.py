"""Building canonical objects from canonical records: each value's type is checked."""

import datetime
from decimal import Decimal
from typing import Any

import pytest

from gateway.errors import NoSource, SourceDataInvalid, SourceUnavailable
from schema import (
    Address,
    Business,
    BusinessStatus,
    Citizen,
    Gender,
    InsuranceRecord,
    LandParcel,
    RelatedPerson,
    build,
)

PID = "001099012345"


def _citizen(**record: Any) -> Citizen:
    citizen = build(Citizen, record, source="population", personal_id=PID)
    assert isinstance(citizen, Citizen)
    return citizen


def _invalid(value: Any) -> SourceDataInvalid:
    assert isinstance(value, SourceDataInvalid), value
    return value


def _field_values(obj: object) -> dict[str, Any]:
    """Field values of a strawberry object (slots or dict)."""
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}  # type: ignore[attr-defined]


def test_given_identifier_is_set_as_is() -> None:
    assert _citizen().personal_id == PID


def test_absent_fields_are_none() -> None:
    citizen = _citizen(fullName="Nguyễn Văn An")
    assert citizen.full_name == "Nguyễn Văn An"
    assert citizen.birth_date is None
    assert citizen.permanent_residence is None


def test_text_is_kept() -> None:
    assert _citizen(fullName="Trần Thị Bình").full_name == "Trần Thị Bình"


def test_number_for_text_becomes_text() -> None:
    assert _citizen(legacyIdNumber=123456789).legacy_id_number == "123456789"


def test_iso_date_text_becomes_a_date() -> None:
    assert _citizen(birthDate="1999-01-31").birth_date == datetime.date(1999, 1, 31)


def test_date_value_is_kept() -> None:
    assert _citizen(birthDate=datetime.date(1999, 1, 31)).birth_date == datetime.date(1999, 1, 31)


def test_enum_value_becomes_its_member() -> None:
    assert _citizen(gender="FEMALE").gender is Gender.FEMALE


def test_list_of_text() -> None:
    assert _citizen(nationality=["VN", "FR"]).nationality == ["VN", "FR"]


def test_object_is_built_recursively() -> None:
    citizen = _citizen(
        permanentResidence={
            "provinceCode": 79,
            "wardName": "Phường Thủ Dầu Một",
            "validFrom": "2025-07-01",
        }
    )
    address = citizen.permanent_residence
    assert isinstance(address, Address)
    assert address.province_code == 79
    assert address.ward_name == "Phường Thủ Dầu Một"
    assert address.valid_from == datetime.date(2025, 7, 1)
    assert address.detail is None


def test_list_of_objects() -> None:
    citizen = _citizen(children=[{"fullName": "An"}, {"fullName": "Bình", "nationality": ["VN"]}])
    assert citizen.children is not None
    assert all(isinstance(c, RelatedPerson) for c in citizen.children)
    assert [c.full_name for c in citizen.children] == ["An", "Bình"]


def test_decimal_from_text_and_int() -> None:
    text = build(Business, {"charterCapital": "1500000000.50"}, source="b", enterprise_code="x")
    whole = build(Business, {"charterCapital": 2_000_000_000}, source="b", enterprise_code="x")
    assert text.charter_capital == Decimal("1500000000.50")
    assert whole.charter_capital == Decimal(2_000_000_000)


def test_float_field_accepts_an_int() -> None:
    parcel = build(LandParcel, {"parcelId": "p1", "areaM2": 120}, source="land")
    assert parcel.area_m2 == 120.0
    assert isinstance(parcel.area_m2, float)


def test_business_status_enum() -> None:
    business = build(Business, {"status": "ACTIVE"}, source="b", enterprise_code="x")
    assert business.status is BusinessStatus.ACTIVE


@pytest.mark.parametrize(
    ("record", "attribute"),
    [
        ({"fullName": {"ho": "Nguyễn"}}, "full_name"),
        ({"fullName": True}, "full_name"),
        ({"birthDate": "31/01/1999"}, "birth_date"),
        ({"birthDate": 19990131}, "birth_date"),
        ({"gender": "Nam"}, "gender"),
        ({"gender": 1}, "gender"),
        ({"nationality": "VN"}, "nationality"),
        ({"nationality": ["VN", None]}, "nationality"),
        ({"nationality": ["VN", {"x": 1}]}, "nationality"),
        ({"permanentResidence": "12 Lý Thường Kiệt"}, "permanent_residence"),
        ({"children": [{"fullName": "An"}, "Bình"]}, "children"),
    ],
)
def test_wrong_type_is_invalid_on_that_field_only(record: dict[str, Any], attribute: str) -> None:
    citizen = _citizen(phone="0912345678", **record)
    _invalid(getattr(citizen, attribute))
    assert citizen.phone == "0912345678"


def test_wrong_type_inside_an_object_is_invalid_on_the_inner_field() -> None:
    address = _citizen(
        permanentResidence={"provinceCode": "bảy chín", "wardName": "X"}
    ).permanent_residence
    assert isinstance(address, Address)
    _invalid(address.province_code)
    assert address.ward_name == "X"


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1, 10**20])
def test_int_outside_32_bits_is_invalid(value: int) -> None:
    record = build(InsuranceRecord, {"contributionMonths": value}, source="bhxh", personal_id=PID)
    _invalid(record.contribution_months)


@pytest.mark.parametrize("value", [2**31 - 1, -(2**31), 0])
def test_int_at_32_bit_bounds_is_kept(value: int) -> None:
    record = build(InsuranceRecord, {"contributionMonths": value}, source="bhxh", personal_id=PID)
    assert record.contribution_months == value


@pytest.mark.parametrize("value", [True, 1.5, "12"])
def test_int_field_rejects_other_types(value: Any) -> None:
    record = build(InsuranceRecord, {"contributionMonths": value}, source="bhxh", personal_id=PID)
    _invalid(record.contribution_months)


@pytest.mark.parametrize("value", ["nhiều tiền", True, 1.5])
def test_decimal_field_rejects_other_values(value: Any) -> None:
    business = build(Business, {"charterCapital": value}, source="b", enterprise_code="x")
    _invalid(business.charter_capital)


@pytest.mark.parametrize(
    "record",
    [
        {"fullName": {"secret": "SECRET-VALUE-123"}},
        {"birthDate": "SECRET-VALUE-123"},
        {"gender": "SECRET-VALUE-123"},
        {"nationality": ["SECRET-VALUE-123", None]},
        {"permanentResidence": "SECRET-VALUE-123"},
    ],
)
def test_error_never_contains_the_source_value(record: dict[str, Any]) -> None:
    citizen = _citizen(**record)
    [error] = [v for v in _field_values(citizen).values() if isinstance(v, Exception)]
    shown = f"{error} {error!r} {error.extensions} {error.to_body()}"
    assert "SECRET-VALUE-123" not in shown


def test_error_names_the_source() -> None:
    error = _invalid(_citizen(birthDate="hôm qua").birth_date)
    assert error.source == "population"


def test_source_per_field() -> None:
    citizen = build(
        Citizen,
        {"birthDate": "x", "gender": "y"},
        source={"birthDate": "population", "gender": "civil-status"},
        personal_id=PID,
    )
    assert _invalid(citizen.birth_date).source == "population"
    assert _invalid(citizen.gender).source == "civil-status"


def test_exceptions_in_the_record_pass_through() -> None:
    down = SourceUnavailable(source="telecom")
    missing = NoSource(field="Citizen.email")
    citizen = _citizen(phone=down, email=missing, fullName="An")
    assert citizen.phone is down
    assert citizen.email is missing
    assert citizen.full_name == "An"
