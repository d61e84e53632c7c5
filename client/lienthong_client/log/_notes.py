r"""C2SP signed notes with Ed25519 signatures (c2sp.org/signed-note).

A note is UTF-8 text ending in a newline, a blank line, then signature lines
`— <name> <base64(key id || signature)>`. The key id is the first four bytes of
SHA-256(name || "\n" || 0x01 || public key); the signature is plain Ed25519 over the
text, final newline included. A verifier key is written `<name>+<hex key id>+<base64(0x01
|| public key)>`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = [
    "BadNoteSignature",
    "NoteError",
    "NoteVerifier",
    "UnknownNoteKey",
    "note_key_id",
    "open_note",
    "parse_verifier_key",
    "sign_note",
    "verifier_key",
]

_ED25519 = b"\x01"
_DASH = "\u2014 "
_MAX_SIGNATURES = 100


class NoteError(ValueError):
    """A note that is malformed or carries no valid signature of a known key."""


class BadNoteSignature(NoteError):
    """A signature of a known key that does not verify: the note was changed."""


class UnknownNoteKey(NoteError):
    """A well-formed note that no known key signed; `signers`: who did (name, key id)."""

    def __init__(self, signers: list[tuple[str, bytes]]) -> None:
        super().__init__("no known key signed this note")
        self.signers = signers


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _check_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise NoteError("a key name is non-empty, without spaces or '+'")


def note_key_id(name: str, public: Ed25519PublicKey) -> bytes:
    """The 4-byte key id of an Ed25519 note key."""
    _check_name(name)
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + _raw(public)).digest()[:4]


def verifier_key(name: str, public: Ed25519PublicKey) -> str:
    """`<name>+<hex key id>+<base64(0x01 || public key)>`."""
    encoded = base64.b64encode(_ED25519 + _raw(public)).decode()
    return f"{name}+{note_key_id(name, public).hex()}+{encoded}"


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    """A known note key: name, key id and public key."""

    name: str
    key_id: bytes
    public: Ed25519PublicKey


def parse_verifier_key(text: str) -> NoteVerifier:
    """Read a verifier key string, checking that its key id matches its key."""
    name, key_id_hex, encoded = [*text.split("+", 2), "", ""][:3]
    try:
        key_id = bytes.fromhex(key_id_hex)
        raw = base64.b64decode(encoded, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise NoteError("not a verifier key") from exc
    if len(key_id) != 4 or len(raw) != 33 or raw[:1] != _ED25519:
        raise NoteError("not an Ed25519 verifier key")
    public = Ed25519PublicKey.from_public_bytes(raw[1:])
    if note_key_id(name, public) != key_id:
        raise NoteError("the key id does not match the key")
    return NoteVerifier(name, key_id, public)


def sign_note(text: str, name: str, private: Ed25519PrivateKey) -> str:
    """The signed note of `text` (which must end in a newline)."""
    if not text.endswith("\n"):
        raise NoteError("note text ends with a newline")
    key_id = note_key_id(name, private.public_key())
    signature = private.sign(text.encode())
    return f"{text}\n{_DASH}{name} {base64.b64encode(key_id + signature).decode()}\n"


def open_note(note: str, verifiers: Iterable[NoteVerifier]) -> tuple[str, list[NoteVerifier]]:
    """The text of `note` and the known keys whose signatures verify.

    Signatures of unknown keys are ignored; a signature of a known key that does not
    verify makes the whole note invalid, and so does a note no known key signed.
    """
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise NoteError("control characters in note")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("no blank line before the signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block or not block.endswith("\n"):
        raise NoteError("the signature block ends with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise NoteError("too many signatures")
    known = {(v.name, v.key_id): v for v in verifiers}
    verified: list[NoteVerifier] = []
    unknown: list[tuple[str, bytes]] = []
    for line in lines:
        if not line.startswith(_DASH):
            raise NoteError("a signature line starts with an em dash and a space")
        name, _, encoded = line[len(_DASH) :].partition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise NoteError("a signature is base64") from exc
        if len(raw) < 5:
            raise NoteError("a signature is a key id and a signature")
        verifier = known.get((name, raw[:4]))
        if verifier is None:
            unknown.append((name, raw[:4]))
            continue
        try:
            verifier.public.verify(raw[4:], text.encode())
        except InvalidSignature as exc:
            raise BadNoteSignature(f"the signature of {name} does not verify") from exc
        verified.append(verifier)
    if not verified:
        raise UnknownNoteKey(unknown)
    return text, verified
