/*
 * The chain follower. One cycle per poll: read the cursor (once), the latest header, the recent
 * headers when the head moved (reorg check), then the registry's logs of the next range (unless
 * its blocks hold only transactions our lanes follow), which of their transactions are ours, the
 * senders and block times of the others, one unit per log to adopt or cancel, and finally the
 * cursor. A failed step ends the cycle; the next poll starts it again from the cursor, and every
 * write is idempotent, so nothing is lost or done twice.
 */
#include "actors/chain_follower.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "actors/execution_model.h"
#include "actors/executor_internal.h"
#include "actors/notification_model.h"
#include "chain/abi.h"
#include "chain/hex.h"
#include "runtime/log.h"

#define REORG_WINDOW 16 /* headers re-read below the last head on each new head */
#define CHUNK_LOGS 24   /* logs adopted per round (two calls each at most) */
#define RECHECK_MAX 64  /* decided transactions of ours re-checked after a reorg */
#define RESEND_MS 1000

enum { S_IDLE, S_CURSOR, S_HEAD, S_HEADERS, S_LOGS, S_OURS, S_TXS, S_ADOPT, S_SAVE };
/* the reorg re-check runs beside the cycle, with tags of its own (the low 16 bits; a unit of
 * one re-checked transaction carries that transaction's id above them) */
enum { R_LOAD = 0x100, R_POLL, R_UPDATE, R_SEND, R_EVENTS, R_UNMINE };
#define R_TAG(corr) ((corr)&0xffff)
/* an intent whose registry count is ahead of our rows: its Executed logs are read from block 0 */
enum {
    FOLLOWER_MSG_BACKFILL = RT_MSG_USER + 0x540, /* payload: its onChainId */
    FOLLOWER_MSG_POKE, /* corr: the head a lane read (chain_follower_poke) */
};
#define BACKFILL_MAX 32  /* intents waiting for that */
#define BACKFILL_TRIES 3 /* failed reads of one before it is given up (its actor asks again) */

/* A transaction of ours whose outcome was recorded in a block a reorg replaced. */
typedef struct st_recheck_t {
    uint8_t hash[32];
    uint8_t *raw;
    size_t raw_len;
    uint64_t resent_ms;
    uint64_t block_number; /* where its receipt was last seen deep enough */
    uint64_t block_time;   /* that block's timestamp */
    /* A block the follower has not seen its header of (older than the ones it keeps, or passed
     * over): read with the next poll, for its time. 0: none wanted. */
    uint64_t header_wanted;
    uint8_t header_hash[32]; /* the header read for header_wanted (header_time 0: none yet) */
    uint64_t header_time;
    uint32_t id;  /* names its units' results */
    bool unmined; /* its rows went back to broadcast (the transaction left the chain) */
} recheck_t;

typedef struct st_block_seen_t {
    uint64_t number; /* 0: empty */
    uint8_t hash[32];
    uint64_t timestamp;
    bool ours_only; /* every transaction in it was one our lanes follow when its header was read
                     * (or it has none): its registry logs are theirs to record (read_logs) */
} block_seen_t;

/* What a foreign Executed log needs before it can be adopted. */
typedef struct st_adopt_t {
    bool ours; /* an Executed log of a transaction our lanes follow, or a live row records */
    chain_addr_t from;
    uint64_t nonce, block_time;
    bool ready;
} adopt_t;

struct st_chain_follower_t {
    executor_pool_t *pool;
    rt_actor_t *actor;
    _Atomic(rt_actor_t *) inbox; /* the actor while it takes messages from other threads */
    _Atomic uint64_t head, reorgs, cursor, base_fee;
    _Atomic bool has_base_fee;
    _Atomic bool poke_sent;         /* a FOLLOWER_MSG_POKE is on its way: at most one */
    _Atomic uint64_t poke_after_ms; /* no poke is sent before (CHAIN_FOLLOWER_POKE_MIN_MS) */
    /* the actor's state */
    int stage;
    bool cursor_loaded, cursor_known;
    uint64_t next_block, range_to, last_top;
    block_seen_t seen[CHAIN_FOLLOWER_BLOCKS];
    chain_rpc_block_header_t latest;
    chain_rpc_logs_t logs;
    adopt_t *adopt; /* per log */
    size_t *asked;  /* the logs follower_ours is asked about, in its order */
    size_t num_asked;
    size_t chunk_first, chunk_end, units_pending;
    bool units_failed;
    rt_actor_timer_t tick;
    uint8_t topic_executed[32], topic_revoked[32];
    recheck_t rechecks[RECHECK_MAX];
    size_t num_rechecks, polled_rechecks, polled_calls; /* calls: receipts, then headers */
    bool recheck_loading, recheck_polling;
    uint32_t recheck_ids;  /* the last id given */
    size_t recheck_writes; /* units of re-checked transactions not answered yet */
    uint8_t backfill[BACKFILL_MAX][32];
    size_t num_backfill;
    uint32_t backfill_tries;
    bool backfilling;       /* the cycle reads backfill[0]'s logs (and saves no cursor) */
    bool backfill_started;  /* backfill_from/to are backfill[0]'s */
    uint64_t backfill_from; /* the next block of backfill[0] to read */
    uint64_t backfill_to;   /* the safe head when its backfill began: where it ends */
    uint64_t window;        /* blocks per eth_getLogs call now (halved on a refusal) */
    uint64_t start_block;   /* the registry's deployment block */
    chain_follower_reopen_fn on_reopen;
    void *on_reopen_ctx;
    uint64_t poke_head; /* the newest head a poke named that no cycle started since has read */
};

static int st_cursor_get, st_cursor_put, st_ours, st_supersede_period, st_adopt, st_adopt_rows,
    st_revoke, st_recent, st_unmine, st_remine, st_rows_by_id;

/* The intents whose period a reorg took back (the CTE `g`: intent_id, period; $1: the
 * transaction): the count goes back to that period unless
 * another transaction's confirmed row still pays it, and a completed intent is active again (its
 * actor plans its nextExecution). lastExecution was the payment taken back: it becomes the block
 * time of the payment before, the newest confirmed row of a lower period still live (another
 * transaction's: the rows of $1 are read as they were before the statement), which is what the
 * registry's lastExecutedAt says after the reorg, so the period is planned a minInterval after
 * it. NULL when there is none, or when its block time predates store/migrations/010 (should the
 * registry then find the period too early, that failure is retried). `o` is the intent as it was
 * before the statement. Then the audit row of each intent made active again. */
#define REOPEN_CTES                                                                                \
    " it AS (UPDATE intents t SET execution_count = g.period, last_execution = (SELECT"            \
    " x.block_time FROM executions x WHERE x.intent_id = g.intent_id AND x.live AND x.status ="    \
    " 'confirmed' AND x.period < g.period AND x.tx_hash <> $1 ORDER BY x.period DESC LIMIT 1),"    \
    " status = CASE WHEN t.status = 'completed' THEN 'active' ELSE t.status END, next_execution =" \
    " CASE WHEN t.status = 'completed' THEN NULL ELSE t.next_execution END, updated_at = now()"    \
    " FROM g, intents o WHERE t.id = g.intent_id AND o.id = t.id AND t.execution_count > g.period" \
    " AND NOT EXISTS (SELECT 1 FROM executions x WHERE x.intent_id = g.intent_id AND x.period ="   \
    " g.period AND x.live AND x.status = 'confirmed' AND x.tx_hash <> $1) RETURNING t.id,"         \
    " t.owner_id, g.period, o.status AS was),"                                                     \
    " a AS (INSERT INTO audit_log (user_id, actor, action, subject_id, details) SELECT"            \
    " owner_id, 'engine', 'intent.reopened', id, jsonb_build_object('period', period,"             \
    " 'txHash', '0x' || encode($1, 'hex'), 'reason', 'reorg') FROM it WHERE was ="                 \
    " 'completed')"

/* The executor_txs row of the transaction ($1 or $3), locked before its executions rows (K_READ:
 * a condition that reads it, always true), in the order a lane's finalizing unit locks them
 * (executor_supersede_nonce first), so that a statement of the follower and a lane's unit about
 * the same transaction wait for one another rather than deadlock. */
#define K_LOCK_1 " k AS (SELECT tx_hash FROM executor_txs WHERE tx_hash = $1 FOR UPDATE),"
#define K_LOCK_3 " k AS (SELECT tx_hash FROM executor_txs WHERE tx_hash = $3 FOR UPDATE),"
#define K_READ "(SELECT count(*) FROM k) >= 0"

