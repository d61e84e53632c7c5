"""Checkpoints: the signed statement of a log's size and root (c2sp.org/tlog-checkpoint).

A checkpoint is a C2SP signed note whose text is `<origin>\\n<size>\\n<base64 root>\\n`,
signed with the `checkpoints` key (Ed25519 note signature). Old keys keep verifying the
checkpoints they signed: rotation never invalidates history.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keys import KeyRing, NoteError, NoteVerifier, note_key_id, open_note, sign_note

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "checkpoint_text",
    "checkpoint_verifiers",
    "parse_checkpoint",
    "sign_checkpoint",
]

DECIMAL: Final = re.compile(r"0|[1-9][0-9]{0,18}")
"""A size or an index: decimal, no leading zero, at most 19 digits (below 2^63)."""


class CheckpointError(ValueError):
    """A checkpoint that is malformed, or not signed by a key given to check it."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A checkpoint as signed: origin, size, root, and the note."""

    origin: str
    size: int
    root: bytes
    note: str


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    """The body of a C2SP tlog-checkpoint."""
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def sign_checkpoint(origin: str, size: int, root: bytes, key: Ed25519PrivateKey) -> Checkpoint:
    """The checkpoint of a tree, signed with `key` under the log's name."""
    note = sign_note(checkpoint_text(origin, size, root), origin, key)
    return Checkpoint(origin, size, root, note)


def parse_checkpoint(note: str, verifiers: Sequence[NoteVerifier]) -> Checkpoint:
    """Verify a signed checkpoint note and read its body; `CheckpointError` if it is wrong."""
    try:
        text, signers = open_note(note, verifiers)
    except NoteError as exc:
        raise CheckpointError(str(exc)) from None
    lines = text.split("\n")
    if len(lines) < 4:
        raise CheckpointError("a checkpoint has an origin, a size and a root")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if origin not in {signer.name for signer in signers}:
        raise CheckpointError("the checkpoint's origin is not the name of the key that signed it")
    if not DECIMAL.fullmatch(size_text):
        raise CheckpointError("a checkpoint's size is a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointError("a checkpoint's root is base64") from None
    if len(root) != 32:
        raise CheckpointError("a checkpoint's root is 32 bytes")
    return Checkpoint(origin, int(size_text), root, note)


def checkpoint_verifiers(keyring: KeyRing, origin: str) -> list[NoteVerifier]:
    """The note verifiers of every checkpoint key in `keyring`, oldest first."""
    return [
        NoteVerifier(origin, note_key_id(origin, k.public), k.public)
        for k in keyring.verifying("checkpoints")
    ]
