#!/usr/bin/env bash
# Deploys the intent registry and the test USDC to the local chain for scripts/run.sh, with
# `intentd deploy`, and prints their `export NAME=0x...` lines. Does nothing when
# INTENT_CONTRACT_ADDRESS is already set (a chain that has them). The deployer is anvil's dev
# account 0, whose key is public (anvil's default mnemonic), so this runs only on chain 31337
# unless PRIVATE_KEY is given.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[[ -z ${INTENT_CONTRACT_ADDRESS:-} ]] || exit 0
: "${RPC_URL:?RPC_URL is not set}"
ANVIL_DEV_KEY_0=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
if [[ -z ${PRIVATE_KEY:-} ]]; then
    [[ ${CHAIN_ID:-} == 31337 ]] || {
        echo "deploy-local: not the local anvil chain (CHAIN_ID=${CHAIN_ID:-unset}): set PRIVATE_KEY" >&2
        exit 1
    }
    PRIVATE_KEY=$ANVIL_DEV_KEY_0
fi
PRIVATE_KEY=$PRIVATE_KEY build/intentd deploy --rpc-url "$RPC_URL" ${CHAIN_ID:+--chain-id "$CHAIN_ID"}
