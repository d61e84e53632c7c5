#!/usr/bin/env bash
# Two builds of the gateway, each alone under the peer benchmark's signed load, in turn:
# OLD then NEW, NEW then OLD, and so on for ROUNDS rounds; the medians of each build's
# requests a second and CPU a request, and the median of the rounds' NEW / OLD.
#
#   bench/alternate.sh OLD NEW [single|batch10] [connections] [seconds] [sqlite|postgres] [rounds]
#
# For a change that moves work between the gateway's processes (the event loop and its
# writer process): bench/side_by_side.sh runs both builds at once, and two gateways on
# two cores leave no core idle, so it weighs the CPU a request takes in all, not what
# the event loop, the bottleneck of one gateway alone, is spared. Here each build has
# the machine as the peer benchmark gives it. Each phase is bench/profile.sh with
# PROFILE_CPU_ONLY=1 (a fresh source, gateway and database, 5 s of warm-up); a
# machine that drifts between phases is why the order alternates and medians are read.
# OLD and NEW are checkouts with `make install` done; PEER_BENCH as for profile.sh.
set -uo pipefail
OLD=$(cd "${1:?OLD checkout}" && pwd); NEW=$(cd "${2:?NEW checkout}" && pwd)
SCENARIO=${3:-single}; CONNS=${4:-16}; SECONDS_=${5:-15}; DB=${6:-sqlite}; ROUNDS=${7:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mktemp -d -t alternate.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

phase() {  # build label round
  PROFILE_CPU_ONLY=1 "$HERE/profile.sh" "$1" "$OUT/$2.$3.svg" "$SCENARIO" "$CONNS" "$SECONDS_" "$DB" \
    > "$OUT/$2.$3.log" 2>&1
  line=$(grep ' rps, ' "$OUT/$2.$3.log" | tail -1)
  [ -n "$line" ] || { echo "alternate: $2 gave no figure (round $3):" >&2; tail -5 "$OUT/$2.$3.log" >&2; exit 1; }
  echo "$2 round $3: $line"
  echo "$3 $line" >> "$OUT/$2.figures"
}

for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then phase "$OLD" old "$round"; phase "$NEW" new "$round"
  else phase "$NEW" new "$round"; phase "$OLD" old "$round"; fi
done

python3 - "$OUT/old.figures" "$OUT/new.figures" <<'PY'
import re
import statistics
import sys


def figures(path):
    rounds = {}
    for line in open(path):
        number = int(line.split()[0])
        rps = float(re.search(r"([\d.]+) rps", line).group(1))
        cpu = re.search(r"CPU a request ([\d.]+) ms, of which the event loop ([\d.]+) ms", line)
        rounds[number] = (rps, float(cpu.group(1)), float(cpu.group(2)))
    return rounds


old, new = figures(sys.argv[1]), figures(sys.argv[2])
for name, rounds in (("old", old), ("new", new)):
    rps, cpu, loop = zip(*rounds.values())
    print(
        f"{name}: median {statistics.median(rps):.1f} rps; CPU a request "
        f"{statistics.median(cpu):.2f} ms, of which the event loop {statistics.median(loop):.2f} ms"
    )
ratios = [new[r][0] / old[r][0] for r in sorted(old)]
loops = [new[r][2] / old[r][2] for r in sorted(old)]
print("new / old, round by round: " + ", ".join(f"{x:.3f}" for x in ratios))
print(f"new / old: {statistics.median(ratios):.3f} (median); event loop's CPU a request "
      f"{statistics.median(loops):.3f}")
PY