/* The statements of a decided transaction of ours that a reorg took off the chain. */
static void register_recheck_statements(void)
{
    /* gone from the chain: its rows are in flight again (a failed one only while no other
     * transaction holds its period), so that the users' screens and a restart's reconciliation
     * see what the chain says. A confirmed row that goes back gives its period back to the
     * intent (REOPEN_CTES; o reads the rows as they were before this statement); the third
     * column says whether the engine must read the intent's row again. The transaction is in
     * flight again in executor_txs (store/migrations/009). */
    st_unmine = store_pg_statement(
        "follower_unmine",
        "WITH" K_LOCK_1 " u AS (UPDATE executions e SET status = 'broadcast', block_number ="
        " NULL, block_hash = NULL, block_time = NULL, gas_used = NULL, gas_price_wei = NULL,"
        " error = NULL, confirmed_at = NULL WHERE " K_READ
        " AND e.tx_hash = $1 AND (e.status = 'confirmed' OR (e.status = 'failed' AND NOT EXISTS"
        " (SELECT 1 FROM executions x WHERE x.intent_id = e.intent_id AND x.period = e.period AND"
        " x.live))) RETURNING e.id, e.intent_id, e.period),"
        " tx AS (UPDATE executor_txs SET in_flight = true WHERE tx_hash = $1 AND EXISTS (SELECT 1"
        " FROM u)),"
        " g AS (SELECT u.intent_id, min(u.period) AS period FROM u JOIN executions o ON o.id ="
        " u.id WHERE o.status = 'confirmed' GROUP BY u.intent_id)," REOPEN_CTES
        " SELECT u.id::text, u.intent_id::text, EXISTS (SELECT 1 FROM it WHERE it.id ="
        " u.intent_id) FROM u");
    /* mined (again) deep enough: each row takes the block and the outcome its receipt's logs
     * give it now ($4..$6: intent id as hex, count, error or NULL; $7: the whole transaction
     * reverted; executor_txs keeps the greatest block) and the block's time ($10, NULL when the
     * follower has not seen the block: unknown), which the intent's last_execution takes when the
     * row pays its newest period. A row of a payment the chain undid gives its period back to
     * the intent's count (REOPEN_CTES, when the intent counted it); a failed row that the chain
     * now pays is the adoption's to repair (the follower's Executed logs), since another
     * transaction may hold its period meanwhile. A row still as v read it only: a lane that
     * follows the transaction (taken back in flight after the reorg) may decide it at the same
     * moment, and the update, waiting for that commit, would else write and report the same outcome
     * a second time. */
    st_remine = store_pg_statement(
        "follower_remine",
        "WITH" K_LOCK_1 " o AS (SELECT decode(h, 'hex') AS oc, p, err FROM unnest($4::text[],"
        " $5::int[], $6::text[]) AS o(h, p, err)),"
        " v AS (SELECT e.id, e.status AS was, CASE WHEN NOT $7::bool AND o.p IS NOT NULL AND o.err"
        " IS NULL THEN 'confirmed' ELSE 'failed' END AS now, CASE WHEN $7::bool THEN 'the"
        " transaction reverted' WHEN o.p IS NULL THEN 'no outcome in the receipt' ELSE o.err END"
        " AS err FROM executions e JOIN intents i ON i.id = e.intent_id LEFT JOIN o ON o.oc ="
        " i.on_chain_id AND o.p = e.period WHERE " K_READ " AND e.tx_hash = $1 AND e.status IN"
        " ('broadcast', 'confirmed', 'failed')),"
        " ex AS (UPDATE executions e SET status = v.now, error = CASE WHEN v.now = 'failed' THEN"
        " v.err END, block_number = $2, block_hash = $3, block_time = to_timestamp($10::bigint),"
        " gas_used = $8::bigint, gas_price_wei = $9::numeric, confirmed_at ="
        " COALESCE(e.confirmed_at, now()) FROM v WHERE e.id = v.id"
        " AND e.status = v.was AND NOT (v.was = 'failed' AND v.now = 'confirmed') AND (v.was <>"
        " v.now OR e.block_hash IS DISTINCT FROM $3) RETURNING e.id, e.intent_id, e.period,"
        " e.status, e.error, v.was),"
        " tx AS (UPDATE executor_txs SET block_number = GREATEST(block_number, $2) WHERE tx_hash ="
        " $1 AND EXISTS (SELECT 1 FROM ex)),"
        " up AS (UPDATE intents t SET execution_count = GREATEST(t.execution_count, ex.period +"
        " 1), last_execution = CASE WHEN ex.period + 1 >= t.execution_count THEN"
        " COALESCE(to_timestamp($10::bigint), t.last_execution) ELSE t.last_execution END,"
        " updated_at = now() FROM ex WHERE t.id = ex.intent_id AND ex.status = 'confirmed'),"
        " g AS (SELECT ex.intent_id, ex.period FROM ex JOIN intents c ON c.id = ex.intent_id"
        " WHERE ex.was <> ex.status AND ex.status <> 'confirmed' AND c.execution_count ="
        " ex.period + 1)," REOPEN_CTES
        " SELECT ex.id::text, ex.intent_id::text, i.owner_id::text, ex.period, ex.status, ex.was,"
        " COALESCE(ex.error, ''), EXISTS (SELECT 1 FROM it WHERE it.id = ex.intent_id) FROM ex"
        " JOIN intents i ON i.id = ex.intent_id");
    st_rows_by_id = store_pg_statement(
        "follower_rows_by_id", "SELECT " EXECUTION_COLUMNS ", i.owner_id::text FROM " EXECUTION_FROM
                               " WHERE e.id = ANY($1::uuid[])");
}

void chain_follower_register_statements(void)
{
    register_recheck_statements();
    /* A transaction's raw bytes are kept in one of its rows only (actors/executor.c), which may
     * since have been marked replaced: the bytes come from any row of the hash. The transactions
     * with a row decided in a block >= $1: executor_txs by block (a block at least each decided
     * row's, store/migrations/009), then the rows say whether one still is. */
    st_recent = store_pg_statement(
        "follower_recent",
        "SELECT h.tx_hash, r.raw_tx FROM executor_txs h"
        " CROSS JOIN LATERAL (SELECT raw_tx FROM executions x WHERE x.tx_hash = h.tx_hash"
        "   AND length(x.raw_tx) > 0 LIMIT 1) r WHERE h.block_number >= $1 AND EXISTS (SELECT 1"
        "   FROM executions d WHERE d.tx_hash = h.tx_hash AND d.block_number >= $1 AND d.status IN"
        "   ('confirmed', 'failed')) ORDER BY h.tx_hash LIMIT 64");
    st_cursor_get = store_pg_statement(
        "follower_cursor_get",
        "SELECT next_block FROM chain_cursors WHERE chain_id = $1 AND registry = $2");
    st_cursor_put = store_pg_statement(
        "follower_cursor_put",
        "INSERT INTO chain_cursors (chain_id, registry, next_block) VALUES ($1, $2, $3)"
        " ON CONFLICT (chain_id, registry) DO UPDATE SET next_block = excluded.next_block,"
        " updated_at = now()");
    /* the logs (tx hash, intent, count; as hex text) that a live row of ours records: those the
     * lanes decide. A row of that transaction that is replaced or failed is not such a row:
     * the chain says it paid the period, so the follower makes the database agree. */
    st_ours = store_pg_statement(
        "follower_ours",
        "SELECT l.k FROM unnest($1::text[], $2::text[], $3::int[])"
        " WITH ORDINALITY AS l(h, id, p, k) WHERE EXISTS (SELECT 1 FROM executions e"
        " JOIN intents i ON i.id = e.intent_id WHERE e.tx_hash = decode(l.h, 'hex')"
        " AND i.on_chain_id = decode(l.id, 'hex') AND e.period = l.p AND e.live)");
    /* the period is paid by the log's transaction: a live row of another transaction for it
     * can never be mined successfully */
    st_supersede_period = store_pg_statement(
        "follower_supersede_period",
        "UPDATE executions e SET status = 'replaced' FROM intents i WHERE i.on_chain_id = $1 AND"
        " e.intent_id = i.id AND e.period = $2 AND e.live AND e.status IN ('signed', 'broadcast')"
        " AND e.tx_hash <> $3 AND NOT EXISTS (SELECT 1 FROM executions x WHERE x.tx_hash = $3 AND"
        " x.intent_id = i.id AND x.period = $2 AND x.live)");
    /* the row of the log's (transaction, intent, period) becomes confirmed, with its block's time
     * ($9, as the intent's last_execution): ours that was marked replaced or failed (at most one
     * of them), or a new one for another executor's; its transaction in executor_txs (a new one
     * not in flight), with the greatest block */
    st_adopt = store_pg_statement(
        "follower_adopt",
        "WITH" K_LOCK_3 " i AS (SELECT id, owner_id, name FROM intents WHERE on_chain_id = $1"
        " AND " K_READ "),"
        " fix AS (UPDATE executions e SET status = 'confirmed', error = NULL, block_number = $7,"
        " block_hash = $8, block_time = to_timestamp($9), broadcast_at = COALESCE(e.broadcast_at,"
        " now()), confirmed_at = now()"
        " WHERE e.id = (SELECT x.id FROM executions x JOIN i ON x.intent_id = i.id WHERE"
        " x.tx_hash = $3 AND x.period = $2 AND x.status IN ('replaced', 'failed') ORDER BY"
        " x.created_at DESC LIMIT 1) AND NOT EXISTS (SELECT 1 FROM executions x JOIN i ON"
        " x.intent_id = i.id WHERE x.period = $2 AND x.live)"
        " RETURNING e.intent_id, e.period),"
        " ins AS (INSERT INTO executions (intent_id, period, status, amount, executor, nonce,"
        " raw_tx, tx_hash, block_number, block_hash, block_time, broadcast_at, confirmed_at)"
        " SELECT i.id, $2, 'confirmed', $6, $4, $5, ''::bytea, $3, $7, $8, to_timestamp($9), now(),"
        " now() FROM i"
        " WHERE NOT EXISTS (SELECT 1 FROM executions x WHERE x.tx_hash = $3 AND x.intent_id ="
        " i.id AND x.period = $2)"
        " ON CONFLICT (intent_id, period) WHERE live DO NOTHING"
        " RETURNING intent_id, period),"
        " ex AS (SELECT * FROM fix UNION ALL SELECT * FROM ins),"
        " tx AS (INSERT INTO executor_txs (tx_hash, executor, nonce, in_flight, block_number)"
        " SELECT $3, $4, $5, false, $7 WHERE EXISTS (SELECT 1 FROM ex) ON CONFLICT (tx_hash) DO"
        " UPDATE SET block_number = GREATEST(executor_txs.block_number, excluded.block_number)),"
        " it AS (UPDATE intents t SET execution_count = GREATEST(t.execution_count, ex.period + 1),"
        " last_execution = GREATEST(t.last_execution, to_timestamp($9)), status = CASE WHEN"
        " t.status IN ('cancelled', 'failed', 'completed') THEN t.status WHEN t.max_executions IS"
        " NOT NULL AND GREATEST(t.execution_count, ex.period + 1) >= t.max_executions THEN"
        " 'completed' WHEN t.status = 'delayed' THEN 'active' ELSE t.status END, delay_reason ="
        " NULL, updated_at = now() FROM ex WHERE t.id = ex.intent_id RETURNING t.id),"
        " n AS (INSERT INTO notifications (user_id, type, title, message, intent_id)"
        " SELECT i.owner_id, 'execution_succeeded', 'Payment sent', format('%s: payment %s was"
        " made on chain.', i.name, ex.period + 1), i.id FROM ex JOIN i ON i.id = ex.intent_id"
        " RETURNING intent_id::text, user_id::text, " NOTIFICATION_COLUMNS "),"
        " a AS (INSERT INTO audit_log (user_id, actor, action, subject_id, details)"
        " SELECT i.owner_id, 'engine', 'execution.adopted', i.id, jsonb_build_object('period',"
        " ex.period, 'txHash', '0x' || encode($3, 'hex'), 'blockNumber', $7::bigint) FROM ex"
        " JOIN i ON i.id = ex.intent_id)"
        " SELECT * FROM n");
    st_adopt_rows = store_pg_statement(
        "follower_adopt_rows", "SELECT " EXECUTION_COLUMNS ", i.owner_id::text FROM " EXECUTION_FROM
                               " WHERE e.tx_hash = $1 AND i.on_chain_id = $2 AND e.period = $3"
                               " AND e.status = 'confirmed'");
    st_revoke = store_pg_statement(
        "follower_revoke",
        "WITH c AS (UPDATE intents SET status = 'cancelled', delay_reason = NULL, next_execution ="
        " NULL, updated_at = now() WHERE on_chain_id = $1 AND status NOT IN ('cancelled',"
        " 'completed', 'failed') RETURNING id, owner_id),"
        " a AS (INSERT INTO audit_log (user_id, actor, action, subject_id, details)"
        " SELECT owner_id, 'engine', 'intent.revoked_on_chain', id, jsonb_build_object('txHash',"
        " '0x' || encode($2, 'hex')) FROM c)"
        " SELECT id::text, owner_id::text FROM c");
}

