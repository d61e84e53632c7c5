"""Spans when tracing, nothing when not; a source call carries its span's traceparent."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from connectors import FetchContext, RestConnector, parse_manifest
from gateway import tracing
from gateway.errors import SourceUnavailable

AN = "079203001234"


def _connector(handler: httpx.MockTransport) -> RestConnector:
    manifest = parse_manifest(
        {
            "name": "population",
            "kind": "rest",
            "base_url": "http://population.test",
            "retries": 0,
            "entities": {
                "Citizen": {
                    "key_field": "so_dinh_danh",
                    "get": "/v1/cong-dan/{key}",
                    "fields": {"fullName": "ho_ten"},
                }
            },
        }
    )
    return RestConnector(manifest, http=httpx.AsyncClient(transport=handler))


def test_off_a_span_is_nothing() -> None:
    assert not tracing.enabled()
    with tracing.span("decisions", {"gateway.keys": 1}) as current:
        assert current is None
    headers: dict[str, str] = {}
    tracing.inject(headers)
    assert headers == {}


async def test_a_source_call_is_a_span_whose_traceparent_the_source_gets(
    spans: InMemorySpanExporter,
) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"so_dinh_danh": AN, "ho_ten": "An"})

    connector = _connector(httpx.MockTransport(answer))
    with tracing.request_span({}, {"http.route": "/graphql"}):
        await connector.fetch("Citizen", [AN], frozenset({"fullName"}), FetchContext("r-1"))
    call, request = spans.get_finished_spans()
    assert (call.name, request.name) == ("source_call", "request")
    assert call.parent is not None
    assert call.parent.span_id == request.context.span_id
    assert call.attributes == {
        "gateway.connector": "population",
        "gateway.route": "get",
        "gateway.outcome": "ok",
    }
    version, trace_id, span_id, _ = seen[0].headers["traceparent"].split("-")
    assert version == "00"
    assert (int(trace_id, 16), int(span_id, 16)) == (call.context.trace_id, call.context.span_id)


async def test_a_failed_call_says_its_code_and_the_error_type_only(
    spans: InMemorySpanExporter,
) -> None:
    connector = _connector(httpx.MockTransport(lambda r: httpx.Response(503)))
    with pytest.raises(SourceUnavailable):
        await connector.fetch("Citizen", [AN], frozenset({"fullName"}), FetchContext("r-2"))
    [call] = spans.get_finished_spans()
    assert call.attributes is not None
    assert call.attributes["gateway.outcome"] == "SOURCE_UNAVAILABLE"
    assert call.status.status_code is StatusCode.ERROR
    assert call.status.description == "SourceUnavailable"
    assert not call.events  # no exception recorded: its message could name a person


async def test_a_caller_trace_is_continued_and_a_bad_one_ignored(
    spans: InMemorySpanExporter,
) -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with tracing.request_span({"traceparent": parent}):
        pass
    with tracing.request_span({"traceparent": "00-zz-not-a-trace"}):
        pass
    continued, fresh = spans.get_finished_spans()
    assert continued.context.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736
    assert fresh.parent is None
