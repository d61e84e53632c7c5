"""The demo signs browsers in at the sandbox issuer and says where the citizen pages are."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.config import GatewaySettings
from sandbox import SandboxSettings


def test_the_gateway_and_the_issuer_agree_on_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.cli._demo import Demo

    monkeypatch.delenv("SANDBOX_ISSUER_CLIENTS", raising=False)
    demo = Demo()
    env = demo._env("{ x }")
    settings = GatewaySettings(
        _env_file=None,
        origin=env["GATEWAY_ORIGIN"],
        oidc_issuer=env["GATEWAY_OIDC_ISSUER"],
        oidc_client_id=env["GATEWAY_OIDC_CLIENT_ID"],
    )
    clients = orjson.loads(demo._issuer_env()["SANDBOX_ISSUER_CLIENTS"])
    assert settings.browser_redirect_uri in clients[settings.oidc_client_id]
    monkeypatch.setenv("SANDBOX_ISSUER_CLIENTS", demo._issuer_env()["SANDBOX_ISSUER_CLIENTS"])
    assert SandboxSettings().issuer_clients == clients


def test_the_demo_prints_the_citizen_pages_and_how_to_sign_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gateway.cli._demo import Demo

    demo = Demo()
    asked = iter(
        [
            {"data": {}, "extensions": {"receipt": {"leafHash": "AAAA"}}},
            {"data": {"prefill": {"fields": [], "papersAvoided": [], "papersStillNeeded": []}}},
        ]
    )
    answers: Any = lambda *_: next(asked)  # noqa: E731
    monkeypatch.setattr(demo, "_ask", answers)
    monkeypatch.setattr(demo, "_integrated", lambda _: ("http://proof", "origin\n1\nroot\n"))
    monkeypatch.setattr(demo, "_dossier", lambda *_: "000.00.01.H01-250928-0001")
    monkeypatch.setattr(demo, "_transfer", lambda: "")
    printed = demo._report("001099012345")
    line = next(line for line in printed.splitlines() if f"{demo.gateway_url}/toi" in line)
    assert "Dữ liệu của tôi" in line
    assert "001099012345" in printed.split(line, 1)[1].split("\n\n", 1)[0]