/* ---- small helpers ---- */

static void backfill_pop(chain_follower_t *f)
{
    memmove(f->backfill[0], f->backfill[1], (f->num_backfill - 1) * 32);
    --f->num_backfill;
    f->backfill_tries = 0;
    f->backfill_started = false;
}

static void fail_cycle(chain_follower_t *f, const char *what)
{
    rt_log_warn("follower", "%s: retrying at the next poll", what);
    f->stage = S_IDLE;
    if (f->backfilling && ++f->backfill_tries == BACKFILL_TRIES) {
        rt_log_warn("follower", "an intent's Executed logs cannot be read: given up");
        backfill_pop(f);
    }
    f->backfilling = false;
}

static const block_seen_t *seen_at(const chain_follower_t *f, uint64_t number)
{
    const block_seen_t *b = &f->seen[number % CHAIN_FOLLOWER_BLOCKS];
    return b->number == number && number != 0 ? b : NULL;
}

static bool send_calls(rt_actor_t *self, chain_follower_t *f, chain_rpc_call_t *calls, size_t n,
                       int stage)
{
    f->stage = stage;
    if (chain_rpc_send(self, f->pool->c.rpc, calls, n, 0, (uint64_t)stage) == CHAIN_RPC_OK)
        return true;
    fail_cycle(f, "the node client is busy");
    return false;
}

static bool query(rt_actor_t *self, chain_follower_t *f, int stage, int statement, int nparams,
                  const char *const *params)
{
    f->stage = stage;
    if (store_pg_query(f->pool->c.pg, self, (uint64_t)stage, statement, nparams, params))
        return true;
    fail_cycle(f, "the database queue is full");
    return false;
}

static void key_params(chain_follower_t *f, char chain_id[24], char registry[48])
{
    snprintf(chain_id, 24, "%llu", (unsigned long long)f->pool->c.chain_id);
    executor__bytea(registry, f->pool->c.registry.bytes, 20);
}

static uint64_t safe_head(const chain_follower_t *f)
{
    uint32_t conf = f->pool->c.confirmations;
    uint64_t head = atomic_load(&f->head);
    return head + 1 >= conf ? head + 1 - conf : 0;
}

/* ---- decided executions after a reorg ---- */

/* Loads our transactions decided at or after `fork`: a reorg deeper than CONFIRMATIONS may have
 * taken them off the chain. */
static void recheck_load(rt_actor_t *self, chain_follower_t *f, uint64_t fork)
{
    char from[24];
    snprintf(from, sizeof(from), "%llu", (unsigned long long)fork);
    const char *params[] = {from};
    if (!f->recheck_loading)
        f->recheck_loading = store_pg_query(f->pool->c.pg, self, R_LOAD, st_recent, 1, params);
}

static void on_recheck_load(chain_follower_t *f, const store_pg_result_t *r)
{
    f->recheck_loading = false;
    if (r->status != STORE_PG_OK)
        return;
    const PGresult *res = r->results[0];
    for (int row = 0; row != PQntuples(res) && f->num_rechecks != RECHECK_MAX; ++row) {
        recheck_t *c = &f->rechecks[f->num_rechecks];
        const char *raw = PQgetvalue(res, row, 1);
        size_t hex_len = strlen(raw) > 2 ? strlen(raw) - 2 : 0;
        bool known = false;
        if (!executor__bytea_read(PQgetvalue(res, row, 0), c->hash, 32))
            continue;
        for (size_t i = 0; i != f->num_rechecks && !known; ++i)
            known = memcmp(f->rechecks[i].hash, c->hash, 32) == 0;
        if (known || (c->raw = malloc(hex_len / 2 + 1)) == NULL)
            continue;
        if (chain_hex_decode(c->raw, hex_len / 2 + 1, &c->raw_len, raw + 2, hex_len, 0) !=
            CHAIN_OK) {
            free(c->raw);
            continue;
        }
        c->resent_ms = 0;
        c->block_time = c->header_wanted = c->header_time = 0;
        c->id = ++f->recheck_ids;
        c->unmined = false;
        ++f->num_rechecks;
    }
}

static void recheck_poll(rt_actor_t *self, chain_follower_t *f)
{
    /* one round at a time: a transaction's rows are written before it is looked at again, so
     * that an older write never lands after a newer one */
    if (f->recheck_polling || f->recheck_writes != 0 || f->num_rechecks == 0)
        return;
    chain_rpc_call_t calls[2 * RECHECK_MAX];
    size_t n = 0;
    for (size_t i = 0; i != f->num_rechecks; ++i)
        calls[n++] = chain_rpc_eth_get_transaction_receipt(f->rechecks[i].hash);
    for (size_t i = 0; i != f->num_rechecks; ++i) /* then the headers wanted, in that order */
        if (f->rechecks[i].header_wanted != 0)
            calls[n++] = chain_rpc_eth_get_block_by_number(
                chain_rpc_block_number(f->rechecks[i].header_wanted));
    f->polled_rechecks = f->num_rechecks;
    f->polled_calls = n;
    f->recheck_polling = chain_rpc_send(self, f->pool->c.rpc, calls, n, 0, R_POLL) == CHAIN_RPC_OK;
}

static bool recheck_write(rt_actor_t *self, chain_follower_t *f, const recheck_t *c, int tag,
                          int statement, int nparams, const char *const *params)
{
    uint64_t corr = (uint64_t)tag | ((uint64_t)c->id << 16);
    if (!store_pg_query(f->pool->c.pg, self, corr, statement, nparams, params))
        return false;
    ++f->recheck_writes;
    return true;
}

/* Appends `text` to a PostgreSQL array literal as a quoted element. */
static char *array_quote(char *p, const char *text)
{
    *p++ = '"';
    for (; *text != '\0'; ++text) {
        if (*text == '"' || *text == '\\')
            *p++ = '\\';
        *p++ = *text;
    }
    *p++ = '"';
    return p;
}

