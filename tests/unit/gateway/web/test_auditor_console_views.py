"""The auditor's console's own Python: its filter dependency, and envelopes in plain words.

The pages read the query string with the API's filter dependency wrapped by `lenient`:
empty form inputs count as not given, a refused filter comes back to be shown in the
form, and every parameter of the API's dependency is read (and has an input).
"""

from __future__ import annotations

import datetime
import inspect
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Query

from gateway.errors import AuditUnavailable, GatewayError, InvalidArgument
from gateway.web._audit_routes import _filter
from gateway.web._auditor_console import (
    FILTERS,
    envelope_rows,
    error_text,
    lenient,
    local_time,
    outcome_text,
)
from policies import CATALOGUE_DIR, load_catalogue
from schema import canonical_fields

RESIDENCE = "1.004222"


@pytest.fixture(scope="module")
def catalogue() -> Any:
    return load_catalogue(CATALOGUE_DIR, canonical=canonical_fields())


def _built(
    start: Annotated[str | None, Query(alias="from")] = None,
    client: str | None = None,
    size: int = 1,
) -> dict[str, Any]:
    if client == "bad":
        raise InvalidArgument("`client` is bad.", argument="client")
    if client == "down":
        raise AuditUnavailable()
    return {"from": start, "client": client, "size": size}


def _app() -> httpx.AsyncClient:
    app = FastAPI()

    @app.get("/")
    async def page(found: Annotated[Any, Depends(lenient(_built))]) -> Any:
        if isinstance(found, GatewayError):
            return {"error": found.code, "argument": found.detail.get("argument")}
        return found

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_empty_inputs_count_as_not_given_and_aliases_are_kept() -> None:
    async with _app() as http:
        answer = await http.get("/", params={"from": "", "client": "  "})
        assert answer.json() == {"from": None, "client": None, "size": 1}
        answer = await http.get("/", params={"from": "2026-01-02", "size": "3"})
        assert answer.json() == {"from": "2026-01-02", "client": None, "size": 3}


async def test_a_refused_filter_is_given_to_the_page_and_a_failure_is_raised() -> None:
    async with _app() as http:
        answer = await http.get("/", params={"client": "bad"})
        assert answer.json() == {"error": "INVALID_ARGUMENT", "argument": "client"}
        assert (await http.get("/", params={"client": "down"})).status_code == 500


def test_the_form_has_an_input_for_every_parameter_of_the_api_search() -> None:
    signature = inspect.signature(lenient(_filter))
    names = set()
    for name, parameter in signature.parameters.items():
        if name == "state":
            continue
        default = parameter.default
        if hasattr(parameter.annotation, "__metadata__"):
            default = parameter.annotation.__metadata__[0]
        names.add(getattr(default, "alias", None) or name)
    assert names == {name for name, _label, _kind in FILTERS}
    assert len(FILTERS) == 14


def test_times_are_shown_in_vietnam_time() -> None:
    assert local_time("2026-03-02T17:30:00Z") == "03/03/2026 00:30"
    assert (
        local_time(datetime.datetime(2026, 3, 2, 1, 2, tzinfo=datetime.UTC)) == "02/03/2026 08:02"
    )
    assert local_time(None) == ""
    assert local_time("not a time") == "not a time"


def test_outcomes_in_plain_words_name_a_refusals_code() -> None:
    assert outcome_text("served", "vi") == "Đã cung cấp dữ liệu"
    assert outcome_text("served", "en") == "Data served"
    assert outcome_text("rejected:TOKEN_EXPIRED", "vi") == "Bị từ chối (TOKEN_EXPIRED)"
    assert outcome_text("something_new", "vi") == "something_new"


def test_a_refused_search_is_explained_in_vietnamese() -> None:
    too_long = InvalidArgument("A search spans at most 31 days.", argument="from", maxDays=31)
    assert "31" in error_text(too_long, "vi")
    assert error_text(too_long, "vi").startswith("Mỗi lần tra cứu")
    unknown = InvalidArgument("Unknown decision code.", argument="decision")
    assert error_text(unknown, "en") == "Unknown decision."
    assert error_text(InvalidArgument("?", argument="weird"), "vi") == (
        "Có điều kiện tra cứu không hợp lệ."
    )


def _header(kind: str) -> dict[str, Any]:
    return {
        "v": 3,
        "id": "0" * 32,
        "type": kind,
        "ts": "2026-03-02T01:02:03.456789+00:00",
        "requestId": "req-1",
        "outcome": "served",
        "policyVersion": "ab" * 32,
        "subjectCommitments": ["c1", "c2"],
        "personalHash": "cd" * 32,
    }


