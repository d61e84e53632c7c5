"""The mapping language: expressions build canonical objects from any source's shapes.

A population service shaped unlike ours (names in two fields, a flat household id,
citizenship as one string, ward codes as zero-padded text, dates as dd/mm/yyyy) maps
completely: every one of its fifteen fields reaches a canonical field, and the result
builds into the canonical GraphQL types.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from textwrap import dedent
from typing import Any

import httpx
import pytest

from connectors import FetchContext, RestConnector, load_manifest
from connectors._expressions import check_expression, expression_roots
from connectors._mapping import compile_fields, map_record
from gateway.errors import SourceDataInvalid
from schema._build import build
from schema._types import Citizen, Gender, MaritalStatus

CTX = FetchContext(request_id="req-1")

PEER_MANIFEST = """\
name: peer-population
kind: rest
base_url: http://peer.test
tables:
  sexes: {M: MALE, F: FEMALE}
  marital: {single: SINGLE, married: MARRIED, divorced: DIVORCED, widowed: WIDOWED}
entities:
  Citizen:
    key_field: id
    get: /people/{key}
    fields_param: fields
    fields:
      personalId: id
      fullName: {expr: "concat(familyName, ' ', givenName)"}
      otherNames: {expr: "as_list(alias)"}
      birthDate: {expr: "date(dateOfBirth, '%d/%m/%Y')"}
      gender: {expr: "lookup(sex, 'sexes')"}
      nationality: {expr: "split(citizenship, ',')"}
      maritalStatus: {expr: "lookup(maritalStatus, 'marital')"}
      household: {expr: "{householdId: householdId}"}
      permanentResidence:
        expr: >-
          {provinceCode: to_int(provinceCode), wardCode: to_int(wardCode),
           wardName: wardName, detail: street}
      phone: {expr: "to_string(phone)"}
      legacyIdNumber: oldIdNumber