/* The receipt's registry logs as the three arrays of follower_remine (intent, count, error). */
static bool receipt_outcomes(const chain_follower_t *f, const chain_rpc_receipt_t *rc, char **ids,
                             char **counts, char **errors)
{
    size_t n = rc->logs.count;
    char *d = *ids = malloc(n * 65 + 3), *c = *counts = malloc(n * 12 + 3),
         *e = *errors = malloc(n * 2 * 256 + 3);
    if (d == NULL || c == NULL || e == NULL)
        return false;
    *d++ = *c++ = *e++ = '{';
    for (size_t k = 0, m = 0; k != n; ++k) {
        chain_abi_event_t ev;
        if (!executor__outcome_event(f->pool, &rc->logs.items[k], &ev))
            continue;
        if (m++ != 0)
            *d++ = *c++ = *e++ = ',';
        chain_hex_encode(d, 65, ev.intent_id, 32, 0);
        d += 64;
        c += sprintf(c, "%u", ev.count);
        if (ev.kind == CHAIN_ABI_EVENT_KIND_EXECUTED) {
            e += sprintf(e, "NULL");
        } else {
            char reason[256];
            executor__revert_reason(ev.reason, ev.reason_len, reason, sizeof(reason));
            e = array_quote(e, reason);
        }
    }
    *d++ = *c++ = *e++ = '}';
    *d = *c = *e = '\0';
    return true;
}

/* Mined deep enough (again): the rows take the block and the outcomes the receipt gives. */
static void recheck_settle(rt_actor_t *self, chain_follower_t *f, recheck_t *c,
                           const chain_rpc_receipt_t *rc)
{
    char hash[67], number[24], block[67], gas[24], price[CHAIN_U256_DEC_SIZE];
    char *ids = NULL, *counts = NULL, *errors = NULL;
    if (receipt_outcomes(f, rc, &ids, &counts, &errors)) {
        executor__bytea(hash, c->hash, 32);
        snprintf(number, sizeof(number), "%llu", (unsigned long long)rc->block_number);
        executor__bytea(block, rc->block_hash, 32);
        snprintf(gas, sizeof(gas), "%llu", (unsigned long long)rc->gas_used);
        if (rc->has_effective_gas_price)
            chain_u256_to_dec(&rc->effective_gas_price, price);
        const char *reverted = rc->success ? "false" : "true",
                   *gas_price = rc->has_effective_gas_price ? price : NULL;
        char time_s[24];
        snprintf(time_s, sizeof(time_s), "%llu", (unsigned long long)c->block_time);
        const char *params[] = {hash,   number,   block, ids,       counts,
                                errors, reverted, gas,   gas_price, time_s};
        recheck_write(self, f, c, R_UPDATE, st_remine, 10, params);
    }
    free(ids), free(counts), free(errors);
}

/* The time of the block `rc` names, from the headers the follower keeps or the one read for
 * this re-check (its hash checked); false when neither has it: the next poll reads it. */
static bool recheck_block_time(const chain_follower_t *f, recheck_t *c,
                               const chain_rpc_receipt_t *rc)
{
    const block_seen_t *b = seen_at(f, rc->block_number);
    c->block_number = rc->block_number;
    if (b != NULL && memcmp(b->hash, rc->block_hash, 32) == 0) {
        c->block_time = b->timestamp;
        return true;
    }
    if (c->header_wanted == rc->block_number && c->header_time != 0 &&
        memcmp(c->header_hash, rc->block_hash, 32) == 0) {
        c->block_time = c->header_time;
        return true;
    }
    c->header_wanted = rc->block_number;
    c->header_time = 0;
    return false;
}

/* Deep enough again: the rows follow the block it is in now (and its outcomes), and the
 * re-check ends once that is written. Missing: the stored bytes go to the node again (the
 * transaction may be back in its pool, or not); still missing at the next look, its rows go back
 * to broadcast until it is mined again. */
static void recheck_one(rt_actor_t *self, chain_follower_t *f, recheck_t *c,
                        const chain_rpc_receipt_t *rc)
{
    uint32_t conf = f->pool->c.confirmations;
    if (rc != NULL) {
        if (atomic_load(&f->head) + 1 >= rc->block_number + conf && recheck_block_time(f, c, rc))
            recheck_settle(self, f, c, rc);
        return;
    }
    if (c->resent_ms != 0 && !c->unmined) {
        char hash[67];
        executor__bytea(hash, c->hash, 32);
        const char *params[] = {hash};
        recheck_write(self, f, c, R_UNMINE, st_unmine, 1, params);
    }
    if (rt_now_ms() - c->resent_ms >= RESEND_MS) {
        c->resent_ms = rt_now_ms();
        rt_log_warn("follower", "a decided transaction left the chain in a reorg: sent again");
        chain_rpc_call_t call = chain_rpc_eth_send_raw_transaction(c->raw, c->raw_len);
        chain_rpc_send(self, f->pool->c.rpc, &call, 1, 0, R_SEND);
    }
}

static void on_recheck_poll(rt_actor_t *self, chain_follower_t *f, const chain_rpc_reply_t *r)
{
    f->recheck_polling = false;
    if (r->error != CHAIN_RPC_OK || r->count != f->polled_calls)
        return;
    for (size_t i = 0, k = f->polled_rechecks; i != f->polled_rechecks; ++i) {
        recheck_t *c = &f->rechecks[i];
        if (c->header_wanted == 0)
            continue;
        size_t len;
        bool found = false;
        chain_rpc_block_header_t h;
        const char *json = chain_rpc_reply_result(r, k++, &len);
        if (json != NULL && chain_rpc_result_block_header(json, len, &h, &found) == CHAIN_OK &&
            found && h.number == c->header_wanted) {
            memcpy(c->header_hash, h.hash, 32);
            c->header_time = h.timestamp;
        }
    }
    for (size_t i = 0; i != f->polled_rechecks; ++i) {
        size_t len;
        bool found = false;
        chain_rpc_receipt_t rc;
        const char *json = chain_rpc_reply_result(r, i, &len);
        if (json != NULL && chain_rpc_result_receipt(json, len, &rc, &found) == CHAIN_OK) {
            recheck_one(self, f, &f->rechecks[i], found ? &rc : NULL);
            if (found)
                chain_rpc_receipt_free(&rc);
        }
    }
}

/* Tells the intents' actors of the rows whose outcome the new chain changed (follower_remine's
 * answer: id, intent, owner, period, status, status before, error). */
static void recheck_report(chain_follower_t *f, const PGresult *res, uint64_t block_number,
                           uint64_t block_time)
{
    executor_pool_t *pool = f->pool;
    for (int row = 0; row != PQntuples(res) && pool->c.on_outcome != NULL; ++row) {
        const char *now = PQgetvalue(res, row, 4);
        if (strcmp(now, PQgetvalue(res, row, 5)) == 0)
            continue; /* the same outcome in another block */
        executor_outcome_t o = {.status = strcmp(now, "confirmed") == 0 ? EXECUTOR_CONFIRMED
                                                                        : EXECUTOR_FAILED,
                                .period = (uint32_t)atol(PQgetvalue(res, row, 3)),
                                .block_number = block_number,
                                .block_time_s = (int64_t)block_time,
                                .by_us = true};
        snprintf(o.intent_id, sizeof(o.intent_id), "%s", PQgetvalue(res, row, 1));
        snprintf(o.user_id, sizeof(o.user_id), "%s", PQgetvalue(res, row, 2));
        snprintf(o.error, sizeof(o.error), "%s", PQgetvalue(res, row, 6));
        pool->c.on_outcome(pool->c.on_outcome_ctx, &o);
    }
}

/* Tells the engine of each intent whose period the rows written gave back (column `col` true,
 * column 1 the intent's id), so that its actor reads the row again (and one that had completed
 * has an actor again). */
static void reopened(chain_follower_t *f, const PGresult *res, int col)
{
    if (f->on_reopen == NULL || PQnfields(res) <= col)
        return;
    for (int row = 0; row != PQntuples(res); ++row) {
        bool seen = false; /* a transaction may hold several periods of one intent */
        for (int k = 0; k != row && !seen; ++k)
            seen = strcmp(PQgetvalue(res, k, 1), PQgetvalue(res, row, 1)) == 0;
        if (!seen && PQgetvalue(res, row, col)[0] == 't')
            f->on_reopen(f->on_reopen_ctx, PQgetvalue(res, row, 1));
    }
}

/* Reads the rows whose ids are column 0 of `ids` and publishes them as execution.* events of
 * their status (a unit of its own, after the one that wrote them committed). */
static void publish_rows(rt_actor_t *self, chain_follower_t *f, const PGresult *ids)
{
    int n = PQntuples(ids);
    if (f->pool->c.events == NULL || n == 0)
        return;
    char *text = malloc((size_t)n * 38 + 3), *p = text;
    if (text == NULL)
        return;
    *p++ = '{';
    for (int row = 0; row != n; ++row)
        p += sprintf(p, "%s%.36s", row == 0 ? "" : ",", PQgetvalue(ids, row, 0));
    *p++ = '}';
    *p = '\0';
    const char *params[] = {text};
    store_pg_query(f->pool->c.pg, self, R_EVENTS, st_rows_by_id, 1, params);
    free(text);
}

/* The answer of a re-checked transaction's unit: on success the re-check moves on (or ends),
 * the intents' actors hear of outcomes that changed, and the rows written go out as events. */
