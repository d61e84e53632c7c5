"""Private keys of clients kept on this machine: for `gateway token`, the demo and tests.

A real agency keeps its client key in its own case-handling system (or an HSM) and
registers only the public key. For the demo and for testing, `gateway clients keys add
--generate` makes a key pair, keeps the private key here (PKCS#8 PEM, mode 0600) and
registers the public key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, OKPKey

from gateway.admission._clients import ClientRegistry
from gateway.errors import Conflict, NotFound
from gateway.records import AdminRecorder

__all__ = ["add_local_key", "generate_local_key", "has_local_key", "load_local_key"]


def _folder(directory: Path, client_id: str) -> Path:
    return directory / client_id.replace("/", "__")


def _new_key(alg: str) -> OKPKey | ECKey:
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519")
    if alg == "ES256":
        return ECKey.generate_key("P-256")
    raise ValueError("alg is EdDSA or ES256")


def _save(directory: Path, client_id: str, kid: str, key: OKPKey | ECKey) -> None:
    """Keep the private key as `<kid>.pem`: `gateway token` signs with that `kid`."""
    folder = _folder(directory, client_id)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(folder / f"{kid}.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.as_pem(private=True))


def generate_local_key(
    directory: Path, client_id: str, *, alg: str = "EdDSA"
) -> tuple[OKPKey | ECKey, dict[str, Any], str]:
    """A new key pair for `client_id`: (private key, public JWK, kid = thumbprint)."""
    key = _new_key(alg)
    kid = str(key.thumbprint())
    _save(directory, client_id, kid, key)
    return key, key.as_dict(private=False), kid


async def add_local_key(
    registry: ClientRegistry,
    directory: Path,
    client_id: str,
    *,
    record: AdminRecorder,
    alg: str = "EdDSA",
    kid: str | None = None,
) -> tuple[OKPKey | ECKey, str]:
    """Make a key pair here and register its public half to `client_id`: (key, kid).

    The private key is kept under the `kid` the registry gave it (`kid`, by default
    the thumbprint), and only once the registry has accepted it: a key that failed
    to register is never the newest local key `gateway token` would sign with.
    """
    if kid is not None and (_folder(directory, client_id) / f"{kid}.pem").exists():
        # Refused before anything is registered: a stale private key of that kid (a
        # database made anew, the key folder kept) would be what `gateway token` signs with.
        raise Conflict(
            f"A private key {kid!r} of {client_id} is already kept in {directory}: remove it, "
            "or choose another --kid.",
            kid=kid,
        )
    key = _new_key(alg)
    registered = await registry.add_key(
        client_id, key.as_dict(private=False), kid=kid, record=record
    )
    _save(directory, client_id, registered.kid, key)
    return key, registered.kid


def has_local_key(directory: Path, client_id: str) -> bool:
    """Whether a private key of `client_id` is kept here."""
    return any(_folder(directory, client_id).glob("*.pem"))


def load_local_key(
    directory: Path, client_id: str, kid: str | None = None
) -> tuple[OKPKey | ECKey, str]:
    """The private key `kid` of `client_id` kept here, or its newest one."""
    folder = _folder(directory, client_id)
    if kid is not None:
        candidates = [folder / f"{kid}.pem"]
    else:
        candidates = sorted(folder.glob("*.pem"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        if path.is_file():
            pem = path.read_bytes()
            key: OKPKey | ECKey
            try:
                key = OKPKey.import_key(pem)
            except (ValueError, TypeError):
                key = ECKey.import_key(pem)
            return key, path.stem
    raise NotFound(
        f"No local key of {client_id} in {directory}; run "
        "`gateway clients keys add CLIENT --generate`.",
        kind="ClientKey",
    )
