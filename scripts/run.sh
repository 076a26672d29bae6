#!/usr/bin/env bash
# THE run command for a fresh machine: installs dependencies, builds build/intentd (release),
# starts local PostgreSQL, Redis and anvil (scripts/services.sh) for each of DATABASE_URL,
# REDIS_URL and RPC_URL that is not already set, writes the settings to .local/intentd.env and
# runs intentd in the foreground on PORT (default 8080). Ctrl-C or SIGTERM is passed on to
# intentd so that it shuts down gracefully; then the services this script started are stopped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BIN=$ROOT/build/intentd
ENV_FILE=$ROOT/.local/intentd.env
export SERVICES_DIR=${SERVICES_DIR:-$ROOT/.local/services}
[[ $SERVICES_DIR == /* ]] || SERVICES_DIR=$ROOT/$SERVICES_DIR

die() {
    echo "run: $*" >&2
    exit 1
}

scripts/deps.sh
scripts/build.sh release
[[ -x $BIN ]] || die "$BIN was not built"

# ---- local services for whatever is not configured --------------------------------------------
need=()
[[ -n ${DATABASE_URL:-} ]] || need+=(pg)
[[ -n ${REDIS_URL:-} ]] || need+=(redis)
[[ -n ${RPC_URL:-} ]] || need+=(anvil)

# Only what this script starts is stopped on exit; services already running are left alone.
ours=()
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
    if ((${#ours[@]} > 0)); then
        scripts/services.sh stop "${ours[@]}" || echo "run: could not stop ${ours[*]}" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ((${#need[@]} > 0)); then
    running=$(scripts/services.sh status)
    for name in "${need[@]}"; do
        [[ $'\n'$running == *$'\n'"$name: running"* ]] || ours+=("$name")
    done
    scripts/services.sh start "${need[@]}"
    # Take from the services' env file only the variables this run asked for.
    while IFS= read -r line; do
        [[ $line =~ ^export\ (DATABASE_URL|REDIS_URL|RPC_URL|CHAIN_ID)=(.*)$ ]] || continue
        var=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
        case $var in
        DATABASE_URL) [[ " ${need[*]} " == *" pg "* ]] || continue ;;
        REDIS_URL) [[ " ${need[*]} " == *" redis "* ]] || continue ;;
        RPC_URL | CHAIN_ID) [[ " ${need[*]} " == *" anvil "* ]] || continue ;;
        esac
        export "$var=$value"
    done <"$SERVICES_DIR.env"
fi

if [[ -z ${CHAIN_ID:-} ]]; then
    CHAIN_ID=$(curl -fsS -m 10 -H 'Content-Type: application/json' \
        --data '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' "$RPC_URL" |
        jq -r '.result // empty') || true
    [[ $CHAIN_ID == 0x* ]] || die "could not read eth_chainId from RPC_URL; set CHAIN_ID"
    CHAIN_ID=$((CHAIN_ID))
fi
export DATABASE_URL REDIS_URL RPC_URL CHAIN_ID

# ---- development secrets -----------------------------------------------------------------------
# Drawn once per checkout and kept (mode 600) so that sessions and encrypted e-mail addresses
# survive a restart; a JWT_SECRET or DATA_ENCRYPTION_KEY already in the environment wins.
SECRETS_FILE=$ROOT/.local/secrets.env
if [[ ! -s $SECRETS_FILE ]]; then
    (
        umask 077
        printf 'export JWT_SECRET=%s\nexport DATA_ENCRYPTION_KEY=%s\n' \
            "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" \
            "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" >"$SECRETS_FILE"
    )
fi
while IFS= read -r line; do
    [[ $line =~ ^export\ (JWT_SECRET|DATA_ENCRYPTION_KEY)=([0-9a-f]{64})$ ]] || continue
    [[ -n ${!BASH_REMATCH[1]:-} ]] || export "${BASH_REMATCH[1]}=${BASH_REMATCH[2]}"
done <"$SECRETS_FILE"

# ---- settings file ----------------------------------------------------------------------------
mkdir -p "$(dirname "$ENV_FILE")"
(
    umask 077
    {
        echo "# Written by scripts/run.sh; load with: . $ENV_FILE"
        for var in DATABASE_URL REDIS_URL RPC_URL CHAIN_ID; do
            printf 'export %s=%q\n' "$var" "${!var}"
        done
    } >"$ENV_FILE.tmp"
)

# >>> contract deployment hook >>>
# scripts/deploy-local.sh (comes with the chain work) deploys the contracts with the settings
# above in its environment and prints `export NAME=value` lines (e.g. INTENT_CONTRACT_ADDRESS,
# USDC_ADDRESS, REGISTRY_START_BLOCK: where the engine starts reading the registry's logs); those
# lines, and only those, are appended to the settings file.
if [[ -x scripts/deploy-local.sh ]]; then
    deploy_out=$(scripts/deploy-local.sh) || die "scripts/deploy-local.sh failed"
    {
        echo "# from scripts/deploy-local.sh"
        grep -E '^export [A-Za-z_][A-Za-z0-9_]*=' <<<"$deploy_out" || true
    } >>"$ENV_FILE.tmp"
fi
# <<< contract deployment hook <<<

mv -f "$ENV_FILE.tmp" "$ENV_FILE"
# shellcheck source=/dev/null
. "$ENV_FILE"
echo "intentd: settings written to $ENV_FILE"

# ---- intentd in the foreground ----------------------------------------------------------------
export PORT=${PORT:-8080}
# The engine's executor on the local chain is anvil's dev account 0 (api.md), whose key is public
# (anvil's default mnemonic); on any other chain PRIVATE_KEY must come from the environment, and
# without it intentd serves the API but executes nothing.
if [[ -z ${PRIVATE_KEY:-} && $CHAIN_ID == 31337 ]]; then
    export PRIVATE_KEY=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
fi
# Its own session, so that a terminal's Ctrl-C reaches it once, through the trap below.
setsid "$BIN" &
child=$!
trap 'kill -INT "$child" 2>/dev/null || true' INT
trap 'kill -TERM "$child" 2>/dev/null || true' TERM
while :; do
    status=0
    wait "$child" || status=$?
    kill -0 "$child" 2>/dev/null || break # else wait was interrupted by a forwarded signal
done
exit "$status"
