"""Signed digitized results: checked against the issuer's JWK set before they are served.

The sources are simulated with `httpx.MockTransport`; the documents are signed here as
an issuing registry signs them (compact JWS, EdDSA, `typ` `vn-document+jws`).
"""

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jws
from joserfc.jwk import OKPKey
from pydantic import ValidationError

from connectors import (
    FetchContext,
    GraphqlConnector,
    ManifestError,
    RestConnector,
    RestManifest,
    check_manifest,
    parse_manifest,
)
from connectors._registry import ConnectorRegistry
from gateway.errors import DocumentSignatureInvalid, SourceUnavailable
from keys import eddsa_allowed
from policies import Purpose
from schema import canonical_fields

AN = "079203001234"
CTX = FetchContext(
    request_id="req-docs-1",
    client_id="VN/GOV/BTNMT/VPDKDD",
    purpose=Purpose("1.013831", "HS-2026/CN-1", "Cán bộ Lê Văn Tâm", (AN,)),
)
COVERS = ["so", "loai", "ten", "co_quan", "ngay_cap", "nguoi", "sha256"]
FIELDS: dict[str, Any] = {
    "documentId": "so",
    "kind": {"from": "loai", "values": {"KET_HON": "MARRIAGE_CERTIFICATE"}},
    "title": "ten",
    "issuer": "co_quan",
    "issuedOn": "ngay_cap",
    "sha256": "sha256",
}
ALL = frozenset({*FIELDS, "signature"})


class Registry:
    """An issuing registry: its keys, its stored documents, its JWK set."""

    def __init__(self) -> None:
        self.keys = [OKPKey.import_key(Ed25519PrivateKey.generate())]
        self.published = list(self.keys)
        self.files: dict[str, bytes] = {}
        self.documents: dict[str, dict[str, Any]] = {}
        self.jwks_calls = 0

    @staticmethod
    def kid(key: OKPKey) -> str:
        return str(key.thumbprint())

    def issue(
        self, number: str, *, key: OKPKey | None = None, typ: str = "vn-document+jws"
    ) -> None:
        file = f"GIAY CHUNG NHAN KET HON {number}".encode()
        record: dict[str, Any] = {
            "so": number,
            "loai": "KET_HON",
            "ten": "Giấy chứng nhận kết hôn",
            "co_quan": "UBND phường Bến Nghé",
            "ngay_cap": "2019-05-20",
            "nguoi": [AN, "079199004321"],
            "sha256": hashlib.sha256(file).hexdigest(),
        }
        key = key or self.keys[-1]
        header = {"alg": "EdDSA", "kid": self.kid(key), "typ": typ}
        payload = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
        with eddsa_allowed():
            token = jws.serialize_compact(header, payload, key, algorithms=["EdDSA"])
        self.files[number] = file
        self.documents[number] = {**record, "chu_ky": token, "ghi_chu": "not signed"}

    def served(self, number: str) -> dict[str, Any]:
        """The record as the registry serves it now: the hash of the file it holds now."""
        return {
            **self.documents[number],
            "sha256": hashlib.sha256(self.files[number]).hexdigest(),
        }

    def jwks(self) -> dict[str, Any]:
        self.jwks_calls += 1
        return {
            "keys": [
                {**k.as_dict(private=False), "kid": self.kid(k), "alg": "EdDSA", "use": "sig"}
                for k in self.published
            ]
        }


def _rest_manifest(**signature: Any) -> RestManifest:
    manifest = parse_manifest(
        {
            "name": "civil",
            "kind": "rest",
            "base_url": "http://civil.test",
            "retries": 0,
            "entities": {
                "Document": {
                    "key_field": "so",
                    "get": "/giay-to/{key}",
                    "fields_param": "truong",
                    "lists": {"holder": {"get": "/nguoi/{key}/giay-to", "list_field": "ket_qua"}},
                    "fields": FIELDS,
                    "signature": {
                        "field": "chu_ky",
                        "covers": COVERS,
                        "jwks": "/.well-known/jwks.json",
                        **signature,
                    },
                }
            },
        }
    )
    assert isinstance(manifest, RestManifest)
    return manifest


