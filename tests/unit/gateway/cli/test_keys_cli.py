"""`gateway keys generate` makes every key and secret a production gateway needs."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Cli


# -- keys and secrets ---------------------------------------------------------------------


def test_keys_generate_makes_every_key_and_secret_production_needs(
    cli: Cli, env: dict[str, str], tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    first = cli("keys", "generate", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    secret_file = keys / "secrets" / "pseudonyms.key"
    secret = secret_file.read_text().strip()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert secret not in first.stdout + first.stderr
    named = [line.split("\t")[0] for line in first.stdout.splitlines()]
    assert named == ["checkpoints", "consent", "receipts", "pseudonyms", "kek"]
    [kek_file] = (keys / "kek").glob("*.key")
    assert stat.S_IMODE(kek_file.stat().st_mode) == 0o600
    assert kek_file.read_text().strip() not in first.stdout + first.stderr
    # Production loads them all as they are.
    production = {**env, "GATEWAY_ENVIRONMENT": "production"}
    shown = cli("keys", "show", env=production, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    # Again: new signing keys, the same secret (a new one would unlink past pseudonyms).
    second = cli("keys", "generate", env=env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert secret_file.read_text().strip() == secret
    assert secret not in second.stdout + second.stderr
    assert len(list((keys / "checkpoints").glob("*.pem"))) == 2
    # The key-encryption key is kept: it is rotated apart (`keys rotate-kek`).
    assert list((keys / "kek").glob("*.key")) == [kek_file]
