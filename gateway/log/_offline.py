"""Checking what the gateway hands out, without the gateway or its database.

Two kinds of files leave the gateway to be checked elsewhere:

- an auditor's export (`/audit/export`, JSON lines): a signed checkpoint, then each
  record with its envelope, its public leaf, its leaf index and an inclusion proof
  against that checkpoint, then a summary line;
- a citizen's receipt (`/me/accesses/{id}/receipt`) or an offline proof from the public
  `/log/tlog-proof` (c2sp.org/tlog-proof@v1): the public leaf in its `extra` line, the
  index, the proof and the checkpoint.

Both are checked here with the checkpoint verifier key alone: the checkpoint's
signature and origin, each envelope against its hash, each leaf against its envelope,
each proof against the checkpoint's root (RFC 9162). A proof without its `extra` line
proves the inclusion of a leaf hash given with it (a receipt's `leafHash`), and says
nothing of that leaf's contents. `gateway audit verify-export` and
`gateway audit verify-proof` run them. They import the log's core and `keys/` only:
neither the database nor the web framework.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from lienthong_client.log import (
    Checkpoint,
    CheckpointError,
    ProofError,
    parse_checkpoint,
    read_b64,
    verify_inclusion,
)
from lienthong_client.log import leaf_hash as _leaf_hash

from gateway.log._leaf import canonical_hash
from keys import NoteVerifier

__all__ = ["ExportReport", "verify_export"]


class _Bad(ValueError):
    """One line of an export is wrong."""


@dataclass(slots=True)
class ExportReport:
    """What an export holds, and the first line that is wrong (if any)."""

    checkpoint: Checkpoint | None = None
    proven: int = 0
    pending: int = 0
    problem: str | None = None
    bad_line: int | None = None
    types: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every line checked out."""
        return self.problem is None


def verify_export(lines: Iterable[bytes], verifiers: Sequence[NoteVerifier]) -> ExportReport:
    """Check an export line by line; stop at the first wrong line."""
    report = ExportReport()
    ended = False
    number = 0
    try:
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            if ended:
                raise _Bad("there is more after the summary line")
            item = _json(raw)
            kind = item.get("kind")
            if number == 1:
                report.checkpoint = _checkpoint(item, verifiers)
            elif kind == "record":
                _record(item, report)
            elif kind == "end":
                _end(item, report)
                ended = True
            else:
                raise _Bad("a line is a checkpoint (first), a record or the summary (last)")
        if report.checkpoint is None:
            number = max(number, 1)
            raise _Bad("the export is empty")
        if not ended:
            number += 1
            raise _Bad("the summary line is missing: the export was cut short")
    except _Bad as exc:
        report.problem, report.bad_line = str(exc), number
    return report


def _json(raw: bytes) -> dict[str, Any]:
    try:
        item = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _Bad("not JSON") from None
    if not isinstance(item, dict):
        raise _Bad("not a JSON object")
    return item


def _checkpoint(item: dict[str, Any], verifiers: Sequence[NoteVerifier]) -> Checkpoint:
    if item.get("kind") != "checkpoint" or not isinstance(item.get("note"), str):
        raise _Bad("the first line is the signed checkpoint")
    try:
        signed = parse_checkpoint(item["note"], verifiers)
    except CheckpointError as exc:
        raise _Bad(f"the checkpoint does not verify: {exc}") from None
    if item.get("size") != signed.size or item.get("origin") != signed.origin:
        raise _Bad("the checkpoint line's size or origin is not the signed one")
    return signed


def _record(item: dict[str, Any], report: ExportReport) -> None:
    signed = report.checkpoint
    if signed is None:
        raise _Bad("the first line is the signed checkpoint")
    envelope, digest = item.get("envelope"), item.get("envelopeHash")
    if not isinstance(envelope, dict) or canonical_hash(envelope) != digest:
        raise _Bad("the envelope does not match its hash")
    if item.get("leaf") is None:
        if item.get("proof") is not None:
            raise _Bad("a record without a leaf carries a proof")
        report.pending += 1
        _count(report, item)
        return
    leaf_text, index, proof = item.get("leaf"), item.get("leafIndex"), item.get("proof")
    if not isinstance(leaf_text, str) or not isinstance(index, int) or not isinstance(proof, list):
        raise _Bad("a logged record has `leaf`, `leafIndex` and `proof`")
    leaf = _json(leaf_text.encode())
    if leaf.get("envelope_hash") != digest or leaf.get("type") != item.get("type"):
        raise _Bad("the public leaf is not the leaf of this envelope")
    try:
        # base64url since exports took it; standard base64 in exports made before.
        hashes = [read_b64(h) for h in proof]
    except (TypeError, ValueError):
        raise _Bad("a proof hash is not base64") from None
    try:
        verify_inclusion(index, signed.size, _leaf_hash(leaf_text.encode()), hashes, signed.root)
    except ProofError:
        raise _Bad(
            f"the inclusion proof of leaf {index} does not lead to the checkpoint's root"
        ) from None
    report.proven += 1
    _count(report, item)


def _count(report: ExportReport, item: dict[str, Any]) -> None:
    kind = str(item.get("type"))
    report.types[kind] = report.types.get(kind, 0) + 1


def _end(item: dict[str, Any], report: ExportReport) -> None:
    held = (report.proven + report.pending, report.proven, report.pending)
    said = (item.get("records"), item.get("proven"), item.get("pending"))
    if said != held:
        raise _Bad(
            f"the summary counts {said[0]} records, {said[1]} proven and {said[2]} pending; "
            f"the export holds {held[0]}, {held[1]} and {held[2]}"
        )
