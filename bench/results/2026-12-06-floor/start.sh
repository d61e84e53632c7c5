#!/usr/bin/env bash
# The floor's --product-cmd for ../shared/peer-bench: a fresh client key, client.json for
# product/tokens.py, then floor.py on uvicorn (one worker) at 127.0.0.1:18400.
#   ./bench.sh ... --product-cmd 'exec /path/to/bench/results/2026-12-06-floor/start.sh'
# PRODUCT_DIR: this project's checkout with `make install` done (its .venv runs the floor).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
P="${PRODUCT_DIR:?set PRODUCT_DIR to the project checkout}/.venv/bin/python"
if [ -z "${PRODUCT_WORK:-}" ]; then PRODUCT_WORK="$(mktemp -d)"; fi
mkdir -p "$PRODUCT_WORK"; export PRODUCT_WORK
$P - "$PRODUCT_WORK" <<'PY'
import sys, json
from pathlib import Path
from cryptography.hazmat.primitives import serialization as s
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
work = Path(sys.argv[1]); key = Ed25519PrivateKey.generate()
(work / "client.pem").write_bytes(key.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()))
(work / "public.pem").write_bytes(key.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo))
(work / "client.json").write_text(json.dumps({"client": "floor", "kid": "k1", "key_file": str(work / "client.pem"),
  "audience": "http://127.0.0.1:18400", "procedure": "1.000656", "case": "C-1", "officer": "o1", "database": "sqlite"}))
PY
cd "$HERE"
exec $P -m uvicorn floor:app --host 127.0.0.1 --port 18400 --workers 1 --log-level warning --no-access-log
