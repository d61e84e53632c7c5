"""One place for a joserfc quirk shared by every signer and verifier of the project."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

from joserfc.errors import SecurityWarning

__all__ = ["eddsa_allowed"]


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
