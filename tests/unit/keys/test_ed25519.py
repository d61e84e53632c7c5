"""Ed25519 by libsodium signs the same bytes as OpenSSL and accepts what it accepts."""

from __future__ import annotations

import datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from keys import SigningKey
from keys._ed25519 import secret_key, sign, verify

KEY = Ed25519PrivateKey.generate()
SECRET = secret_key(KEY)
PUBLIC = KEY.public_key().public_bytes_raw()

# RFC 8032, 7.1: TEST 1, TEST 2 and TEST 3 (secret key, public key, message, signature).
VECTORS = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]


@pytest.mark.parametrize(("secret", "public", "message", "signature"), VECTORS)
def test_rfc_8032_vectors(secret: str, public: str, message: str, signature: str) -> None:
    private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret))
    assert private.public_key().public_bytes_raw().hex() == public
    assert sign(secret_key(private), bytes.fromhex(message)).hex() == signature
    assert verify(bytes.fromhex(public), bytes.fromhex(signature), bytes.fromhex(message))


@settings(max_examples=200)
@given(st.binary(max_size=2048))
def test_the_same_signature_as_openssl(message: bytes) -> None:
    signature = KEY.sign(message)
    assert sign(SECRET, message) == signature
    assert verify(PUBLIC, signature, message)


@settings(max_examples=200)
@given(st.binary(min_size=1, max_size=256), st.integers(min_value=0, max_value=10_000))
def test_any_change_is_refused(message: bytes, where: int) -> None:
    signature = bytearray(KEY.sign(message))
    signature[where % 64] ^= 1 << (where % 8)
    assert not verify(PUBLIC, bytes(signature), message)
    altered = bytearray(message)
    altered[where % len(message)] ^= 1
    assert not verify(PUBLIC, KEY.sign(message), bytes(altered))


@pytest.mark.parametrize("length", [0, 63, 65, 128])
def test_a_signature_of_another_length_is_refused(length: int) -> None:
    signature = (KEY.sign(b"m") * 2)[:length]
    assert not verify(PUBLIC, signature, b"m")


def test_another_keys_signature_is_refused() -> None:
    assert not verify(PUBLIC, Ed25519PrivateKey.generate().sign(b"m"), b"m")


def test_a_signing_key_signs_as_its_private_key_does() -> None:
    key = SigningKey("receipts", "kid-1", datetime.datetime.now(datetime.UTC), KEY)
    assert key.sign(b"receipt") == KEY.sign(b"receipt")
    assert "_secret" not in repr(key)
    assert SECRET.hex() not in repr(key)
