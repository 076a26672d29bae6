/*
 * `intentd deploy`: deploys the intent registry and the test USDC (6 decimals, open mint) to a
 * chain and prints their addresses as `export NAME=0x...` lines, for the run command's env file
 * and for a developer's own chain. Uses chain/ end to end: the JSON-RPC client on the runtime,
 * EIP-1559 transactions signed by chain/tx with the key from PRIVATE_KEY.
 */
#ifndef ACTORS_DEPLOY_H
#define ACTORS_DEPLOY_H

/** Creation bytecode (hex, no 0x) compiled into the binary by actors/embed_contracts.cmake. */
extern const char deploy_bytecode_IntentRegistry[];
extern const char deploy_bytecode_TestUSDC[];

/** Runs the subcommand (argv after "deploy"). Returns the process exit status. */
int deploy_main(int argc, char **argv);

#endif
