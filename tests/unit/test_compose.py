"""compose.yaml, the production profile, read against the settings the gateway reads.

No container engine runs here: the file is parsed and checked against
`GatewaySettings`, the README's production settings, the Dockerfile's targets, the
sandbox manifests and the load balancer's configuration.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import GatewaySettings

ROOT = Path(__file__).parents[2]
PREFIX = "GATEWAY_"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    return loaded


def _gateways(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that serve: built from the Dockerfile's `gateway` target, no command."""
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("build", {}).get("target") == "gateway" and "command" not in service
    }


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _env_file(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def _made_secrets(folder: Path) -> Path:
    """What `deploy/make-secrets.sh` writes, made in `folder`."""
    subprocess.run(
        ["sh", str(ROOT / "deploy" / "make-secrets.sh"), str(folder)],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHON": sys.executable},
        check=True,
        capture_output=True,
    )
    return folder


def test_every_gateway_variable_is_a_setting_and_the_replicas_accept_them(
    compose: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert GatewaySettings.model_config.get("env_prefix") == PREFIX
    fields = set(GatewaySettings.model_fields)
    secrets = _env_file(_made_secrets(tmp_path) / "gateway.env")
    gateways = _gateways(compose)
    assert len(gateways) >= 2, "two replicas or more"
    for name, service in compose["services"].items():
        for variable in _environment(service):
            if variable.startswith(PREFIX):
                setting = variable.removeprefix(PREFIX).lower()
                assert setting in fields, f"{name}: {variable} is not a gateway setting"
    for variable in secrets:
        assert variable.startswith(PREFIX)
        assert variable.removeprefix(PREFIX).lower() in fields, variable
    for name, service in gateways.items():
        # Read from the environment, as in the container.
        for variable in os.environ:
            if variable.startswith(PREFIX):
                monkeypatch.delenv(variable)
        for variable, value in {**secrets, **_environment(service)}.items():
            monkeypatch.setenv(variable, value)
        settings = GatewaySettings(_env_file=None)
        assert settings.environment == "production", name
        assert not settings.is_sqlite, name
        assert settings.redis_url is not None, name
        assert settings.metrics_token is not None, name


def test_the_production_settings_of_the_readme_are_set(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Running it for real")[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block
    required = {
        word.split("=", 1)[0]
        for line in block.group(1).replace("\\\n", " ").splitlines()
        if line.startswith("export ")
        for word in shlex.split(line, comments=True)[1:]
    }
    assert {"GATEWAY_ENVIRONMENT", "GATEWAY_DATABASE_URL", "GATEWAY_REDIS_URL"} <= required
    secrets = _env_file(_made_secrets(tmp_path) / "gateway.env")
    for name, service in _gateways(compose).items():
        present = {**secrets, **_environment(service)}
        assert required <= set(present), f"{name} lacks {sorted(required - set(present))}"
        assert service["env_file"] == ["deploy/secrets/gateway.env"]


def test_no_secret_is_in_the_repository(compose: dict[str, Any], tmp_path: Path) -> None:
    made = _made_secrets(tmp_path)
    password = (made / "postgres_password").read_text().strip()
    assert len(password) >= 32
    assert f"gateway:{password}@postgres:5432/gateway" in (made / "gateway.env").read_text()
    # Compose reads them from deploy/secrets/, which git ignores.
    for name in ("gateway.env", "postgres_password"):
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", f"deploy/secrets/{name}"], cwd=ROOT, check=False
        )
        assert ignored.returncode == 0, f"deploy/secrets/{name} is not ignored by git"
    assert compose["secrets"]["postgres_password"] == {"file": "deploy/secrets/postgres_password"}
    postgres = compose["services"]["postgres"]
    assert "POSTGRES_PASSWORD" not in _environment(postgres)
    assert _environment(postgres)["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    for service in compose["services"].values():
        for variable, value in _environment(service).items():
            assert not re.search(r"://[^/@]*:[^/@]*@", value), f"a password in {variable}"
            assert variable not in {"GATEWAY_DATABASE_URL", "GATEWAY_METRICS_TOKEN"}


def test_the_load_balancer_sends_to_both_replicas_when_ready(compose: dict[str, Any]) -> None:
    balancer = compose["services"]["loadbalancer"]
    mounted = {v.split(":")[0].removeprefix("./"): v.split(":")[1] for v in balancer["volumes"]}
    assert mounted["deploy/haproxy.cfg"] == "/usr/local/etc/haproxy/haproxy.cfg"
    config = (ROOT / "deploy" / "haproxy.cfg").read_text(encoding="utf-8")
    servers = dict(re.findall(r"^\s*server\s+\S+\s+([\w.-]+):(\d+)", config, re.M))
    for name, service in _gateways(compose).items():
        assert servers.get(name) == _environment(service)["GATEWAY_PORT"], name
    assert set(servers) == set(_gateways(compose))
    assert re.search(r"option httpchk GET /readyz", config)
    bind = re.search(r"^\s*bind\s+:(\d+)", config, re.M)
    assert bind
    assert f"{bind.group(1)}:{bind.group(1)}" in balancer["ports"]


def test_images_are_built_from_the_dockerfile(compose: dict[str, Any]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    stages = set(re.findall(r"^FROM \S+ AS (\S+)", dockerfile, re.M))
    built = [s for s in compose["services"].values() if "build" in s]
    assert {s["build"]["target"] for s in built} == {"gateway", "sandbox"}
    for service in built:
        assert service["build"]["context"] == "."
        assert service["build"]["dockerfile"] == "Dockerfile"
        assert service["build"]["target"] in stages


def test_the_gateway_reaches_each_agency_of_its_manifests(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in _gateways(compose).items():
        env = _environment(service)
        mounts = dict(v.rsplit(":", 2)[:2] for v in service["volumes"] if v.startswith("./"))
        manifests = ROOT / next(
            k.removeprefix("./") for k, v in mounts.items() if v == env["GATEWAY_CONNECTORS_DIR"]
        )
        named = {yaml.safe_load(p.read_text())["name"] for p in manifests.glob("*.yaml")}
        urls = json.loads(env["GATEWAY_CONNECTOR_URLS"])
        assert set(urls) == named, name
        for agency, url in urls.items():
            if url.startswith("sqlite:///"):
                # A database read directly: a volume a one-off job writes, mounted read-only.
                folder = str(Path(url.removeprefix("sqlite:///")).parent)
                [volume] = [v for v in service["volumes"] if v.split(":")[1:] == [folder, "ro"]]
                writer = services[agency]
                assert volume.split(":")[0] + ":" + folder in writer["volumes"], agency
                assert writer["command"][:1] == [agency]
                assert url.removeprefix("sqlite:///") in writer["command"]
                assert service["depends_on"][agency] == {
                    "condition": "service_completed_successfully"
                }
                continue
            host, port = re.fullmatch(r"http://([\w-]+):(\d+)", url).groups()  # type: ignore[union-attr]
            assert _environment(services[host])["SANDBOX_HEALTH_PORT"] == port, agency
            assert services[host]["command"][:1] == [agency]
            assert services[host]["command"][1:] == ["--port", port]
            assert service["depends_on"][host] == {"condition": "service_healthy"}
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
