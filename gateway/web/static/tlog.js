// What the pages that verify the access log share: the log's published keys, its signed
// checkpoints (C2SP signed notes), RFC 6962 leaf and node hashes, inclusion proofs
// (RFC 9162 section 2.1.3.2) and the RFC 8785 JSON an envelope's hash is taken over.
// Used by toi.js (a citizen's receipt) and kiem-tra.js (an auditor's export); every
// failure is an `Invalid` whose message says which check failed.
import * as ed from "./vendor/noble/ed25519/index.js";
import { sha256, sha512 } from "./vendor/noble/hashes/sha2.js";

ed.etc.sha512Sync = (...m) => sha512(ed.etc.concatBytes(...m));

export { sha256 };

export const enc = new TextEncoder();

export class Invalid extends Error {}

// Standard base64, padded (as C2SP texts write it).
export function b64(text) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new Invalid("format");
  }
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

// Standard base64 or base64url, padded or not (as the gateway's JSON may write it).
export function b64any(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(text)) {
    throw new Invalid("format");
  }
  const bare = text.replace(/=+$/, "").replace(/-/g, "+").replace(/_/g, "/");
  if (bare.length % 4 === 1) throw new Invalid("format");
  return b64(bare + "=".repeat((4 - (bare.length % 4)) % 4));
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// The log's verifier keys (/log/key): `<name>+<hex key id>+<base64(0x01 || Ed25519 key)>`.
export function readKeys(text) {
  return text
    .split("\n")
    .filter((line) => line.trim())
    .map((line) => {
      // `<name>+<hex id>+<base64>`: the base64 may hold `+` too.
      const [name, id, ...rest] = line.trim().split("+");
      const key = rest.join("+");
      let raw;
      try {
        raw = b64(key);
      } catch {
        return null;
      }
      if (raw.length !== 33 || raw[0] !== 1) return null;
      return { name, id, pub: raw.slice(1) };
    })
    .filter(Boolean);
}

function keyId(name, pub) {
  return sha256(concat(enc.encode(name + "\n"), new Uint8Array([1]), pub)).slice(0, 4);
}

// A C2SP signed note whose signature by a known key verifies; its text, else Invalid.
export function openNote(note, keys) {
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

// A signed checkpoint: its origin, size and root, once its signature verifies.
export function openCheckpoint(note, keys) {
  const body = openNote(note, keys).split("\n");
  if (body.length < 4 || !/^(0|[1-9][0-9]{0,18})$/.test(body[1])) throw new Invalid("format");
  return { origin: body[0], size: BigInt(body[1]), root: b64(body[2]) };
}

export const leafHash = (leaf) => sha256(concat(new Uint8Array([0]), leaf));
export const nodeHash = (l, r) => sha256(concat(new Uint8Array([1]), l, r));

// RFC 9162 section 2.1.3.2: the root an inclusion proof leads to.
export function rootFrom(index, size, leaf, proof) {
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

// RFC 8785 (JCS): object keys sorted by UTF-16 code units, numbers and strings as
// ECMAScript writes them, no whitespace.
export function canonicalJson(value) {
  if (value === null || typeof value === "boolean" || typeof value === "string") {
    return JSON.stringify(value);
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Invalid("format");
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return "[" + value.map(canonicalJson).join(",") + "]";
  if (typeof value === "object") {
    const keys = Object.keys(value).sort();
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonicalJson(value[k])).join(",") + "}";
  }
  throw new Invalid("format");
}

// Hex SHA-256 of a value's RFC 8785 JSON (an envelope's hash).
export function canonicalHash(value) {
  return hex(sha256(enc.encode(canonicalJson(value))));
}

// Witnesses' cosignatures (c2sp.org/tlog-cosignature, Ed25519): signature lines
// `— <name> base64(key id || u64 timestamp || signature)` over "cosignature/v1\ntime
// <t>\n" and the checkpoint's text; key id SHA-256(name "\n" 0x04 key)[:4].
function cosignerId(name, pub) {
  return sha256(concat(enc.encode(name + "\n"), new Uint8Array([4]), pub)).slice(0, 4);
}

// A witness policy file: `witness <name>+<hex id>+<base64(0x04 || key)>` lines and a
// `quorum <k>` line (every witness when absent); Invalid("policy") if it is not one.
export function readPolicy(text) {
  const witnesses = [];
  let quorum = null;
  for (const raw of text.split("\n")) {
    const line = raw.split("#")[0].trim();
    if (!line) continue;
    const [word, value] = [line.split(" ")[0], line.slice(line.indexOf(" ") + 1).trim()];
    if (word === "witness" && value && value !== word) {
      const [name, id, ...rest] = value.split("+");
      let raw64;
      try {
        raw64 = b64(rest.join("+"));
      } catch {
        throw new Invalid("policy");
      }
      if (raw64.length !== 33 || raw64[0] !== 4) throw new Invalid("policy");
      const pub = raw64.slice(1);
      if (hex(cosignerId(name, pub)) !== id.toLowerCase()) throw new Invalid("policy");
      if (witnesses.some((w) => w.name === name)) throw new Invalid("policy");
      witnesses.push({ name, id, pub });
    } else if (word === "quorum" && /^[1-9][0-9]{0,3}$/.test(value) && quorum === null) {
      quorum = Number(value);
    } else {
      throw new Invalid("policy");
    }
  }
  if (quorum === null) quorum = witnesses.length;
  if (!witnesses.length || quorum > witnesses.length) throw new Invalid("policy");
  return { witnesses, quorum };
}

// The names on the signature lines of a note other than `origin` (said, not checked).
export function cosignerNames(note, origin) {
  const split = note.lastIndexOf("\n\n");
  if (split < 0) return [];
  return note
    .slice(split + 2, -1)
    .split("\n")
    .map((line) => /^\u2014 (\S+) /.exec(line))
    .filter((m) => m && m[1] !== origin)
    .map((m) => m[1]);
}

// The policy's witnesses whose cosignatures on `note` verify; Invalid("witnesses") when
// fewer than its quorum, or when one of theirs does not verify.
export function checkCosignatures(note, policy) {
  const split = note.lastIndexOf("\n\n");
  if (split < 0 || !note.endsWith("\n")) throw new Invalid("witnesses");
  const text = note.slice(0, split + 1);
  const signed = new Set();
  for (const line of note.slice(split + 2, -1).split("\n")) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m) throw new Invalid("witnesses");
    const sig = b64(m[2]);
    for (const w of policy.witnesses) {
      if (w.name !== m[1] || !equal(sig.slice(0, 4), cosignerId(w.name, w.pub))) continue;
      if (sig.length !== 76) throw new Invalid("witnesses");
      let time = 0n;
      for (const byte of sig.slice(4, 12)) time = (time << 8n) | BigInt(byte);
      if (time >= 1n << 63n) throw new Invalid("witnesses");
      const message = enc.encode(`cosignature/v1\ntime ${time}\n${text}`);
      if (!ed.verify(sig.slice(12), message, w.pub)) throw new Invalid("witnesses");
      signed.add(w.name);
    }
  }
  if (signed.size < policy.quorum) throw new Invalid("witnesses");
  return [...signed];
}
