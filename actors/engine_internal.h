/*
 * What the engine's files share (engine.c: composition, map, loader; intent_actor.c: the actor
 * of one intent; constraints.c: the chain reads). Not for use outside actors/engine*.c,
 * intent_actor.c and constraints.c.
 */
#ifndef ACTORS_ENGINE_INTERNAL_H
#define ACTORS_ENGINE_INTERNAL_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include "actors/engine.h"

/* Message types of the engine's actors (actors/ uses RT_MSG_USER + 1 and up; the engine takes
 * a block of its own so a stray message is recognisable). */
enum {
    ENGINE_MSG_INIT = RT_MSG_USER + 0x600, /* loader -> new actor: engine_intent_t */
    ENGINE_MSG_RELOAD,                     /* hook -> actor: re-read the row */
    ENGINE_MSG_CLOCK,                      /* the test clock moved: re-plan */
    ENGINE_MSG_OUTCOME,                    /* executor -> actor: executor_outcome_t */
    ENGINE_MSG_READ,                       /* actor -> reader: engine_read_t */
    ENGINE_MSG_FACTS,                      /* reader -> actor: engine_facts_t */
};

/** What an intent actor keeps of its row: the signed terms and the schedule state. */
typedef struct st_engine_intent_t {
    char id[INTENT_ID_SIZE];
    char user_id[INTENT_ID_SIZE];
    chain_intent_t terms; /* owner, token, recipient, amount, minInterval, ... as signed */
    uint8_t signature[CHAIN_SIG_LEN];
    sched_t sched;
    chain_u256_t safety_buffer;
    intent_constraints_t constraints;
    intent_status_t status;
    sched_delay_t delay_reason;
    int64_t next_execution; /* as the database has it (SCHED_NONE: null) */
    int64_t last_execution;
    uint32_t execution_count;
    int32_t low_buffer_period; /* the period last warned of (-1: none) */
    bool in_flight;            /* a signed/broadcast execution row exists for execution_count */
} engine_intent_t;

/* The payload of the creation hook's ENGINE_MSG_INIT (corr ENGINE_INIT_CREATED): the row, then
 * the intent object as the API's answer rendered it (json_len 0: not rendered), the data of its
 * intent.created event. The loader's ENGINE_MSG_INIT carries the row alone. */
typedef struct st_engine_created_t {
    engine_intent_t row;
    size_t json_len;
    char json[];
} engine_created_t;

/* The corr of the loader's ENGINE_MSG_INIT for a row created at or after the engine's start
 * (0: an older row): the API's creation hook may still be on its way, and its intent.created
 * must come first (intent_actor.c, on_init). */
#define ENGINE_INIT_FRESH 2

/** Payload of ENGINE_MSG_READ: what the reader should look up. */
typedef struct st_engine_read_t {
    chain_addr_t owner, token;
    bool want_count; /* also the registry's executedCount of `on_chain_id` */
    bool count_only; /* that count alone (read ahead of a due time): no balance or allowance */
    uint8_t on_chain_id[32];
} engine_read_t;

/** Payload of ENGINE_MSG_FACTS. */
typedef struct st_engine_facts_t {
    bool available; /* false: the chain did not answer */
    bool busy;      /* refused for load: ask again shortly (no delay recorded) */
    chain_u256_t balance, allowance;
    bool has_count;          /* executedCount was asked for and read */
    uint64_t executed_count; /* the registry's count of the intent's executions */
} engine_facts_t;

/** Start-up loaders, one per slice of the id space (its first hex digit). */
#define ENGINE_LOADERS 16
/** Most executor keys (nonce lanes). */
#define ENGINE_MAX_KEYS 16

typedef struct st_engine_slot_t {
    uint8_t key[16];
    rt_actor_t *actor; /* NULL: empty */
} engine_slot_t;

/** One shard of the id -> actor map: open addressing, linear probing, backward-shift delete. */
typedef struct st_engine_shard_t {
    pthread_mutex_t lock;
    engine_slot_t *slots;
    size_t cap, used; /* cap a power of two */
} engine_shard_t;

