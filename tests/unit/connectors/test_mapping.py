"""Field mappings: a source record in its own names becomes a canonical record."""

from typing import Any

import pytest

from connectors import parse_manifest
from connectors._mapping import compile_fields, map_record
from gateway.errors import SourceDataInvalid


def _fields(fields: dict[str, Any]) -> dict[str, Any]:
    """A `fields` table as the manifest parses it."""
    manifest = parse_manifest(
        {
            "name": "population",
            "kind": "rest",
            "base_url": "http://x",
            "entities": {"Citizen": {"key_field": "id", "get": "/{key}", "fields": fields}},
        }
    )
    return dict(manifest.entities["Citizen"].fields)


def _map(fields: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    mappers = compile_fields(_fields(fields), source="population")
    return map_record(mappers.values(), record)


def test_plain_name_is_renamed() -> None:
    assert _map({"fullName": "ho_ten"}, {"ho_ten": "Nguyễn Văn An"}) == {
        "fullName": "Nguyễn Văn An"
    }


def test_only_mapped_fields_are_kept() -> None:
    assert _map({"fullName": "ho_ten"}, {"ho_ten": "An", "mat_khau": "x"}) == {"fullName": "An"}


def test_missing_source_field_is_none() -> None:
    assert _map({"fullName": "ho_ten"}, {}) == {"fullName": None}


def test_null_source_field_is_none() -> None:
    assert _map({"fullName": "ho_ten"}, {"ho_ten": None}) == {"fullName": None}


def test_dotted_path_reads_inside_an_object() -> None:
    record = {"nguoi_dai_dien": {"chuc_danh": "Giám đốc"}}
    assert _map({"title": "nguoi_dai_dien.chuc_danh"}, record) == {"title": "Giám đốc"}


def test_dotted_path_through_a_missing_or_scalar_parent_is_none() -> None:
    fields = {"title": "nguoi_dai_dien.chuc_danh"}
    assert _map(fields, {}) == {"title": None}
    assert _map(fields, {"nguoi_dai_dien": None}) == {"title": None}
    assert _map(fields, {"nguoi_dai_dien": "Giám đốc"}) == {"title": None}


def test_source_root_is_the_first_part_of_the_path() -> None:
    mappers = compile_fields(_fields({"title": "nguoi_dai_dien.chuc_danh"}), source="s")
    assert mappers["title"].source_roots == {"nguoi_dai_dien"}


def test_value_table_translates_values() -> None:
    fields = {"gender": {"from": "gioi_tinh", "values": {"Nam": "MALE", "Nữ": "FEMALE"}}}
    assert _map(fields, {"gioi_tinh": "Nữ"}) == {"gender": "FEMALE"}


def test_value_table_matches_non_text_values_by_their_text() -> None:
    fields = {"status": {"from": "tt", "values": {"1": "ACTIVE", "2": "DISSOLVED"}}}
    assert _map(fields, {"tt": 2}) == {"status": "DISSOLVED"}


def test_unknown_value_makes_only_that_field_invalid() -> None:
    fields = {
        "fullName": "ho_ten",
        "gender": {"from": "gioi_tinh", "values": {"Nam": "MALE"}},
    }
    out = _map(fields, {"ho_ten": "An", "gioi_tinh": "Khác"})
    assert out["fullName"] == "An"
    assert isinstance(out["gender"], SourceDataInvalid)
    assert out["gender"].detail == {"source": "population", "field": "gender"}


def test_unknown_value_error_does_not_repeat_the_value() -> None:
    fields = {"gender": {"from": "gioi_tinh", "values": {"Nam": "MALE"}}}
    error = _map(fields, {"gioi_tinh": "Giá-trị-lạ"})["gender"]
    assert "Giá-trị-lạ" not in str(error)
    assert "Giá-trị-lạ" not in repr(error.extensions)


def test_nested_object_is_mapped() -> None:
    fields = {"ethnicity": {"from": "dan_toc", "fields": {"code": "ma", "name": "ten"}}}
    record = {"dan_toc": {"ma": "01", "ten": "Kinh", "khac": 1}}
    assert _map(fields, record) == {"ethnicity": {"code": "01", "name": "Kinh"}}


def test_list_of_objects_is_mapped_item_by_item() -> None:
    fields = {"children": {"from": "con", "fields": {"fullName": "ho_ten"}}}
    record = {"con": [{"ho_ten": "An"}, {"ho_ten": "Bình"}]}
    assert _map(fields, record) == {"children": [{"fullName": "An"}, {"fullName": "Bình"}]}


def test_nested_mapping_inside_nested_mapping() -> None:
    fields = {
        "household": {
            "from": "ho",
            "fields": {
                "members": {
                    "from": "thanh_vien",
                    "fields": {"person": {"from": "cong_dan", "fields": {"fullName": "ho_ten"}}},
                }
            },
        }
    }
    record = {"ho": {"thanh_vien": [{"cong_dan": {"ho_ten": "An"}}]}}
    assert _map(fields, record) == {"household": {"members": [{"person": {"fullName": "An"}}]}}


def test_null_nested_object_is_none() -> None:
    fields = {"father": {"from": "cha", "fields": {"fullName": "ho_ten"}}}
    assert _map(fields, {"cha": None}) == {"father": None}


def test_scalar_where_an_object_is_expected_makes_the_field_invalid() -> None:
    fields = {"fullName": "ho_ten", "father": {"from": "cha", "fields": {"fullName": "ho_ten"}}}
    out = _map(fields, {"ho_ten": "An", "cha": "Nguyễn Văn Ba"})
    assert out["fullName"] == "An"
    assert isinstance(out["father"], SourceDataInvalid)
    assert "Nguyễn Văn Ba" not in str(out["father"])


def test_bad_value_inside_a_nested_object_stays_on_the_inner_field() -> None:
    fields = {
        "father": {
            "from": "cha",
            "fields": {"fullName": "ho_ten", "gender": {"from": "gt", "values": {"Nam": "MALE"}}},
        }
    }
    out = _map(fields, {"cha": {"ho_ten": "Ba", "gt": "?"}})
    assert out["father"]["fullName"] == "Ba"
    assert isinstance(out["father"]["gender"], SourceDataInvalid)


@pytest.mark.parametrize("value", [0, False, ""])
def test_falsy_values_are_kept(value: Any) -> None:
    assert _map({"x": "y"}, {"y": value}) == {"x": value}
