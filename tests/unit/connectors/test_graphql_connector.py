"""The `graphql` connector against a GraphQL source simulated with `httpx.MockTransport`."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import graphql
import httpx
import orjson
import pytest

from connectors import (
    FetchContext,
    GraphqlConnector,
    GraphqlManifest,
    ManifestError,
    load_manifest,
    parse_manifest,
)
from gateway.errors import SourceDataInvalid, SourceRejected, SourceUnavailable
from policies import Purpose

Handler = Callable[[httpx.Request], httpx.Response]

P1, P2, P3 = "00004-12-101", "00004-12-102", "00007-3-5"
AN = "079203001234"
CTX = FetchContext(
    request_id="req-graphql-1",
    client_id="VN/GOV/BTP/HTTP",
    purpose=Purpose("1.004222", "HS-2026/Đăng ký", "Cán bộ Lê Văn Tâm", (AN,)),
)
RECORDS: dict[str, dict[str, Any]] = {
    P1: {
        "ma_thua": P1,
        "dien_tich": 120.5,
        "muc_dich": "ODT",
        "gcn": {"so_seri": "AA 1", "ngay_cap": "2015-06-01"},
        "chu": [{"ma_dinh_danh": AN, "ho_ten": "Nguyễn Văn An"}],
    },
    P2: {"ma_thua": P2, "dien_tich": 500.0, "muc_dich": "LUC", "gcn": None, "chu": []},
}
FIELDS: dict[str, Any] = {
    "parcelId": "ma_thua",
    "areaM2": "dien_tich",
    "landUse": {"expr": "lookup(muc_dich, 'uses')"},
    "certificateSerial": "gcn.so_seri",
    "holders": {"from": "chu", "fields": {"personalId": "ma_dinh_danh", "fullName": "ho_ten"}},
}


def _manifest(*, batch: bool = True, **entity: Any) -> GraphqlManifest:
    spec: dict[str, Any] = {
        "key_field": "ma_thua",
        "query_field": "thuaDat",
        "key_argument": "maThua",
        "lists": {"holder": {"field": "thuaDatTheoChu", "argument": "maDinhDanh"}},
        "fields": FIELDS,
        **entity,
    }
    if batch:
        spec |= {"batch_field": "thuaDats", "batch_argument": "maThuas"}
    manifest = parse_manifest(
        {
            "name": "land-graphql",
            "kind": "graphql",
            "base_url": "http://land.test",
            "retries": 0,
            "timeout_seconds": 1,
            "tables": {"uses": {"ODT": "Đất ở", "LUC": "Đất lúa"}},
            "entities": {"LandParcel": spec},
        }
    )
    assert isinstance(manifest, GraphqlManifest)
    return manifest


def _pick(record: dict[str, Any] | None, selection: graphql.SelectionSetNode) -> Any:
    if record is None:
        return None
    out: dict[str, Any] = {}
    for node in selection.selections:
        assert isinstance(node, graphql.FieldNode)
        value = record.get(node.name.value)
        if node.selection_set is not None and value is not None:
            sub = node.selection_set
            value = [_pick(v, sub) for v in value] if isinstance(value, list) else _pick(value, sub)
        out[node.name.value] = value
    return out


class Upstream:
    """A GraphQL source answering from RECORDS with what each document selects."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.handler = handler or self.default

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def bodies(self) -> list[dict[str, Any]]:
        return [orjson.loads(r.content) for r in self.requests]

    @staticmethod
    def default(request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        document = graphql.parse(body["query"])
        variables = body["variables"]
        [operation] = document.definitions
        assert isinstance(operation, graphql.OperationDefinitionNode)
        data: dict[str, Any] = {}
        for root in operation.selection_set.selections:
            assert isinstance(root, graphql.FieldNode)
            assert root.selection_set is not None
            [argument] = root.arguments
            assert isinstance(argument.value, graphql.VariableNode)  # never a literal key
            value = variables[argument.value.name.value]
            alias = root.alias.value if root.alias else root.name.value
            sub = root.selection_set
            if root.name.value == "thuaDat":
                data[alias] = _pick(RECORDS.get(value), sub)
            elif root.name.value == "thuaDats":
                data[alias] = [_pick(RECORDS[k], sub) for k in value if k in RECORDS]
            else:
                held = [
                    r for r in RECORDS.values() if any(c["ma_dinh_danh"] == value for c in r["chu"])
                ]
                data[alias] = [_pick(r, sub) for r in held]
        return httpx.Response(200, json={"data": data})


def _selected(document: str) -> set[str]:
    names: set[str] = set()

    class Visitor(graphql.Visitor):
        def enter_field(self, node: graphql.FieldNode, *_args: Any) -> None:
            names.add(node.name.value)

    graphql.visit(graphql.parse(document), Visitor())
    return names


def _connector(upstream: Upstream, **settings: Any) -> GraphqlConnector:
    http = httpx.AsyncClient(transport=httpx.MockTransport(upstream))
    return GraphqlConnector(_manifest(**settings), http=http)


async def test_the_document_asks_only_the_fields_requested_with_the_key_as_a_variable() -> None:
    upstream = Upstream()
    found = await _connector(upstream).fetch(
        "LandParcel", [P1], frozenset({"areaM2", "certificateSerial"}), CTX
    )
    assert found[P1] == {"areaM2": 120.5, "certificateSerial": "AA 1"}
    [request] = upstream.requests
    assert request.method == "POST"
    assert request.url == "http://land.test/graphql"
    assert request.headers["content-type"] == "application/json"
    [body] = upstream.bodies()
    assert set(body) == {"query", "variables"}
    assert P1 not in body["query"]  # the key travels as a variable
    assert body["variables"] == {"k0": P1}
    assert "gcn { so_seri }" in body["query"]
    # The key field to match the answer; ho_ten, muc_dich, ngay_cap were not asked for.
    assert _selected(body["query"]) == {"thuaDat", "ma_thua", "dien_tich", "gcn", "so_seri"}


async def test_purpose_headers_are_sent() -> None:
    upstream = Upstream()
    await _connector(upstream).fetch("LandParcel", [P1], frozenset({"parcelId"}), CTX)
    headers = upstream.requests[0].headers
    assert headers["x-road-id"] == "req-graphql-1"
    assert headers["x-road-client"] == "VN/GOV/BTP/HTTP"
    assert headers["x-road-userid"] == "C%C3%A1n%20b%E1%BB%99%20L%C3%AA%20V%C4%83n%20T%C3%A2m"


async def test_nested_lists_and_computed_fields_are_mapped() -> None:
    upstream = Upstream()
    found = await _connector(upstream).fetch("LandParcel", [P1, P2], frozenset(FIELDS), CTX)
    assert found[P1] == {
        "parcelId": P1,
        "areaM2": 120.5,
        "landUse": "Đất ở",
        "certificateSerial": "AA 1",
        "holders": [{"personalId": AN, "fullName": "Nguyễn Văn An"}],
    }
    assert found[P2]["certificateSerial"] is None  # type: ignore[index]
    assert "chu { ho_ten ma_dinh_danh }" in upstream.bodies()[0]["query"]


async def test_a_batch_of_keys_is_one_call_to_the_batch_field() -> None:
    upstream = Upstream()
    found = await _connector(upstream).fetch(
        "LandParcel", [P1, P2, "00001-1-1", P1], frozenset({"parcelId"}), CTX
    )
    assert {k for k, v in found.items() if v is not None} == {P1, P2}
    [body] = upstream.bodies()
    assert "thuaDats(maThuas: $keys)" in body["query"]
    assert body["variables"] == {"keys": [P1, P2, "00001-1-1"]}


async def test_without_a_batch_field_keys_are_aliased_in_one_call() -> None:
    upstream = Upstream()
    found = await _connector(upstream, batch=False).fetch(
        "LandParcel", [P1, P2, "00001-1-1"], frozenset({"areaM2"}), CTX
    )
    assert found[P1] == {"areaM2": 120.5}
    assert found[P2] == {"areaM2": 500.0}
    assert found["00001-1-1"] is None
    [body] = upstream.bodies()
    assert body["variables"] == {"k0": P1, "k1": P2, "k2": "00001-1-1"}
    assert "k2: thuaDat(maThua: $k2)" in body["query"]


async def test_batches_split_past_max_batch() -> None:
    upstream = Upstream()
    await _connector(upstream, max_batch=2).fetch(
        "LandParcel", [P1, P2, P3], frozenset({"parcelId"}), CTX
    )
    assert len(upstream.requests) == 2


async def test_lists_by_holder_are_one_call_for_all_holders() -> None:
    upstream = Upstream()
    found = await _connector(upstream).fetch(
        "LandParcel", [AN, "001185000777"], frozenset({"parcelId"}), CTX, by="holder"
    )
    assert found[AN] == [{"parcelId": P1}]
    assert found["001185000777"] == []
    [body] = upstream.bodies()
    assert "thuaDatTheoChu(maDinhDanh: $k0)" in body["query"]
    assert body["variables"] == {"k0": AN, "k1": "001185000777"}


def _errors(*errors: dict[str, Any], data: Any = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": data, "errors": list(errors)})

    return handler


def _error(code: str | None, path: list[Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": "secret upstream text: table thua_dat_2026 locked"}
    if code is not None:
        error["extensions"] = {"code": code}
    if path is not None:
        error["path"] = path
    return error


async def test_a_not_found_error_is_a_record_not_found() -> None:
    handler = _errors(_error("NOT_FOUND", ["k0"]), data={"k0": None})
    found = await _connector(Upstream(handler), batch=False).fetch(
        "LandParcel", [P3], frozenset({"parcelId"}), CTX
    )
    assert found[P3] is None


@pytest.mark.parametrize("code", ["UNAUTHENTICATED", "FORBIDDEN", "forbidden"])
async def test_a_refusal_is_source_rejected(code: str) -> None:
    handler = _errors(_error(code, ["k0"]))
    with pytest.raises(SourceRejected) as caught:
        await _connector(Upstream(handler), batch=False).fetch(
            "LandParcel", [P1], frozenset({"parcelId"}), CTX
        )
    assert "secret upstream text" not in str(caught.value)
    assert "secret upstream text" not in repr(caught.value.detail)


async def test_another_error_on_a_record_makes_that_record_invalid_only() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        data = {"k0": {"ma_thua": P1, "dien_tich": 120.5}, "k1": None}
        return httpx.Response(
            200, json={"data": data, "errors": [_error("INTERNAL_SERVER_ERROR", ["k1", "x"])]}
        )

    found = await _connector(Upstream(handler), batch=False).fetch(
        "LandParcel", [P1, P2], frozenset({"areaM2"}), CTX
    )
    assert found[P1] == {"areaM2": 120.5}
    error = found[P2]["areaM2"]  # type: ignore[index]
    assert isinstance(error, SourceDataInvalid)
    assert error.detail["graphql_error"] == "INTERNAL_SERVER_ERROR"
    assert "secret upstream text" not in str(error) + repr(error.detail)


async def test_an_error_in_a_batch_names_its_record() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        data = {"batch": [{"ma_thua": P1, "dien_tich": 1.0}, {"ma_thua": P2, "dien_tich": None}]}
        return httpx.Response(200, json={"data": data, "errors": [_error(None, ["batch", 1])]})

    found = await _connector(Upstream(handler)).fetch(
        "LandParcel", [P1, P2], frozenset({"areaM2"}), CTX
    )
    assert found[P1] == {"areaM2": 1.0}
    assert isinstance(found[P2]["areaM2"], SourceDataInvalid)  # type: ignore[index]


async def test_no_data_is_source_unavailable_without_the_upstream_message() -> None:
    handler = _errors(_error("INTERNAL_SERVER_ERROR"))
    with pytest.raises(SourceUnavailable) as caught:
        await _connector(Upstream(handler)).fetch(
            "LandParcel", [P1, P2], frozenset({"parcelId"}), CTX
        )
    assert "secret upstream text" not in str(caught.value) + repr(caught.value.detail)


async def test_a_record_for_another_key_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": {"k0": {"ma_thua": P2}}})

    with pytest.raises(SourceDataInvalid):
        await _connector(Upstream(handler), batch=False).fetch(
            "LandParcel", [P1], frozenset({"parcelId"}), CTX
        )


async def test_select_gives_the_sub_selection_of_an_object_an_expression_reads() -> None:
    upstream = Upstream()
    fields = {**FIELDS, "certificate": {"expr": "join(' / ', [gcn.so_seri, gcn.ngay_cap])"}}
    connector = _connector(upstream, fields=fields, select={"gcn": "{ so_seri ngay_cap }"})
    found = await connector.fetch("LandParcel", [P1], frozenset({"certificate"}), CTX)
    assert found[P1] == {"certificate": "AA 1 / 2015-06-01"}
    assert "gcn { so_seri ngay_cap }" in upstream.bodies()[0]["query"]


# -- manifests refused at load --------------------------------------------------------

MANIFEST = """\
name: land-graphql
kind: graphql
base_url: http://land.test
entities:
  LandParcel:
    key_field: ma_thua
    query_field: thuaDat
    key_argument: maThua
    fields:
      parcelId: ma_thua
      certificate: {expr: "to_string(gcn_so)"}
"""


def test_the_manifest_loads(tmp_path: Path) -> None:
    path = tmp_path / "land.yaml"
    path.write_text(MANIFEST)
    manifest = load_manifest(path)
    assert isinstance(manifest, GraphqlManifest)
    assert manifest.endpoint_path == "/graphql"


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ("key_argument: maThua", "key_argument: ma-thua", "key_argument", "not a GraphQL name"),
        ("query_field: thuaDat", "query_field: 1thuaDat", "query_field", "not a GraphQL name"),
        ("key_field: ma_thua", "key_field: ma thua", "key_field", "not a GraphQL name"),
        (
            '{expr: "to_string(gcn_so)"}',
            '{expr: "to_string(gcn.so_seri)"}',
            "entities.LandParcel",
            "write the sub-fields to ask for in `select`",
        ),
        (
            '{expr: "to_string(gcn_so)"}',
            '{expr: "to_string(@)"}',
            "entities.LandParcel",
            "whole record (@)",
        ),
        (
            "    key_argument: maThua\n",
            "    key_argument: maThua\n    select: {gcn: '{ so_seri ...F }'}\n",
            "select",
            "without variables, fragments",
        ),
        (
            "    key_argument: maThua\n",
            "    key_argument: maThua\n    select: {gcn: '{ so_seri '}\n",
            "select",
            "not a GraphQL selection",
        ),
        ("    key_argument: maThua\n", "", "entities.LandParcel", "together"),
    ],
)
def test_a_bad_manifest_names_file_line_and_field(
    tmp_path: Path, old: str, new: str, field: str, message: str
) -> None:
    assert old in MANIFEST
    text = MANIFEST.replace(old, new)
    path = tmp_path / "land.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    error = caught.value
    assert error.path == str(path)
    assert error.line is not None
    assert field in str(error)
    assert message in str(error)