static void on_recheck_write(rt_actor_t *self, chain_follower_t *f, uint64_t corr,
                             const store_pg_result_t *r)
{
    --f->recheck_writes;
    uint32_t id = (uint32_t)(corr >> 16);
    size_t kept = 0;
    for (size_t i = 0; i != f->num_rechecks; ++i) {
        recheck_t *c = &f->rechecks[i];
        if (c->id == id && r->status == STORE_PG_OK && R_TAG(corr) == R_UNMINE)
            c->unmined = true;
        if (c->id == id && r->status == STORE_PG_OK && R_TAG(corr) == R_UPDATE) {
            recheck_report(f, r->results[0], c->block_number, c->block_time);
            free(c->raw);
            continue; /* settled: the re-check of this transaction is over */
        }
        f->rechecks[kept++] = *c;
    }
    f->num_rechecks = kept;
    if (r->status != STORE_PG_OK) {
        rt_log_warn("follower", "a re-checked transaction's rows were not written: %s %s",
                    store_pg_status_name(r->status), r->message);
        return;
    }
    publish_rows(self, f, r->results[0]);
    reopened(f, r->results[0], R_TAG(corr) == R_UNMINE ? 2 : 7);
    if (R_TAG(corr) == R_UNMINE && PQntuples(r->results[0]) != 0) /* in flight, unfollowed */
        executor__pool_broadcast(f->pool, EXECUTOR_MSG_ADOPT, 0);
}

/* ---- heads and reorgs ---- */

static void start_cycle(rt_actor_t *self, chain_follower_t *f)
{
    if (!f->cursor_loaded) {
        char chain_id[24], registry[48];
        key_params(f, chain_id, registry);
        const char *params[] = {chain_id, registry};
        query(self, f, S_CURSOR, st_cursor_get, 2, params);
        return;
    }
    chain_rpc_call_t call = chain_rpc_eth_get_block_by_number(chain_rpc_block_tag("latest"));
    send_calls(self, f, &call, 1, S_HEAD);
}

static void read_logs(rt_actor_t *self, chain_follower_t *f);
static bool followed(void *pool, const uint8_t hash[32]);
static void remember(chain_follower_t *f, const chain_rpc_block_header_t *h, bool ours_only);
static void head_seen(rt_actor_t *self, chain_follower_t *f, const chain_rpc_block_header_t *top);

static void on_head(rt_actor_t *self, chain_follower_t *f, const chain_rpc_reply_t *r)
{
    size_t len;
    bool found = false;
    const char *json = r->error == CHAIN_RPC_OK ? chain_rpc_reply_result(r, 0, &len) : NULL;
    if (json == NULL || chain_rpc_result_block_header(json, len, &f->latest, &found) != CHAIN_OK ||
        !found) {
        fail_cycle(f, "no latest block from the node");
        return;
    }
    const block_seen_t *b = seen_at(f, f->latest.number);
    if (b != NULL && memcmp(b->hash, f->latest.hash, 32) == 0 && f->latest.number == f->last_top) {
        read_logs(self, f); /* nothing new */
        return;
    }
    /* The next block on the last one seen: its parent hash is the hash held for that block, which
     * commits to every block below it, so none of them changed and no header needs reading (the
     * window below is re-read only when the head jumped or its parent is not the one seen: a
     * window of headers is megabytes on a busy chain, and the lanes record nothing before the
     * follower has seen their block). */
    const block_seen_t *parent = seen_at(f, f->last_top);
    if (f->latest.number == f->last_top + 1 && parent != NULL &&
        memcmp(parent->hash, f->latest.parent_hash, 32) == 0) {
        remember(f, &f->latest, chain_rpc_result_block_txs_all(json, len, followed, f->pool));
        head_seen(self, f, &f->latest);
        return;
    }
    uint64_t top = f->latest.number,
             lo = f->last_top > REORG_WINDOW ? f->last_top - REORG_WINDOW : 1;
    if (lo > top || top - lo + 1 > CHAIN_FOLLOWER_BLOCKS)
        lo = top + 1 > CHAIN_FOLLOWER_BLOCKS ? top + 1 - CHAIN_FOLLOWER_BLOCKS : 1;
    if (lo == 0)
        lo = 1;
    chain_rpc_call_t calls[CHAIN_FOLLOWER_BLOCKS];
    size_t n = 0;
    for (uint64_t k = lo; k <= top && n != CHAIN_FOLLOWER_BLOCKS; ++k)
        calls[n++] = chain_rpc_eth_get_block_by_number(chain_rpc_block_number(k));
    if (n == 0) {
        read_logs(self, f);
        return;
    }
    send_calls(self, f, calls, n, S_HEADERS);
}

/* Whether a lane follows the transaction `hash` (chain_rpc_result_block_txs_all's predicate). */
static bool followed(void *pool, const uint8_t hash[32])
{
    return executor__pool_follows(pool, hash);
}

/* Compares the headers read with those seen before: the lowest differing number is a reorg. */
static void on_headers(rt_actor_t *self, chain_follower_t *f, const chain_rpc_reply_t *r)
{
    chain_rpc_block_header_t h[CHAIN_FOLLOWER_BLOCKS];
    /* at least one: the newest header read is the head seen (sent only with calls, see above) */
    if (r->error != CHAIN_RPC_OK || r->count == 0 || r->count > CHAIN_FOLLOWER_BLOCKS) {
        fail_cycle(f, "no recent headers from the node");
        return;
    }
    uint64_t fork = 0;
    bool ours_only[CHAIN_FOLLOWER_BLOCKS];
    for (uint32_t i = 0; i != r->count; ++i) {
        size_t len;
        bool found = false;
        const char *json = chain_rpc_reply_result(r, i, &len);
        if (json == NULL || chain_rpc_result_block_header(json, len, &h[i], &found) != CHAIN_OK ||
            !found) {
            fail_cycle(f, "an unreadable header");
            return;
        }
        ours_only[i] = chain_rpc_result_block_txs_all(json, len, followed, f->pool);
        const block_seen_t *b = seen_at(f, h[i].number);
        if (fork == 0 && b != NULL && memcmp(b->hash, h[i].hash, 32) != 0)
            fork = h[i].number;
    }
    uint64_t top = h[r->count - 1].number;
    if (fork == 0 && f->last_top > top && seen_at(f, top + 1) != NULL)
        fork = top + 1; /* the chain got shorter */
    for (uint32_t i = 0; i != r->count; ++i)
        remember(f, &h[i], ours_only[i]);
    for (uint64_t k = top + 1; k <= f->last_top; ++k) /* blocks that no longer exist */
        if (seen_at(f, k) != NULL)
            f->seen[k % CHAIN_FOLLOWER_BLOCKS].number = 0;
    if (fork != 0) {
        atomic_fetch_add(&f->reorgs, 1);
        rt_log_warn("follower", "reorg from block %llu: receipts and logs are read again",
                    (unsigned long long)fork);
        if (f->cursor_known && f->next_block > fork)
            f->next_block = fork;
        executor__pool_broadcast(f->pool, EXECUTOR_MSG_REORG, top);
        recheck_load(self, f, fork);
    }
    head_seen(self, f, &h[r->count - 1]);
}

/* Keeps a header read (its number, hash and time) in the window of blocks seen. */
static void remember(chain_follower_t *f, const chain_rpc_block_header_t *h, bool ours_only)
{
    block_seen_t *b = &f->seen[h->number % CHAIN_FOLLOWER_BLOCKS];
    b->number = h->number, b->timestamp = h->timestamp, b->ours_only = ours_only;
    memcpy(b->hash, h->hash, 32);
}

/* `top` is the head now, checked against the blocks seen: its base fee, the lanes and the gas
 * oracle told, then the logs. */
static void head_seen(rt_actor_t *self, chain_follower_t *f, const chain_rpc_block_header_t *top)
{
    if (top->has_base_fee) {
        atomic_store(&f->base_fee, top->base_fee_per_gas.limb[0]);
        atomic_store(&f->has_base_fee, true);
    }
    bool moved = top->number != f->last_top;
    f->last_top = top->number;
    atomic_store(&f->head, top->number);
    if (moved) {
        if (f->pool->c.gas != NULL)
            gas_oracle_on_head(f->pool->c.gas, top->number);
        executor__pool_broadcast(f->pool, EXECUTOR_MSG_HEAD, top->number);
    }
    read_logs(self, f);
}

/* ---- the registry's logs ---- */

/* With the cursor caught up: the Executed logs of the first intent waiting for a backfill, from
 * the registry's deployment block to the safe head of when it began, one window per cycle (the
 * intent's indexed id keeps each answer small), for the adoption. */
static void read_backfill(rt_actor_t *self, chain_follower_t *f, uint64_t safe)
{
    if (!f->backfill_started) {
        f->backfill_started = true;
        f->backfill_from = f->start_block;
        f->backfill_to = safe;
    }
    if (f->backfill_from > f->backfill_to) { /* deployed after that head: nothing to read */
        backfill_pop(f);
        f->stage = S_IDLE;
        return;
    }
    f->backfilling = true;
    f->range_to = f->backfill_to - f->backfill_from >= f->window ? f->backfill_from + f->window - 1
                                                                 : f->backfill_to;
    chain_rpc_log_filter_t filter = {.from_block = chain_rpc_block_number(f->backfill_from),
                                     .to_block = chain_rpc_block_number(f->range_to),
                                     .addresses = &f->pool->c.registry,
                                     .num_addresses = 1,
                                     .num_topics = 2};
    filter.topics[0].values = (const uint8_t(*)[32])f->topic_executed;
    filter.topics[0].count = 1;
    filter.topics[1].values = (const uint8_t(*)[32])f->backfill[0];
    filter.topics[1].count = 1;
    chain_rpc_call_t call = chain_rpc_eth_get_logs(&filter);
    send_calls(self, f, &call, 1, S_LOGS);
}

