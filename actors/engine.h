/*
 * The intent engine: one actor per live intent (active, delayed or paused) that sleeps until its
 * next due time, checks the intent's constraints, hands the execution to the executor, and
 * records delays; plus the composition around it (start-up loading, the API's change hook, the
 * executor's outcomes).
 *
 * Who writes what (the engine contract): the executor (actors/executor.h) owns executions rows
 * and, with a confirmation, intents.execution_count / last_execution / completion by
 * maxExecutions (with its next_execution cleared in the same write); the engine owns
 * intents.status, delay_reason and next_execution for delays, completion by endAt and the next
 * due time, and the delay notifications (execution_delayed, low_buffer) with their audit rows and
 * events.
 *
 * Finding an intent's actor: a sharded hash map from id to actor (ENGINE_SHARDS shards, each with
 * its own mutex), so that the API's hook and the executor's outcomes, arriving on any worker,
 * never contend on one lock. The map holds a reference to each actor; an actor leaves it only
 * when its intent reaches a state it can never leave (completed, cancelled, failed). Actors are
 * spread over the workers by a hash of the id.
 *
 * Start-up: loader actors (one per slice of the id space, spread over the workers) read the live
 * intents in pages ordered by id (keyset pagination, no OFFSET), spawning their actors while the
 * API already serves; an intent changed meanwhile is taken by the hook, and an actor that already
 * has its row ignores the loader's.
 */
#ifndef ACTORS_ENGINE_H
#define ACTORS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "actors/events.h"
#include "actors/executor.h"
#include "actors/gas_oracle.h"
#include "actors/intent_model.h"
#include "chain/rpc.h"
#include "runtime/worker.h"
#include "store/pg.h"

/** Shards of the id -> actor map. */
#define ENGINE_SHARDS 64
/** The corr of the engine's reload message that also announces the intent (intent.updated):
 * the follower gave back a period of it (engine.c -> intent_actor.c). */
#define ENGINE_RELOAD_ANNOUNCE 1
/** The corr of the reload message of the API's hook (a committed change: signature, patch,
 * pause, resume, cancel), which the actor announces as intent.updated once it has the row. */
#define ENGINE_RELOAD_CHANGED 2
/** The corr of the init message of the API's creation hook (the start-up loader's is 0), which
 * the actor announces as intent.created, also when the loader's row reached it first. */
#define ENGINE_INIT_CREATED 1
/** Lateness histogram: buckets of ENGINE_LATENESS_BUCKET_US, the last one open-ended. */
#define ENGINE_LATENESS_BUCKETS 4096
#define ENGINE_LATENESS_BUCKET_US 25

/** Replaces the executor (benchmarks, tests): takes a job as executor_submit does. */
typedef bool (*engine_submit_fn)(void *ctx, const executor_job_t *job);

typedef struct st_engine_config_t {
    rt_runtime_t *rt;             /* started */
    store_pg_t *pg;               /* required */
    chain_rpc_t *rpc;             /* NULL: every chain read is chain_unavailable */
    gas_oracle_t *gas;            /* NULL: a gas cap cannot be checked (chain_unavailable) */
    events_t *events;             /* NULL: no live events */
    const intent_token_t *tokens; /* the token registry (to render intent objects) */
    size_t num_tokens;
    uint64_t chain_id;
    chain_addr_t registry; /* the intent registry: the allowance's spender */
    /* The executor the engine creates when `submit` is NULL and executor.num_keys > 0; the engine
     * fills rpc, pg, gas, events, chain_id, registry and on_outcome itself. */
    executor_config_t executor;
    engine_submit_fn submit; /* non-NULL: used instead of an executor pool */
    void *submit_ctx;
    uint32_t load_batch;           /* rows per start-up page (default 2000) */
    uint32_t max_intents;          /* bound of the map (default 4 Mi); beyond it, refused */
    uint64_t logs_window_blocks;   /* the follower's eth_getLogs window (0: its default) */
    uint64_t registry_start_block; /* the registry's deployment block (backfills start there) */
    bool facts_always_hold;        /* benchmarks: no chain reads, every constraint holds */
} engine_config_t;

typedef struct st_engine_t engine_t;

/** The operator's settings of the engine and its executor, as text (NULL: unset), for
 * engine_setup; main.c's options of the same names. */
typedef struct st_engine_settings_t {
    const char *private_key;      /* PRIVATE_KEY: the first executor key (0x + 64 hex digits) */
    const char *executor_keys;    /* EXECUTOR_KEYS: more keys, comma-separated (one lane each) */
    const char *confirmations;    /* CONFIRMATIONS: blocks deep before an outcome counts */
    const char *max_fee_gwei;     /* MAX_FEE_GWEI: ceiling of maxFeePerGas (unset: none) */
    const char *batch_gas_budget; /* BATCH_GAS_BUDGET: gas of one executeBatch transaction */
    const char *replace_after_ms; /* REPLACE_AFTER_MS: not mined by then, replaced */
    const char *logs_block_range; /* LOGS_BLOCK_RANGE: most blocks per eth_getLogs (NULL: 10000) */
    const char *registry_start_block; /* REGISTRY_START_BLOCK: the registry's deployment block
                                       * (NULL: 0) */
} engine_settings_t;

