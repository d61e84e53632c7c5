"""The `rest` connector against a source simulated with `httpx.MockTransport`."""

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest

from connectors import FetchContext, ManifestBase, RestConnector, parse_manifest
from gateway.errors import (
    SourceDataInvalid,
    SourceRejected,
    SourceTimeout,
    SourceUnavailable,
)
from policies import Purpose

Handler = Callable[[httpx.Request], httpx.Response]

CTX = FetchContext(request_id="req-1")
ALL = frozenset({"personalId", "fullName", "gender", "birthDate"})


def _manifest(*, max_size: int = 100, retries: int = 1, batch: bool = True) -> ManifestBase:
    citizen: dict[str, Any] = {
        "key_field": "so_dinh_danh",
        "get": "/v1/cong-dan/{key}",
        "fields_param": "truong",
        "fields": {
            "personalId": "so_dinh_danh",
            "fullName": "ho_ten",
            "gender": {"from": "gioi_tinh", "values": {"Nam": "MALE", "Nữ": "FEMALE"}},
            "birthDate": "ngay_sinh",
        },
    }
    if batch:
        citizen["batch"] = {
            "path": "/v1/cong-dan/tra-cuu",
            "keys_field": "danh_sach",
            "fields_field": "truong",
            "results_field": "ket_qua",
            "max_size": max_size,
        }
    return parse_manifest(
        {
            "name": "population",
            "kind": "rest",
            "base_url": "http://population.test",
            "retries": retries,
            "timeout_seconds": 1,
            "entities": {"Citizen": citizen},
        }
    )


def _person(key: str) -> dict[str, Any]:
    return {"so_dinh_danh": key, "ho_ten": f"Người {key[-2:]}", "gioi_tinh": "Nam", "x": 1}


