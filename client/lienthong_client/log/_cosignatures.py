r"""Witness cosignatures of checkpoints (c2sp.org/tlog-cosignature, Ed25519), and a
witness policy: which witnesses a reader trusts, and how many must have cosigned.

A cosignature is a note signature line `— <witness name> base64(key id || u64 timestamp
|| Ed25519 signature)`, appended to the checkpoint's signatures. The key id is
SHA-256(name || "\n" || 0x04 || public key)[:4]; the signed message is
`cosignature/v1\ntime <timestamp>\n` followed by the checkpoint's text. It states that,
as of that time, the witness had seen no tree of the log inconsistent with this one:
a log that showed one history to some and another to others could not collect
cosignatures for both from the same witness.

A reader does not learn the witnesses from the log, which is the party being checked:
it holds a policy (`WitnessPolicy`, written as a file of `witness <key>` lines and one
`quorum <k>` line) and accepts a checkpoint only with at least k cosignatures of them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from lienthong_client.log._checkpoint import CheckpointError

__all__ = [
    "Cosignature",
    "CosignerKey",
    "WitnessPolicy",
    "cosign",
    "cosignatures",
    "cosigner_key",
    "cosigner_key_id",
    "parse_cosigner_key",
    "policy_of",
    "read_policy",
]

_COSIGNATURE_V1: Final = b"\x04"
_DASH: Final = "\u2014 "
_MAX_TIMESTAMP: Final = 2**63 - 1
_QUORUM: Final = re.compile(r"[1-9][0-9]{0,3}")


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _check_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise CheckpointError("a witness name is non-empty, without spaces or '+'")


def cosigner_key_id(name: str, public: Ed25519PublicKey) -> bytes:
    """The 4-byte key id of an Ed25519 cosigner (signature type 0x04)."""
    _check_name(name)
    return hashlib.sha256(name.encode() + b"\n" + _COSIGNATURE_V1 + _raw(public)).digest()[:4]


@dataclass(frozen=True, slots=True)
class CosignerKey:
    """A witness a reader trusts: its name, key id and public key."""

    name: str
    key_id: bytes
    public: Ed25519PublicKey

    @property
    def text(self) -> str:
        """`<name>+<hex key id>+<base64(0x04 || public key)>` (a C2SP verifier key)."""
        encoded = base64.b64encode(_COSIGNATURE_V1 + _raw(self.public)).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"


def cosigner_key(name: str, public: Ed25519PublicKey) -> CosignerKey:
    return CosignerKey(name, cosigner_key_id(name, public), public)


def parse_cosigner_key(text: str) -> CosignerKey:
    """Read a witness's verifier key, checking that its key id matches its key."""
    name, key_id_hex, encoded = [*text.strip().split("+", 2), "", ""][:3]
    try:
        key_id = bytes.fromhex(key_id_hex)
        raw = base64.b64decode(encoded, validate=True)
    except (ValueError, binascii.Error):
        raise CheckpointError(f"not a witness key: {text.strip()[:80]!r}") from None
    if len(key_id) != 4 or len(raw) != 33 or raw[:1] != _COSIGNATURE_V1:
        raise CheckpointError("not an Ed25519 cosignature (type 0x04) key")
    public = Ed25519PublicKey.from_public_bytes(raw[1:])
    if cosigner_key_id(name, public) != key_id:
        raise CheckpointError("the witness key's id does not match the key")
    return CosignerKey(name, key_id, public)


