/*
 * The intentd binary for API tests: a database of its own (created and dropped), the server on a
 * free loopback port with test secrets, blocking HTTP requests, and wallet sign-in with anvil's
 * public dev keys. Assertions are criterion's, so these run inside tests only.
 */
#ifndef TESTS_SUPPORT_API_SERVER_H
#define TESTS_SUPPORT_API_SERVER_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <sys/types.h>
#include "chain/eip712.h"
#include "chain/key.h"
#include "chain/siwe.h"

#define JWT_SECRET "test-secret-of-at-least-thirty-two-bytes!"
#define DATA_KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
/* anvil's public dev keys 1 and 2 */
#define KEY_A "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
#define KEY_B "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"

extern pid_t server_pid;
extern int port;
extern char db_name[64], db_url[512];

/** Connects (retrying up to 10 s) to `url`. */
PGconn *connect_db(const char *url);
/** Runs a command on `url`, asserting success. */
void db_exec(const char *url, const char *sql);
/** The first value of a query on the test's database ("" for no rows). */
char *db_value(const char *sql);
/** A free loopback port. */
int free_port(void);
/** One request (Connection: close); the status, or 0 when nothing listens yet or the request
 * could not be written. Safe to call from several threads at once. */
int http(const char *method, const char *path, const char *auth, const char *content_type,
         const char *payload, char *body, size_t cap);
/** Creates the test database and starts intentd on it (extra environment: NULL-terminated
 * "NAME=value" strings, or NULL); returns once /readyz answers 200. */
void start_server_env(const char *const *env);
/** Starts intentd again on the test's database and port (after it stopped or was killed);
 * returns once /readyz answers 200. */
void restart_server_env(const char *const *env);
/** start_server_env without extra environment. */
void start_server(void);
/** For .fini: kills a server the test left running (a failed assertion). */
void kill_leftover_server(void);
/** SIGTERM, asserts exit 0, drops the database. */
void stop_server(void);
/** Loads a key. */
chain_key_t *key(const char *hex);
/** The EIP-55 address of a key. */
void address_of(const char *key_hex, char out[CHAIN_ADDR_STR_SIZE]);
/** personal_sign of `message` as 0x hex. */
void sign(const char *key_hex, const char *message, char out[133]);
/** The EIP-712 signature of `signer_hex` over `terms` for the registry at `registry` (0x text)
 * on chain 31337, as 0x hex. */
void sign_intent_terms(const char *signer_hex, const chain_intent_t *terms, const char *registry,
                       char out[133]);
/** POST /api/auth/nonce for `address` (asserts 200); decref the answer. */
json_t *get_nonce(const char *address);
/** POST /api/auth/wallet; the status, the body in `body`. */
int sign_in(const char *message, const char *signature, char *body, size_t cap);
/** Signs in with `key_hex` and copies the session token into `token` (asserts success). */
void session(const char *key_hex, char *token, size_t cap);

#endif
