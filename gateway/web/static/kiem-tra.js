// The auditor's console: the browser verifies an export of the access log itself.
//
// An export (/kiem-tra/xuat, the bytes of /audit/export) is JSON lines: the signed
// checkpoint, one line per record, a summary. As `gateway audit verify-export` does,
// this file checks, stopping at the first wrong line:
// 1. the checkpoint note is signed by a key the log publishes (/log/key), and its line
//    says the signed size and origin;
// 2. each record's envelope hashes (SHA-256 of its RFC 8785 JSON) to its envelopeHash;
// 3. a logged record's public leaf commits to that hash and the record's type, and the
//    leaf's RFC 6962 hash with its inclusion proof leads to the checkpoint's root; a
//    record not yet logged (pending) has neither leaf nor proof;
// 4. the summary counts what the file holds.
// The server gives no verdict. Texts come from data- attributes of the page, which the
// translation catalogue filled.
import {
  Invalid,
  b64any,
  canonicalHash,
  checkCosignatures,
  cosignerNames,
  enc,
  equal,
  leafHash,
  openCheckpoint,
  readKeys,
  readPolicy,
  rootFrom,
} from "./tlog.js";

class Bad extends Invalid {
  constructor(why, line, id) {
    super(why);
    this.line = line;
    this.id = id;
  }
}

function parse(raw, why = "format") {
  let item;
  try {
    item = JSON.parse(raw);
  } catch {
    throw new Invalid(why);
  }
  if (item === null || typeof item !== "object" || Array.isArray(item)) throw new Invalid(why);
  return item;
}

function checkpointLine(item, keys) {
  if (item.kind !== "checkpoint" || typeof item.note !== "string") throw new Invalid("first");
  const signed = openCheckpoint(item.note, keys);
  if (
    !Number.isSafeInteger(item.size) ||
    BigInt(item.size) !== signed.size ||
    item.origin !== signed.origin
  ) {
    throw new Invalid("checkpoint");
  }
  return signed;
}

function recordLine(item, signed, counts) {
  const envelope = item.envelope;
  const digest = item.envelopeHash;
  if (envelope === null || typeof envelope !== "object" || Array.isArray(envelope)) {
    throw new Invalid("envelope");
  }
  if (typeof digest !== "string" || canonicalHash(envelope) !== digest) {
    throw new Invalid("envelope");
  }
  if (item.leaf === null || item.leaf === undefined) {
    if (item.proof !== null && item.proof !== undefined) throw new Invalid("proof");
    counts.pending += 1;
    return;
  }
  const { leaf, leafIndex, proof } = item;
  if (typeof leaf !== "string" || !Number.isSafeInteger(leafIndex) || leafIndex < 0) {
    throw new Invalid("proof");
  }
  if (!Array.isArray(proof)) throw new Invalid("proof");
  const publicLeaf = parse(leaf, "leaf");
  if (publicLeaf.envelope_hash !== digest || publicLeaf.type !== item.type) {
    throw new Invalid("leaf");
  }
  const hashes = proof.map((h) => {
    const bytes = b64any(h);
    if (bytes.length !== 32) throw new Invalid("inclusion");
    return bytes;
  });
  const root = rootFrom(BigInt(leafIndex), signed.size, leafHash(enc.encode(leaf)), hashes);
  if (!equal(root, signed.root)) throw new Invalid("inclusion");
  counts.proven += 1;
}