def _message(text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


def cosign(text: str, name: str, private: Ed25519PrivateKey, timestamp: int) -> str:
    """The cosignature line (newline included) of a checkpoint's `text`."""
    if not text.endswith("\n"):
        raise CheckpointError("a checkpoint's text ends with a newline")
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise CheckpointError("a cosignature's time is a POSIX timestamp below 2^63")
    key_id = cosigner_key_id(name, private.public_key())
    signature = private.sign(_message(text, timestamp))
    body = key_id + struct.pack(">Q", timestamp) + signature
    return f"{_DASH}{name} {base64.b64encode(body).decode()}\n"


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A verified cosignature: whose, and when it was made (POSIX seconds)."""

    witness: str
    timestamp: int


def _split(note: str) -> tuple[str, list[str]]:
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise CheckpointError("not a signed note")
    return note[: split + 1], note[split + 2 : -1].split("\n")


def cosignatures(note: str, cosigners: Iterable[CosignerKey]) -> list[Cosignature]:
    """The valid cosignatures of `cosigners` on the checkpoint `note`, one per witness.

    Lines of other keys (the log's own signature, unknown witnesses) are ignored. A line
    of a known witness that does not verify makes the note invalid, as a signed note's
    bad signature does: it was changed, or a witness's key was misused.
    """
    text, lines = _split(note)
    known = {(c.name, c.key_id): c for c in cosigners}
    found: dict[str, Cosignature] = {}
    for line in lines:
        if not line.startswith(_DASH):
            raise CheckpointError("a signature line starts with an em dash and a space")
        name, _, encoded = line[len(_DASH) :].partition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            raise CheckpointError("a signature is base64") from None
        cosigner = known.get((name, raw[:4]))
        if cosigner is None:
            continue
        if len(raw) != 4 + 8 + 64:
            raise CheckpointError(f"the cosignature of {name} is not a timestamped signature")
        (timestamp,) = struct.unpack(">Q", raw[4:12])
        if timestamp > _MAX_TIMESTAMP:
            raise CheckpointError(f"the cosignature of {name} has a time beyond 2^63 - 1")
        try:
            cosigner.public.verify(raw[12:], _message(text, timestamp))
        except InvalidSignature:
            raise CheckpointError(f"the cosignature of {name} does not verify") from None
        found.setdefault(name, Cosignature(name, timestamp))
    return list(found.values())


@dataclass(frozen=True, slots=True)
class WitnessPolicy:
    """The witnesses a reader trusts, and how many of them must cosign a checkpoint."""

    witnesses: tuple[CosignerKey, ...]
    quorum: int

    def __post_init__(self) -> None:
        names = [w.name for w in self.witnesses]
        if len(set(names)) != len(names):
            raise CheckpointError("a witness is named twice in the policy")
        if not 1 <= self.quorum <= len(self.witnesses):
            raise CheckpointError(
                f"the quorum is 1 to the number of witnesses ({len(self.witnesses)}), "
                f"not {self.quorum}"
            )

    def check(self, note: str) -> list[Cosignature]:
        """The cosignatures of the policy's witnesses on `note`, if at least `quorum`.

        Raises:
            CheckpointError: fewer than `quorum` of the witnesses cosigned (saying who
                did), or a cosignature of one of them does not verify.
        """
        found = cosignatures(note, self.witnesses)
        if len(found) < self.quorum:
            signed = ", ".join(c.witness for c in found) or "none of them"
            raise CheckpointError(
                f"the checkpoint has {len(found)} of the {self.quorum} cosignatures the "
                f"witness policy asks for ({signed} of {len(self.witnesses)} witnesses "
                "cosigned it)"
            )
        return found


def read_policy(text: str) -> WitnessPolicy:
    """A policy file: `witness <key>` lines, one `quorum <k>` line, `#` comments.

    Without a `quorum` line every witness named must cosign.
    """
    witnesses: list[CosignerKey] = []
    quorum: int | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        word, _, value = line.partition(" ")
        if word == "witness" and value.strip():
            witnesses.append(parse_cosigner_key(value.strip()))
        elif word == "quorum" and _QUORUM.fullmatch(value.strip()) and quorum is None:
            quorum = int(value.strip())
        else:
            raise CheckpointError(
                f"witness policy, line {number}: expected `witness <key>` or `quorum <k>`"
            )
    return WitnessPolicy(tuple(witnesses), len(witnesses) if quorum is None else quorum)


def policy_of(keys: Sequence[str], quorum: int | None) -> WitnessPolicy:
    """A policy from witness keys given one by one (flags), every one required by default."""
    witnesses = tuple(parse_cosigner_key(k) for k in keys)
    return WitnessPolicy(witnesses, len(witnesses) if quorum is None else quorum)
