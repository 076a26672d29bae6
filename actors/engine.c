/*
 * The engine's composition: statements, the id -> actor map, the start-up loader, the API's hook,
 * the executor's outcomes and the test clock's moves. The actor of one intent is
 * intent_actor.c; the chain reads are constraints.c.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "actors/chain_follower.h"
#include "actors/engine_clock.h"
#include "actors/engine_internal.h"
#include "actors/notification_model.h"
#include "chain/hex.h"
#include "runtime/log.h"

#define LOAD_BATCH_DEFAULT 2000
#define LOAD_BATCH_MAX 10000
#define MAX_INTENTS_DEFAULT (4u << 20)
#define SHARD_CAP_MIN 64
#define LOAD_RETRY_MS 1000
/* How far the database's clock (created_at) may be behind ours: a row created up to this long
 * before the engine started still counts as fresh (ENGINE_INIT_FRESH). */
#define FRESH_MARGIN_S 5

int engine__st_load, engine__st_get, engine__st_next, engine__st_delay, engine__st_complete,
    engine__st_fail, engine__st_low_buffer;

/* The live statuses: an actor exists for each intent in one of them. */
#define LIVE "('active', 'delayed', 'paused')"

void engine_register_statements(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    executor_register_statements();
    /* a page of one loader's id range (lo, hi]: keyset pagination on the intents_live index */
    engine__st_load = store_pg_statement(
        "engine_load", "SELECT " ENGINE_COLUMNS " FROM intents i JOIN users u ON u.id = i.owner_id"
                       " WHERE i.status IN " LIVE " AND i.id > $1::uuid AND i.id <= $3::uuid"
                       " ORDER BY i.id LIMIT $2::int");
    engine__st_get = store_pg_statement(
        "engine_get", "SELECT " ENGINE_COLUMNS " FROM intents i JOIN users u ON u.id = i.owner_id"
                      " WHERE i.id = $1::uuid");
    /* the API shows next_execution: kept in step when the engine's plan changes it */
    engine__st_next = store_pg_statement(
        "engine_next", "UPDATE intents SET next_execution = to_timestamp($2::bigint)"
                       " WHERE id = $1::uuid AND status IN ('active', 'delayed')"
                       " AND next_execution IS DISTINCT FROM to_timestamp($2::bigint)");
    /* A delay: the status, the reason and the retry time; the notification and the audit row
     * only when the reason changes (not on every retry). The old row is locked and read in the
     * same statement, so two delays cannot both think they changed the reason. */
    engine__st_delay = store_pg_statement(
        "engine_delay",
        "WITH old AS (SELECT id, owner_id, delay_reason FROM intents WHERE id = $1::uuid"
        "   AND status IN ('active', 'delayed') FOR UPDATE),"
        " upd AS (UPDATE intents i SET status = 'delayed', delay_reason = $2,"
        "   next_execution = to_timestamp($3::bigint), updated_at = now() FROM old"
        "   WHERE i.id = old.id RETURNING i.*),"
        " n AS (INSERT INTO notifications (user_id, type, title, message, intent_id)"
        "   SELECT owner_id, 'execution_delayed', $4, $5, id FROM old"
        "   WHERE delay_reason IS DISTINCT FROM $2 RETURNING *),"
        " a AS (INSERT INTO audit_log (user_id, actor, action, subject_id, details)"
        "   SELECT owner_id, 'engine', 'intent.delayed', id,"
        "     jsonb_build_object('reason', $2::text, 'retryAt', $3::bigint) FROM old"
        "   WHERE delay_reason IS DISTINCT FROM $2)"
        " SELECT (SELECT count(*) FROM old)::int, " NOTIFICATION_COLUMNS
        " FROM (SELECT 1) one LEFT JOIN n ON true");
    /* Completion by endAt; and after an adoption completed it by maxExecutions, the clearing of
     * next_execution. Audited only when it was live. A row answered when the intent is completed
     * now (its intent.updated event): written here, or already completed with nothing left to
     * clear (the executor's outcome completes it by maxExecutions and clears next_execution in
     * its own write, executor.c `completes`: read only, no write and no lock, since one write per
     * intent after a burst held the next outcomes up). Only while the count is still the one the
     * actor decided on ($2): one a reorg took back (the follower reopened the intent meanwhile)
     * leaves a period to pay. */
    engine__st_complete = store_pg_statement(
        "engine_complete",
        "WITH done AS (SELECT id FROM intents WHERE id = $1::uuid AND status = 'completed'"
        "   AND next_execution IS NULL AND execution_count >= $2::int),"
        " old AS (SELECT id, owner_id, status FROM intents WHERE id = $1::uuid"
        "   AND NOT EXISTS (SELECT 1 FROM done)"
        "   AND (status IN " LIVE " OR (status = 'completed' AND next_execution IS NOT NULL))"
        "   AND execution_count >= $2::int FOR UPDATE),"
        " upd AS (UPDATE intents i SET status = 'completed', delay_reason = NULL,"
        "   next_execution = NULL, updated_at = now() FROM old WHERE i.id = old.id),"
        " a AS (INSERT INTO audit_log (user_id, actor, action, subject_id, details)"
        "   SELECT owner_id, 'engine', 'intent.complete', id, '{\"reason\":\"schedule_over\"}'"
        "   FROM old WHERE status <> 'completed')"
        " SELECT id::text FROM old UNION ALL SELECT id::text FROM done");
    engine__st_fail = store_pg_statement(
        "engine_fail",
        "WITH upd AS (UPDATE intents SET status = 'failed', delay_reason = NULL,"
        "   next_execution = NULL, updated_at = now() WHERE id = $1::uuid"
        "   AND status IN ('active', 'delayed') RETURNING id, owner_id)"
        " INSERT INTO audit_log (user_id, actor, action, subject_id, details)"
        " SELECT owner_id, 'engine', 'intent.fail', id, jsonb_build_object('error', $2::text)"
        " FROM upd RETURNING subject_id::text");
    /* once per period, also across restarts: the period is recorded with the notification */
    engine__st_low_buffer = store_pg_statement(
        "engine_low_buffer",
        "WITH upd AS (UPDATE intents SET low_buffer_period = $2::int WHERE id = $1::uuid"
        "   AND low_buffer_period IS DISTINCT FROM $2::int RETURNING id, owner_id),"
        " n AS (INSERT INTO notifications (user_id, type, title, message, intent_id)"
        "   SELECT owner_id, 'low_buffer', $3, $4, id FROM upd RETURNING *),"
        " a AS (INSERT INTO audit_log (user_id, actor, action, subject_id, details)"
        "   SELECT owner_id, 'engine', 'intent.low_buffer', id,"
        "     jsonb_build_object('period', $2::int) FROM upd)"
        " SELECT " NOTIFICATION_COLUMNS " FROM n");
}

