"""The `xroad` connector against a security server simulated with `httpx.MockTransport`."""

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from connectors import (
    FetchContext,
    ManifestError,
    XroadConnector,
    XroadManifest,
    load_manifest,
    parse_manifest,
)
from connectors._xroad import REQUEST_HASHES, xroad_error
from gateway.errors import SourceRejected, SourceTimeout, SourceUnavailable
from policies import Purpose

Handler = Callable[[httpx.Request], httpx.Response]

PID, OTHER = "079203001234", "001185000777"
SERVICE = "/r1/VN/GOV/BHXH/INSURANCE/so-bhxh/v1"
CTX = FetchContext(
    request_id="req-xroad-1",
    client_id="VN/GOV/BTP/HTTP",
    purpose=Purpose("1.004222", "HS-2026/Đăng ký", "Cán bộ Lê Văn Tâm", (PID,)),
)
FIELDS = frozenset({"personalId", "socialInsuranceNumber"})


def _manifest(*, max_size: int = 100, retries: int = 0) -> XroadManifest:
    manifest = parse_manifest(
        {
            "name": "insurance",
            "kind": "xroad",
            "base_url": "http://security-server.test",
            "client": "VN/GOV/BCA/GATEWAY",
            "service": {
                "instance": "VN",
                "member_class": "GOV",
                "member_code": "BHXH",
                "subsystem": "INSURANCE",
            },
            "retries": retries,
            "timeout_seconds": 1,
            "entities": {
                "InsuranceRecord": {
                    "service": "so-bhxh",
                    "version": "v1",
                    "key_field": "so_dinh_danh",
                    "get": "/so/{key}",
                    "batch": {
                        "path": "/tra-cuu",
                        "keys_field": "danh_sach",
                        "results_field": "ket_qua",
                        "max_size": max_size,
                    },
                    "fields": {
                        "personalId": "so_dinh_danh",
                        "socialInsuranceNumber": "so_so_bhxh",
                    },
                }
            },
        }
    )
    assert isinstance(manifest, XroadManifest)
    return manifest


