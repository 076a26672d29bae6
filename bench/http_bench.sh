#!/usr/bin/env bash
# GET /healthz requests per second through intentd against a bare libh2o hello-world
# (bench/h2o_hello.c) with the same number of worker threads, both driven by the same wrk
# command in the same run, one after the other. Prints a table with the ratio and the commands.
#
# usage: bench/http_bench.sh [seconds-per-run] [connections]    (default 10 s, 64 connections)
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10}"
connections="${2:-64}"
workers="${WORKERS:-2}"
build="${BUILD_DIR:-build}"

[ -x "$build/intentd" ] && [ -x "$build/bench/h2o_hello" ] || {
    echo "http_bench: build first (scripts/build.sh)" >&2
    exit 1
}
command -v wrk >/dev/null || { echo "http_bench: wrk is missing (scripts/deps.sh)" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_up() {
    for _ in $(seq 1 200); do
        curl -sf "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "http_bench: server on port $1 did not come up" >&2
    exit 1
}

# run_wrk PORT -> prints "rps p50_ms p99_ms"
run_wrk() {
    wrk -t1 -c"$connections" -d2s "http://127.0.0.1:$1/healthz" >/dev/null # warm-up
    wrk -t1 -c"$connections" -d"${duration}s" --latency "http://127.0.0.1:$1/healthz" |
        awk '/Requests\/sec/ {rps=$2}
             /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
             END {
               printf "%s %s %s\n", rps, conv(p50), conv(p99)
             }
             function conv(v) {
               if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
               if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
               if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
               return v
             }'
}

bare_port=$(free_port)
"$build/bench/h2o_hello" "$bare_port" "$workers" & pids+=($!)
wait_up "$bare_port"
read -r bare_rps bare_p50 bare_p99 < <(run_wrk "$bare_port")
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true; pids=()

intentd_port=$(free_port)
PORT="$intentd_port" WORKERS="$workers" LOG_LEVEL=warn "$build/intentd" & pids+=($!)
wait_up "$intentd_port"
read -r rps p50 p99 < <(run_wrk "$intentd_port")

ratio=$(awk -v a="$rps" -v b="$bare_rps" 'BEGIN {printf "%.3f", a / b}')
echo
echo "GET /healthz, $workers server workers, wrk -t1 -c$connections -d${duration}s, $(nproc) CPUs"
printf '| %-28s | %12s | %8s | %8s |\n' "server" "req/s" "p50 ms" "p99 ms"
printf '|%s|%s|%s|%s|\n' "------------------------------" "--------------" "----------" "----------"
printf '| %-28s | %12.0f | %8.3f | %8.3f |\n' "bare libh2o (bench/h2o_hello)" "$bare_rps" "$bare_p50" "$bare_p99"
printf '| %-28s | %12.0f | %8.3f | %8.3f |\n' "intentd /healthz" "$rps" "$p50" "$p99"
echo "ratio intentd / bare h2o: $ratio (target >= 0.90)"
echo "json: {\"name\":\"healthz_rps_ratio\",\"value\":$ratio,\"intentd_rps\":$rps,\"bare_rps\":$bare_rps}"
echo "command: bench/http_bench.sh $duration $connections"
