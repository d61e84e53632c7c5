"""Loading connector manifests: valid files load, broken ones name their file and line."""

from pathlib import Path
from textwrap import dedent

import orjson
import pytest

from connectors import ManifestError, load_manifest, load_manifests, parse_manifest

SANDBOX_MANIFESTS = Path(__file__).parents[3] / "sandbox" / "manifests"

VALID = """\
name: population
kind: rest
base_url: http://127.0.0.1:8101/
entities:
  Citizen:
    key_field: so_dinh_danh
    get: /v1/cong-dan/{key}
    fields:
      personalId: so_dinh_danh
      fullName: ho_ten
"""


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(dedent(text), encoding="utf-8")
    return path


def _error(path: Path) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    return caught.value


def test_valid_yaml_manifest_loads(tmp_path: Path) -> None:
    manifest = load_manifest(_write(tmp_path, "population.yaml", VALID))
    assert manifest.name == "population"
    assert manifest.kind == "rest"
    assert manifest.entities["Citizen"].fields["fullName"] == "ho_ten"


def test_trailing_slash_of_base_url_is_dropped(tmp_path: Path) -> None:
    manifest = load_manifest(_write(tmp_path, "population.yaml", VALID))
    assert manifest.base_url == "http://127.0.0.1:8101"


def test_defaults_apply_when_not_given(tmp_path: Path) -> None:
    manifest = load_manifest(_write(tmp_path, "population.yaml", VALID))
    assert (manifest.timeout_seconds, manifest.retries, manifest.priority) == (2.0, 1, 100)
    assert manifest.health_path == "/healthz"


def test_valid_json_manifest_loads(tmp_path: Path) -> None:
    data = {
        "name": "registry",
        "kind": "rest",
        "base_url": "https://registry.example",
        "entities": {
            "Business": {
                "key_field": "mst",
                "batch": {"path": "/lookup", "keys_field": "ids", "results_field": "items"},
                "fields": {"name": "ten", "status": {"from": "tt", "values": {"1": "ACTIVE"}}},
            }
        },
    }
    path = tmp_path / "registry.json"
    path.write_bytes(orjson.dumps(data))
    manifest = load_manifest(path)
    assert manifest.name == "registry"
    assert manifest.entities["Business"].batch is not None
    assert manifest.entities["Business"].batch.max_size == 50


@pytest.mark.parametrize("name", ["business.yaml", "population.yaml"])
def test_sandbox_manifests_load(name: str) -> None:
    manifest = load_manifest(SANDBOX_MANIFESTS / name)
    assert manifest.name == name.removesuffix(".yaml")
    assert manifest.kind == "rest"


def test_sandbox_manifests_share_anchored_shapes() -> None:
    manifest = load_manifest(SANDBOX_MANIFESTS / "population.yaml")
    citizen = manifest.entities["Citizen"].fields
    household = manifest.entities["Household"].fields
    assert citizen["household"].fields == household  # type: ignore[union-attr]


def test_load_manifests_reads_every_manifest_sorted_by_file_name() -> None:
    manifests = load_manifests(SANDBOX_MANIFESTS)
    assert [m.name for m in manifests] == [
        "business",
        "civil",
        "dossiers",
        "insurance",
        "land",
        "population",
    ]


def test_load_manifests_ignores_other_files(tmp_path: Path) -> None:
    _write(tmp_path, "b.yml", VALID.replace("name: population", "name: second"))
    _write(tmp_path, "a.yaml", VALID)
    _write(tmp_path, "README.md", "# not a manifest\n")
    assert [m.name for m in load_manifests(tmp_path)] == ["population", "second"]


def test_load_manifests_of_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ManifestError) as caught:
        load_manifests(missing)
    assert caught.value.path == str(missing)


def test_duplicate_names_across_files_name_the_second_file(tmp_path: Path) -> None:
    first = _write(tmp_path, "a.yaml", VALID)
    second = _write(tmp_path, "b.yaml", VALID)
    with pytest.raises(ManifestError) as caught:
        load_manifests(tmp_path)
    assert caught.value.path == str(second)
    assert str(first) in str(caught.value)
    assert "'population'" in str(caught.value)


def test_top_level_x_keys_are_ignored(tmp_path: Path) -> None:
    text = VALID + "x-notes:\n  owner: C06\n  shapes: [1, 2]\n"
    assert load_manifest(_write(tmp_path, "m.yaml", text)).name == "population"


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "gone.yaml"
    error = _error(missing)
    assert error.path == str(missing)
    assert str(error).startswith(f"{missing}: ")


