"""The gateway's settings object: defaults, `GATEWAY_` variables, hidden secrets."""

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.config import GatewaySettings

DB = "postgresql+asyncpg://gateway:hunter2-db-secret@db.internal:5432/gateway"
REDIS = "redis://:s3cret-redis-pass@redis.internal:6379/0"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No GATEWAY_ variable or `.env` file from the machine running the tests."""
    for name in list(os.environ):
        if name.upper().startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _settings(**values: Any) -> GatewaySettings:
    return GatewaySettings(**values)


def test_defaults() -> None:
    settings = _settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.origin == "http://127.0.0.1:8000"
    assert settings.environment == "development"
    assert settings.database_url.get_secret_value() == "sqlite+aiosqlite:///var/gateway.db"
    assert settings.redis_url is None
    assert settings.keys_dir == Path("var/keys")
    assert settings.connectors_dir is None
    assert settings.connector_urls == {}
    assert settings.introspection is True
    assert settings.query_page is False
    assert (settings.max_depth, settings.max_aliases, settings.max_tokens) == (10, 30, 2000)
    assert settings.max_batch == 50
    assert settings.max_body_bytes == 64 * 1024
    assert (settings.log_level, settings.log_json) == ("info", True)


def test_environment_variables_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "9000")
    monkeypatch.setenv("GATEWAY_INTROSPECTION", "false")
    monkeypatch.setenv("GATEWAY_DATABASE_URL", DB)
    monkeypatch.setenv("GATEWAY_CONNECTOR_URLS", '{"population": "http://10.0.0.5:8101"}')
    monkeypatch.setenv("GATEWAY_KEYS_DIR", "/srv/keys")
    settings = _settings()
    assert settings.port == 9000
    assert settings.introspection is False
    assert settings.database_url.get_secret_value() == DB
    assert settings.connector_urls == {"population": "http://10.0.0.5:8101"}
    assert settings.keys_dir == Path("/srv/keys")


def test_variables_without_prefix_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9000")
    monkeypatch.setenv("DATABASE_URL", DB)
    settings = _settings()
    assert settings.port == 8000
    assert settings.is_sqlite


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("GATEWAY_MAX_BATCH=7\n", encoding="utf-8")
    assert _settings().max_batch == 7


def test_explicit_values_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "9000")
    assert _settings(port=9100).port == 9100


def test_invalid_value_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "70000")
    with pytest.raises(ValidationError, match="port"):
        _settings()


def test_unknown_environment_is_rejected() -> None:
    with pytest.raises(ValidationError):
        _settings(environment="staging")


def test_settings_are_frozen() -> None:
    settings = _settings()
    with pytest.raises(ValidationError):
        settings.port = 1  # type: ignore[misc]


def test_origin_loses_its_trailing_slash() -> None:
    assert _settings(origin="https://gateway.gov.vn/").origin == "https://gateway.gov.vn"


@pytest.mark.parametrize("show", [repr, str])
def test_secrets_are_hidden(show: Any) -> None:
    settings = _settings(database_url=DB, redis_url=REDIS)
    shown = show(settings)
    assert "hunter2-db-secret" not in shown
    assert "s3cret-redis-pass" not in shown


def test_secrets_from_environment_are_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", DB)
    monkeypatch.setenv("GATEWAY_REDIS_URL", REDIS)
    settings = _settings()
    assert "hunter2-db-secret" not in repr(settings)
    assert "s3cret-redis-pass" not in repr(settings)
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value() == REDIS


def test_default_database_is_sqlite() -> None:
    assert _settings().is_sqlite


def test_postgresql_is_not_sqlite() -> None:
    assert not _settings(database_url=DB).is_sqlite


@pytest.mark.parametrize(
    ("environment", "expected"), [("development", True), ("demo", True), ("production", False)]
)
def test_introspection_is_off_in_production_unless_turned_on(
    environment: str, expected: bool
) -> None:
    assert _settings(environment=environment).introspection is expected


@pytest.mark.parametrize("environment", ["development", "demo", "production"])
@pytest.mark.parametrize("chosen", [True, False])
def test_introspection_as_configured_in_any_environment(environment: str, chosen: bool) -> None:
    assert _settings(environment=environment, introspection=chosen).introspection is chosen


def test_introspection_from_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_ENVIRONMENT", "production")
    assert _settings().introspection is False
    monkeypatch.setenv("GATEWAY_INTROSPECTION", "true")
    assert _settings().introspection is True


def test_introspection_from_a_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("GATEWAY_ENVIRONMENT=production\n", encoding="utf-8")
    assert _settings().introspection is False


# --- sign-in -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keys", [{"oidc_jwks_url": "https://id.example.test/keys"}, {"oidc_jwks_file": "jwks.json"}]
)
def test_a_jwks_without_the_issuer_is_refused(keys: dict[str, str]) -> None:
    # Without the issuer pinned, a token of any issuer signed by a key of the set passes.
    with pytest.raises(ValidationError, match="GATEWAY_OIDC_ISSUER"):
        _settings(**keys)
    assert _settings(oidc_issuer="https://id.example.test", **keys).oidc_issuer


@pytest.mark.parametrize(
    "url",
    [
        "https://id.example.test",
        "http://127.0.0.1:8103",
        "http://127.10.0.1:8103",
        "http://localhost:8103",
        "http://LOCALHOST",
        "http://[::1]:8103",
    ],
)
def test_production_issuer_is_https_or_loopback(url: str) -> None:
    assert _settings(environment="production", oidc_issuer=url).oidc_issuer == url
    jwks = _settings(environment="production", oidc_issuer=url, oidc_jwks_url=f"{url}/keys")
    assert jwks.oidc_jwks_url == f"{url}/keys"


@pytest.mark.parametrize(
    ("setting", "url"),
    [
        ("oidc_issuer", "http://id.example.test"),
        ("oidc_issuer", "http://10.0.0.5:8103"),
        ("oidc_issuer", "http://127.0.0.1.example.test"),
        ("oidc_issuer", "ftp://id.example.test"),
        ("oidc_jwks_url", "http://id.example.test/keys"),
        ("oidc_jwks_url", "http://0.0.0.0:8103/keys"),
        ("notify_url", "http://channel.example.test/notifications"),
    ],
)
def test_production_refuses_plain_http_sign_in(setting: str, url: str) -> None:
    values = {"oidc_issuer": "https://id.example.test", setting: url}
    with pytest.raises(ValidationError, match="https"):
        _settings(environment="production", **values)
    if url.startswith("http://"):  # outside production, plain http is allowed anywhere
        assert _settings(environment="development", **values)


def test_identity_provider_keys_have_a_maximum_age(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _settings().oidc_jwks_max_age == 86400
    monkeypatch.setenv("GATEWAY_OIDC_JWKS_MAX_AGE", "7200")
    assert _settings().oidc_jwks_max_age == 7200
    with pytest.raises(ValidationError):
        _settings(oidc_jwks_max_age=0)


def test_notifications_are_off_unless_a_channel_is_given() -> None:
    assert _settings().notify_url is None
    with pytest.raises(ValidationError, match="http"):
        _settings(notify_url="channel.example.test")
    production = _settings(
        environment="production",
        oidc_issuer="https://id.example.test",
        notify_url="https://channel.example.test/notifications",
        notify_token="s3cret",
    )
    assert "s3cret" not in repr(production)