/* ---- rows ---- */

bool engine__uuid_parse(const char *id, uint8_t out[16])
{
    size_t n = 0;
    for (size_t i = 0; id[i] != '\0' && n < 32; ++i) {
        if (id[i] == '-' && (i == 8 || i == 13 || i == 18 || i == 23))
            continue;
        int v = chain_hex_digit(id[i]);
        if (v < 0)
            return false;
        out[n / 2] = (uint8_t)(n % 2 == 0 ? v << 4 : out[n / 2] | v);
        ++n;
    }
    return n == 32 && strlen(id) == 36;
}

static bool hex_exact(const char *hex, uint8_t *out, size_t len)
{
    return chain_hex_decode_exact(out, len, hex, strlen(hex), 0) == CHAIN_OK;
}

static int64_t col_time(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? SCHED_NONE : atoll(PQgetvalue(res, row, col));
}

static const intent_token_t *token_by_address(const engine_t *e, const chain_addr_t *a)
{
    for (size_t i = 0; i != e->config.num_tokens; ++i)
        if (chain_addr_eq(&e->config.tokens[i].address, a))
            return &e->config.tokens[i];
    return NULL;
}

/* The schedule, amounts, constraints and state columns into `in` (the intent object's form). */
static bool parse_intent(const engine_t *e, const PGresult *res, int row, int c, intent_t *in)
{
    const char *amount = PQgetvalue(res, row, c + 5), *buffer = PQgetvalue(res, row, c + 11);
    chain_intent_freq_t freq;
    if (!hex_exact(PQgetvalue(res, row, c + 2), in->owner.bytes, 20) ||
        !hex_exact(PQgetvalue(res, row, c + 3), in->token.address.bytes, 20) ||
        !hex_exact(PQgetvalue(res, row, c + 4), in->recipient.bytes, 20) ||
        chain_u256_from_dec(&in->amount, amount, strlen(amount)) != CHAIN_OK ||
        chain_u256_from_dec(&in->safety_buffer, buffer, strlen(buffer)) != CHAIN_OK ||
        !intent_freq_parse(PQgetvalue(res, row, c + 6), &freq) ||
        !hex_exact(PQgetvalue(res, row, c + 18), in->salt, sizeof(in->salt)))
        return false;
    const intent_token_t *t = token_by_address(e, &in->token.address);
    if (t != NULL)
        in->token = *t;
    sched_init(&in->sched, freq, (uint64_t)atoll(PQgetvalue(res, row, c + 7)),
               atoll(PQgetvalue(res, row, c + 8)), col_time(res, row, c + 9),
               (uint32_t)atol(PQgetvalue(res, row, c + 10)));
    json_t *constraints = json_loads(PQgetvalue(res, row, c + 12), 0, NULL);
    net_json_errors_t errs;
    net_json_errors_init(&errs);
    bool ok = intent_constraints_parse(constraints, &in->constraints, &errs);
    json_decref(constraints);
    ok = ok && intent_status_parse(PQgetvalue(res, row, c + 13), &in->status);
    in->delay_reason = SCHED_DELAY_NONE;
    if (!PQgetisnull(res, row, c + 14))
        ok = ok && sched_delay_parse(PQgetvalue(res, row, c + 14), &in->delay_reason);
    in->next_execution = col_time(res, row, c + 15);
    in->last_execution = col_time(res, row, c + 16);
    in->execution_count = (uint32_t)atol(PQgetvalue(res, row, c + 17));
    return ok;
}

