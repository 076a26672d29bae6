#!/usr/bin/env bash
# THE bench command: load-tests intentd like its users, with every baseline in the same run.
#
#   bench/run.sh [--quick|--standard] [--no-build] [--docs|--no-docs]
#
# Builds the release (scripts/build.sh release; BUILD_DIR=dir uses and updates that CMake tree
# instead), starts its own PostgreSQL, Redis and anvil (scripts/services.sh with
# SERVICES_DIR=.local/bench-services, wiped first), deploys the intent registry and the test USDC
# like the run command, starts intentd on a free port, and runs the scenarios one after the
# other with bench/loadgen (C, io_uring; wallets that sign in with EIP-4361 and sign intents
# with EIP-712):
#   micro      runtime_bench and chain_bench (one figure per line)
#   baseline   the bare libh2o hello-world (bench/h2o_hello) at the same connection count,
#              closed loop
#   reads      GET /api/intents/:id and GET /api/intents, closed loop, then open loop at half of
#              the bare h2o rate in rounds with the bare server at that rate and at a tenth of it
#              (the median of the rounds; bench/stall_probe first records what the host takes
#              from the CPUs), and at half of their own rate
#   writes     POST /api/intents (inline EIP-712 signature) against pgbench running the same
#              INSERT at the same concurrency
#   sign-in    nonce + EIP-4361 message + EIP-191 signature, closed loop
#   ws, e2e    bench/ws_bench, bench/executor_bench and bench/engine*bench* when they are
#              built (skipped otherwise), each bounded in time
#   mixed      get 70 / list 15 / create 10 / sign-in 5, closed loop, then open loop at half
#   anvil      pre-signed transactions sent to anvil, last (it leaves anvil busy for minutes)
# and stops everything again. Shows a progress line, prints a table, writes
# .local/bench/results.json (every figure and the machine), SVG charts (gnuplot) and, on the
# standard run, docs/benchmarks.md and docs/benchmarks/*.svg. --quick: 3 s per run (a smoke
# test, about 3 minutes); --standard (default): 10 s per run, about 11 minutes on 2 cores.
# Settings from the environment: BUILD_DIR, BENCH_OUT (default .local/bench),
# BENCH_SERVICES_DIR, BENCH_CONNECTIONS (reads, default 64), BENCH_WRITE_CONNECTIONS (writes,
# sign-in and pgbench, default 16), WORKERS (intentd's and h2o_hello's, default nproc),
# BENCH_NOTE (a remark recorded with the figures, e.g. what else ran on the machine).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

profile=standard build=1 docs=
for arg in "$@"; do
    case $arg in
    --quick) profile=quick ;;
    --standard) profile=standard ;;
    --no-build) build=0 ;;
    --docs) docs=1 ;;
    --no-docs) docs=0 ;;
    *)
        sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
        exit 2
        ;;
    esac
done
if [[ $profile == quick ]]; then
    dur=3 warm=1 users=40 intents=4 micro_s=0.3 ext_timeout_s=90 rounds=1
else
    dur=10 warm=2 users=200 intents=8 micro_s=1 ext_timeout_s=240 rounds=3
fi
[[ -n $docs ]] || docs=$([[ $profile == standard ]] && echo 1 || echo 0)
read_conns=${BENCH_CONNECTIONS:-64} # HTTP connections for reads and the baselines
write_conns=${BENCH_WRITE_CONNECTIONS:-16} # for writes, sign-in and pgbench
workers=${WORKERS:-$(nproc)}
BUILD=${BUILD_DIR:-$ROOT/build}
OUT=${BENCH_OUT:-$ROOT/.local/bench}
export SERVICES_DIR=${BENCH_SERVICES_DIR:-$ROOT/.local/bench-services}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
command_line="bench/run.sh --$profile"
for var in BUILD_DIR BENCH_OUT BENCH_SERVICES_DIR BENCH_CONNECTIONS BENCH_WRITE_CONNECTIONS WORKERS; do
    [[ -z ${!var:-} ]] || command_line="$var=${!var} $command_line"
done
started_s=$SECONDS

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