static void save_cursor(rt_actor_t *self, chain_follower_t *f);

/* Whether every block of [from, to] is one the headers read showed holding only transactions
 * our lanes follow (or none): the registry's logs of the range would all be Executed logs that
 * the follower leaves to the lanes (on_logs), which the node would take ~0.2 s to write out and
 * the follower to read for a block of 10,000 executions, in the tail of that burst. A block whose
 * header is not at hand, or that holds any other transaction (another executor's execution, an
 * owner's revocation), has its logs read. */
static bool range_ours_only(const chain_follower_t *f, uint64_t from, uint64_t to)
{
    if (to < from || to - from >= CHAIN_FOLLOWER_BLOCKS)
        return false;
    for (uint64_t k = from; k <= to; ++k) {
        const block_seen_t *b = seen_at(f, k);
        if (b == NULL || !b->ours_only)
            return false;
    }
    return true;
}

static void read_logs(rt_actor_t *self, chain_follower_t *f)
{
    uint64_t safe = safe_head(f);
    if (!f->cursor_known) { /* a first start: from the safe head on, not the whole history */
        f->next_block = safe + 1;
        f->cursor_known = true;
    }
    if (f->next_block > safe && f->num_backfill != 0) {
        read_backfill(self, f, safe);
        return;
    }
    if (f->next_block > safe) {
        f->stage = S_IDLE;
        return;
    }
    uint64_t range = f->window < CHAIN_FOLLOWER_LOG_RANGE ? f->window : CHAIN_FOLLOWER_LOG_RANGE;
    f->range_to = f->next_block + range - 1;
    if (f->range_to > safe)
        f->range_to = safe;
    if (range_ours_only(f, f->next_block, f->range_to)) {
        chain_rpc_logs_free(&f->logs); /* none to read: as an empty answer */
        save_cursor(self, f);
        return;
    }
    uint8_t topics[2][32];
    memcpy(topics[0], f->topic_executed, 32);
    memcpy(topics[1], f->topic_revoked, 32);
    chain_rpc_log_filter_t filter = {.from_block = chain_rpc_block_number(f->next_block),
                                     .to_block = chain_rpc_block_number(f->range_to),
                                     .addresses = &f->pool->c.registry,
                                     .num_addresses = 1,
                                     .num_topics = 1};
    filter.topics[0].values = (const uint8_t(*)[32])topics;
    filter.topics[0].count = 2;
    chain_rpc_call_t call = chain_rpc_eth_get_logs(&filter);
    send_calls(self, f, &call, 1, S_LOGS);
}

static void save_cursor(rt_actor_t *self, chain_follower_t *f)
{
    if (f->backfilling) { /* the window's logs are adopted: the cursor stays where it is */
        f->backfilling = false;
        f->stage = S_IDLE;
        if (f->range_to >= f->backfill_to) {
            backfill_pop(f);
            return;
        }
        f->backfill_from = f->range_to + 1; /* the next window at once */
        f->backfill_tries = 0;
        read_logs(self, f);
        return;
    }
    char chain_id[24], registry[48], next[24];
    key_params(f, chain_id, registry);
    snprintf(next, sizeof(next), "%llu", (unsigned long long)(f->range_to + 1));
    const char *params[] = {chain_id, registry, next};
    query(self, f, S_SAVE, st_cursor_put, 3, params);
}

/* Whether the node refused an eth_getLogs call for its range: too many blocks, or too many
 * results (each node words it its own way; -32005 is the usual code of a limit). */
static bool range_refused(const chain_rpc_reply_t *r)
{
    if (r->error != CHAIN_RPC_OK || r->count != 1 ||
        (r->items[0].error != CHAIN_RPC_ERR_NODE && r->items[0].code != -32005))
        return false;
    static const char *const words[] = {"range",  "too many",  "more than", "limit",
                                        "exceed", "too large", "too big",   "size"};
    const char *message = chain_rpc_reply_message(r, 0);
    for (size_t i = 0; i != sizeof(words) / sizeof(words[0]); ++i)
        if (strcasestr(message, words[i]) != NULL)
            return true;
    return false;
}

static void next_chunk(rt_actor_t *self, chain_follower_t *f);
static bool adopt_chunk(rt_actor_t *self, chain_follower_t *f);

/* Asks which of the logs that no lane follows (f->asked) a live row of ours records (follower_ours:
 * per log its transaction, intent and count). Only those go: a block of 10,000 executions of ours
 * whose lanes recorded them already would else cost the database 10,000 lookups per log read. */
static void ask_ours(rt_actor_t *self, chain_follower_t *f)
{
    size_t n = f->num_asked;
    char *hashes = malloc(n * 65 + 3), *ids = malloc(n * 65 + 3), *counts = malloc(n * 12 + 3);
    char *h = hashes, *d = ids, *c = counts;
    CHAIN_ASSERT(hashes != NULL && ids != NULL && counts != NULL); /* out of memory */
    *h++ = *d++ = *c++ = '{';
    for (size_t k = 0; k != n; ++k) {
        const chain_rpc_log_t *log = &f->logs.items[f->asked[k]];
        chain_abi_event_t ev;
        bool executed =
            chain_abi_decode_event(&ev, (const uint8_t(*)[32])log->topics, log->num_topics,
                                   log->data, log->data_len) == CHAIN_OK &&
            ev.kind == CHAIN_ABI_EVENT_KIND_EXECUTED;
        if (k != 0)
            *h++ = *d++ = *c++ = ',';
        chain_hex_encode(h, 65, log->tx_hash, 32, 0);
        /* one that does not decode matches nothing */
        chain_hex_encode(d, 65, executed ? ev.intent_id : log->tx_hash, 32, 0);
        h += 64, d += 64;
        c += sprintf(c, "%lld", executed ? (long long)ev.count : -1ll);
    }
    *h++ = *d++ = *c++ = '}';
    *h = *d = *c = '\0';
    const char *params[] = {hashes, ids, counts};
    query(self, f, S_OURS, st_ours, 3, params);
    free(hashes), free(ids), free(counts);
}

static void on_logs(rt_actor_t *self, chain_follower_t *f, const chain_rpc_reply_t *r)
{
    size_t len;
    const char *json = r->error == CHAIN_RPC_OK ? chain_rpc_reply_result(r, 0, &len) : NULL;
    chain_rpc_logs_free(&f->logs);
    memset(&f->logs, 0, sizeof(f->logs));
    uint64_t asked = f->range_to + 1 - (f->backfilling ? f->backfill_from : f->next_block);
    if (json == NULL && range_refused(r) && asked > 1) {
        /* the node caps eth_getLogs: half the window asked for, at once (at most log2 of the
         * window times); it stays that small from now on */
        f->window = asked / 2;
        rt_log_warn("follower", "the node refused %llu blocks of logs (%s): reading %llu at a time",
                    (unsigned long long)asked, chain_rpc_reply_message(r, 0),
                    (unsigned long long)f->window);
        f->backfilling = false;
        f->stage = S_IDLE;
        read_logs(self, f);
        return;
    }
    if (json == NULL || chain_rpc_result_logs_scan(json, len, &f->logs) != CHAIN_OK) {
        fail_cycle(f, "no registry logs from the node");
        return;
    }
    if (f->logs.count == 0) {
        save_cursor(self, f);
        return;
    }
    free(f->adopt), free(f->asked);
    f->adopt = calloc(f->logs.count, sizeof(*f->adopt));
    f->asked = malloc(f->logs.count * sizeof(*f->asked));
    CHAIN_ASSERT(f->adopt != NULL && f->asked != NULL); /* out of memory */
    /* a transaction a lane follows is that lane's to record: no query for its logs. The other
     * Executed logs are asked about (a lane may have decided one a moment ago, or an earlier
     * run stored it) */
    f->num_asked = 0;
    const uint8_t *looked_up = NULL; /* the last transaction looked up, and its answer */
    bool follows = false;
    for (size_t i = 0; i != f->logs.count; ++i) {
        const chain_rpc_log_t *log = &f->logs.items[i];
        if (memcmp(log->topics[0], f->topic_executed, 32) != 0)
            continue;
        /* a batch's logs come one after another: one look-up (and lock) per transaction */
        if (looked_up == NULL || memcmp(looked_up, log->tx_hash, 32) != 0)
            follows = executor__pool_follows(f->pool, log->tx_hash), looked_up = log->tx_hash;
        f->adopt[i].ours = follows;
        if (!f->adopt[i].ours)
            f->asked[f->num_asked++] = i;
    }
    f->chunk_end = 0;
    if (f->num_asked == 0)
        next_chunk(self, f);
    else
        ask_ours(self, f);
}

static void on_ours(rt_actor_t *self, chain_follower_t *f, const store_pg_result_t *r)
{
    if (r->status != STORE_PG_OK) {
        fail_cycle(f, "cannot tell our transactions from others'");
        return;
    }
    const PGresult *res = r->results[0];
    for (int row = 0; row != PQntuples(res); ++row) {
        long long k = atoll(PQgetvalue(res, row, 0)); /* WITH ORDINALITY: from 1 */
        if (k >= 1 && (size_t)k <= f->num_asked)
            f->adopt[f->asked[k - 1]].ours = true;
    }
    f->chunk_end = 0;
    next_chunk(self, f);
}