/* The engine's form of an intent (what its actor keeps) from the intent object's form: one
 * conversion for the rows the engine reads and the intents the API hands over. Signature, the
 * execution in flight and the low-buffer warning are the caller's (none here). */
static void engine_form(const intent_t *in, const char *user_id, engine_intent_t *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->id, sizeof(out->id), "%s", in->id);
    snprintf(out->user_id, sizeof(out->user_id), "%s", user_id);
    intent_signed_terms(in, &out->terms);
    out->sched = in->sched;
    out->safety_buffer = in->safety_buffer;
    out->constraints = in->constraints;
    out->status = in->status;
    out->delay_reason = in->delay_reason;
    out->next_execution = in->next_execution;
    out->last_execution = in->last_execution;
    out->execution_count = in->execution_count;
    out->low_buffer_period = -1;
}

bool engine__row_parse(const engine_t *e, const PGresult *res, int row, int c, engine_intent_t *out,
                       intent_t *full)
{
    static __thread intent_t scratch; /* 1.5 KiB: not on a worker's stack for every row */
    intent_t *in = full != NULL ? full : &scratch;
    memset(in, 0, sizeof(*in));
    memset(out, 0, sizeof(*out));
    snprintf(in->id, sizeof(in->id), "%s", PQgetvalue(res, row, c));
    snprintf(in->name, sizeof(in->name), "%s", PQgetvalue(res, row, c + 22));
    in->chain_id = (uint64_t)atoll(PQgetvalue(res, row, c + 23));
    in->registry = e->config.registry;
    in->created_at = atoll(PQgetvalue(res, row, c + 24));
    in->updated_at = atoll(PQgetvalue(res, row, c + 25));
    if (!parse_intent(e, res, row, c, in))
        return false;
    engine_form(in, PQgetvalue(res, row, c + 1), out);
    const char *sig = PQgetvalue(res, row, c + 19);
    if (sig[0] != '\0' && !hex_exact(sig, out->signature, sizeof(out->signature)))
        return false;
    out->in_flight = PQgetvalue(res, row, c + 20)[0] == 't';
    out->low_buffer_period = atoi(PQgetvalue(res, row, c + 21));
    return true;
}

/* ---- the id -> actor map ---- */

static uint64_t key_hash(const uint8_t key[16])
{
    uint64_t h;
    memcpy(&h, key + 8, sizeof(h)); /* random bits of a v4 UUID; mixed anyway for other kinds */
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    return h;
}

static engine_shard_t *shard_of(engine_t *e, uint64_t h)
{
    return &e->shards[h % ENGINE_SHARDS];
}

/* The slot holding `key`, or the empty slot where it would go. Under the shard's lock. O(1)
 * expected: the load factor stays at most 1/2. */
static engine_slot_t *shard_find(engine_shard_t *s, const uint8_t key[16], uint64_t h)
{
    size_t mask = s->cap - 1;
    for (size_t i = (h >> 8) & mask, n = 0; n != s->cap; i = (i + 1) & mask, ++n)
        if (s->slots[i].actor == NULL || memcmp(s->slots[i].key, key, 16) == 0)
            return &s->slots[i];
    return NULL; /* unreachable at load <= 1/2 */
}

static bool shard_grow(engine_shard_t *s)
{
    size_t cap = s->cap * 2;
    engine_slot_t *slots = calloc(cap, sizeof(*slots)), *old = s->slots;
    if (slots == NULL)
        return false;
    size_t old_cap = s->cap;
    s->slots = slots;
    s->cap = cap;
    for (size_t i = 0; i != old_cap; ++i)
        if (old[i].actor != NULL)
            *shard_find(s, old[i].key, key_hash(old[i].key)) = old[i];
    free(old);
    return true;
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void shard_remove(engine_shard_t *s, engine_slot_t *slot)
{
    size_t mask = s->cap - 1, i = (size_t)(slot - s->slots);
    s->slots[i].actor = NULL;
    for (size_t j = (i + 1) & mask; s->slots[j].actor != NULL; j = (j + 1) & mask) {
        size_t home = (key_hash(s->slots[j].key) >> 8) & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            s->slots[i] = s->slots[j];
            s->slots[j].actor = NULL;
            i = j;
        }
    }
    --s->used;
}

/* Takes room for one actor (max_intents): one atomic read-modify-write, no lock. At the bound, a
 * taker that finds no room adds and takes back one, so another may find the engine full for that
 * instant: it was full, give or take the one leaving. */
static bool take_room(engine_t *e)
{
    if (atomic_fetch_add(&e->taken, 1) < e->config.max_intents)
        return true;
    atomic_fetch_sub(&e->taken, 1);
    return false;
}

static void give_room(engine_t *e)
{
    atomic_fetch_sub(&e->taken, 1);
}

