"""`gateway audit verify --url`: check what a running gateway publishes about its log.

Only what is public is checked: the checkpoint's signature (with a key the auditor
trusts), the hash tiles against the root, the public leaves against the tiles,
sampled inclusion proofs, and consistency with a checkpoint seen before, which also
catches a log that was rolled back. It needs the log's core and an HTTP client, not
the gateway's database.
"""

from __future__ import annotations

import httpx
from lienthong_client.log import (
    CheckpointError,
    CompactRange,
    ProofError,
    WitnessPolicy,
    leaf_hash,
    node_hash,
    parse_checkpoint,
    read_b64,
    verify_consistency,
    verify_inclusion,
)

from gateway.log._report import Report
from gateway.log._tiles import TILE_HEIGHT, TILE_WIDTH, read_entry_bundle, tile_name
from keys import NoteError, parse_verifier_key

__all__ = ["verify_remote"]


async def verify_remote(
    url: str,
    *,
    key: str | None = None,
    previous: str | None = None,
    samples: int = 16,
    policy: WitnessPolicy | None = None,
) -> Report:
    """Check what a running gateway publishes about its log.

    `key`: the checkpoint verifier key(s) to trust, comma-separated; without it, the keys
    the gateway publishes (which proves less, and the report says so). `previous`: a
    checkpoint seen before, which the current one must be consistent with. `policy`:
    the witnesses trusted and how many must have cosigned the checkpoint; without it,
    their cosignatures are not checked (and the report says so).
    """
    report = Report()
    try:
        async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=30.0) as http:
            return await _verify_remote(http, report, key, previous, samples, policy)
    except httpx.HTTPStatusError as exc:
        return report.fail(
            f"{exc.request.url.path} answered HTTP {exc.response.status_code}: the gateway "
            f"does not publish its log there"
        )
    except httpx.HTTPError as exc:
        return report.fail(f"could not read {url}: {type(exc).__name__}")
    except (ValueError, KeyError, TypeError) as exc:  # a malformed proof or tile
        return report.fail(f"{url} answered something that is not a log: {type(exc).__name__}")


async def _verify_remote(
    http: httpx.AsyncClient,
    report: Report,
    key: str | None,
    previous: str | None,
    samples: int,
    policy: WitnessPolicy | None,
) -> Report:
    async def get(path: str) -> httpx.Response:
        response = await http.get(path)
        response.raise_for_status()
        return response

    if key is None:
        key = ",".join((await get("/log/key")).text.split())
        report.checked.append(
            "with the checkpoint keys the gateway publishes (pass --key to use keys you trust)"
        )
    try:
        verifiers = [parse_verifier_key(k) for k in key.split(",") if k]
    except NoteError as exc:
        return report.fail(f"bad checkpoint key: {exc}")
    if not verifiers:
        return report.fail("no checkpoint key to verify with")
    note = (await get("/log/checkpoint")).text
    try:
        checkpoint = parse_checkpoint(note, verifiers)
    except CheckpointError as exc:
        return report.fail(f"the checkpoint does not verify: {exc}")
    report.checked.append(f"the checkpoint's signature (size {checkpoint.size})")
    if policy is None:
        report.checked.append(
            "not the witnesses' cosignatures: no witness policy given (--witness-policy), "
            "so not that this checkpoint is the one every reader sees"
        )
    else:
        try:
            found = policy.check(note)
        except CheckpointError as exc:
            return report.fail(f"the checkpoint is not witnessed as the policy asks: {exc}")
        names = ", ".join(c.witness for c in found)
        report.checked.append(
            f"cosigned by {len(found)} of the {len(policy.witnesses)} witnesses trusted "
            f"({names}; {policy.quorum} needed)"
        )
    size = checkpoint.size
    leaves: list[bytes] = []
    for n in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        width = min(TILE_WIDTH, size - n * TILE_WIDTH)
        name = tile_name(n, width)
        tile = (await get(f"/log/tile/0/{name}")).content
        bundle = (await get(f"/log/tile/entries/{name}")).content
        hashes = [tile[i : i + 32] for i in range(0, len(tile), 32)]
        entries = read_entry_bundle(bundle)
        if len(hashes) != width or len(entries) != width:
            return report.fail(f"tile {n} is not {width} entries long", n * TILE_WIDTH)
        for i, (digest, entry) in enumerate(zip(hashes, entries, strict=True)):
            if leaf_hash(entry) != digest:
                return report.fail("a public leaf does not hash to its tile", n * TILE_WIDTH + i)
        leaves.extend(hashes)
    tree = CompactRange()
    for digest in leaves:
        tree.append(digest)
    if tree.root() != checkpoint.root:
        return report.fail("the tiles do not give the checkpoint's root")
    report.checked.append(f"{size} leaves: entry bundles, level-0 tiles and the root")
    hashes, level = leaves, 0
    while len(hashes) >= TILE_WIDTH:
        for _ in range(TILE_HEIGHT):
            hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes) - 1, 2)]
        level += 1
        for n in range((len(hashes) + TILE_WIDTH - 1) // TILE_WIDTH):
            width = min(TILE_WIDTH, len(hashes) - n * TILE_WIDTH)
            served = (await get(f"/log/tile/{level}/{tile_name(n, width)}")).content
            if served != b"".join(hashes[n * TILE_WIDTH : n * TILE_WIDTH + width]):
                return report.fail(
                    f"the level-{level} tile {n} does not hold the tree's hashes",
                    (n * TILE_WIDTH) << (TILE_HEIGHT * level),
                )
    if level:
        report.checked.append(f"the hash tiles of levels 1 to {level}")
    step = max(1, size // samples) if size else 1
    for index in range(0, size, step):
        proof = (await get(f"/log/proof/inclusion?index={index}&size={size}")).json()
        hashes = [read_b64(h) for h in proof["hashes"]]
        try:
            verify_inclusion(index, size, leaves[index], hashes, checkpoint.root)
        except ProofError:
            return report.fail("an inclusion proof does not verify", index)
    report.checked.append("sampled inclusion proofs")
    if previous is not None:
        try:
            old = parse_checkpoint(previous, verifiers)
        except CheckpointError as exc:
            return report.fail(f"the previous checkpoint does not verify: {exc}")
        if old.origin != checkpoint.origin:
            return report.fail(
                f"the previous checkpoint is of another log ({old.origin!r}, "
                f"not {checkpoint.origin!r})"
            )
        if old.size > size:
            return report.fail(
                f"the log shrank: the previous checkpoint has {old.size} leaves, the "
                f"current one {size} (rolled back, or a fork)",
                size,
            )
        if old.size == size and old.root != checkpoint.root:
            return report.fail("two different roots were signed for the same size", size)
        if 0 < old.size < size:
            proof = (await get(f"/log/proof/consistency?first={old.size}&second={size}")).json()
            hashes = [read_b64(h) for h in proof["hashes"]]
            try:
                verify_consistency(old.size, size, old.root, checkpoint.root, hashes)
            except ProofError:
                return report.fail("the log is not consistent with the previous checkpoint")
        report.checked.append(f"consistency with the previous checkpoint ({old.size})")
    return report
