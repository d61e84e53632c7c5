// The receipt page: the browser verifies a receipt (c2sp.org/tlog-proof) itself.
//
// 1. the checkpoint note is signed by a key the log publishes (/log/key: C2SP note
//    verifier keys `<name>+<hex key id>+<base64(0x01 || Ed25519 public key)>`);
// 2. the leaf in the proof's `extra` line, hashed as RFC 6962 leaves are, is included
//    at `index` in the tree of the checkpoint's size and root (RFC 6962/9162 proof);
// 3. with a witness policy the reader loads (from a source other than the gateway),
//    the checkpoint carries at least its quorum of valid cosignatures of its witnesses
//    (c2sp.org/tlog-cosignature). Without one, the page says who cosigned by the
//    checkpoint's own word, and that this is not checked independently of the gateway.
// The server gives no verdict: this file computes it. Texts come from data- attributes
// of the page, which the translation catalogue filled.
import {
  Invalid,
  b64,
  checkCosignatures,
  cosignerNames,
  equal,
  leafHash,
  openCheckpoint,
  readKeys,
  readPolicy,
  rootFrom,
} from "./tlog.js";

function readProof(text) {
  const split = text.indexOf("\n\n");
  if (split < 0) throw new Invalid("format");
  const lines = text.slice(0, split).split("\n");
  const note = text.slice(split + 2);
  if (lines[0] !== "c2sp.org/tlog-proof@v1") throw new Invalid("format");
  let rest = lines.slice(1);
  let extra = null;
  if (rest.length && rest[0].startsWith("extra ")) extra = b64(rest.shift().slice(6));
  if (!rest.length || !/^index (0|[1-9][0-9]{0,18})$/.test(rest[0])) throw new Invalid("format");
  const index = BigInt(rest.shift().slice(6));
  return { index, hashes: rest.map(b64), note, extra };
}

export function verifyReceipt(text, keysText, origin, policy = null) {
  const proof = readProof(text);
  if (proof.extra === null) throw new Invalid("format");
  const keys = readKeys(keysText).filter((k) => !origin || k.name === origin);
  const signed = openCheckpoint(proof.note, keys);
  const computed = rootFrom(proof.index, signed.size, leafHash(proof.extra), proof.hashes);
  if (!equal(computed, signed.root)) throw new Invalid("inclusion");
  const said = cosignerNames(proof.note, signed.origin);
  const witnessed = policy ? checkCosignatures(proof.note, policy) : null;
  return { index: proof.index, size: signed.size, origin: signed.origin, said, witnessed };
}

function witnesses(box, facts, policy) {
  const out = document.getElementById("r-witnesses");
  if (!facts) {
    out.textContent = "–";
  } else if (facts.witnessed) {
    out.textContent = box.dataset.witnessesChecked
      .replace("{names}", facts.witnessed.join(", "))
      .replace("{quorum}", String(policy.quorum));
  } else if (facts.said.length) {
    out.textContent = box.dataset.witnessesUnchecked.replace("{names}", facts.said.join(", "));
  } else {
    out.textContent = box.dataset.witnessesNone;
  }
}

function show(box, valid, detail, facts) {
  const verdict = document.getElementById("verdict");
  verdict.textContent = valid ? box.dataset.valid : box.dataset.invalid;
  verdict.className = "toi-verdict " + (valid ? "toi-valid" : "toi-invalid");
  verdict.dataset.verdict = valid ? "valid" : "invalid";
  document.getElementById("verdict-detail").textContent = detail;
  document.getElementById("r-index").textContent = facts ? String(facts.index) : "–";
  document.getElementById("r-size").textContent = facts ? String(facts.size) : "–";
}

const state = { text: null, policy: null };

function judge(box, keysText) {
  if (state.text === null) return;
  try {
    const facts = verifyReceipt(state.text, keysText, box.dataset.origin, state.policy);
    show(box, true, box.dataset.okDetail, facts);
    witnesses(box, facts, state.policy);
  } catch (err) {
    if (!(err instanceof Invalid)) console.error("receipt check:", err);
    const why = {
      signature: box.dataset.whySignature,
      inclusion: box.dataset.whyInclusion,
      witnesses: box.dataset.whyWitnesses,
    }[err.message];
    show(box, false, why || box.dataset.whyFormat, null);
    witnesses(box, null, null);
  }
}

async function main() {
  if (typeof document === "undefined") return;
  const box = document.getElementById("toi-verify");
  if (!box) return;
  const keysText = await (await fetch(box.dataset.keys, { credentials: "omit" })).text();
  const answer = await fetch(box.dataset.receipt, { credentials: "same-origin" });
  if (answer.status === 409) {
    document.getElementById("verdict").textContent = box.dataset.pending;
  } else {
    state.text = await answer.text();
    judge(box, keysText);
  }
  document.getElementById("other-receipt").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (file) {
      state.text = await file.text();
      judge(box, keysText);
    }
  });
  document.getElementById("witness-policy").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    try {
      state.policy = readPolicy(await file.text());
    } catch (err) {
      state.policy = null;
      show(box, false, box.dataset.whyPolicy, null);
      witnesses(box, null, null);
      return;
    }
    judge(box, keysText);
  });
  document.getElementById("print").addEventListener("click", () => window.print());
}

main();