def _rest_source(registry: Registry, seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if path == "/.well-known/jwks.json":
            return httpx.Response(200, json=registry.jwks())
        if path.startswith("/giay-to/"):
            number = path.rsplit("/", 1)[1]
            if number not in registry.documents:
                return httpx.Response(404)
            return httpx.Response(200, json=registry.served(number))
        if path == f"/nguoi/{AN}/giay-to":
            return httpx.Response(
                200, json={"ket_qua": [registry.served(n) for n in registry.documents]}
            )
        return httpx.Response(404)

    return httpx.MockTransport(handle)


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    registry.issue("KH-2019-01")
    registry.issue("KH-2019-02")
    return registry


async def _fetch(
    registry: Registry, fields: frozenset[str] = ALL, **signature: Any
) -> tuple[list[Any], list[httpx.Request]]:
    seen: list[httpx.Request] = []
    async with httpx.AsyncClient(transport=_rest_source(registry, seen)) as http:
        connector = RestConnector(_rest_manifest(**signature), http=http)
        await connector.open()
        out = await connector.fetch("Document", [AN], fields, CTX, by="holder")
    return list(out[AN] or []), seen


def _withheld(record: dict[str, Any], reason: str) -> None:
    assert record["signature"]["status"] in {"INVALID", "UNKNOWN_KEY"}
    for name in FIELDS:
        error = record[name]
        assert isinstance(error, DocumentSignatureInvalid), name
        assert error.code == "DOCUMENT_SIGNATURE_INVALID"
        assert error.detail["reason"] == reason


async def test_a_document_as_signed_is_served_with_its_verified_signature(
    registry: Registry,
) -> None:
    records, _ = await _fetch(registry)
    first = records[0]
    assert first["documentId"] == "KH-2019-01"
    assert first["kind"] == "MARRIAGE_CERTIFICATE"
    assert first["sha256"] == hashlib.sha256(registry.files["KH-2019-01"]).hexdigest()
    assert first["signature"] == {
        "status": "VERIFIED",
        "keyId": Registry.kid(registry.keys[0]),
        "algorithm": "EdDSA",
    }


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("file", "content"),
        ("metadata", "content"),
        ("signed_list", "content"),
        ("signature", "signature"),
        ("unsigned", "unsigned"),
        ("garbage", "malformed"),
    ],
)
async def test_a_document_changed_by_one_byte_is_withheld(
    registry: Registry, tamper: str, reason: str
) -> None:
    number = "KH-2019-02"
    document = registry.documents[number]
    if tamper == "file":
        file = bytearray(registry.files[number])
        file[-1] ^= 0x01
        registry.files[number] = bytes(file)
    elif tamper == "metadata":
        document["co_quan"] = document["co_quan"].replace("Bến", "Bên")
    elif tamper == "signed_list":
        document["nguoi"] = [AN]
    elif tamper == "signature":
        head, payload, signature = document["chu_ky"].split(".")
        flipped = ("A" if signature[5] != "A" else "B") + signature[6:]
        document["chu_ky"] = f"{head}.{payload}.{signature[:5]}{flipped}"
    elif tamper == "unsigned":
        del document["chu_ky"]
    else:
        document["chu_ky"] = "not-a-jws"
    records, _ = await _fetch(registry)
    assert records[0]["signature"]["status"] == "VERIFIED"  # the other one is untouched
    _withheld(records[1], reason)


async def test_a_token_of_another_type_signed_by_the_same_key_is_not_a_document(
    registry: Registry,
) -> None:
    registry.issue("KH-2019-02", typ="at+jwt")
    records, _ = await _fetch(registry)
    _withheld(records[1], "header")


