"""Signing keys of the gateway: per-purpose Ed25519 keys, rotation, JWKS, signed notes."""

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
from keys._secrets import load_secret

__all__ = [
    "PURPOSES",
    "KeyRing",
    "KeyRingError",
    "NoteError",
    "NoteVerifier",
    "SigningKey",
    "UnknownNoteKey",
    "eddsa_allowed",
    "load_secret",
    "note_key_id",
    "open_note",
    "parse_verifier_key",
    "sign_note",
    "verifier_key",
]