class Source:
    """A fake agency: records every request and answers with `handler`."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.handler = handler or self.default

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    @staticmethod
    def default(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            body = orjson.loads(request.content)
            return httpx.Response(200, json={"ket_qua": [_person(k) for k in body["danh_sach"]]})
        key = request.url.path.rsplit("/", 1)[-1]
        return httpx.Response(200, json=_person(key))

    def bodies(self) -> list[Any]:
        return [orjson.loads(r.content) for r in self.requests]


@pytest.fixture
def source() -> Source:
    return Source()


@pytest.fixture
async def http(source: Source) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(source)) as client:
        yield client


def _connector(http: httpx.AsyncClient, **options: Any) -> RestConnector:
    return RestConnector(_manifest(**options), http=http)


async def test_single_key_is_one_get(source: Source, http: httpx.AsyncClient) -> None:
    found = await _connector(http).fetch("Citizen", ["001099000001"], ALL, CTX)
    assert [(r.method, r.url.path) for r in source.requests] == [
        ("GET", "/v1/cong-dan/001099000001")
    ]
    assert found == {
        "001099000001": {
            "personalId": "001099000001",
            "fullName": "Người 01",
            "gender": "MALE",
            "birthDate": None,
        }
    }


async def test_get_asks_only_for_source_fields_of_requested_fields_and_the_key(
    source: Source, http: httpx.AsyncClient
) -> None:
    await _connector(http).fetch("Citizen", ["001099000001"], frozenset({"gender"}), CTX)
    assert source.requests[0].url.params["truong"] == "gioi_tinh,so_dinh_danh"


async def test_result_holds_only_requested_fields(http: httpx.AsyncClient) -> None:
    found = await _connector(http).fetch("Citizen", ["001099000001"], frozenset({"gender"}), CTX)
    assert found == {"001099000001": {"gender": "MALE"}}


async def test_several_keys_are_one_batch_post(source: Source, http: httpx.AsyncClient) -> None:
    keys = ["001099000001", "001099000002", "001099000003"]
    found = await _connector(http).fetch("Citizen", keys, frozenset({"fullName"}), CTX)
    assert [(r.method, r.url.path) for r in source.requests] == [("POST", "/v1/cong-dan/tra-cuu")]
    assert source.bodies() == [{"danh_sach": keys, "truong": ["ho_ten", "so_dinh_danh"]}]
    assert found["001099000002"] == {"fullName": "Người 02"}


async def test_batch_is_sent_as_json(source: Source, http: httpx.AsyncClient) -> None:
    await _connector(http).fetch("Citizen", ["001099000001", "001099000002"], ALL, CTX)
    assert source.requests[0].headers["content-type"] == "application/json"


async def test_duplicate_keys_are_asked_once(source: Source, http: httpx.AsyncClient) -> None:
    keys = ["001099000001", "001099000002", "001099000001"]
    found = await _connector(http).fetch("Citizen", keys, ALL, CTX)
    assert source.bodies()[0]["danh_sach"] == ["001099000001", "001099000002"]
    assert set(found) == {"001099000001", "001099000002"}


async def test_duplicates_of_one_key_are_one_get(source: Source, http: httpx.AsyncClient) -> None:
    await _connector(http).fetch("Citizen", ["001099000001", "001099000001"], ALL, CTX)
    assert [r.method for r in source.requests] == ["GET"]


async def test_batches_over_max_size_are_split(source: Source, http: httpx.AsyncClient) -> None:
    keys = [f"0010990000{i:02d}" for i in range(5)]
    found = await _connector(http, max_size=2).fetch("Citizen", keys, ALL, CTX)
    assert sorted(len(b["danh_sach"]) for b in source.bodies()) == [1, 2, 2]
    assert sorted(k for b in source.bodies() for k in b["danh_sach"]) == keys
    assert set(found) == set(keys)


async def test_without_batch_endpoint_several_keys_are_gets(
    source: Source, http: httpx.AsyncClient
) -> None:
    keys = ["001099000001", "001099000002"]
    found = await _connector(http, batch=False).fetch("Citizen", keys, ALL, CTX)
    assert sorted(r.url.path for r in source.requests) == [f"/v1/cong-dan/{k}" for k in keys]
    assert set(found) == set(keys)


async def test_get_of_unknown_key_is_none(source: Source, http: httpx.AsyncClient) -> None:
    source.handler = lambda _: httpx.Response(404, json={"loi": "khong tim thay"})
    found = await _connector(http).fetch("Citizen", ["001099000009"], ALL, CTX)
    assert found.get("001099000009") is None


async def test_batch_leaves_out_unknown_keys(source: Source, http: httpx.AsyncClient) -> None:
    source.handler = lambda _: httpx.Response(200, json={"ket_qua": [_person("001099000001")]})
    found = await _connector(http).fetch("Citizen", ["001099000001", "001099000009"], ALL, CTX)
    assert found.get("001099000009") is None
    assert found["001099000001"] is not None


async def test_503_then_200_is_retried_once(source: Source, http: httpx.AsyncClient) -> None:
    answers = iter([httpx.Response(503), httpx.Response(200, json=_person("001099000001"))])
    source.handler = lambda _: next(answers)
    found = await _connector(http, retries=1).fetch("Citizen", ["001099000001"], ALL, CTX)
    assert len(source.requests) == 2
    assert found["001099000001"] is not None


async def test_503_twice_is_unavailable(source: Source, http: httpx.AsyncClient) -> None:
    source.handler = lambda _: httpx.Response(503)
    with pytest.raises(SourceUnavailable) as caught:
        await _connector(http, retries=1).fetch("Citizen", ["001099000001"], ALL, CTX)
    assert len(source.requests) == 2
    assert caught.value.detail["status"] == 503
    assert caught.value.source == "population"


async def test_no_retry_when_retries_is_zero(source: Source, http: httpx.AsyncClient) -> None:
    source.handler = lambda _: httpx.Response(503)
    with pytest.raises(SourceUnavailable):
        await _connector(http, retries=0).fetch("Citizen", ["001099000001"], ALL, CTX)
    assert len(source.requests) == 1


async def test_400_is_rejected_without_retry(source: Source, http: httpx.AsyncClient) -> None:
    source.handler = lambda _: httpx.Response(400, json={"loi": "sai"})
    with pytest.raises(SourceRejected) as caught:
        await _connector(http, retries=1).fetch("Citizen", ["001099000001"], ALL, CTX)
    assert len(source.requests) == 1
    assert caught.value.detail["status"] == 400


async def test_refused_connection_is_unavailable(source: Source, http: httpx.AsyncClient) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    source.handler = refuse
    with pytest.raises(SourceUnavailable) as caught:
        await _connector(http, retries=0).fetch("Citizen", ["001099000001"], ALL, CTX)
    assert caught.value.detail["reason"] == "ConnectError"


async def test_timeout_is_source_timeout(source: Source, http: httpx.AsyncClient) -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    source.handler = hang
    with pytest.raises(SourceTimeout):
        await _connector(http, retries=0).fetch("Citizen", ["001099000001"], ALL, CTX)


async def test_timeout_is_retried(source: Source, http: httpx.AsyncClient) -> None:
    calls = iter([None, _person("001099000001")])

    def slow_once(request: httpx.Request) -> httpx.Response:
        body = next(calls)
        if body is None:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, json=body)

    source.handler = slow_once
    found = await _connector(http, retries=1).fetch("Citizen", ["001099000001"], ALL, CTX)
    assert found["001099000001"] is not None


async def test_non_json_body_is_invalid_data(source: Source, http: httpx.AsyncClient) -> None:
    source.handler = lambda _: httpx.Response(200, text="<html>maintenance</html>")
    with pytest.raises(SourceDataInvalid):
        await _connector(http).fetch("Citizen", ["001099000001"], ALL, CTX)


async def test_non_json_body_is_not_retried(source: Source, http: httpx.AsyncClient) -> None:
    source.handler = lambda _: httpx.Response(200, text="not json")
    with pytest.raises(SourceDataInvalid):
        await _connector(http, retries=1).fetch("Citizen", ["001099000001"], ALL, CTX)
    assert len(source.requests) == 1


async def test_get_answering_a_list_is_invalid_data(
    source: Source, http: httpx.AsyncClient
) -> None:
    source.handler = lambda _: httpx.Response(200, json=[_person("001099000001")])
    with pytest.raises(SourceDataInvalid):
        await _connector(http).fetch("Citizen", ["001099000001"], ALL, CTX)


async def test_batch_without_results_list_is_invalid_data(
    source: Source, http: httpx.AsyncClient
) -> None:
    source.handler = lambda _: httpx.Response(200, json={"ket_qua": None})
    with pytest.raises(SourceDataInvalid):
        await _connector(http).fetch("Citizen", ["001099000001", "001099000002"], ALL, CTX)


async def test_batch_result_without_its_key_is_invalid_data(
    source: Source, http: httpx.AsyncClient
) -> None:
    source.handler = lambda _: httpx.Response(200, json={"ket_qua": [{"ho_ten": "An"}]})
    with pytest.raises(SourceDataInvalid):
        await _connector(http).fetch("Citizen", ["001099000001", "001099000002"], ALL, CTX)


async def test_purpose_goes_out_as_x_road_headers(source: Source, http: httpx.AsyncClient) -> None:
    purpose = Purpose("1.004222", "HS-2025-1", "officer-7", ("001099000001",))
    ctx = FetchContext(request_id="req-42", client_id="VN/GOV/BTP/HTTP", purpose=purpose)
    await _connector(http).fetch("Citizen", ["001099000001"], ALL, ctx)
    headers = source.requests[0].headers
    assert headers["X-Road-Id"] == "req-42"
    assert headers["X-Road-Client"] == "VN/GOV/BTP/HTTP"
    assert headers["X-Road-UserId"] == "officer-7"
    assert headers["X-Road-Issue"] == "HS-2025-1"


async def test_batch_carries_the_x_road_headers(source: Source, http: httpx.AsyncClient) -> None:
    ctx = FetchContext(request_id="req-42", client_id="VN/GOV/BTP/HTTP")
    await _connector(http).fetch("Citizen", ["001099000001", "001099000002"], ALL, ctx)
    assert source.requests[0].headers["X-Road-Id"] == "req-42"
    assert source.requests[0].headers["X-Road-Client"] == "VN/GOV/BTP/HTTP"


async def test_absent_purpose_parts_send_no_header(source: Source, http: httpx.AsyncClient) -> None:
    await _connector(http).fetch("Citizen", ["001099000001"], ALL, CTX)
    headers = source.requests[0].headers
    assert headers["X-Road-Id"] == "req-1"
    assert not {"x-road-client", "x-road-userid", "x-road-issue"} & set(headers.keys())


async def test_key_is_quoted_in_the_get_path(source: Source, http: httpx.AsyncClient) -> None:
    source.handler = lambda _: httpx.Response(404)
    await _connector(http).fetch("Citizen", ["a/../b c?d"], ALL, CTX)
    assert source.requests[0].url.raw_path.split(b"?")[0] == b"/v1/cong-dan/a%2F..%2Fb%20c%3Fd"


async def test_health_ok(source: Source, http: httpx.AsyncClient) -> None:
    source.handler = lambda _: httpx.Response(200, json={"status": "ok"})
    health = await _connector(http).health()
    assert health.ok
    assert health.detail == "200"
    assert health.latency_ms is not None
    assert source.requests[0].url == "http://population.test/healthz"


async def test_health_reports_an_error_status(source: Source, http: httpx.AsyncClient) -> None:
    source.handler = lambda _: httpx.Response(503)
    health = await _connector(http).health()
    assert not health.ok
    assert health.detail == "503"


async def test_health_reports_a_refused_connection(source: Source, http: httpx.AsyncClient) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    source.handler = refuse
    health = await _connector(http).health()
    assert not health.ok
    assert health.detail == "ConnectError"


async def test_aclose_leaves_the_injected_client_open(http: httpx.AsyncClient) -> None:
    await _connector(http).aclose()
    assert not http.is_closed


def test_repr_names_connector_and_url(http: httpx.AsyncClient) -> None:
    assert repr(_connector(http)) == (
        "RestConnector(name='population', base_url='http://population.test')"
    )
