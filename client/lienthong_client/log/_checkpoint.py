"""Checkpoints: the signed statement of a log's size and root (c2sp.org/tlog-checkpoint).

A checkpoint is a C2SP signed note whose text is `<origin>\\n<size>\\n<base64 root>\\n`,
signed with the `checkpoints` key (Ed25519 note signature). Old keys keep verifying the
checkpoints they signed: rotation never invalidates history.

A key's id hashes its name, the log's origin, with it: checked under another origin
than the one it was signed under, a checkpoint is one no known key signed. The error
(`UnknownCheckpointKey`) then names the origin the checkpoint gives, the keys that
signed it and the keys looked for, so that a configuration that differs from the
log's reads as that, not as a forged checkpoint.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lienthong_client.log._notes import (
    BadNoteSignature,
    NoteError,
    NoteVerifier,
    UnknownNoteKey,
    note_key_id,
    open_note,
    sign_note,
)

__all__ = [
    "BadCheckpointSignature",
    "Checkpoint",
    "CheckpointError",
    "UnknownCheckpointKey",
    "checkpoint_text",
    "parse_checkpoint",
    "sign_checkpoint",
]

DECIMAL: Final = re.compile(r"0|[1-9][0-9]{0,18}")
"""A size or an index: decimal, no leading zero, at most 19 digits (below 2^63)."""


class CheckpointError(ValueError):
    """A checkpoint that is malformed, or not signed by a key given to check it."""


class BadCheckpointSignature(CheckpointError):
    """A checkpoint a known key signed, changed since: its signature does not verify."""


class UnknownCheckpointKey(CheckpointError):
    """A well-formed checkpoint that none of the keys given signed.

    `origin`: the origin its first line names; `signers` and `wanted`: the keys that
    signed it and the keys looked for, as `<name>+<hex key id>`; `renamed`: a key given
    did sign it, under the checkpoint's origin (only the configured origin differs).
    """

    def __init__(
        self, origin: str, signers: list[str], wanted: list[str], *, renamed: bool
    ) -> None:
        self.origin, self.signers, self.wanted, self.renamed = origin, signers, wanted, renamed
        names = sorted({w.split("+", 1)[0] for w in wanted})
        message = (
            f"no known key signed this note: the checkpoint names the origin {origin!r} "
            f"and is signed by {', '.join(signers) or 'no key'}; looked for "
            f"{', '.join(wanted) or 'no key'} (origin {', '.join(map(repr, names)) or 'none'})"
        )
        if renamed:
            message += f"; a key given signed it under the name {origin!r}"
        super().__init__(message)


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
    except UnknownNoteKey as exc:
        raise _unknown_key(note, verifiers, exc.signers) from None
    except BadNoteSignature as exc:
        raise BadCheckpointSignature(str(exc)) from None
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


def _unknown_key(
    note: str, verifiers: Sequence[NoteVerifier], signers: list[tuple[str, bytes]]
) -> UnknownCheckpointKey:
    """What was looked for and what was found, when no key given signed `note`."""
    origin = note.split("\n", 1)[0]
    renamed = False
    if origin and not any(c.isspace() or c == "+" for c in origin):
        # The same public keys under the origin the checkpoint names.
        again = [NoteVerifier(origin, note_key_id(origin, v.public), v.public) for v in verifiers]
        try:
            open_note(note, again)
            renamed = True
        except NoteError:
            pass
    return UnknownCheckpointKey(
        origin,
        [f"{name}+{key_id.hex()}" for name, key_id in signers],
        [f"{v.name}+{v.key_id.hex()}" for v in verifiers],
        renamed=renamed,
    )
