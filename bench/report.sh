# The report of bench/run.sh (sourced by bench/lib.sh): results.json, the terminal table, the
# gnuplot charts and docs/benchmarks.md, all from $OUT/runs/*.json, $OUT/figures.jsonl,
# $OUT/notes.jsonl and $OUT/machine.json.
# shellcheck shell=bash disable=SC2154 # the settings are bench/run.sh's globals

# The ratios and targets (issues #5 and #6, and the design notes), computed from the runs and
# the bench programs' "json:" figures in jq.
# shellcheck disable=SC2016
RATIOS_JQ='
  def rps(n): (.runs[n].throughput_per_s // null);
  def answered(n): (.runs[n] | if . then "\(.ok) answered\(if (.answer_bytes_mean // 0) > 0 then " (\(.answer_bytes_mean | round) bytes each, head and body)" else "" end), \(.errors) errors, \(.unanswered // 0) unanswered at the end" + (if .send_late then "; the generator sent p99 \(.send_late.p99_us / 1000) ms late and used \(.generator_cpu_s * 100 | round / 100) CPU-s" else "" end) else "not run" end);
  def ratio(a; b): (if rps(a) and rps(b) and rps(b) > 0 then rps(a) / rps(b) else null end);
  def fig(n): ([.micro[] | select(.name == n) | .value] | first);
  def at_most(v; t): (if v == null then false else v <= t end);
  # an open-loop scenario run in rounds: NAME, NAME_r2, NAME_r3...; a round with no answer
  # counts as unbounded, so that a failed round cannot make the median look better
  def round_names(n): ([.runs | keys[] | select(. == n or startswith(n + "_r"))] | sort);
  def round_p99(n): (if (.runs[n].ok // 0) > 0 then .runs[n].latency.p99_us / 1000 else 1e9 end);
  def median_p99(n): ([round_names(n)[] as $k | round_p99($k)] | sort
    | if length == 0 then null else .[(length - 1) / 2 | floor] end);
  def round_p99s(n): ([round_names(n)[] as $k | round_p99($k) | if . >= 1e9 then "none answered" else (. * 100 | round / 100 | tostring) end] | join(" / ") + " ms");
  def floor_ratios(n): (
    [round_names(n)[] as $k | ($k | sub("^[a-z]+_"; "hello_")) as $bk
       | if (.runs[$bk].ok // 0) > 0 and round_p99($k) < 1e9 then (round_p99($k) / round_p99($bk) * 10 | round / 10 | tostring) else "-" end]
    | join(" / "));
  def host_stalls: (. as $root | [round_names("hello_open_half_bare")[]
    | sub("^hello_open_half_bare"; "") as $s
    | "\($root | fig("machine_stall_ms_per_cpu_s" + $s) // "?") ms per CPU-second (longest \($root | fig("machine_stall_longest_ms" + $s) // "?") ms)"]
    | join(" / "));
  # how busy the machine'"'"'s CPUs were over each round'"'"'s measured window (loadgen reads
  # /proc/stat), and the host'"'"'s share of their time
  def machine_busy(n): ([round_names(n)[] as $k | .runs[$k].machine_cpu
    | if . then "\(.busy * 100 | round) % (steal \(.steal * 1000 | round / 10) %)" else "?" end]
    | join(" / "));
  # an intentd scenario'"'"'s rounds at half the bare rate, beside the bare server'"'"'s
  def vs_floor(n): ("rounds \(round_p99s(n)), \(floor_ratios(n)) x the bare server'"'"'s p99 of the same round; the machine'"'"'s CPUs were busy \(machine_busy(n)); \(answered(n)) (round 1)");
  def open_pass(n): ((median_p99(n) // 1e9) <= 2 and
    ([round_names(n)[] as $k | .runs[$k] | (.errors // 1) + (.unanswered // 1)] | add // 1) == 0);
  [
    {name: "intentd /healthz vs bare h2o (req/s)", value: ratio("healthz"; "hello_bare"),
     target: ">= 0.90", pass: ((ratio("healthz"; "hello_bare") // 0) >= 0.9)},
    {name: "GET /api/intents/:id vs bare h2o (req/s)", value: ratio("get_closed"; "hello_bare"),
     target: ">= 0.50", pass: ((ratio("get_closed"; "hello_bare") // 0) >= 0.5)},
    {name: "GET /api/intents vs bare h2o (req/s)", value: ratio("list_closed"; "hello_bare"),
     target: ">= 0.50", pass: ((ratio("list_closed"; "hello_bare") // 0) >= 0.5)},
    {name: "bare h2o p99 at a tenth of its own rate (ms, median of the rounds): what this machine holds under light load",
     value: median_p99("hello_open_tenth_bare"), target: "-", pass: null,
     detail: "rounds \(round_p99s("hello_open_tenth_bare")); the machine'"'"'s CPUs were busy \(machine_busy("hello_open_tenth_bare")); \(answered("hello_open_tenth_bare")) (round 1)"},
    {name: "bare h2o p99 at half its own rate (ms, median of the rounds): the floor for the two below",
     value: median_p99("hello_open_half_bare"), target: "-", pass: null,
     detail: "rounds \(round_p99s("hello_open_half_bare")); the machine'"'"'s CPUs were busy \(machine_busy("hello_open_half_bare")), the generator'"'"'s share included; \(answered("hello_open_half_bare")) (round 1); just before each round the host took \(host_stalls) (bench/stall_probe)"},
    {name: "GET /api/intents/:id p99 at half the bare h2o rate (ms, median of the rounds)",
     value: median_p99("get_open_half_bare"), target: "<= 2", pass: open_pass("get_open_half_bare"),
     detail: vs_floor("get_open_half_bare")},
    {name: "GET /api/intents p99 at half the bare h2o rate (ms, median of the rounds)",
     value: median_p99("list_open_half_bare"), target: "<= 2", pass: open_pass("list_open_half_bare"),
     detail: vs_floor("list_open_half_bare")},
    {name: "POST /api/intents vs pgbench, same INSERT (req/s)",
     value: ratio("create_closed"; "pgbench_insert"), target: ">= 0.80",
     pass: ((ratio("create_closed"; "pgbench_insert") // 0) >= 0.8)},
    {name: "executions end to end (intents due -> confirmed) vs the plain sender'"'"'s intake, 1G-gas pass (issue #6)",
     value: fig("executor_engine_ratio_to_plain_intake_large_gas"), target: ">= 0.90",
     pass: ((fig("executor_engine_ratio_to_plain_intake_large_gas") // 0) >= 0.9),
     detail: "through the intent engine (actors, constraint reads, hand-over, executor); \(if fig("executor_engine_ratio_worst_phase_large_gas") then "mean of passes due at evenly spaced points of the 1 s block interval; worst pass \(fig("executor_engine_ratio_worst_phase_large_gas"))" else "one pass, due right after a block" end); from the executor'"'"'s queue alone: \(fig("executor_ratio_to_plain_intake_large_gas") // "-") (worst pass \(fig("executor_ratio_worst_phase_large_gas") // "-"))"},
    {name: "due-time lateness p99 with the scheduled intents below (ms)",
     value: fig("engine_due_lateness_p99_ms"), target: "<= 10",
     pass: at_most(fig("engine_due_lateness_p99_ms"); 10),
     detail: "\(fig("engine_scheduled_intents") // "no") intents scheduled"},
    {name: "RSS of the engine with those intents (MiB)", value: fig("engine_rss_mib"),
     target: "<= 1024", pass: at_most(fig("engine_rss_mib"); 1024),
     detail: "whole process, \(fig("engine_scheduled_intents") // "no") intents"}
  ]'

# assemble_results: every figure in one document.
assemble_results() {
    local runs=() f
    for f in "$OUT"/runs/*.json; do [[ -f $f ]] && runs+=("$f"); done
    jq -n --slurpfile machine "$OUT/machine.json" \
        --slurpfile figures <(cat "$OUT/figures.jsonl" 2>/dev/null || true) \
        --slurpfile notes <(cat "$OUT/notes.jsonl" 2>/dev/null || true) \
        --slurpfile external <(cat "$OUT/external.jsonl" 2>/dev/null || true) \
        --slurpfile runs <(cat "${runs[@]}" 2>/dev/null || true) \
        --arg command "$command_line" --arg profile "$profile" --argjson dur "$dur" \
        --argjson warm "$warm" --argjson workers "$workers" --argjson users "$users" \
        --arg load_end "$(cut -d' ' -f1-3 /proc/loadavg)" --argjson elapsed $((SECONDS - started_s)) \
        '{command: $command, profile: $profile, duration_s: $dur, warmup_s: $warm,
          server_workers: $workers, users: $users, elapsed_s: $elapsed,
          machine: ($machine[0] + {load_average_at_end: $load_end}),
          micro: $figures, notes: [$notes[].note], external: $external,
          runs: ($runs | map({key: .name, value: .}) | from_entries)}
         | . + {targets: ('"$RATIOS_JQ"')}'
}

# The rows of the scenario table: name, mode, connections, rate, req/s, p50, p99, p99.9, errors.
# shellcheck disable=SC2016
ROWS_JQ='
  .runs as $r
  | (["hello_bare", "healthz", "get_closed", "list_closed"]
     # the open-loop rounds, however many ran: round by round, bare h2o at a tenth and at half
     # its rate, GET, list
     + (["hello_open_tenth_bare", "hello_open_half_bare", "get_open_half_bare",
         "list_open_half_bare"] as $order
        | [$r | keys[] | {name: ., round: (capture("_r(?<n>[0-9]+)$").n // "1" | tonumber),
                          at: (sub("_r[0-9]+$"; "") as $k | $order | index($k))}
           | select(.at != null)]
        | sort_by([.round, .at]) | map(.name))
     + ["get_open_half_own", "list_open_half_own", "create_closed", "pgbench_insert",
        "signin_closed", "anvil_rawtx", "mixed_closed", "mixed_open_half"])[]
  | select($r[.]) | $r[.] as $x
  | [$x.name, $x.mode, ($x.connections | tostring),
     (if ($x.rate_per_s // 0) > 0 then ($x.rate_per_s | floor | tostring) else "-" end),
     ($x.throughput_per_s | floor | tostring),
     ($x.latency.p50_us / 1000 | tostring), ($x.latency.p99_us / 1000 | tostring),
     ($x.latency.p999_us / 1000 | tostring), (($x.errors // 0) + ($x.dropped // 0) + ($x.unanswered // 0) | tostring)]
  | @tsv'

print_table() {
    echo
    echo "$command_line: $(jq -r '.machine | "\(.nproc) CPUs (\(.cpu_model)), \(.kernel), load at start \(.load_average_at_start)"' "$1")"
    printf '%-24s %-6s %5s %7s %9s %9s %9s %9s %7s\n' scenario mode conns rate/s "ok/s" \
        "p50 ms" "p99 ms" "p99.9 ms" errors
    jq -r "$ROWS_JQ" "$1" | while IFS=$'\t' read -r n m c r t p50 p99 p999 e; do
        printf '%-24s %-6s %5s %7s %9s %9.3f %9.3f %9.3f %7s\n' "$n" "$m" "$c" "$r" "$t" \
            "$p50" "$p99" "$p999" "$e"
    done
    echo
    jq -r '.targets[] | "\(if .pass == null then "REF " elif .pass then "PASS" else "MISS" end)  \(.name): \(if .value == null then "n/a" else (.value * 1000 | round / 1000) end) (target \(.target))\(if .detail then "; " + .detail else "" end)"' "$1"
    jq -r '.micro[] | "micro  \(.name): \(.value) \(.unit // "")"' "$1"
    jq -r '.notes[] | "note   \(.)"' "$1"
}

# latency_data RESULTS RUN: "x latency_ms" points of the percentile plot, x = 1 / (1 - q).
latency_data() {
    jq -r --arg n "$2" '.runs[$n].latency as $l | select($l.buckets) | $l.count as $t
        | foreach $l.buckets[] as $b (0; . + $b[1]; [., $b[0]])
        | select(.[0] < $t) | "\(1 / (1 - (.[0] / $t))) \(.[1] / 1000)"' "$1"
}

# plot_latency RESULTS FILE TITLE RUN...: percentile distribution of some runs, one line each.
plot_latency() {
    local res=$1 file=$2 title=$3 dir plots=() n
    shift 3
    dir=$(dirname "$file")
    for n in "$@"; do
        latency_data "$res" "$n" >"$dir/.lat_$n.dat"
        [[ -s $dir/.lat_$n.dat ]] && plots+=("'$dir/.lat_$n.dat' using 1:2 with steps lw 2 title '$n'")
    done
    ((${#plots[@]} > 0)) || return 0
    local IFS=,
    gnuplot <<GP
set terminal svg size 900,500 dynamic font "sans,11" noenhanced
set output '$file'
set title "$title"
set logscale xy
set xrange [1:100000]
set xtics ("0%%" 1, "50%%" 2, "90%%" 10, "99%%" 100, "99.9%%" 1000, "99.99%%" 10000, "99.999%%" 100000)
set xlabel "percentile"
set ylabel "latency (ms)"
set grid
set key top left
plot ${plots[*]}
GP
}

# plot_timeline RESULTS FILE TITLE FIELD YLABEL RUN...: field FIELD of each 100 ms bin of the
# runs' timeline_per_s ([s, ok/s, err/s, slowest ms]) over their measured time.
plot_timeline() {
    local res=$1 file=$2 title=$3 field=$4 ylabel=$5 dir plots=() n
    shift 5
    dir=$(dirname "$file")
    for n in "$@"; do
        jq -r --arg n "$n" --argjson f "$field" '.runs[$n].timeline_per_s // [] | .[] |
            select(length > $f) | "\(.[0]) \(.[$f])"' "$res" >"$dir/.tl_${field}_$n.dat"
        [[ -s $dir/.tl_${field}_$n.dat ]] &&
            plots+=("'$dir/.tl_${field}_$n.dat' using 1:2 with lines lw 2 title '$n'")
    done
    ((${#plots[@]} > 0)) || return 0
    local IFS=,
    gnuplot <<GP
set terminal svg size 900,500 dynamic font "sans,11" noenhanced
set output '$file'
set title "$title"
set logscale y
set xlabel "seconds into the measured period"
set ylabel "$ylabel"
set grid
set key outside right
plot ${plots[*]}
GP
}

# plot_throughput RESULTS FILE TITLE RUN...: answers per second over each run's measured time.
plot_throughput() {
    local res=$1 file=$2 title=$3
    shift 3
    plot_timeline "$res" "$file" "$title" 1 "answers per second (100 ms bins)" "$@"
}

# plot_stalls RESULTS FILE TITLE RUN...: the slowest answer of each 100 ms over each run's
# measured time. A tail made of stalls shows as spikes (periodic ones point at a timer or an
# expiry); a tail spread evenly shows as a raised floor.
plot_stalls() {
    local res=$1 file=$2 title=$3
    shift 3
    plot_timeline "$res" "$file" "$title" 3 "slowest answer in each 100 ms (ms)" "$@"
}

charts() {
    command -v gnuplot >/dev/null || return 0
    local res=$1 dir=$2
    rm -f "$dir"/*.svg
    plot_latency "$res" "$dir/latency_reads.svg" "Reads, closed loop: latency by percentile" \
        hello_bare healthz get_closed list_closed
    plot_latency "$res" "$dir/latency_open.svg" "Open loop (latency from the intended send time)" \
        hello_open_tenth_bare hello_open_half_bare get_open_half_bare list_open_half_bare get_open_half_own \
        list_open_half_own mixed_open_half
    plot_latency "$res" "$dir/latency_writes.svg" "Writes, sign-in, anvil: latency by percentile" \
        create_closed signin_closed anvil_rawtx mixed_closed
    plot_throughput "$res" "$dir/throughput_reads.svg" "Throughput over time: reads" hello_bare \
        healthz get_closed list_closed
    plot_throughput "$res" "$dir/throughput_writes.svg" "Throughput over time: writes, sign-in, anvil" \
        create_closed pgbench_insert signin_closed anvil_rawtx mixed_closed
    plot_stalls "$res" "$dir/stalls_open.svg" "Open loop: the slowest answer per 100 ms" \
        hello_open_half_bare get_open_half_bare list_open_half_bare get_open_half_own \
        list_open_half_own
    rm -f "$dir"/.lat_*.dat "$dir"/.tl_*.dat
}

# write_doc RESULTS: docs/benchmarks.md, regenerated.
write_doc() {
    local res=$1
    cat <<'MD'
# Benchmarks

<!-- Generated by bench/run.sh from .local/bench/results.json: edit bench/report.sh, not this
     file. -->

One command load-tests intentd the way its users load it, with every baseline measured in the
same run, on the same machine, one after the other:

```
bench/run.sh            # the standard run: 10 s per scenario, about 11 minutes on 2 cores
bench/run.sh --quick    # a smoke test: 3 s per scenario (does not rewrite this page)
```

It builds the release, starts its own PostgreSQL, Redis and anvil (`scripts/services.sh`,
`SERVICES_DIR=.local/bench-services`, wiped first), deploys the intent registry and the test
USDC as the run command does, starts intentd on a free port, runs the scenarios below, stops
everything, and writes `.local/bench/results.json` (every figure, every latency histogram,
throughput and the slowest answer per 100 ms, the machine), SVG charts
(`.local/bench/charts/`, copied to `docs/benchmarks/`) and this page. `BUILD_DIR=dir` uses another CMake tree; `--no-build` skips
the build.

## How the load is made

`bench/loadgen` (C, one thread, one io_uring, keep-alive HTTP/1.1 connections with one request
in flight each) behaves like users: wallets derived from a seed (keccak256(seed || i)) sign in
with the server's EIP-4361 message and an EIP-191 signature, create intents with an inline
EIP-712 signature (pre-signed before the run, so the generator's secp256k1 does not compete with
the server; the server verifies every one), read them and list them with their session.
Every request says `Accept-Encoding: gzip, deflate, br, zstd`, as a browser's fetch does, so the
API's large reads come back gzip-coded as they do to the frontend (`--accept-encoding ''` sends
none); the bare server ignores the header. The bytes per answer are given with each open-loop
figure. Closed loop: every connection sends its next request as soon as the last one is answered.
Open loop: requests arrive at a constant rate whatever the server does, and latency counts from
each request's intended send time, so a stall shows in full (no coordinated omission; a bounded
backlog counts what it cannot hold as dropped). Latencies go into log-linear histograms (64
sub-buckets per power of two, within 1.6 %). Each run has a warm-up that is not counted.

Reading the table: `ok/s` counts 2xx answers over the measured period and the percentiles are
theirs; `errors` adds up non-2xx answers, tasks lost with a failed connection, open-loop
arrivals the bounded queue refused, and requests still unanswered when the run ended. An
open-loop rate above what the server sustains makes every later request wait longer, so most
arrivals end unanswered and the few answered ones have latencies of seconds: that is the honest
figure for that load (a closed-loop generator would have slowed down and hidden it). The
machine's other load is recorded with the figures; on a shared 2-core machine the ratios move
by tens of percent from run to run, so compare runs made on a quiet machine.

Scenarios: runtime and chain micro-benchmarks; the bare libh2o hello-world (`bench/h2o_hello`,
the same worker count) and intentd's `/healthz` (intentd runs with its engine, as
`scripts/run.sh` starts it: every intent created gets its actor); authenticated `GET /api/intents/:id` and `GET
/api/intents?limit=20` in closed loop at the same connection count as the bare server, then in
open loop at half the bare server's rate, in three rounds of bare server, GET, list at that same
rate (the figure is the median round, beside the bare server's p99 of the same round: the host's
share of a 2-vCPU machine changes from minute to minute, which `bench/stall_probe` records just
before each round; each round starts with the bare server at a tenth of its rate, what p99 the
machine holds under light load; and `loadgen` records how busy the machine's CPUs were in each
run, its own share included, since it runs on the server's CPUs), and at half their own rate; `POST /api/intents` against pgbench running the same INSERT
statement (the intent row, its audit row, the columns back; prepared) at the same concurrency;
sign-in (nonce, then signed message); WebSocket fan-out and executions through the programs
their authors wrote (`bench/ws_bench`, `bench/executor_bench`, `bench/engine*bench*`) when they
are built, each bounded in time (the executions' judged figure is end to end through the intent
engine, `executor_bench ... engine`: 10,000 intents due at one second, their actors' constraint
reads and hand-over, then the executor, to every row confirmed; the mean of four bursts due at 0,
0.25, 0.5 and 0.75 s into anvil's 1 s block interval, each against its own plain sender on its
own anvil; the same from the executor's queue alone is measured beside it; see
executor_bench.c); a mixed workload (get 70 %, list 15 %, create 10 %,
sign-in 5 %) in closed loop and in open loop at half its closed-loop rate; and last, anvil
taking pre-signed EIP-1559 transfers from eight wallets with `eth_sendRawTransaction` (last
because anvil then spends a core for minutes on the transfers left in its pool).

The older single-purpose scripts still work on their own: `bench/http_bench.sh` (wrk against
`/healthz`), `bench/store_bench.sh` (store/pg against pgbench), `bench/rpc_bench.sh` (chain/rpc
against wrk on anvil).

MD
    echo "## Latest results"
    echo
    jq -r '"Measured \(.machine.date) at commit `\(.machine.commit)` with `\(.command)` (\(.elapsed_s) s), \(.server_workers) server workers, \(.users) signed-in wallets, \(.duration_s) s per run after \(.warmup_s) s of warm-up."' "$res"
    echo
    jq -r '.machine | "Machine: \(.nproc) CPUs (\(.cpu_model)), \(.memory_bytes / 1073741824 * 10 | round / 10) GiB, \(.kernel) \(.arch), \(.os), PostgreSQL \(.postgresql). Load average at start \(.load_average_at_start), at end \(.load_average_at_end)."' "$res"
    echo
    echo "| scenario | mode | conns | rate/s | ok/s | p50 ms | p99 ms | p99.9 ms | errors |"
    echo "|---|---|--:|--:|--:|--:|--:|--:|--:|"
    jq -r "$ROWS_JQ" "$res" | awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %.3f | %.3f | %.3f | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9}'
    echo
    echo "### Targets"
    echo
    echo "| figure | value | target | | |"
    echo "|---|--:|--:|---|---|"
    jq -r '.targets[] | "| \(.name) | \(if .value == null then "n/a" else (.value * 1000 | round / 1000) end) | \(.target) | \(if .pass == null then "reference" elif .pass then "met" else "**missed**" end) | \(.detail // "") |"' "$res"
    echo
    echo "### Micro-benchmarks"
    echo
    echo "| figure | value | unit |"
    echo "|---|--:|---|"
    jq -r '.micro[] | "| \(.name) | \(.value) | \(.unit // "") |"' "$res"
    echo
    if [[ $(jq '.notes | length' "$res") != 0 ]]; then
        echo "### Notes"
        echo
        jq -r '.notes[] | "- \(.)"' "$res"
        echo
    fi
    if [[ $(jq '.external | length' "$res") != 0 ]]; then
        echo "### WebSocket fan-out and end-to-end executions"
        echo
        echo "Their own programs, run by the bench (the last lines of their output):"
        echo
        jq -r '.external[] | "`\(.name)` (exit \(.exit)):\n\n```\n\(.output_tail)\n```\n"' "$res"
    fi
    echo "### Charts"
    echo
    local svg
    for svg in latency_reads latency_open stalls_open latency_writes throughput_reads \
        throughput_writes; do
        [[ -f $OUT/charts/$svg.svg ]] && echo "![$svg](benchmarks/$svg.svg)" && echo
    done
    true
}