def test_bad_yaml_syntax_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.yaml", "name: population\nkind: [rest\nbase_url: http://x\n")
    error = _error(path)
    assert error.path == str(path)
    assert error.line is not None
    assert 2 <= error.line <= 4
    assert str(error).startswith(f"{path}:{error.line}: not valid YAML")


def test_bad_json_syntax_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.json", '{\n  "name": "population",\n  oops\n}\n')
    error = _error(path)
    assert (error.path, error.line) == (str(path), 3)
    assert "not valid JSON" in str(error)


def test_not_a_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.yaml", "- population\n- business\n")
    error = _error(path)
    assert (error.path, error.line) == (str(path), 1)
    assert "mapping" in str(error)


def test_unknown_top_level_key_points_at_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.yaml", VALID.replace("kind: rest\n", "kind: rest\ncolour: red\n"))
    error = _error(path)
    assert (error.path, error.line) == (str(path), 3)
    assert "colour" in str(error)


def test_unknown_nested_key_points_at_the_key(tmp_path: Path) -> None:
    text = VALID.replace("    key_field:", "    colour: red\n    key_field:")
    error = _error(_write(tmp_path, "m.yaml", text))
    assert error.line == 6
    assert "entities.Citizen.colour" in str(error)


def test_negative_timeout_points_at_its_line(tmp_path: Path) -> None:
    text = VALID.replace("kind: rest\n", "kind: rest\ntimeout_seconds: -1\n")
    error = _error(_write(tmp_path, "m.yaml", text))
    assert error.line == 3
    assert "timeout_seconds" in str(error)


def test_entity_without_endpoint_points_at_the_entity(tmp_path: Path) -> None:
    text = VALID.replace("    get: /v1/cong-dan/{key}\n", "")
    error = _error(_write(tmp_path, "m.yaml", text))
    # The `Citizen:` key (line 5) or the first line of its body (line 6).
    assert error.line in {5, 6}
    assert "entities.Citizen" in str(error)
    assert "`get`" in str(error)


def test_get_path_without_key_points_at_the_get_line(tmp_path: Path) -> None:
    text = VALID.replace("/v1/cong-dan/{key}", "/v1/cong-dan")
    error = _error(_write(tmp_path, "m.yaml", text))
    assert error.line == 7
    assert "{key}" in str(error)


def test_values_and_fields_together_point_at_the_field(tmp_path: Path) -> None:
    text = VALID + (
        "      gender:\n"
        "        from: gioi_tinh\n"
        "        values: {Nam: MALE}\n"
        "        fields: {code: ma}\n"
    )
    error = _error(_write(tmp_path, "m.yaml", text))
    # The `gender:` key (line 11) or the first line of its body (line 12).
    assert error.line in {11, 12}
    assert "entities.Citizen.fields.gender" in str(error)


def test_values_and_fields_together_say_why(tmp_path: Path) -> None:
    text = VALID + (
        "      gender:\n"
        "        from: gioi_tinh\n"
        "        values: {Nam: MALE}\n"
        "        fields: {code: ma}\n"
    )
    error = _error(_write(tmp_path, "m.yaml", text))
    assert "not both" in str(error)


def test_bad_base_url_points_at_its_line(tmp_path: Path) -> None:
    text = VALID.replace("http://127.0.0.1:8101/", "ftp://127.0.0.1")
    error = _error(_write(tmp_path, "m.yaml", text))
    assert error.line == 3
    assert "base_url" in str(error)


def test_bad_base_url_in_json_points_at_its_line(tmp_path: Path) -> None:
    text = (
        "{\n"
        '  "name": "population",\n'
        '  "kind": "rest",\n'
        '  "base_url": "ftp://127.0.0.1",\n'
        '  "entities": {"Citizen": {"key_field": "id", "get": "/{key}", "fields": {"a": "b"}}}\n'
        "}\n"
    )
    error = _error(_write(tmp_path, "m.json", text))
    assert (error.path, error.line) == (str(tmp_path / "m.json"), 4)


def test_bad_name_is_rejected(tmp_path: Path) -> None:
    error = _error(_write(tmp_path, "m.yaml", VALID.replace("name: population", "name: Pop!")))
    assert error.line == 1


@pytest.mark.parametrize("name", ["population\n", "population\n\n"])
def test_a_name_with_a_trailing_newline_is_rejected(name: str) -> None:
    # `$` matches before a final newline: the name is checked whole.
    with pytest.raises(ValueError, match="a name is"):
        parse_manifest(
            {
                "name": name,
                "kind": "rest",
                "base_url": "http://x",
                "entities": {
                    "Citizen": {"key_field": "id", "get": "/{key}", "fields": {"gender": "g"}}
                },
            }
        )


def test_bad_source_path_is_rejected() -> None:
    with pytest.raises(ValueError, match="source field path"):
        parse_manifest(
            {
                "name": "population",
                "kind": "rest",
                "base_url": "http://x",
                "entities": {
                    "Citizen": {
                        "key_field": "id",
                        "get": "/{key}",
                        "fields": {"gender": {"from": "gioi tinh"}},
                    }
                },
            }
        )


def test_manifest_without_entities_is_rejected(tmp_path: Path) -> None:
    text = "name: population\nkind: rest\nbase_url: http://x\nentities: {}\n"
    error = _error(_write(tmp_path, "m.yaml", text))
    assert "at least one entity" in str(error)
