"""The pages' languages: one catalogue, every label translated, the locale of a request."""

from __future__ import annotations

import ast
import hashlib
import re
from pathlib import Path

import httpx
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from graphql import GraphQLEnumType
from graphql import build_schema as build_sdl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.web import _i18n
from gateway.web._i18n import (
    enum_label,
    field_label,
    labels,
    legal_basis_text,
    locale_of,
    render,
    templates,
)
from gateway.web._labels import ENUM_LABELS, FIELD_LABELS, LEGAL_DOCUMENTS
from policies import LegalBasis, load_catalogue
from schema import SDL_PATH, canonical_fields

ROOT = Path(__file__).parents[4]
WEB = ROOT / "gateway" / "web"
VI_LETTER = re.compile(
    "[àáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵ]", re.IGNORECASE
)


def _vietnamese() -> dict[str, str]:
    path = WEB / "translations" / "vi" / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale="vi")
    translated: dict[str, str] = {}
    for message in catalog:
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [message.string] if isinstance(message.string, str) else [*(message.string or ())]
        if ids[0] and all(strings) and not message.fuzzy:
            translated[ids[0]] = strings[0]
    return translated


def test_every_canonical_field_has_a_vietnamese_label() -> None:
    translated = _vietnamese()
    paths = [f"{kind}.{field}" for kind, tree in canonical_fields().items() for field in tree]
    missing = [p for p in paths if p not in FIELD_LABELS or FIELD_LABELS[p] not in translated]
    assert missing == []
    assert field_label("Citizen.fullName", "vi") == "Họ, chữ đệm và tên"
    assert field_label("Citizen.fullName", "en") == "Full name"


def test_a_nested_field_reads_as_its_field_and_its_part() -> None:
    assert (
        field_label("Citizen.permanentResidence.wardName", "vi")
        == "Nơi thường trú \N{EN DASH} xã, phường"
    )
    assert field_label("Citizen.father.fullName", "en") == "Father \N{EN DASH} full name"
    assert field_label("Nowhere.field", "vi") == "Nowhere.field"


def test_every_enum_value_of_the_schema_has_a_vietnamese_label() -> None:
    translated = _vietnamese()
    sdl = build_sdl(SDL_PATH.read_text(encoding="utf-8"))
    enums = {
        name: [str(v) for v in t.values]
        for name, t in sdl.type_map.items()
        if isinstance(t, GraphQLEnumType) and not name.startswith("__")
    }
    assert {"Gender", "MaritalStatus", "SignatureStatus"} <= enums.keys()
    missing = [
        f"{name}.{value}"
        for name, values in enums.items()
        for value in values
        if ENUM_LABELS.get(name, {}).get(value) not in translated
    ]
    assert missing == []
    assert enum_label("Gender", "MALE", "vi") == "Nam"
    assert enum_label("Gender", "FEMALE", "vi") == "Nữ"
    assert enum_label("SignatureStatus", "VERIFIED", "vi") == "Đã xác thực chữ ký"
    assert enum_label("Gender", "MALE", "en") == "Male"
    assert enum_label("Gender", "OTHER", "vi") == "OTHER"


def test_every_legal_document_of_the_catalogue_has_a_vietnamese_title() -> None:
    translated = _vietnamese()
    documents = {b.document for p in load_catalogue() for b in p.legal_basis}
    assert documents
    assert sorted(d for d in documents if d not in LEGAL_DOCUMENTS or d not in translated) == []


def test_a_legal_basis_reads_in_vietnamese() -> None:
    basis = LegalBasis(
        document="Law on Identification No. 26/2023/QH15", article="Art. 9", note="content"
    )
    assert legal_basis_text(basis, "vi") == "Luật Căn cước số 26/2023/QH15, Điều 9"
    assert legal_basis_text(basis, "en") == (
        "Law on Identification No. 26/2023/QH15, Art. 9: content"
    )


