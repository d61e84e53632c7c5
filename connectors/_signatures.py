"""Digitized results signed by their issuer: each record checked before it is served.

A registry that issues certificates (birth, marriage, enterprise registration...)
signs each one with its own Ed25519 key when it issues it: a compact JWS whose payload
holds the record's metadata and the SHA-256 of its file, as the registry serves them.
It publishes its public keys as a JWK set, which the manifest names (`signature:`, see
`connectors._manifest.SignatureSpec`).

Before a signed record is mapped, the connector checks it here:

- the JWS parses, says `alg` EdDSA (or Ed25519) and `typ` `vn-document+jws` (a token
  the same key signed for another use is not a document), and names a key (`kid`) of
  the issuer's set;
- the signature verifies with that key;
- each covered field of the record equals the payload's member of the same name, as
  JSON: a file changed by one byte changes the hash the registry serves now, a title
  changed by one character changes the metadata; either no longer matches what was
  signed.

A record that passes is served with `signature: {status: VERIFIED, keyId, algorithm}`.
One that fails keeps only its `signature` (status `INVALID`, or `UNKNOWN_KEY` when the
key is not the issuer's), and every other field is withheld with
`DOCUMENT_SIGNATURE_INVALID`: it is never served as if it were valid.

The key set is fetched when the connector opens, used for `refresh_seconds`, and
fetched again at once (at most every `_REFETCH_UNKNOWN` seconds) when a record names a
key it does not hold: a registry that rolls its key over is followed, and a flood of
made-up key ids does not become a flood of fetches. When no key set could ever be
fetched the lookup fails `SOURCE_UNAVAILABLE`: unverifiable is not invalid.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import orjson
import structlog
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from connectors._manifest import SignatureSpec
from connectors._mapping import FieldMapper, map_record
from connectors._resilience import call_budget
from gateway.errors import DocumentSignatureInvalid, SourceUnavailable
from keys import verifying_registry

__all__ = [
    "SIGNATURE_FIELD",
    "DocumentSignatures",
    "Verdict",
    "document_signatures",
    "map_checked",
]

log = structlog.get_logger(__name__)

SIGNATURE_FIELD: Final = "signature"
"""The canonical field a signed record's check fills."""

JWS_TYPE: Final = "vn-document+jws"
_ALGORITHMS: Final = frozenset({"EdDSA", "Ed25519"})
_REGISTRY: Final = verifying_registry("EdDSA", "Ed25519", strict_check_header=False)
_REFETCH_UNKNOWN: Final = 30.0
_RETRY_FAILED: Final = 5.0
"""Seconds between tries to fetch a key set that could never be fetched."""
_MAX_JWKS_BYTES: Final = 64 * 1024
_JWKS_TIMEOUT: Final = 5.0

VERIFIED: Final = "VERIFIED"
INVALID: Final = "INVALID"
UNKNOWN_KEY: Final = "UNKNOWN_KEY"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the check of one record found; `reason` says why one is not verified."""

    status: str
    key_id: str | None = None
    reason: str | None = None

    def canonical(self) -> dict[str, Any]:
        """The record's `signature` field."""
        return {"status": self.status, "keyId": self.key_id, "algorithm": "EdDSA"}


