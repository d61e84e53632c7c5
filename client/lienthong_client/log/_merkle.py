"""RFC 6962 / RFC 9162 Merkle trees: hashing, proofs, and their verification.

A tree over leaves `D[0:n]` is stored as its *perfect* nodes: the node at level `l`
and index `i` is the hash of the complete subtree over leaves `[i*2^l, (i+1)*2^l)`.
Any subtree hash `MTH(D[lo:hi])` is the combination of the O(log n) perfect nodes that
tile `[lo, hi)`, so a proof reads O(log n) stored hashes whatever the tree's size.

Proofs are described as ranges of leaves whose subtree hashes are the proof's hashes
(RFC 6962 section 2.1.1 PATH and 2.1.2 PROOF); `nodes_for` says which perfect nodes
to read, and `hash_ranges` combines them. A tree that grows one leaf at a time is kept
as its right edge (`CompactRange`): the sequencer extends the stored tree with it, and
audits rebuild roots with it while streaming leaves. Checking a proof returns nothing
or raises `ProofError`, saying why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "EMPTY_ROOT",
    "CompactRange",
    "Node",
    "ProofError",
    "consistency_ranges",
    "hash_ranges",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "nodes_for",
    "perfect_nodes",
    "verify_consistency",
    "verify_inclusion",
]

Node = tuple[int, int]
"""A perfect node: (level, index)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_nodes(lo: int, hi: int) -> list[Node]:
    """The perfect nodes that tile `[lo, hi)`, left to right (largest aligned first)."""
    out: list[Node] = []
    while lo < hi:
        level = (lo & -lo).bit_length() - 1 if lo else (hi - lo).bit_length() - 1
        while lo + (1 << level) > hi:
            level -= 1
        out.append((level, lo >> level))
        lo += 1 << level
    return out


def _fold(parts: Sequence[bytes]) -> bytes:
    """The hash of a tree tiled by `parts`, left to right (largest aligned first).

    The tiling is the right spine of the RFC 6962 tree: fold it from the right.
    """
    if not parts:
        return EMPTY_ROOT
    acc = parts[-1]
    for part in reversed(parts[:-1]):
        acc = node_hash(part, acc)
    return acc


def _mth(lo: int, hi: int, nodes: Mapping[Node, bytes]) -> bytes:
    return _fold([nodes[n] for n in perfect_nodes(lo, hi)])


class CompactRange:
    """The tree of leaves `[0, size)` kept as its right edge: the perfect nodes that tile it.

    `append` adds a leaf hash and returns the perfect nodes it completes (the leaf's
    own included), which is what a store of perfect nodes must add; `root` is the
    tree's hash. O(log n) memory, whatever the size.
    """

    __slots__ = ("_edge", "size")

    def __init__(self) -> None:
        self.size = 0
        self._edge: list[tuple[int, bytes]] = []

    @classmethod
    def from_nodes(cls, size: int, nodes: Mapping[Node, bytes]) -> CompactRange:
        """The range of a stored tree of `size` leaves, from its perfect nodes."""
        found = cls()
        found._edge = [(level, nodes[(level, index)]) for level, index in perfect_nodes(0, size)]
        found.size = size
        return found

    def append(self, digest: bytes) -> list[tuple[int, int, bytes]]:
        """Add the leaf hash `digest`; the (level, index, hash) of every node it completes."""
        index = self.size
        made = [(0, index, digest)]
        self._edge.append((0, digest))
        self.size += 1
        while len(self._edge) > 1 and self._edge[-1][0] == self._edge[-2][0]:
            level, right = self._edge.pop()
            _, left = self._edge.pop()
            parent = node_hash(left, right)
            self._edge.append((level + 1, parent))
            made.append((level + 1, index >> (level + 1), parent))
        return made

    def root(self) -> bytes:
        """The Merkle tree hash of the leaves so far."""
        return _fold([digest for _, digest in self._edge])


def nodes_for(ranges: Iterable[tuple[int, int]]) -> set[Node]:
    """Every perfect node needed to hash these ranges."""
    return {node for lo, hi in ranges for node in perfect_nodes(lo, hi)}


def hash_ranges(ranges: Sequence[tuple[int, int]], nodes: Mapping[Node, bytes]) -> list[bytes]:
    """MTH of each range, from the perfect nodes read."""
    return [_mth(lo, hi, nodes) for lo, hi in ranges]


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """RFC 6962 PATH(index, D[0:size]) as leaf ranges, from the leaf's sibling upwards."""
    if not 0 <= index < size:
        raise ValueError("index out of range")

    def path(m: int, lo: int, hi: int) -> list[tuple[int, int]]:
        n = hi - lo
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*path(m, lo, lo + k), (lo + k, hi)]
        return [*path(m - k, lo + k, hi), (lo, lo + k)]

    return path(index, 0, size)


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """RFC 6962 PROOF(first, D[0:second]) as leaf ranges (0 < first <= second)."""
    if not 0 < first <= second:
        raise ValueError("sizes out of range")

    def subproof(m: int, lo: int, hi: int, whole: bool) -> list[tuple[int, int]]:
        n = hi - lo
        if m == n:
            return [] if whole else [(lo, hi)]
        k = _split(n)
        if m <= k:
            return [*subproof(m, lo, lo + k, whole), (lo + k, hi)]
        return [*subproof(m - k, lo + k, hi, False), (lo, lo + k)]

    return subproof(first, 0, second, True)


class ProofError(ValueError):
    """A proof that does not show what it claims; the message says why."""


def _check_hashes(*values: bytes) -> None:
    if not all(len(v) == 32 for v in values):
        raise ProofError("a hash is not 32 bytes")


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf hash `leaf` is at `index` of the tree of `size` leaves with `root`.

    RFC 9162 section 2.1.3.2; raises `ProofError` if the proof does not show it.
    """
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not below the tree size {size}")
    _check_hashes(leaf, root, *proof)
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than the path to the root")
    if r != root:
        raise ProofError(f"the proof of leaf {index} does not lead to the root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of `second` leaves extends the tree of `first` leaves.

    RFC 9162 section 2.1.4.2 (equal sizes need an empty proof and equal roots); raises
    `ProofError` if the proof does not show it.
    """
    if not 0 < first <= second:
        raise ProofError(f"sizes {first} and {second} are not 0 < first <= second")
    _check_hashes(first_root, second_root, *proof)
    if first == second:
        if proof or first_root != second_root:
            raise ProofError(f"two different roots for the same size {first}")
        return
    if not proof:
        raise ProofError("an empty proof between different sizes")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than the path to the root")
    if fr != first_root or sr != second_root:
        raise ProofError(f"the trees of {first} and {second} leaves are not consistent")
