"""The public leaf of an event, and the hash of the envelope it commits to.

A public leaf is the RFC 8785 JSON of `{v, type, ts, envelope_hash, policy_version}`:
nothing in it names or links a person. `envelope_hash` is the hex SHA-256 of the RFC
8785 JSON of the event's envelope, which auditors hold; the leaf's hash (RFC 6962) is
what the tree, receipts and proofs are about.
"""

from __future__ import annotations

import datetime
import hashlib
from typing import Any, Final

from gateway.log._canonical import canonical_json

__all__ = ["LEAF_VERSION", "canonical_hash", "format_ts", "public_leaf"]

LEAF_VERSION: Final = 1


def canonical_hash(value: Any) -> str:
    """Hex SHA-256 of the RFC 8785 canonical JSON of `value` (an envelope's hash)."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def format_ts(value: datetime.datetime) -> str:
    """UTC time to the microsecond, as in the public leaf and receipts."""
    utc = value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value
    # `strftime("%Y-%m-%dT%H:%M:%S.%fZ")`'s characters, written faster (years 1000 on).
    return (
        utc.astimezone(datetime.UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    )


def public_leaf(
    *, type: str, ts: datetime.datetime, envelope_hash: str, policy_version: str
) -> bytes:
    """The public leaf of an event: RFC 8785 JSON, tiny, with nothing about people."""
    return canonical_json(
        {
            "v": LEAF_VERSION,
            "type": type,
            "ts": format_ts(ts),
            "envelope_hash": envelope_hash,
            "policy_version": policy_version,
        }
    )
