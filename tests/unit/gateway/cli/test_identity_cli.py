"""`gateway staff token` / `gateway citizen token`: tokens from the sandbox issuer."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.cli import _identity
from gateway.cli._identity import add_identity_commands, citizen_token, request_token
from sandbox import SandboxSettings, issuer

ISSUER = "http://issuer.test"
PERSONAL_ID = "001099012345"


def _parser() -> argparse.ArgumentParser:
    """The same `command` helper `gateway.cli._parser` hands to its command groups."""
    parser = argparse.ArgumentParser(prog="gateway")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        parent: Any, name: str, handler: Callable[[argparse.Namespace], int], help_: str
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    add_identity_commands(sub, command)
    return parser


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return claims


@pytest.fixture
def sandbox_issuer() -> Iterator[httpx.Client]:
    """A synchronous client whose requests the issuer app answers in-process."""
    app = issuer.create_app(SandboxSettings(issuer_url=ISSUER))

    def handle(request: httpx.Request) -> httpx.Response:
        async def forward() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport) as client:
                answer = await client.send(request)
                return httpx.Response(answer.status_code, json=answer.json())

        return asyncio.run(forward())

    with httpx.Client(transport=httpx.MockTransport(handle)) as client:
        yield client


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_commands_parse() -> None:
    staff = _parser().parse_args(
        ["staff", "token", "--role", "auditor", "--role", "operator", "--org", "VN/GOV/BCA"]
    )
    assert (staff.role, staff.org, staff.sub, staff.issuer) == (
        ["auditor", "operator"],
        "VN/GOV/BCA",
        "demo-staff",
        None,
    )
    assert staff.handler.__name__ == "staff_token"
    citizen = _parser().parse_args(
        ["citizen", "token", "--personal-id", PERSONAL_ID, "--issuer", ISSUER]
    )
    assert (citizen.personal_id, citizen.level, citizen.issuer) == (PERSONAL_ID, 2, ISSUER)
    assert citizen.handler is citizen_token


@pytest.mark.parametrize(
    "argv",
    [
        ["staff", "token", "--role", "root", "--org", "VN/GOV/BCA"],
        ["staff", "token", "--org", "VN/GOV/BCA"],
        ["citizen", "token", "--personal-id", PERSONAL_ID, "--level", "3"],
        ["citizen", "token"],
    ],
)
def test_bad_arguments_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(argv)
    assert exited.value.code == 2


def test_citizen_and_staff_tokens_from_the_sandbox(sandbox_issuer: httpx.Client) -> None:
    token = request_token(
        ISSUER, "citizen", {"personal_id": PERSONAL_ID, "level": 1}, client=sandbox_issuer
    )
    claims = _claims(token)
    assert (claims["sub"], claims["acr"], claims["roles"]) == (
        PERSONAL_ID,
        "vneid-level-1",
        ["citizen"],
    )
    body = {"sub": "an", "roles": ["agency_admin"], "org": "VN/GOV/BTP"}
    claims = _claims(request_token(ISSUER, "staff", body, client=sandbox_issuer))
    assert (claims["sub"], claims["roles"], claims["org"]) == ("an", ["agency_admin"], "VN/GOV/BTP")


def test_refusal_is_reported_without_the_id(sandbox_issuer: httpx.Client) -> None:
    with pytest.raises(ValueError, match="refused \\(400\\): A personal id is 12 digits") as error:
        request_token(
            ISSUER, "citizen", {"personal_id": "12345678", "level": 2}, client=sandbox_issuer
        )
    assert "12345678" not in str(error.value)


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(404, text="not found"),
        httpx.Response(200, json={"issuer": ISSUER, "jwks_uri": f"{ISSUER}/keys"}),
        httpx.Response(200, text="<html>"),
    ],
)
def test_another_issuer_is_refused(answer: httpx.Response) -> None:
    posted = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posted.append(request)
        return answer

    with (
        httpx.Client(transport=httpx.MockTransport(handle)) as client,
        pytest.raises(ValueError, match="is not the sandbox issuer"),
    ):
        request_token(ISSUER, "citizen", {"personal_id": PERSONAL_ID}, client=client)
    assert posted == []  # nothing, least of all a personal id, goes to another issuer


def test_silent_issuer_is_exit_2(closed_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(
        issuer=f"http://127.0.0.1:{closed_port}", personal_id=PERSONAL_ID, level=2
    )
    assert citizen_token(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "does not answer" in captured.err
    assert "python -m sandbox issuer" in captured.err


def test_no_issuer_is_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    closed_port: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("GATEWAY_OIDC_ISSUER", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setattr(_identity, "DEMO_ISSUER", f"http://127.0.0.1:{closed_port}")
    args = argparse.Namespace(issuer=None, personal_id=PERSONAL_ID, level=2)
    assert citizen_token(args) == 2
    assert "GATEWAY_OIDC_ISSUER" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["staff", "token", "--role", "operator", "--org", "VN/GOV/BCA"],
        ["citizen", "token", "--personal-id", PERSONAL_ID],
    ],
)
def test_without_an_issuer_or_the_demo_the_command_to_run_is_printed(
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    closed_port: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    demo = f"http://127.0.0.1:{closed_port}"
    monkeypatch.delenv("GATEWAY_OIDC_ISSUER", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setattr(_identity, "DEMO_ISSUER", demo)
    args = _parser().parse_args(argv)
    assert args.handler(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"gateway {' '.join(argv)} --issuer {demo}" in captured.err
    assert demo in captured.err


def test_issuer_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATEWAY_OIDC_ISSUER", f"http://127.0.0.1:{closed_port}")
    args = argparse.Namespace(issuer=None, personal_id=PERSONAL_ID, level=2)
    assert citizen_token(args) == 2
    assert f"127.0.0.1:{closed_port} does not answer" in capsys.readouterr().err