async def test_a_key_the_issuer_does_not_publish_is_unknown_and_fetched_for_once(
    registry: Registry,
) -> None:
    stranger = OKPKey.import_key(Ed25519PrivateKey.generate())
    registry.issue("KH-2019-02", key=stranger)
    records, seen = await _fetch(registry)
    assert records[1]["signature"] == {
        "status": "UNKNOWN_KEY",
        "keyId": Registry.kid(stranger),
        "algorithm": "EdDSA",
    }
    _withheld(records[1], "unknown_key")
    # Fetched when opening, and once more for the unknown key: not once per record.
    assert [r.url.path for r in seen].count("/.well-known/jwks.json") == 2


async def test_a_key_rolled_over_is_followed(registry: Registry) -> None:
    seen: list[httpx.Request] = []
    async with httpx.AsyncClient(transport=_rest_source(registry, seen)) as http:
        connector = RestConnector(_rest_manifest(), http=http)
        await connector.open()
        # The registry publishes a new key and signs with it after the gateway read its set.
        registry.keys.append(OKPKey.import_key(Ed25519PrivateKey.generate()))
        registry.published = list(registry.keys)
        registry.issue("KH-2020-03")
        out = await connector.fetch("Document", [AN], ALL, CTX, by="holder")
    statuses = [r["signature"]["status"] for r in out[AN] or []]
    assert statuses == ["VERIFIED", "VERIFIED", "VERIFIED"]


async def test_a_key_withdrawn_from_the_set_stops_verifying_after_the_refresh(
    registry: Registry,
) -> None:
    seen: list[httpx.Request] = []
    async with httpx.AsyncClient(transport=_rest_source(registry, seen)) as http:
        connector = RestConnector(_rest_manifest(refresh_seconds=10), http=http)
        await connector.open()
        registry.published = []
        first = await connector.fetch("Document", [AN], ALL, CTX, by="holder")
        entity = connector._entities["Document"]
        assert entity.signatures is not None
        entity.signatures._fetched_at -= 11  # the keys are older than refresh_seconds
        second = await connector.fetch("Document", [AN], ALL, CTX, by="holder")
    assert {r["signature"]["status"] for r in first[AN] or []} == {"VERIFIED"}
    assert {r["signature"]["status"] for r in second[AN] or []} == {"UNKNOWN_KEY"}


async def test_without_the_issuers_keys_the_lookup_fails_as_unavailable(
    registry: Registry,
) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/jwks.json":
            return httpx.Response(503)
        return httpx.Response(200, json={"ket_qua": [registry.served("KH-2019-01")]})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
        connector = RestConnector(_rest_manifest(), http=http)
        with pytest.raises(SourceUnavailable) as opened:
            await connector.open()
        with pytest.raises(SourceUnavailable):
            await connector.fetch("Document", [AN], ALL, CTX, by="holder")
    assert opened.value.detail["reason"] == "jwks"


async def test_the_covered_fields_are_read_whatever_is_asked(registry: Registry) -> None:
    records, seen = await _fetch(registry, frozenset({"documentId"}))
    asked = next(r for r in seen if r.url.path.startswith("/nguoi/")).url.params["truong"]
    assert set(asked.split(",")) == {*COVERS, "chu_ky"}
    assert records[0] == {"documentId": "KH-2019-01"}  # checked, and only what was asked


async def test_a_key_set_in_a_file_next_to_the_manifest(registry: Registry, tmp_path: Path) -> None:
    (tmp_path / "civil.jwks.json").write_bytes(orjson.dumps(registry.jwks()))
    (tmp_path / "civil.yaml").write_text(
        orjson.dumps(
            {
                **_rest_manifest().model_dump(mode="json", by_alias=True, exclude_none=True),
                "entities": {
                    "Document": {
                        **_rest_manifest()
                        .entities["Document"]
                        .model_dump(mode="json", by_alias=True, exclude_none=True),
                        "signature": {
                            "field": "chu_ky",
                            "covers": COVERS,
                            "jwks": "file:civil.jwks.json",
                        },
                    }
                },
            }
        ).decode()
    )
    from connectors import load_manifest

    manifest = load_manifest(tmp_path / "civil.yaml")

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path != "/.well-known/jwks.json"
        return httpx.Response(200, json={"ket_qua": [registry.served("KH-2019-01")]})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
        connector = RestConnector(manifest, http=http)  # type: ignore[arg-type]
        await connector.open()
        out = await connector.fetch("Document", [AN], ALL, CTX, by="holder")
    assert [r["signature"]["status"] for r in out[AN] or []] == ["VERIFIED"]


