#!/usr/bin/env bash
# Single-row INSERT and primary-key SELECT through store/pg against pgbench with the same
# statements and the same number of connections, in one run. Uses DATABASE_URL if set, else
# starts a private PostgreSQL (scripts/services.sh, SERVICES_DIR=.local/bench-services) and stops
# it afterwards. Prints a table with the ratios and the command.
#
# usage: bench/store_bench.sh [seconds-per-run] [connections-per-worker]   (default 10 s, 4)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
per_worker="${2:-4}"
workers="${WORKERS:-2}"
connections=$((workers * per_worker))
actors="${ACTORS:-256}"
build="${BUILD_DIR:-build}"
PG_BIN=/usr/lib/postgresql/15/bin

[ -x "$build/bench/store_bench" ] || { echo "store_bench: build first (scripts/build.sh)" >&2; exit 1; }
started_pg=0
if [ -z "${DATABASE_URL:-}" ]; then
    export SERVICES_DIR=$PWD/.local/bench-services
    started_pg=1
    trap 'scripts/services.sh stop pg >/dev/null' EXIT
    scripts/services.sh start pg
    # shellcheck source=/dev/null
    . "$SERVICES_DIR.env"
fi

psql_q() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" "$@"; }
psql_q -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS bench_kv" \
    -c "CREATE TABLE bench_kv (id bigserial PRIMARY KEY, v text NOT NULL)" \
    -c "INSERT INTO bench_kv (v) SELECT md5(i::text) FROM generate_series(1, 100000) i" \
    -c "VACUUM ANALYZE bench_kv"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [ "$started_pg" = 1 ] && scripts/services.sh stop pg >/dev/null || true' EXIT
printf '\\set id random(1, 100000)\nINSERT INTO bench_kv (v) VALUES (:id);\n' >"$tmp/insert.sql"
printf '\\set id random(1, 100000)\nSELECT v FROM bench_kv WHERE id = :id;\n' >"$tmp/select.sql"

pgbench_rate() { # pgbench_rate SCRIPT -> transactions per second (prepared statements)
    "$PG_BIN/pgbench" -n -M prepared -c "$connections" -j "$workers" -T "$seconds" \
        -f "$1" "$DATABASE_URL" 2>/dev/null | awk '/^tps = / {printf "%.0f\n", $3}'
}

pg_insert=$(pgbench_rate "$tmp/insert.sql")
pg_select=$(pgbench_rate "$tmp/select.sql")
st_insert=$("$build/bench/store_bench" insert "$seconds" "$workers" "$per_worker" "$actors")
st_select=$("$build/bench/store_bench" select "$seconds" "$workers" "$per_worker" "$actors")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo
echo "single-row statements, $connections connections ($workers workers x $per_worker), ${seconds}s each, $(nproc) CPUs"
printf '| %-22s | %14s | %14s | %8s |\n' "statement" "pgbench q/s" "store/pg q/s" "ratio"
printf '|%s|%s|%s|%s|\n' "------------------------" "----------------" "----------------" "----------"
printf '| %-22s | %14s | %14s | %8s |\n' "INSERT" "$pg_insert" "$st_insert" "$(ratio "$st_insert" "$pg_insert")"
printf '| %-22s | %14s | %14s | %8s |\n' "SELECT by primary key" "$pg_select" "$st_select" "$(ratio "$st_select" "$pg_select")"
echo "target: >= 0.90 of pgbench at the same connection count"
echo "pgbench: pgbench -n -M prepared -c $connections -j $workers -T $seconds -f <script>; store/pg: $actors actors, pipelined"
echo "json: {\"name\":\"pg_insert_ratio\",\"value\":$(ratio "$st_insert" "$pg_insert")}"
echo "json: {\"name\":\"pg_select_ratio\",\"value\":$(ratio "$st_select" "$pg_select")}"
echo "command: bench/store_bench.sh $seconds $per_worker"
