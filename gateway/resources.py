"""What a gateway process loads from its settings: catalogue, manifests, keys.

The application (`gateway.web`) and the command line (`gateway.cli`) load them the
same way, here: in production nothing is created, in development and the demo missing
keys and secrets are made under `GATEWAY_KEYS_DIR`.
"""

from __future__ import annotations

from typing import Final

import structlog

from connectors import ManifestBase, load_manifests
from gateway.config import GatewaySettings
from keys import KeyRing, KeyRingError, load_secret
from policies import Catalogue, load_catalogue
from schema import canonical_fields

__all__ = [
    "SECRETS",
    "load_keys",
    "load_manifests_of",
    "load_procedures",
    "load_pseudonym_key",
    "make_secrets",
]

log = structlog.get_logger(__name__)

_PSEUDONYMS: Final = "pseudonyms"
SECRETS: Final = (_PSEUDONYMS,)
"""The symmetric secrets a gateway needs, beside its signing keys."""


def load_procedures(settings: GatewaySettings) -> Catalogue:
    """The procedure catalogue the settings name (the shipped one by default)."""
    return load_catalogue(settings.catalogue_dir, canonical=canonical_fields())


def load_manifests_of(settings: GatewaySettings) -> list[ManifestBase]:
    """The connector manifests in `GATEWAY_CONNECTORS_DIR` (none without it)."""
    if settings.connectors_dir is None:
        log.warning("no_connectors", hint="set GATEWAY_CONNECTORS_DIR; every field is NO_SOURCE")
        return []
    return load_manifests(settings.connectors_dir)


def _production(settings: GatewaySettings) -> bool:
    return settings.environment == "production"


def load_keys(settings: GatewaySettings) -> KeyRing:
    """The signing keys; made when missing, except in production (`KeyRingError`)."""
    if _production(settings):
        return KeyRing.load(settings.keys_dir)
    return KeyRing.ensure(settings.keys_dir)


def load_pseudonym_key(settings: GatewaySettings) -> bytes:
    """The secret officers, cases and auditors are pseudonymised with."""
    return load_secret(settings.keys_dir, _PSEUDONYMS, create=not _production(settings))


def make_secrets(settings: GatewaySettings) -> list[tuple[str, bool]]:
    """Make each secret of `SECRETS` that is missing: (name, whether made now).

    One that exists is kept, never replaced (a new pseudonym key would unlink every
    past pseudonym); one that exists but cannot be used raises `KeyRingError`.
    """
    done = []
    for name in SECRETS:
        try:
            load_secret(settings.keys_dir, name, create=False)
            done.append((name, False))
        except KeyRingError:
            load_secret(settings.keys_dir, name, create=True)  # raises if unusable
            done.append((name, True))
    return done
