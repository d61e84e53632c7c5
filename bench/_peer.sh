# The parts of bench/side_by_side.sh and bench/profile.sh that drive the peer benchmark
# (sourced, not run): a work folder cleaned up on exit, the population source with the
# ids it serves, a build of the gateway started through product/start.sh, and a phase of
# signed load on it. The caller sets PEER (its copy of ../shared/peer-bench), PY (the
# Python that signs the tokens) and WORK (from `peer_work`).

PIDS=()

peer_work() {  # prefix: a fresh folder in WORK, removed with every process at exit
  WORK=$(mktemp -d -t "$1.XXXXXX")
  trap peer_cleanup EXIT
}

peer_cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null; done
  sleep 2; rm -rf "$WORK"
}

peer_source() {  # the population source on 18101, and 500 of its ids in WORK/ids.txt
  cd "$PEER" || exit 2
  setsid .venv/bin/python sources.py serve population --port 18101 > "$WORK/source.log" 2>&1 &
  PIDS+=($!)
  export POPULATION_URL=http://127.0.0.1:18101
  .venv/bin/python -c "from sources import citizen_ids; print('\n'.join(citizen_ids(500)))" \
    > "$WORK/ids.txt"
}

peer_gateway() {  # code port folder db pg-name redis-db: a build serving, in the background
  (
    export PRODUCT_DIR=${PRODUCT_DIR:-$1} PRODUCT_WORK=$3/work PRODUCT_PORT=$2 PYTHONPATH=$1
    if [ "$4" = postgres ]; then
      export PRODUCT_DB=postgres PRODUCT_PG=postgresql+asyncpg://postgres@127.0.0.1/$5
      export PRODUCT_REDIS=redis://127.0.0.1:6379/$6
    fi
    exec setsid product/start.sh
  ) > "$3/gateway.log" 2>&1 &
  PIDS+=($!)
}

peer_ready() {  # port: wait until the build answers /readyz (at most a minute)
  for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$1/readyz" > /dev/null && return 0
    sleep 0.5
  done
  return 1
}

peer_tokens() {  # folder scenario seconds out: fresh signed requests for a phase
  PRODUCT_WORK=$1/work PRODUCT_SCENARIO=$2 \
    PRODUCT_QUERY_FILE=$PEER/product/query_$2.graphql PRODUCT_IDS_FILE=$WORK/ids.txt \
    PRODUCT_TOKENS_COUNT=$(($3 * 1500)) PRODUCT_TOKENS_OUT=$4 \
    "$PY" product/tokens.py 2> /dev/null
}

peer_wrk() {  # pairs connections seconds port out: wrk sending those requests
  PAIRS_FILE=$1 REQ_PATH=/graphql EXPECT=birthDate WRK_THREADS=1 \
    wrk -t1 -c"$2" -d"$3"s --timeout 10s -s product/bench_product.lua \
    "http://127.0.0.1:$4/graphql" > "$5" 2>&1
}
