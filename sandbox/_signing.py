"""Signatures of digitized results: each registry signs its documents with its own key.

A document's JWS is compact (RFC 7515), header ``{"alg": "EdDSA", "kid", "typ":
"vn-document+jws"}``; its payload is the JSON object of the record's signed fields, with
the names and JSON values the registry serves them under, members sorted. A reader
checks the JWS against the registry's JWKS (``GET /.well-known/jwks.json``), then that
each signed field it was served equals the payload's member: a record changed after
issuance, or a file whose hash is no longer the signed one, is caught either way.
"""

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import orjson
from joserfc import jws
from joserfc.jwk import OKPKey

from keys import eddsa_allowed
from sandbox._issuer_keys import ALGORITHM, IssuerKey, load_or_create

__all__ = ["DOCUMENT_TYPE", "RegistryKey", "file_sha256", "jwks", "registry_key", "sign_document"]

DOCUMENT_TYPE: Final = "vn-document+jws"
"""The ``typ`` of a document's JWS: no other token of the sandbox can pass for one."""

RegistryKey = IssuerKey
"""A registry's Ed25519 key: ``kid`` is the RFC 7638 thumbprint of its public half."""


def registry_key(path: Path | None) -> RegistryKey:
    """The key in the PEM file ``path`` (written first when missing), or one per process."""
    return load_or_create(path)


def payload(fields: Mapping[str, Any]) -> bytes:
    """The signed bytes: ``fields`` as a JSON object with sorted members."""
    return orjson.dumps(dict(fields), option=orjson.OPT_SORT_KEYS)


def sign_document(key: RegistryKey, fields: Mapping[str, Any]) -> str:
    """A compact JWS over ``fields`` (the signed fields of a record, as served)."""
    header = {"alg": ALGORITHM, "kid": key.kid, "typ": DOCUMENT_TYPE}
    with eddsa_allowed():
        return jws.serialize_compact(
            header, payload(fields), OKPKey.import_key(key.private), algorithms=[ALGORITHM]
        )


def jwks(key: RegistryKey) -> dict[str, Any]:
    """The body of ``GET /.well-known/jwks.json``: the registry's public key (RFC 7517)."""
    return {"keys": [key.public_jwk()]}


def file_sha256(content: bytes) -> str:
    """Lowercase hex SHA-256 of a document's file."""
    return hashlib.sha256(content).hexdigest()
