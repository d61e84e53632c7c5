"""The verifiers of the gateway's own checkpoints, from its key ring.

The checkpoint format (c2sp.org/tlog-checkpoint), its signing and its checking are the
log's offline core, in the client library (`lienthong_client.log`): a case-handling
system or an auditor checks checkpoints with the very code the gateway signs them with.
"""

from __future__ import annotations

from keys import KeyRing, NoteVerifier, note_key_id

__all__ = ["checkpoint_verifiers"]


def checkpoint_verifiers(keyring: KeyRing, origin: str) -> list[NoteVerifier]:
    """The note verifiers of every checkpoint key in `keyring`, oldest first."""
    return [
        NoteVerifier(origin, note_key_id(origin, k.public), k.public)
        for k in keyring.verifying("checkpoints")
    ]