def _keys(document: Any) -> dict[str, OKPKey]:
    """The Ed25519 verifying keys of a JWK set, by `kid`; others are left out."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK set (an object with a list of `keys`)")
    keys: dict[str, OKPKey] = {}
    for member in document["keys"]:
        if not isinstance(member, Mapping) or member.get("use", "sig") != "sig":
            continue
        kid = member.get("kid")
        if member.get("kty") != "OKP" or member.get("crv") != "Ed25519" or not isinstance(kid, str):
            continue
        try:
            key = OKPKey.import_key({k: v for k, v in member.items() if k != "d"})
        except (JoseError, ValueError, TypeError, KeyError):
            log.warning("document_key_skipped", kid=kid)
            continue
        keys[kid] = key
    return keys


def _same(a: Any, b: Any) -> bool:
    """Whether two JSON values are the same value (`1` is not `true`, nor `1.0`)."""
    option = orjson.OPT_SORT_KEYS
    try:
        return orjson.dumps(a, option=option) == orjson.dumps(b, option=option)
    except TypeError:
        return False


class DocumentSignatures:
    """Checks the issuer's signature on the records of one signed entity of a source."""

    def __init__(
        self, spec: SignatureSpec, *, source: str, base_url: str | None, local: Path | None
    ) -> None:
        self.spec = spec
        self.source = source
        self._url: str | None = None
        self._file: Path | None = None
        if spec.jwks.startswith("file:"):
            self._file = local
        elif spec.jwks.startswith("/"):
            self._url = (base_url or "") + spec.jwks
        else:
            self._url = spec.jwks
        self._keys: dict[str, OKPKey] | None = None
        self._fetched_at = 0.0
        self._tried_unknown_at = -_REFETCH_UNKNOWN
        self._failed_at = -_RETRY_FAILED
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"DocumentSignatures(source={self.source!r}, jwks={self.spec.jwks!r})"

    @property
    def wanted(self) -> frozenset[str]:
        """The source fields every lookup of a signed record must read."""
        return frozenset({*self.spec.covers, self.spec.field})

    async def ready(self, http: httpx.AsyncClient, records: Iterable[Any] = ()) -> None:
        """Hold keys fit to check `records`: fetched, fresh, and naming their keys.

        Concurrent lookups share one fetch. Raises `SourceUnavailable` only when no key
        set was ever fetched (then at most one fetch is tried every `_RETRY_FAILED`
        seconds; lookups in between fail at once).
        """
        records = list(records)  # read twice: before and after waiting for the lock
        if not self._wants_fetch(time.monotonic(), records):
            return
        async with self._lock:
            now = time.monotonic()
            if not self._wants_fetch(now, records):
                return  # another lookup fetched while this one waited
            if self._keys is None and now - self._failed_at < _RETRY_FAILED:
                raise self._unavailable()
            if self._keys is not None and not self._stale(now):
                self._tried_unknown_at = now
            try:
                self._keys = _keys(await self._fetch(http))
                self._fetched_at = now
            except (httpx.HTTPError, OSError, ValueError, orjson.JSONDecodeError) as exc:
                self._failed_at = now
                log.warning(
                    "document_keys_unavailable", connector=self.source, error=type(exc).__name__
                )
                if self._keys is None:
                    raise self._unavailable() from None

    def _stale(self, now: float) -> bool:
        return self._keys is None or now - self._fetched_at >= self.spec.refresh_seconds

    def _wants_fetch(self, now: float, records: Iterable[Any]) -> bool:
        if self._stale(now):
            return True
        assert self._keys is not None
        keys = self._keys
        unknown = any(kid is not None and kid not in keys for kid in map(self._kid, records))
        return unknown and now - self._tried_unknown_at >= _REFETCH_UNKNOWN

    def _unavailable(self) -> SourceUnavailable:
        return SourceUnavailable(
            "The issuer's keys cannot be read: its documents cannot be checked.",
            source=self.source,
            reason="jwks",
        )

    async def _fetch(self, http: httpx.AsyncClient) -> Any:
        if self._file is not None:
            return orjson.loads(self._file.read_bytes())
        assert self._url is not None
        timeout = call_budget(_JWKS_TIMEOUT, source=self.source)
        response = await http.get(
            self._url, headers={"Accept": "application/json"}, timeout=timeout
        )
        response.raise_for_status()
        if len(response.content) > _MAX_JWKS_BYTES:
            raise ValueError("the key set is too large")
        return orjson.loads(response.content)

    def _kid(self, record: Any) -> str | None:
        token = record.get(self.spec.field) if isinstance(record, dict) else None
        if not isinstance(token, str):
            return None
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, TypeError, AttributeError, KeyError, UnicodeError):
            return None
        kid = header.get("kid") if isinstance(header, dict) else None
        return kid if isinstance(kid, str) else None

    def check(self, record: Mapping[str, Any]) -> Verdict:
        """Whether `record` is as its issuer signed it."""
        token = record.get(self.spec.field)
        if not isinstance(token, str):
            return Verdict(INVALID, reason="unsigned")
        try:
            signed = jws.extract_compact(token.encode("ascii"))
            header: Any = signed.headers()
        except (JoseError, ValueError, TypeError, AttributeError, KeyError, UnicodeError):
            return Verdict(INVALID, reason="malformed")
        if not isinstance(header, dict):
            return Verdict(INVALID, reason="malformed")
        kid = header.get("kid") if isinstance(header.get("kid"), str) else None
        if header.get("alg") not in _ALGORITHMS or header.get("typ") != JWS_TYPE:
            return Verdict(INVALID, kid, reason="header")
        key = (self._keys or {}).get(kid) if kid is not None else None
        if key is None:
            return Verdict(UNKNOWN_KEY, kid, reason="unknown_key")
        try:
            valid = jws.validate_compact(signed, key, registry=_REGISTRY)
        except (JoseError, ValueError, TypeError):
            valid = False
        if not valid:
            return Verdict(INVALID, kid, reason="signature")
        try:
            payload = orjson.loads(signed.payload or b"")
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            return Verdict(INVALID, kid, reason="payload")
        for name in self.spec.covers:
            if name not in payload or not _same(payload[name], record.get(name)):
                return Verdict(INVALID, kid, reason="content")
        return Verdict(VERIFIED, kid)

    def map(
        self, mappers: Iterable[FieldMapper], record: Mapping[str, Any], *, with_signature: bool
    ) -> dict[str, Any]:
        """`record` in canonical fields if it is as signed; else only its `signature`."""
        verdict = self.check(record)
        if verdict.status == VERIFIED:
            out = map_record(mappers, record)
        else:
            log.info(
                "document_withheld",
                connector=self.source,
                reason=verdict.reason,
                kid=verdict.key_id,
            )
            out = {
                m.canonical: DocumentSignatureInvalid(
                    source=self.source, field=m.canonical, reason=verdict.reason
                )
                for m in mappers
            }
        if with_signature:
            out[SIGNATURE_FIELD] = verdict.canonical()
        return out


def document_signatures(
    spec: SignatureSpec | None, *, source: str, base_url: str, local: Callable[[str], Path]
) -> DocumentSignatures | None:
    """The check of a signed entity (`None` when the entity is not signed)."""
    if spec is None:
        return None
    file = local(spec.jwks.removeprefix("file:")) if spec.jwks.startswith("file:") else None
    return DocumentSignatures(spec, source=source, base_url=base_url, local=file)


def map_checked(
    signatures: DocumentSignatures | None,
    mappers: Iterable[FieldMapper],
    record: Mapping[str, Any],
    fields: frozenset[str],
) -> dict[str, Any]:
    """`record` in canonical `fields`, checked first when its entity is signed."""
    if signatures is None:
        return map_record(mappers, record)
    return signatures.map(mappers, record, with_signature=SIGNATURE_FIELD in fields)
