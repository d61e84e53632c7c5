"""Signing keys of the gateway: per-purpose Ed25519 keys, rotation and JWKS."""

from keys._jose import eddsa_allowed
from keys._keyring import PURPOSES, KeyRing, KeyRingError, SigningKey
from keys._secrets import load_secret

__all__ = ["PURPOSES", "KeyRing", "KeyRingError", "SigningKey", "eddsa_allowed", "load_secret"]