/* A new actor for `id` in `*slot` (under the shard's lock), taking room now or, when `reserved`,
 * the room the API reserved for it (given back if it cannot be spawned). */
static rt_actor_t *spawn_locked(engine_t *e, engine_shard_t *s, engine_slot_t **slot,
                                const uint8_t key[16], uint64_t h, const char *id, bool reserved)
{
    if (!reserved && !take_room(e))
        return NULL;
    if (*slot == NULL || ((s->used + 1) * 2 > s->cap &&
                          (!shard_grow(s) || (*slot = shard_find(s, key, h)) == NULL))) {
        give_room(e);
        return NULL;
    }
    int worker = (int)((h >> 40) % (uint64_t)e->config.rt->num_workers);
    rt_actor_t *a =
        rt_actor_spawn(e->config.rt, worker, engine__intent_behaviour, engine__intent_state_size);
    engine__intent_init(a, e, id);
    memcpy((*slot)->key, key, 16);
    (*slot)->actor = a; /* the spawn's caller reference becomes the map's */
    ++s->used;
    atomic_fetch_add(&e->actors, 1);
    return a;
}

bool engine__deliver(engine_t *e, const char *id, rt_msg_t *msg, int spawn)
{
    uint8_t key[16];
    if (!engine__uuid_parse(id, key) || atomic_load(&e->stopping)) {
        if (spawn == ENGINE_SPAWN_RESERVED)
            give_room(e);
        rt_msg_free(msg);
        return false;
    }
    uint64_t h = key_hash(key);
    engine_shard_t *s = shard_of(e, h);
    pthread_mutex_lock(&s->lock);
    engine_slot_t *slot = shard_find(s, key, h);
    rt_actor_t *a = slot != NULL ? slot->actor : NULL;
    if (a != NULL && spawn == ENGINE_SPAWN_RESERVED)
        give_room(e); /* it has its actor already (the loader's row came first): room not needed */
    else if (a == NULL && spawn != ENGINE_SPAWN_NONE)
        a = spawn_locked(e, s, &slot, key, h, id, spawn == ENGINE_SPAWN_RESERVED);
    if (a != NULL)
        rt_actor_send(a, msg); /* under the lock: an actor leaving takes it first (see forget) */
    pthread_mutex_unlock(&s->lock);
    if (a == NULL) {
        /* Full: the intent stays as committed, but nothing runs it until a restart finds room
         * (retrying would not help: actors leave only when their intents end). Loud, and
         * counted, so that it is never silent. (The API's creates and changes reserve their
         * room before they store anything, so only the loader and the follower's reopenings
         * can meet a full engine here.) */
        if (spawn != ENGINE_SPAWN_NONE) {
            atomic_fetch_add(&e->refused, 1);
            rt_log_error("engine", "intent %s: NOT SCHEDULED, the engine is full (%u intents)", id,
                         e->config.max_intents);
        }
        rt_msg_free(msg);
    }
    return a != NULL;
}

void engine__forget(engine_t *e, const char *id, rt_actor_t *actor)
{
    uint8_t key[16];
    if (!engine__uuid_parse(id, key))
        return;
    uint64_t h = key_hash(key);
    engine_shard_t *s = shard_of(e, h);
    pthread_mutex_lock(&s->lock);
    engine_slot_t *slot = shard_find(s, key, h);
    bool found = slot != NULL && slot->actor == actor;
    if (found)
        shard_remove(s, slot);
    pthread_mutex_unlock(&s->lock);
    if (found) {
        atomic_fetch_sub(&e->actors, 1);
        give_room(e);
        rt_actor_release(actor);
    }
}

/* Sends a message of `type` to every actor (the test clock moved). O(n). */
static void broadcast(engine_t *e, uint32_t type)
{
    for (size_t i = 0; i != ENGINE_SHARDS; ++i) {
        engine_shard_t *s = &e->shards[i];
        pthread_mutex_lock(&s->lock);
        for (size_t j = 0; j != s->cap; ++j)
            if (s->slots[j].actor != NULL)
                rt_actor_send(s->slots[j].actor, rt_msg_new(type, 0));
        pthread_mutex_unlock(&s->lock);
    }
}

/* Stops every actor and drops the map's references, while the runtime still runs (actor memory
 * belongs to the workers' slabs, gone after the join). */
static void stop_all(engine_t *e)
{
    size_t stopped = 0;
    for (size_t i = 0; i != ENGINE_SHARDS; ++i) {
        engine_shard_t *s = &e->shards[i];
        pthread_mutex_lock(&s->lock);
        for (size_t j = 0; j != s->cap; ++j)
            if (s->slots[j].actor != NULL) {
                rt_actor_send_stop(s->slots[j].actor);
                rt_actor_release(s->slots[j].actor);
                s->slots[j].actor = NULL;
                ++stopped;
            }
        s->used = 0;
        pthread_mutex_unlock(&s->lock);
    }
    atomic_store(&e->actors, 0);
    atomic_fetch_sub(&e->taken, stopped); /* the API's reservations still out give theirs back */
}

/* ---- hooks ---- */

