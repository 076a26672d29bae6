/*
 * The engine end to end, for tests: a private anvil with the registry and the test USDC deployed
 * by `intentd deploy`, the intentd binary with its engine (executor: anvil's dev account 0) and
 * the test clock on, tokens minted and approved from anvil's unlocked dev accounts, intents
 * created and signed through the API, and the engine's clock moved together with anvil's.
 * Builds on api_server.h (the database, the binary, HTTP, sign-in); assertions are criterion's.
 */
#ifndef TESTS_SUPPORT_ENGINE_ENV_H
#define TESTS_SUPPORT_ENGINE_ENV_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "anvil.h"
#include "api_server.h"

/* anvil's dev key 0: the executor (api.md) */
#define ENGINE_DEV0_KEY "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
/* anvil's dev account 9: receives the payments */
#define ENGINE_RECIPIENT "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"

extern anvil_t engine_anvil;
extern char engine_registry[43], engine_usdc[43];
/** The block the registry was created in (`intentd deploy`'s REGISTRY_START_BLOCK), which the
 * server is given. */
extern uint64_t engine_registry_block;

/** The 0x-hex EIP-712 signature by `key_hex` over the terms api.md derives for a daily intent of
 * `amount` USDC base units from `start_at` to ENGINE_RECIPIENT, with a salt of 32 `salt_byte`s,
 * on the deployed registry: what a create with that signature inline must carry. */
void engine_sign_daily(const char *key_hex, int64_t start_at, uint64_t amount, uint8_t salt_byte,
                       char out[133]);
/** Starts anvil (extra args NULL-terminated or NULL) and deploys the registry and USDC. */
void engine_chain_start(const char *const *anvil_args);
/** Stops the server if left running, and anvil. For .fini. */
void engine_teardown(void);
/** Starts intentd on a new database with the engine and the test clock (`extra_env`: more
 * "NAME=value" strings, NULL-terminated, or NULL). */
void engine_server_start(const char *const *extra_env);
/** Starts intentd again on the same database and port (after a kill); waits for /readyz. */
void engine_server_restart(void);
/** SIGKILL, and reaps it. */
void engine_server_kill(void);

/** One JSON-RPC call to the test's anvil; its result (decref it), asserting there is one. */
json_t *engine_rpc(const char *method, const char *params);
/** Sends a transaction from an unlocked dev account and asserts it succeeded. */
void engine_transact(const char *from, const char *to, const uint8_t *data, size_t len);
/** Mints `amount` base units of USDC to `owner` (the open mint). */
void engine_mint(const char *owner, uint64_t amount);
/** `owner` (an unlocked dev account) approves `amount` base units to the registry. */
void engine_approve(const char *owner, uint64_t amount);
/** USDC balance of `addr`, base units. */
uint64_t engine_usdc_balance(const char *addr);
/** The registry's executedCount of `on_chain_id` (0x + 64 hex). */
uint64_t engine_executed_count(const char *on_chain_id);

/** The engine's time (unix seconds) from GET /internal/test/clock. */
int64_t engine_now(void);
/** Moves the engine's clock and anvil's by `seconds` and mines a block at the new time. */
void engine_advance(int64_t seconds);
/** Moves both clocks to `at` (engine seconds) when it lies ahead (engine_advance). */
void engine_advance_to(int64_t at);
/** Sets the engine's clock offset (it lives in the process: a restarted server starts at wall
 * time) to `total_s` seconds, moving only the engine's clock. */
void engine_set_offset(int64_t total_s);
/** RFC 3339 of unix seconds (a static buffer). */
const char *engine_time_text(int64_t unix_s);

/** POSTs `body` (an intent without salt or signature) as `token`, signs its typedData with
 * `key_hex` and activates it; returns the intent object (decref it), its id in `id`. */
json_t *engine_create_intent(const char *token, const char *key_hex, const char *body, char id[37]);
/** GET /api/intents/:id (asserts 200); decref it. */
json_t *engine_get_intent(const char *token, const char *id);
/** Polls GET /api/intents/:id until `field` equals `value` (strings; "null" for null, numbers
 * as text) or `timeout_ms` passes; returns whether it did. */
bool engine_wait_field(const char *token, const char *id, const char *field, const char *value,
                       int timeout_ms);
/** Asserts that the intent's executionCount reaches `count` within `timeout_ms`. */
void engine_wait_count(const char *token, const char *id, int count, int timeout_ms);
/** Polls a query on the test's database until its first value equals `value`. */
bool engine_wait_db(const char *sql, const char *value, int timeout_ms);

#endif
