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
        ["ok", "land", "sql"],
        ["ok", "population", "rest"],
    ]


def test_list_on_a_database_never_migrated_says_what_to_run(
    cli: Cli, env: dict[str, str], tmp_path: Path
) -> None:
    listed = cli("connectors", "list", env=env, cwd=tmp_path)
    assert listed.returncode == 2
    assert "gateway db upgrade" in listed.stderr
