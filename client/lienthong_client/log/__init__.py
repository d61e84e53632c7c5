"""The access log's offline core: what anyone needs to check the gateway's log without
the gateway.

RFC 9162 Merkle hashing, the compact range and inclusion and consistency proofs
(`ProofError`); C2SP signed notes (c2sp.org/signed-note) and checkpoints
(c2sp.org/tlog-checkpoint); witnesses' cosignatures and the reader's witness policy
(c2sp.org/tlog-cosignature); offline proofs (c2sp.org/tlog-proof); the base64url of
hashes in JSON and URLs. The gateway signs and proves with this very code; the client
checks with it. It needs `cryptography` and the standard library only.
"""

from lienthong_client.log._checkpoint import (
    BadCheckpointSignature,
    Checkpoint,
    CheckpointError,
    UnknownCheckpointKey,
    checkpoint_text,
    parse_checkpoint,
    sign_checkpoint,
)
from lienthong_client.log._cosignatures import (
    Cosignature,
    CosignerKey,
    WitnessPolicy,
    cosign,
    cosignatures,
    cosigner_key,
    cosigner_key_id,
    parse_cosigner_key,
    policy_of,
    read_policy,
)
from lienthong_client.log._encoding import b64url, read_b64, read_leaf_hash
from lienthong_client.log._merkle import (
    EMPTY_ROOT,
    CompactRange,
    Node,
    ProofError,
    consistency_ranges,
    hash_ranges,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    nodes_for,
    perfect_nodes,
    verify_consistency,
    verify_inclusion,
)
from lienthong_client.log._notes import (
    NoteError,
    NoteVerifier,
    UnknownNoteKey,
    note_key_id,
    open_note,
    parse_verifier_key,
    sign_note,
    verifier_key,
)
from lienthong_client.log._proofs import ProvenLeaf, verify_tlog_proof
from lienthong_client.log._tlog_proof import TLOG_PROOF, TlogProof, read_tlog_proof, tlog_proof

__all__ = [
    "EMPTY_ROOT",
    "TLOG_PROOF",
    "BadCheckpointSignature",
    "Checkpoint",
    "CheckpointError",
    "CompactRange",
    "Cosignature",
    "CosignerKey",
    "Node",
    "NoteError",
    "NoteVerifier",
    "ProofError",
    "ProvenLeaf",
    "TlogProof",
    "UnknownCheckpointKey",
    "UnknownNoteKey",
    "WitnessPolicy",
    "b64url",
    "checkpoint_text",
    "consistency_ranges",
    "cosign",
    "cosignatures",
    "cosigner_key",
    "cosigner_key_id",
    "hash_ranges",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "nodes_for",
    "note_key_id",
    "open_note",
    "parse_checkpoint",
    "parse_cosigner_key",
    "parse_verifier_key",
    "perfect_nodes",
    "policy_of",
    "read_b64",
    "read_leaf_hash",
    "read_policy",
    "read_tlog_proof",
    "sign_checkpoint",
    "sign_note",
    "tlog_proof",
    "verifier_key",
    "verify_consistency",
    "verify_inclusion",
    "verify_tlog_proof",
]
