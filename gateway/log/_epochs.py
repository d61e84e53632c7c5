"""Epochs of the log: the origins it signs under after a declared loss.

A log that lost leaves it had published cannot sign under its name again: every
witness holds the larger tree, and refuses any checkpoint that does not extend it.
A statement of loss (`gateway log declare-loss`) moves the log on to its next epoch,
the origin `<origin>/epoch-<n>` (n from 2; the configured origin is epoch 1): the same
tree goes on, its first leaf in the new epoch is the statement, and witnesses see the
new origin as a new log. Checkpoints keep the origin they were signed under.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from keys import NoteVerifier, note_key_id

__all__ = ["epoch_of", "epoch_origin", "family_verifiers", "note_origin"]

EPOCH: Final = "/epoch-"
_NUMBER: Final = re.compile(r"[1-9][0-9]{0,8}")


def epoch_origin(base: str, epoch: int) -> str:
    """The origin of the log's `epoch` (1: the configured origin itself)."""
    return base if epoch == 1 else f"{base}{EPOCH}{epoch}"


def epoch_of(base: str, origin: str) -> int | None:
    """The epoch `origin` names of the log of `base`, or `None` if it is another log's."""
    if origin == base:
        return 1
    prefix = base + EPOCH
    rest = origin[len(prefix) :]
    if origin.startswith(prefix) and _NUMBER.fullmatch(rest) and int(rest) >= 2:
        return int(rest)
    return None


def note_origin(note: str) -> str:
    """The origin a checkpoint note names (its first line)."""
    return note.split("\n", 1)[0]


def family_verifiers(verifiers: Sequence[NoteVerifier], origin: str) -> list[NoteVerifier]:
    """The same keys, named for `origin` (a note key's name and id follow the origin)."""
    return [NoteVerifier(origin, note_key_id(origin, v.public), v.public) for v in verifiers]
