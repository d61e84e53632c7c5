"""X-Road style headers: the purpose percent-encoded as UTF-8, read back by any decoder."""

from __future__ import annotations

from urllib.parse import unquote, unquote_plus

import httpx
import pytest

from connectors import FetchContext, RestConnector, header_value, parse_manifest, purpose_headers
from policies import Purpose

VIETNAMESE = [
    "Nguyễn Văn An",
    "HS-2026/Đắk Lắk-000123 (hồ sơ thường trú)",
    "Trần Thị Ánh Tuyết",
    "cán bộ 👩‍💼",
    "100% xong; a+b=c, 'quoted' \"double\" <x> {y} [z] | ^ ` \\ # ?",
]


def _field_value_ok(value: str) -> bool:
    """Visible ASCII only (RFC 9110 field-value), no spaces at all: nothing to trim or split."""
    return all(0x21 <= ord(c) <= 0x7E for c in value)


@pytest.mark.parametrize("text", VIETNAMESE)
def test_round_trip_through_percent_decoding(text: str) -> None:
    value = header_value(text)
    assert _field_value_ok(value)
    assert unquote(value, errors="strict") == text
    assert unquote_plus(value, errors="strict") == text


def test_vietnamese_is_utf8_percent_encoded() -> None:
    assert header_value("Nguyễn Văn An") == "Nguy%E1%BB%85n%20V%C4%83n%20An"


@pytest.mark.parametrize(
    "text", ["officer-7", "VN/GOV/000.00.00.H29/dichvucong", "VN:canbo-0002", "1.004222/HS-1"]
)
def test_ascii_identifiers_go_out_unchanged(text: str) -> None:
    assert header_value(text) == text


def test_percent_and_plus_are_encoded_so_every_decoder_agrees() -> None:
    assert header_value("%41 a+b") == "%2541%20a%2Bb"
    assert unquote(header_value("%41 a+b")) == "%41 a+b"
    assert unquote_plus(header_value("%41 a+b")) == "%41 a+b"


def test_crlf_cannot_start_another_header() -> None:
    value = header_value("can-bo-7\r\nX-Road-Client: VN/GOV/X/Y")
    assert "\r" not in value
    assert "\n" not in value
    assert _field_value_ok(value)


def test_purpose_headers_encode_every_value() -> None:
    purpose = Purpose("1.004222", "HS-2026/Đắk Lắk", "Nguyễn Văn An", ("079203001234",))
    ctx = FetchContext(request_id="req-1", client_id="VN/GOV/BTP/một-cửa", purpose=purpose)
    headers = purpose_headers(ctx)
    assert headers == {
        "X-Road-Id": "req-1",
        "X-Road-Client": "VN/GOV/BTP/m%E1%BB%99t-c%E1%BB%ADa",
        "X-Road-UserId": "Nguy%E1%BB%85n%20V%C4%83n%20An",
        "X-Road-Issue": "HS-2026/%C4%90%E1%BA%AFk%20L%E1%BA%AFk",
    }
    assert {name: unquote(value) for name, value in headers.items()} == {
        "X-Road-Id": "req-1",
        "X-Road-Client": "VN/GOV/BTP/một-cửa",
        "X-Road-UserId": "Nguyễn Văn An",
        "X-Road-Issue": "HS-2026/Đắk Lắk",
    }


async def test_a_vietnamese_purpose_reaches_the_source_over_http() -> None:
    seen: list[httpx.Request] = []

    def source(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"so_dinh_danh": "079203001234", "ho_ten": "An"})

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
                    "fields": {"personalId": "so_dinh_danh", "fullName": "ho_ten"},
                }
            },
        }
    )
    purpose = Purpose("1.004222", "HS-2026/Hồ sơ 1", "Nguyễn Văn An", ("079203001234",))
    ctx = FetchContext(request_id="req-7", client_id="VN/GOV/BTP/HTTP", purpose=purpose)
    async with httpx.AsyncClient(transport=httpx.MockTransport(source)) as http:
        found = await RestConnector(manifest, http=http).fetch(
            "Citizen", ["079203001234"], frozenset({"fullName"}), ctx
        )
    assert found == {"079203001234": {"fullName": "An"}}
    headers = seen[0].headers
    assert unquote(headers["X-Road-UserId"], errors="strict") == "Nguyễn Văn An"
    assert unquote(headers["X-Road-Issue"], errors="strict") == "HS-2026/Hồ sơ 1"
