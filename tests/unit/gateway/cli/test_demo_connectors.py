"""`gateway demo` serves the connectors folder it is given, and lets them reach loopback."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml

import sandbox
from gateway.cli._demo import Demo
from gateway.config import GatewaySettings

MANIFESTS = Path(sandbox.__file__).parent / "manifests"


def _settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> GatewaySettings:
    """The settings the demo's gateway process reads from the environment it is given."""
    for name, value in env.items():
        if name.startswith("GATEWAY_"):
            monkeypatch.setenv(name, value)
    return GatewaySettings(_env_file=None)  # type: ignore[call-arg]


def test_without_a_folder_the_demo_serves_the_sandbox_manifests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GATEWAY_CONNECTORS_DIR", raising=False)
    settings = _settings(Demo()._env("{ x }"), monkeypatch)
    assert settings.connectors_dir == MANIFESTS
    assert set(settings.connector_urls) == {
        "population",
        "business",
        "insurance",
        "civil",
        "dossiers",
        "land",
    }
    assert settings.connectors_allow_loopback is True


def test_the_demo_serves_the_folder_it_is_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = yaml.safe_load((MANIFESTS / "population.yaml").read_text(encoding="utf-8"))
    (tmp_path / "population.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    (tmp_path / "own.yaml").write_text(
        yaml.safe_dump({**data, "name": "own", "base_url": "http://127.0.0.1:9"}),
        encoding="utf-8",
    )
    monkeypatch.setenv("GATEWAY_CONNECTORS_DIR", str(tmp_path))
    env = Demo()._env("{ x }")
    settings = _settings(env, monkeypatch)
    assert settings.connectors_dir == tmp_path
    # Only the sandbox's connectors the folder has get the sandbox's addresses.
    assert set(orjson.loads(env["GATEWAY_CONNECTOR_URLS"])) == {"population"}
    assert settings.connectors_allow_loopback is True
