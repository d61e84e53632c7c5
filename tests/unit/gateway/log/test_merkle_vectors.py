"""RFC 6962 proofs: every case of the vendored test vectors (tests/data/merkle), and ours."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from gateway.log import (
    CompactRange,
    ProofError,
    consistency_ranges,
    hash_ranges,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    perfect_nodes,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parents[3] / "data" / "merkle"
LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes.fromhex("5051525354555657"),
    bytes.fromhex("606162636465666768696a6b6c6d6e6f"),
]


def _cases(kind: str) -> list[Path]:
    found = sorted((VECTORS / kind).rglob("*.json"))
    assert found, f"no test vectors under {VECTORS / kind}"
    return found


def _b(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _verifies(check: object, *args: object) -> bool:
    """Whether the check passes; a refusal must be a `ProofError`, nothing else."""
    try:
        check(*args)  # type: ignore[operator]
    except ProofError:
        return False
    return True


@pytest.mark.parametrize("path", _cases("inclusion"), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_inclusion_vector(path: Path) -> None:
    case = json.loads(path.read_text())
    proof = [_b(p) for p in case["proof"] or []]
    ok = _verifies(
        verify_inclusion,
        case["leafIdx"],
        case["treeSize"],
        _b(case["leafHash"]),
        proof,
        _b(case["root"]),
    )
    assert ok is not case["wantErr"], case.get("desc")


@pytest.mark.parametrize("path", _cases("consistency"), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_consistency_vector(path: Path) -> None:
    case = json.loads(path.read_text())
    proof = [_b(p) for p in case["proof"] or []]
    roots = _b(case["root1"]), _b(case["root2"])
    ok = _verifies(verify_consistency, case["size1"], case["size2"], *roots, proof)
    if any(len(h) != 32 for h in (*roots, *proof)) and not case["wantErr"]:
        # Stricter than the reference: a hash that is not 32 bytes never verifies.
        assert not ok, case.get("desc")
        same = [b"\x07" * 32] * 2
        verify_consistency(case["size1"], case["size2"], *same, proof)
        return
    assert ok is not case["wantErr"], case.get("desc")


def _nodes(n: int) -> dict[tuple[int, int], bytes]:
    nodes = {(0, i): leaf_hash(LEAVES[i % len(LEAVES)] + i.to_bytes(4, "big")) for i in range(n)}
    level = 1
    while 1 << level <= n:
        for i in range(n >> level):
            nodes[(level, i)] = node_hash(nodes[(level - 1, 2 * i)], nodes[(level - 1, 2 * i + 1)])
        level += 1
    return nodes


def test_the_known_roots() -> None:
    nodes = {(0, i): leaf_hash(d) for i, d in enumerate(LEAVES)}
    nodes.update({(1, i): node_hash(nodes[(0, 2 * i)], nodes[(0, 2 * i + 1)]) for i in range(4)})
    nodes.update({(2, i): node_hash(nodes[(1, 2 * i)], nodes[(1, 2 * i + 1)]) for i in range(2)})
    nodes[(3, 0)] = node_hash(nodes[(2, 0)], nodes[(2, 1)])
    assert hash_ranges([(0, 8)], nodes)[0].hex().startswith("5dc9da79")
    assert hash_ranges([(0, 1)], nodes)[0].hex().startswith("6e340b9c")
    assert hash_ranges([(0, 7)], nodes)[0].hex().startswith("ddb89be4")


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 9, 31, 64, 100, 257])
def test_generated_proofs_verify_and_tampered_ones_do_not(size: int) -> None:
    nodes = _nodes(size)
    root = hash_ranges([(0, size)], nodes)[0]
    for index in range(size):
        proof = hash_ranges(inclusion_ranges(index, size), nodes)
        verify_inclusion(index, size, nodes[(0, index)], proof, root)
        if proof:
            bent = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
            with pytest.raises(ProofError, match=f"proof of leaf {index} does not lead"):
                verify_inclusion(index, size, nodes[(0, index)], bent, root)
    for first in range(1, size + 1):
        proof = hash_ranges(consistency_ranges(first, size), nodes)
        old = hash_ranges([(0, first)], nodes)[0]
        verify_consistency(first, size, old, root, proof)
        if first < size:
            with pytest.raises(ProofError):
                verify_consistency(first, size, old, leaf_hash(b"another root"), proof)


def test_proofs_read_logarithmically_many_nodes() -> None:
    size = 2**20 - 3
    for ranges in (inclusion_ranges(12345, size), consistency_ranges(2**19 + 17, size)):
        wanted = {n for lo, hi in ranges for n in perfect_nodes(lo, hi)}
        assert len(wanted) <= 2 * 20


@pytest.mark.parametrize("size", [0, 1, 2, 3, 7, 8, 9, 31, 64, 100, 257])
def test_the_compact_range_gives_the_roots_and_completes_the_stored_nodes(size: int) -> None:
    nodes = _nodes(size)
    grown = CompactRange()
    made: dict[tuple[int, int], bytes] = {}
    for index in range(size):
        for level, idx, digest in grown.append(nodes[(0, index)]):
            made[(level, idx)] = digest
        assert grown.root() == hash_ranges([(0, index + 1)], nodes)[0]
    # Every perfect node, each once, and nothing else: what the store must hold.
    assert made == nodes
    assert grown.size == size
    # Resumed from its stored right edge, it goes on as if it had never stopped.
    resumed = CompactRange.from_nodes(size, nodes)
    assert resumed.root() == grown.root()
    extra = leaf_hash(b"one more")
    assert resumed.append(extra) == grown.append(extra)
    assert resumed.root() == grown.root()
