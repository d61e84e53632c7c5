"""`stored:` secrets: named by a manifest, given as plain values to `build_registry`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from connectors import (
    SCHEMA_PATH,
    FetchContext,
    ManifestError,
    SecretRef,
    SecretUnavailable,
    build_registry,
    load_manifest,
)
from connectors._secrets import resolve, stored_refs
from schema import canonical_fields

VALUE = "st0red-VALUE-5e1"
CTX = FetchContext(request_id="req-1")
SANDBOX = Path(__file__).parents[3] / "sandbox" / "manifests"


def _write(tmp_path: Path, auth: dict[str, Any], name: str = "population") -> Path:
    document = {
        "name": name,
        "kind": "rest",
        "base_url": f"http://{name}.test",
        "timeout_seconds": 0.5,
        "retries": 0,
        "auth": auth,
        "entities": {
            "Citizen": {
                "key_field": "id",
                "get": "/v1/citizens/{key}",
                "fields": {"personalId": "id", "fullName": "name"},
            }
        },
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


API_KEY = {"type": "api_key", "header": "X-Api-Key", "key": {"ref": "stored:api-key"}}


class Source:
    def __init__(self) -> None:
        self.calls: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        key = request.url.path.rsplit("/", 1)[-1]
        return httpx.Response(200, json={"id": key, "name": f"Person {key}"})


@pytest.fixture
def source() -> Source:
    return Source()


@pytest.fixture
async def http(source: Source) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(source)) as client:
        yield client


def _build(path: Path, http: httpx.AsyncClient, stored: Any) -> Any:
    return build_registry(
        [load_manifest(path)], http=http, canonical=canonical_fields(), stored_secrets=stored
    )


@pytest.mark.parametrize("name", ["api-key", "client_secret", "tls.key", "K1"])
def test_a_stored_reference_names_a_secret(name: str) -> None:
    ref = SecretRef(ref=f"stored:{name}")
    assert (ref.provider, ref.name) == ("stored", name)


@pytest.mark.parametrize("ref", ["stored:", "stored:../x", "stored:a/b", "stored:-x", "stored:a b"])
def test_a_stored_reference_with_a_bad_name_is_refused(ref: str) -> None:
    with pytest.raises(ValidationError, match="stored"):
        SecretRef(ref=ref)


def test_the_manifest_schema_accepts_stored_references() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    ref = schema["$defs"]["SecretRef"]
    jsonschema.validate({"ref": "stored:api-key"}, ref)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"ref": "stored:../x"}, ref)


async def test_the_stored_value_is_sent_to_the_source(
    tmp_path: Path, http: httpx.AsyncClient, source: Source
) -> None:
    registry = _build(
        _write(tmp_path, API_KEY), http, {("population", "api-key"): VALUE, ("other", "x"): "no"}
    )
    [connector] = list(registry)
    await connector.fetch("Citizen", ["001"], frozenset({"fullName"}), CTX)
    assert [r.headers["x-api-key"] for r in source.calls] == [VALUE]
    # The registry's manifest reads its value but shows it nowhere.
    manifest = registry.manifests["population"]
    assert VALUE not in repr(manifest) + repr(connector) + str(manifest.model_dump())


async def test_stored_values_may_come_from_a_function(
    tmp_path: Path, http: httpx.AsyncClient, source: Source
) -> None:
    asked: list[tuple[str, str]] = []

    def lookup(connector: str, name: str) -> str | None:
        asked.append((connector, name))
        return VALUE

    [connector] = list(_build(_write(tmp_path, API_KEY), http, lookup))
    await connector.fetch("Citizen", ["001"], frozenset({"fullName"}), CTX)
    assert asked[0] == ("population", "api-key")
    assert source.calls[0].headers["x-api-key"] == VALUE


@pytest.mark.parametrize(
    "stored",
    [None, {}, {("business", "api-key"): VALUE}, {("population", "other"): VALUE}],
    ids=["not-loaded", "none", "another-connector", "another-name"],
)
async def test_a_stored_reference_with_no_value_names_its_field(
    tmp_path: Path, http: httpx.AsyncClient, stored: Any
) -> None:
    path = _write(tmp_path, API_KEY)
    with pytest.raises(ManifestError) as caught:
        _build(path, http, stored)
    message = str(caught.value)
    assert "auth.key.ref" in message
    assert "'stored:api-key'" in message
    assert "no value is stored for connector 'population'" in message
    assert str(path) in message
    assert VALUE not in message


async def test_a_missing_stored_database_password_fails_when_built(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    # A database connector reads its password when it first connects; a stored one
    # that is missing is reported when the registry is built all the same.
    document = yaml.safe_load((SANDBOX / "land.yaml").read_text(encoding="utf-8"))
    document["database"] = {
        "url": "postgresql://db.test/land",
        "user": "reader",
        "password": {"ref": "stored:db-password"},
    }
    path = tmp_path / "land.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ManifestError, match=r"database\.password\.ref: secret 'stored:db-pas"):
        _build(path, http, {})
    registry = _build(path, http, {("land", "db-password"): VALUE})
    assert [c.name for c in registry] == ["land"]


def test_stored_refs_finds_every_stored_reference(tmp_path: Path) -> None:
    auth = {**API_KEY, "key": {"ref": "env:SOURCE_X"}}
    assert stored_refs(load_manifest(_write(tmp_path, auth))) == []
    found = stored_refs(load_manifest(_write(tmp_path, API_KEY)))
    assert [(loc, ref.name) for loc, ref in found] == [(("auth", "key", "ref"), "api-key")]


def test_a_stored_reference_is_read_only_for_its_connector() -> None:
    with pytest.raises(SecretUnavailable, match="for its connector"):
        resolve(SecretRef(ref="stored:api-key"))
