#!/usr/bin/env bash
# Two builds of the gateway under the same load at the same time, for a ratio a drifting
# machine cannot blur: each build serves on its own port, each is loaded by its own wrk
# with the peer benchmark's signed requests, both read the same population source.
#
#   bench/side_by_side.sh OLD NEW [single|batch10] [connections] [seconds] [sqlite|postgres]
#
# OLD and NEW are checkouts of this project; NEW has `make install` done, and its .venv
# runs both (OLD's code comes first on PYTHONPATH). PEER_BENCH is a copy of
# ../shared/peer-bench with its own .venv and wrk installed (its README says how).
# Prints each build's requests a second, failed answers and p50, then NEW / OLD.
# A build against itself reads about 1.01 here: differences below 3 % are noise.
set -uo pipefail
OLD=$(cd "${1:?OLD checkout}" && pwd); NEW=$(cd "${2:?NEW checkout}" && pwd)
SCENARIO=${3:-batch10}; CONNS=${4:-32}; SECONDS_=${5:-12}; DB=${6:-sqlite}
PEER=$(cd "${PEER_BENCH:?set PEER_BENCH to your copy of ../shared/peer-bench}" && pwd)
PY="$NEW/.venv/bin/python"
[ -x "$PY" ] || { echo "side_by_side: run make install in $NEW" >&2; exit 2; }
# shellcheck source=bench/_peer.sh
. "$(dirname "$0")/_peer.sh"
peer_work side-by-side
peer_source

declare -A PORT=([old]=18410 [new]=18411) CODE=([old]=$OLD [new]=$NEW)
for build in old new; do
  mkdir -p "$WORK/$build"
  PRODUCT_DIR=$NEW peer_gateway "${CODE[$build]}" "${PORT[$build]}" "$WORK/$build" "$DB" \
    "sidebyside$build" "$([ $build = old ] && echo 10 || echo 11)"
done
for build in old new; do
  peer_ready "${PORT[$build]}"
done

load() {  # phase seconds: fresh tokens for both, then both wrk at once
  for build in old new; do
    peer_tokens "$WORK/$build" "$SCENARIO" "$2" "$WORK/$build/pairs.$1"
  done
  local jobs=()
  for build in old new; do
    peer_wrk "$WORK/$build/pairs.$1" "$CONNS" "$2" "${PORT[$build]}" "$WORK/$build/wrk.$1" &
    jobs+=($!)
  done
  wait "${jobs[@]}"
}
load warm 5
load measured "$SECONDS_"
"$PY" - "$WORK" <<'PY'
import json
import sys
from pathlib import Path

rps = {}
for build in ("old", "new"):
    lines = (Path(sys.argv[1]) / build / "wrk.measured").read_text().splitlines()
    result = json.loads(next(line for line in lines if line.startswith("RESULT "))[7:])
    rps[build] = result["requests"] / result["duration_us"] * 1e6
    p50 = result["p50_us"] / 1000
    print(f"{build} {rps[build]:.1f} rps, {result['bad']} bad, p50 {p50:.1f} ms")
print(f"new / old: {rps['new'] / rps['old']:.3f}")
PY
