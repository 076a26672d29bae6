# Helpers of bench/run.sh for running things (sourced; expects ROOT, BUILD, OUT, dur, warm,
# workers, pids and total_steps from it). The report (results.json, table, charts, docs) is in
# bench/report.sh.
# shellcheck shell=bash disable=SC2154 # the settings are bench/run.sh's globals

# shellcheck source=bench/report.sh
. "$ROOT/bench/report.sh"

step_no=0
tty=0
[[ -t 2 ]] && tty=1

die() {
    progress_end
    echo "bench: $*" >&2
    exit 1
}

# note TEXT: a remark that goes on the terminal and into the report.
note() {
    progress_end
    echo "bench: note: $*" >&2
    jq -cn --arg t "$*" '{note: $t}' >>"$OUT/notes.jsonl"
}

elapsed() {
    printf '%d:%02d' $(((SECONDS - started_s) / 60)) $(((SECONDS - started_s) % 60))
}

# step TEXT: the progress line, "[ 5/17 1:23] reads: ...".
step() {
    step_no=$((step_no + 1))
    progress_end
    printf '[%2d/%d %s] %s\n' "$step_no" "$total_steps" "$(elapsed)" "$*" >&2
}

progress_end() {
    if ((tty)); then printf '\r\033[K' >&2; fi
}

# machine_json: what the figures were measured on.
machine_json() {
    local cpu mem
    cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
    mem=$(awk '/^MemTotal/ {print $2 * 1024}' /proc/meminfo)
    jq -n --arg cpu "${cpu:-unknown}" --arg kernel "$(uname -sr)" --arg arch "$(uname -m)" \
        --argjson nproc "$(nproc)" --argjson mem "$mem" \
        --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --arg date "$(date -u +%FT%TZ)" \
        --arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        --arg os "$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")" \
        --arg pg "$("$PG_BIN/postgres" --version 2>/dev/null | awk '{print $3}')" \
        '{nproc: $nproc, cpu_model: $cpu, kernel: $kernel, arch: $arch, memory_bytes: $mem,
          os: $os, postgresql: $pg, load_average_at_start: $load, date: $date, commit: $commit}'
}

# ensure_gnuplot: installs gnuplot-nox from Debian when it is missing (charts are skipped when
# that is not possible).
ensure_gnuplot() {
    command -v gnuplot >/dev/null && return 0
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null 2>&1 &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox >/dev/null 2>&1; } ||
            true
    fi
    command -v gnuplot >/dev/null || note "gnuplot is missing (apt-get install gnuplot-nox): no charts"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_http URL: up to 30 s for a 200.
