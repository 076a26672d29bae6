#!/usr/bin/env bash
# Starts, stops and reports private local servers for development and tests: PostgreSQL 15, Redis
# and an anvil chain node, each on a free 127.0.0.1 port, with data, logs and pid files under
# $SERVICES_DIR/<name>/ (default .local/services). After each command, "$SERVICES_DIR.env"
# (default .local/services.env) holds DATABASE_URL / REDIS_URL / RPC_URL / CHAIN_ID exports for
# the services that are running. Only processes recorded in its own pid files are ever stopped.
#
#   scripts/services.sh start [pg] [redis] [anvil]   (no names: all three; running ones are kept)
#   scripts/services.sh stop [names]                 (no names: all)
#   scripts/services.sh restart [names]             (stop and start again on the same port)
#   scripts/services.sh status
#   scripts/services.sh clean [names]                (stop, then delete their data)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

SERVICES_DIR=${SERVICES_DIR:-.local/services}
[[ $SERVICES_DIR == /* ]] || SERVICES_DIR=$ROOT/$SERVICES_DIR
SERVICES_DIR=${SERVICES_DIR%/}
ENV_FILE=$SERVICES_DIR.env
ALL=(pg redis anvil)

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_OS_USER=intentd-pg # PostgreSQL refuses to run as root
PG_DB=intentd
PG_ROLE=intentd
CHAIN_ID=31337
READY_TIMEOUT_S=60

die() {
    echo "services: $*" >&2
    exit 1
}

# fail_log NAME LOG MESSAGE: reports why NAME failed, with the tail of its log.
fail_log() {
    echo "services: $1: $3" >&2
    if [[ -s $2 ]]; then
        echo "--- last lines of $2:" >&2
        tail -n 30 "$2" >&2
    fi
    exit 1
}

# alive PID WORD: PID is a live (non-zombie) process whose command line contains WORD.
alive() {
    local pid=$1 word=$2 state cmdline
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]] || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmdline == *"$word"* ]]
}

# pid_of NAME: prints the pid of service NAME if it is running.
pid_of() {
    local pid
    case $1 in
    pg) pid=$(head -n 1 "$SERVICES_DIR/pg/data/postmaster.pid" 2>/dev/null) || return 1 ;;
    redis) pid=$(cat "$SERVICES_DIR/redis/redis.pid" 2>/dev/null) || return 1 ;;
    anvil) pid=$(cat "$SERVICES_DIR/anvil/anvil.pid" 2>/dev/null) || return 1 ;;
    esac
    local word=$1
    [[ $1 == pg ]] && word=postgres
    alive "$pid" "$word" && echo "$pid"
}

port_of() {
    cat "$SERVICES_DIR/$1/port" 2>/dev/null
}

# port_free PORT: nothing can be bound on 127.0.0.1:PORT right now.
port_free() {
    if ((HAVE_PYTHON)); then
        python3 -c 'import socket,sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' \
            "$1" 2>/dev/null
    elif (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
        return 1 # something listens there
    fi
}

# free_port: prints a free loopback port below the kernel's ephemeral range.
free_port() {
    local i port
    for ((i = 0; i < 200; i++)); do
        port=$((20000 + RANDOM % 12000))
        if port_free "$port"; then
            echo "$port"
            return 0
        fi
    done
    die "no free port found"
}

# port_taken_in_log LOG OFFSET: whether LOG, after byte OFFSET, says a port was taken.
port_taken_in_log() {
    # grep -c reads all its input (no SIGPIPE for tail under pipefail); status 0 if it matched.
    tail -c +"$(($2 + 1))" "$1" 2>/dev/null |
        grep -c -i -E 'address already in use|could not bind' >/dev/null
}

log_size() {
    stat -c %s "$1" 2>/dev/null || echo 0
}

# pick_port NAME ATTEMPT: on the first attempt, the port NAME had before (so that a restart keeps
# its clients' URLs valid), else a free one.
pick_port() {
    local recorded
    if (($2 == 1)) && recorded=$(cat "$SERVICES_DIR/$1/port" 2>/dev/null) &&
        [[ $recorded =~ ^[0-9]+$ ]]; then
        echo "$recorded"
    else
        free_port
    fi
}

# ---- PostgreSQL -------------------------------------------------------------------------------

as_pg() {
    (cd "$SERVICES_DIR/pg" && runuser -u "$PG_OS_USER" -- "$@")
}

pg_prepare() {
    local dir=$SERVICES_DIR/pg d
    [[ -x $PG_BIN/initdb ]] || die "pg: $PG_BIN/initdb not found (run scripts/deps.sh)"
    if ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
            --user-group "$PG_OS_USER" 2>/dev/null || id -u "$PG_OS_USER" >/dev/null 2>&1 ||
            die "pg: could not create system user $PG_OS_USER"
    fi
    mkdir -p "$dir"
    chown "$PG_OS_USER:" "$dir"
    chmod 700 "$dir"
    # The server user must be able to traverse every parent (e.g. a repo under /root): add
    # search (x) permission only, where it is missing.
    d=$(dirname "$dir")
    while [[ $d != / ]]; do
        if ! runuser -u "$PG_OS_USER" -- test -x "$d"; then
            chmod o+x "$d"
            echo "services: pg: added o+x to $d so that $PG_OS_USER can reach $dir" >&2
        fi
        d=$(dirname "$d")
    done
    runuser -u "$PG_OS_USER" -- test -w "$dir" || die "pg: $PG_OS_USER cannot write $dir"
}

pg_init() {
    local dir=$SERVICES_DIR/pg data=$SERVICES_DIR/pg/data
    [[ -f $data/PG_VERSION ]] && return 0
    rm -rf "$data"
    as_pg "$PG_BIN/initdb" -D "$data" -U "$PG_ROLE" --auth=trust -E UTF8 --locale=C \
        --no-instructions >"$dir/initdb.log" 2>&1 || fail_log pg "$dir/initdb.log" "initdb failed"
    cat >>"$data/postgresql.conf" <<'EOF'

# --- intentd (scripts/services.sh): private dev/test cluster ---
listen_addresses = '127.0.0.1'
fsync = on                  # money data: keep durability semantics even in tests
synchronous_commit = on
full_page_writes = on
shared_buffers = 128MB
max_connections = 200
log_min_messages = warning
include_if_exists = 'intentd-port.conf'   # port and socket dir, rewritten on each start
EOF
}

pg_start() {
    local dir=$SERVICES_DIR/pg data=$SERVICES_DIR/pg/data log=$SERVICES_DIR/pg/postgres.log
    local attempt port offset sockdir i
    pg_prepare
    pg_init
    rm -f "$data/postmaster.pid" # stale: pid_of said it is not running
    for attempt in 1 2 3; do
        port=$(pick_port pg "$attempt")
        sockdir=$data
        # A unix socket path must fit in 107 bytes; TCP is what we use anyway.
        ((${#sockdir} + 20 < 107)) || sockdir=
        printf "port = %s\nunix_socket_directories = '%s'\n" "$port" "$sockdir" \
            >"$data/intentd-port.conf"
        chown "$PG_OS_USER:" "$data/intentd-port.conf"
        offset=$(log_size "$log")
        if as_pg setsid -w "$PG_BIN/pg_ctl" -D "$data" -l "$log" -w -t "$READY_TIMEOUT_S" start \
            >"$dir/pg_ctl.log" 2>&1; then
            break
        fi
        port_taken_in_log "$log" "$offset" && ((attempt < 3)) && continue
        cat "$dir/pg_ctl.log" >>"$log"
        stop_one pg
        fail_log pg "$log" "did not start"
    done
    for ((i = 0; i < READY_TIMEOUT_S * 4; i++)); do
        "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 1 && break
        sleep 0.25
    done
    if ! "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 1; then
        stop_one pg
        fail_log pg "$log" "not ready after ${READY_TIMEOUT_S}s"
    fi
    if [[ $("$PG_BIN/psql" -X -h 127.0.0.1 -p "$port" -U "$PG_ROLE" -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'") != 1 ]]; then
        "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U "$PG_ROLE" "$PG_DB" >>"$log" 2>&1 ||
            fail_log pg "$log" "createdb $PG_DB failed"
    fi
    echo "$port" >"$dir/port"
}

pg_stop() {
    local data=$SERVICES_DIR/pg/data
    as_pg "$PG_BIN/pg_ctl" -D "$data" stop -m fast -w -t 60 >/dev/null 2>&1 ||
        as_pg "$PG_BIN/pg_ctl" -D "$data" stop -m immediate -w -t 30 >/dev/null 2>&1 ||
        die "pg: could not stop the server of $data"
}

# ---- Redis ------------------------------------------------------------------------------------

redis_start() {
    local dir=$SERVICES_DIR/redis log=$SERVICES_DIR/redis/redis.log attempt port offset i
    command -v redis-server >/dev/null || die "redis: redis-server not found (run scripts/deps.sh)"
    mkdir -p "$dir"
    rm -f "$dir/redis.pid"
    for attempt in 1 2 3; do
        port=$(pick_port redis "$attempt")
        cat >"$dir/redis.conf" <<EOF
# Written by scripts/services.sh on each start.
bind 127.0.0.1
port $port
protected-mode yes
daemonize yes
pidfile "$dir/redis.pid"
logfile "$log"
dir "$dir"
save ""
appendonly no
EOF
        offset=$(log_size "$log")
        setsid redis-server "$dir/redis.conf" >>"$log" 2>&1 </dev/null || true
        for ((i = 0; i < READY_TIMEOUT_S * 4; i++)); do
            if [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]] &&
                pid_of redis >/dev/null; then
                echo "$port" >"$dir/port"
                return 0
            fi
            # The daemonized server exits at once when it cannot listen (e.g. port taken).
            if ((i > 8)) && ! pid_of redis >/dev/null; then break; fi
            sleep 0.25
        done
        stop_one redis
        port_taken_in_log "$log" "$offset" && ((attempt < 3)) && continue
        fail_log redis "$log" "not ready after start"
    done
}

# ---- anvil ------------------------------------------------------------------------------------

# anvil_bin: the native binary from the npm platform package, so that the pid we record is anvil
# itself (node_modules/.bin/anvil is a node wrapper that spawns it).
anvil_bin() {
    local mods=$ROOT/.local/npm/node_modules arch
    case $(uname -m) in
    x86_64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) arch=$(uname -m) ;;
    esac
    for bin in "$mods/@foundry-rs/anvil-linux-$arch/bin/anvil" "$mods/@foundry-rs/anvil/dist/anvil" \
        "$mods/.bin/anvil"; do
        [[ -x $bin ]] && echo "$bin" && return 0
    done
    die "anvil: not installed in .local/npm (run scripts/deps.sh)"
}

anvil_start() {
    local dir=$SERVICES_DIR/anvil log=$SERVICES_DIR/anvil/anvil.log bin attempt port offset i reply
    local rpc='{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
    bin=$(anvil_bin)
    mkdir -p "$dir"
    for attempt in 1 2 3; do
        port=$(pick_port anvil "$attempt")
        rm -f "$dir/anvil.pid"
        offset=$(log_size "$log")
        # Own session: a Ctrl-C meant for run.sh must not kill it before the cleanup trap runs.
        # shellcheck disable=SC2016
        setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' anvil "$dir/anvil.pid" "$bin" \
            --host 127.0.0.1 --port "$port" --chain-id "$CHAIN_ID" >>"$log" 2>&1 </dev/null &
        for ((i = 0; i < READY_TIMEOUT_S * 4; i++)); do
            reply=$(curl -fsS -m 2 -H 'Content-Type: application/json' --data "$rpc" \
                "http://127.0.0.1:$port" 2>/dev/null) || reply=
            if [[ $reply == *'"result":"0x7a69"'* ]]; then
                echo "$port" >"$dir/port"
                return 0
            fi
            if ((i > 4)) && ! pid_of anvil >/dev/null; then break; fi
            sleep 0.25
        done
        port_taken_in_log "$log" "$offset" && ((attempt < 3)) && continue
        pid_of anvil >/dev/null || fail_log anvil "$log" "exited during start"
        stop_one anvil
        fail_log anvil "$log" "no answer to eth_chainId on 127.0.0.1:$port"
    done
}

# ---- commands ---------------------------------------------------------------------------------

# stop_pid NAME PIDFILE: SIGTERM the recorded process, SIGKILL after 20 s, then forget it.
stop_pid() {
    local pid i
    pid=$(pid_of "$1") || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 80; i++)); do
        pid_of "$1" >/dev/null || break
        sleep 0.25
    done
    if pid_of "$1" >/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$2"
}

stop_one() {
    pid_of "$1" >/dev/null || return 0
    case $1 in
    pg) pg_stop ;;
    redis) stop_pid redis "$SERVICES_DIR/redis/redis.pid" ;;
    anvil) stop_pid anvil "$SERVICES_DIR/anvil/anvil.pid" ;;
    esac
}

write_env() {
    local tmp=$ENV_FILE.tmp.$$ port
    : >"$tmp"
    if pid_of pg >/dev/null && port=$(port_of pg); then
        echo "export DATABASE_URL=postgresql://$PG_ROLE@127.0.0.1:$port/$PG_DB" >>"$tmp"
    fi
    if pid_of redis >/dev/null && port=$(port_of redis); then
        echo "export REDIS_URL=redis://127.0.0.1:$port/0" >>"$tmp"
    fi
    if pid_of anvil >/dev/null && port=$(port_of anvil); then
        echo "export RPC_URL=http://127.0.0.1:$port" >>"$tmp"
        echo "export CHAIN_ID=$CHAIN_ID" >>"$tmp"
    fi
    if [[ -s $tmp ]]; then mv -f "$tmp" "$ENV_FILE"; else rm -f "$tmp" "$ENV_FILE"; fi
}

# names [NAME...]: sets todo to the named services, all of them if none is named.
names() {
    local n
    todo=()
    (($# > 0)) || set -- "${ALL[@]}"
    for n in "$@"; do
        case $n in
        pg | redis | anvil) todo+=("$n") ;;
        postgres | postgresql) todo+=(pg) ;;
        *) die "unknown service '$n' (pg, redis, anvil)" ;;
        esac
    done
}

lock() {
    mkdir -p "$SERVICES_DIR"
    chmod 755 "$SERVICES_DIR"
    exec 9>"$SERVICES_DIR/.lock"
    flock -w 300 9 || die "another services.sh holds $SERVICES_DIR/.lock"
}

cmd=${1:-}
shift || true
HAVE_PYTHON=0
python3 -c 'import socket' >/dev/null 2>&1 && HAVE_PYTHON=1

case $cmd in
start)
    names "$@"
    lock
    for n in "${todo[@]}"; do
        pid_of "$n" >/dev/null && continue
        "${n}_start" 9>&- # servers must not inherit the lock
    done
    write_env
    ;;
restart)
    names "$@"
    lock
    for n in "${todo[@]}"; do
        stop_one "$n"
        "${n}_start" 9>&-
    done
    write_env
    ;;
stop | clean)
    names "$@"
    [[ -d $SERVICES_DIR ]] || exit 0
    lock
    for n in "${todo[@]}"; do
        stop_one "$n"
        [[ $cmd == clean ]] && rm -rf "${SERVICES_DIR:?}/$n"
    done
    write_env
    ;;
status)
    for n in "${ALL[@]}"; do
        if pid=$(pid_of "$n"); then
            echo "$n: running, pid $pid, 127.0.0.1:$(port_of "$n")"
        else
            echo "$n: stopped"
        fi
    done
    [[ -f $ENV_FILE ]] && echo "env: $ENV_FILE"
    exit 0
    ;;
*)
    sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