class Sink:
    """Evidence handed over, in order, as (source, kind, value)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, str]] = []

    def add(self, source: str, kind: str, value: str) -> None:
        self.items.append((source, kind, value))

    def hashes(self) -> list[str]:
        assert all(s == "insurance" and k == REQUEST_HASHES for s, k, _ in self.items)
        return [value for _, _, value in self.items]


def _with(sink: Sink, ctx: FetchContext = CTX) -> FetchContext:
    return dataclasses.replace(ctx, evidence=sink)


def _record(key: str) -> dict[str, Any]:
    return {"so_dinh_danh": key, "so_so_bhxh": "79" + key[-8:]}


class SecurityServer:
    """Answers as an X-Road security server would, recording every request."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.handler = handler or self.default
        self.count = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.count += 1
        response = self.handler(request)
        response.headers.setdefault("X-Road-Request-Hash", f"hash{self.count}==")
        return response

    @staticmethod
    def default(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            keys = orjson.loads(request.content)["danh_sach"]
            return httpx.Response(200, json={"ket_qua": [_record(k) for k in keys]})
        return httpx.Response(200, json=_record(request.url.path.rsplit("/", 1)[-1]))


def _connector(server: SecurityServer, **settings: Any) -> XroadConnector:
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    return XroadConnector(_manifest(**settings), http=http)


async def test_one_key_is_read_at_its_xroad_path_with_percent_encoded_headers() -> None:
    server = SecurityServer()
    connector = _connector(server)
    found = await connector.fetch("InsuranceRecord", [PID], FIELDS, CTX)
    assert found[PID] == {"personalId": PID, "socialInsuranceNumber": "7903001234"}
    [request] = server.requests
    assert request.url.path == f"{SERVICE}/so/{PID}"
    headers = request.headers
    # The gateway's own subsystem, not the calling system, is the X-Road client.
    assert headers["x-road-client"] == "VN/GOV/BCA/GATEWAY"
    assert headers["x-road-id"] == "req-xroad-1"
    assert headers["x-road-userid"] == "C%C3%A1n%20b%E1%BB%99%20L%C3%AA%20V%C4%83n%20T%C3%A2m"
    assert headers["x-road-issue"] == "HS-2026/%C4%90%C4%83ng%20k%C3%BD"
    assert all(value.isascii() for value in headers.values())


async def test_the_client_header_is_sent_without_a_purpose() -> None:
    server = SecurityServer()
    await _connector(server).fetch("InsuranceRecord", [PID], FIELDS, FetchContext("r"))
    [request] = server.requests
    assert request.headers["x-road-client"] == "VN/GOV/BCA/GATEWAY"
    assert "x-road-userid" not in request.headers


async def test_request_hashes_reach_each_requests_sink_in_order() -> None:
    server = SecurityServer()
    connector = _connector(server)
    first, second = Sink(), Sink()
    await connector.fetch("InsuranceRecord", [PID], FIELDS, _with(first))
    await connector.fetch("InsuranceRecord", [OTHER], FIELDS, _with(first))
    await connector.fetch("InsuranceRecord", [PID], FIELDS, _with(second, FetchContext("r2")))
    assert first.hashes() == ["hash1==", "hash2=="]
    assert second.hashes() == ["hash3=="]
    # Without a sink (a health check, a lookup from the command line) nothing is kept.
    await connector.fetch("InsuranceRecord", [PID], FIELDS, CTX)
    assert server.count == 4
    assert (first.hashes(), second.hashes()) == (["hash1==", "hash2=="], ["hash3=="])


async def test_concurrent_requests_keep_their_own_evidence() -> None:
    server = SecurityServer()
    connector = _connector(server)
    sinks = [Sink() for _ in range(5)]
    await asyncio.gather(
        *(
            connector.fetch(
                "InsuranceRecord", [PID, OTHER], FIELDS, _with(sink, FetchContext(str(i)))
            )
            for i, sink in enumerate(sinks)
        )
    )
    # Each request's one call (a batch) left its hash in that request's sink only.
    by_id = {r.headers["x-road-id"]: n for n, r in enumerate(server.requests, start=1)}
    assert [sink.hashes() for sink in sinks] == [[f"hash{by_id[str(i)]}=="] for i in range(5)]


async def test_the_hash_of_a_refused_or_retried_call_is_kept_too() -> None:
    answers = iter([_xroad_fault("Server.ServerProxy.ServiceFailed"), SecurityServer.default])
    server = SecurityServer(lambda request: next(answers)(request))
    sink = Sink()
    await _connector(server, retries=1).fetch("InsuranceRecord", [PID], FIELDS, _with(sink))
    assert sink.hashes() == ["hash1==", "hash2=="]


async def test_a_malformed_request_hash_is_not_kept() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json=_record(PID), headers={"X-Road-Request-Hash": "not a hash\t"}
        )

    sink = Sink()
    await _connector(SecurityServer(answer)).fetch("InsuranceRecord", [PID], FIELDS, _with(sink))
    assert sink.items == []


async def test_keys_go_in_batches_of_the_manifest_size() -> None:
    server = SecurityServer()
    connector = _connector(server, max_size=2)
    keys = [f"0792030012{i:02d}" for i in range(5)]
    sink = Sink()
    found = await connector.fetch("InsuranceRecord", [*keys, keys[0]], FIELDS, _with(sink))
    assert set(found) == set(keys)
    assert [r.url.path for r in server.requests] == [f"{SERVICE}/tra-cuu"] * 3
    sizes = sorted(len(orjson.loads(r.content)["danh_sach"]) for r in server.requests)
    assert sizes == [1, 2, 2]
    assert all(r.headers["x-road-client"] == "VN/GOV/BCA/GATEWAY" for r in server.requests)
    assert sorted(sink.hashes()) == ["hash1==", "hash2==", "hash3=="]