async def test_graphql_sources_select_the_covered_fields_and_are_checked(
    registry: Registry,
) -> None:
    documents: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/jwks.json":
            return httpx.Response(200, json=registry.jwks())
        body = orjson.loads(request.content)
        documents.append(body["query"])
        items = [registry.served(n) for n in registry.documents]
        return httpx.Response(200, json={"data": {"k0": items}})

    manifest = parse_manifest(
        {
            "name": "civil",
            "kind": "graphql",
            "base_url": "http://civil.test",
            "retries": 0,
            "entities": {
                "Document": {
                    "key_field": "so",
                    "lists": {"holder": {"field": "giayToTheoNguoi", "argument": "soDinhDanh"}},
                    "fields": FIELDS,
                    "signature": {
                        "field": "chu_ky",
                        "covers": COVERS,
                        "jwks": "http://keys.test/.well-known/jwks.json",
                    },
                }
            },
        }
    )
    registry.files["KH-2019-02"] += b" "
    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
        connector = GraphqlConnector(manifest, http=http)  # type: ignore[arg-type]
        await connector.open()
        out = await connector.fetch(
            "Document", [AN], frozenset({"title", "signature"}), CTX, by="holder"
        )
    for name in [*COVERS, "chu_ky"]:
        assert f" {name}" in documents[0]
    first, second = out[AN] or []
    assert first["title"] == "Giấy chứng nhận kết hôn"
    assert first["signature"]["status"] == "VERIFIED"
    assert second["signature"]["status"] == "INVALID"
    assert isinstance(second["title"], DocumentSignatureInvalid)


def _bad(**changes: Any) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "key_field": "so",
        "get": "/giay-to/{key}",
        "fields": FIELDS,
        "signature": {"field": "chu_ky", "covers": COVERS, "jwks": "/jwks.json"},
    }
    entity.update(changes)
    return {
        "name": "civil",
        "kind": "rest",
        "base_url": "http://civil.test",
        "entities": {"Document": entity},
    }


@pytest.mark.parametrize(
    ("entity", "kind", "message"),
    [
        (
            {"fields": {**FIELDS, "validUntil": "het_han"}},
            "Document",
            "the signature does not cover: het_han",
        ),
        ({"fields": {**FIELDS, "title": {"expr": "@"}}}, "Document", "whole record"),
        ({}, "Citizen", "carry no `signature` field"),
    ],
)
def test_a_signed_entity_maps_only_signed_fields_of_a_kind_that_has_a_signature(
    entity: dict[str, Any], kind: str, message: str
) -> None:
    data = _bad(**entity)
    if kind != "Document":
        data["entities"] = {kind: {**data["entities"]["Document"], "fields": {"personalId": "so"}}}
    with pytest.raises(ManifestError, match="signature") as caught:
        check_manifest(parse_manifest(data), canonical_fields())
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        ({"field": "sha256"}, "cannot be among those it covers"),
        ({"covers": ["so", "so"]}, "named once"),
        ({"covers": []}, "at least 1"),
        ({"jwks": "ftp://keys"}, "http(s) URL"),
        ({"jwks": "//keys.test/jwks"}, "one '/'"),
    ],
)
def test_a_malformed_signature_section_is_refused(signature: dict[str, Any], message: str) -> None:
    data = _bad()
    data["entities"]["Document"]["signature"].update(signature)
    with pytest.raises(ValidationError) as caught:
        parse_manifest(data)
    assert message in str(caught.value)


