"""The sandbox witness (c2sp.org/tlog-witness): what it cosigns, what it refuses, and
that it remembers across a restart."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from lienthong_client.log import (
    CheckpointError,
    cosign,
    cosignatures,
    cosigner_key,
    parse_checkpoint,
    read_policy,
    sign_checkpoint,
)

from gateway.log import CompactRange, WitnessPolicy, consistency_ranges, leaf_hash
from keys import NoteVerifier, note_key_id
from sandbox.witness import SIZE_MEDIA_TYPE, WitnessState, create_app

ORIGIN = "gateway.test/log"
WITNESS = "witness.test/w1"


class Log:
    """A small log of its own: leaves, checkpoints and consistency proofs."""

    def __init__(self, key: Ed25519PrivateKey, seed: str = "") -> None:
        self.key = key
        self.leaves: list[bytes] = []
        self.seed = seed

    def grow(self, n: int) -> None:
        start = len(self.leaves)
        self.leaves += [leaf_hash(f"{self.seed}{i}".encode()) for i in range(start, start + n)]

    def root(self, size: int) -> bytes:
        tree = CompactRange()
        for digest in self.leaves[:size]:
            tree.append(digest)
        return tree.root()

    def checkpoint(self, size: int | None = None) -> str:
        size = len(self.leaves) if size is None else size
        return sign_checkpoint(ORIGIN, size, self.root(size), self.key).note

    def proof(self, old: int, new: int) -> list[bytes]:
        return [_subtree(self.leaves, a, b) for a, b in consistency_ranges(old, new)]


def _subtree(leaves: list[bytes], start: int, end: int) -> bytes:
    tree = CompactRange()
    for digest in leaves[start:end]:
        tree.append(digest)
    return tree.root()


def body(old: int, proof: list[bytes], note: str) -> bytes:
    lines = "".join(base64.b64encode(h).decode() + "\n" for h in proof)
    return f"old {old}\n{lines}\n{note}".encode()


@pytest.fixture
def log_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def witness_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _app(log_key: Ed25519PrivateKey, witness_key: Ed25519PrivateKey, state: Path) -> Any:
    public = log_key.public_key()
    verifier = NoteVerifier(ORIGIN, note_key_id(ORIGIN, public), public)
    return create_app(
        name=WITNESS,
        key=witness_key,
        logs={ORIGIN: [verifier]},
        state=WitnessState(state),
        clock=lambda: 1_700_000_000,
    )


@pytest.fixture
async def witness(
    log_key: Ed25519PrivateKey, witness_key: Ed25519PrivateKey, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    app = _app(log_key, witness_key, tmp_path / "state.json")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://witness"
    ) as client:
        yield client


async def test_it_cosigns_a_log_that_grows_consistently(
    witness: httpx.AsyncClient, log_key: Ed25519PrivateKey, witness_key: Ed25519PrivateKey
) -> None:
    log = Log(log_key)
    log.grow(5)
    first = await witness.post("/add-checkpoint", content=body(0, [], log.checkpoint()))
    assert first.status_code == 200, first.text
    line = first.text
    assert line.startswith(f"\u2014 {WITNESS} ")
    assert line.endswith("\n")
    signed = log.checkpoint() + line
    [cosignature] = cosignatures(signed, [cosigner_key(WITNESS, witness_key.public_key())])
    assert cosignature.witness == WITNESS
    assert cosignature.timestamp == 1_700_000_000
    # The log's own signature still verifies beside it, for a reader of checkpoints.
    public = log_key.public_key()
    assert parse_checkpoint(signed, [NoteVerifier(ORIGIN, note_key_id(ORIGIN, public), public)])
    log.grow(8)
    second = await witness.post(
        "/add-checkpoint", content=body(5, log.proof(5, 13), log.checkpoint())
    )
    assert second.status_code == 200, second.text
    # The same size again, same root: cosigned again.
    again = await witness.post("/add-checkpoint", content=body(13, [], log.checkpoint()))
    assert again.status_code == 200, again.text
    key = await witness.get("/key")
    policy = read_policy(f"witness {key.text.strip()}\nquorum 1\n")
    assert [c.witness for c in policy.check(log.checkpoint() + again.text)] == [WITNESS]


async def test_a_fork_or_a_rollback_is_refused(
    witness: httpx.AsyncClient, log_key: Ed25519PrivateKey
) -> None:
    log, fork = Log(log_key), Log(log_key, seed="other history ")
    log.grow(6)
    fork.grow(6)
    assert (await witness.post("/add-checkpoint", content=body(0, [], log.checkpoint()))).is_success
    # Another tree of the same size: the witness has 6 and another root.
    same_size = await witness.post("/add-checkpoint", content=body(6, [], fork.checkpoint()))
    assert same_size.status_code == 409
    assert same_size.headers["content-type"] == SIZE_MEDIA_TYPE
    assert same_size.text == "6\n"
    # A larger tree of another history: its proof from 6 does not verify.
    fork.grow(4)
    grown = await witness.post(
        "/add-checkpoint", content=body(6, fork.proof(6, 10), fork.checkpoint())
    )
    assert grown.status_code == 422
    # Rolled back: an older checkpoint, or a claim of another old size.
    rolled = await witness.post("/add-checkpoint", content=body(0, [], log.checkpoint(4)))
    assert rolled.status_code == 409
    assert rolled.text == "6\n"
    above = await witness.post("/add-checkpoint", content=body(7, [], log.checkpoint()))
    assert above.status_code == 400


@pytest.mark.parametrize(
    ("mangle", "status"),
    [
        (lambda note: note.replace(ORIGIN, "another.test/log"), 404),  # unknown origin
        (lambda note: note.replace("\n5\n", "\n6\n", 1), 403),  # not the log's signature
        (lambda note: note.split("\n\n")[0] + "\n", 400),  # no signature at all
    ],
)
async def test_what_is_not_a_checkpoint_of_the_log_is_refused(
    witness: httpx.AsyncClient, log_key: Ed25519PrivateKey, mangle: Any, status: int
) -> None:
    log = Log(log_key)
    log.grow(5)
    answer = await witness.post("/add-checkpoint", content=body(0, [], mangle(log.checkpoint())))
    assert answer.status_code == status, answer.text


@pytest.mark.parametrize(
    "raw",
    [b"", b"old 01\n\n", b"new 0\n\n", b"old 0\nnot base64!\n\n", b"\xff\xfe", b"old 0\n"],
)
async def test_a_malformed_request_is_400(witness: httpx.AsyncClient, raw: bytes) -> None:
    assert (await witness.post("/add-checkpoint", content=raw)).status_code == 400


async def test_a_proof_from_size_zero_is_empty(
    witness: httpx.AsyncClient, log_key: Ed25519PrivateKey
) -> None:
    log = Log(log_key)
    log.grow(3)
    stray = [leaf_hash(b"x")]
    answer = await witness.post("/add-checkpoint", content=body(0, stray, log.checkpoint()))
    assert answer.status_code == 422


async def test_a_restart_keeps_what_it_cosigned(
    log_key: Ed25519PrivateKey, witness_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    log = Log(log_key)
    log.grow(9)
    for round_ in (1, 2):
        app = _app(log_key, witness_key, state)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://witness"
        ) as client:
            answer = await client.post("/add-checkpoint", content=body(0, [], log.checkpoint()))
            if round_ == 1:
                assert answer.status_code == 200
            else:  # the new process knows size 9 already
                assert answer.status_code == 409
                assert answer.text == "9\n"


def test_a_policy_asks_for_its_quorum(witness_key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.generate()
    one = cosigner_key(WITNESS, witness_key.public_key())
    two = cosigner_key("witness.test/w2", other.public_key())
    policy = WitnessPolicy((one, two), 2)
    log = Log(Ed25519PrivateKey.generate())
    log.grow(1)
    note = log.checkpoint()
    once = note + cosign(note[: note.index("\n\n") + 1], WITNESS, witness_key, 1)
    with pytest.raises(CheckpointError, match="1 of the 2 cosignatures"):
        policy.check(once)
    # A cosignature changed after the fact invalidates the checkpoint for the policy.
    changed = once[:-10] + ("A" if once[-10] != "A" else "B") + once[-9:]
    with pytest.raises(CheckpointError, match="does not verify"):
        WitnessPolicy((one,), 1).check(changed)
    with pytest.raises(CheckpointError):
        WitnessPolicy((one,), 2)
    with pytest.raises(CheckpointError):
        read_policy("witness not-a-key\n")
    with pytest.raises(CheckpointError):
        read_policy(f"witness {one.text}\nwitness {one.text}\n")