void engine_intent_changed(void *slot, const char *intent_id)
{
    engine_t *e = atomic_load((engine_t * _Atomic *)slot);
    if (e == NULL)
        return; /* not started yet: the loader reads the row */
    rt_msg_t *msg = rt_msg_new(ENGINE_MSG_RELOAD, 0);
    msg->corr = ENGINE_RELOAD_CHANGED; /* the actor announces it */
    engine__deliver(e, intent_id, msg, ENGINE_SPAWN_NEW);
}

void engine_intent_changed_reserved(void *slot, const char *intent_id)
{
    engine_t *e = atomic_load((engine_t * _Atomic *)slot);
    if (e == NULL)
        return; /* stopped meanwhile: its room went with it */
    rt_msg_t *msg = rt_msg_new(ENGINE_MSG_RELOAD, 0);
    msg->corr = ENGINE_RELOAD_CHANGED;
    engine__deliver(e, intent_id, msg, ENGINE_SPAWN_RESERVED);
}

void engine_intent_created(void *slot, const intent_t *in, const char *user_id,
                           const uint8_t *signature, const char *json, size_t json_len,
                           bool reserved)
{
    engine_t *e = atomic_load((engine_t * _Atomic *)slot);
    if (e == NULL)
        return; /* not started yet: the loader reads the row */
    if (json == NULL)
        json_len = 0;
    rt_msg_t *msg = rt_msg_new(ENGINE_MSG_INIT, sizeof(engine_created_t) + json_len);
    engine_created_t *created = rt_msg_payload(msg);
    engine_intent_t *row = &created->row;
    engine_form(in, user_id, row);
    if (signature != NULL)
        memcpy(row->signature, signature, sizeof(row->signature));
    created->json_len = json_len;
    if (json_len != 0)
        memcpy(created->json, json, json_len);
    msg->corr = ENGINE_INIT_CREATED; /* announced by the actor, unlike the loader's rows */
    /* a new intent's actor is new too, so it takes this as its row; if the loader or a later
     * change got there first, it already has this row or a newer one and ignores this */
    if (!engine__deliver(e, in->id, msg, reserved ? ENGINE_SPAWN_RESERVED : ENGINE_SPAWN_NEW) &&
        !atomic_load(&e->stopping) && json_len != 0 &&
        e->config.events != NULL) /* no actor (full): its event has no other sender, sent here */
        events_publish_text(e->config.events, user_id, "intent.created", json, json_len, 0);
}

/* Whether intent `key` has its actor (a shard's lock). */
static bool has_actor(engine_t *e, const uint8_t key[16])
{
    uint64_t h = key_hash(key);
    engine_shard_t *s = shard_of(e, h);
    pthread_mutex_lock(&s->lock);
    engine_slot_t *found = shard_find(s, key, h);
    bool has = found != NULL && found->actor != NULL;
    pthread_mutex_unlock(&s->lock);
    return has;
}

bool engine_reserve(void *slot, const char *intent_id, bool *reserved)
{
    engine_t *e = atomic_load((engine_t * _Atomic *)slot);
    *reserved = false;
    if (e == NULL || atomic_load_explicit(&e->stopping, memory_order_relaxed))
        return true; /* no engine (yet, or any more): the loader reads the row when it starts */
    if (take_room(e)) {
        *reserved = true;
        return true;
    }
    /* full, but an intent that has its actor already (one created unsigned in this process)
     * needs no room */
    uint8_t key[16];
    return intent_id != NULL && engine__uuid_parse(intent_id, key) && has_actor(e, key);
}

void engine_release(void *slot)
{
    engine_t *e = atomic_load((engine_t * _Atomic *)slot);
    if (e != NULL)
        give_room(e);
}

void engine_on_outcome(void *ctx, const executor_outcome_t *outcome)
{
    engine_t *e = ctx;
    rt_msg_t *msg = rt_msg_new(ENGINE_MSG_OUTCOME, sizeof(*outcome));
    memcpy(rt_msg_payload(msg), outcome, sizeof(*outcome));
    /* an outcome for an intent without an actor (completed meanwhile, another process's) only
     * needs the database, which the executor already wrote */
    engine__deliver(e, outcome->intent_id, msg, ENGINE_SPAWN_NONE);
}

/* The follower gave back a period of the intent (a reorg took its payment off the chain): its
 * actor, spawned again if the intent had completed, reads the row and announces it. */
static void on_reopen(void *ctx, const char *intent_id)
{
    rt_msg_t *msg = rt_msg_new(ENGINE_MSG_RELOAD, 0);
    msg->corr = ENGINE_RELOAD_ANNOUNCE;
    engine__deliver(ctx, intent_id, msg, ENGINE_SPAWN_NEW);
}

static void on_clock_moved(void *ctx)
{
    broadcast(ctx, ENGINE_MSG_CLOCK);
}

bool engine__submit(engine_t *e, const executor_job_t *job)
{
    if (e->config.submit != NULL)
        return e->config.submit(e->config.submit_ctx, job);
    return e->pool != NULL && executor_submit(e->pool, job);
}

