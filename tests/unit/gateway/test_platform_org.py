"""Which operators act on every client: `GATEWAY_PLATFORM_ORG`, by environment."""

from __future__ import annotations

from gateway.config import GatewaySettings


def test_the_platform_organisation_by_environment() -> None:
    assert GatewaySettings(_env_file=None).platform_organisation == "VN/GOV/BCA"
    production = GatewaySettings(_env_file=None, environment="production")
    assert production.platform_organisation is None
    chosen = GatewaySettings(_env_file=None, environment="production", platform_org="VN/GOV/BKHCN")
    assert chosen.platform_organisation == "VN/GOV/BKHCN"
    assert GatewaySettings(_env_file=None, platform_org="").platform_organisation is None
