"""Settings that cannot work together stop the application from being built."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigurationError, GatewaySettings
from gateway.web import create_app


def _settings(tmp_path: Path, **options: object) -> GatewaySettings:
    return GatewaySettings(_env_file=None, keys_dir=tmp_path / "keys", **options)  # type: ignore[call-arg]


def test_postgresql_in_production_needs_redis(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        environment="production",
        database_url="postgresql+asyncpg://gateway@db/gateway",
    )
    with pytest.raises(ConfigurationError, match="Redis"):
        create_app(settings)
    create_app(_settings(tmp_path, database_url="postgresql+asyncpg://gateway@db/gateway"))


def test_unsafe_demo_tokens_are_refused_in_production(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        environment="production",
        unsafe_demo_tokens=True,
        redis_url="redis://127.0.0.1:6379/0",
        database_url="postgresql+asyncpg://gateway@db/gateway",
    )
    with pytest.raises(ConfigurationError, match="demo tokens"):
        create_app(settings)


@pytest.mark.parametrize("secret", [None, "short"])
def test_unsafe_demo_tokens_need_a_long_secret(tmp_path: Path, secret: str | None) -> None:
    settings = _settings(tmp_path, unsafe_demo_tokens=True, unsafe_demo_secret=secret)
    with pytest.raises(ConfigurationError, match="GATEWAY_UNSAFE_DEMO_SECRET"):
        create_app(settings)
    create_app(_settings(tmp_path, unsafe_demo_tokens=True, unsafe_demo_secret="s" * 32))
