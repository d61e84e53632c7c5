"""Envelope encryption of stored secrets: round trip, bound rows, KEK files and rotation."""

import dataclasses
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keys import (
    KEK_FOLDER,
    KekRing,
    KeyRingError,
    SealedSecret,
    SecretSealError,
    open_secret,
    rewrap_secret,
    seal_secret,
)

VALUE = "s3cret-api-key-ĐƯỜNG"
ROW = {"connector": "population", "name": "api-key", "version": 1}


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    KekRing.generate(tmp_path)
    return tmp_path


def test_a_sealed_secret_opens_to_its_value(keys_dir: Path) -> None:
    ring = KekRing.load(keys_dir)
    sealed = seal_secret(ring, VALUE, **ROW)
    assert sealed.kek_id == ring.newest().kek_id
    assert VALUE.encode() not in sealed.ciphertext
    assert len(sealed.wrapped_key) == 12 + 32 + 16
    assert open_secret(ring, sealed, **ROW) == VALUE


def test_each_version_has_a_data_key_of_its_own(keys_dir: Path) -> None:
    ring = KekRing.load(keys_dir)
    one, two = seal_secret(ring, VALUE, **ROW), seal_secret(ring, VALUE, **ROW)
    assert one.wrapped_key != two.wrapped_key
    assert one.ciphertext != two.ciphertext


@pytest.mark.parametrize(
    "other",
    [
        {"connector": "business"},
        {"name": "client-secret"},
        {"version": 2},
    ],
)
def test_a_secret_moved_to_another_row_does_not_open(keys_dir: Path, other: dict) -> None:
    ring = KekRing.load(keys_dir)
    sealed = seal_secret(ring, VALUE, **ROW)
    with pytest.raises(SecretSealError):
        open_secret(ring, sealed, **{**ROW, **other})


@pytest.mark.parametrize("part", ["wrapped_key", "nonce", "ciphertext"])
def test_a_flipped_byte_does_not_open(keys_dir: Path, part: str) -> None:
    ring = KekRing.load(keys_dir)
    sealed = seal_secret(ring, VALUE, **ROW)
    data = bytearray(getattr(sealed, part))
    data[len(data) // 2] ^= 0x01
    altered = dataclasses.replace(sealed, **{part: bytes(data)})
    with pytest.raises(SecretSealError):
        open_secret(ring, altered, **ROW)


def test_a_data_key_wrapped_under_an_unknown_kek_does_not_open(
    keys_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    sealed = seal_secret(KekRing.load(keys_dir), VALUE, **ROW)
    elsewhere = tmp_path_factory.mktemp("other")
    KekRing.generate(elsewhere)
    with pytest.raises(SecretSealError, match="no key-encryption key"):
        open_secret(KekRing.load(elsewhere), sealed, **ROW)


def test_a_kek_is_a_private_file_named_by_its_id(keys_dir: Path) -> None:
    (path,) = (keys_dir / KEK_FOLDER).glob("*.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ring = KekRing.load(keys_dir)
    assert path.stem.endswith("-" + ring.newest().kek_id)
    key = bytes.fromhex(path.read_text())
    assert len(key) == 32


def test_a_kek_file_whose_content_does_not_match_its_name_is_refused(keys_dir: Path) -> None:
    (path,) = (keys_dir / KEK_FOLDER).glob("*.key")
    path.write_text(AESGCM.generate_key(bit_length=256).hex())
    with pytest.raises(KeyRingError, match="does not match"):
        KekRing.load(keys_dir)


def test_no_kek_says_how_to_make_one(tmp_path: Path) -> None:
    ring = KekRing.load(tmp_path)
    assert len(ring) == 0
    with pytest.raises(KeyRingError, match="gateway keys generate"):
        seal_secret(ring, VALUE, **ROW)
    assert len(KekRing.ensure(tmp_path)) == 1
    assert len(KekRing.ensure(tmp_path)) == 1


def test_rotation_rewraps_and_both_keks_open_meanwhile(keys_dir: Path) -> None:
    before = KekRing.load(keys_dir)
    old_id = before.newest().kek_id
    sealed = seal_secret(before, VALUE, **ROW)
    new = KekRing.generate(keys_dir)
    during = KekRing.load(keys_dir)
    assert during.ids == [old_id, new.kek_id]
    # A replica with both KEKs opens rows wrapped under either while rows are re-wrapped.
    rewrapped = rewrap_secret(during, sealed, **ROW)
    assert rewrapped.kek_id == new.kek_id
    assert (rewrapped.ciphertext, rewrapped.nonce) == (sealed.ciphertext, sealed.nonce)
    assert open_secret(during, sealed, **ROW) == VALUE
    assert open_secret(during, rewrapped, **ROW) == VALUE
    # New writes use the newest.
    assert seal_secret(during, "other", **ROW).kek_id == new.kek_id
    KekRing.retire(keys_dir, old_id)
    after = KekRing.load(keys_dir)
    assert after.ids == [new.kek_id]
    assert open_secret(after, rewrapped, **ROW) == VALUE
    with pytest.raises(SecretSealError):
        open_secret(after, sealed, **ROW)


def test_reprs_show_no_key_and_no_secret(keys_dir: Path) -> None:
    ring = KekRing.load(keys_dir)
    kek = ring.newest()
    sealed = seal_secret(ring, VALUE, **ROW)
    shown = repr(ring) + repr(kek) + repr(sealed) + str(sealed)
    for hidden in (kek.key.hex(), repr(kek.key), repr(sealed.ciphertext), repr(sealed.wrapped_key)):
        assert hidden not in shown
    assert kek.kek_id in shown
    assert isinstance(sealed, SealedSecret)
