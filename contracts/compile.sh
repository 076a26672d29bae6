#!/usr/bin/env bash
# Compiles the Solidity contracts with solcjs (from the git-ignored .local/npm, see
# scripts/deps.sh), optimizer on, into OUT_DIR (default: build/contracts in this checkout):
# <Name>.abi (JSON) and <Name>.bin (hex, no 0x) for IntentRegistry, TestUSDC and NoBoolToken.
# solcjs names its outputs after the source path (IntentRegistry_sol_IntentRegistry.abi); we
# rename them so that consumers have stable names. Safe to run again: each run recompiles and
# replaces the files. Any error stops it with a message and a non-zero exit.
#
# Usage: contracts/compile.sh [OUT_DIR]     env SOLCJS overrides the compiler path.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT_DIR=${1:-$ROOT/build/contracts}
SOLCJS=${SOLCJS:-$ROOT/.local/npm/node_modules/.bin/solcjs}
CONTRACTS=(IntentRegistry TestUSDC NoBoolToken)

die() {
    echo "contracts/compile.sh: $*" >&2
    exit 1
}

[[ -x $SOLCJS ]] || die "solcjs not found at $SOLCJS (run scripts/deps.sh)"
mkdir -p "$OUT_DIR" || die "cannot create $OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)

# Compile into a fresh scratch directory next to the outputs, then move the files into place,
# so that a failed run never leaves a half-written artifact under a stable name.
tmp=$(mktemp -d "$OUT_DIR/.compile.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

sources=()
for name in "${CONTRACTS[@]}"; do
    [[ -f $HERE/$name.sol ]] || die "missing source $HERE/$name.sol"
    sources+=("$name.sol")
done

# Run from contracts/ with relative paths: the mangled output names then do not depend on
# where the checkout lives.
if ! (cd "$HERE" && "$SOLCJS" --optimize --abi --bin -o "$tmp" "${sources[@]}") >"$tmp/solc.log" 2>&1; then
    cat "$tmp/solc.log" >&2
    die "solcjs failed"
fi
# solcjs reports warnings on its output but still succeeds; show them.
if [[ -s $tmp/solc.log ]]; then cat "$tmp/solc.log" >&2; fi

for name in "${CONTRACTS[@]}"; do
    for ext in abi bin; do
        src=$tmp/${name}_sol_$name.$ext
        [[ -s $src ]] || die "solcjs produced no $name.$ext (expected $src)"
    done
done
for name in "${CONTRACTS[@]}"; do
    for ext in abi bin; do
        mv -f "$tmp/${name}_sol_$name.$ext" "$OUT_DIR/$name.$ext"
    done
done
echo "contracts: compiled ${CONTRACTS[*]} into $OUT_DIR"
