"""`gateway connectors check` checks manifests as `gateway serve` does, kinds included."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Cli

import sandbox

MANIFESTS = Path(sandbox.__file__).parent / "manifests"


# -- connector kinds ----------------------------------------------------------------------


def test_check_refuses_an_unknown_kind_as_serve_does(
    cli: Cli, env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "connectors"
    folder.mkdir()
    text = (MANIFESTS / "population.yaml").read_text(encoding="utf-8")
    assert "kind: rest" in text
    (folder / "population.yaml").write_text(text.replace("kind: rest", "kind: soap"))

    check = cli("connectors", "check", str(folder), env=env, cwd=tmp_path)
    serve = cli(
        "serve", "--port", "0", env={**env, "GATEWAY_CONNECTORS_DIR": str(folder)}, cwd=tmp_path
    )

    def said(result: subprocess.CompletedProcess[str]) -> list[str]:
        return [line for line in result.stderr.splitlines() if line.startswith("gateway:")]

    assert check.returncode == serve.returncode == 2, (check.stdout, serve.stderr)
    assert "ok" not in check.stdout
    assert said(check) == said(serve)
    assert "unknown kind 'soap'" in said(check)[0]
    assert "rest" in said(check)[0]  # the kinds that are installed


def test_check_still_passes_the_sandbox_manifests(
    cli: Cli, env: dict[str, str], tmp_path: Path
) -> None:
    check = cli("connectors", "check", str(MANIFESTS), env=env, cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert [line.split("\t")[:3] for line in check.stdout.splitlines()] == [
        ["ok", "business", "rest"],
        ["ok", "civil", "graphql"],
        ["ok", "dossiers", "rest"],
        ["ok", "insurance", "xroad"],
        ["ok", "land", "sql"],
        ["ok", "population", "rest"],
    ]


def test_list_on_a_database_never_migrated_says_what_to_run(
    cli: Cli, env: dict[str, str], tmp_path: Path
) -> None:
    listed = cli("connectors", "list", env=env, cwd=tmp_path)
    assert listed.returncode == 2
    assert "gateway db upgrade" in listed.stderr


def test_check_connect_opens_each_connector_and_asks_its_health(
    cli: Cli, env: dict[str, str], tmp_path: Path
) -> None:
    from sandbox import SandboxSettings, generate, land

    folder = tmp_path / "connectors"
    folder.mkdir()
    (folder / "land.yaml").write_text((MANIFESTS / "land.yaml").read_text("utf-8"), "utf-8")
    database = tmp_path / "land.db"
    urls = f'{{"land": "sqlite:///{database}"}}'
    missing = cli(
        "connectors", "check", "--connect", str(folder),
        env={**env, "GATEWAY_CONNECTOR_URLS": urls}, cwd=tmp_path,
    )  # fmt: skip
    settings = SandboxSettings(citizens=50)
    land.write_sqlite(database, land.build(settings, generate(settings)))
    there = cli(
        "connectors", "check", "--connect", str(folder),
        env={**env, "GATEWAY_CONNECTOR_URLS": urls}, cwd=tmp_path,
    )  # fmt: skip
    # A database not there yet is reported, as serve would start without it.
    assert missing.returncode == 1, missing.stderr
    assert missing.stdout.split("\t")[:3] == ["unhealthy", "land", "sql"]
    assert there.returncode == 0, there.stderr
    assert there.stdout.split("\t")[:4] == ["ok", "land", "sql", "ok"]


def test_the_json_schema_of_manifests_is_current(
    cli: Cli, env: dict[str, str], tmp_path: Path
) -> None:
    checked = cli("connectors", "schema", "--check", env=env, cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    written = cli(
        "connectors", "schema", "--output", str(tmp_path / "m.json"), env=env, cwd=tmp_path
    )
    assert written.returncode == 0
    stale = cli(
        "connectors", "schema", "--check", "--output", str(tmp_path / "m.json"),
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert stale.returncode == 0  # what was just written is current
    (tmp_path / "m.json").write_text("{}", "utf-8")
    stale = cli(
        "connectors", "schema", "--check", "--output", str(tmp_path / "m.json"),
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert stale.returncode == 1
    assert "is stale: run `gateway connectors schema`" in stale.stderr
