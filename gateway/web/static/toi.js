// The receipt page: the browser verifies a receipt (c2sp.org/tlog-proof) itself.
//
// 1. the checkpoint note is signed by a key the log publishes (/log/key: C2SP note
//    verifier keys `<name>+<hex key id>+<base64(0x01 || Ed25519 public key)>`);
// 2. the leaf in the proof's `extra` line, hashed as RFC 6962 leaves are, is included
//    at `index` in the tree of the checkpoint's size and root (RFC 6962/9162 proof).
// The server gives no verdict: this file computes it. Texts come from data- attributes
// of the page, which the translation catalogue filled.
import * as ed from "./vendor/noble/ed25519/index.js";
import { sha256, sha512 } from "./vendor/noble/hashes/sha2.js";

ed.etc.sha512Sync = (...m) => sha512(ed.etc.concatBytes(...m));

const enc = new TextEncoder();

class Invalid extends Error {}

function b64(text) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new Invalid("format");
  }
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

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

function readKeys(text) {
  return text
    .split("\n")
    .filter((line) => line.trim())
    .map((line) => {
      // `<name>+<hex id>+<base64>`: the base64 may hold `+` too.
      const [name, id, ...rest] = line.trim().split("+");
      const key = rest.join("+");
      const raw = b64(key);
      if (raw.length !== 33 || raw[0] !== 1) return null;
      return { name, id, pub: raw.slice(1) };
    })
    .filter(Boolean);
}

function keyId(name, pub) {
  return sha256(concat(enc.encode(name + "\n"), new Uint8Array([1]), pub)).slice(0, 4);
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// A C2SP signed note whose signature by a known key verifies; its text, else Invalid.
function openNote(note, keys) {
  const split = note.lastIndexOf("\n\n");
  if (split < 0 || !note.endsWith("\n")) throw new Invalid("signature");
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split("\n");
  let verified = false;
  for (const line of lines) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m) throw new Invalid("signature");
    const sig = b64(m[2]);
    for (const key of keys) {
      if (key.name !== m[1] || sig.length !== 68) continue;
      const id = keyId(key.name, key.pub);
      if (hex(id) !== key.id || !equal(id, sig.slice(0, 4))) continue;
      if (!ed.verify(sig.slice(4), enc.encode(text), key.pub)) throw new Invalid("signature");
      verified = true;
    }
  }
  if (!verified) throw new Invalid("signature");
  return text;
}

const leafHash = (leaf) => sha256(concat(new Uint8Array([0]), leaf));
const nodeHash = (l, r) => sha256(concat(new Uint8Array([1]), l, r));

// RFC 9162 section 2.1.3.2: the root an inclusion proof leads to.
function rootFrom(index, size, leaf, proof) {
  if (index >= size) throw new Invalid("inclusion");
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) throw new Invalid("inclusion");
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new Invalid("inclusion");
  return r;
}

export function verifyReceipt(text, keysText, origin) {
  const proof = readProof(text);
  if (proof.extra === null) throw new Invalid("format");
  const keys = readKeys(keysText).filter((k) => !origin || k.name === origin);
  const body = openNote(proof.note, keys).split("\n");
  if (body.length < 4 || !/^(0|[1-9][0-9]{0,18})$/.test(body[1])) throw new Invalid("format");
  const size = BigInt(body[1]);
  const root = b64(body[2]);
  const computed = rootFrom(proof.index, size, leafHash(proof.extra), proof.hashes);
  if (!equal(computed, root)) throw new Invalid("inclusion");
  return { index: proof.index, size, origin: body[0] };
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

function judge(box, text, keysText) {
  try {
    const facts = verifyReceipt(text, keysText, box.dataset.origin);
    show(box, true, box.dataset.okDetail, facts);
  } catch (err) {
    if (!(err instanceof Invalid)) console.error("receipt check:", err);
    const why = {
      signature: box.dataset.whySignature,
      inclusion: box.dataset.whyInclusion,
    }[err.message];
    show(box, false, why || box.dataset.whyFormat, null);
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
    judge(box, await answer.text(), keysText);
  }
  document.getElementById("other-receipt").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (file) judge(box, await file.text(), keysText);
  });
  document.getElementById("print").addEventListener("click", () => window.print());
}

main();
