"""The auditor's in-page verifier (static/kiem-tra.js, static/tlog.js) run with Node.

An export is built here in the gateway's formats (events' envelopes, RFC 8785 public
leaves, an RFC 6962 tree, a C2SP signed checkpoint), then changed one thing at a time:
the browser's verifier must give the verdict `gateway audit verify-export` gives
(`verify_export`), on the same line. Its inclusion proofs are also checked against the
RFC 6962 vectors of transparency-dev/merkle.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.log import (
    b64url,
    checkpoint_text,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    public_leaf,
    verify_export,
)
from gateway.records import Event
from keys import NoteVerifier, note_key_id, sign_note, verifier_key

STATIC = Path(__file__).parents[4] / "gateway" / "web" / "static"
VECTORS = Path("/work/shared/testdata/merkle/inclusion")
ORIGIN = "gateway.example.gov.vn/log"
POLICY = "ab" * 32
T0 = datetime.datetime(2026, 3, 2, 1, 2, 3, 456789, tzinfo=datetime.UTC)
TYPES = ("access", "access", "auditor_search", "consent", "access")

RUNNER = """
import { readFileSync } from "node:fs";
import { verifyExport } from "./kiem-tra.js";
import { b64any, equal, rootFrom } from "./tlog.js";

const input = JSON.parse(readFileSync(process.argv[2], "utf8"));
const out = { exports: [], vectors: [] };
for (const text of input.exports) {
  try {
    const r = verifyExport(text, input.keys, input.origin);
    out.exports.push({ ok: true, proven: r.proven, pending: r.pending, size: Number(r.size) });
  } catch (e) {
    out.exports.push({ ok: false, why: e.message, line: e.line ?? null, id: e.id ?? null });
  }
}
for (const v of input.vectors) {
  try {
    const proof = (v.proof || []).map(b64any);
    const [leaf, want] = [b64any(v.leafHash), b64any(v.root)];
    if ([leaf, want, ...proof].some((h) => h.length !== 32)) throw new Error("not a hash");
    const root = rootFrom(BigInt(v.leafIdx), BigInt(v.treeSize), leaf, proof);
    out.vectors.push(equal(root, want));
  } catch {
    out.vectors.push(false);
  }
}
console.log(JSON.stringify(out));
"""

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")


def _mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 MTH over leaf hashes, written out recursively."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return node_hash(_mth(hashes[:k]), _mth(hashes[k:]))


def _item(n: int, kind: str) -> dict[str, Any]:
    event = Event(
        type=kind,
        request_id=f"req-{n}",
        outcome="served",
        policy_version=POLICY,
        envelope={"organisation": "Công an xã Kiểm Thử", "fieldsServed": n, "note": "ü\u2028"},
        personal={"officer": f"officer-{n}"},
        client_id="VN/GOV/TEST/kiem-tra",
        procedure="1.004222",
        ts=T0 + datetime.timedelta(seconds=n),
    )
    rows = event.rows().event
    return {
        "id": rows["id"],
        "type": rows["type"],
        "time": rows["ts"].isoformat(),
        "leafIndex": n,
        "clientId": rows["client_id"],
        "organisation": rows["organisation"],
        "procedure": rows["procedure"],
        "outcome": rows["outcome"],
        "hiddenUntil": None,
        "envelopeHash": rows["envelope_hash"],
        "envelope": rows["envelope"],
    }


class _Export:
    """A log of five records, its signed checkpoint, and its export's items."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        records, leaves = [], []
        for n, kind in enumerate(TYPES):
            item = _item(n, kind)
            leaf = public_leaf(
                type=kind,
                ts=T0 + datetime.timedelta(seconds=n),
                envelope_hash=item["envelopeHash"],
                policy_version=POLICY,
            )
            item["leaf"] = leaf.decode()
            leaves.append(leaf)
            records.append(item)
        hashes = [leaf_hash(leaf) for leaf in leaves]
        size = len(leaves)
        self.note = sign_note(checkpoint_text(ORIGIN, size, _mth(hashes)), ORIGIN, self.key)
        for index, item in enumerate(records):
            proof = [_mth(hashes[lo:hi]) for lo, hi in inclusion_ranges(index, size)]
            item.update(kind="record", proof=[b64url(h) for h in proof])
        pending = _item(size, "access")
        pending.update(kind="record", leafIndex=None, leaf=None, proof=None)
        self.items = [
            {"kind": "checkpoint", "origin": ORIGIN, "size": size, "note": self.note},
            *records,
            pending,
            {"kind": "end", "records": size + 1, "proven": size, "pending": 1},
        ]
        self.keys = verifier_key(ORIGIN, self.key.public_key()) + "\n"
        self.verifiers = [
            NoteVerifier(ORIGIN, note_key_id(ORIGIN, self.key.public_key()), self.key.public_key())
        ]

    def text(self, edit: Callable[[list[dict[str, Any]]], None] | None = None) -> str:
        items = orjson.loads(orjson.dumps(self.items))
        if edit is not None:
            edit(items)
        return "".join(orjson.dumps(i).decode() + "\n" for i in items)


