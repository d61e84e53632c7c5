"""The verifiable access log: an RFC 6962 Merkle tree over every recorded event.

This package is the log's pure core: hashing and the compact range (`CompactRange`),
inclusion and consistency proofs that raise `ProofError`, checkpoints as C2SP signed
notes, tile paths and entry bundles (c2sp.org/tlog-tiles), the public leaf and the
envelope hash, offline proofs (c2sp.org/tlog-proof), receipts, the base64url of hashes
in JSON and URLs, and the offline checks of exports and receipts. It imports neither
the database nor the web framework, so the offline checks run anywhere with `keys/`
alone. What a client needs to check the log without the gateway (Merkle proofs, signed
notes and checkpoints, offline proofs) is the client library's `lienthong_client.log`,
re-exported here: the gateway signs and proves with the code its clients check with.

What needs more lives in modules of their own, imported by name:

- `gateway.log.store`: the log in the database (`TransparencyLog`): integration,
  checkpoints, proofs and tiles;
- `gateway.log.sequencer`: the background task that integrates within the merge delay;
- `gateway.log.witnessing`: the background task that has witnesses cosign checkpoints;
- `gateway.log.continuity`: the guard that keeps the sequencer from signing a log
  that does not continue the newest checkpoint published of it;
- `gateway.log.remote`: `verify_remote`, the audit of a running gateway over HTTP.
"""

from lienthong_client.log import (
    EMPTY_ROOT,
    TLOG_PROOF,
    Checkpoint,
    CheckpointError,
    CompactRange,
    Node,
    ProofError,
    ProvenLeaf,
    TlogProof,
    UnknownCheckpointKey,
    WitnessPolicy,
    b64url,
    checkpoint_text,
    consistency_ranges,
    hash_ranges,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    nodes_for,
    parse_checkpoint,
    perfect_nodes,
    policy_of,
    read_b64,
    read_leaf_hash,
    read_policy,
    read_tlog_proof,
    sign_checkpoint,
    tlog_proof,
    verify_consistency,
    verify_inclusion,
    verify_tlog_proof,
)

from gateway.log._canonical import canonical_json, plain_canonical_json
from gateway.log._checkpoint import checkpoint_verifiers
from gateway.log._epochs import epoch_of, epoch_origin, family_verifiers, note_origin
from gateway.log._leaf import LEAF_VERSION, canonical_hash, format_ts, public_leaf
from gateway.log._offline import ExportReport, verify_export
from gateway.log._receipts import Receipts, verify_receipt
from gateway.log._report import Report
from gateway.log._tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    entry_bundle,
    parse_tile_path,
    read_entry_bundle,
    tile_name,
    tile_path,
)

__all__ = [
    "EMPTY_ROOT",
    "LEAF_VERSION",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "TLOG_PROOF",
    "Checkpoint",
    "CheckpointError",
    "CompactRange",
    "ExportReport",
    "Node",
    "ProofError",
    "ProvenLeaf",
    "Receipts",
    "Report",
    "TlogProof",
    "UnknownCheckpointKey",
    "WitnessPolicy",
    "b64url",
    "canonical_hash",
    "canonical_json",
    "checkpoint_text",
    "checkpoint_verifiers",
    "consistency_ranges",
    "entry_bundle",
    "epoch_of",
    "epoch_origin",
    "family_verifiers",
    "format_ts",
    "hash_ranges",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "nodes_for",
    "note_origin",
    "parse_checkpoint",
    "parse_tile_path",
    "perfect_nodes",
    "plain_canonical_json",
    "policy_of",
    "public_leaf",
    "read_b64",
    "read_entry_bundle",
    "read_leaf_hash",
    "read_policy",
    "read_tlog_proof",
    "sign_checkpoint",
    "tile_name",
    "tile_path",
    "tlog_proof",
    "verify_consistency",
    "verify_export",
    "verify_inclusion",
    "verify_receipt",
    "verify_tlog_proof",
]
