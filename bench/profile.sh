#!/usr/bin/env bash
# One build of the gateway alone under the peer benchmark's signed load, with py-spy
# recording its process: a flame graph and the requests a second it served meanwhile.
#
#   bench/profile.sh CHECKOUT OUT.svg [single|batch10] [connections] [seconds] [sqlite|postgres]
#
# OUT ending in .txt gets py-spy's collapsed stacks instead (a line per stack and its
# samples), for reading the figures with a script.
# CHECKOUT is a checkout of this project with `make install` done (its .venv runs it).
# PEER_BENCH is a copy of ../shared/peer-bench with its own .venv (py-spy installed in it)
# and wrk (its README says how). PROFILE_IDLE=1 records idle threads too (py-spy --idle);
# PROFILE_GIL=1 only the thread holding the GIL (py-spy --gil): what the process waits on.
# PROFILE_CPU_ONLY=1 runs no profiler and prints the CPU time a request, thread by thread,
# and the recorder's writer process's resident memory and CPU over the load.
# The gateway's /metrics are saved beside OUT.svg (OUT.metrics.txt) after the load.
set -uo pipefail
CODE=$(cd "${1:?CHECKOUT}" && pwd); OUT=$(realpath -m "${2:?OUT.svg}")
SCENARIO=${3:-batch10}; CONNS=${4:-16}; SECONDS_=${5:-15}; DB=${6:-sqlite}
PEER=$(cd "${PEER_BENCH:?set PEER_BENCH to your copy of ../shared/peer-bench}" && pwd)
PY="$CODE/.venv/bin/python"
[ -x "$PY" ] || { echo "profile: run make install in $CODE" >&2; exit 2; }
[ -x "$PEER/.venv/bin/py-spy" ] || { echo "profile: pip install py-spy in $PEER/.venv" >&2; exit 2; }
# shellcheck source=bench/_peer.sh
. "$(dirname "$0")/_peer.sh"
peer_work profile
PORT=18420
TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
peer_source
GATEWAY_METRICS_TOKEN=$TOKEN peer_gateway "$CODE" "$PORT" "$WORK" "$DB" profiled 12
peer_ready "$PORT"
SERVING=$(pgrep -f "gateway serve --host 127.0.0.1 --port $PORT" | head -1)
[ -n "$SERVING" ] || { echo "profile: the gateway did not start" >&2; cat "$WORK/gateway.log" >&2; exit 1; }

load() {  # phase seconds
  peer_tokens "$WORK" "$SCENARIO" "$2" "$WORK/pairs.$1"
  peer_wrk "$WORK/pairs.$1" "$CONNS" "$2" "$PORT" "$WORK/wrk.$1"
}
load warm 5
metrics() {
  curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/metrics" \
    > "${OUT%.*}.metrics.txt"
}
summary() {  # the measured load's rps, failures and p50; with CPU readings before and
  # after it (all threads, then the event loop's), the CPU a request
  "$PY" - "$WORK" "$@" <<'PY'
import json
import sys
from pathlib import Path

lines = (Path(sys.argv[1]) / "wrk.measured").read_text().splitlines()
result = json.loads(next(line for line in lines if line.startswith("RESULT "))[7:])
n = result["requests"]
said = f"{n / result['duration_us'] * 1e6:.1f} rps, {result['bad']} bad, p50 {result['p50_us'] / 1000:.1f} ms"
if len(sys.argv) == 6:
    before_all, before_loop, after_all, after_loop = map(float, sys.argv[2:])
    said += (
        f"; CPU a request {(after_all - before_all) / n * 1000:.2f} ms, "
        f"of which the event loop {(after_loop - before_loop) / n * 1000:.2f} ms"
    )
else:
    said += " (under py-spy)"
print(said)
PY
}
cpu() {  # the process's CPU seconds: all threads, and the event loop's (the main thread)
  awk '{print ($14 + $15) / 100}' "/proc/$SERVING/stat" "/proc/$SERVING/task/$SERVING/stat" | paste -sd' '
}
if [ "${PROFILE_CPU_ONLY:-0}" = 1 ]; then  # no profiler: CPU a request, undisturbed
  threads() { for t in /proc/$SERVING/task/*; do echo "$(basename $t) $(awk '{print $14 + $15}' $t/stat)"; done; }
  # The recorder's writer process (GATEWAY_RECORDER_PROCESS), a child of the server.
  WRITER=$(pgrep -P "$SERVING" -f _writer_process | head -1)
  writer_cpu() { [ -n "$WRITER" ] && awk '{print ($14 + $15) / 100}' "/proc/$WRITER/stat"; }
  threads > "$WORK/threads.before"
  WRITER_BEFORE=$(writer_cpu)
  BEFORE=$(cpu); load measured "$SECONDS_"; AFTER=$(cpu)
  WRITER_AFTER=$(writer_cpu)
  threads > "$WORK/threads.after"
  metrics
  echo "resident memory after the load: $(awk '/^VmRSS/ {print $2 / 1024 " MB"}' "/proc/$SERVING/status")"
  if [ -n "$WRITER" ]; then
    echo "writer process: $(awk '/^VmRSS/ {print $2 / 1024 " MB"}' "/proc/$WRITER/status") resident," \
      "$(echo "$WRITER_BEFORE $WRITER_AFTER" | awk '{print $2 - $1}') CPU seconds over the load"
  fi
  echo "CPU seconds of each thread over the load (tid: seconds):"
  join "$WORK/threads.before" "$WORK/threads.after" | awk '{d = ($3 - $2) / 100; if (d > 0.05) print "  " $1 ": " d}' | sort -t: -k2 -rn
  summary $BEFORE $AFTER
  exit 0
fi
SPY_ARGS=(); [ "${PROFILE_IDLE:-0}" = 1 ] && SPY_ARGS+=(--idle)
[ "${PROFILE_GIL:-0}" = 1 ] && SPY_ARGS+=(--gil)
FORMAT=flamegraph; [ "${OUT##*.}" = txt ] && FORMAT=raw
.venv/bin/py-spy record -p "$SERVING" -o "$OUT" -f "$FORMAT" -d "$SECONDS_" -r 200 "${SPY_ARGS[@]}" \
  > "$WORK/py-spy.log" 2>&1 &
SPY=$!
load measured "$SECONDS_"
wait "$SPY" || { echo "profile: py-spy failed" >&2; cat "$WORK/py-spy.log" >&2; }
metrics
summary
echo "flame graph: $OUT"