def _node(tmp_path: Path, keys: str, exports: list[str], vectors: list[Any]) -> dict[str, Any]:
    folder = tmp_path / "static"
    folder.mkdir()
    for name in ("tlog.js", "kiem-tra.js"):
        shutil.copy(STATIC / name, folder / name)
    shutil.copytree(STATIC / "vendor" / "noble", folder / "vendor" / "noble")
    (folder / "package.json").write_text('{"type": "module"}')
    (folder / "run.js").write_text(RUNNER)
    data = tmp_path / "input.json"
    data.write_text(
        json.dumps({"keys": keys, "origin": ORIGIN, "exports": exports, "vectors": vectors})
    )
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, str(folder / "run.js"), str(data)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def _set(path: tuple[Any, ...], value: Any) -> Callable[[list[dict[str, Any]]], None]:
    def edit(items: list[dict[str, Any]]) -> None:
        target: Any = items
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return edit


def _tamper_envelope(items: list[dict[str, Any]]) -> None:
    items[2]["envelope"]["requestId"] = "req-X"


def _bad_proof(items: list[dict[str, Any]]) -> None:
    items[1]["proof"][0] = b64url(b"\x07" * 32)


def _standard_base64(items: list[dict[str, Any]]) -> None:
    for item in items[1:6]:
        item["proof"] = [
            base64.b64encode(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4))).decode()
            for h in item["proof"]
        ]


def _other_key(items: list[dict[str, Any]]) -> None:
    other = Ed25519PrivateKey.generate()
    text = items[0]["note"].split("\n\n")[0] + "\n"
    items[0]["note"] = sign_note(text, ORIGIN, other)


CASES: dict[str, tuple[Callable[[list[dict[str, Any]]], None] | None, str | None, int | None]] = {
    # name: (edit, the verifier's reason, the line it names)
    "valid": (None, None, None),
    "older exports' standard base64": (_standard_base64, None, None),
    "an envelope changed": (_tamper_envelope, "envelope", 3),
    "an envelope hash changed": (_set((4, "envelopeHash"), "00" * 32), "envelope", 5),
    "a leaf of another type": (_set((4, "type"), "access"), "leaf", 5),
    "a proof hash changed": (_bad_proof, "inclusion", 2),
    "a leaf index moved": (_set((3, "leafIndex"), 1), "inclusion", 4),
    "a pending record with a proof": (_set((6, "proof"), []), "proof", 7),
    "a summary that miscounts": (_set((7, "proven"), 4), "summary", 8),
    "a checkpoint of another key": (_other_key, "signature", 1),
    "a checkpoint line of another size": (_set((0, "size"), 9), "checkpoint", 1),
    "a first line that is a record": (_set((0, "kind"), "record"), "first", 1),
}


def _lines(text: str) -> list[bytes]:
    return text.encode().splitlines()


def test_the_page_gives_the_verdict_of_verify_export_on_the_same_line(tmp_path: Path) -> None:
    export = _Export()
    texts = {name: export.text(edit) for name, (edit, _why, _line) in CASES.items()}
    full = texts["valid"]
    texts["cut short"] = full.rsplit("\n", 2)[0] + "\n"
    texts["more after the summary"] = full + full.split("\n")[1] + "\n"
    texts["a line that is not JSON"] = full.replace(full.split("\n")[2], "{not json", 1)
    texts["CRLF line ends"] = full.replace("\n", "\r\n")
    texts["empty"] = ""
    expected = {name: (why, line) for name, (_edit, why, line) in CASES.items()}
    expected |= {
        "cut short": ("cut", 8),
        "more after the summary": ("after", 9),
        "a line that is not JSON": ("format", 3),
        "CRLF line ends": (None, None),
        "empty": ("empty", 1),
    }
    found = _node(tmp_path, export.keys, list(texts.values()), [])
    for (name, text), verdict in zip(texts.items(), found["exports"], strict=True):
        why, line = expected[name]
        report = verify_export(_lines(text), export.verifiers)
        assert verdict["ok"] is report.ok, (name, verdict, report.problem)
        if why is None:
            assert (verdict["proven"], verdict["pending"], verdict["size"]) == (5, 1, 5), name
            continue
        assert (verdict["why"], verdict["line"]) == (why, line), (name, verdict)
        assert verdict["line"] == report.bad_line, (name, report.problem)
    tampered = found["exports"][list(texts).index("an envelope changed")]
    assert tampered["id"] == export.items[2]["id"]


def test_the_page_s_inclusion_proofs_agree_with_the_rfc6962_vectors(tmp_path: Path) -> None:
    if not VECTORS.is_dir():
        pytest.skip(f"{VECTORS} is missing")
    vectors = [json.loads(p.read_text()) for p in sorted(VECTORS.rglob("*.json"))]
    assert len(vectors) > 20
    found = _node(tmp_path, "", [], vectors)
    for vector, verified in zip(vectors, found["vectors"], strict=True):
        assert verified is not vector["wantErr"], vector.get("desc")