def test_every_msgid_of_the_code_and_templates_has_a_vietnamese_translation() -> None:
    with (ROOT / "babel.cfg").open(encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)  # type: ignore[no-untyped-call]
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    found = {
        (message if isinstance(message, str) else message[0]): filename
        for filename, _line, message, _comments, _context in extract_from_dir(
            ROOT, method_map, options_map, keywords=keywords
        )
    }
    assert "Data-sharing gateway" in found
    translated = _vietnamese()
    assert (
        sorted(f"{where}: {msgid}" for msgid, where in found.items() if msgid not in translated)
        == []
    )


def _vietnamese_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        f"{path.name}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and VI_LETTER.search(node.value)
    ]


def test_no_vietnamese_text_outside_the_catalogue() -> None:
    """Pages say Vietnamese through the catalogue only, so English can replace all of it."""
    found = [
        str(p.relative_to(WEB))
        for p in [*WEB.glob("templates/**/*.html"), *WEB.glob("static/*.js")]
        if VI_LETTER.search(p.read_text(encoding="utf-8"))
    ]
    for name in ("_i18n.py", "_labels.py", "_query_page.py", "_citizen_pages.py"):
        if (WEB / name).exists():
            found += _vietnamese_literals(WEB / name)
    assert found == []


def _request(query: str = "", cookie: str | None = None) -> Request:
    headers = [(b"cookie", f"ngon-ngu={cookie}".encode())] if cookie else []
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "query_string": query.encode(),
            "headers": headers,
        }
    )


@pytest.mark.parametrize(
    ("query", "cookie", "expected"),
    [
        ("", None, "vi"),
        ("lang=en", None, "en"),
        ("", "en", "en"),
        ("lang=vi", "en", "vi"),
        ("lang=fr", "en", "en"),
        ("", "xx", "vi"),
    ],
)
def test_the_locale_is_the_query_then_the_cookie_then_vietnamese(
    query: str, cookie: str | None, expected: str
) -> None:
    assert locale_of(_request(query, cookie)) == expected


async def test_a_page_is_vietnamese_by_default_and_switches_to_english() -> None:
    async def page(request: Request) -> Response:
        return render(request, "base.html", {})

    app = Starlette(routes=[Route("/page", page)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as client:
        await _switches(client)


async def _switches(client: httpx.AsyncClient) -> None:
    vi = await client.get("/page?x=1")
    assert '<html lang="vi">' in vi.text
    assert "Cổng chia sẻ dữ liệu" in vi.text
    assert 'href="/page?x=1&amp;lang=en"' in vi.text
    assert "set-cookie" not in vi.headers
    assert "'unsafe-inline'" not in vi.headers["content-security-policy"]

    en = await client.get("/page?lang=en")
    assert '<html lang="en">' in en.text
    assert "Data-sharing gateway" in en.text
    assert "Cổng chia sẻ dữ liệu" not in en.text
    cookie = en.headers["set-cookie"].lower()
    assert cookie.startswith("ngon-ngu=en;")
    assert "samesite=lax" in cookie
    # The cookie keeps English for the next page.
    assert '<html lang="en">' in (await client.get("/page")).text
    assert '<html lang="vi">' in (await client.get("/page?lang=vi")).text


def test_templates_escape_what_they_are_given() -> None:
    rendered = templates.env.from_string("{{ x }} {{ 'Citizen.gender'|field_label }}").render(
        x="<script>", lang="vi"
    )
    assert rendered == "&lt;script&gt; Giới tính"


def test_the_labels_for_page_scripts_name_procedures_in_vietnamese() -> None:
    catalogue = load_catalogue()
    shown = labels("vi", catalogue.procedures)
    assert shown["enums"]["Gender"]["MALE"] == "Nam"
    assert shown["fields"]["Citizen.gender"] == "Giới tính"
    assert shown["procedures"]["1.001193"]["name"] == "Đăng ký khai sinh"
    assert labels("en", catalogue.procedures)["procedures"]["1.001193"]["name"] == (
        "Birth registration"
    )


def test_the_vendored_htmx_is_the_one_its_sums_name() -> None:
    vendor = WEB / "static" / "vendor" / "htmx"
    digest, name = (vendor / "SHA256SUMS").read_text().split()
    assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest
    assert (vendor / "LICENSE").exists()


def test_an_unknown_locale_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown locale"):
        _i18n.translations("fr")
