"""Sign-in over real HTTP: the sandbox issuer under uvicorn, found by OIDC discovery."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import httpx
import pytest

from gateway.admission import IdentityVerifier
from gateway.cli._identity import citizen_token, staff_token
from gateway.config import GatewaySettings
from gateway.errors import BadSignature
from sandbox import SandboxSettings, issuer

AUDIENCE = "http://gateway.test"
PERSONAL_ID = "001099012345"


@pytest.fixture(scope="module")
def issuer_url(start_issuer: Callable[[str], str]) -> str:
    return start_issuer(AUDIENCE)


def _verifier(url: str, http: httpx.AsyncClient) -> IdentityVerifier:
    settings = GatewaySettings(_env_file=None, origin=AUDIENCE, oidc_issuer=url)  # type: ignore[call-arg]
    verifier = IdentityVerifier.from_settings(settings, http)
    assert verifier is not None
    return verifier


async def test_citizen_token_verifies_by_discovery(issuer_url: str) -> None:
    async with httpx.AsyncClient(timeout=10.0) as http:
        response = await http.post(
            f"{issuer_url}/demo/citizen-login", json={"personal_id": PERSONAL_ID, "level": 2}
        )
        assert response.status_code == 200
        who = await _verifier(issuer_url, http).verify(response.json()["access_token"])
    assert who.subject == PERSONAL_ID
    assert who.is_citizen
    assert who.has_level2(["vneid-level-2"])
    assert who.issuer == issuer_url


async def test_token_of_another_sandbox_issuer_is_refused(issuer_url: str) -> None:
    other = issuer.create_app(SandboxSettings(issuer_url=issuer_url, issuer_audience=AUDIENCE))
    transport = httpx.ASGITransport(app=other)
    async with httpx.AsyncClient(transport=transport, base_url=issuer_url) as impostor:
        forged = (
            await impostor.post("/demo/citizen-login", json={"personal_id": PERSONAL_ID})
        ).json()["access_token"]
    async with httpx.AsyncClient(timeout=10.0) as http:
        with pytest.raises(BadSignature):
            await _verifier(issuer_url, http).verify(forged)


async def test_cli_tokens_verify(issuer_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    citizen = argparse.Namespace(issuer=issuer_url, personal_id=PERSONAL_ID, level=1)
    assert citizen_token(citizen) == 0
    citizen_printed = capsys.readouterr().out.strip()
    staff = argparse.Namespace(
        issuer=issuer_url, role=["auditor"], org="VN/GOV/KTNN", sub="kiem.toan.vien"
    )
    assert staff_token(staff) == 0
    staff_printed = capsys.readouterr().out.strip()
    async with httpx.AsyncClient(timeout=10.0) as http:
        verifier = _verifier(issuer_url, http)
        who = await verifier.verify(citizen_printed)
        assert (who.subject, who.acr) == (PERSONAL_ID, "vneid-level-1")
        assert not who.has_level2(["vneid-level-2"])
        staff_member = await verifier.verify(staff_printed)
    assert staff_member.roles == frozenset({"auditor"})
    assert (staff_member.subject, staff_member.org) == ("kiem.toan.vien", "VN/GOV/KTNN")