void engine__record_lateness(engine_t *e, int64_t late_us)
{
    uint64_t us = late_us > 0 ? (uint64_t)late_us : 0;
    uint64_t b = us / ENGINE_LATENESS_BUCKET_US;
    atomic_fetch_add_explicit(
        &e->lateness[b < ENGINE_LATENESS_BUCKETS ? b : ENGINE_LATENESS_BUCKETS - 1], 1,
        memory_order_relaxed);
    uint64_t max = atomic_load_explicit(&e->lateness_max_us, memory_order_relaxed);
    while (us > max && !atomic_compare_exchange_weak(&e->lateness_max_us, &max, us))
        ;
}

void engine_lateness(const engine_t *e, engine_lateness_t *out)
{
    memset(out, 0, sizeof(*out));
    uint64_t counts[ENGINE_LATENESS_BUCKETS];
    for (size_t i = 0; i != ENGINE_LATENESS_BUCKETS; ++i)
        out->count += counts[i] = atomic_load(&e->lateness[i]);
    uint64_t seen = 0;
    for (size_t i = 0; i != ENGINE_LATENESS_BUCKETS && out->count != 0; ++i) {
        seen += counts[i];
        uint64_t upper_us = (i + 1) * ENGINE_LATENESS_BUCKET_US;
        if (out->p50_us == 0 && seen * 2 >= out->count)
            out->p50_us = upper_us;
        if (out->p99_us == 0 && seen * 100 >= out->count * 99)
            out->p99_us = upper_us;
    }
    out->max_us = atomic_load(&e->lateness_max_us);
}

/* ---- the loaders: pages of live intents by id, while the API serves ----
 *
 * ENGINE_LOADERS actors, spread over the workers, each read one slice of the id space (by the
 * first hex digit), so the database's pages and the parsing run in parallel. The ranges are
 * (lo, hi]: the nil UUID, the only one below every range, is never an intent's id (ids are
 * gen_random_uuid()'s, version 4). */

typedef struct st_loader_t {
    engine_t *engine;
    char last_id[INTENT_ID_SIZE], hi_id[INTENT_ID_SIZE];
    rt_actor_timer_t retry;
    uint64_t loaded;
} loader_t;

static void load_page(rt_actor_t *self)
{
    loader_t *l = rt_actor_state(self);
    char limit[16];
    snprintf(limit, sizeof(limit), "%u", l->engine->config.load_batch);
    const char *params[] = {l->last_id, limit, l->hi_id};
    if (!store_pg_query(l->engine->config.pg, self, 0, engine__st_load, 3, params))
        rt_actor_timer_start(self, &l->retry, LOAD_RETRY_MS, 0);
}

static void load_rows(rt_actor_t *self, const PGresult *res)
{
    loader_t *l = rt_actor_state(self);
    static __thread intent_t full; /* 1.5 KiB: not on a worker's stack */
    int n = PQntuples(res);
    for (int i = 0; i != n; ++i) {
        rt_msg_t *msg = rt_msg_new(ENGINE_MSG_INIT, sizeof(engine_intent_t));
        engine_intent_t *row = rt_msg_payload(msg);
        snprintf(l->last_id, sizeof(l->last_id), "%s", PQgetvalue(res, i, 0));
        if (!engine__row_parse(l->engine, res, i, 0, row, &full)) {
            rt_log_error("engine", "intent %s: row not usable, not scheduled", l->last_id);
            rt_msg_free(msg);
            continue;
        }
        /* created since the engine started: maybe through this process's API, whose creation
         * hook may reach the actor after this row (intent_actor.c, on_init) */
        if (row->status == INTENT_ACTIVE && row->execution_count == 0 &&
            full.created_at >= l->engine->started_s - FRESH_MARGIN_S)
            msg->corr = ENGINE_INIT_FRESH;
        /* an actor the hook made meanwhile already read a newer row: it ignores this one */
        engine__deliver(l->engine, row->id, msg, ENGINE_SPAWN_NEW);
    }
    l->loaded += (uint64_t)n;
    if ((uint32_t)n < l->engine->config.load_batch) {
        uint64_t total = atomic_fetch_add(&l->engine->loaded_intents, l->loaded) + l->loaded;
        if (atomic_fetch_sub(&l->engine->loaders_running, 1) == 1) {
            atomic_store(&l->engine->loaded, true);
            rt_log_info("engine", "loaded %llu live intent(s)", (unsigned long long)total);
        }
        rt_actor_stop(self);
        return;
    }
    load_page(self);
}

static void loader_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    loader_t *l = rt_actor_state(self);
    switch (msg->type) {
    case RT_MSG_TIMER:
        load_page(self);
        break;
    case STORE_PG_MSG_RESULT: {
        store_pg_result_t *r = rt_msg_payload(msg);
        if (r->status != STORE_PG_OK) {
            rt_log_warn("engine", "loading intents: %s %s (retrying)",
                        store_pg_status_name(r->status), r->message);
            rt_actor_timer_start(self, &l->retry, LOAD_RETRY_MS, 0);
        } else {
            load_rows(self, r->results[0]);
        }
        break;
    }
    case RT_MSG_STOP:
        rt_actor_timer_cancel(self, &l->retry);
        break;
    }
}

