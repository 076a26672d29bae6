/*
 * A chain and a database for engine tests: a private anvil with the intent registry and the test
 * USDC deployed (by dev account 9, through anvil's unlocked accounts), minting and approving for
 * owners, intents signed with anvil's public dev keys, and a database of the test's own with the
 * migrations applied and the user and intent rows an execution needs.
 *
 * Everything here blocks (plain sockets, libpq): it runs on the test's thread, before or beside
 * the runtime under test, never on a worker. Failures return false (or an empty result) with a
 * reason on stderr, so the caller asserts.
 *
 * Reuse: tests of the executor (test_executor.c) and of the intent engine use it alike. Link
 * support/engine_chain.c, support/anvil.c, intentd_actors and libpq, and define
 * INTENTD_SOURCE_DIR (anvil's binary) and INTENTD_CONTRACTS_DIR (the compiled .bin files).
 */
#ifndef TESTS_SUPPORT_ENGINE_CHAIN_H
#define TESTS_SUPPORT_ENGINE_CHAIN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "actors/executor.h"
#include "chain/address.h"
#include "anvil.h"

/** anvil's ten public dev keys (the default mnemonic); 0 is the executor's (api.md). */
extern const char *const echain_dev_keys[10];

typedef struct st_echain_t {
    anvil_t anvil;
    chain_addr_t registry, usdc;
    char db_name[64];
    char db_url[512];
    PGconn *db; /* a connection to the test's database */
} echain_t;

/** Starts anvil (`anvil_args` NULL-terminated or NULL), deploys the registry and USDC, creates
 * the database (from $DATABASE_URL's server) and migrates it. */
bool echain_start(echain_t *c, const char *const *anvil_args);
/** Drops the database and stops anvil. */
void echain_stop(echain_t *c);
/** The dev account `i`'s address. */
chain_addr_t echain_dev_address(int i);
/** One JSON-RPC call (`params` a JSON array text); the whole response in `out`. Returns false
 * on a transport error or an "error" member. */
bool echain_rpc(echain_t *c, const char *method, const char *params, char *out, size_t cap);
/** A call whose result is a quantity. */
bool echain_rpc_u64(echain_t *c, const char *method, const char *params, uint64_t *out);
/** eth_sendTransaction from dev account `from` to `to` with call data `data` (hex, no 0x); the
 * hash in `hash_hex` ("0x" + 64, 67 bytes). */
bool echain_send(echain_t *c, int from, const chain_addr_t *to, const char *data,
                 char hash_hex[67]);
/** Mints `amount` USDC base units to dev account `owner`. */
bool echain_mint(echain_t *c, int owner, uint64_t amount);
/** Dev account `owner` approves the registry for `amount`. */
bool echain_approve(echain_t *c, int owner, uint64_t amount);
/** The USDC balance of `who`. */
bool echain_balance(echain_t *c, const chain_addr_t *who, uint64_t *out);
/** The registry's executedCount of `on_chain_id`. */
bool echain_executed_count(echain_t *c, const uint8_t on_chain_id[32], uint32_t *out);
/** Mines `n` blocks (evm_mine). */
bool echain_mine(echain_t *c, int n);
/** Turns automine on or off (evm_setAutomine). */
bool echain_automine(echain_t *c, bool on);

/**
 * A signed job for dev account `owner` paying `amount` base units to dev account `recipient`:
 * USDC, no end, `max_executions` (0: unlimited), minInterval `min_interval_s`, a salt from
 * `salt`; period 0. Inserts the owner (a user row, if new) and the intent (active) into the
 * database and fills job->intent_id and job->user_id.
 */
bool echain_job(echain_t *c, int owner, int recipient, uint64_t amount, uint32_t max_executions,
                uint64_t min_interval_s, uint32_t salt, executor_job_t *job);
/**
 * `n` signed intents that all come due once at `due_s` (unix seconds), built the way the engine
 * reads its rows, so that the terms it derives from a row (actors/engine.c, intent_signed_terms:
 * validAfter = start_at, minInterval from the frequency, maxExecutions 1 for `once`) are exactly
 * the ones signed: intent i belongs to dev account 1 + i % `owners` and pays `amount` base units
 * of USDC to dev account `recipient`; frequency once, no end, no constraints, safety buffer 0, a
 * salt from `salt` + i. The rows are active with next_execution = start_at = `due_s`, and created
 * an hour ago (rows the engine finds at its start, as after a restart). Inserts the owners' user
 * rows and the intents in a few multi-row statements.
 */
bool echain_due_intents(echain_t *c, int n, int owners, int recipient, uint64_t amount,
                        int64_t due_s, uint32_t salt);
/** The first value of `sql` on the test database, into `out` ("" when no row). */
bool echain_db_value(echain_t *c, const char *sql, char *out, size_t cap);
/** Runs `sql` on the test database. */
bool echain_db_exec(echain_t *c, const char *sql);

#endif
