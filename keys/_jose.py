"""One place for a joserfc quirk shared by every signer and verifier of the project."""

from __future__ import annotations

import contextlib
import copy
import functools
import warnings
from collections.abc import Iterator

from joserfc.errors import SecurityWarning
from joserfc.jwa import JWSAlgModel
from joserfc.jws import JWSRegistry

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


def _without_warning(name: str) -> JWSAlgModel:
    quiet = copy.copy(JWSRegistry.algorithms[name])
    quiet.security_warning = None
    return quiet


class _Registry(JWSRegistry):
    """joserfc's registry, its "EdDSA" without the warning (see `eddsa_allowed`).

    Every request's token is checked with it: no warning filters set each time.
    """

    algorithms: dict[str, JWSAlgModel] = {  # noqa: RUF012 (joserfc reads it from the class)
        **JWSRegistry.algorithms,
        "EdDSA": _without_warning("EdDSA"),
    }


@functools.lru_cache(maxsize=8)
def verifying_registry(algorithm: str) -> JWSRegistry:
    """The registry to check a JWS with, allowing `algorithm` only (one per algorithm)."""
    return _Registry(algorithms=[algorithm])
