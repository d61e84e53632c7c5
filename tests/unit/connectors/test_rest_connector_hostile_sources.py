"""The `rest` connector against sources that answer wrongly, hugely or not in HTTP."""

from __future__ import annotations

import gzip
from typing import Any

import aiohttp
import httpx
import pytest

from connectors import FetchContext, ManifestBase, RestConnector, parse_manifest
from gateway.errors import SourceDataInvalid, SourceUnavailable

CTX = FetchContext(request_id="req-1")
AN, BINH = "079203001234", "001185000777"


def _manifest(**extra: Any) -> ManifestBase:
    return parse_manifest(
        {
            "name": "population",
            "kind": "rest",
            "base_url": "http://population.test",
            "retries": 0,
            "timeout_seconds": 1,
            "entities": {
                "Citizen": {
                    "key_field": "so_dinh_danh",
                    "get": "/v1/cong-dan/{key}",
                    "fields": {"personalId": "so_dinh_danh", "fullName": "ho_ten"},
                },
                "LandParcel": {
                    "key_field": "so_thua",
                    "lists": {"holder": {"get": "/v1/thua-dat/chu/{key}", "list_field": "ket_qua"}},
                    "fields": {"parcelId": "so_thua", "areaM2": "dien_tich"},
                },
            },
            **extra,
        }
    )


def _connector(handler: Any, **extra: Any) -> RestConnector:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return RestConnector(_manifest(**extra), http=client)


async def test_a_record_for_another_key_is_refused() -> None:
    # A source that mixes up records must not make the gateway serve B's data as A's.
    connector = _connector(
        lambda r: httpx.Response(200, json={"so_dinh_danh": BINH, "ho_ten": "B"})
    )
    with pytest.raises(SourceDataInvalid, match="another key"):
        await connector.fetch("Citizen", [AN], frozenset({"fullName"}), CTX)


async def test_lists_of_records_for_a_holder() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"/v1/thua-dat/chu/{AN}"
        return httpx.Response(
            200, json={"ket_qua": [{"so_thua": "12", "dien_tich": 81.5}, {"so_thua": "13"}]}
        )

    found = await _connector(handler).fetch(
        "LandParcel", [AN], frozenset({"areaM2"}), CTX, by="holder"
    )
    assert found == {AN: [{"areaM2": 81.5}, {"areaM2": None}]}


async def test_a_list_that_is_not_a_list_of_objects_is_invalid() -> None:
    connector = _connector(lambda r: httpx.Response(200, json={"ket_qua": [1, 2]}))
    with pytest.raises(SourceDataInvalid):
        await connector.fetch("LandParcel", [AN], frozenset({"areaM2"}), CTX, by="holder")


async def test_an_answer_over_the_size_limit_is_refused_by_its_header() -> None:
    big = b'{"so_dinh_danh": "%s", "ho_ten": "%s"}' % (AN.encode(), b"x" * 5000)
    connector = _connector(lambda r: httpx.Response(200, content=big), max_response_bytes=2048)
    with pytest.raises(SourceDataInvalid, match="too large"):
        await connector.fetch("Citizen", [AN], frozenset({"fullName"}), CTX)


async def test_an_answer_over_the_size_limit_is_refused_while_streaming() -> None:
    async def chunks() -> Any:
        for _ in range(10):
            yield b"x" * 1000

    connector = _connector(lambda r: httpx.Response(200, content=chunks()), max_response_bytes=2048)
    with pytest.raises(SourceDataInvalid, match="too large"):
        await connector.fetch("Citizen", [AN], frozenset({"fullName"}), CTX)


async def test_an_answer_that_cannot_be_decoded_is_invalid_data() -> None:
    connector = _connector(
        lambda r: httpx.Response(200, content=b"not gzip", headers={"Content-Encoding": "gzip"})
    )
    with pytest.raises(SourceDataInvalid, match="decoded"):
        await connector.fetch("Citizen", [AN], frozenset({"fullName"}), CTX)
    good = gzip.compress(b'{"so_dinh_danh": "%s", "ho_ten": "An"}' % AN.encode())
    fine = _connector(
        lambda r: httpx.Response(200, content=good, headers={"Content-Encoding": "gzip"})
    )
    assert await fine.fetch("Citizen", [AN], frozenset({"fullName"}), CTX) == {
        AN: {"fullName": "An"}
    }


async def test_an_aiohttp_failure_is_source_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise aiohttp.ClientPayloadError("broken chunk")

    with pytest.raises(SourceUnavailable):
        await _connector(handler).fetch("Citizen", [AN], frozenset({"fullName"}), CTX)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"lists": {"holder": {"get": "/v1/x"}}}, "must contain {key}"),
        ({"lists": {"owner": {"get": "/v1/x/{key}"}}}, "holder"),
        ({"lists": {"holder": {"get": "/v1/x/{key}", "many": True}}}, "Extra inputs"),
        ({}, "a `get` path, a `batch` endpoint or `lists`"),
    ],
)
def test_list_ways_are_checked_at_load(spec: dict[str, Any], message: str) -> None:
    entity = {"key_field": "so_thua", "fields": {"parcelId": "so_thua"}, **spec}
    with pytest.raises(ValueError, match=message):
        parse_manifest(
            {"name": "land", "kind": "rest", "base_url": "http://x", "entities": {"L": entity}}
        )
