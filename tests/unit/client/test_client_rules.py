"""The client library's rules for failure, against answers made up by the test.

What is sent (bytes and token) is read from each request; the gateway's own
behaviour behind these answers is tested against a live gateway
(`tests/integration/test_client_library.py`).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

import httpx
import pytest
from joserfc.jwk import OKPKey
from lienthong_client import (
    GatewayClient,
    Purpose,
    Refused,
    RequestInvalid,
    Unavailable,
    body_digest,
)

PURPOSE = Purpose("1.004222", "HS-1", "officer-7", ("079203001234",))
DATA = {"data": {"citizen": {"fullName": "An"}}}


def _client(answers: list[httpx.Response], seen: list[httpx.Request]) -> GatewayClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    return GatewayClient(
        "http://gateway.test",
        "VN/GOV/TEST/rules",
        OKPKey.generate_key("Ed25519"),
        "k1",
        max_wait=0.01,
        transport=httpx.MockTransport(handler),
    )


def _claims(request: httpx.Request) -> dict[str, Any]:
    token = request.headers["authorization"].removeprefix("Bearer ")
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return claims


def _error(status: int, code: str, retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after else {}
    return httpx.Response(
        status, json={"code": code, "message": "m", "detail": {}}, headers=headers
    )


def test_each_token_is_for_the_exact_bytes_sent() -> None:
    seen: list[httpx.Request] = []
    answer = _client([httpx.Response(200, json=DATA)], seen).query(
        "{ citizen { fullName } }", purpose=PURPOSE
    )
    assert answer.data == DATA["data"]
    [request] = seen
    claims = _claims(request)
    assert claims["req"] == body_digest(request.content)
    assert claims["aud"] == "http://gateway.test"
    assert claims["exp"] - claims["iat"] == 120
    assert claims["purpose"] == {
        "procedure": "1.004222",
        "case": "HS-1",
        "officer": "officer-7",
        "subjects": ["079203001234"],
    }


def test_a_503_of_the_gateway_is_sent_again_once_with_the_same_token() -> None:
    seen: list[httpx.Request] = []
    client = _client(
        [_error(503, "SERVICE_UNAVAILABLE", "1"), httpx.Response(200, json=DATA)], seen
    )
    answer = client.query("{ a }", purpose=PURPOSE)
    assert answer.reused_token
    first, second = seen
    assert first.content == second.content
    assert first.headers["authorization"] == second.headers["authorization"]


def test_a_second_503_is_raised() -> None:
    seen: list[httpx.Request] = []
    client = _client([_error(503, "AUDIT_UNAVAILABLE"), _error(503, "AUDIT_UNAVAILABLE")], seen)
    with pytest.raises(Unavailable) as caught:
        client.query("{ a }", purpose=PURPOSE)
    assert caught.value.code == "AUDIT_UNAVAILABLE"
    assert len(seen) == 2


def test_a_503_not_of_the_gateway_is_not_retried() -> None:
    seen: list[httpx.Request] = []
    client = _client([httpx.Response(503, text="<html>proxy</html>")], seen)
    with pytest.raises(Unavailable) as caught:
        client.query("{ a }", purpose=PURPOSE)
    assert caught.value.code == "HTTP_503"
    assert len(seen) == 1


def test_a_rate_limit_is_waited_out_with_a_new_token() -> None:
    seen: list[httpx.Request] = []
    limited = _error(429, "RATE_LIMITED", "0")
    answer = _client([limited, httpx.Response(200, json=DATA)], seen).query(
        "{ a }", purpose=PURPOSE
    )
    assert not answer.reused_token
    first, second = (_claims(r) for r in seen)
    assert first["jti"] != second["jti"]


def test_rate_limits_are_retried_a_bounded_number_of_times() -> None:
    seen: list[httpx.Request] = []
    client = _client([_error(429, "RATE_LIMITED", "0") for _ in range(3)], seen)
    with pytest.raises(Refused) as caught:
        client.query("{ a }", purpose=PURPOSE)
    assert (caught.value.code, caught.value.status, len(seen)) == ("RATE_LIMITED", 429, 3)


@pytest.mark.parametrize(
    ("status", "code"),
    [(401, "TOKEN_REPLAYED"), (401, "BAD_SIGNATURE"), (400, "INVALID_PURPOSE"), (403, "X")],
)
def test_a_refusal_is_never_retried(status: int, code: str) -> None:
    seen: list[httpx.Request] = []
    with pytest.raises(Refused) as caught:
        _client([_error(status, code)], seen).query("{ a }", purpose=PURPOSE)
    assert (caught.value.code, caught.value.status, len(seen)) == (code, status, 1)


def test_a_request_that_cannot_run_is_request_invalid() -> None:
    seen: list[httpx.Request] = []
    errors = {"errors": [{"message": "Syntax Error", "extensions": {"code": "GRAPHQL_PARSE"}}]}
    with pytest.raises(RequestInvalid) as caught:
        _client([httpx.Response(400, json=errors)], seen).query("{", purpose=PURPOSE)
    assert caught.value.errors[0].code == "GRAPHQL_PARSE"


def test_field_errors_and_compact_provenance_are_typed() -> None:
    seen: list[httpx.Request] = []
    body = {
        "data": {"citizen": {"fullName": "An", "phone": None}},
        "errors": [
            {
                "message": "no",
                "path": ["citizen", "phone"],
                "extensions": {"code": "CONSENT_REQUIRED"},
            }
        ],
        "extensions": {
            "provenance": [
                {
                    "source": "population",
                    "retrievedAt": "2026-12-06T00:00:00Z",
                    "basis": "law",
                    "legalBasis": "Luật Căn cước 2023",
                    "paths": ["citizen.fullName"],
                }
            ]
        },
    }
    answer = _client([httpx.Response(200, json=body)], seen).query(
        "{ a }", purpose=PURPOSE, compact_provenance=True
    )
    assert json.loads(seen[0].content)["extensions"] == {"provenance": "compact"}
    error = answer.error_at("citizen", "phone")
    assert error is not None
    assert error.code == "CONSENT_REQUIRED"
    assert answer.provenance["citizen.fullName"].legal_basis == "Luật Căn cước 2023"
    assert answer.receipt is None


def test_the_client_imports_no_server_code() -> None:
    code = (
        "import sys, lienthong_client\n"
        "server = {'gateway', 'schema', 'connectors', 'policies', 'keys', 'sandbox',"
        " 'fastapi', 'starlette', 'sqlalchemy', 'strawberry', 'uvicorn', 'redis'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & server))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_key_never_shows_in_repr() -> None:
    key = OKPKey.generate_key("Ed25519")
    private = str(key.as_dict(private=True)["d"])
    client = GatewayClient("http://gateway.test", "VN/GOV/TEST/rules", key, "k1")
    shown = repr(client.signer) + repr(client) + repr(vars(client.signer))
    assert private not in shown
    assert "VN/GOV/TEST/rules" in repr(client.signer)
