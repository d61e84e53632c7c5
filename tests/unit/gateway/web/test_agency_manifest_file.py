"""A manifest file sent through the agency admin's page becomes the JSON the API takes,
or an `InvalidManifest` naming where it is wrong; its times read in Vietnam's time."""

from __future__ import annotations

import pytest

from gateway.errors import GatewayError, InvalidManifest
from gateway.web._agency_console import MAX_MANIFEST_BYTES, read_manifest, when

YAML = b"""\
# a comment
name: thu
kind: rest
x-note: the author's own
defaults: &d {timeout: 2}
a: *d
b: *d
since: 2025-01-31
"""


def test_yaml_becomes_json_data_with_aliases_written_out_and_dates_as_text() -> None:
    data = read_manifest(YAML)
    assert data == {
        "name": "thu",
        "kind": "rest",
        "defaults": {"timeout": 2},
        "a": {"timeout": 2},
        "b": {"timeout": 2},
        "since": "2025-01-31",
    }


def test_a_json_manifest_is_read_as_it_is() -> None:
    assert read_manifest(b'{"name": "thu", "kind": "sql"}') == {"name": "thu", "kind": "sql"}


def test_a_yaml_syntax_error_names_its_line_and_column() -> None:
    with pytest.raises(InvalidManifest) as caught:
        read_manifest(b"name: thu\nkind: [sql\nentities: {}\n")
    assert caught.value.code == "INVALID_MANIFEST"
    assert str(caught.value.detail["field"]).startswith("line ")


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"- a\n- b\n", "(top)"),
        (b"just text\n", "(top)"),
        (b"   \n", "file"),
        ("name: thu".encode("utf-16"), "file"),
    ],
)
def test_what_is_not_a_manifest_is_refused_naming_where(content: bytes, field: str) -> None:
    with pytest.raises(InvalidManifest) as caught:
        read_manifest(content)
    assert caught.value.detail["field"] == field


def test_a_file_larger_than_256_kib_is_refused() -> None:
    with pytest.raises(GatewayError) as caught:
        read_manifest(b"#" * (MAX_MANIFEST_BYTES + 1))
    assert caught.value.code == "PAYLOAD_TOO_LARGE"


def test_aliases_that_expand_beyond_measure_are_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    lines.append("name: thu")
    with pytest.raises(InvalidManifest) as caught:
        read_manifest("\n".join(lines).encode())
    assert caught.value.detail["field"] == "(top)"


def test_instants_read_in_vietnams_time() -> None:
    assert when("2026-12-06T13:12:17.800248Z") == "20:12, 06/12/2026"
    assert when(None) == "-"
    assert when("not a time") == "not a time"


@pytest.mark.parametrize(
    "content",
    [
        b"name: x\n200: ok\n",  # a key that is not text
        b"headers: {true: 1}\n",
        b"n: 99999999999999999999999\n",  # beyond 64 bits
        b"a: " + b"[" * 300 + b"]" * 300 + b"\n",  # deeper than JSON goes
        b"a: " + b"[" * 3000 + b"]" * 3000 + b"\n",  # deeper than the YAML reader goes
    ],
)
def test_what_json_cannot_carry_is_refused_not_a_crash(content: bytes) -> None:
    with pytest.raises(InvalidManifest) as refused:
        read_manifest(content)
    assert refused.value.code == "INVALID_MANIFEST"
