"""The verifiable access log over real HTTP, checked with code independent of the gateway.

The tree is rebuilt with pymerkle (an independent RFC 6962 implementation); signed notes
and consistency proofs are checked with small verifiers written here from the C2SP and
RFC 9162 texts, not with the gateway's own code.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import os
import subprocess
import sys

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pymerkle import InmemoryTree

from keys import open_sealed, unwrap_key

RESIDENCE = "1.004222"
FIFTH = "id = (SELECT event_id FROM log_leaves WHERE idx = 5)"


# -- independent verifiers, from the specifications --------------------------------------


def note_signed_by(note: str, verifier_key: str) -> str:
    """c2sp.org/signed-note: the text, if the key named by `verifier_key` signed it."""
    name, key_id, encoded = verifier_key.split("+", 2)
    raw = base64.b64decode(encoded)
    assert raw[0] == 1
    public = Ed25519PublicKey.from_public_bytes(raw[1:])
    assert hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex() == key_id
    text, signatures = note[: note.rindex("\n\n") + 1], note[note.rindex("\n\n") + 2 :]
    for line in signatures.splitlines():
        assert line.startswith("\u2014 ")
        signer, blob = line[2:].split(" ", 1)
        data = base64.b64decode(blob)
        if signer == name and data[:4].hex() == key_id:
            public.verify(data[4:], text.encode())
            return text
    raise AssertionError("no signature of the key")


def _h(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def consistent(m: int, n: int, root1: bytes, root2: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2, written out again for the test."""
    if m == n:
        return root1 == root2 and not proof
    path = ([root1] if m & (m - 1) == 0 else []) + proof
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = _h(b"\x01", c, fr), _h(b"\x01", c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = _h(b"\x01", sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == root1 and sr == root2 and sn == 0


def _from_b64url(text: str) -> bytes:
    """JSON carries hashes and signatures in base64url without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def read_checkpoint(text: str) -> tuple[str, int, bytes]:
    origin, size, root = text.split("\n")[:3]
    return origin, int(size), base64.b64decode(root)


def entries(bundle: bytes) -> list[bytes]:
    out, at = [], 0
    while at < len(bundle):
        length = int.from_bytes(bundle[at : at + 2], "big")
        out.append(bundle[at + 2 : at + 2 + length])
        at += 2 + length
    return out


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def log_gateway(gateway_factory):
    return gateway_factory(merge_delay=0.2, rate_limit_officer=100_000, rate_limit_client=100_000)


async def _requests(gateway, dataset, count: int) -> list[dict]:
    people = list(dataset.sample.citizens)

    async def one(i: int) -> dict:
        person = people[i % len(people)]
        response = await gateway.post(
            f'{{ citizen(personalId: "{person}") {{ fullName }} }}', procedure=RESIDENCE
        )
        assert response.status_code == 200
        return response.json()

    results = []
    for start in range(0, count, 25):
        results += await asyncio.gather(*(one(i) for i in range(start, min(count, start + 25))))
    return results


async def _checkpoint(http, at_least: int, verifier: str) -> tuple[str, int, bytes, str]:
    for _ in range(100):
        note = (await http.get("/log/checkpoint")).text
        origin, size, root = read_checkpoint(note_signed_by(note, verifier))
        if size >= at_least:
            return origin, size, root, note
        await asyncio.sleep(0.1)
    raise AssertionError(f"the log did not reach {at_least} leaves")


async def _record_directly(database_url: str, count: int) -> None:
    from bench._log import access_event
    from gateway.records import insert_events
    from gateway.storage import create_engine

    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await insert_events(conn, [access_event(i) for i in range(count)])
    finally:
        await engine.dispose()


# -- tests --------------------------------------------------------------------------------


@pytest.mark.own_database
async def test_the_log_verifies_with_independent_code(log_gateway, dataset, migrated) -> None:
    async with log_gateway.client(auth=None) as http:
        verifier = (await http.get("/log/key")).text.splitlines()[0]
        # Before any request, the log holds the registration of the client and its key,
        # and the record of the catalogue the gateway started with.
        _, start_size, start_root, _ = await _checkpoint(http, 3, verifier)
        answers = await _requests(log_gateway, dataset, 40)
        _, first_size, first_root, _ = await _checkpoint(http, start_size + 40, verifier)
        # More than one tile's worth of leaves, for the level-1 tile: most of them
        # recorded straight into the database, the sequencer integrates them all alike.
        await _record_directly(migrated, 240)
        answers += await _requests(log_gateway, dataset, 20)
        # Every leaf written (the three of the start, 40 + 240 + 20), so that no later
        # checkpoint holds more than the tree rebuilt below.
        origin, size, root, _ = await _checkpoint(http, start_size + 300, verifier)
        assert size == start_size + 300
        assert origin == "127.0.0.1:8000/log"

        # The tiles and the public leaves, rebuilt with pymerkle.
        tree = InmemoryTree(algorithm="sha256")
        full = await http.get("/log/tile/0/000")
        rest = await http.get(f"/log/tile/0/001.p/{size - 256}")
        bundle = entries((await http.get("/log/tile/entries/000")).content)
        bundle += entries((await http.get(f"/log/tile/entries/001.p/{size - 256}")).content)
        assert full.headers["cache-control"].endswith("immutable")
        hashes = full.content + rest.content
        assert len(hashes) == 32 * size
        for i, leaf in enumerate(bundle):
            tree.append_entry(leaf)
            assert hashes[32 * i : 32 * (i + 1)] == _h(b"\x00", leaf)
            public = json.loads(leaf)
            assert set(public) == {"v", "type", "ts", "envelope_hash", "policy_version"}
        assert tree.get_root(size) == root
        level1 = (await http.get("/log/tile/1/000.p/1")).content
        assert level1 == tree.get_root(256)

        # Consistency between the checkpoints, as RFC 9162 says.
        proof = (await http.get(f"/log/proof/consistency?first={first_size}&second={size}")).json()
        hashes_ = [_from_b64url(h) for h in proof["hashes"]]
        assert consistent(first_size, size, first_root, root, hashes_)
        assert not consistent(first_size, size, first_root, _h(b"x"), hashes_)
        assert start_size == 3
        assert tree.get_root(start_size) == start_root

        # Each answer's receipt: signed by the receipt key, and then provably included.
        jwks = (await http.get("/.well-known/jwks.json")).json()
        receipt_keys = {k["kid"]: k for k in jwks["keys"] if k["purpose"] == "receipts"}
        for answer in answers[::37]:
            receipt = answer["extensions"]["receipt"]
            key = receipt_keys[receipt["kid"]]
            public = Ed25519PublicKey.from_public_bytes(_from_b64url(key["x"]))
            payload = {k: v for k, v in receipt.items() if k not in {"kid", "signature"}}
            public.verify(_from_b64url(receipt["signature"]), rfc8785.dumps(payload))
            leaf = _from_b64url(receipt["leafHash"])
            offline = (await http.get(f"/log/tlog-proof?hash={receipt['leafHash']}")).text
            lines = offline.split("\n")
            assert lines[0] == "c2sp.org/tlog-proof@v1"
            assert _h(b"\x00", base64.b64decode(lines[1].removeprefix("extra "))) == leaf
            index = int(lines[2].split()[1])
            path = [base64.b64decode(h) for h in lines[3 : lines.index("")]]
            embedded = "\n".join(lines[lines.index("") + 1 :])
            _, proof_size, proof_root = read_checkpoint(note_signed_by(embedded, verifier))
            # pymerkle builds its own proof for the same leaf: the hashes must agree.
            theirs = tree.prove_inclusion(index + 1, proof_size).serialize()["path"][1:]
            assert [p.hex() for p in path] == theirs
            assert tree.get_root(proof_size) == proof_root

    # The gateway's own remote audit agrees, level-1 tiles included.
    from gateway.log.remote import verify_remote

    report = await verify_remote(log_gateway.url, key=verifier)
    assert report.ok, report.problem
    assert "the hash tiles of levels 1 to 1" in report.checked


@pytest.mark.own_database
async def test_audit_verify_passes_then_names_each_kind_of_tampering(
    log_gateway, dataset, migrated, tmp_path
) -> None:
    await _requests(log_gateway, dataset, 40)
    async with log_gateway.client(auth=None) as http:
        verifier = (await http.get("/log/key")).text.splitlines()[0]
        await _checkpoint(http, 40, verifier)
    log_gateway.server.stop()

    import sqlalchemy as sa

    from gateway.storage import create_engine

    def command_line() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", "audit", "verify", "--key", verifier],
            env={
                "PATH": "/usr/bin:/bin",
                "GATEWAY_DATABASE_URL": migrated,
                "GATEWAY_ORIGIN": "http://127.0.0.1:8000",
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    from gateway.records import verify_database
    from keys import parse_verifier_key

    async def audit():
        """What `gateway audit verify --key` checks, in this process."""
        return await verify_database(
            engine, [parse_verifier_key(verifier)], origin="127.0.0.1:8000/log"
        )

    ok = command_line()
    assert ok.returncode == 0, ok.stderr
    assert "the log verifies" in ok.stdout

    engine = create_engine(migrated)

    async def sql(*statements: str, **params: object) -> None:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(sa.text(statement), params)

    async def snapshot() -> dict:
        async with engine.connect() as conn:
            leaves = (await conn.execute(sa.text("SELECT * FROM log_leaves"))).mappings().all()
            envelope = await conn.scalar(sa.text(f"SELECT envelope FROM events WHERE {FIFTH}"))
        return {"leaves": [dict(r) for r in leaves], "envelope": envelope}

    saved = await snapshot()

    async def restore() -> None:
        await sql("DELETE FROM log_leaves")
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO log_leaves (idx, event_id, leaf, leaf_hash) "
                    "VALUES (:idx, :event_id, :leaf, :leaf_hash)"
                ),
                saved["leaves"],
            )

    try:
        # Edited: an envelope changed after it was recorded.
        envelope = (
            saved["envelope"]
            if isinstance(saved["envelope"], dict)
            else json.loads(saved["envelope"])
        )
        forged = json.dumps({**envelope, "outcome": "no_data"})
        await sql(f"UPDATE events SET envelope = :e WHERE {FIFTH}", e=forged)
        # The command exits 1 naming the first bad index; the other cases are checked
        # by the same function in this process.
        edited = command_line()
        assert edited.returncode == 1, edited.stdout
        assert "first bad index: 5)" in edited.stderr
        assert "envelope was changed" in edited.stderr
        await _fails(audit, 5, "envelope was changed")
        await sql(f"UPDATE events SET envelope = :e WHERE {FIFTH}", e=json.dumps(envelope))
        assert (await audit()).ok

        # Deleted: a leaf removed.
        await sql("DELETE FROM log_leaves WHERE idx = 7")
        await _fails(audit, 7, "leaf 7 is missing")
        await restore()

        # Reordered: two leaves swapped.
        await sql(
            "UPDATE log_leaves SET idx = -1 WHERE idx = 3",
            "UPDATE log_leaves SET idx = 3 WHERE idx = 4",
            "UPDATE log_leaves SET idx = 4 WHERE idx = -1",
        )
        await _fails(audit, 3)
        await restore()

        # Inserted: a leaf pushed in at 10, the later ones moved up.
        await sql(
            "UPDATE log_leaves SET idx = idx + 1000 WHERE idx >= 10",
            "UPDATE log_leaves SET idx = idx - 999 WHERE idx >= 1000",
            "INSERT INTO events (id, type, ts, request_id, client_id, procedure, outcome, "
            "policy_version, envelope, envelope_hash) SELECT 'z' || substr(id, 2), type, ts, "
            "request_id, client_id, procedure, outcome, policy_version, envelope, envelope_hash "
            "FROM events WHERE id = (SELECT event_id FROM log_leaves WHERE idx = 21)",
            "INSERT INTO log_leaves (idx, event_id, leaf, leaf_hash) "
            "SELECT 10, 'z' || substr(event_id, 2), leaf, leaf_hash FROM log_leaves WHERE idx = 21",
        )
        await _fails(audit, 10)
        await restore()
        await sql("DELETE FROM events WHERE id LIKE 'z%'")
        assert (await audit()).ok

        await _more_tampering(engine, sql, audit)
    finally:
        await engine.dispose()


async def _fails(audit, at: int | None, words: str = "") -> None:
    """The audit fails, naming the first bad index `at` and saying `words`."""
    report = await audit()
    assert not report.ok, report.checked
    if at is not None:
        assert report.bad_index == at, report.problem
    assert words in report.problem


def _event_at(index: int) -> str:
    return f"(SELECT event_id FROM log_leaves WHERE idx = {index})"


async def _more_tampering(engine, sql, audit) -> None:
    """Rows the leaves do not cover directly: personal parts, columns, nodes, checkpoints."""
    import sqlalchemy as sa

    async with engine.connect() as conn:
        event_id = await conn.scalar(sa.text(_event_at(6)[1:-1]))
        sealed = await conn.scalar(
            sa.text("SELECT sealed FROM event_personal WHERE event_id = :e"), {"e": event_id}
        )
        wrapped, key = (
            await conn.execute(
                sa.text(
                    "SELECT s.wrapped_key, k.key FROM event_subjects s "
                    "JOIN subject_keys k ON k.subject = s.subject WHERE s.event_id = :e"
                ),
                {"e": event_id},
            )
        ).first()
        other = await conn.scalar(
            sa.text(
                "SELECT sealed FROM event_personal WHERE sealed IS NOT NULL AND event_id <> :e"
            ),
            {"e": event_id},
        )
        client = await conn.scalar(
            sa.text(f"SELECT client_id FROM events WHERE id = {_event_at(8)}")
        )
        node = await conn.scalar(sa.text("SELECT hash FROM log_nodes WHERE level = 1 AND idx = 2"))
        checkpoints = (
            (await conn.execute(sa.text("SELECT * FROM log_checkpoints"))).mappings().all()
        )
    fails = functools.partial(_fails, audit)
    set_sealed = f"UPDATE event_personal SET sealed = :p WHERE event_id = {_event_at(6)}"

    # Whose data it was: another person's id put into the personal part, sealed again
    # by someone holding the person's key.
    data_key = unwrap_key(bytes(key), bytes(wrapped), event_id)
    personal = json.loads(open_sealed(data_key, bytes(sealed), event_id))
    forged = rfc8785.dumps({**personal, "subjects": ["001099000001"]})
    nonce = os.urandom(12)
    resealed = nonce + AESGCM(data_key).encrypt(nonce, forged, event_id.encode())
    await sql(set_sealed, p=resealed)
    await fails(6, "personal part was changed")
    # A sealed part altered, or another record's moved onto it: it opens no more.
    await sql(set_sealed, p=bytes(sealed)[:-1] + bytes([sealed[-1] ^ 1]))
    await fails(6, "does not open with the key of a person it names")
    await sql(set_sealed, p=bytes(other))
    await fails(6, "does not open with the key of a person it names")
    await sql(set_sealed, p=bytes(sealed))

    # A column that search and replay read, edited: the client.
    await sql(f"UPDATE events SET client_id = 'VN/GOV/X/forged' WHERE id = {_event_at(8)}")
    await fails(8, "its client differs")
    await sql(f"UPDATE events SET client_id = :c WHERE id = {_event_at(8)}", c=client)

    # A tree node that proofs and tiles are made of.
    await sql("UPDATE log_nodes SET hash = :h WHERE level = 1 AND idx = 2", h=b"\x00" * 32)
    await fails(4, "level 1, index 2 does not hash its children")
    await sql("UPDATE log_nodes SET hash = :h WHERE level = 1 AND idx = 2", h=bytes(node))

    # Signed checkpoints removed, so that no signature covers the leaves any more.
    await sql("DELETE FROM log_checkpoints WHERE size > 0")
    await fails(0, "leaves no checkpoint covers")
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO log_checkpoints (size, root, note, signed_at) "
                "VALUES (:size, :root, :note, :signed_at)"
            ),
            [dict(c) for c in checkpoints if c["size"] > 0],
        )

    # An event recorded but kept out of the log.
    await sql(
        "INSERT INTO events (id, type, ts, request_id, client_id, procedure, outcome, "
        "policy_version, envelope, envelope_hash) SELECT 'y' || substr(id, 2), type, ts, "
        "request_id, client_id, procedure, outcome, policy_version, envelope, envelope_hash "
        f"FROM events WHERE id = {_event_at(21)}"
    )
    await fails(None, "1 recorded events are neither in the log nor queued")
    await sql("DELETE FROM events WHERE id LIKE 'y%'")
    assert (await audit()).ok


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def _roll_back(database_url: str, size: int) -> None:
    """What restoring a backup taken at `size` leaves would do to the log's tables."""
    import sqlalchemy as sa

    from gateway.storage import create_engine

    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            nodes = (await conn.execute(sa.text("SELECT level, idx FROM log_nodes"))).all()
            for level, idx in nodes:
                if (idx + 1) << level > size:
                    await conn.execute(
                        sa.text("DELETE FROM log_nodes WHERE level = :l AND idx = :i"),
                        {"l": level, "i": idx},
                    )
            await conn.execute(sa.text("DELETE FROM log_leaves WHERE idx >= :s"), {"s": size})
            await conn.execute(sa.text("DELETE FROM log_checkpoints WHERE size > :s"), {"s": size})
            await conn.execute(
                sa.text(
                    "UPDATE log_state SET size = :s, "
                    "root = (SELECT root FROM log_checkpoints WHERE size = :s)"
                ),
                {"s": size},
            )
    finally:
        await engine.dispose()


@pytest.mark.own_database
async def test_audit_verify_url_checks_the_public_log_and_catches_a_rollback(
    log_gateway, gateway_factory, dataset, tmp_path
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from keys import verifier_key

    await _requests(log_gateway, dataset, 10)
    async with log_gateway.client(auth=None) as http:
        verifier = (await http.get("/log/key")).text.splitlines()[0]
        _, first, _, first_note = await _checkpoint(http, 10, verifier)
        await _requests(log_gateway, dataset, 10)
        _, second, _, second_note = await _checkpoint(http, first + 10, verifier)
    (tmp_path / "first.txt").write_text(first_note)
    (tmp_path / "second.txt").write_text(second_note)
    url = log_gateway.url

    ok = _cli(
        "audit", "verify", "--url", url, "--key", verifier, "--previous", f"{tmp_path}/first.txt"
    )
    assert ok.returncode == 0, ok.stderr
    assert f"checked what {url} publishes (not its database)" in ok.stdout
    assert f"consistency with the previous checkpoint ({first})" in ok.stdout
    assert "the log verifies" in ok.stdout
    published = _cli("audit", "verify", "--url", url)
    assert published.returncode == 0, published.stderr
    assert "with the checkpoint keys the gateway publishes" in published.stdout

    from gateway.log.remote import verify_remote

    stranger = verifier_key("127.0.0.1:8000/log", Ed25519PrivateKey.generate().public_key())
    forged = await verify_remote(url, key=stranger)
    assert "the checkpoint does not verify" in forged.problem
    nothing = await verify_remote("http://127.0.0.1:9")
    assert "could not read" in nothing.problem
    elsewhere = await verify_remote(f"{url}/graphql")
    assert "answered HTTP" in elsewhere.problem

    # The operator restores an older backup: the log now says less than it once signed.
    log_gateway.server.stop()
    await _roll_back(log_gateway.settings.database_url.get_secret_value(), first)
    restored = gateway_factory(merge_delay=0.2)
    rolled = _cli(
        "audit",
        "verify",
        "--url",
        restored.url,
        "--key",
        verifier,
        "--previous",
        f"{tmp_path}/second.txt",
    )
    assert rolled.returncode == 1
    assert f"the log shrank: the previous checkpoint has {second} leaves" in rolled.stderr


async def test_hostile_log_requests_get_clean_errors(log_gateway, dataset) -> None:
    await _requests(log_gateway, dataset, 3)
    huge = "9" * 40
    async with log_gateway.client(auth=None) as http:
        for path in (
            "/log/tile/0/" + "x999/" * 500 + "999",
            "/log/tile/0/x036/x028/x797/x018/x963/969",
            "/log/tile/0/x000/000",
            "/log/tile/9/000",
            "/log/tile/entries/999",
        ):
            response = await http.get(path)
            assert response.status_code == 404, path
            assert response.json()["code"] == "NOT_FOUND"
        for path in (
            f"/log/proof/inclusion?index={huge}&size=1",
            f"/log/proof/inclusion?index=0&size={huge}",
            "/log/proof/inclusion?index=-1&size=1",
            "/log/proof/inclusion?hash=not-base64!&size=1",
            f"/log/proof/consistency?first=1&second={huge}",
            "/log/proof/consistency?first=0&second=1",
            "/log/tlog-proof?hash=AAAA",
            f"/log/tlog-proof?index={huge}",
        ):
            response = await http.get(path)
            assert response.status_code in {400, 404}, (path, response.text)
            assert response.json()["code"] in {"INVALID_ARGUMENT", "NOT_FOUND"}, path


# -- from an answer's receipt to a proof, as the README says ------------------------------


async def _offline_proof(http, query: str) -> str:
    """`GET /log/tlog-proof?<query>` (as written, not re-encoded), once the leaf is in."""
    for _ in range(100):
        response = await http.get(f"/log/tlog-proof?{query}")
        if response.status_code != 404:
            assert response.status_code == 200, (query, response.text)
            return response.text
        await asyncio.sleep(0.1)
    raise AssertionError(f"no proof for {query}")


async def test_the_readme_path_from_a_receipt_to_verify_proof(
    log_gateway, dataset, tmp_path
) -> None:
    """`extensions.receipt.leafHash`, then `GET /log/tlog-proof?hash=`, then verify-proof."""
    [answer] = await _requests(log_gateway, dataset, 1)
    receipt = answer["extensions"]["receipt"]
    async with log_gateway.client(auth=None) as http:
        key = (await http.get("/log/key")).text.splitlines()[0]
        # The leaf hash pasted into the URL as it stands in the receipt.
        proof = await _offline_proof(http, f"hash={receipt['leafHash']}")
        index = int(proof.split("\n")[2].removeprefix("index "))
        assert await _offline_proof(http, f"index={index}") == proof
    # The public leaf rides in the `extra` line: the public log's leaf, nothing personal.
    extra = proof.split("\n")[1]
    assert extra.startswith("extra ")
    leaf = base64.b64decode(extra.removeprefix("extra "))
    assert _h(b"\x00", leaf) == _from_b64url(receipt["leafHash"])
    assert set(json.loads(leaf)) == {"v", "type", "ts", "envelope_hash", "policy_version"}
    for person in dataset.sample.citizens:
        assert person not in proof
    saved = tmp_path / "access.tlog-proof"
    saved.write_text(proof)

    checked = _cli("audit", "verify-proof", str(saved), "--key", key)
    assert checked.returncode == 0, checked.stderr
    assert f"leaf {index} is in the checkpoint of 127.0.0.1:8000/log" in checked.stdout
    assert "access record of" in checked.stdout
    assert "the proof verifies" in checked.stdout
    # And with the receipt's leaf hash given, which the leaf in the proof must have.
    given = _cli(
        "audit", "verify-proof", str(saved), "--key", key, f"--leaf-hash={receipt['leafHash']}"
    )
    assert given.returncode == 0, given.stderr
    assert "the leaf in the proof has the hash given" in given.stdout


async def _leaf_with_plus_and_slash(gateway, dataset) -> tuple[dict, bytes]:
    """A receipt whose leaf hash has `+` and `/` in standard base64."""
    for _ in range(20):
        for answer in await _requests(gateway, dataset, 8):
            receipt = answer["extensions"]["receipt"]
            digest = _from_b64url(receipt["leafHash"])
            standard = base64.b64encode(digest).decode()
            if "+" in standard and "/" in standard:
                return receipt, digest
    raise AssertionError("160 leaf hashes, none with both `+` and `/`")


async def test_a_leaf_hash_with_plus_and_slash_works_through_the_routes_both_ways(
    log_gateway, dataset
) -> None:
    receipt, digest = await _leaf_with_plus_and_slash(log_gateway, dataset)
    # Receipts carry base64url without padding, as the gateway's other base64url.
    assert receipt["v"] == 2
    assert receipt["leafHash"] == _b64url(digest)
    assert "-" in receipt["leafHash"]
    assert "_" in receipt["leafHash"]
    standard = base64.b64encode(digest).decode()
    forms = {
        "base64url": _b64url(digest),
        "base64url, padded": base64.urlsafe_b64encode(digest).decode(),
        "base64, escaped": standard.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D"),
        # Pasted as it is: the query string turns `+` into a space.
        "base64, pasted": standard,
        "base64, unpadded": standard.rstrip("="),
    }
    async with log_gateway.client(auth=None) as http:
        proofs = {form: await _offline_proof(http, f"hash={v}") for form, v in forms.items()}
        # Every form finds the same leaf (its `extra` and `index` lines); the hashes may
        # differ, as the log may have grown between two proofs.
        assert len({"\n".join(p.split("\n")[:3]) for p in proofs.values()}) == 1, proofs
        size = int((await http.get("/log/checkpoint")).text.split("\n")[1])
        for form, value in forms.items():
            response = await http.get(f"/log/proof/inclusion?hash={value}&size={size}")
            assert response.status_code == 200, (form, response.text)
            # JSON carries base64url, as receipts do.
            assert all("+" not in h and "/" not in h for h in response.json()["hashes"])


async def test_a_receipt_issued_before_base64url_still_verifies(
    log_gateway, dataset, tmp_path
) -> None:
    """A version 1 receipt: leaf hash and signature in standard base64."""
    from gateway.log import verify_receipt
    from keys import KeyRing

    receipt, digest = await _leaf_with_plus_and_slash(log_gateway, dataset)
    ring = KeyRing.load(log_gateway.settings.keys_dir)
    signing = ring.signing("receipts")
    payload = {
        "v": 1,
        "origin": receipt["origin"],
        "leafHash": base64.b64encode(digest).decode(),
        "timestamp": receipt["timestamp"],
        "maxMergeDelaySeconds": receipt["maxMergeDelaySeconds"],
    }
    signature = base64.b64encode(signing.sign(rfc8785.dumps(payload))).decode()
    old = {**payload, "kid": signing.kid, "signature": signature}
    async with log_gateway.client(auth=None) as http:
        jwks = (await http.get("/.well-known/jwks.json")).json()
        key = next(k for k in jwks["keys"] if k["kid"] == old["kid"])
        public = Ed25519PublicKey.from_public_bytes(_from_b64url(key["x"]))
        assert verify_receipt(old, public)
        assert verify_receipt(receipt, public)
        escaped = old["leafHash"].replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
        proof = await _offline_proof(http, f"hash={escaped}")
        # The same leaf (the log may have grown between the two asks: compare the index).
        plain = await _offline_proof(http, f"hash={old['leafHash']}")
        index = [line for line in proof.splitlines() if line.startswith("index ")]
        assert index
        assert [line for line in plain.splitlines() if line.startswith("index ")] == index
        verifier = (await http.get("/log/key")).text.splitlines()[0]
    saved = tmp_path / "old.tlog-proof"
    saved.write_text(proof)
    checked = _cli(
        "audit", "verify-proof", str(saved), "--key", verifier, f"--leaf-hash={old['leafHash']}"
    )
    assert checked.returncode == 0, checked.stderr
    assert "the leaf in the proof has the hash given" in checked.stdout
