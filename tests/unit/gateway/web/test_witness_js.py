"""The receipt page's witness check (static/tlog.js) run with Node, against cosignatures
made by the offline core (`lienthong_client.log.cosign`): the browser accepts what the
Python policy accepts and refuses what it refuses."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from lienthong_client.log import cosign, cosigner_key

from gateway.log import CheckpointError, read_policy, sign_checkpoint

STATIC = Path(__file__).parents[4] / "gateway" / "web" / "static"
ORIGIN = "gateway.example.gov.vn/log"

RUNNER = """
import { readFileSync } from "node:fs";
import { checkCosignatures, cosignerNames, readPolicy } from "./tlog.js";

const input = JSON.parse(readFileSync(process.argv[2], "utf8"));
const out = [];
for (const c of input.cases) {
  try {
    const policy = readPolicy(c.policy);
    out.push({ ok: true, signed: checkCosignatures(c.note, policy),
               said: cosignerNames(c.note, input.origin) });
  } catch (e) {
    out.push({ ok: false, why: e.message });
  }
}
console.log(JSON.stringify(out));
"""


def _run(tmp_path: Path, cases: list[dict[str, str]]) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed for the pages' verifier tests")
    folder = tmp_path / "static"
    folder.mkdir()
    shutil.copy(STATIC / "tlog.js", folder / "tlog.js")
    shutil.copytree(STATIC / "vendor" / "noble", folder / "vendor" / "noble")
    (folder / "package.json").write_text('{"type": "module"}')
    (folder / "run.js").write_text(RUNNER)
    data = tmp_path / "input.json"
    data.write_text(json.dumps({"origin": ORIGIN, "cases": cases}))
    done = subprocess.run(
        [node, str(folder / "run.js"), str(data)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


def test_the_browser_judges_cosignatures_as_the_policy_does(tmp_path: Path) -> None:
    log, w1, w2 = (Ed25519PrivateKey.generate() for _ in range(3))
    one = cosigner_key("witness.test/w1", w1.public_key())
    two = cosigner_key("witness.test/w2", w2.public_key())
    note = sign_checkpoint(ORIGIN, 42, b"\x07" * 32, log).note
    text = note[: note.index("\n\n") + 1]
    by_one = note + cosign(text, one.name, w1, 1_765_000_000)
    by_both = by_one + cosign(text, two.name, w2, 1_765_000_001)
    forged = by_one[:-10] + ("A" if by_one[-10] != "A" else "B") + by_one[-9:]
    both = f"witness {one.text}\nwitness {two.text}\n"
    cases = [
        {"note": by_one, "policy": f"witness {one.text}\nquorum 1\n"},
        {"note": by_both, "policy": both},
        {"note": by_one, "policy": both},  # 1 of the 2 needed
        {"note": by_both, "policy": both + "quorum 1\n"},
        {"note": note, "policy": f"witness {one.text}\n"},  # made before witnessing
        {"note": forged, "policy": f"witness {one.text}\n"},
        {"note": by_one, "policy": "witness not-a-key\n"},
        {"note": by_one, "policy": f"witness {one.text}\nquorum 2\n"},
        {"note": by_one, "policy": f"witness {one.text}\nwitness {one.text}\n"},
        {
            "note": by_one,
            "policy": f"witness {one.text.replace(one.key_id.hex(), one.key_id.hex().upper())}\n",
        },
    ]
    results = _run(tmp_path, cases)
    for case, result in zip(cases, results, strict=True):
        try:
            policy = read_policy(case["policy"])
            expected = sorted(c.witness for c in policy.check(case["note"]))
        except CheckpointError:
            expected = None
        if expected is None:
            assert not result["ok"], (case, result)
        else:
            assert result["ok"], (case, result)
            assert sorted(result["signed"]) == expected
    assert results[1]["said"] == ["witness.test/w1", "witness.test/w2"]
    assert [r.get("why") for r in results] == [
        None,
        None,
        "witnesses",
        None,
        "witnesses",
        "witnesses",
        "policy",
        "policy",
        "policy",
        None,
    ]