"""

PEER_RECORD: dict[str, Any] = {
    "id": "079203001234",
    "familyName": "Nguyễn",
    "givenName": "Thị Bích Ngọc",
    "alias": "Bé Na",
    "dateOfBirth": "15/03/1990",
    "sex": "F",
    "citizenship": "VN",
    "maritalStatus": "married",
    "householdId": "HO0000000123",
    "provinceCode": "01",
    "wardCode": "00004",
    "wardName": "Phường Ba Đình",
    "street": "12 Phố Điện Biên Phủ",
    "phone": 84912345678,
    "oldIdNumber": "012345678",
}


def _write(tmp_path: Path, text: str, name: str = "manifest.yaml") -> Path:
    path = tmp_path / name
    path.write_text(dedent(text), encoding="utf-8")
    return path


def _serving(manifest: Any, record: dict[str, Any]) -> tuple[RestConnector, list[str]]:
    """A connector of `manifest` whose source answers `record`, and the fields it asked."""
    asked: list[str] = []

    def source(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params.get("fields", ""))
        return httpx.Response(200, json=record)

    client = httpx.AsyncClient(transport=httpx.MockTransport(source))
    return RestConnector(manifest, http=client), asked


async def test_a_source_shaped_unlike_ours_maps_completely(tmp_path: Path) -> None:
    manifest = load_manifest(_write(tmp_path, PEER_MANIFEST))
    connector, asked = _serving(manifest, PEER_RECORD)
    fields = frozenset(manifest.entities["Citizen"].fields)
    found = await connector.fetch("Citizen", [PEER_RECORD["id"]], fields, CTX)
    record = found[PEER_RECORD["id"]]
    assert isinstance(record, dict)
    # Every field of the source was asked for, and none is left unread.
    assert set(asked[0].split(",")) == set(PEER_RECORD)
    assert record == {
        "personalId": "079203001234",
        "fullName": "Nguyễn Thị Bích Ngọc",
        "otherNames": ["Bé Na"],
        "birthDate": "1990-03-15",
        "gender": "FEMALE",
        "nationality": ["VN"],
        "maritalStatus": "MARRIED",
        "household": {"householdId": "HO0000000123"},
        "permanentResidence": {
            "provinceCode": 1,
            "wardCode": 4,
            "wardName": "Phường Ba Đình",
            "detail": "12 Phố Điện Biên Phủ",
        },
        "phone": "84912345678",
        "legacyIdNumber": "012345678",
    }
    citizen = build(Citizen, record, source={}, personal_id=record["personalId"])
    assert citizen.birth_date == datetime.date(1990, 3, 15)
    assert citizen.gender is Gender.FEMALE
    assert citizen.marital_status is MaritalStatus.MARRIED
    assert citizen.permanent_residence is not None
    assert citizen.permanent_residence.ward_code == 4
    assert citizen.household is not None
    assert citizen.household.household_id == "HO0000000123"


async def test_only_the_fields_an_expression_reads_are_asked_for(tmp_path: Path) -> None:
    manifest = load_manifest(_write(tmp_path, PEER_MANIFEST))
    connector, asked = _serving(manifest, PEER_RECORD)
    await connector.fetch("Citizen", [PEER_RECORD["id"]], frozenset({"fullName"}), CTX)
    assert asked == ["familyName,givenName,id"]


def _map(fields: dict[str, Any], record: dict[str, Any], **tables: Any) -> dict[str, Any]:
    from connectors import parse_manifest

    manifest = parse_manifest(
        {
            "name": "src",
            "kind": "rest",
            "base_url": "http://src.test",
            "tables": tables,
            "entities": {"Citizen": {"key_field": "id", "get": "/{key}", "fields": fields}},
        }
    )
    mappers = compile_fields(
        manifest.entities["Citizen"].fields, source="s", tables=manifest.tables
    )
    return map_record(mappers.values(), record)


@pytest.mark.parametrize(
    ("expr", "record", "value"),
    [
        ("concat(a, ' ', b)", {"a": "Lê", "b": "Văn"}, "Lê Văn"),
        ("concat(a, b)", {}, None),
        ("concat(a, '-', n)", {"a": "x", "n": 7}, "x-7"),
        ("split(a, ';')", {"a": "VN;LA"}, ["VN", "LA"]),
        ("split(a, ';')", {}, None),
        ("to_int(a)", {"a": "0101"}, 101),
        ("to_int(a)", {"a": 12.0}, 12),
        ("to_string(a)", {"a": 84912345678}, "84912345678"),
        ("to_string(a)", {"a": 1.5}, "1.5"),
        ("date(a, '%d/%m/%Y')", {"a": "01/07/2025"}, "2025-07-01"),
        ("default(a, 'x')", {}, "x"),
        ("default(a, 'x')", {"a": "y"}, "y"),
        ("as_list(a)", {"a": "y"}, ["y"]),
        ("as_list(a)", {"a": ["y"]}, ["y"]),
        ("as_list(a)", {}, None),
        ("a.b[0].c", {"a": {"b": [{"c": 1}]}}, 1),
        ("length(a)", {"a": [1, 2]}, 2),
    ],
)
def test_functions(expr: str, record: dict[str, Any], value: Any) -> None:
    assert _map({"hometown": {"expr": expr}}, record) == {"hometown": value}


def test_lookup_reads_a_table_of_the_manifest() -> None:
    fields = {"gender": {"expr": "lookup(s, 'sexes')"}}
    assert _map(fields, {"s": "F"}, sexes={"F": "FEMALE"}) == {"gender": "FEMALE"}
    assert _map(fields, {"s": 1}, sexes={"1": "MALE"}) == {"gender": "MALE"}


@pytest.mark.parametrize(
    ("expr", "record", "tables"),
    [
        ("to_int(a)", {"a": "12a"}, {}),
        ("to_int(a)", {"a": "١٢"}, {}),  # digits, but not ASCII ones
        ("date(a, '%d/%m/%Y')", {"a": "2025-07-01"}, {}),
        ("lookup(a, 't')", {"a": "Z"}, {"t": {"A": "B"}}),
        ("split(a, ',')", {"a": 5}, {}),  # a JMESPath type error
        ("concat(a)", {"a": {"x": 1}}, {}),
        ("to_int(a)", {"a": "9" * 5000}, {}),  # past Python's digit limit
        ("concat(a, a, a)", {"a": "x" * 30_000}, {}),  # text past 65,536 characters
    ],
)
def test_a_value_a_function_cannot_convert_makes_only_its_field_invalid(
    expr: str, record: dict[str, Any], tables: dict[str, Any]
) -> None:
    out = _map({"hometown": {"expr": expr}, "religion": "r"}, {**record, "r": "Không"}, **tables)
    assert isinstance(out["hometown"], SourceDataInvalid)
    assert out["religion"] == "Không"


def test_an_expression_value_goes_through_values_and_fields() -> None:
    fields = {
        "gender": {"expr": "default(s, 'M')", "values": {"M": "MALE"}},
        "father": {"expr": "{id: fid, n: fname}", "fields": {"personalId": "id", "fullName": "n"}},
    }
    out = _map(fields, {"fid": "001", "fname": "An"})
    assert out == {"gender": "MALE", "father": {"personalId": "001", "fullName": "An"}}


@pytest.mark.parametrize(
    ("expr", "roots"),
    [
        ("a", {"a"}),
        ("a.b.c", {"a"}),
        ("concat(a, ' ', b.c)", {"a", "b"}),
        ("x[*].y | [0]", {"x"}),
        ("{p: to_int(q), r: s[?t=='1'].u}", {"q", "s"}),
        ("sort_by(items, &n)[0].v", {"items"}),
        ("@", None),
        ("to_string(@)", None),
    ],
)
def test_the_source_fields_an_expression_reads(expr: str, roots: set[str] | None) -> None:
    assert expression_roots(expr) == (None if roots is None else frozenset(roots))


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("concat(a, ", "does not parse"),
        ("a[?", "does not parse"),
        ("system('rm -rf /')", "unknown function system()"),
        ("eval(a)", "unknown function eval()"),
        ("lookup(a, b)", "literal"),
        ("default(a, null)", "`null`"),
        ('`"ab"`' + " | concat(@, @)" * 30, "chains 30 pipes"),
        ("`[1]`" + " | [@, @][]" * 22, "at most 6"),
        ("[" * 700 + "a" + "]" * 700, "nested too deeply"),
        ("concat(" + ", ".join(["a"] * 250) + ")", "at most 200"),
    ],
)
def test_bad_expressions_are_refused(expr: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_expression(expr)


# The peer benchmark's population source (its own REST service, as it is): fifteen
# fields, six of which the short form could not map. Every field with a canonical
# counterpart maps; `language`, `registrationDate`, `lastUpdated` and the address's
# `postalCode` and `country` have none in the population database's schema.
PEER_BENCH_MANIFEST = """\
name: peer-bench
kind: rest
base_url: http://127.0.0.1:18101
tables:
  sexes: {F: FEMALE, M: MALE}
  marital: {single: SINGLE, married: MARRIED, divorced: DIVORCED, widowed: WIDOWED}
  life: {alive: ALIVE, deceased: DECEASED}
