"""Log formats: tile paths, checkpoints, public leaves, receipts."""

from __future__ import annotations

import base64
import datetime
import pickle  # nosec B403

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.errors import NotFound
from gateway.log import (
    Checkpoint,
    Receipts,
    checkpoint_text,
    parse_checkpoint,
    parse_tile_path,
    public_leaf,
    read_leaf_hash,
    tile_path,
    tlog_proof,
    verify_receipt,
)
from keys import KeyRing, NoteVerifier, note_key_id, sign_note


@pytest.mark.parametrize(
    ("n", "path"), [(0, "000"), (273, "273"), (1000, "x001/000"), (1234067, "x001/x234/067")]
)
def test_tile_paths(n: int, path: str) -> None:
    assert tile_path(n) == path
    assert parse_tile_path(f"0/{path}") == ("0", n, 256)
    assert parse_tile_path(f"entries/{path}.p/17") == ("entries", n, 17)


@pytest.mark.parametrize(
    "path",
    [
        "0", "0/1", "0/0001", "8/000", "01/000", "0/x1/000", "0/000.p/0", "0/000.p/256",
        "x/000", "0/x000/005", "0/000\n", "0/\u0661\u0662\u0663", "0/000.p/01",
        "0/x036/x028/x797/x018/x963/969",  # 2**55: its first hash has no 64-bit index
        "0/" + "x999/" * 3000 + "999",
    ],
)  # fmt: skip
def test_bad_tile_paths(path: str) -> None:
    with pytest.raises(NotFound):
        parse_tile_path(path)


def test_the_largest_tile_index_still_parses() -> None:
    last = (2**63 - 1) >> 8
    assert parse_tile_path(f"0/{tile_path(last)}") == ("0", last, 256)


def test_checkpoints_round_trip() -> None:
    key = Ed25519PrivateKey.generate()
    origin = "gateway.example.gov.vn/log"
    note = sign_note(checkpoint_text(origin, 42, b"\x07" * 32), origin, key)
    verifier = NoteVerifier(origin, note_key_id(origin, key.public_key()), key.public_key())
    checkpoint = parse_checkpoint(note, [verifier])
    assert (checkpoint.origin, checkpoint.size, checkpoint.root) == (origin, 42, b"\x07" * 32)
    proof = tlog_proof(3, [b"\x01" * 32], checkpoint)
    assert proof.startswith("c2sp.org/tlog-proof@v1\nindex 3\nAQEBAQ")
    assert proof.endswith(note)
    bad = sign_note(f"{origin}\n042\n{'A' * 43}=\n", origin, key)
    with pytest.raises(ValueError, match="size"):
        parse_checkpoint(bad, [verifier])
    unicode_size = sign_note(f"{origin}\n\u0664\u0662\n{'A' * 43}=\n", origin, key)
    with pytest.raises(ValueError, match="size"):
        parse_checkpoint(unicode_size, [verifier])
    # Signed by the right key, but the body names another log.
    elsewhere = sign_note(checkpoint_text("other.example/log", 42, b"\x07" * 32), origin, key)
    with pytest.raises(ValueError, match="origin"):
        parse_checkpoint(elsewhere, [verifier])
    assert isinstance(checkpoint, Checkpoint)


def test_public_leaves_say_nothing_about_people() -> None:
    leaf = public_leaf(
        type="access",
        ts=datetime.datetime(2026, 11, 25, 1, 2, 3, 456789, tzinfo=datetime.UTC),
        envelope_hash="ab" * 32,
        policy_version="cd" * 32,
    )
    assert leaf == (
        b'{"envelope_hash":"'
        + b"ab" * 32
        + b'","policy_version":"'
        + b"cd" * 32
        + b'","ts":"2026-11-25T01:02:03.456789Z","type":"access","v":1}'
    )


def test_receipts_verify_with_the_receipt_key_only(tmp_path) -> None:
    ring = KeyRing.ensure(tmp_path)
    receipt = Receipts.of(ring, origin="o/log", merge_delay=1.0).sign(b"\x05" * 32)
    assert verify_receipt(receipt, ring.signing("receipts").public)
    assert not verify_receipt(receipt, ring.signing("checkpoints").public)
    assert not verify_receipt({**receipt, "leafHash": "AAAA"}, ring.signing("receipts").public)


