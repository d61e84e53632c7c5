"""The `gateway` command line as a newcomer meets it: help, output, README commands."""

from __future__ import annotations

import itertools
import re
import shlex
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Cli

from policies import AgencyKind

ROOT = Path(__file__).parents[4]
README = ROOT / "README.md"


# -- output -------------------------------------------------------------------------------


def test_clients_add_help_lists_every_agency_kind(
    cli: Cli, env: dict[str, str], tmp_path: Path
) -> None:
    shown = cli("clients", "add", "--help", env=env, cwd=tmp_path)
    assert shown.returncode == 0
    words = set(re.findall(r"[a-z_]+", shown.stdout))
    assert {k.value for k in AgencyKind} <= words


def test_commands_print_only_their_output_on_stdout(
    cli: Cli, env: dict[str, str], tmp_path: Path
) -> None:
    upgraded = cli("db", "upgrade", env=env, cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout == "database at head\n"
    listed = cli("catalogue", "list", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[-1].startswith("policy version ")
    for line in lines[:-1]:
        assert re.fullmatch(r"[0-9A-Za-z.-]+\t[a-z_]+\t[^\t]+\t[a-z_,]+", line), line
    generated = cli("keys", "generate", env=env, cwd=tmp_path)
    assert generated.returncode == 0, generated.stderr
    assert "key_generated" not in generated.stdout
    assert "catalogue_loaded" not in listed.stdout + upgraded.stdout


# -- the README ---------------------------------------------------------------------------


def _sh_blocks(text: str) -> list[str]:
    return [b.replace("\\\n", " ") for b in re.findall(r"```sh\n(.*?)```", text, re.S)]


def _written_files(commands: str) -> list[str]:
    """Files the shell lines write (`> FILE`) or hand to `--body`, as the reader runs them."""
    found = []
    for line in commands.splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        words = [w.rstrip(")") for w in words]
        for before, word in itertools.pairwise(words):
            if before in {">", ">>", "--body"} and word != "-":
                found.append(word)
        found += [w.lstrip(">") for w in words if w.startswith(">") and w.lstrip(">")]
    return found


def _inside_the_repository_and_kept(path: str) -> bool:
    if Path(path).is_absolute() and not Path(path).resolve().is_relative_to(ROOT):
        return False
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT, check=False
    )
    return ignored.returncode != 0


def test_readme_commands_write_no_file_into_the_repository() -> None:
    files = [
        f for block in _sh_blocks(README.read_text(encoding="utf-8")) for f in _written_files(block)
    ]
    assert files, "the README hands a body to `gateway token`"
    assert [f for f in files if _inside_the_repository_and_kept(f)] == []


def test_the_demos_printed_commands_write_no_file_into_the_repository(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gateway.cli._demo import Demo

    demo = Demo()
    answer: dict[str, Any] = {
        "data": {"citizen": {"fullName": "X"}},
        "extensions": {"receipt": {"leafHash": "AAAA"}},
    }
    prefill: dict[str, Any] = {
        "data": {"prefill": {"fields": [], "papersAvoided": [], "papersStillNeeded": []}}
    }
    asked = iter([answer, prefill])
    monkeypatch.setattr(demo, "_ask", lambda *_: next(asked))
    monkeypatch.setattr(demo, "_integrated", lambda _: ("http://proof", "origin\n1\nroot\n"))
    monkeypatch.setattr(demo, "_dossier", lambda *_: "000.00.01.H01-250928-0001")
    printed = demo._report("001099012345")
    files = _written_files(printed)
    assert files, "the demo prints a command that writes the body"
    assert [f for f in files if _inside_the_repository_and_kept(f)] == []


def test_the_demo_gives_the_query_page_a_new_secret_at_each_start_in_the_fragment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gateway.cli._demo import Demo

    demo, again = Demo(), Demo()
    assert len(demo.page_secret) >= 32
    assert demo.page_secret != again.page_secret
    assert demo._env("{ x }")["GATEWAY_UNSAFE_DEMO_SECRET"] == demo.page_secret
    asked = iter(
        [
            {"data": {}, "extensions": {"receipt": {"leafHash": "AAAA"}}},
            {"data": {"prefill": {"fields": [], "papersAvoided": [], "papersStillNeeded": []}}},
        ]
    )
    monkeypatch.setattr(demo, "_ask", lambda *_: next(asked))
    monkeypatch.setattr(demo, "_integrated", lambda _: ("http://proof", "origin\n1\nroot\n"))
    monkeypatch.setattr(demo, "_dossier", lambda *_: "000.00.01.H01-250928-0001")
    printed = demo._report("001099012345")
    assert f"{demo.gateway_url}/graphql#demo={demo.page_secret}" in printed
    assert printed.count(demo.page_secret) == 1


def test_the_readme_documents_the_openapi_description_and_only_pages_that_exist(
    tmp_path: Path,
) -> None:
    from gateway.config import GatewaySettings
    from gateway.web import create_app

    settings = GatewaySettings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
        keys_dir=tmp_path / "keys",
    )
    app = create_app(settings)
    text = README.read_text(encoding="utf-8")
    assert app.openapi_url == "/openapi.json"
    assert "`GET /openapi.json`" in text
    for page in ("/docs", "/redoc"):
        served = page in {app.docs_url, app.redoc_url}
        assert (f"`GET {page}`" in text) == served, page


def test_a_missing_file_is_named_not_taken_for_the_database(
    cli: Cli, env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "body.json"
    done = cli(
        "token", "--client", "VN/GOV/X/y", "--procedure", "1.004222", "--case", "c",
        "--officer", "o", "--body", str(missing), env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == f"gateway: No such file or directory: {missing}\n"
