"""Signing keys: files on disk, RFC 7638 kids, rotation, JWKS, independent verification."""

import base64
import hashlib
import json
import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from joserfc import jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import OKPKey

from keys import PURPOSES, KeyRing, KeyRingError


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _rfc7638(public: Ed25519PublicKey) -> str:
    """RFC 7638 thumbprint of an Ed25519 key, computed without the code under test."""
    members = {"crv": "Ed25519", "kty": "OKP", "x": _b64url(_raw_public(public))}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return _b64url(hashlib.sha256(canonical).digest())


def _pem_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.pem"))


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    return tmp_path / "var" / "keys"


def test_generate_writes_one_key_per_purpose(key_dir: Path) -> None:
    made = KeyRing.generate(key_dir)
    assert sorted(k.purpose for k in made) == sorted(PURPOSES)
    assert sorted(p.parent.name for p in _pem_files(key_dir)) == sorted(PURPOSES)


def test_key_files_are_private_to_the_owner(key_dir: Path) -> None:
    KeyRing.generate(key_dir)
    for path in _pem_files(key_dir):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_key_directories_are_private_to_the_owner(key_dir: Path) -> None:
    KeyRing.generate(key_dir)
    for folder in [key_dir, *(key_dir / p for p in PURPOSES)]:
        assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0, folder


def test_kid_is_the_rfc_7638_thumbprint(key_dir: Path) -> None:
    for key in KeyRing.generate(key_dir):
        assert key.kid == _rfc7638(key.public)


def test_loaded_kid_is_the_rfc_7638_thumbprint(key_dir: Path) -> None:
    KeyRing.generate(key_dir)
    ring = KeyRing.load(key_dir)
    for purpose in PURPOSES:
        key = ring.signing(purpose)
        assert key.kid == _rfc7638(key.public)


def test_kid_is_in_the_file_name(key_dir: Path) -> None:
    made = {k.kid for k in KeyRing.generate(key_dir)}
    assert {p.stem.split("-", 1)[1] for p in _pem_files(key_dir)} == made


def test_load_reads_what_generate_wrote(key_dir: Path) -> None:
    made = {k.purpose: k for k in KeyRing.generate(key_dir)}
    ring = KeyRing.load(key_dir)
    for purpose, key in made.items():
        loaded = ring.signing(purpose)
        assert loaded.kid == key.kid
        assert loaded.created == key.created
        assert _raw_public(loaded.public) == _raw_public(key.public)


def test_ensure_generates_only_when_missing(key_dir: Path) -> None:
    first = KeyRing.ensure(key_dir)
    second = KeyRing.ensure(key_dir)
    assert len(_pem_files(key_dir)) == len(PURPOSES)
    assert [first.signing(p).kid for p in PURPOSES] == [second.signing(p).kid for p in PURPOSES]


def test_ensure_fills_in_a_missing_purpose(key_dir: Path) -> None:
    [consent] = KeyRing.generate(key_dir, ["consent"])
    ring = KeyRing.ensure(key_dir)
    assert ring.signing("consent").kid == consent.kid
    assert {p.parent.name for p in _pem_files(key_dir)} == set(PURPOSES)


def test_generate_rejects_unknown_purpose(key_dir: Path) -> None:
    with pytest.raises(KeyRingError, match="unknown purpose"):
        KeyRing.generate(key_dir, ["payments"])


def test_rotation_new_key_signs(key_dir: Path) -> None:
    [old] = KeyRing.generate(key_dir, ["receipts"])
    [new] = KeyRing.generate(key_dir, ["receipts"])
    KeyRing.generate(key_dir, ["checkpoints", "consent"])
    ring = KeyRing.load(key_dir)
    assert ring.signing("receipts").kid == new.kid != old.kid


def test_rotation_old_and_new_keys_verify(key_dir: Path) -> None:
    [old] = KeyRing.generate(key_dir, ["receipts"])
    [new] = KeyRing.generate(key_dir, ["receipts"])
    KeyRing.generate(key_dir, ["checkpoints", "consent"])
    ring = KeyRing.load(key_dir)
    assert [k.kid for k in ring.verifying("receipts")] == [old.kid, new.kid]


def test_rotation_keeps_old_signatures_valid(key_dir: Path) -> None:
    [old] = KeyRing.generate(key_dir, ["receipts"])
    signature = old.sign(b"receipt 1")
    KeyRing.generate(key_dir, PURPOSES)
    ring = KeyRing.load(key_dir)
    [verifier] = [k for k in ring.verifying("receipts") if k.kid == old.kid]
    Ed25519PublicKey.from_public_bytes(_raw_public(verifier.public)).verify(signature, b"receipt 1")
    assert ring.find(old.kid) is not None


