"""A manifest an agency gets wrong stops at load, naming the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors import ManifestError, check_manifest, load_manifest
from schema import canonical_fields

REST = """\
name: population
kind: rest
base_url: http://127.0.0.1:8101
timeout_seconds: 2
auth:
  type: api_key
  key: {ref: "env:SOURCE_POPULATION_KEY"}
tables:
  sexes: {M: MALE}
entities:
  Citizen:
    key_field: so_dinh_danh
    get: /v1/cong-dan/{key}
    fields:
      personalId: so_dinh_danh
      fullName: {expr: "concat(ho, ' ', ten)"}
      gender: {expr: "lookup(gioi_tinh, 'sexes')"}
"""

SQL = """\
name: land
kind: sql
database:
  url: sqlite:///var/land.db
  password: {ref: "env:SOURCE_LAND_PASSWORD"}
entities:
  LandParcel:
    table: thua_dat
    key_field: ma_thua
    children:
      chu_su_dung: {table: chu_su_dung, match: {ma_thua: ma_thua}}
    lists:
      holder: {column: ma_dinh_danh, through: chu_su_dung}
    fields:
      parcelId: ma_thua
"""


def _load(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agency.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _line(text: str, fragment: str) -> int:
    [line] = [i for i, t in enumerate(text.splitlines(), 1) if fragment in t]
    return line


@pytest.mark.parametrize("text", [REST, SQL])
def test_the_good_manifests_load(tmp_path: Path, text: str) -> None:
    manifest = load_manifest(_load(tmp_path, text))
    check_manifest(manifest, canonical_fields())


@pytest.mark.parametrize(
    ("base", "old", "new", "field", "message"),
    [
        (REST, "kind: rest", "kind: soap", "kind", "unknown kind 'soap'; the kinds are rest, sql"),
        (REST, "base_url: http://127.0.0.1:8101", "base_url: 127.0.0.1:8101", "base_url", "URL"),
        (
            REST,
            "base_url: http://127.0.0.1:8101",
            "base_url: http://user:pw@127.0.0.1:8101",
            "base_url",
            "without credentials",
        ),
        (REST, "timeout_seconds: 2", "timeout_seconds: -1", "timeout_seconds", "greater than 0"),
        (
            REST,
            "fullName: {expr: \"concat(ho, ' ', ten)\"}",
            "fullName: {expr: \"concat(ho, ' ', ten\"}",
            "entities.Citizen.fields.fullName.expr",
            "does not parse",
        ),
        (
            REST,
            "fullName: {expr: \"concat(ho, ' ', ten)\"}",
            'fullName: {expr: "shell(ho)"}',
            "entities.Citizen.fields.fullName.expr",
            "unknown function shell()",
        ),
        (
            REST,
            'key: {ref: "env:SOURCE_POPULATION_KEY"}',
            'key: "0c1a9e-inline-secret"',
            "auth.key",
            "a secret is named, never written",
        ),
        (
            REST,
            'key: {ref: "env:SOURCE_POPULATION_KEY"}',
            'key: {ref: "vault:population"}',
            "auth.key.ref",
            'give "env:SOURCE_NAME", "file:PATH" or "stored:NAME"',
        ),
        (
            REST,
            'key: {ref: "env:SOURCE_POPULATION_KEY"}',
            'key: {ref: "env:GATEWAY_METRICS_TOKEN"}',
            "auth.key.ref",
            "starts with SOURCE_",
        ),
        (
            REST,
            'key: {ref: "env:SOURCE_POPULATION_KEY"}',
            'key: {ref: "file:../keys/pseudonyms"}',
            "auth.key.ref",
            "relative to the manifest's folder and stays in it",
        ),
        (
            REST,
            'key: {ref: "env:SOURCE_POPULATION_KEY"}',
            'key: {ref: "file:/srv/var/keys/pseudonyms"}',
            "auth.key.ref",
            "relative to the manifest's folder and stays in it",
        ),
        (
            SQL,
            "table: thua_dat",
            'table: "thua_dat; DROP TABLE thua_dat"',
            "entities.LandParcel.table",
            "not a plain name",
        ),
        (
            SQL,
            "key_field: ma_thua",
            'key_field: "ma_thua OR 1=1"',
            "entities.LandParcel.key_field",
            "not a plain name",
        ),
        (
            SQL,
            "holder: {column: ma_dinh_danh, through: chu_su_dung}",
            'holder: {column: "ma_dinh_danh--", through: chu_su_dung}',
            "entities.LandParcel.lists.holder.column",
            "not a plain name",
        ),
        (
            SQL,
            "url: sqlite:///var/land.db",
            "url: postgresql://land:hunter2@db.internal/land",
            "database.url",
            "not in the URL",
        ),
        (
            SQL,
            'password: {ref: "env:SOURCE_LAND_PASSWORD"}',
            "password: hunter2",
            "database.password",
            "a secret is named, never written",
        ),
        (SQL, "url: sqlite:///var/land.db", "url: mysql://db/land", "database.url", "sqlite"),
    ],
)
def test_a_bad_manifest_names_file_line_and_field(
    tmp_path: Path, base: str, old: str, new: str, field: str, message: str
) -> None:
    assert old in base
    text = base.replace(old, new)
    path = _load(tmp_path, text)
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    error = caught.value
    assert error.path == str(path)
    assert error.line == _line(text, new)
    assert f": {field}: " in str(error)
    assert message in str(error)
    assert "hunter2" not in str(error)
    assert "0c1a9e-inline-secret" not in str(error)


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ("fullName: {expr", "shoeSize: {expr", "entities.Citizen.fields.shoeSize", "canonical"),
        ("  Citizen:", "  Spaceship:", "entities.Spaceship", "not a canonical entity kind"),
        (
            "lookup(gioi_tinh, 'sexes')",
            "lookup(gioi_tinh, 'genders')",
            "entities.Citizen.fields.gender.expr",
            "no table 'genders'",
        ),
    ],
)
def test_a_field_the_schema_lacks_names_file_line_and_field(
    tmp_path: Path, old: str, new: str, field: str, message: str
) -> None:
    text = REST.replace(old, new)
    path = _load(tmp_path, text)
    manifest = load_manifest(path)
    with pytest.raises(ManifestError) as caught:
        check_manifest(manifest, canonical_fields())
    assert caught.value.path == str(path)
    assert caught.value.line == _line(text, new)
    assert f": {field}: " in str(caught.value)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("source", "own"),
    [
        ("sqlite:///var/gateway.db", "sqlite+aiosqlite:///var/gateway.db"),
        ("sqlite:///var/../var/gateway.db", "sqlite+aiosqlite:///var/gateway.db"),
        (
            "postgresql://db.internal:5432/gateway",
            "postgresql+asyncpg://gateway:pw@db.internal/gateway",
        ),
    ],
)
async def test_a_source_cannot_be_the_gateways_own_database(
    tmp_path: Path, source: str, own: str
) -> None:
    import httpx

    from connectors import build_registry

    text = SQL.replace("url: sqlite:///var/land.db", f"url: {source}")
    path = _load(tmp_path, text)
    async with httpx.AsyncClient() as http:
        with pytest.raises(ManifestError) as caught:
            build_registry(
                [load_manifest(path)], http=http, canonical=canonical_fields(), reserved=[own]
            )
        # Another database is a source like any.
        other = own.replace("gateway.db", "land.db").replace("/gateway", "/land")
        build_registry(
            [load_manifest(path)], http=http, canonical=canonical_fields(), reserved=[other]
        )
    assert caught.value.line == _line(text, "url:")
    assert "the gateway's own database" in str(caught.value)