struct st_engine_t {
    engine_config_t config;
    executor_pool_t *pool;
    chain_key_t *keys[ENGINE_MAX_KEYS]; /* owned when engine_setup loaded them */
    size_t num_keys;
    rt_actor_t *loaders[ENGINE_LOADERS];
    _Atomic int loaders_running;
    _Atomic uint64_t loaded_intents;
    rt_actor_t **readers; /* one per worker */
    atomic_bool loaded, stopping;
    int64_t started_s;        /* the wall clock at engine_start (the loader's fresh rows) */
    _Atomic uint64_t refused; /* intents the full map gave no actor (not scheduled) */
    _Atomic size_t actors;
    /* The room max_intents bounds: the actors and the API's reservations (engine_reserve) for
     * the actors of creates and changes not committed yet. */
    _Atomic size_t taken;
    engine_shard_t shards[ENGINE_SHARDS];
    _Atomic uint64_t lateness[ENGINE_LATENESS_BUCKETS];
    _Atomic uint64_t lateness_max_us;
};

/* The intent row's columns, as engine__row_parse reads them. (`e.live` lets the period's unique
 * index, WHERE live since store/migrations/009, answer the look-up of a row in flight.) */
#define ENGINE_COLUMNS                                                                             \
    "i.id::text, i.owner_id::text, encode(u.wallet_address, 'hex'), encode(i.token, 'hex'),"       \
    " encode(i.recipient, 'hex'), i.amount::text, i.frequency, coalesce(i.interval_seconds, 0),"   \
    " extract(epoch FROM i.start_at)::bigint, extract(epoch FROM i.end_at)::bigint,"               \
    " coalesce(i.max_executions, 0), i.safety_buffer::text, i.constraints::text, i.status,"        \
    " i.delay_reason, extract(epoch FROM i.next_execution)::bigint,"                               \
    " extract(epoch FROM i.last_execution)::bigint, i.execution_count, encode(i.salt, 'hex'),"     \
    " encode(i.signature, 'hex'), EXISTS (SELECT 1 FROM executions e WHERE e.intent_id = i.id"     \
    "   AND e.period = i.execution_count AND e.live AND e.status IN ('signed', 'broadcast')),"     \
    " coalesce(i.low_buffer_period, -1), i.name, i.chain_id,"                                      \
    " extract(epoch FROM i.created_at)::bigint, extract(epoch FROM i.updated_at)::bigint"
/** How many columns ENGINE_COLUMNS has. */
#define ENGINE_NUM_COLUMNS 26

/* statements (engine.c registers them) */
extern int engine__st_load, engine__st_get, engine__st_next, engine__st_delay, engine__st_complete,
    engine__st_fail, engine__st_low_buffer;

/** Parses row `row` (ENGINE_COLUMNS from `first_col`) into `out` and, when `full` is not NULL,
 * the intent object's form. False for a row the engine cannot use (logged by the caller). */
bool engine__row_parse(const engine_t *e, const PGresult *res, int row, int first_col,
                       engine_intent_t *out, intent_t *full);
/** The UUID text `id` as 16 bytes; false when it is not a UUID. */
bool engine__uuid_parse(const char *id, uint8_t out[16]);
/** Removes `actor` from the map if it is there under `id` (an actor leaving); drops the map's
 * reference. */
void engine__forget(engine_t *e, const char *id, rt_actor_t *actor);
/** What engine__deliver does when the intent has no actor: nothing, spawn one that takes room
 * now, or spawn one that takes the room the API reserved for it (engine_reserve; given back when
 * the intent has its actor already or cannot get one). */
enum { ENGINE_SPAWN_NONE, ENGINE_SPAWN_NEW, ENGINE_SPAWN_RESERVED };
/** Finds the actor of `id` and sends it `msg` (true), or spawns one first as `spawn`
 * (ENGINE_SPAWN_*) says; false (msg freed) when absent and not spawned, or when the map is
 * full. */
bool engine__deliver(engine_t *e, const char *id, rt_msg_t *msg, int spawn);
/** Records one hand-over `late_us` after the due time. */
void engine__record_lateness(engine_t *e, int64_t late_us);
/** Hands a job to the executor (or the configured sink). */
bool engine__submit(engine_t *e, const executor_job_t *job);

/** The intent actor's behaviour and state size (intent_actor.c). */
void engine__intent_behaviour(rt_actor_t *self, rt_msg_t *msg);
/** Sets up a new intent actor's state before its first message. */
void engine__intent_init(rt_actor_t *self, engine_t *e, const char *id);
extern const size_t engine__intent_state_size;

/** The chain reader's behaviour and state size (constraints.c): one per worker, coalescing the
 * balance and allowance reads of the intents due together into JSON-RPC batches. */
void engine__reader_behaviour(rt_actor_t *self, rt_msg_t *msg);
void engine__reader_init(rt_actor_t *self, engine_t *e);
extern const size_t engine__reader_state_size;

#endif