// Check an export's text against the log's keys (text of /log/key) under `origin`, and
// with a witness policy the auditor loads, its checkpoint's cosignatures.
// Returns {proven, pending, size, origin, said, witnessed}; throws Bad(why, line, id) at
// the first wrong line.
export function verifyExport(text, keysText, origin, policy = null) {
  const keys = readKeys(keysText).filter((k) => !origin || k.name === origin);
  const lines = text.split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop(); // the last line's end
  const counts = { proven: 0, pending: 0 };
  let signed = null;
  let ended = false;
  let number = 0;
  for (const [i, raw] of lines.entries()) {
    number = i + 1;
    if (!raw.trim()) continue;
    let id = null;
    try {
      if (ended) throw new Invalid("after");
      const item = parse(raw);
      if (typeof item.id === "string") id = item.id;
      if (number === 1) {
        signed = checkpointLine(item, keys);
        signed.note = item.note;
        signed.witnessed = policy ? checkCosignatures(item.note, policy) : null;
      } else if (signed === null) {
        throw new Invalid("first");
      } else if (item.kind === "record") {
        recordLine(item, signed, counts);
      } else if (item.kind === "end") {
        const total = counts.proven + counts.pending;
        if (item.records !== total || item.proven !== counts.proven || item.pending !== counts.pending) {
          throw new Invalid("summary");
        }
        ended = true;
      } else {
        throw new Invalid("format");
      }
    } catch (err) {
      if (!(err instanceof Invalid)) throw err;
      throw new Bad(err.message, number, id);
    }
  }
  if (signed === null) throw new Bad("empty", Math.max(number, 1), null);
  if (!ended) throw new Bad("cut", number + 1, null);
  const said = cosignerNames(signed.note, signed.origin);
  return { ...counts, size: signed.size, origin: signed.origin, said, witnessed: signed.witnessed };
}

function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

const WHY = {
  format: "whyFormat",
  first: "whyFirst",
  signature: "whySignature",
  checkpoint: "whyCheckpoint",
  envelope: "whyEnvelope",
  leaf: "whyLeaf",
  proof: "whyProof",
  inclusion: "whyInclusion",
  summary: "whySummary",
  after: "whyAfter",
  cut: "whyCut",
  empty: "whyEmpty",
  keys: "whyKeys",
  witnesses: "whyWitnesses",
};

function show(box, state, text, detail) {
  const verdict = document.getElementById("kt-verdict");
  verdict.textContent = text;
  verdict.className = "kt-verdict kt-" + state;
  verdict.dataset.verdict = state;
  document.getElementById("kt-verdict-detail").textContent = detail;
}

function witnessed(box, facts, policy) {
  if (facts.witnessed) {
    return fill(box.dataset.witnessesChecked, {
      names: facts.witnessed.join(", "),
      quorum: policy.quorum,
    });
  }
  if (facts.said.length) return fill(box.dataset.witnessesUnchecked, { names: facts.said.join(", ") });
  return box.dataset.witnessesNone;
}

const loaded = { policy: null, text: null };

async function judge(box, text) {
  show(box, "checking", box.dataset.checking, "");
  let keysText;
  try {
    const answer = await fetch(box.dataset.keys, { credentials: "omit" });
    if (!answer.ok) throw new Error(String(answer.status));
    keysText = await answer.text();
  } catch {
    show(box, "invalid", box.dataset.invalid, box.dataset.whyKeys);
    return;
  }
  try {
    const facts = verifyExport(text, keysText, box.dataset.origin, loaded.policy);
    show(
      box,
      "valid",
      box.dataset.valid,
      fill(box.dataset.okDetail, { proven: facts.proven, size: facts.size, pending: facts.pending }) +
        " " +
        witnessed(box, facts, loaded.policy),
    );
  } catch (err) {
    if (!(err instanceof Bad)) {
      console.error("export check:", err);
      show(box, "invalid", box.dataset.invalid, box.dataset.whyFormat);
      return;
    }
    const why = box.dataset[WHY[err.message] || "whyFormat"];
    show(
      box,
      "invalid",
      box.dataset.invalid,
      fill(box.dataset.badDetail, { line: err.line, id: err.id || box.dataset.noId, why }),
    );
    const verdict = document.getElementById("kt-verdict");
    verdict.dataset.line = String(err.line);
    verdict.dataset.id = err.id || "";
    verdict.dataset.why = err.message;
  }
}

function main() {
  if (typeof document === "undefined") return;
  const box = document.getElementById("kt-verify");
  if (!box) return;
  document.getElementById("export-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (file) {
      loaded.text = await file.text();
      await judge(box, loaded.text);
    }
  });
  document.getElementById("kt-witness-policy").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    try {
      loaded.policy = readPolicy(await file.text());
    } catch {
      loaded.policy = null;
      show(box, "invalid", box.dataset.invalid, box.dataset.whyPolicy);
      return;
    }
    if (loaded.text !== null) await judge(box, loaded.text);
  });
}

main();