wait_http() {
    local i
    for ((i = 0; i < 300; i++)); do
        curl -sf -m 1 "$1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# stop_pid PID: stops one of the started processes and forgets it.
stop_pid() {
    local p rest=()
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    for p in "${pids[@]}"; do [[ $p == "$1" ]] || rest+=("$p"); done
    pids=("${rest[@]}")
}

stop_last_pid() {
    ((${#pids[@]} > 0)) || return 0
    stop_pid "${pids[${#pids[@]} - 1]}"
}

# start_intentd: intentd on a free port (api_port) with the bench's services and contracts and
# fresh secrets. The rate limits keep running (their cost is part of every request) but with
# limits out of reach: the bench is one IP and a few hundred very busy users. It runs its engine,
# as scripts/run.sh starts it (an executor key: anvil's dev account 1, which nothing else here
# signs with): every intent created gets its actor, and the engine's changes are announced by
# the actors. The bench's intents come due in 2030 (loadgen), so nothing is executed.
start_intentd() {
    api_port=$(free_port)
    PORT=$api_port WORKERS=$workers LOG_LEVEL=warn \
        PRIVATE_KEY=0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d \
        API_RATE_LIMIT=1000000000 USER_RATE_LIMIT=1000000000 \
        JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') \
        DATA_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') \
        "$BUILD/intentd" >"$OUT/logs/intentd.log" 2>&1 &
    pids+=($!)
    wait_http "http://127.0.0.1:$api_port/readyz" ||
        die "intentd did not become ready (log: $OUT/logs/intentd.log)"
    ! grep -q '"no engine' "$OUT/logs/intentd.log" ||
        die "intentd started without its engine (log: $OUT/logs/intentd.log)"
}

# loadgen NAME COMMAND ARGS...: one measured run into $OUT/runs/NAME.json; its summary line is
# shown. A failed run is a note, not the end of the bench.
loadgen() {
    local name=$1 cmd=$2 line
    shift 2
    local extra=()
    ((tty)) && extra+=(--progress)
    if "$BUILD/bench/loadgen" "$cmd" "$@" --duration "$dur" --warmup "$warm" --name "$name" \
        --json "$OUT/runs/$name.json" "${extra[@]}" >"$OUT/logs/$name.log" 2>&1; then
        line=$(tail -n 1 "$OUT/logs/$name.log")
        echo "    $line" >&2
    else
        note "$name failed: $(tail -n 1 "$OUT/logs/$name.log")"
    fi
}

# fig NAME FIELD: a top-level figure of a run (0 when the run is missing).
fig() {
    jq -r ".$2 // 0" "$OUT/runs/$1.json" 2>/dev/null || echo 0
}

# collect_json_lines GROUP LOG [SUFFIX]: the "json: {...}" lines a micro-benchmark printed, each
# name with SUFFIX appended (a program run more than once in the same bench).
collect_json_lines() {
    sed -n 's/^json: //p' "$2" |
        jq -c --arg g "$1" --arg s "${3:-}" '. + {group: $g, name: (.name + $s)}' \
            >>"$OUT/figures.jsonl" || true
}

# pgbench_insert CLIENTS: the baseline of POST /api/intents: the statement intent_insert of
# actors/api_intents.c (the intent row, its audit row, the row's id and times back: what a 201
# takes from the database) with the same kinds of values, prepared, one user, CLIENTS connections,
# one insert per transaction. Salts come from gen_random_uuid. (intentd sends a lone create with
# that statement, and creates that queued up meanwhile as one intent_insert_group statement.)
pgbench_insert() {
    local clients=$1 owner script=$OUT/pgbench_insert.sql log=$OUT/logs/pgbench_insert.log
    owner=$("$PG_BIN/psql" -X -Atq "$DATABASE_URL" -c "SELECT id FROM users ORDER BY created_at LIMIT 1")
    [[ -n $owner ]] || { note "pgbench: no user to own the rows"; return 0; }
    cat >"$script" <<'SQL'
WITH i AS (INSERT INTO intents (owner_id, name, chain_id, recipient, token, amount,
   frequency, interval_seconds, start_at, end_at, max_executions, safety_buffer,
   constraints, status, next_execution, min_interval, salt, on_chain_id, signature)
 VALUES (:owner, 'pgbench', :chain, decode(:recipient, 'hex'), decode(:token, 'hex'),
   '1500000'::numeric, 'daily', NULL::bigint, to_timestamp(:start), to_timestamp(NULL),
   NULL::int, '0'::numeric, '{}'::jsonb, 'active', to_timestamp(:start), 86100::bigint,
   sha256(uuid_send(gen_random_uuid())), sha256(uuid_send(gen_random_uuid())),
   decode(:sig, 'hex')) RETURNING id, owner_id, on_chain_id, next_execution, created_at, updated_at),
 a AS (INSERT INTO audit_log (user_id, actor, action, subject_id, remote_ip)
   SELECT owner_id, 'user', 'intent.create', id, '127.0.0.1'::inet FROM i)
 SELECT id::text, extract(epoch FROM next_execution)::bigint, extract(epoch FROM created_at)::bigint,
  extract(epoch FROM updated_at)::bigint FROM i;
SQL
    local sig defs tdir
    sig=$(printf 'ab%.0s' $(seq 1 65))
    defs=(-D "owner=$owner" -D "chain=$CHAIN_ID" -D "recipient=90f79bf6eb2c4f870365e785982e1f101e93b906"
        -D "token=${USDC_ADDRESS#0x}" -D "start=1893488400" -D "sig=$sig")
    tdir=$(mktemp -d)
    "$PG_BIN/pgbench" -n -M prepared -c "$clients" -j "$workers" -T "$warm" "${defs[@]}" \
        -f "$script" "$DATABASE_URL" >"$log" 2>&1 || true
    if ! (cd "$tdir" && "$PG_BIN/pgbench" -n -M prepared -c "$clients" -j "$workers" -T "$dur" \
        "${defs[@]}" -l --log-prefix=tx -f "$script" "$DATABASE_URL") >>"$log" 2>&1; then
        note "pgbench failed (log: $log)"
        rm -rf "$tdir"
        return 0
    fi
    pgbench_json "$clients" "$tdir" "$log" >"$OUT/runs/pgbench_insert.json"
    rm -rf "$tdir"
    echo "    pgbench_insert: $(fig pgbench_insert throughput_per_s | cut -d. -f1)/s," \
        "p50 $(jq -r '.latency.p50_us / 1000' "$OUT/runs/pgbench_insert.json") ms," \
        "p99 $(jq -r '.latency.p99_us / 1000' "$OUT/runs/pgbench_insert.json") ms" >&2
}

# pgbench_json CLIENTS DIR LOG: pgbench's figures in loadgen's shape, latencies from its
# per-transaction log (client, tx, latency us, script, epoch s, us). LOG holds the warm-up's
# summary first: the rate is the measured run's, the last "tps =".
pgbench_json() {
    local tps
    tps=$(awk '/^tps = / {t = $3} END {print t}' "$3")
    cat "$2"/tx* | awk '{print $3}' | sort -n | awk -v tps="${tps:-0}" -v c="$1" -v d="$dur" '
        { v[NR] = $1; sum += $1 }
        function q(p,  i) { i = int(p * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; return v[i] }
        END {
            printf "{\"name\":\"pgbench_insert\",\"command\":\"pgbench\",\"mode\":\"closed\","
            printf "\"connections\":%d,\"duration_s\":%d,\"throughput_per_s\":%s,\"ok\":%d,", c, d, tps, NR
            printf "\"errors\":0,\"latency\":{\"count\":%d,\"mean_us\":%.1f,\"p50_us\":%d,", NR, NR ? sum / NR : 0, q(0.5)
            printf "\"p90_us\":%d,\"p99_us\":%d,\"p999_us\":%d,\"max_us\":%d}}\n", q(0.9), q(0.99), q(0.999), v[NR]
        }' | jq -c --argjson tl "$(cat "$2"/tx* | awk '{n[$5]++} END {for (s in n) print s, n[s]}' |
        sort -n | awk '{t[NR] = $1; n[NR] = $2}
            END { # whole seconds only: the first and the last are partial
                printf "["
                for (i = 2; i < NR; i++) printf "%s[%.1f,%d,0]", (i > 2 ? "," : ""), t[i] - t[2] + 0.5, n[i]
                print "]"
            }')" '. + {timeline_per_s: $tl}'
}

# run_external NAME EXE LIMIT_S ARGS...: one external program, its figures and its output's tail
# collected (NAME names its log and its entry in external.jsonl).
run_external() {
    local name=$1 exe=$2 limit_s=$3 rc=0
    shift 3
    echo "    $name $* (up to ${limit_s} s)" >&2
    BENCH_URL=$api BENCH_STATE=$state BENCH_DURATION_S=$dur BENCH_WARMUP_S=$warm \
        BENCH_CONNECTIONS=$read_conns INTENTD_BIN=$BUILD/intentd BUILD_DIR=$BUILD \
        timeout -k 5 "$limit_s" "$exe" "$@" </dev/null >"$OUT/logs/$name.log" 2>&1 ||
        rc=$?
    collect_json_lines "$name" "$OUT/logs/$name.log"
    jq -n --arg n "$name" --argjson rc "$rc" \
        --arg tail "$(grep -v '^{"ts":' "$OUT/logs/$name.log" | tail -n 25)" \
        '{name: $n, exit: $rc, timed_out: ($rc == 124), output_tail: $tail}' \
        >>"$OUT/external.jsonl"
    if ((rc == 124)); then
        note "$name did not finish within ${limit_s} s (log: $OUT/logs/$name.log)"
    elif ((rc != 0)); then
        note "$name exited with $rc (log: $OUT/logs/$name.log)"
    fi
    tail -n 3 "$OUT/logs/$name.log" | sed 's/^/      /' >&2
}

# external_scenarios: the bench programs other parts of the project add (bench/ws_bench for
# WebSocket fan-out, bench/executor_bench and bench/engine*bench* for executions), run when built,
# each bounded by ext_timeout_s. They get the bench's environment (services, contracts, this
# intentd as BENCH_URL with the loadgen state in BENCH_STATE); "json: {...}" lines they print
# become figures, and the tail of their output goes into the report.
external_scenarios() {
    local found=0 exe name args limit_s
    for exe in "$BUILD"/bench/ws_bench "$BUILD"/bench/executor*bench* "$BUILD"/bench/engine*bench*; do
        [[ -x $exe && -f $exe ]] || continue
        found=1
        name=$(basename "$exe")
        # sizes that fit the run's time budget (their own defaults are for a run of their own)
        args=() limit_s=$ext_timeout_s
        case $name:$profile in
        ws_bench:quick) args=(2000 200 500 3) ;;
        executor_bench:quick) args=(100) ;;
        # 10,000 due at once, plain sender and executor on the same anvil each pass: anvil's
        # default 30M gas (the chain's ceiling), then 1G gas per block (block gas not the limit),
        # the latter at 4 points of anvil's 1 s block interval (executor_bench.c: "Why phases")
        executor_bench:standard)
            args=(10000 1 4000000 both 16000000 4) limit_s=$((2 * ext_timeout_s))
            ;;
        engine_due_bench:quick) args=(20000 2000 10 "$workers") ;;
        engine_due_bench:standard) args=(1000000 20000 30 "$workers") ;;
        esac
        run_external "$name" "$exe" "$limit_s" "${args[@]}"
        # and end to end through the intent engine (intents due at one second, their actors'
        # constraint reads and hand-over, then the executor): the figure issue #6 judges, on
        # 1G-gas blocks at the same 4 points of the block interval
        if [[ $name:$profile == executor_bench:standard ]]; then
            run_external executor_bench_engine "$exe" "$ext_timeout_s" \
                10000 1 16000000 1000000000 16000000 4 engine
        elif [[ $name:$profile == executor_bench:quick ]]; then
            run_external executor_bench_engine "$exe" "$ext_timeout_s" \
                100 1 16000000 1000000000 16000000 1 engine
        fi
    done
    if ((!found)); then
        note "bench/ws_bench, executor_bench and engine*bench* are not built: WebSocket fan-out and executions skipped"
    fi
}