def test_receipts_pickle_for_the_writer_process_and_hide_their_key(tmp_path) -> None:
    """What signs receipts crosses to the recorder's writer process (pickled) and signs
    the same bytes there; its secret shows in no `repr`."""
    ring = KeyRing.ensure(tmp_path)
    receipts = Receipts.of(ring, origin="o/log", merge_delay=2.5)
    moved = pickle.loads(pickle.dumps(receipts))  # nosec B301
    at = datetime.datetime(2026, 12, 7, 1, 2, 3, tzinfo=datetime.UTC)
    here = receipts.sign(b"\x07" * 32, at=at)
    assert moved.sign(b"\x07" * 32, at=at) == here
    assert here == Receipts.of(ring, origin="o/log", merge_delay=2.5).sign(b"\x07" * 32, at=at)
    assert here["maxMergeDelaySeconds"] == 2.5
    assert verify_receipt(here, ring.signing("receipts").public)
    secret = ring.signing("receipts").signer.secret
    for shown in (repr(receipts), repr(moved), repr(receipts.signer)):
        assert secret.hex() not in shown
        assert repr(secret) not in shown
        assert receipts.signer.kid in shown


# A hash whose standard base64 has both `+` and `/` in it (and so `-` and `_` in base64url).
PLUS_SLASH = bytes.fromhex("fbff" + "00" * 28 + "fbff")


def test_leaf_hashes_in_json_are_base64url_without_padding(tmp_path) -> None:
    ring = KeyRing.ensure(tmp_path)
    receipt = Receipts.of(ring, origin="o/log", merge_delay=1.0).sign(PLUS_SLASH)
    assert receipt["v"] == 2
    assert receipt["leafHash"] == base64.urlsafe_b64encode(PLUS_SLASH).decode().rstrip("=")
    assert "-" in receipt["leafHash"]
    assert "_" in receipt["leafHash"]
    assert not set("+/=") & set(receipt["signature"])
    assert verify_receipt(receipt, ring.signing("receipts").public)


def test_a_receipt_issued_before_base64url_still_verifies(tmp_path) -> None:
    """Version 1 receipts had the leaf hash and the signature in standard base64."""
    ring = KeyRing.ensure(tmp_path)
    payload = {
        "v": 1,
        "origin": "o/log",
        "leafHash": base64.b64encode(PLUS_SLASH).decode(),
        "timestamp": "2026-12-06T00:30:54.664461Z",
        "maxMergeDelaySeconds": 1.0,
    }
    key = ring.signing("receipts")
    signature = base64.b64encode(key.sign(rfc8785.dumps(payload))).decode()
    old = {**payload, "kid": key.kid, "signature": signature}
    assert "+" in old["leafHash"]
    assert "/" in old["leafHash"]
    assert verify_receipt(old, key.public)
    assert read_leaf_hash(old["leafHash"]) == PLUS_SLASH
    assert not verify_receipt({**old, "origin": "other/log"}, key.public)


@pytest.mark.parametrize(
    "text",
    [
        base64.urlsafe_b64encode(PLUS_SLASH).decode().rstrip("="),
        base64.urlsafe_b64encode(PLUS_SLASH).decode(),
        base64.b64encode(PLUS_SLASH).decode(),
        base64.b64encode(PLUS_SLASH).decode().rstrip("="),
    ],
    ids=["base64url", "base64url-padded", "base64", "base64-unpadded"],
)
def test_a_leaf_hash_is_read_in_either_alphabet(text: str) -> None:
    assert read_leaf_hash(text) == PLUS_SLASH


@pytest.mark.parametrize(
    "text",
    ["", "AAAA", "not-base64!", "A" * 42, "A" * 44, "A" * 20 + "=" + "A" * 22, "\u0661" * 43],
)
def test_a_leaf_hash_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="a leaf hash is 32 bytes"):
        read_leaf_hash(text)