/* ---- life cycle ---- */

/* Creates the engine; `keys` (n of them, may be NULL) become the engine's, freed with it, also
 * when this fails. */
static engine_t *engine__create(const engine_config_t *config, chain_key_t **keys, size_t n)
{
    engine_t *e = config->rt != NULL && config->pg != NULL ? calloc(1, sizeof(*e)) : NULL;
    if (e == NULL) {
        for (size_t i = 0; i != n; ++i)
            chain_key_free(keys[i]);
        return NULL;
    }
    e->config = *config;
    for (size_t i = 0; i != n; ++i)
        e->keys[i] = keys[i];
    e->num_keys = n;
    if (n != 0)
        e->config.executor.keys = (const chain_key_t *const *)e->keys;
    if (e->config.load_batch == 0 || e->config.load_batch > LOAD_BATCH_MAX)
        e->config.load_batch = LOAD_BATCH_DEFAULT;
    if (e->config.max_intents == 0)
        e->config.max_intents = MAX_INTENTS_DEFAULT;
    for (size_t i = 0; i != ENGINE_SHARDS; ++i) {
        pthread_mutex_init(&e->shards[i].lock, NULL);
        e->shards[i].cap = SHARD_CAP_MIN;
        e->shards[i].slots = calloc(SHARD_CAP_MIN, sizeof(engine_slot_t));
        if (e->shards[i].slots == NULL)
            rt_log_fatal("engine", "out of memory");
    }
    if (e->config.submit == NULL && e->config.executor.num_keys > 0) {
        executor_config_t x = e->config.executor;
        x.rpc = config->rpc;
        x.pg = config->pg;
        x.gas = config->gas;
        x.events = config->events;
        x.chain_id = config->chain_id;
        x.registry = config->registry;
        x.on_outcome = engine_on_outcome;
        x.on_outcome_ctx = e;
        x.tokens = config->tokens;
        x.num_tokens = config->num_tokens;
        e->pool = executor_pool_create(&x);
        if (e->pool == NULL) {
            engine_free(e);
            return NULL;
        }
        chain_follower_options_t fo = {.window_blocks = e->config.logs_window_blocks,
                                       .start_block = e->config.registry_start_block,
                                       .on_reopen = on_reopen,
                                       .on_reopen_ctx = e};
        chain_follower_configure(e->pool, &fo);
    }
    return e;
}

engine_t *engine_create(const engine_config_t *config)
{
    return engine__create(config, NULL, 0);
}

/* The keys of PRIVATE_KEY and EXECUTOR_KEYS into `keys`; false with a reason. */
static bool load_keys(const engine_settings_t *s, chain_key_t **keys, size_t *n, char *err,
                      size_t err_size)
{
    char list[ENGINE_MAX_KEYS * 80];
    snprintf(list, sizeof(list), "%s%s%s", s->private_key != NULL ? s->private_key : "",
             s->private_key != NULL && s->executor_keys != NULL ? "," : "",
             s->executor_keys != NULL ? s->executor_keys : "");
    char *save = NULL;
    for (char *k = strtok_r(list, ", ", &save); k != NULL; k = strtok_r(NULL, ", ", &save)) {
        if (*n == ENGINE_MAX_KEYS || chain_key_from_hex(&keys[*n], k, strlen(k)) != CHAIN_OK) {
            snprintf(err, err_size,
                     "PRIVATE_KEY/EXECUTOR_KEYS: key %zu is not 0x + 64 hex digits"
                     " (or more than %d keys)",
                     *n + 1, ENGINE_MAX_KEYS);
            explicit_bzero(list, sizeof(list));
            return false;
        }
        ++*n;
    }
    explicit_bzero(list, sizeof(list));
    if (*n == 0)
        snprintf(err, err_size, "the engine needs PRIVATE_KEY (the executor's key)");
    return *n != 0;
}

static bool read_u64(const char *name, const char *text, uint64_t min, uint64_t max, uint64_t *out,
                     char *err, size_t err_size)
{
    char *end;
    unsigned long long v = text != NULL ? strtoull(text, &end, 10) : 0;
    if (text == NULL || *text == '\0' || *end != '\0' || v < min || v > max) {
        snprintf(err, err_size, "%s must be an integer in %llu..%llu", name,
                 (unsigned long long)min, (unsigned long long)max);
        return false;
    }
    *out = v;
    return true;
}

