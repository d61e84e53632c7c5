"""Backup and restore that cannot silently fork the log, on both backends.

A database restored from an older backup holds fewer leaves than the log published:
the gateway records and serves, signs nothing, and says what is missing, until the
operator brings the leaves back (a newer backup) or declares their loss, which opens
the log's next epoch; `gateway audit verify` passes after either.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from lienthong_client.log import cosigner_key

from gateway.log import (
    WitnessPolicy,
    checkpoint_verifiers,
    epoch_origin,
    family_verifiers,
    sign_checkpoint,
)
from gateway.storage import create_engine, log_checkpoints
from keys import KeyRing
from sandbox.witness import WitnessState, create_app
from tests.integration.conftest import ServerThread
from tests.integration.test_cli_commands import _cli, _env
from tests.integration.test_witnesses import Switch, _cosigned, _read, _size

pytestmark = pytest.mark.own_database
WITNESS = "witness.sandbox.lienthong.test/backups"


def _cli_env(gateway: Any, published: Path, witnesses: list[dict[str, str]]) -> dict[str, str]:
    return _env(
        gateway,
        GATEWAY_LOG_PUBLISHED_FILE=str(published),
        GATEWAY_WITNESSES=json.dumps(witnesses),
    )


async def _latest(http: httpx.AsyncClient) -> tuple[str, int]:
    """(origin, size) of the newest checkpoint signed."""
    note = (await http.get("/log/checkpoint/latest")).text
    return note.split("\n", 1)[0], _size(note)


async def _halted(http: httpx.AsyncClient) -> dict[str, Any]:
    """What `/readyz` says of a log that signs nothing (waits for the first check)."""
    for _ in range(100):
        body = (await http.get("/readyz")).json()
        if "logHalted" in body:
            found: dict[str, Any] = body["logHalted"]
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"the gateway never said its log is halted: {body}")


async def _resumed(http: httpx.AsyncClient) -> dict[str, Any]:
    for _ in range(100):
        body: dict[str, Any] = (await http.get("/readyz")).json()
        if "logHalted" not in body:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"the gateway still signs nothing: {body}")


def _backup(env: dict[str, str], to: Path) -> dict[str, Any]:
    done = _cli("backup", "--to", str(to), env=env)
    assert done.returncode == 0, done.stderr
    manifest: dict[str, Any] = json.loads(done.stdout)
    return manifest


async def test_an_older_backup_restored_signs_nothing_until_the_loss_is_declared(
    gateway_factory: Any, dataset: Any, tmp_path: Path, backend: str
) -> None:
    witness_key = Ed25519PrivateKey.generate()
    cosigner = cosigner_key(WITNESS, witness_key.public_key())
    policy = WitnessPolicy((cosigner,), 1)
    switch = Switch()
    server = ServerThread(switch).start()
    published = tmp_path / "outside-the-database" / "published-checkpoint"
    witnesses = [{"url": server.url, "key": cosigner.text}]
    settings = {
        "witnesses": witnesses,
        "merge_delay": 0.2,
        "log_published_file": published,
        "log_continuity_seconds": 1.0,
    }
    people = dataset.sample.citizens
    try:
        gateway = gateway_factory.start(**settings)
        origin = gateway.settings.checkpoint_origin
        verifiers = checkpoint_verifiers(KeyRing.load(gateway.settings.keys_dir), origin)
        epoch_2 = epoch_origin(origin, 2)
        # The witness knows the log, and (told by its operator after the loss) its epoch 2.
        switch.app = create_app(
            name=WITNESS,
            key=witness_key,
            logs={origin: verifiers, epoch_2: family_verifiers(verifiers, epoch_2)},
            state=WitnessState(tmp_path / "witness-state.json"),
        )
        env = _cli_env(gateway, published, witnesses)
        await _read(gateway, people[0])
        await gateway.caught_up()
        async with gateway.client(auth=None) as http:
            _, older_size = await _latest(http)
            await _cosigned(http, policy, older_size)
        older = _backup(env, tmp_path / "older.backup")
        assert older["backend"] == backend
        assert older["log"] == {
            "origin": origin,
            "size": older_size,
            "root": older["log"]["root"],
        }
        for person in people[1:3]:
            await _read(gateway, person)
        await gateway.caught_up()
        async with gateway.client(auth=None) as http:
            _, newer_size = await _latest(http)
            await _cosigned(http, policy, newer_size)  # the witness holds the larger tree
        assert newer_size >= older_size + 2
        gateway.server.stop()

        refused = _cli("restore", "--from", str(tmp_path / "older.backup"), env=env)
        assert refused.returncode == 2
        assert "not empty" in refused.stderr
        restored = _cli("restore", "--from", str(tmp_path / "older.backup"), "--force", env=env)
        assert restored.returncode == 0, restored.stderr
        assert json.loads(restored.stdout)["log"]["size"] == older_size
        assert "LOG_BEHIND_PUBLISHED" in restored.stderr
        # The published file lost too: the witness alone still tells.
        published.unlink()

        gateway = gateway_factory.start(**settings)
        async with gateway.client(auth=None) as http:
            halted = await _halted(http)
            assert halted["code"] == "LOG_BEHIND_PUBLISHED"
            assert halted["detail"]["source"] == f"the witness {WITNESS}"
            assert halted["detail"]["size"] == older_size
            assert halted["detail"]["publishedSize"] == newer_size
            assert halted["detail"]["missing"] == [older_size, newer_size - 1]
            assert f"leaves {older_size} to {newer_size - 1} are missing" in halted["message"]
            # It records and serves; it signs nothing.
            await _read(gateway, people[3])
            await asyncio.sleep(1.0)
            assert await _latest(http) == (origin, older_size)
            checked = _cli("log", "check", env=env)
            assert checked.returncode == 2
            assert "LOG_BEHIND_PUBLISHED" in checked.stderr
            integrated = _cli("log", "integrate", env=env)
            assert integrated.returncode == 2
            assert "LOG_BEHIND_PUBLISHED" in integrated.stderr
            assert await _latest(http) == (origin, older_size)

            declared = _cli(
                "log", "declare-loss", "--operator", "op-7",
                "--reason", "database restored from the backup of the morning", env=env,
            )  # fmt: skip
            assert declared.returncode == 0, declared.stderr
            assert f"leaves {older_size} to {newer_size - 1}" in declared.stdout
            assert epoch_2 in declared.stdout
            # The log goes on in epoch 2: the statement first, then what waited.
            await _resumed(http)
            await gateway.caught_up()
            new_origin, size = await _latest(http)
            assert new_origin == epoch_2
            assert size >= older_size + 2
            cosigned = await _cosigned(http, policy, size)  # the witness accepts epoch 2
            assert cosigned.startswith(f"{epoch_2}\n")
            assert (await http.get("/log/key")).text.startswith(f"{epoch_2}+")
            again = _cli("log", "declare-loss", "--operator", "op-7", "--reason", "x", env=env)
            assert again.returncode == 2
            assert "nothing to declare" in again.stderr
        verified = _cli("audit", "verify", env=env)
        assert verified.returncode == 0, verified.stderr
        assert "statement of loss" in verified.stdout
    finally:
        server.stop()


async def test_an_older_backup_restored_continues_once_a_newer_one_brings_the_leaves_back(
    gateway_factory: Any, dataset: Any, tmp_path: Path
) -> None:
    # No witness: the published file alone, outside the database, tells what was signed.
    published = tmp_path / "state" / "published-checkpoint"
    settings = {"merge_delay": 0.2, "log_published_file": published}
    people = dataset.sample.citizens
    gateway = gateway_factory.start(**settings)
    env = _cli_env(gateway, published, [])
    await _read(gateway, people[0])
    await gateway.caught_up()
    older = _backup(env, tmp_path / "older.backup")
    await _read(gateway, people[1])
    await gateway.caught_up()
    await asyncio.sleep(0.5)
    newer = _backup(env, tmp_path / "newer.backup")
    assert newer["log"]["size"] > older["log"]["size"]
    gateway.server.stop()

    restored = _cli("restore", "--from", str(tmp_path / "older.backup"), "--force", env=env)
    assert restored.returncode == 0, restored.stderr
    assert "LOG_BEHIND_PUBLISHED" in restored.stderr
    gateway = gateway_factory.start(**settings)
    async with gateway.client(auth=None) as http:
        halted = await _halted(http)
    assert halted["detail"]["source"] == str(published)
    assert halted["detail"]["publishedSize"] == newer["log"]["size"]
    gateway.server.stop()

    # The operator's choice: the newer backup, which holds every leaf published.
    restored = _cli("restore", "--from", str(tmp_path / "newer.backup"), "--force", env=env)
    assert restored.returncode == 0, restored.stderr
    assert "LOG_BEHIND_PUBLISHED" not in restored.stderr
    assert _cli("log", "check", env=env).returncode == 0
    gateway = gateway_factory.start(**settings)
    async with gateway.client(auth=None) as http:
        await _resumed(http)
        await _read(gateway, people[2])
        await gateway.caught_up()
        origin, size = await _latest(http)
    assert origin == gateway.settings.checkpoint_origin  # the same log, no new epoch
    assert size > newer["log"]["size"]
    verified = _cli("audit", "verify", env=env)
    assert verified.returncode == 0, verified.stderr

    # An epoch no statement of loss opens is refused by the audit.
    gateway.server.stop()
    keyring = KeyRing.load(gateway.settings.keys_dir)
    epoch_2 = epoch_origin(gateway.settings.checkpoint_origin, 2)
    engine = create_engine(gateway.settings.database_url.get_secret_value())
    try:
        async with engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.select(log_checkpoints).order_by(log_checkpoints.c.size.desc()).limit(1)
                )
            ).one()
            forged = sign_checkpoint(
                epoch_2, row.size, bytes(row.root), keyring.signing("checkpoints").private
            )
            await conn.execute(
                log_checkpoints.update()
                .where(log_checkpoints.c.size == row.size)
                .values(note=forged.note)
            )
    finally:
        await engine.dispose()
    refused = _cli("audit", "verify", env=env)
    assert refused.returncode == 1
    assert "not a statement of loss" in refused.stderr