entities:
  Citizen:
    key_field: personalId
    get: /citizens/{key}
    batch: {path: /citizens:batch, keys_field: ids, results_field: citizens}
    fields:
      personalId: personalId
      fullName: {expr: "concat(familyName, ' ', givenName)"}
      birthDate: birthDate
      deathDate: deathDate
      gender: {expr: "lookup(sex, 'sexes')"}
      maritalStatus: {expr: "lookup(maritalStatus, 'marital')"}
      vitalStatus: {expr: "lookup(lifeStatus, 'life')"}
      nationality: {expr: "as_list(citizenship)"}
      household: {expr: "{householdId: householdId}"}
      birthRegistrationPlace: {expr: "{wardName: birthPlace}"}
      permanentResidence:
        expr: >-
          {detail: concat(address.houseNumber, ' ', address.street),
           wardName: address.city, wardCode: to_int(address.municipalityCode)}
"""

PEER_BENCH_RECORD = {
    "personalId": "900521000017",
    "givenName": "Mara",
    "familyName": "Lind",
    "birthDate": "1990-05-21",
    "sex": "F",
    "citizenship": "XA",
    "maritalStatus": "married",
    "lifeStatus": "alive",
    "deathDate": None,
    "birthPlace": "Northport",
    "language": "xa",
    "householdId": "HH00001234",
    "registrationDate": "1990-01-15",
    "lastUpdated": "2024-05-31T12:00:00Z",
    "address": {
        "street": "Harbour Road",
        "houseNumber": "42",
        "postalCode": "12345",
        "city": "Westbury",
        "municipalityCode": "0404",
        "country": "XA",
    },
}


async def test_the_peer_benchmark_source_maps_completely(tmp_path: Path) -> None:
    manifest = load_manifest(_write(tmp_path, PEER_BENCH_MANIFEST))
    connector, _ = _serving(manifest, PEER_BENCH_RECORD)
    fields = frozenset(manifest.entities["Citizen"].fields)
    found = await connector.fetch("Citizen", ["900521000017"], fields, CTX)
    record = found["900521000017"]
    assert isinstance(record, dict)
    assert record == {
        "personalId": "900521000017",
        "fullName": "Lind Mara",
        "birthDate": "1990-05-21",
        "deathDate": None,
        "gender": "FEMALE",
        "maritalStatus": "MARRIED",
        "vitalStatus": "ALIVE",
        "nationality": ["XA"],
        "household": {"householdId": "HH00001234"},
        "birthRegistrationPlace": {"wardName": "Northport"},
        "permanentResidence": {
            "detail": "42 Harbour Road",
            "wardName": "Westbury",
            "wardCode": 404,
        },
    }
    citizen = build(Citizen, record, source={}, personal_id=record["personalId"])
    assert citizen.full_name == "Lind Mara"
    assert citizen.nationality == ["XA"]
    assert citizen.birth_registration_place is not None
    assert citizen.birth_registration_place.ward_name == "Northport"
    unmapped = {"language", "registrationDate", "lastUpdated"}
    read = {r for m in manifest.entities["Citizen"].fields.values() for r in _roots(m)}
    assert set(PEER_BENCH_RECORD) - read == unmapped


def _roots(spec: Any) -> set[str]:
    if isinstance(spec, str):
        return {spec.split(".")[0]}
    roots = expression_roots(spec.expr) if spec.expr else {spec.from_.split(".")[0]}
    assert roots is not None
    return set(roots)
