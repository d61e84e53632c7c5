"""Offline checks of what the gateway hands out: auditors' exports and citizens' receipts.

A small log is built here, in the gateway's formats (RFC 8785 public leaves, RFC 6962
tree, C2SP signed checkpoint), with subtree hashes computed by a plain recursive MTH
rather than the gateway's stored-node code; then it is tampered with, one thing at a
time, and each change must be caught on the right line.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pymerkle import InmemoryTree

from gateway.log import (
    Checkpoint,
    ExportReport,
    canonical_hash,
    checkpoint_text,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    public_leaf,
    tlog_proof,
    verify_export,
    verify_tlog_proof,
)
from gateway.records import Event
from keys import NoteVerifier, note_key_id, sign_note

ORIGIN = "gateway.example.gov.vn/log"
POLICY = "ab" * 32
T0 = datetime.datetime(2026, 3, 2, 1, 2, 3, 456789, tzinfo=datetime.UTC)
TYPES = ["access", "access", "auditor_search", "consent", "access"]
"""The logged records, in leaf order; one more `access` is recorded but not yet logged."""


def _mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 MTH over leaf hashes, written out recursively."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return node_hash(_mth(hashes[:k]), _mth(hashes[k:]))


def _verifier(key: Ed25519PrivateKey, name: str = ORIGIN) -> NoteVerifier:
    return NoteVerifier(name, note_key_id(name, key.public_key()), key.public_key())


@dataclass
class _Log:
    key: Ed25519PrivateKey
    checkpoint: Checkpoint
    records: list[dict[str, Any]]
    """Record lines as `_export_lines` writes them (logged ones first, one pending)."""
    leaves: list[bytes]
    leaf_hashes: list[bytes]

    @property
    def verifiers(self) -> list[NoteVerifier]:
        return [_verifier(self.key)]

    def proof(self, index: int) -> list[bytes]:
        return [
            _mth(self.leaf_hashes[lo:hi]) for lo, hi in inclusion_ranges(index, len(self.leaves))
        ]


def _record(event: Event, leaf_index: int | None) -> dict[str, Any]:
    rows = event.rows().event
    return {
        "id": rows["id"],
        "type": rows["type"],
        "time": rows["ts"].isoformat().replace("+00:00", "Z"),
        "leafIndex": leaf_index,
        "clientId": rows["client_id"],
        "organisation": rows["organisation"],
        "procedure": rows["procedure"],
        "outcome": rows["outcome"],
        "hiddenUntil": None,
        "envelopeHash": rows["envelope_hash"],
        "envelope": rows["envelope"],
    }


def _event(kind: str, n: int) -> Event:
    return Event(
        type=kind,
        request_id=f"req-{n}",
        outcome="served",
        policy_version=POLICY,
        envelope={"organisation": "Hanoi City Police", "fieldsServed": n},
        personal={"officer": f"officer-{n}"},
        client_id="VN/GOV/TEST/offline",
        procedure="1.004222",
        ts=T0 + datetime.timedelta(seconds=n),
    )


def _build() -> _Log:
    key = Ed25519PrivateKey.generate()
    records, leaves = [], []
    for n, kind in enumerate(TYPES):
        item = _record(_event(kind, n), n)
        leaf = public_leaf(
            type=kind,
            ts=T0 + datetime.timedelta(seconds=n),
            envelope_hash=item["envelopeHash"],
            policy_version=POLICY,
        )
        leaves.append(leaf)
        item["leaf"] = leaf.decode()
        records.append(item)
    hashes = [leaf_hash(leaf) for leaf in leaves]
    root = _mth(hashes)
    note = sign_note(checkpoint_text(ORIGIN, len(leaves), root), ORIGIN, key)
    log = _Log(key, Checkpoint(ORIGIN, len(leaves), root, note), records, leaves, hashes)
    for index, item in enumerate(records):
        item.update(kind="record", proof=[base64.b64encode(h).decode() for h in log.proof(index)])
    # Recorded after the checkpoint was signed: in the export without a proof.
    pending = _record(_event("access", len(TYPES)), len(TYPES))
    pending.update(kind="record", leaf=None, proof=None)
    records.append(pending)
    return log


@pytest.fixture(scope="module")
def log() -> _Log:
    return _build()


def _head(log: _Log) -> dict[str, Any]:
    return {
        "kind": "checkpoint",
        "origin": log.checkpoint.origin,
        "size": log.checkpoint.size,
        "note": log.checkpoint.note,
        "filter": {"from": "2026-03-01T17:00:00Z", "to": "2026-03-02T17:00:00Z"},
    }


def _end(proven: int = 5, pending: int = 1) -> dict[str, Any]:
    return {"kind": "end", "records": proven + pending, "proven": proven, "pending": pending}


def _lines(*items: dict[str, Any]) -> list[bytes]:
    """As the CLI reads the file: its bytes, split into lines."""
    return b"".join(orjson.dumps(item) + b"\n" for item in items).splitlines()


def _export(log: _Log, edit: Callable[[list[dict[str, Any]]], None] | None = None) -> list[bytes]:
    items = [_head(log), *orjson.loads(orjson.dumps(log.records)), _end()]
    if edit is not None:
        edit(items)
    return _lines(*items)


def _failed(report: ExportReport, line: int, problem: str) -> None:
    assert report.ok is False
    assert report.bad_line == line
    assert report.problem is not None
    assert problem in report.problem, report.problem


# -- the export -----------------------------------------------------------------------


def test_the_test_log_agrees_with_an_independent_rfc6962_implementation(log: _Log) -> None:
    tree = InmemoryTree(algorithm="sha256")
    for leaf in log.leaves:
        tree.append_entry(leaf)
    size = len(log.leaves)
    assert tree.get_root(size) == log.checkpoint.root
    for index in range(size):
        theirs = tree.prove_inclusion(index + 1, size).serialize()["path"][1:]
        assert [h.hex() for h in log.proof(index)] == theirs


def test_a_valid_export_verifies(log: _Log) -> None:
    report = verify_export(_export(log), log.verifiers)
    assert report.problem is None
    assert report.bad_line is None
    assert report.ok is True
    assert report.checkpoint == log.checkpoint
    assert (report.proven, report.pending) == (5, 1)
    assert report.types == {"access": 4, "auditor_search": 1, "consent": 1}


def test_blank_lines_and_crlf_line_ends_are_tolerated(log: _Log) -> None:
    lines = [line + b"\r" for line in _export(log)]
    lines.insert(3, b"")
    report = verify_export([*lines, b"", b"  "], log.verifiers)
    assert report.ok is True
    assert (report.proven, report.pending) == (5, 1)


def test_an_export_with_no_records_verifies(log: _Log) -> None:
    report = verify_export(_lines(_head(log), _end(0, 0)), log.verifiers)
    assert report.ok is True
    assert (report.proven, report.pending, report.types) == (0, 0, {})


def test_a_pending_record_counts_as_pending_and_needs_no_proof(log: _Log) -> None:
    pending = orjson.loads(orjson.dumps(log.records[-1]))
    report = verify_export(_lines(_head(log), pending, _end(0, 1)), log.verifiers)
    assert report.ok is True
    assert (report.proven, report.pending, report.types) == (0, 1, {"access": 1})


def test_a_logged_record_left_without_its_leaf_still_counts_as_pending(log: _Log) -> None:
    def strip(items: list[dict[str, Any]]) -> None:
        items[4].update(leaf=None, proof=None)
        items[-1] = _end(4, 2)

    report = verify_export(_export(log, strip), log.verifiers)
    assert report.ok is True
    assert (report.proven, report.pending) == (4, 2)
    assert report.types == {"access": 4, "auditor_search": 1, "consent": 1}


def _edit_envelope(items: list[dict[str, Any]]) -> None:
    items[2]["envelope"]["outcome"] = "refused"


def _rehash_envelope(items: list[dict[str, Any]]) -> None:
    # The envelope and its hash changed together: the leaf no longer matches.
    items[2]["envelope"]["outcome"] = "refused"
    items[2]["envelopeHash"] = canonical_hash(items[2]["envelope"])


def _swap_leaf(items: list[dict[str, Any]]) -> None:
    items[3]["leaf"] = items[4]["leaf"]


def _retype(items: list[dict[str, Any]]) -> None:
    items[3]["type"] = "access"  # the leaf says auditor_search


def _wrong_index(items: list[dict[str, Any]]) -> None:
    items[2]["leafIndex"] = 2


def _index_beyond_the_tree(items: list[dict[str, Any]]) -> None:
    items[5]["leafIndex"] = 5  # the checkpoint holds leaves 0 to 4


def _bad_base64(items: list[dict[str, Any]]) -> None:
    items[4]["proof"][1] = items[4]["proof"][1][:-2] + "!="


def _proof_hash_not_a_string(items: list[dict[str, Any]]) -> None:
    items[5]["proof"][0] = 17


def _short_proof(items: list[dict[str, Any]]) -> None:
    items[5]["proof"] = items[5]["proof"][:-1]


def _proof_of_another_leaf(items: list[dict[str, Any]]) -> None:
    items[2]["proof"] = items[3]["proof"]


def _leaf_not_json(items: list[dict[str, Any]]) -> None:
    items[2]["leaf"] = "{not json"


def _no_index(items: list[dict[str, Any]]) -> None:
    items[4]["leafIndex"] = None


def _pending_with_proof(items: list[dict[str, Any]]) -> None:
    items[6]["proof"] = items[5]["proof"]


def _envelope_not_an_object(items: list[dict[str, Any]]) -> None:
    items[1]["envelope"] = "{}"


def _record_before_checkpoint(items: list[dict[str, Any]]) -> None:
    items[0] = items[1]


def _second_checkpoint(items: list[dict[str, Any]]) -> None:
    items.insert(3, dict(items[0]))


def _unknown_kind(items: list[dict[str, Any]]) -> None:
    items[4]["kind"] = "entry"


def _wrong_size(items: list[dict[str, Any]]) -> None:
    items[0]["size"] = 6


def _wrong_origin(items: list[dict[str, Any]]) -> None:
    items[0]["origin"] = "other.example/log"


def _note_not_a_string(items: list[dict[str, Any]]) -> None:
    items[0]["note"] = None


def _edited_note(items: list[dict[str, Any]]) -> None:
    items[0]["note"] = items[0]["note"].replace(f"\n{len(TYPES)}\n", f"\n{len(TYPES) + 1}\n")
    items[0]["size"] = len(TYPES) + 1


def _summary_proven(items: list[dict[str, Any]]) -> None:
    items[-1] = _end(4, 1)


def _summary_pending(items: list[dict[str, Any]]) -> None:
    items[-1] = _end(5, 0)


def _extra_after_summary(items: list[dict[str, Any]]) -> None:
    items.append(items[1])


def _cut_short(items: list[dict[str, Any]]) -> None:
    del items[-1]


def _cut_in_the_middle(items: list[dict[str, Any]]) -> None:
    del items[4:]


@pytest.mark.parametrize(
    ("edit", "line", "problem"),
    [
        (_edit_envelope, 3, "the envelope does not match its hash"),
        (_rehash_envelope, 3, "the public leaf is not the leaf of this envelope"),
        (_swap_leaf, 4, "the public leaf is not the leaf of this envelope"),
        (_retype, 4, "the public leaf is not the leaf of this envelope"),
        (_wrong_index, 3, "the inclusion proof of leaf 2 does not lead to the checkpoint's root"),
        (_index_beyond_the_tree, 6, "the inclusion proof of leaf 5 does not lead"),
        (_bad_base64, 5, "a proof hash is not base64"),
        (_proof_hash_not_a_string, 6, "a proof hash is not base64"),
        (_short_proof, 6, "the inclusion proof of leaf 4 does not lead"),
        (_proof_of_another_leaf, 3, "the inclusion proof of leaf 1 does not lead"),
        (_leaf_not_json, 3, "not JSON"),
        (_no_index, 5, "a logged record has `leaf`, `leafIndex` and `proof`"),
        (_pending_with_proof, 7, "a record without a leaf carries a proof"),
        (_envelope_not_an_object, 2, "the envelope does not match its hash"),
        (_record_before_checkpoint, 1, "the first line is the signed checkpoint"),
        (_second_checkpoint, 4, "a line is a checkpoint (first), a record or the summary"),
        (_unknown_kind, 5, "a line is a checkpoint (first), a record or the summary"),
        (_wrong_size, 1, "the checkpoint line's size or origin is not the signed one"),
        (_wrong_origin, 1, "the checkpoint line's size or origin is not the signed one"),
        (_note_not_a_string, 1, "the first line is the signed checkpoint"),
        (_edited_note, 1, "the checkpoint does not verify"),
        (
            _summary_proven,
            8,
            "the summary counts 5 records, 4 proven and 1 pending; the export holds 6, 5 and 1",
        ),
        (_summary_pending, 8, "the summary counts 5 records, 5 proven and 0 pending"),
        (_extra_after_summary, 9, "there is more after the summary line"),
        (_cut_short, 8, "the summary line is missing: the export was cut short"),
        (_cut_in_the_middle, 5, "the summary line is missing: the export was cut short"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else None,
)
def test_a_tampered_export_fails_on_the_right_line(
    log: _Log, edit: Callable[[list[dict[str, Any]]], None], line: int, problem: str
) -> None:
    _failed(verify_export(_export(log, edit), log.verifiers), line, problem)


def test_a_summary_whose_record_count_is_wrong_fails(log: _Log) -> None:
    def edit(items: list[dict[str, Any]]) -> None:
        items[-1]["records"] = 99

    _failed(verify_export(_export(log, edit), log.verifiers), 8, "summary")


def test_the_counts_stop_at_the_first_wrong_line(log: _Log) -> None:
    report = verify_export(_export(log, _bad_base64), log.verifiers)
    assert (report.proven, report.pending) == (3, 0)
    assert report.types == {"access": 2, "auditor_search": 1}


def test_a_checkpoint_signed_by_an_unknown_key_fails_on_line_1(log: _Log) -> None:
    report = verify_export(_export(log), [_verifier(Ed25519PrivateKey.generate())])
    _failed(report, 1, "the checkpoint does not verify: no known key signed this note")
    assert report.checkpoint is None


def test_a_checkpoint_signed_by_a_key_of_another_name_fails(log: _Log) -> None:
    other = "other.example/log"
    note = sign_note(
        checkpoint_text(ORIGIN, log.checkpoint.size, log.checkpoint.root), other, log.key
    )
    head = {**_head(log), "note": note}
    report = verify_export(_lines(head, _end(0, 0)), [_verifier(log.key, other)])
    _failed(report, 1, "the checkpoint's origin is not the name of the key that signed it")


def test_a_first_line_that_is_not_a_checkpoint_fails(log: _Log) -> None:
    report = verify_export(_lines(_end(0, 0)), log.verifiers)
    _failed(report, 1, "the first line is the signed checkpoint")


def test_a_line_that_is_not_json_fails(log: _Log) -> None:
    lines = _export(log)
    lines[4] = lines[4][:-1]
    _failed(verify_export(lines, log.verifiers), 5, "not JSON")


def test_a_line_that_is_json_but_not_an_object_fails(log: _Log) -> None:
    lines = _export(log)
    lines[2] = b'["kind", "record"]'
    _failed(verify_export(lines, log.verifiers), 3, "not a JSON object")


def test_an_empty_export_fails(log: _Log) -> None:
    report = verify_export([], log.verifiers)
    assert report.ok is False
    assert report.problem == "the export is empty"
    assert report.checkpoint is None


def test_an_empty_export_names_line_1(log: _Log) -> None:
    assert verify_export([], log.verifiers).bad_line == 1


def test_an_export_of_only_the_checkpoint_was_cut_short(log: _Log) -> None:
    report = verify_export(_lines(_head(log)), log.verifiers)
    _failed(report, 2, "the summary line is missing: the export was cut short")
    assert report.checkpoint == log.checkpoint


# -- the receipt (c2sp.org/tlog-proof@v1) ---------------------------------------------


def _receipt(log: _Log, index: int, *, extra: bytes | None = None) -> str:
    return tlog_proof(index, log.proof(index), log.checkpoint, extra=extra)


@pytest.mark.parametrize("index", range(len(TYPES)))
def test_a_receipt_verifies_and_returns_its_leaf(log: _Log, index: int) -> None:
    proven = verify_tlog_proof(_receipt(log, index, extra=log.leaves[index]), log.verifiers)
    assert proven.index == index
    assert proven.checkpoint == log.checkpoint
    assert proven.leaf == orjson.loads(log.leaves[index])
    assert proven.leaf is not None
    assert proven.leaf["type"] == TYPES[index]
    assert proven.leaf["envelope_hash"] == log.records[index]["envelopeHash"]


def test_a_receipt_whose_extra_is_not_a_json_object_proves_no_leaf() -> None:
    key = Ed25519PrivateKey.generate()
    data = b"[1, 2]"
    root = leaf_hash(data)
    note = sign_note(checkpoint_text(ORIGIN, 1, root), ORIGIN, key)
    checkpoint = Checkpoint(ORIGIN, 1, root, note)
    proven = verify_tlog_proof(tlog_proof(0, [], checkpoint, extra=data), [_verifier(key)])
    assert (proven.index, proven.leaf, proven.checkpoint) == (0, None, checkpoint)


def test_a_receipt_with_the_wrong_index_fails(log: _Log) -> None:
    text = _receipt(log, 2, extra=log.leaves[2]).replace("\nindex 2\n", "\nindex 3\n")
    with pytest.raises(ValueError, match="the proof of leaf 3 does not lead to the checkpoint's"):
        verify_tlog_proof(text, log.verifiers)


def test_a_receipt_for_another_leaf_fails(log: _Log) -> None:
    with pytest.raises(ValueError, match="the proof of leaf 2 does not lead"):
        verify_tlog_proof(_receipt(log, 2, extra=log.leaves[1]), log.verifiers)


def test_a_receipt_without_its_extra_line_fails(log: _Log) -> None:
    with pytest.raises(ValueError, match=r"carries no leaf \(`extra` line\)"):
        verify_tlog_proof(_receipt(log, 2), log.verifiers)


def test_a_receipt_signed_by_an_unknown_key_fails(log: _Log) -> None:
    text = _receipt(log, 2, extra=log.leaves[2])
    with pytest.raises(ValueError, match="the checkpoint does not verify: no known key signed"):
        verify_tlog_proof(text, [_verifier(Ed25519PrivateKey.generate())])


def test_a_receipt_whose_checkpoint_signature_is_bad_fails(log: _Log) -> None:
    text = _receipt(log, 2, extra=log.leaves[2])
    body, dash, signature = text.rpartition("\u2014 ")
    name, _, encoded = signature.partition(" ")
    raw = bytearray(base64.b64decode(encoded))
    raw[-1] ^= 1
    forged = f"{body}{dash}{name} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(
        ValueError, match=f"the checkpoint does not verify: the signature of {ORIGIN}"
    ):
        verify_tlog_proof(forged, log.verifiers)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "not a c2sp.org/tlog-proof@v1 proof"),
        ("garbage\n\nmore garbage\n", "not a c2sp.org/tlog-proof@v1 proof"),
        ("c2sp.org/tlog-proof@v1\nindex 0\n", "not a c2sp.org/tlog-proof@v1 proof"),
        ("c2sp.org/tlog-proof@v2\nindex 0\n\nx\n", "not a c2sp.org/tlog-proof@v1 proof"),
        ("c2sp.org/tlog-proof@v1\n\nx\n", "the proof has no `index` line"),
        ("c2sp.org/tlog-proof@v1\nextra e30=\n\nx\n", "the proof has no `index` line"),
        ("c2sp.org/tlog-proof@v1\nindex -1\n\nx\n", "the index is a decimal number"),
        ("c2sp.org/tlog-proof@v1\nindex two\n\nx\n", "the index is a decimal number"),
        ("c2sp.org/tlog-proof@v1\nextra !!\nindex 0\n\nx\n", "not base64"),
        ("c2sp.org/tlog-proof@v1\nindex 0\nnot-base64!\n\nx\n", "not base64"),
    ],
)
def test_garbage_is_not_a_receipt(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        verify_tlog_proof(text, [])


def test_a_receipt_whose_hashes_were_cut_fails(log: _Log) -> None:
    lines = _receipt(log, 2, extra=log.leaves[2]).split("\n")
    del lines[3]  # the first hash of the proof
    with pytest.raises(ValueError, match="the proof of leaf 2 does not lead"):
        verify_tlog_proof("\n".join(lines), log.verifiers)


@pytest.mark.parametrize("spelled", ["01", "\u0661"], ids=["leading-zero", "arabic-indic-one"])
def test_a_receipt_index_is_plain_ascii_decimal(log: _Log, spelled: str) -> None:
    text = _receipt(log, 1, extra=log.leaves[1]).replace("\nindex 1\n", f"\nindex {spelled}\n")
    with pytest.raises(ValueError, match="the index is a decimal number"):
        verify_tlog_proof(text, log.verifiers)


def test_a_receipt_index_in_superscript_digits_is_refused(log: _Log) -> None:
    text = _receipt(log, 1, extra=log.leaves[1]).replace("\nindex 1\n", "\nindex \u00b9\n")
    with pytest.raises(ValueError):  # int() refuses it, with its own message
        verify_tlog_proof(text, log.verifiers)


# -- a proof without its leaf: the inclusion of a given hash --------------------------


def test_a_proof_without_its_leaf_proves_the_hash_given(log: _Log) -> None:
    proven = verify_tlog_proof(_receipt(log, 2), log.verifiers, leaf_hash=log.leaf_hashes[2])
    assert (proven.index, proven.checkpoint) == (2, log.checkpoint)
    assert proven.leaf_hash == log.leaf_hashes[2]
    assert proven.data is None  # the leaf's contents were not in the proof: not checked
    assert proven.leaf is None


def test_a_proof_with_its_leaf_and_the_same_hash_given_verifies(log: _Log) -> None:
    text = _receipt(log, 3, extra=log.leaves[3])
    proven = verify_tlog_proof(text, log.verifiers, leaf_hash=log.leaf_hashes[3])
    assert proven.leaf_hash == log.leaf_hashes[3]
    assert proven.data == log.leaves[3]
    assert proven.leaf == orjson.loads(log.leaves[3])


def test_a_proof_with_its_leaf_names_its_own_hash(log: _Log) -> None:
    proven = verify_tlog_proof(_receipt(log, 1, extra=log.leaves[1]), log.verifiers)
    assert proven.leaf_hash == log.leaf_hashes[1]


def test_a_proof_whose_leaf_is_not_the_hash_given_fails(log: _Log) -> None:
    text = _receipt(log, 3, extra=log.leaves[3])
    with pytest.raises(ValueError, match="the proof carries another leaf than the hash given"):
        verify_tlog_proof(text, log.verifiers, leaf_hash=log.leaf_hashes[2])


def test_a_proof_without_its_leaf_and_another_hash_fails(log: _Log) -> None:
    with pytest.raises(ValueError, match="the proof of leaf 2 does not lead"):
        verify_tlog_proof(_receipt(log, 2), log.verifiers, leaf_hash=log.leaf_hashes[3])


def test_a_proof_without_its_leaf_or_a_hash_says_what_is_missing(log: _Log) -> None:
    with pytest.raises(ValueError, match=r"carries no leaf .* and no leaf hash was given"):
        verify_tlog_proof(_receipt(log, 2), log.verifiers)


# -- a checkpoint checked with keys of another configuration --------------------------


def test_a_checkpoint_of_another_origin_names_both_origins_and_the_keys(log: _Log) -> None:
    # The same key, configured under another origin (its key id differs with the name).
    other = "127.0.0.1:8000/log"
    wanted = _verifier(log.key, other)
    with pytest.raises(ValueError) as raised:
        verify_tlog_proof(_receipt(log, 2, extra=log.leaves[2]), [wanted])
    message = str(raised.value)
    assert "no known key signed this note" in message
    assert f"the checkpoint names the origin {ORIGIN!r}" in message
    signer = _verifier(log.key)
    assert f"signed by {ORIGIN}+{signer.key_id.hex()}" in message
    assert f"looked for {other}+{wanted.key_id.hex()}" in message
    assert f"a key given signed it under the name {ORIGIN!r}" in message


def test_a_checkpoint_of_an_unknown_key_names_the_keys_looked_for(log: _Log) -> None:
    stranger = _verifier(Ed25519PrivateKey.generate())
    with pytest.raises(ValueError) as raised:
        verify_tlog_proof(_receipt(log, 2, extra=log.leaves[2]), [stranger])
    message = str(raised.value)
    assert f"looked for {ORIGIN}+{stranger.key_id.hex()}" in message
    assert "a key given signed it" not in message


def test_an_export_with_its_proofs_in_base64url_verifies(log: _Log) -> None:
    """Exports carry proof hashes in base64url; those made before, in standard base64."""

    def urlsafe(items: list[dict[str, Any]]) -> None:
        for item in items[1:-1]:
            if item.get("proof"):
                item["proof"] = [
                    base64.urlsafe_b64encode(base64.b64decode(h)).decode().rstrip("=")
                    for h in item["proof"]
                ]

    report = verify_export(_export(log, urlsafe), log.verifiers)
    assert report.ok, report.problem
    assert (report.proven, report.pending) == (5, 1)
