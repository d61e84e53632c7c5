"""Signing keys of the gateway: per-purpose Ed25519 keys, rotation and JWKS."""

from keys._keyring import PURPOSES, KeyRing, KeyRingError, SigningKey

__all__ = ["PURPOSES", "KeyRing", "KeyRingError", "SigningKey"]