def test_find_by_kid(key_dir: Path) -> None:
    ring = KeyRing.ensure(key_dir)
    key = ring.signing("consent")
    assert ring.find(key.kid) == key
    assert ring.find("no-such-kid") is None


def test_jwks_lists_every_public_key_without_private_part(key_dir: Path) -> None:
    KeyRing.generate(key_dir)
    KeyRing.generate(key_dir, ["receipts"])
    ring = KeyRing.load(key_dir)
    jwks = ring.jwks()
    assert len(jwks["keys"]) == len(PURPOSES) + 1
    for jwk in jwks["keys"]:
        assert "d" not in jwk
        assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == (
            "OKP",
            "Ed25519",
            "EdDSA",
            "sig",
        )
        assert jwk["purpose"] in PURPOSES


def test_jwks_serialises_without_private_material(key_dir: Path) -> None:
    ring = KeyRing.ensure(key_dir)
    text = json.dumps(ring.jwks())
    for purpose in PURPOSES:
        private = ring.signing(purpose).private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        assert _b64url(private) not in text


def test_jwk_x_is_the_raw_public_key(key_dir: Path) -> None:
    ring = KeyRing.ensure(key_dir)
    key = ring.signing("checkpoints")
    assert _b64url_decode(key.public_jwk()["x"]) == _raw_public(key.public)
    assert key.public_jwk()["kid"] == key.kid


def test_signature_verifies_with_cryptography_from_the_jwk(key_dir: Path) -> None:
    key = KeyRing.ensure(key_dir).signing("receipts")
    signature = key.sign(b"hello")
    public = Ed25519PublicKey.from_public_bytes(_b64url_decode(key.public_jwk()["x"]))
    public.verify(signature, b"hello")
    with pytest.raises(InvalidSignature):
        public.verify(signature, b"hellO")


def test_signature_verifies_as_a_jws_with_joserfc(key_dir: Path) -> None:
    key = KeyRing.ensure(key_dir).signing("consent")
    header = _b64url(json.dumps({"alg": "Ed25519", "kid": key.kid}).encode())
    payload = _b64url(b'{"consent":"c-1"}')
    signature = _b64url(key.sign(f"{header}.{payload}".encode()))
    public = OKPKey.import_key({k: key.public_jwk()[k] for k in ("kty", "crv", "x")})
    token = jws.deserialize_compact(
        f"{header}.{payload}.{signature}", public, algorithms=["Ed25519"]
    )
    assert token.payload == b'{"consent":"c-1"}'
    tampered = _b64url(b'{"consent":"c-2"}')
    with pytest.raises(BadSignatureError):
        jws.deserialize_compact(f"{header}.{tampered}.{signature}", public, algorithms=["Ed25519"])


def test_corrupt_pem_names_the_file(key_dir: Path) -> None:
    KeyRing.generate(key_dir)
    path = next((key_dir / "receipts").glob("*.pem"))
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyRingError) as caught:
        KeyRing.load(key_dir)
    assert str(path) in str(caught.value)


def test_missing_purpose_names_the_directory_and_purpose(key_dir: Path) -> None:
    KeyRing.generate(key_dir, ["checkpoints", "consent"])
    with pytest.raises(KeyRingError) as caught:
        KeyRing.load(key_dir)
    assert str(key_dir) in str(caught.value)
    assert "receipts" in str(caught.value)


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KeyRingError):
        KeyRing.load(tmp_path)


def test_key_file_without_creation_time_names_the_file(key_dir: Path) -> None:
    KeyRing.generate(key_dir)
    path = next((key_dir / "consent").glob("*.pem"))
    renamed = path.with_name("my-key.pem")
    path.rename(renamed)
    with pytest.raises(KeyRingError) as caught:
        KeyRing.load(key_dir)
    assert str(renamed) in str(caught.value)


def test_repr_shows_no_private_material(key_dir: Path) -> None:
    ring = KeyRing.ensure(key_dir)
    key = ring.signing("receipts")
    private = key.private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    pem = key.private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    for shown in (repr(key), str(key), repr(ring), str(ring)):
        assert "private" not in shown.lower()
        assert _b64url(private) not in shown
        assert private.hex() not in shown
        assert pem.decode() not in shown


def test_signing_key_repr_names_purpose_and_kid(key_dir: Path) -> None:
    key = KeyRing.ensure(key_dir).signing("receipts")
    assert "receipts" in repr(key)
    assert key.kid in repr(key)