engine_t *engine_setup(const engine_settings_t *s, const engine_config_t *config, char *err,
                       size_t err_size)
{
    engine_config_t c = *config;
    chain_key_t *keys[ENGINE_MAX_KEYS];
    size_t n = 0;
    uint64_t confirmations, budget, replace_ms, window = 0, start_block = 0;
    if (!read_u64("CONFIRMATIONS", s->confirmations, 1, 1000, &confirmations, err, err_size) ||
        !read_u64("BATCH_GAS_BUDGET", s->batch_gas_budget, 100000, 1000000000, &budget, err,
                  err_size) ||
        !read_u64("REPLACE_AFTER_MS", s->replace_after_ms, 1000, 3600000, &replace_ms, err,
                  err_size) ||
        (s->logs_block_range != NULL && !read_u64("LOGS_BLOCK_RANGE", s->logs_block_range, 1,
                                                  100000000, &window, err, err_size)) ||
        (s->registry_start_block != NULL &&
         !read_u64("REGISTRY_START_BLOCK", s->registry_start_block, 0, INT64_MAX, &start_block, err,
                   err_size)))
        return NULL;
    c.logs_window_blocks = window;
    c.registry_start_block = start_block;
    if (s->max_fee_gwei != NULL &&
        chain_u256_parse_gwei(&c.executor.max_fee_ceiling_wei, s->max_fee_gwei,
                              strlen(s->max_fee_gwei)) != CHAIN_OK) {
        snprintf(err, err_size, "MAX_FEE_GWEI must be a decimal number of gwei");
        return NULL;
    }
    if (!load_keys(s, keys, &n, err, err_size)) {
        for (size_t i = 0; i != n; ++i)
            chain_key_free(keys[i]);
        return NULL;
    }
    c.executor.keys = (const chain_key_t *const *)keys; /* copied below, before use */
    c.executor.num_keys = n;
    c.executor.confirmations = (uint32_t)confirmations;
    c.executor.batch_gas_budget = budget;
    c.executor.replace_after_ms = (uint32_t)replace_ms;
    static_assert(sizeof(((engine_t *)0)->keys) == sizeof(keys), "key arrays");
    engine_t *e = engine__create(&c, keys, n);
    if (e == NULL)
        snprintf(err, err_size, "cannot create the engine's executor");
    return e;
}

void engine_start(engine_t *e)
{
    rt_runtime_t *rt = e->config.rt;
    if (e->pool != NULL)
        executor_pool_start(e->pool, rt);
    e->readers = calloc((size_t)rt->num_workers, sizeof(rt_actor_t *));
    if (e->readers == NULL)
        rt_log_fatal("engine", "out of memory");
    for (int w = 0; w != rt->num_workers; ++w) {
        e->readers[w] = rt_actor_spawn(rt, w, engine__reader_behaviour, engine__reader_state_size);
        engine__reader_init(e->readers[w], e);
    }
    engine_clock_set_listener(on_clock_moved, e);
    e->started_s = (int64_t)time(NULL); /* before the API has its store (main.c) */
    static const char digits[] = "0123456789abcdef";
    atomic_store(&e->loaders_running, ENGINE_LOADERS);
    for (int i = 0; i != ENGINE_LOADERS; ++i) {
        e->loaders[i] = rt_actor_spawn(rt, i % rt->num_workers, loader_behaviour, sizeof(loader_t));
        loader_t *l = rt_actor_state(e->loaders[i]);
        l->engine = e;
        if (i == 0)
            snprintf(l->last_id, sizeof(l->last_id), "00000000-0000-0000-0000-000000000000");
        else
            snprintf(l->last_id, sizeof(l->last_id), "%cfffffff-ffff-ffff-ffff-ffffffffffff",
                     digits[i - 1]);
        snprintf(l->hi_id, sizeof(l->hi_id), "%cfffffff-ffff-ffff-ffff-ffffffffffff", digits[i]);
        rt_actor_send(e->loaders[i], rt_msg_new(RT_MSG_TIMER, 0)); /* the first page */
    }
}

bool engine_loaded(const engine_t *e)
{
    return atomic_load(&e->loaded);
}

size_t engine_actor_count(const engine_t *e)
{
    return atomic_load(&e->actors);
}

uint64_t engine_refused_count(const engine_t *e)
{
    return atomic_load(&e->refused);
}

executor_pool_t *engine_executor(engine_t *e)
{
    return e->pool;
}

void engine_stop(engine_t *e)
{
    atomic_store(&e->stopping, true);
    engine_clock_set_listener(NULL, NULL);
    if (e->pool != NULL)
        executor_pool_stop(e->pool);
    for (int i = 0; i != ENGINE_LOADERS; ++i)
        if (e->loaders[i] != NULL) {
            rt_actor_send_stop(e->loaders[i]);
            rt_actor_release(e->loaders[i]);
            e->loaders[i] = NULL;
        }
    for (int w = 0; e->readers != NULL && w != e->config.rt->num_workers; ++w) {
        rt_actor_send_stop(e->readers[w]);
        rt_actor_release(e->readers[w]);
        e->readers[w] = NULL;
    }
    stop_all(e);
}

void engine_free(engine_t *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i != ENGINE_SHARDS; ++i) {
        free(e->shards[i].slots);
        pthread_mutex_destroy(&e->shards[i].lock);
    }
    free(e->readers);
    if (e->pool != NULL)
        executor_pool_free(e->pool);
    for (size_t i = 0; i != e->num_keys; ++i)
        chain_key_free(e->keys[i]);
    free(e);
}
