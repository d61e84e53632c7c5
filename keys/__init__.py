"""Keys of the gateway: signing keys, rotation, JWKS, notes, sealing, stored secrets' KEKs."""

from lienthong_client.log import (
    NoteError,
    NoteVerifier,
    UnknownNoteKey,
    note_key_id,
    open_note,
    parse_verifier_key,
    sign_note,
    verifier_key,
)

from keys._envelope import (
    KEK_FOLDER,
    KekRing,
    KeyEncryptionKey,
    SealedSecret,
    SecretSealError,
    open_secret,
    rewrap_secret,
    seal_secret,
)
from keys._jose import eddsa_allowed, verifying_registry
from keys._keyring import PURPOSES, KeyRing, KeyRingError, Signer, SigningKey
from keys._sealing import SealError, open_sealed, seal, unwrap_key, wrap_key
from keys._secrets import load_secret

__all__ = [
    "KEK_FOLDER",
    "PURPOSES",
    "KekRing",
    "KeyEncryptionKey",
    "KeyRing",
    "KeyRingError",
    "NoteError",
    "NoteVerifier",
    "SealError",
    "SealedSecret",
    "SecretSealError",
    "Signer",
    "SigningKey",
    "UnknownNoteKey",
    "eddsa_allowed",
    "load_secret",
    "note_key_id",
    "open_note",
    "open_sealed",
    "open_secret",
    "parse_verifier_key",
    "rewrap_secret",
    "seal",
    "seal_secret",
    "sign_note",
    "unwrap_key",
    "verifier_key",
    "verifying_registry",
    "wrap_key",
]