/* Whether log `i` may need a write: Revoked, or Executed by a transaction that is not ours. */
static bool needs_work(const chain_follower_t *f, size_t i)
{
    const chain_rpc_log_t *log = &f->logs.items[i];
    return memcmp(log->topics[0], f->topic_revoked, 32) == 0 ||
           (!f->adopt[i].ours && memcmp(log->topics[0], f->topic_executed, 32) == 0);
}

/* Sends the eth_getTransactionByHash and header calls of the chunk's foreign Executed logs
 * (their senders and block times); false when it has none. */
static bool read_chunk_txs(rt_actor_t *self, chain_follower_t *f)
{
    chain_rpc_call_t calls[2 * CHUNK_LOGS];
    size_t n = 0;
    for (size_t i = f->chunk_first; i != f->chunk_end; ++i) {
        const chain_rpc_log_t *log = &f->logs.items[i];
        if (f->adopt[i].ours || memcmp(log->topics[0], f->topic_executed, 32) != 0)
            continue;
        json_t *params = json_array();
        char hex[67];
        chain_hex_encode(hex, sizeof(hex), log->tx_hash, 32, CHAIN_HEX_0X);
        json_array_append_new(params, json_string(hex));
        calls[n++] = chain_rpc_call("eth_getTransactionByHash", params);
        calls[n++] = chain_rpc_eth_get_block_by_number(chain_rpc_block_number(log->block_number));
    }
    if (n != 0)
        send_calls(self, f, calls, n, S_TXS);
    return n != 0;
}

/* Moves on to the next chunk of at most CHUNK_LOGS logs from the next one that may need a write
 * (the logs of our lanes' transactions are passed over without a look: a block of 10,000 of our
 * executions is one step, not 400 chunks), or saves the cursor after the last. A loop, bounded by
 * the logs, until a chunk has a call or a write out. */
static void next_chunk(rt_actor_t *self, chain_follower_t *f)
{
    for (;;) {
        f->chunk_first = f->chunk_end;
        while (f->chunk_first != f->logs.count && !needs_work(f, f->chunk_first))
            ++f->chunk_first;
        if (f->chunk_first == f->logs.count) {
            save_cursor(self, f);
            return;
        }
        f->chunk_end = f->chunk_first + CHUNK_LOGS < f->logs.count ? f->chunk_first + CHUNK_LOGS
                                                                   : f->logs.count;
        if (read_chunk_txs(self, f) || adopt_chunk(self, f))
            return;
    }
}

/* Reads "from" and "nonce" of an eth_getTransactionByHash result. */
static bool read_sender(const char *json, size_t len, chain_addr_t *from, uint64_t *nonce)
{
    json_t *tx = json_loadb(json, len, 0, NULL);
    const char *f = json_string_value(json_object_get(tx, "from"));
    const char *n = json_string_value(json_object_get(tx, "nonce"));
    bool ok = f != NULL && n != NULL && chain_addr_parse(from, f, strlen(f)) == CHAIN_OK &&
              chain_rpc_parse_quantity_u64(n, strlen(n), nonce) == CHAIN_OK;
    json_decref(tx);
    return ok;
}

static void on_txs(rt_actor_t *self, chain_follower_t *f, const chain_rpc_reply_t *r)
{
    if (r->error != CHAIN_RPC_OK) {
        fail_cycle(f, "no transactions from the node");
        return;
    }
    uint32_t k = 0;
    for (size_t i = f->chunk_first; i != f->chunk_end; ++i) {
        const chain_rpc_log_t *log = &f->logs.items[i];
        if (f->adopt[i].ours || memcmp(log->topics[0], f->topic_executed, 32) != 0)
            continue;
        size_t len1, len2;
        const char *tx = k + 1 < r->count ? chain_rpc_reply_result(r, k, &len1) : NULL;
        const char *block = k + 1 < r->count ? chain_rpc_reply_result(r, k + 1, &len2) : NULL;
        k += 2;
        chain_rpc_block_header_t h;
        bool found = false;
        if (tx == NULL || block == NULL ||
            !read_sender(tx, len1, &f->adopt[i].from, &f->adopt[i].nonce) ||
            chain_rpc_result_block_header(block, len2, &h, &found) != CHAIN_OK || !found ||
            memcmp(h.hash, log->block_hash, 32) != 0) {
            fail_cycle(f, "a foreign execution's transaction or block is unreadable");
            return;
        }
        f->adopt[i].block_time = h.timestamp;
        f->adopt[i].ready = true;
    }
    if (!adopt_chunk(self, f))
        next_chunk(self, f);
}

/* Submits one unit per log of the chunk: adopt a foreign execution, or cancel on Revoked.
 * False when it had none to submit (the caller moves on); a cycle that failed here is over. */
static bool adopt_chunk(rt_actor_t *self, chain_follower_t *f)
{
    f->stage = S_ADOPT;
    f->units_pending = 0;
    f->units_failed = false;
    for (size_t i = f->chunk_first; i != f->chunk_end; ++i) {
        const chain_rpc_log_t *log = &f->logs.items[i];
        chain_abi_event_t ev;
        if (f->adopt[i].ours) /* an Executed log our lanes record */
            continue;
        if (chain_abi_decode_event(&ev, (const uint8_t(*)[32])log->topics, log->num_topics,
                                   log->data, log->data_len) != CHAIN_OK)
            continue;
        char id[67], hash[67], period[16], from[48], nonce[24], amount[CHAIN_U256_DEC_SIZE],
            block[24], bhash[67], t[24];
        executor__bytea(id, ev.intent_id, 32);
        executor__bytea(hash, log->tx_hash, 32);
        uint64_t corr = (uint64_t)S_ADOPT | ((uint64_t)i << 8);
        bool ok;
        if (ev.kind == CHAIN_ABI_EVENT_KIND_REVOKED) {
            const char *params[] = {id, hash};
            ok = store_pg_query(f->pool->c.pg, self, corr, st_revoke, 2, params);
        } else if (ev.kind == CHAIN_ABI_EVENT_KIND_EXECUTED && !f->adopt[i].ours &&
                   f->adopt[i].ready) {
            snprintf(period, sizeof(period), "%u", ev.count);
            executor__bytea(from, f->adopt[i].from.bytes, 20);
            snprintf(nonce, sizeof(nonce), "%llu", (unsigned long long)f->adopt[i].nonce);
            chain_u256_to_dec(&ev.amount, amount);
            snprintf(block, sizeof(block), "%llu", (unsigned long long)log->block_number);
            executor__bytea(bhash, log->block_hash, 32);
            snprintf(t, sizeof(t), "%llu", (unsigned long long)f->adopt[i].block_time);
            const char *sup[] = {id, period, hash};
            const char *adopt[] = {id, period, hash, from, nonce, amount, block, bhash, t};
            int stmts[] = {st_supersede_period, st_adopt}, nparams[] = {3, 9};
            const char *const *params[] = {sup, adopt};
            ok = store_pg_transaction(f->pool->c.pg, self, corr, 2, stmts, nparams, params);
        } else {
            continue;
        }
        if (ok)
            ++f->units_pending;
        else
            f->units_failed = true;
    }
    if (f->units_pending == 0 && f->units_failed)
        fail_cycle(f, "the database queue is full");
    return f->units_pending != 0 || f->units_failed;
}

static void report(chain_follower_t *f, const PGresult *res, size_t i, executor_status_t status)
{
    executor_pool_t *pool = f->pool;
    const chain_rpc_log_t *log = &f->logs.items[i];
    chain_abi_event_t ev;
    if (chain_abi_decode_event(&ev, (const uint8_t(*)[32])log->topics, log->num_topics, log->data,
                               log->data_len) != CHAIN_OK)
        return;
    for (int row = 0; row != PQntuples(res); ++row) {
        executor_outcome_t o = {.status = status,
                                .period = status == EXECUTOR_REVOKED ? 0 : ev.count,
                                .block_number = log->block_number,
                                .block_time_s = (int64_t)f->adopt[i].block_time,
                                .by_us = false};
        snprintf(o.intent_id, sizeof(o.intent_id), "%s", PQgetvalue(res, row, 0));
        snprintf(o.user_id, sizeof(o.user_id), "%s", PQgetvalue(res, row, 1));
        memcpy(o.tx_hash, log->tx_hash, 32);
        if (pool->c.on_outcome != NULL)
            pool->c.on_outcome(pool->c.on_outcome_ctx, &o);
    }
}

/* Reads the adopted row of log `i` for its execution.confirmed event (a unit of its own). */
static void adopted_rows(rt_actor_t *self, chain_follower_t *f, size_t i)
{
    const chain_rpc_log_t *log = &f->logs.items[i];
    if (f->pool->c.events == NULL || log->num_topics < 2)
        return;
    chain_abi_event_t ev;
    if (chain_abi_decode_event(&ev, (const uint8_t(*)[32])log->topics, log->num_topics, log->data,
                               log->data_len) != CHAIN_OK)
        return;
    char hash[67], id[67], period[16];
    executor__bytea(hash, log->tx_hash, 32);
    executor__bytea(id, ev.intent_id, 32);
    snprintf(period, sizeof(period), "%u", ev.count);
    const char *params[] = {hash, id, period};
    store_pg_query(f->pool->c.pg, self, R_EVENTS, st_adopt_rows, 3, params);
}