def test_the_sql_kind_refuses_a_signature() -> None:
    with pytest.raises(ValidationError, match="HTTP kinds"):
        parse_manifest(
            {
                "name": "civil",
                "kind": "sql",
                "database": {"url": "sqlite:///civil.db"},
                "entities": {
                    "Document": {
                        "table": "giay_to",
                        "key_field": "so",
                        "fields": {"documentId": "so"},
                        "signature": {"field": "chu_ky", "covers": ["so"], "jwks": "/j"},
                    }
                },
            }
        )


def test_a_holders_list_is_read_from_every_source_that_lists_the_kind() -> None:
    def manifest(
        name: str, fields: dict[str, Any], priority: int, holders: tuple[str, ...]
    ) -> RestManifest:
        made = parse_manifest(
            {
                "name": name,
                "kind": "rest",
                "base_url": f"http://{name}.test",
                "priority": priority,
                "entities": {
                    "Document": {
                        "key_field": "so",
                        "get": "/d/{key}",
                        "lists": {"holder": {"get": "/h/{key}", "holders": list(holders)}},
                        "fields": fields,
                    }
                },
            }
        )
        assert isinstance(made, RestManifest)
        return made

    make: Callable[[RestManifest], RestConnector] = lambda m: RestConnector(  # noqa: E731
        m, http=httpx.AsyncClient()
    )
    civil = manifest("civil", {"documentId": "so", "kind": "loai", "title": "ten"}, 10, ("person",))
    business = manifest(
        "business", {"documentId": "so", "kind": "loai"}, 20, ("person", "enterprise")
    )
    registry = ConnectorRegistry([(civil, make(civil)), (business, make(business))])
    asked = frozenset({"documentId", "title", "validUntil"})
    listed = registry.route("Document", asked, "holder")
    assert [(c.name, sorted(f)) for c, f in listed.served] == [
        ("civil", ["documentId", "title"]),
        ("business", ["documentId"]),
    ]
    assert listed.unserved == {"validUntil"}
    # An enterprise's list is not asked of a source that lists people's records only.
    enterprise = registry.route("Document", asked, "holder", "enterprise")
    assert [(c.name, sorted(f)) for c, f in enterprise.served] == [("business", ["documentId"])]
    assert enterprise.unserved == {"title", "validUntil"}
    person = registry.route("Document", asked, "holder", "person")
    assert [c.name for c, _ in person.served] == ["civil", "business"]
    # By key, one connector per field still: the lowest priority number.
    by_key = registry.route("Document", asked)
    assert [(c.name, sorted(f)) for c, f in by_key.served] == [("civil", ["documentId", "title"])]


async def test_concurrent_lookups_share_one_fetch_of_the_keys(registry: Registry) -> None:
    seen: list[httpx.Request] = []
    source = _rest_source(registry, seen)

    async def slowly(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)  # the lookups meet while the keys are on their way
        return source.handler(request)  # type: ignore[return-value]

    async with httpx.AsyncClient(transport=httpx.MockTransport(slowly)) as http:
        connector = RestConnector(_rest_manifest(), http=http)
        await asyncio.gather(
            *(connector.fetch("Document", [AN], ALL, CTX, by="holder") for _ in range(8))
        )
    assert [r.url.path for r in seen].count("/.well-known/jwks.json") == 1


async def test_keys_that_cannot_be_fetched_are_not_asked_for_at_every_lookup(
    registry: Registry,
) -> None:
    asked = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/jwks.json":
            asked.append(request)
            return httpx.Response(503)
        return httpx.Response(200, json={"ket_qua": [registry.served("KH-2019-01")]})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
        connector = RestConnector(_rest_manifest(), http=http)
        for _ in range(3):
            with pytest.raises(SourceUnavailable):
                await connector.fetch("Document", [AN], ALL, CTX, by="holder")
    assert len(asked) == 1  # the next try waits a few seconds
