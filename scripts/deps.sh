#!/usr/bin/env bash
# Installs what intentd needs to build, test and run, and only what is missing: Debian packages
# (apt) and the npm tools anvil, solc and ethers (into the git-ignored .local/npm). A second run only
# checks, needs no network and takes about a second. Prints "deps: ok" or the errors.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Pinned npm tools. @foundry-rs/anvil's bin is a node wrapper (bin.mjs) that spawns the native
# binary from the platform package @foundry-rs/anvil-<os>-<arch>, an optional dependency.
ANVIL_VERSION=1.7.1
SOLC_VERSION=0.8.37
ETHERS_VERSION=6.17.0 # contract tests (contracts/test) and test fixtures (tests/fixtures)
NPM_DIR=.local/npm

PACKAGES=(build-essential cmake pkg-config clang-format clang-14 libclang-rt-14-dev liburing-dev
    libh2o-evloop-dev libwslay-dev libssl-dev libpq-dev libsecp256k1-dev libwolfssl-dev
    libhiredis-dev libcriterion-dev libjansson-dev zlib1g-dev postgresql postgresql-contrib
    redis-server wrk gnuplot-nox curl jq ca-certificates openssl python3)
# node 20 may come from outside Debian; never install apt's nodejs/npm over one on PATH.
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

die() {
    echo "deps: $*" >&2
    exit 1
}

# run_quiet LOG CMD...: runs CMD with its output in LOG; shows LOG and fails if CMD fails.
run_quiet() {
    local log=$1
    shift
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        die "failed: $*"
    fi
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    [[ $status == ii* ]] || missing+=("$pkg")
done
if ((${#missing[@]} > 0)); then
    ((EUID == 0)) || die "need root to install: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    run_quiet "$tmp/apt-update.log" apt-get update
    run_quiet "$tmp/apt-install.log" apt-get install -y --no-install-recommends "${missing[@]}"
fi

# npm_version PKG: the version of PKG installed in $NPM_DIR, or nothing.
npm_version() {
    local manifest="$NPM_DIR/node_modules/$1/package.json"
    if [[ -f $manifest ]]; then jq -r '.version // empty' "$manifest" 2>/dev/null || true; fi
}

anvil_ok() {
    [[ $(npm_version @foundry-rs/anvil) == "$ANVIL_VERSION" ]] &&
        "$NPM_DIR/node_modules/.bin/anvil" --version >/dev/null 2>&1
}
solc_ok() {
    [[ $(npm_version solc) == "$SOLC_VERSION" ]] &&
        "$NPM_DIR/node_modules/.bin/solcjs" --version >/dev/null 2>&1
}

ethers_ok() {
    [[ $(npm_version ethers) == "$ETHERS_VERSION" ]]
}

if ! anvil_ok || ! solc_ok || ! ethers_ok; then
    mkdir -p "$NPM_DIR"
    # --include=optional: the native anvil binary lives in an optional platform package.
    run_quiet "$tmp/npm.log" npm install --prefix "$NPM_DIR" --no-audit --no-fund --save-exact \
        --include=optional "@foundry-rs/anvil@$ANVIL_VERSION" "solc@$SOLC_VERSION" \
        "ethers@$ETHERS_VERSION"
    anvil_ok || die "$NPM_DIR/node_modules/.bin/anvil --version fails (is the optional package" \
        "@foundry-rs/anvil-<os>-<arch> installed? npm config omit=optional breaks it)"
    solc_ok || die "$NPM_DIR/node_modules/.bin/solcjs --version fails"
    ethers_ok || die "ethers $ETHERS_VERSION did not install into $NPM_DIR"
fi

echo "deps: ok"
