"""Keys of the gateway: per-purpose Ed25519 keys, rotation, JWKS, signed notes, sealing."""

from keys._jose import eddsa_allowed
from keys._keyring import PURPOSES, KeyRing, KeyRingError, SigningKey
from keys._notes import (
    NoteError,
    NoteVerifier,
    UnknownNoteKey,
    note_key_id,
    open_note,
    parse_verifier_key,
    sign_note,
    verifier_key,
)
from keys._sealing import SealError, open_sealed, seal, unwrap_key, wrap_key
from keys._secrets import load_secret

__all__ = [
    "PURPOSES",
    "KeyRing",
    "KeyRingError",
    "NoteError",
    "NoteVerifier",
    "SealError",
    "SigningKey",
    "UnknownNoteKey",
    "eddsa_allowed",
    "load_secret",
    "note_key_id",
    "open_note",
    "open_sealed",
    "parse_verifier_key",
    "seal",
    "sign_note",
    "unwrap_key",
    "verifier_key",
    "wrap_key",
]