def _xroad_fault(kind: str, *, status: int = 500, header: bool = True) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"X-Road-Error": kind} if header else {}
        body = {"type": kind, "message": "Lỗi của 079203001234", "detail": "x"}
        return httpx.Response(status, json=body, headers=headers)

    return answer


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("Server.ServerProxy.ServiceFailed", SourceUnavailable),
        ("Server.ServerProxy.ServiceFailed.InternalError", SourceUnavailable),
        ("Server.ClientProxy.NetworkError", SourceUnavailable),
        ("Server.ServerProxy.DatabaseError", SourceUnavailable),
        ("Server.ServerProxy.ServiceTimeout", SourceTimeout),
        ("Server.ClientProxy.Timeout", SourceTimeout),
        ("Server.ServerProxy.AccessDenied", SourceRejected),
        ("Server.ClientProxy.UnknownService", SourceRejected),
        ("Client.InvalidRequest", SourceRejected),
        ("Client.BadRequest", SourceRejected),
    ],
)
@pytest.mark.parametrize("header", [True, False], ids=["header", "body-only"])
async def test_xroad_errors_become_stable_gateway_errors(
    kind: str, error: type[Exception], header: bool
) -> None:
    server = SecurityServer(_xroad_fault(kind, header=header))
    connector = _connector(server)
    with pytest.raises(error) as caught:
        await connector.fetch("InsuranceRecord", [PID], FIELDS, CTX)
    assert caught.value.detail["xroad_error"] == kind  # type: ignore[attr-defined]
    # The source's message (which may name a person) is not passed on.
    assert "079203001234" not in str(caught.value.to_body())  # type: ignore[attr-defined]


async def test_an_xroad_error_on_a_success_status_is_still_an_error() -> None:
    server = SecurityServer(_xroad_fault("Server.ServerProxy.AccessDenied", status=200))
    with pytest.raises(SourceRejected):
        await _connector(server).fetch("InsuranceRecord", [PID], FIELDS, CTX)


async def test_a_retriable_xroad_error_is_retried() -> None:
    answers = iter([_xroad_fault("Server.ServerProxy.ServiceFailed"), SecurityServer.default])
    server = SecurityServer(lambda request: next(answers)(request))
    found = await _connector(server, retries=1).fetch("InsuranceRecord", [PID], FIELDS, CTX)
    assert found[PID] is not None
    assert len(server.requests) == 2


async def test_a_plain_5xx_and_404_keep_their_rest_meaning() -> None:
    plain = SecurityServer(lambda request: httpx.Response(503, text="busy"))
    with pytest.raises(SourceUnavailable) as caught:
        await _connector(plain).fetch("InsuranceRecord", [PID], FIELDS, CTX)
    assert "xroad_error" not in caught.value.detail
    missing = SecurityServer(lambda request: httpx.Response(404, json={"error": "none"}))
    found = await _connector(missing).fetch("InsuranceRecord", [PID], FIELDS, CTX)
    assert found.get(PID) is None


def test_an_error_type_that_is_not_an_identifier_is_not_echoed() -> None:
    error = xroad_error("Server.<script>", source="insurance")
    assert isinstance(error, SourceUnavailable)
    assert error.detail["xroad_error"] == "Unknown"


def test_the_rest_equivalent_keeps_everything_but_the_paths() -> None:
    manifest = _manifest()
    rest = manifest.rest_manifest()
    entity = rest.entities["InsuranceRecord"]
    assert rest.kind == "rest"
    assert entity.get == f"{SERVICE}/so/{{key}}"
    assert entity.batch is not None
    assert entity.batch.path == f"{SERVICE}/tra-cuu"
    assert rest.base_url == manifest.base_url
    assert rest.timeout_seconds == manifest.timeout_seconds
    assert manifest.with_endpoint("http://other.test:8080/").base_url == "http://other.test:8080"


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"client": "VN/GOV/BCA"}, "client"),
        ({"client": "VN/GOV/BCA/GATE WAY"}, "client"),
        ({"service": {"instance": "VN"}}, "service"),
    ],
)
def test_bad_xroad_settings_are_refused(change: dict[str, Any], where: str) -> None:
    data = _manifest().model_dump(by_alias=True, exclude_none=True)
    data.update(change)
    with pytest.raises(ValueError, match=where):
        parse_manifest(data)


def test_the_sandbox_manifest_loads() -> None:
    from pathlib import Path

    path = Path(__file__).parents[3] / "sandbox" / "manifests" / "insurance.yaml"
    try:
        manifest = load_manifest(path)
    except ManifestError as exc:  # pragma: no cover - shows the message
        pytest.fail(str(exc))
    assert isinstance(manifest, XroadManifest)