mkdir -p "$OUT/runs" "$OUT/logs" "$OUT/charts"
rm -f "$OUT"/runs/*.json "$OUT"/logs/*.log "$OUT"/{figures,notes,external}.jsonl
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    scripts/services.sh stop >/dev/null 2>&1 || echo "bench: could not stop the services" >&2
    progress_end
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

total_steps=18
machine_json >"$OUT/machine.json"
[[ -z ${BENCH_NOTE:-} ]] || note "$BENCH_NOTE" # the operator's remark on the run
load_start=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load_start" 'BEGIN {exit !(l > 0.5)}'; then
    note "the machine was busy before the bench started (load average $load_start on $(nproc) CPUs): figures may be depressed"
fi

# ---- build, tools, services, contracts -------------------------------------------------------
step "build (release)"
if ((build)); then
    if [[ -n ${BUILD_DIR:-} ]]; then
        cmake --build "$BUILD" -j"$(nproc)" >"$OUT/logs/build.log" 2>&1 ||
            die "build failed (log: $OUT/logs/build.log)"
    else
        scripts/build.sh release
    fi
fi
for exe in intentd bench/loadgen bench/h2o_hello bench/stall_probe bench/runtime_bench bench/chain_bench; do
    [[ -x $BUILD/$exe ]] || die "$BUILD/$exe is missing: build first (scripts/build.sh release)"
done
ensure_gnuplot

step "services: PostgreSQL, Redis, anvil ($SERVICES_DIR)"
scripts/services.sh clean >/dev/null 2>&1 || true
scripts/services.sh start pg redis anvil >"$OUT/logs/services.log" 2>&1 ||
    die "services did not start (log: $OUT/logs/services.log)"
# shellcheck source=/dev/null
. "$SERVICES_DIR.env"
ANVIL_DEV_KEY_0=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
deploy_out=$(PRIVATE_KEY=$ANVIL_DEV_KEY_0 "$BUILD/intentd" deploy --rpc-url "$RPC_URL" \
    --chain-id "$CHAIN_ID" 2>"$OUT/logs/deploy.log") || die "deploy failed ($OUT/logs/deploy.log)"
eval "$(grep -E '^export (INTENT_CONTRACT_ADDRESS|USDC_ADDRESS)=0x[0-9a-fA-F]{40}$' <<<"$deploy_out")"
export INTENT_CONTRACT_ADDRESS USDC_ADDRESS
{
    echo "# Written by bench/run.sh"
    for var in DATABASE_URL REDIS_URL RPC_URL CHAIN_ID INTENT_CONTRACT_ADDRESS USDC_ADDRESS; do
        printf 'export %s=%q\n' "$var" "${!var}"
    done
} >"$OUT/bench.env"

# ---- micro-benchmarks -------------------------------------------------------------------------
step "micro: runtime_bench $workers"
"$BUILD/bench/runtime_bench" "$workers" >"$OUT/logs/runtime_bench.log" 2>&1 ||
    note "runtime_bench failed (log: $OUT/logs/runtime_bench.log)"
collect_json_lines runtime "$OUT/logs/runtime_bench.log"
step "micro: chain_bench $micro_s"
"$BUILD/bench/chain_bench" "$micro_s" >"$OUT/logs/chain_bench.log" 2>&1 ||
    note "chain_bench failed (log: $OUT/logs/chain_bench.log)"
collect_json_lines chain "$OUT/logs/chain_bench.log"

# ---- the bare h2o baseline ----------------------------------------------------------------------
step "baseline: bare libh2o hello-world, $read_conns connections"
bare_port=$(free_port)
"$BUILD/bench/h2o_hello" "$bare_port" "$workers" >"$OUT/logs/h2o_hello.log" 2>&1 &
bare_pid=$!
pids+=("$bare_pid")
wait_http "http://127.0.0.1:$bare_port/healthz" || die "h2o_hello did not start"
loadgen hello_bare run --url "http://127.0.0.1:$bare_port" --mix hello=1 \
    --connections "$read_conns"
bare_rps=$(fig hello_bare throughput_per_s)
half_bare=$(awk -v r="$bare_rps" 'BEGIN {printf "%d", r / 2}')
tenth_bare=$(awk -v r="$bare_rps" 'BEGIN {printf "%d", r / 10}')
# it stays up, idle, for its open-loop runs between intentd's (below)

# ---- intentd --------------------------------------------------------------------------------------
step "intentd on a free port, $workers workers; $users wallets sign in, $intents intents each"
start_intentd
api=http://127.0.0.1:$api_port
state=$OUT/state.json
"$BUILD/bench/loadgen" setup --url "$api" --users "$users" --intents "$intents" \
    --state "$state" --connections "$write_conns" >"$OUT/logs/setup.log" 2>&1 ||
    die "setup failed (log: $OUT/logs/setup.log)"
loadgen healthz run --url "$api" --mix hello=1 --hello-path /healthz --connections "$read_conns"

step "reads: GET /api/intents/:id and GET /api/intents, closed loop, $read_conns connections"
loadgen get_closed run --url "$api" --state "$state" --mix get=1 --connections "$read_conns"
loadgen list_closed run --url "$api" --state "$state" --mix list=1 --connections "$read_conns"

# The p99 targets are a few ms, and the host's share of this machine's CPUs moves from one
# minute to the next (a vCPU lost 12 ms a second in stalls of up to 2 ms, then 1 ms a second 20 s
# later). So the bare server's open loop runs at the same rate in the same minutes as intentd's,
# in rounds of bare h2o, GET, list, each after bench/stall_probe has recorded what the host takes
# from the CPUs just then, and each figure is the median of its rounds. Each round starts with
# the bare server at a tenth of its rate: what p99 this machine holds for the simplest server
# under light load, the floor beneath the floor (the generator shares the server's CPUs, so
# half the bare rate is more than half of the machine: loadgen records how busy its CPUs were).
step "reads: open loop at half the bare h2o rate ($half_bare/s), $rounds rounds of bare h2o (and at $tenth_bare/s), GET, list"
for ((round = 1; round <= rounds; round++)); do
    sfx=$( ((round == 1)) || echo "_r$round")
    "$BUILD/bench/stall_probe" 2 >"$OUT/logs/stall_probe$sfx.log" 2>&1 ||
        note "stall_probe failed (log: $OUT/logs/stall_probe$sfx.log)"
    collect_json_lines machine "$OUT/logs/stall_probe$sfx.log" "$sfx"
    loadgen "hello_open_tenth_bare$sfx" run --url "http://127.0.0.1:$bare_port" --mix hello=1 \
        --rate "$tenth_bare" --connections "$read_conns"
    loadgen "hello_open_half_bare$sfx" run --url "http://127.0.0.1:$bare_port" --mix hello=1 \
        --rate "$half_bare" --connections "$read_conns"
    loadgen "get_open_half_bare$sfx" run --url "$api" --state "$state" --mix get=1 \
        --rate "$half_bare" --connections "$read_conns"
    loadgen "list_open_half_bare$sfx" run --url "$api" --state "$state" --mix list=1 \
        --rate "$half_bare" --connections "$read_conns"
done
stop_pid "$bare_pid"

half_get=$(awk -v r="$(fig get_closed throughput_per_s)" 'BEGIN {printf "%d", r / 2 + 1}')
half_list=$(awk -v r="$(fig list_closed throughput_per_s)" 'BEGIN {printf "%d", r / 2 + 1}')
step "reads: open loop at half their own closed-loop rate ($half_get/s, $half_list/s)"
loadgen get_open_half_own run --url "$api" --state "$state" --mix get=1 --rate "$half_get" \
    --connections "$read_conns"
loadgen list_open_half_own run --url "$api" --state "$state" --mix list=1 --rate "$half_list" \
    --connections "$read_conns"

# A CHECKPOINT before each of the two write runs, so that neither pays alone for the full-page
# images PostgreSQL writes to its log after a checkpoint (the first run after one would).
checkpoint() { "$PG_BIN/psql" -X -Atq "$DATABASE_URL" -c CHECKPOINT >/dev/null || true; }
step "writes: POST /api/intents (inline-signed), closed loop, $write_conns connections"
checkpoint
# enough bodies for 10,000 creates a second: past the pool the generator signs during the run, on
# the server's cores, which costs a faster server more (loadgen's signed_inline counts them)
presign=$((10000 * (dur + warm)))
loadgen create_closed run --url "$api" --state "$state" --mix create=1 --presign "$presign" \
    --connections "$write_conns"

step "writes: pgbench, the same INSERT, $write_conns clients"
checkpoint
pgbench_insert "$write_conns"

step "sign-in: nonce + EIP-4361 + EIP-191, closed loop, $write_conns connections"
loadgen signin_closed run --url "$api" --state "$state" --mix signin=1 \
    --connections "$write_conns"

step "WebSocket fan-out and end-to-end executions (when built)"
external_scenarios

step "mixed: get 70 / list 15 / create 10 / sign-in 5, closed loop, $read_conns connections"
mix="get=70,list=15,create=10,signin=5"
loadgen mixed_closed run --url "$api" --state "$state" --mix "$mix" --presign $((presign / 4)) \
    --connections "$read_conns"
half_mixed=$(awk -v r="$(fig mixed_closed throughput_per_s)" 'BEGIN {printf "%d", r / 2 + 1}')
step "mixed: open loop at half that ($half_mixed/s)"
loadgen mixed_open_half run --url "$api" --state "$state" --mix "$mix" --rate "$half_mixed" \
    --presign $((presign / 4)) --connections "$read_conns"

# Last, because it leaves anvil unusable for minutes: what it takes beyond what it mines stays
# in its pool (~19,000 transfers after a standard run), and anvil then spends a whole core on
# that pool without mining a block (its head stood still for 20 s and more at 100% CPU, with or
# without intentd following it). Run earlier, that core was taken from every scenario after it,
# the executions' and the mixed workload's included.
step "anvil: pre-signed transfers with eth_sendRawTransaction, 8 connections"
loadgen anvil_rawtx rawtx --url "$RPC_URL" --txs $((3000 * (dur + warm))) --senders 8 \
    --connections 8

step "stopping intentd and the services"
stop_last_pid
scripts/services.sh stop >/dev/null 2>&1 || true

# ---- report ---------------------------------------------------------------------------------------
step "report: table, results.json, charts"
assemble_results >"$OUT/results.json"
print_table "$OUT/results.json"
charts "$OUT/results.json" "$OUT/charts"
if ((docs)); then
    mkdir -p docs/benchmarks
    rm -f docs/benchmarks/*.svg
    cp "$OUT"/charts/*.svg docs/benchmarks/ 2>/dev/null || true
    write_doc "$OUT/results.json" >docs/benchmarks.md
    echo "bench: docs/benchmarks.md regenerated"
fi
echo "bench: results in $OUT/results.json, charts in $OUT/charts/ ($((SECONDS - started_s)) s)"
