"""Where a manifest's source is, as an organisation's authority names it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors import parse_manifest
from gateway.errors import InvalidManifest
from gateway.web._connector_authority import source_address


def _rest(base_url: str) -> Any:
    return parse_manifest(
        {
            "name": "test",
            "kind": "rest",
            "base_url": base_url,
            "entities": {
                "Citizen": {
                    "key_field": "id",
                    "get": "/c/{key}",
                    "fields": {"fullName": "ten"},
                }
            },
        }
    )


def _sql(url: str) -> Any:
    return parse_manifest(
        {
            "name": "test",
            "kind": "sql",
            "database": {"url": url},
            "entities": {
                "LandParcel": {"table": "t", "key_field": "k", "fields": {"parcelId": "k"}}
            },
        }
    )


@pytest.mark.parametrize(
    ("url", "names", "local"),
    [
        ("https://api.example.vn/v1", {"api.example.vn", "api.example.vn:443"}, False),
        ("http://api.example.vn:8080", {"api.example.vn", "api.example.vn:8080"}, False),
        ("http://127.0.0.1:8101", {"127.0.0.1", "127.0.0.1:8101"}, True),
        ("http://127.9.9.9", {"127.9.9.9", "127.9.9.9:80"}, True),
        ("http://LOCALHOST:1", {"localhost", "localhost:1"}, True),
        ("http://[::1]:8000", {"::1", "[::1]:8000"}, True),
        ("http://0.0.0.0:8000", {"0.0.0.0", "0.0.0.0:8000"}, True),  # nosec B104
    ],
)
def test_an_http_source_is_named_by_host_and_by_host_and_port(
    url: str, names: set[str], local: bool
) -> None:
    address = source_address(_rest(url))
    assert address.field == "base_url"
    assert address.names() == names
    assert address.local is local


def test_a_database_is_named_by_its_host_and_a_sqlite_file_by_its_path(tmp_path: Path) -> None:
    remote = source_address(_sql("postgresql://db.dat-dai.vn/land"))
    assert remote.field == "database.url"
    assert remote.names() == {"db.dat-dai.vn", "db.dat-dai.vn:5432"}
    assert remote.local is False
    assert source_address(_sql("postgresql://127.0.0.1:5433/land")).local is True
    file = source_address(_sql(f"sqlite:///{tmp_path / 'x' / '..' / 'land.db'}"))
    assert file.names() == {f"sqlite:///{(tmp_path / 'land.db').resolve()}"}
    assert file.local is True


def test_a_refusal_names_the_field() -> None:
    error = InvalidManifest("manifest 'x': base_url: no", field="base_url")
    assert error.http_status == 422
    assert error.to_body() == {
        "code": "INVALID_MANIFEST",
        "message": "manifest 'x': base_url: no",
        "detail": {"field": "base_url"},
    }
