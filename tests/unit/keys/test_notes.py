"""C2SP signed notes: the Go sumdb test vector, and notes that must be refused."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keys import NoteError, open_note, parse_verifier_key, sign_note, verifier_key

SEED = bytes.fromhex("810a1402d5146c8d84f2443330f54080ebf98ee17d9c74f6252fc5d5c7283173")
VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
SIGNED = (
    TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZS"
    "NXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
OTHER = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"


def test_the_go_sumdb_vector() -> None:
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    assert verifier_key("PeterNeumann", key.public_key()) == VERIFIER
    assert sign_note(TEXT, "PeterNeumann", key) == SIGNED
    text, signers = open_note(SIGNED, [parse_verifier_key(VERIFIER)])
    assert text == TEXT
    assert [s.name for s in signers] == ["PeterNeumann"]


def test_unknown_signers_are_ignored_but_one_known_is_needed() -> None:
    with pytest.raises(NoteError, match="no known key"):
        open_note(SIGNED, [parse_verifier_key(OTHER)])
    both = SIGNED + "\u2014 Stranger AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
    assert open_note(both, [parse_verifier_key(VERIFIER)])[0] == TEXT


@pytest.mark.parametrize(
    "note",
    [
        TEXT,  # no signatures
        SIGNED.replace("problem is", "problem was"),  # the text changed
        SIGNED[:-1],  # no final newline
        SIGNED.replace("\u2014 ", "- "),  # not an em dash
        SIGNED.replace("cryptography", "crypto\x01graphy"),  # a control character
        SIGNED + "not a signature\n",
    ],
)
def test_bad_notes_are_refused(note: str) -> None:
    with pytest.raises(NoteError):
        open_note(note, [parse_verifier_key(VERIFIER)])


@pytest.mark.parametrize(
    "key",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong id
        "PeterNeumann+c74f20a3+Apc2QcUPDhMQegwxbzhKqiBfsVkmqq",  # not a key
        "PeterNeumann",
    ],
)
def test_bad_verifier_keys(key: str) -> None:
    with pytest.raises(NoteError):
        parse_verifier_key(key)


def test_names_with_spaces_or_plus_are_refused() -> None:
    key = Ed25519PrivateKey.generate()
    for name in ("a b", "a+b", ""):
        with pytest.raises(NoteError):
            sign_note("x\n", name, key)
