"""The sign-in pages' pieces that need no issuer: where `next` may lead, the pages' policy."""

from __future__ import annotations

import pytest

from gateway.web._browser_signin import safe_next
from gateway.web._middleware import _with_html_headers, html_policy


@pytest.mark.parametrize(
    "target",
    ["/toi", "/toi/truy-cap/abc?x=1", "/dang-nhap/phien?muc=2", "/toi/d%C3%B2ng"],
)
def test_a_path_of_this_site_is_kept(target: str) -> None:
    assert safe_next(target) == target


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "//evil.test/x",
        "/\\evil.test",
        "https://evil.test/",
        "javascript:alert(1)",
        "toi",
        "/toi\nSet-Cookie: x=1",
        "/" + "a" * 600,
    ],
)
def test_anything_else_goes_to_the_citizen_pages(target: str | None) -> None:
    assert safe_next(target) == "/toi"


def test_the_policy_lets_forms_go_to_the_issuer_only() -> None:
    policy = html_policy("https://sso.vneid.gov.vn/oidc")
    assert "form-action 'self' https://sso.vneid.gov.vn;" in policy
    assert "script-src 'self';" in policy
    assert "'unsafe-inline'" not in policy
    assert "frame-ancestors 'none'" in policy
    assert "base-uri 'none'" in policy
    assert "form-action 'self';" in html_policy(None)


def test_html_answers_get_the_headers_and_a_page_of_its_own_keeps_its_policy() -> None:
    added = [(b"content-security-policy", b"strict"), (b"referrer-policy", b"no-referrer")]
    page = _with_html_headers([(b"content-type", b"text/html; charset=utf-8")], added)
    assert (b"content-security-policy", b"strict") in page
    own = [(b"content-type", b"text/html"), (b"content-security-policy", b"own")]
    kept = _with_html_headers(own, added)
    assert [v for n, v in kept if n == b"content-security-policy"] == [b"own"]
    assert (b"referrer-policy", b"no-referrer") in kept
    json = [(b"content-type", b"application/json")]
    assert _with_html_headers(json, added) == json