static void on_adopted(rt_actor_t *self, chain_follower_t *f, uint64_t corr,
                       const store_pg_result_t *r)
{
    size_t i = (size_t)(corr >> 8);
    if (r->status != STORE_PG_OK || i >= f->logs.count) {
        rt_log_warn("follower", "adopting a registry log failed: %s %s",
                    store_pg_status_name(r->status), r->message);
        f->units_failed = true;
    } else if (r->nresults == 1) { /* Revoked */
        report(f, r->results[0], i, EXECUTOR_REVOKED);
    } else {
        report(f, r->results[1], i, EXECUTOR_CONFIRMED);
        if (PQntuples(r->results[1]) != 0) /* recorded now, not by an earlier read */
            adopted_rows(self, f, i);
        executor__publish_notifications(f->pool, r->results[1]);
    }
    if (--f->units_pending != 0)
        return;
    if (f->units_failed)
        fail_cycle(f, "a registry log was not recorded");
    else
        next_chunk(self, f);
}

/* ---- the actor ---- */

static void on_db(rt_actor_t *self, chain_follower_t *f, rt_msg_t *msg)
{
    const store_pg_result_t *r = rt_msg_payload(msg);
    if (msg->corr == R_LOAD) {
        on_recheck_load(f, r);
        return;
    }
    if (msg->corr == R_EVENTS && r->status == STORE_PG_OK)
        executor__publish_executions(f->pool, r->results[0]);
    if (R_TAG(msg->corr) == R_UPDATE || R_TAG(msg->corr) == R_UNMINE)
        on_recheck_write(self, f, msg->corr, r);
    if (msg->corr == R_EVENTS || R_TAG(msg->corr) == R_UPDATE || R_TAG(msg->corr) == R_UNMINE)
        return;
    int stage = (int)(msg->corr & 0xff);
    if (stage != f->stage)
        return;
    if (stage == S_ADOPT) {
        on_adopted(self, f, msg->corr, r);
    } else if (stage == S_CURSOR) {
        if (r->status != STORE_PG_OK) {
            fail_cycle(f, "cannot read the log cursor");
            return;
        }
        f->cursor_loaded = true;
        if (PQntuples(r->results[0]) == 1) {
            f->next_block = (uint64_t)atoll(PQgetvalue(r->results[0], 0, 0));
            f->cursor_known = true;
        }
        start_cycle(self, f);
    } else if (stage == S_OURS) {
        on_ours(self, f, r);
    } else if (stage == S_SAVE) {
        if (r->status != STORE_PG_OK) {
            fail_cycle(f, "cannot save the log cursor");
            return;
        }
        f->next_block = f->range_to + 1;
        atomic_store(&f->cursor, f->next_block);
        f->stage = S_IDLE;
        if (f->next_block <= safe_head(f)) /* behind: the next range at once */
            read_logs(self, f);
    }
}

static void on_backfill(chain_follower_t *f, const uint8_t id[32])
{
    for (size_t i = 0; i != f->num_backfill; ++i)
        if (memcmp(f->backfill[i], id, 32) == 0)
            return; /* waiting already */
    if (f->num_backfill == BACKFILL_MAX) {
        rt_log_warn("follower", "too many intents wait for their logs: one dropped (asked again)");
        return;
    }
    memcpy(f->backfill[f->num_backfill++], id, 32);
}

/* A lane read a head newer than ours: the next cycle (the timer's, run sooner) is due now. The
 * next poke may be sent CHAIN_FOLLOWER_POKE_MIN_MS from now, so a burst of lanes' reads costs
 * at most one cycle per that many milliseconds. */
static void on_poke(chain_follower_t *f, uint64_t head)
{
    atomic_store(&f->poke_after_ms, rt_now_ms() + CHAIN_FOLLOWER_POKE_MIN_MS);
    atomic_store(&f->poke_sent, false); /* after poke_after_ms: the next sender reads it */
    if (head > f->poke_head)
        f->poke_head = head;
}

static void follower_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    chain_follower_t *f = *(chain_follower_t **)rt_actor_state(self);
    if (msg->type == RT_MSG_TIMER) {
        if (f->stage == S_IDLE)
            start_cycle(self, f);
        recheck_poll(self, f);
        rt_actor_timer_start(self, &f->tick, f->pool->c.poll_ms, 0);
    } else if (msg->type == STORE_PG_MSG_RESULT) {
        on_db(self, f, msg);
    } else if (msg->type == CHAIN_RPC_MSG_REPLY && msg->corr == R_POLL) {
        on_recheck_poll(self, f, chain_rpc_reply(msg));
    } else if (msg->type == CHAIN_RPC_MSG_REPLY && (int)msg->corr == f->stage) {
        const chain_rpc_reply_t *r = chain_rpc_reply(msg);
        if (f->stage == S_HEAD)
            on_head(self, f, r);
        else if (f->stage == S_HEADERS)
            on_headers(self, f, r);
        else if (f->stage == S_LOGS)
            on_logs(self, f, r);
        else if (f->stage == S_TXS)
            on_txs(self, f, r);
    } else if (msg->type == FOLLOWER_MSG_BACKFILL) {
        on_backfill(f, rt_msg_payload(msg));
    } else if (msg->type == FOLLOWER_MSG_POKE) {
        on_poke(f, msg->corr);
    } else if (msg->type == RT_MSG_STOP) {
        rt_actor_timer_cancel(self, &f->tick);
        return;
    }
    /* a poke's cycle starts once the cycle in flight is over (it may have read the head before
     * the lane did); the timer's own cycles go on as they were */
    if (f->stage == S_IDLE && f->poke_head > f->last_top) {
        f->poke_head = 0;
        start_cycle(self, f);
    }
}

chain_follower_t *chain_follower_create(executor_pool_t *pool)
{
    chain_follower_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->pool = pool;
    f->window = CHAIN_FOLLOWER_WINDOW_DEFAULT;
    chain_abi_topic(CHAIN_ABI_EVENT_EXECUTED, f->topic_executed);
    chain_abi_topic(CHAIN_ABI_EVENT_REVOKED, f->topic_revoked);
    return f;
}

void chain_follower_configure(executor_pool_t *pool, const chain_follower_options_t *o)
{
    chain_follower_t *f = pool->follower;
    f->window = o->window_blocks != 0 ? o->window_blocks : CHAIN_FOLLOWER_WINDOW_DEFAULT;
    f->start_block = o->start_block;
    f->on_reopen = o->on_reopen;
    f->on_reopen_ctx = o->on_reopen_ctx;
}

void chain_follower_start(chain_follower_t *f, rt_runtime_t *rt)
{
    f->actor = rt_actor_spawn(rt, 0, follower_behaviour, sizeof(chain_follower_t *));
    *(chain_follower_t **)rt_actor_state(f->actor) = f;
    rt_actor_send(f->actor, rt_msg_new(RT_MSG_TIMER, 0));
    atomic_store(&f->inbox, f->actor);
}

bool chain_follower_backfill(executor_pool_t *pool, const uint8_t on_chain_id[32])
{
    chain_follower_t *f = pool != NULL ? pool->follower : NULL;
    rt_actor_t *to = f != NULL ? atomic_load(&f->inbox) : NULL;
    if (to == NULL)
        return false;
    rt_msg_t *msg = rt_msg_new(FOLLOWER_MSG_BACKFILL, 32);
    memcpy(rt_msg_payload(msg), on_chain_id, 32);
    if (rt_actor_try_send(to, msg, 1024))
        return true;
    rt_msg_free(msg);
    return false;
}

void chain_follower_poke(chain_follower_t *f, uint64_t head)
{
    rt_actor_t *to = f != NULL ? atomic_load(&f->inbox) : NULL;
    bool sent = false;
    if (to == NULL || head <= atomic_load(&f->head) ||
        !atomic_compare_exchange_strong(&f->poke_sent, &sent, true))
        return;
    /* read once poke_sent is ours: the follower moves poke_after_ms before it frees poke_sent */
    if (rt_now_ms() < atomic_load(&f->poke_after_ms)) {
        atomic_store(&f->poke_sent, false);
        return;
    }
    rt_msg_t *msg = rt_msg_new(FOLLOWER_MSG_POKE, 0);
    msg->corr = head;
    if (!rt_actor_try_send(to, msg, 1024)) {
        rt_msg_free(msg);
        atomic_store(&f->poke_sent, false);
    }
}

uint64_t chain_follower_head(chain_follower_t *f)
{
    return atomic_load(&f->head);
}

uint64_t chain_follower_reorgs(chain_follower_t *f)
{
    return atomic_load(&f->reorgs);
}

uint64_t chain_follower_cursor(chain_follower_t *f)
{
    return atomic_load(&f->cursor);
}

bool chain_follower_base_fee(chain_follower_t *f, chain_u256_t *out)
{
    if (!atomic_load(&f->has_base_fee))
        return false;
    *out = chain_u256_from_u64(atomic_load(&f->base_fee));
    return true;
}

void chain_follower_stop(chain_follower_t *f)
{
    if (f->actor == NULL)
        return;
    atomic_store(&f->inbox, NULL);
    rt_actor_send_stop(f->actor);
    rt_actor_release(f->actor);
    f->actor = NULL;
}

void chain_follower_free(chain_follower_t *f)
{
    if (f == NULL)
        return;
    chain_rpc_logs_free(&f->logs);
    free(f->adopt);
    free(f->asked);
    for (size_t i = 0; i != f->num_rechecks; ++i)
        free(f->rechecks[i].raw);
    free(f);
}
