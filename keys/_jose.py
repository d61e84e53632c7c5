"""One place for a joserfc quirk shared by every signer and verifier of the project."""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from joserfc.errors import SecurityWarning
from joserfc.jwa import JWSAlgModel
from joserfc.jws import JWSRegistry

from keys import _ed25519 as ed25519

__all__ = ["eddsa_allowed", "verifying_registry"]


@contextlib.contextmanager
def eddsa_allowed() -> Iterator[None]:
    """Silence exactly joserfc's warning that the algorithm name "EdDSA" is deprecated.

    RFC 9864 prefers "Ed25519"; both name the same Ed25519 signatures, and the tokens
    of today's clients and identity providers say "EdDSA". The test suite turns every
    other warning into an error, so only this one is silenced, only here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "EdDSA is deprecated", SecurityWarning)
        yield


class _Ed25519(JWSAlgModel):
    """joserfc's Ed25519 algorithm `inner` ("EdDSA" or "Ed25519"), checked by libsodium.

    Signatures by Ed25519 keys are checked by `keys._ed25519`; everything else (the
    key's type and use, signing, Ed448 keys) is `inner`'s. It has no warning (see
    `eddsa_allowed`).
    """

    def __init__(self, inner: JWSAlgModel) -> None:
        self._inner = inner
        self.name = inner.name
        self.description = inner.description
        self.recommended = inner.recommended
        self.key_type = inner.key_type
        self.algorithm_security = inner.algorithm_security

    def check_key(self, key: Any) -> None:
        self._inner.check_key(key)

    def sign(self, msg: bytes, key: Any) -> bytes:
        return self._inner.sign(msg, key)

    def verify(self, msg: bytes, sig: bytes, key: Any) -> bool:
        public = key.get_op_key("verify")
        if isinstance(public, Ed25519PublicKey):
            return ed25519.verify(public.public_bytes_raw(), sig, msg)
        return self._inner.verify(msg, sig, key)  # an Ed448 key, or one refused as joserfc does


class _Registry(JWSRegistry):
    """joserfc's registry, with Ed25519 checked by libsodium and without the warning.

    Every request's token is checked with it: no warning filters set each time.
    """

    algorithms: dict[str, JWSAlgModel] = {  # noqa: RUF012 (joserfc reads it from the class)
        **JWSRegistry.algorithms,
        **{name: _Ed25519(JWSRegistry.algorithms[name]) for name in ("EdDSA", "Ed25519")},
    }


@functools.lru_cache(maxsize=32)
def verifying_registry(*algorithms: str, strict_check_header: bool = True) -> JWSRegistry:
    """The registry a JWS is checked with, allowing only `algorithms` (one per set).

    Every signature the gateway checks goes through it: request tokens, documents'
    signatures, consents, identity providers' tokens. `strict_check_header=False`
    accepts header members joserfc does not know.
    """
    return _Registry(algorithms=list(algorithms), strict_check_header=strict_check_header)