def test_an_access_reads_in_vietnamese_with_its_decisions_and_legal_basis(catalogue: Any) -> None:
    envelope = {
        **_header("access"),
        "client": "VN/GOV/CAX/ho-so",
        "organisation": "Công an xã",
        "officer": "f" * 32,
        "procedure": RESIDENCE,
        "case": "e" * 32,
        "subjects": 2,
        "decisions": [
            {
                "path": "Citizen.fullName",
                "decision": "ALLOWED_BY_LAW",
                "basis": None,
                "subjects": [0, 1],
            },
            {
                "path": "Citizen.phone",
                "decision": "ALLOWED_BY_CONSENT",
                "basis": "commit-1",
                "subjects": [0],
            },
            {
                "path": "Citizen.phone",
                "decision": "CONSENT_REQUIRED",
                "basis": None,
                "subjects": [1],
            },
        ],
        "sourceVersions": {"population": 2},
        "hiddenUntil": "2026-04-01T00:00:00+07:00",
    }
    shown = envelope_rows(envelope, catalogue, "vi")
    assert shown["procedureName"] == "Đăng ký thường trú"
    assert any("Luật Cư trú" in law for law in shown["laws"])
    by_key = {r["key"]: r for r in shown["rows"]}
    assert by_key["procedure"]["text"] == "1.004222 \N{EN DASH} Đăng ký thường trú"
    assert by_key["officer"]["label"] == "Cán bộ (bí danh)"
    assert by_key["subjects"]["text"] == "2"
    assert by_key["sourceVersions"]["text"] == "population: 2"
    assert by_key["hiddenUntil"]["text"] == "01/04/2026 00:00"
    law, consent, withheld = shown["decisions"]
    assert law["field"] == "Họ, chữ đệm và tên"
    assert (law["served"], law["subjects"], law["basis"]) == (True, 2, "Quy định pháp luật")
    assert consent["basis"] == "Sự đồng ý"
    assert "commit-1" in consent["laws"][0]
    assert (withheld["served"], withheld["code"]) == (False, "CONSENT_REQUIRED")
    assert withheld["decision"] == "Không cung cấp: cần có sự đồng ý của người dân"
    header = {r["key"]: r["text"] for r in shown["header"]}
    assert header["ts"] == "02/03/2026 08:02"
    assert header["type"] == "Khai thác dữ liệu"
    assert header["subjectCommitments"] == "2"


@pytest.mark.parametrize(
    ("kind", "body", "key", "text"),
    [
        (
            "consent",
            {
                "consent": "c" * 16,
                "action": "approved",
                "consumer": "VN/GOV/X/y",
                "fields": ["Citizen.phone"],
                "validUntil": None,
                "actor": "citizen",
            },
            "fields",
            "Số điện thoại",
        ),
        (
            "admin",
            {
                "action": "client_registered",
                "client": "VN/GOV/X/y",
                "operator": "p" * 32,
                "operatorOrg": None,
            },
            "operatorOrg",
            "\N{EN DASH}",
        ),
        (
            "auditor_search",
            {
                "auditor": "a" * 32,
                "auditorOrg": "VN/GOV/TTCP",
                "filter": {"from": "2026-03-01T17:00:00Z", "event": "0" * 32},
                "results": 3,
                "export": False,
            },
            "filter",
            "from = 2026-03-01T17:00:00Z; event = " + "0" * 32,
        ),
        (
            "key",
            {"somethingNew": {"nested": [1, {"x": True}]}},
            "somethingNew",
            '{"nested":[1,{"x":true}]}',
        ),
    ],
)
def test_every_event_type_reads_and_an_unknown_key_shows_as_itself(
    catalogue: Any, kind: str, body: dict[str, Any], key: str, text: str
) -> None:
    shown = envelope_rows({**_header(kind), **body}, catalogue, "vi")
    by_key = {r["key"]: r for r in shown["rows"]}
    assert by_key[key]["text"] == text
    if key == "somethingNew":
        assert by_key[key]["label"] == "somethingNew"
    assert shown["decisions"] == []
    assert {r["key"] for r in shown["header"]} == set(_header(kind))


def test_an_unknown_procedure_shows_its_code(catalogue: Any) -> None:
    shown = envelope_rows({**_header("access"), "procedure": "NO.SUCH"}, catalogue, "en")
    assert shown["procedureName"] == "NO.SUCH"
    assert shown["laws"] == []