/** Lateness figures (due time -> hand-over to the executor), in microseconds. */
typedef struct st_engine_lateness_t {
    uint64_t count;
    uint64_t p50_us, p99_us, max_us;
} engine_lateness_t;

/** Registers the engine's statements and the executor's; before the database pool is created
 * (store_pg_statement's rule). Idempotent. */
void engine_register_statements(void);
/** Creates the engine (after the stores and the chain client started). NULL on bad settings. */
engine_t *engine_create(const engine_config_t *config);
/**
 * engine_create with the executor described by `settings` (keys loaded into locked memory and
 * owned by the engine). NULL with a reason in `err` when a setting is malformed or no key is
 * given.
 */
engine_t *engine_setup(const engine_settings_t *settings, const engine_config_t *config, char *err,
                       size_t err_size);
/** Starts the executor (if the engine owns one), the chain readers and the loader. */
void engine_start(engine_t *engine);
/**
 * The API's hook (api_config_t.intent_changed): `slot` is the address of an `engine_t *` that
 * is NULL until the engine exists (api_create runs before the stores), read atomically. Reloads
 * the intent's row and spawns, updates or stops its actor, which announces the change on the
 * owner's live stream (intent.updated, the row as read) before it plans or leaves, in order with
 * its own events. Any worker; never blocks.
 */
void engine_intent_changed(void *slot, const char *intent_id);
/**
 * engine_intent_changed for a committed change that holds room reserved by engine_reserve
 * (api_config_t.intent_changed_reserved: a signature or resume that makes the intent run): a
 * new actor takes that room; an intent that has its actor already gives it back.
 */
void engine_intent_changed_reserved(void *slot, const char *intent_id);
/**
 * The API's hook for a creation (api_config_t.intent_created; `slot` as above): `in` is the
 * intent as committed (id, status, schedule and next execution set), `signature` its owner's
 * (NULL while unsigned), `json` (`json_len` bytes, NULL: none) the intent object as the API's
 * answer renders it, `reserved` whether engine_reserve reserved room for it. Spawns the intent's
 * actor with it (in that room), without reading the row back; the actor announces it
 * (intent.created, its first event) once, with `json` as its data when no other event of the
 * intent waits (else from a read of the row, in order). Any worker; never blocks.
 */
void engine_intent_created(void *slot, const intent_t *in, const char *user_id,
                           const uint8_t *signature, const char *json, size_t json_len,
                           bool reserved);
/**
 * The API's check before it stores a creation (`intent_id` NULL) or a change that makes intent
 * `intent_id` run (api_config_t.engine_reserve; `slot` as above): reserves room for the intent's
 * actor (max_intents counts the actors and these reservations) and returns true with `*reserved`
 * set; the API then hands the room to engine_intent_created or engine_intent_changed_reserved
 * with the committed change, or gives it back (engine_release) when nothing was stored. False
 * when the engine has no room and, for a change, the intent has no actor already (true without a
 * reservation when it has one, or when there is no engine): the API refuses it (503) instead of
 * storing an intent nothing would run. Two racing for the last room cannot both have it. A
 * creation costs one atomic read-modify-write and no lock (a change at the bound, a shard's
 * lock). Any worker; never blocks.
 */
bool engine_reserve(void *slot, const char *intent_id, bool *reserved);
/** Gives back room engine_reserve reserved (`slot` as above), for a creation or change that was
 * not stored (refused, failed, or lost its database). */
void engine_release(void *slot);
/** The executor's outcome callback (executor_config_t.on_outcome); `ctx` is the engine. */
void engine_on_outcome(void *ctx, const executor_outcome_t *outcome);
/** True once the start-up load has read every page. */
bool engine_loaded(const engine_t *engine);
/** Intent actors alive now. */
size_t engine_actor_count(const engine_t *engine);
/** Intents the engine had no room for (max_intents): not scheduled until a restart; each one is
 * logged as an error. (The API reserves room before it stores, so these are the start-up
 * loader's and the follower's reopenings.) */
uint64_t engine_refused_count(const engine_t *engine);
/** Lateness of the executions handed over so far. */
void engine_lateness(const engine_t *engine, engine_lateness_t *out);
/** The executor pool the engine created (NULL when it uses `submit` or has no keys). */
executor_pool_t *engine_executor(engine_t *engine);
/** Stops the actors, the loader and the executor; before the stores close. */
void engine_stop(engine_t *engine);
/** Frees the engine, after the runtime has stopped. */
void engine_free(engine_t *engine);

#endif
