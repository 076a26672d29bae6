#!/usr/bin/env bash
# JSON-RPC round trips (eth_blockNumber) to anvil through chain/rpc against wrk posting the same
# request over the same number of keep-alive connections, plain and pipelined, in one run. Uses
# RPC_URL if set, else starts a private anvil (scripts/services.sh) and stops it afterwards.
#
# usage: bench/rpc_bench.sh [seconds-per-run]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
workers="${WORKERS:-1}"
connections=$((workers * 8)) # net/http_client's max_connections per worker and endpoint
actors="${ACTORS:-64}"
build="${BUILD_DIR:-build}"
[ -x "$build/bench/rpc_bench" ] || { echo "rpc_bench: build first (scripts/build.sh)" >&2; exit 1; }

started=0
tmp=$(mktemp -d)
cleanup() { rm -rf "$tmp"; if [ "$started" = 1 ]; then scripts/services.sh stop anvil >/dev/null; fi; }
trap cleanup EXIT
if [ -z "${RPC_URL:-}" ]; then
    export SERVICES_DIR=$PWD/.local/bench-services
    started=1
    scripts/services.sh start anvil
    # shellcheck source=/dev/null
    . "$SERVICES_DIR.env"
fi

body='{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'
cat >"$tmp/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
LUA
cat >"$tmp/pipeline.lua" <<LUA
init = function(args)
    local r = {}
    for i = 1, 8 do
        r[i] = wrk.format("POST", "/", {["Content-Type"] = "application/json"}, '$body')
    end
    req = table.concat(r)
end
request = function() return req end
LUA
wrk_rate() { wrk -t1 -c"$connections" -d"${seconds}s" -s "$1" "$RPC_URL" | awk '/Requests\/sec/ {printf "%.0f\n", $2}'; }

plain=$(wrk_rate "$tmp/post.lua")
pipelined=$(wrk_rate "$tmp/pipeline.lua")
client=$("$build/bench/rpc_bench" "$RPC_URL" "$seconds" "$workers" "$actors")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo
echo "eth_blockNumber to anvil, $connections connections, ${seconds}s each, $(nproc) CPUs"
printf '| %-40s | %12s | %10s |\n' "client" "calls/s" "chain/rpc ÷"
printf '|%s|%s|%s|\n' "------------------------------------------" "--------------" "------------"
printf '| %-40s | %12s | %10s |\n' "wrk, keep-alive (baseline)" "$plain" "$(ratio "$client" "$plain")"
printf '| %-40s | %12s | %10s |\n' "wrk, pipelined 8 deep (baseline)" "$pipelined" "$(ratio "$client" "$pipelined")"
printf '| %-40s | %12s | %10s |\n' "chain/rpc ($actors actors, $workers worker(s))" "$client" "1.00"
echo "json: {\"name\":\"rpc_vs_wrk_keepalive\",\"value\":$(ratio "$client" "$plain")}"
echo "json: {\"name\":\"rpc_vs_wrk_pipelined\",\"value\":$(ratio "$client" "$pipelined")}"
echo "command: bench/rpc_bench.sh $seconds"
