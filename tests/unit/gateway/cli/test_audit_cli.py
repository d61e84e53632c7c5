"""`gateway audit verify-proof` and `gateway audit verify`, run as the command line runs.

A proof from the public `/log/tlog-proof` may or may not carry its leaf; with
`--leaf-hash` the command proves that hash is in the log and says what it could not
check. `audit verify` run with another configuration than the gateway's says so,
naming origins and keys, rather than calling the log tampered with.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench._log import access_event
from gateway.cli import main
from gateway.log import (
    Checkpoint,
    checkpoint_text,
    leaf_hash,
    node_hash,
    public_leaf,
    tlog_proof,
)
from gateway.log.store import TransparencyLog
from gateway.records import insert_events
from gateway.storage import create_engine, upgrade
from keys import KeyRing, note_key_id, sign_note, verifier_key

ORIGIN = "gateway.example.gov.vn/log"


def _mth(hashes: list[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return node_hash(_mth(hashes[:k]), _mth(hashes[k:]))


def _path(index: int, hashes: list[bytes]) -> list[bytes]:
    """RFC 6962 PATH(m, D[n]), written out recursively."""
    if len(hashes) <= 1:
        return []
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    if index < k:
        return [*_path(index, hashes[:k]), _mth(hashes[k:])]
    return [*_path(index - k, hashes[k:]), _mth(hashes[:k])]


@dataclass
class _Log:
    leaves: list[bytes]
    hashes: list[bytes]
    checkpoint: Checkpoint
    key: str

    def proof(self, index: int, *, with_leaf: bool) -> str:
        extra = self.leaves[index] if with_leaf else None
        return tlog_proof(index, _path(index, self.hashes), self.checkpoint, extra=extra)


@pytest.fixture(scope="module")
def log() -> _Log:
    private = Ed25519PrivateKey.generate()
    t0 = datetime.datetime(2026, 12, 6, 1, 2, 3, tzinfo=datetime.UTC)
    leaves = [
        public_leaf(
            type="access",
            ts=t0 + datetime.timedelta(seconds=n),
            envelope_hash=hashlib.sha256(b"%d" % n).hexdigest(),
            policy_version="ab" * 32,
        )
        for n in range(6)
    ]
    hashes = [leaf_hash(leaf) for leaf in leaves]
    root = _mth(hashes)
    note = sign_note(checkpoint_text(ORIGIN, len(leaves), root), ORIGIN, private)
    key = verifier_key(ORIGIN, private.public_key())
    assert key.split("+")[1] == note_key_id(ORIGIN, private.public_key()).hex()
    return _Log(leaves, hashes, Checkpoint(ORIGIN, len(leaves), root, note), key)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _saved(tmp_path: Path, text: str) -> str:
    path = tmp_path / "leaf.tlog-proof"
    path.write_text(text, encoding="utf-8")
    return str(path)


# -- verify-proof ---------------------------------------------------------------------


def test_a_witness_policy_asks_the_proofs_checkpoint_for_its_cosignatures(
    log: _Log, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dataclasses import replace

    from lienthong_client.log import cosign, cosigner_key

    witness = Ed25519PrivateKey.generate()
    key = cosigner_key("witness.test/w1", witness.public_key())
    text = log.checkpoint.note[: log.checkpoint.note.index("\n\n") + 1]
    cosigned = replace(
        log.checkpoint, note=log.checkpoint.note + cosign(text, key.name, witness, 1_765_000_000)
    )
    witnessed = tlog_proof(2, _path(2, log.hashes), cosigned, extra=log.leaves[2])
    bare = _saved(tmp_path, log.proof(2, with_leaf=True))
    policy = tmp_path / "witnesses.txt"
    policy.write_text(f"witness {key.text}\nquorum 1\n", encoding="utf-8")
    code, out, err = _run(
        capsys, "audit", "verify-proof", bare, "--key", log.key, "--witness-policy", str(policy)
    )
    assert code == 1
    assert "0 of the 1 cosignatures the witness policy asks for" in err
    good = tmp_path / "cosigned.tlog-proof"
    good.write_text(witnessed, encoding="utf-8")
    code, out, err = _run(
        capsys, "audit", "verify-proof", str(good), "--key", log.key, "--witness", key.text
    )
    assert code == 0, err
    assert "cosigned by 1 of the 1 witnesses trusted (witness.test/w1; 1 needed)" in out
    code, out, err = _run(
        capsys, "audit", "verify-proof", str(good), "--key", log.key, "--quorum", "1"
    )
    assert code == 2
    assert "--quorum needs the witnesses' keys" in err
    # Against the database a policy checks nothing: refused, not silently passed.
    code, out, err = _run(capsys, "audit", "verify", "--witness", key.text)
    assert code == 2
    assert "use it with --url" in err


def test_a_proof_with_its_leaf_verifies_on_its_own(
    log: _Log, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = _saved(tmp_path, log.proof(2, with_leaf=True))
    code, out, err = _run(capsys, "audit", "verify-proof", file, "--key", log.key)
    assert code == 0, err
    assert f"leaf 2 is in the checkpoint of {ORIGIN} at size 6" in out
    assert f"leaf hash {_b64url(log.hashes[2])}" in out
    assert "access record of 2026-12-06T01:02:05.000000Z" in out
    assert "the proof verifies" in out


def test_leaf_hash_with_a_proof_that_carries_the_leaf(
    log: _Log, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = _saved(tmp_path, log.proof(4, with_leaf=True))
    given = _b64url(log.hashes[4])
    code, out, err = _run(
        capsys, "audit", "verify-proof", file, "--key", log.key, "--leaf-hash", given
    )
    assert code == 0, err
    assert f"leaf 4 is in the checkpoint of {ORIGIN} at size 6" in out
    assert "the leaf in the proof has the hash given" in out
    assert "not checked: the leaf's contents" not in out
    # No witness policy given: said, not silently passed.
    assert "not checked: witnesses' cosignatures" in out


def test_leaf_hash_with_a_proof_without_the_leaf(
    log: _Log, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = _saved(tmp_path, log.proof(3, with_leaf=False))
    given = _b64url(log.hashes[3])
    code, out, err = _run(
        capsys, "audit", "verify-proof", file, "--key", log.key, "--leaf-hash", given
    )
    assert code == 0, err
    assert f"leaf 3 is in the checkpoint of {ORIGIN} at size 6" in out
    assert f"leaf hash {given}" in out
    assert "not checked: the leaf's contents" in out
    assert "the proof carries no leaf" in out
    assert "the leaf hash is in the log" in out


def test_leaf_hash_in_standard_base64_as_old_receipts_wrote_it(
    log: _Log, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = _saved(tmp_path, log.proof(5, with_leaf=False))
    given = base64.b64encode(log.hashes[5]).decode()
    code, _, err = _run(
        capsys, "audit", "verify-proof", file, "--key", log.key, "--leaf-hash", given
    )
    assert code == 0, err


@pytest.mark.parametrize("with_leaf", [True, False], ids=["with-leaf", "without-leaf"])
def test_a_wrong_leaf_hash_fails(
    log: _Log, tmp_path: Path, capsys: pytest.CaptureFixture[str], with_leaf: bool
) -> None:
    file = _saved(tmp_path, log.proof(3, with_leaf=with_leaf))
    wrong = _b64url(log.hashes[1])
    code, out, err = _run(
        capsys, "audit", "verify-proof", file, "--key", log.key, "--leaf-hash", wrong
    )
    assert code == 1
    assert f"{file} does not verify" in err
    expected = "another leaf than the hash given" if with_leaf else "does not lead"
    assert expected in err
    assert "verifies" not in out


def test_a_proof_without_the_leaf_and_without_a_hash_says_what_to_give(
    log: _Log, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = _saved(tmp_path, log.proof(3, with_leaf=False))
    code, _, err = _run(capsys, "audit", "verify-proof", file, "--key", log.key)
    assert code == 1
    assert "carries no leaf (`extra` line)" in err
    assert "--leaf-hash" in err


def test_a_leaf_hash_that_is_not_one_is_a_usage_error(
    log: _Log, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = _saved(tmp_path, log.proof(3, with_leaf=False))
    code, _, err = _run(
        capsys, "audit", "verify-proof", file, "--key", log.key, "--leaf-hash", "AAAA"
    )
    assert code == 2
    assert "--leaf-hash" in err


# -- audit verify, with a configuration that is not the gateway's ---------------------


async def _write_log(database: str, keys: Path, origin: str) -> None:
    engine = create_engine(database)
    try:
        await upgrade(engine)
        store = TransparencyLog(engine, KeyRing.load(keys), origin=origin)
        await store.ensure_checkpoint()
        async with engine.begin() as conn:
            await insert_events(conn, [access_event(i) for i in range(5)])
        assert await store.integrate() == 5
    finally:
        await engine.dispose()


@pytest.fixture
def written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """A log written by a gateway whose GATEWAY_ORIGIN was https://gateway.example.gov.vn."""
    keys = tmp_path / "keys"
    KeyRing.generate(keys)
    database = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    asyncio.run(_write_log(database, keys, ORIGIN))
    monkeypatch.chdir(tmp_path)  # no .env of the working tree
    for name in ("GATEWAY_ORIGIN", "GATEWAY_LOG_ORIGIN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", database)
    monkeypatch.setenv("GATEWAY_KEYS_DIR", str(keys))
    return database, keys


