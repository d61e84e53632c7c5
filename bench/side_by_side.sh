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
WORK=$(mktemp -d -t side-by-side.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null; done
  sleep 2; rm -rf "$WORK"
}
trap cleanup EXIT

cd "$PEER"
setsid .venv/bin/python sources.py serve population --port 18101 > "$WORK/source.log" 2>&1 &
PIDS+=($!)
export POPULATION_URL=http://127.0.0.1:18101
.venv/bin/python -c "from sources import citizen_ids; print('\n'.join(citizen_ids(500)))" \
  > "$WORK/ids.txt"

declare -A PORT=([old]=18410 [new]=18411) CODE=([old]=$OLD [new]=$NEW)
for build in old new; do
  mkdir -p "$WORK/$build"
  (
    export PRODUCT_DIR=$NEW PRODUCT_WORK=$WORK/$build/work PRODUCT_PORT=${PORT[$build]}
    export PYTHONPATH=${CODE[$build]}
    if [ "$DB" = postgres ]; then
      export PRODUCT_DB=postgres PRODUCT_PG=postgresql+asyncpg://postgres@127.0.0.1/sidebyside$build
      export PRODUCT_REDIS=redis://127.0.0.1:6379/$([ $build = old ] && echo 10 || echo 11)
    fi
    exec setsid product/start.sh
  ) > "$WORK/$build/gateway.log" 2>&1 &
  PIDS+=($!)
done
for build in old new; do
  for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:${PORT[$build]}/readyz" > /dev/null && break
    sleep 0.5
  done
done

load() {  # phase seconds: fresh tokens for both, then both wrk at once
  for build in old new; do
    PRODUCT_WORK=$WORK/$build/work PRODUCT_SCENARIO=$SCENARIO \
      PRODUCT_QUERY_FILE=$PEER/product/query_$SCENARIO.graphql PRODUCT_IDS_FILE=$WORK/ids.txt \
      PRODUCT_TOKENS_COUNT=$(($2 * 1500)) PRODUCT_TOKENS_OUT=$WORK/$build/pairs.$1 \
      "$PY" product/tokens.py 2> /dev/null
  done
  local jobs=()
  for build in old new; do
    PAIRS_FILE=$WORK/$build/pairs.$1 REQ_PATH=/graphql EXPECT=birthDate WRK_THREADS=1 \
      wrk -t1 -c"$CONNS" -d"$2"s --timeout 10s -s product/bench_product.lua \
      "http://127.0.0.1:${PORT[$build]}/graphql" > "$WORK/$build/wrk.$1" 2>&1 &
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
