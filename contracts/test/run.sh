#!/usr/bin/env bash
# Runs the contract behaviour tests (node's built-in test runner, ethers v6) against an anvil
# that each test file starts and stops itself on a free 127.0.0.1 port.
#   CONTRACTS_DIR  compiled artifacts (<Name>.abi/.bin); default build/contracts
#   NPM_DIR        npm prefix with ethers and anvil; default .local/npm
# Extra arguments go to `node --test` (e.g. --test-name-pattern=batch).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CONTRACTS_DIR=${CONTRACTS_DIR:-$ROOT/build/contracts}
export NPM_DIR=${NPM_DIR:-$ROOT/.local/npm}

for name in IntentRegistry TestUSDC NoBoolToken; do
    [[ -s $CONTRACTS_DIR/$name.abi && -s $CONTRACTS_DIR/$name.bin ]] || {
        echo "contracts/test/run.sh: no $name artifacts in $CONTRACTS_DIR (build, or run contracts/compile.sh)" >&2
        exit 1
    }
done
[[ -f $NPM_DIR/node_modules/ethers/package.json ]] || {
    echo "contracts/test/run.sh: ethers is not installed in $NPM_DIR" >&2
    exit 1
}
cd "$ROOT"
exec node --test "$@" contracts/test/
