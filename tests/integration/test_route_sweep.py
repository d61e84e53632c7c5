"""Every route answers hostile path input with a 4xx, never a 5xx.

The routes are read from the application itself, so a route added later is swept too.
Each path parameter is filled with values that have broken servers: a NUL, the
percent-encoding of a lone surrogate (not UTF-8), CR LF, invalid UTF-8, numbers too
long for the database or for `int()`, very long strings and dot segments. Each request
is sent anonymously and signed in as a citizen, an operator and an auditor, so that
the values reach the code behind the sign-in as well.
"""

from __future__ import annotations

import re
from typing import Any

import fastapi.routing
import httpx

from gateway.web import create_app

HOSTILE = (
    "%00",
    "a%00b",
    "%ED%A0%80",
    "%0D%0AX-Injected:%201",
    "%FF%FE",
    "%C0%AE%C0%AE",
    "..%2F..%2Fetc%2Fpasswd",
    "../../etc/passwd",
    "%2E%2E",
    "9" * 30,
    "9" * 5000,
    "-1",
    "x" * 10_000,
    "%F0%9F%98%80",
    "Nguy%E1%BB%85n",
)
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")


def _routes(app: Any) -> list[tuple[str, list[str]]]:
    """(path format, methods) of every route with a path parameter, included ones too."""
    # FastAPI keeps included routers unflattened in newer versions; older ones flatten.
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    found = []
    for route in contexts(app.routes) if contexts else app.routes:
        path = route.path_format
        if path and _PARAM.search(path):
            methods = sorted((route.methods or {"GET"}) - {"HEAD"})
            found.append((path, methods))
    return found


def _fill(path: str, value: str) -> str:
    return _PARAM.sub(lambda _m: value, path)


async def test_no_route_answers_hostile_path_input_with_a_5xx(gateway_factory, sign_in) -> None:
    gateway = gateway_factory(
        query_page=True, unsafe_demo_tokens=True, unsafe_demo_secret="sweep-" + "s" * 32
    )
    routes = _routes(create_app(gateway.settings))
    swept = {path for path, _ in routes}
    assert {"/consents/{consent_id}/status", "/me/consents/{consent_id}"} <= swept
    assert "/admin/clients/{client_id}/suspend" in swept
    credentials = [
        {},
        await sign_in.citizen("079203001234"),
        await sign_in.staff("operator"),
        await sign_in.staff("auditor"),
    ]
    failures = []
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30.0) as http:
        for path, methods in routes:
            for value in HOSTILE:
                url = _fill(path, value)
                for method in methods:
                    for headers in credentials:
                        try:
                            response = await http.request(method, url, headers=headers)
                        except httpx.TransportError as exc:  # no answer at all
                            failures.append((method, path, value[:40], type(exc).__name__))
                            continue
                        if response.status_code >= 500:
                            failures.append((method, path, value[:40], response.status_code))
    assert failures == [], "\n".join(map(str, failures))


async def test_a_nul_in_the_query_string_is_refused_before_any_lookup(gateway, sign_in) -> None:
    auditor, operator = await sign_in.staff("auditor"), await sign_in.staff("operator")
    citizen = await sign_in.citizen("079203001234")
    asked = [
        ("/audit/events?client=VN/GOV/X%00", auditor),
        ("/audit/export?organisation=%00", auditor),
        ("/admin/stats?organisation=%00", operator),
        ("/me/consents?status=ACTIVE%00", citizen),
        ("/me/accesses?cursor=%00", citizen),
        ("/log/tlog-proof?hash=%00", {}),
        ("/graphql?query=%7B__typename%7D%00", {}),
    ]
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30.0) as http:
        for url, headers in asked:
            response = await http.get(url, headers=headers)
            assert response.status_code == 400, (url, response.text)
            assert response.json()["code"] == "BAD_REQUEST"


async def test_a_nul_in_a_token_or_a_graphql_argument_is_a_4xx_or_a_field_error(
    gateway, signer
) -> None:
    """Past the path and query string: a NUL the database cannot take, in the body."""
    import orjson

    from gateway.admission import sign_request
    from policies import Purpose

    body = orjson.dumps({"query": '{ consent(id: "a\\u0000b") { id } }'})
    purpose = Purpose("1.004222", "CASE-1", "officer-1", ())
    token = signer.sign(body, procedure="1.004222", subjects=[])
    forged = sign_request(
        client_id=signer.client_id + "\x00",
        key=signer.key,
        kid=signer.kid,
        audience=signer.audience,
        body=body,
        purpose=purpose,
    )
    headers = {"Content-Type": "application/json"}
    async with gateway.client(auth=None) as http:
        asked = await http.post(
            "/graphql", content=body, headers={**headers, "Authorization": f"Bearer {token}"}
        )
        unknown = await http.post(
            "/graphql", content=body, headers={**headers, "Authorization": f"Bearer {forged}"}
        )
    assert asked.status_code == 200, asked.text
    assert [e["extensions"]["code"] for e in asked.json()["errors"]] == ["NOT_FOUND"]
    assert (unknown.status_code, unknown.json()["code"]) == (401, "BAD_SIGNATURE")
