"""RFC 6962 / RFC 9162 Merkle trees: hashing, proofs, and their verification.

A tree over leaves `D[0:n]` is stored as its *perfect* nodes: the node at level `l`
and index `i` is the hash of the complete subtree over leaves `[i*2^l, (i+1)*2^l)`.
Any subtree hash `MTH(D[lo:hi])` is the combination of the O(log n) perfect nodes that
tile `[lo, hi)`, so a proof reads O(log n) stored hashes whatever the tree's size.

Proofs are described as ranges of leaves whose subtree hashes are the proof's hashes
(RFC 6962 section 2.1.1 PATH and 2.1.2 PROOF); `nodes_for` says which perfect nodes
to read, and `hash_ranges` combines them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "EMPTY_ROOT",
    "Node",
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


def _mth(lo: int, hi: int, nodes: Mapping[Node, bytes]) -> bytes:
    if lo == hi:
        return EMPTY_ROOT
    parts = [nodes[n] for n in perfect_nodes(lo, hi)]
    # The tiling is the right spine of the RFC 6962 tree: fold it from the right.
    acc = parts[-1]
    for part in reversed(parts[:-1]):
        acc = node_hash(part, acc)
    return acc


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


def _hashes(*values: bytes) -> bool:
    return all(len(v) == 32 for v in values)


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size or not _hashes(leaf, root, *proof):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
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
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2; equal sizes need an empty proof and equal roots."""
    if not 0 < first <= second or not _hashes(first_root, second_root, *proof):
        return False
    if first == second:
        return not proof and first_root == second_root
    if not proof:
        return False
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
            return False
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
    return fr == first_root and sr == second_root and sn == 0
