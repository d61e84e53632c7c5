"""Symmetric secrets of the gateway (e.g. the key that pseudonymises officer ids)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from keys._keyring import KeyRingError

__all__ = ["load_secret"]

_SIZE = 32


def load_secret(directory: Path, name: str, *, create: bool) -> bytes:
    """The 32-byte secret `name` under `directory/secrets/`, made first if `create`.

    Stored hex-encoded in a file of mode 0600; a missing secret in production (when
    `create` is false) is an error, never silently replaced: a new pseudonym key would
    unlink every past pseudonym.
    """
    path = directory / "secrets" / f"{name}.key"
    if not path.exists():
        if not create:
            raise KeyRingError(f"{path}: missing secret {name!r}; run `gateway keys generate`")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(_SIZE))
    try:
        value = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise KeyRingError(f"{path}: not a usable secret") from exc
    if len(value) != _SIZE:
        raise KeyRingError(f"{path}: a secret is {_SIZE} bytes")
    return value