def _checkpoint_key(keys: Path, name: str) -> str:
    [checkpoints] = KeyRing.load(keys).verifying("checkpoints")
    return verifier_key(name, checkpoints.public)


def _key_id(keys: Path, name: str) -> str:
    """`<name>+<hex key id>`: a checkpoint key as the messages name it."""
    return "+".join(_checkpoint_key(keys, name).split("+")[:2])


def test_audit_verify_with_the_gateways_origin_passes(
    written: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATEWAY_ORIGIN", "https://gateway.example.gov.vn")
    code, out, err = _run(capsys, "audit", "verify")
    assert code == 0, err
    assert "the log verifies" in out


def test_audit_verify_without_the_gateways_origin_says_the_configuration_differs(
    written: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, keys = written
    looked_for = _key_id(keys, "127.0.0.1:8000/log")
    signed_by = _key_id(keys, ORIGIN)
    code, out, err = _run(capsys, "audit", "verify")
    assert code == 2, out
    assert "does not verify" not in err
    assert "the log verifies" not in out
    assert "the configuration differs" in err
    assert f"the checkpoint names the origin {ORIGIN!r}" in err
    assert "the configured origin is '127.0.0.1:8000/log'" in err
    assert f"looked for {looked_for}" in err
    assert f"signed by {signed_by}" in err
    assert "GATEWAY_ORIGIN" in err
    assert "not a sign that the log was changed" in err


def test_audit_verify_with_other_keys_says_the_configuration_differs(
    written: tuple[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, keys = written
    other = tmp_path / "other-keys"
    KeyRing.generate(other)
    monkeypatch.setenv("GATEWAY_ORIGIN", "https://gateway.example.gov.vn")
    monkeypatch.setenv("GATEWAY_KEYS_DIR", str(other))
    looked_for = _key_id(other, ORIGIN)
    signed_by = _key_id(keys, ORIGIN)
    code, out, err = _run(capsys, "audit", "verify")
    assert code == 2, out
    assert "does not verify" not in err
    assert "the configuration differs" in err
    assert f"looked for {looked_for}" in err
    assert f"signed by {signed_by}" in err
    assert "GATEWAY_KEYS_DIR" in err


def test_audit_verify_with_the_key_but_not_the_origin_says_so(
    written: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """`--key` names the log rightly, the settings' origin is another: not tampering."""
    _, keys = written
    code, out, err = _run(capsys, "audit", "verify", "--key", _checkpoint_key(keys, ORIGIN))
    assert code == 2, out
    assert "the configuration differs" in err
    assert f"the checkpoint names the origin {ORIGIN!r}" in err
    assert "the configured origin is '127.0.0.1:8000/log'" in err
    assert "stored columns differ" not in err


def test_audit_verify_calls_a_later_checkpoint_no_known_key_signed_forged(
    written: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Earlier checkpoints verify with the gateway's keys: a later one they did not sign
    is a finding about the log, not a configuration that differs."""
    import sqlalchemy as sa
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gateway.log import sign_checkpoint
    from gateway.storage import log_checkpoints

    database, _ = written

    async def forge() -> None:
        engine = create_engine(database)
        try:
            async with engine.begin() as conn:
                size, root = (
                    await conn.execute(
                        sa.select(log_checkpoints.c.size, log_checkpoints.c.root)
                        .order_by(log_checkpoints.c.size.desc())
                        .limit(1)
                    )
                ).one()
                assert size > 0
                forged = sign_checkpoint(ORIGIN, size, bytes(root), Ed25519PrivateKey.generate())
                await conn.execute(
                    sa.update(log_checkpoints)
                    .where(log_checkpoints.c.size == size)
                    .values(note=forged.note)
                )
        finally:
            await engine.dispose()

    asyncio.run(forge())
    monkeypatch.setenv("GATEWAY_ORIGIN", "https://gateway.example.gov.vn")
    code, out, err = _run(capsys, "audit", "verify")
    assert code == 1, (out, err)
    assert "does not verify" in err
    assert "the configuration differs" not in err
