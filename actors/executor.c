/*
 * Executor lanes. See executor.h for the contract; the life of one transaction slot is
 *
 *   FREE -> STORING (rows inserted `signed`) -> SENDING (eth_sendRawTransaction) -> PENDING
 *        -> MINED (a receipt, not yet CONFIRMATIONS deep) -> FINALIZING (block read, outcome
 *           committed) -> FREE
 *
 * with REPLACING (a re-signed version being stored) entered from PENDING when the transaction
 * is not mined in time, or when its nonce turned out to be used by someone else (then under a
 * new nonce). Every version's hash is kept, since any of them may be the one that is mined.
 * One unit is stored at a time per lane, which keeps nonces in the order they were handed out.
 */
#include "actors/executor.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "actors/executor_internal.h"
#include "actors/execution_model.h"
#include "actors/notification_model.h"
#include "chain/abi.h"
#include "chain/hex.h"
#include "chain/tx.h"
#include "runtime/log.h"

#define TX_VERSIONS_MAX 4 /* fee bumps of one nonce */
/* hashes followed per nonce: its versions, and any other the database holds for it */
#define TX_HASHES_MAX 8
/*
 * Gas declared per execution. A block takes a transaction only while its gas LIMIT fits, so
 * what is declared and not used leaves blocks part empty (120k against ~46k used filled them
 * 79-86%). ~46.7k is measured per first execution with a token transfer to a recipient that
 * holds tokens (bench/executor_bench.c); a recipient without tokens costs ~17k more (a zero
 * storage slot set), and other tokens more again, hence 80k to start, raised per lane to 1.5x
 * the most any receipt showed. eth_estimateGas cannot size a batch: executeBatch catches each
 * member's failure, out of gas included, so the smallest limit that "succeeds" is one whose
 * members all fail. A member that runs out of gas all the same fails without paying (its
 * revert undoes it) with a reason saying so, and the engine retries its period.
 */
#define GAS_PER_EXECUTION 80000
#define GAS_PER_EXECUTION_MAX 1000000
#define LEARN_MEMBERS_MIN 8 /* executions in a receipt that raises the figure */
#define GAS_PER_BATCH 60000
#define RETRY_MIN_MS 200
#define RETRY_MAX_MS 10000
#define DEFAULT_TIP_WEI 1000000000ull /* 1 gwei, when no oracle tells better */
#define RESEND_MS 1000                /* an unmined transaction goes to the node again */
/* executions (two logs each with the token's Transfer, ~0.8 KB of JSON a log) whose receipts
 * one poll asks for: the answer must stay well under the HTTP client's 8 MiB cap, which 64
 * receipts of 199 executions exceed; and a smaller answer comes back sooner, so that the first
 * outcomes are recorded while the node still serves the rest */
#define POLL_LOGS_MAX 1024
/* ... and while the follower has not seen the lane's head yet (nothing found can be recorded
 * before it has: ready_to_record): one transaction per poll. A node serves one answer at a time,
 * so the follower's two reads (the head, then the headers) each waited behind the polls in
 * flight: with four of POLL_LOGS_MAX executions (~1.5 MB, ~30 ms each) the follower saw a
 * burst's block ~240 ms after the lane, and no outcome was recorded meanwhile. */
#define POLL_LOGS_BEHIND 1
/* receipt polls in flight at once per lane: the receipts of a block that holds a whole burst
 * (~10,000 executions) were asked for in five polls one after the other, each 140-800 ms */
#define POLLS_MAX 4
/* calls at the start of every poll: the head, the nonce count, and the header of the block
 * that the head makes CONFIRMATIONS deep */
#define POLL_FIXED 3
/* A nonce the chain counts as used while no hash of ours has a receipt moves only once the
 * chain is this many blocks past the first such poll, or (no blocks coming) this long after it:
 * a node may count a nonce before it serves the receipt of the block that used it. */
#define RENONCE_BLOCKS 2
#define RENONCE_WAIT_MS 3000
/* While a transaction waits to be mined (or to be deep enough), the head alone is asked this
 * many times per poll_ms, so that the receipts of a new block are read at once rather than at the
 * next poll (a block of a whole burst was seen by the lane ~100 ms, up to poll_ms, after it came);
 * the outcome is still recorded only once the follower has seen the block (ready_to_record). */
#define PROBES_PER_POLL 4
#define PROBE_MIN_MS 10

enum { TX_FREE, TX_STORING, TX_SENDING, TX_PENDING, TX_MINED, TX_FINALIZING, TX_REPLACING };
enum { PHASE_RECONCILE, PHASE_SYNC, PHASE_READY };
enum {
    K_RECONCILE = 1,
    K_SYNC,
    K_STORE,
    K_SEND,
    K_MARK,
    K_POLL,
    K_BLOCK,
    K_FINAL,
    K_LIVE,
    K_COUNT,
    K_RESEND,
    K_EVENTS,
    K_HASHES,
    K_VERIFY,
    K_ADOPT,
    K_HEAD,
};

typedef struct st_lane_member_t {
    char intent_id[37];
    char user_id[37];
    uint32_t period;
    uint8_t on_chain_id[32];
    chain_u256_t amount;
    int outcome; /* after the receipt: 0 unknown, 1 confirmed, 2 failed */
    char error[160];
} lane_member_t;

typedef struct st_lane_tx_t {
    int state;
    uint32_t gen; /* bumped on each use of the slot, so stale replies are recognised */
    uint64_t nonce;
    uint32_t n;
    lane_member_t *members;
    executor_job_t *jobs; /* kept until the first insert commits (a conflict re-encodes) */
    bool busy;            /* a send, block read or finalization of this slot is under way */
    bool awaits_block;    /* FINALIZING: waits for the lane's read of its block (blk_read) */
    int64_t block_time_s;
    uint8_t *data;
    size_t data_len;
    uint64_t gas;
    chain_u256_t tip, max_fee;
    uint8_t versions[TX_HASHES_MAX][32]; /* indices stay: in-flight polls refer to them */
    uint32_t nversions;
    uint32_t followed; /* versions [0, followed) are in the pool's follow set */
    uint32_t cur;      /* the current version: the one stored last, sent and sent again */
    uint8_t *raw;
    size_t raw_len;
    uint8_t *next_raw; /* the version being stored (REPLACING) */
    size_t next_raw_len;
    uint8_t next_hash[32];
    uint64_t next_nonce;
    chain_u256_t next_tip, next_max_fee;
    uint64_t sent_ms, retry_at_ms, retry_ms, resent_ms;
    bool nonce_used; /* the node said "nonce too low" */
    bool renonce;    /* none of our hashes was mined at that nonce: move to a new one */
    bool doubt;      /* the chain counts the nonce, no hash of ours has a receipt (yet) */
    uint64_t doubt_head, doubt_ms; /* the head and time of the first poll that saw it so */
    uint64_t polled_head; /* the head its receipts were last asked at (none new before the next) */
    bool asked;           /* in a poll in flight: not asked again before its answer */
    int mined_version;
    uint64_t mined_block, gas_used;
    uint8_t mined_block_hash[32];
    chain_u256_t gas_price;
    bool reverted;
} lane_tx_t;

/* What one call of a receipt poll asks about: a version of the transaction in a slot. */
typedef struct st_lane_poll_call_t {
    uint8_t slot, version;
    uint32_t gen;
} lane_poll_call_t;

typedef struct st_lane_t {
    executor_pool_t *pool;
    int index;
    const chain_key_t *key;
    chain_addr_t addr;
    char addr_text[48];
    int phase;
    bool storing, op_inflight; /* op: the reconcile query or the nonce sync */
    bool adopt_due;            /* in-flight rows no slot follows may exist: look (lane_adopt) */
    uint64_t next_nonce, head, retry_at_ms;
    uint64_t member_gas; /* declared per execution: GAS_PER_EXECUTION, raised by receipts */
    executor_job_t *queue;
    uint32_t q_head, q_len;
    lane_tx_t txs[EXECUTOR_LANE_TXS_MAX];
    struct { /* the receipt polls in flight: which slot and version each call asks about */
        lane_poll_call_t map[CHAIN_RPC_MAX_BATCH];
        uint32_t n;     /* calls; 0: this poll is free */
        uint32_t epoch; /* reorgs heard of when it was sent */
    } polls[POLLS_MAX];
    uint32_t polls_inflight;
    uint32_t epoch;       /* reorgs heard of: a header read before one is not used after it */
    uint32_t poll_first;  /* the slot a poll starts from, rotating: a full batch starves none */
    uint64_t poll_at_ms;  /* the next poll without a new head (the follower announces heads) */
    uint64_t poll_head;   /* l->head when the last poll was sent */
    uint64_t probe_at_ms; /* the next head probe (lane_probe) */
    bool probing;         /* a head probe is in flight */
    struct {              /* the last block read for a finalization, valid while the head stays */
        uint64_t number, head;
        uint8_t hash[32];
        int64_t time_s;
    } blk;
    struct {           /* the block read in flight that other slots of the same block wait for */
        uint64_t corr; /* its tag; 0: none */
        uint64_t number;
        uint8_t hash[32];
        uint32_t epoch; /* a reorg heard of since: its answer is not used */
    } blk_read;
    rt_actor_timer_t tick;
} lane_t;

static int st_insert, st_insert_again, st_keep_raw, st_mark_replaced, st_mark_broadcast, st_live_of,
    st_count_hash, st_supersede_nonce, st_revive, st_finalize, st_exec_rows, st_reconcile,
    st_rows_by_id, st_nonce_hashes;

/* The error of a batch member that failed because the batch ran out of gas: nothing was paid and
 * the engine tries the period again, so its owner gets no "payment failed" notification for it. */
#define OUT_OF_GAS_ERROR "the batch ran out of gas"

/* The statement that records a mined transaction's outcomes, its intents' counts, notifications
 * and audit rows at once. Each decided row keeps its block's time ($9, also the intents'
 * last_execution) in block_time, which a reorg that takes a later payment back gives the intent
 * back (chain_follower.c, REOPEN_CTES). The intents are read once, in the executions update (owner
 * and name, which no outcome changes), and the notification and audit rows take them from its
 * result instead of joining intents again (two index look-ups less per outcome: ~45.5 -> ~42.5
 * buffer hits per outcome in executor_bench's pg_stat_statements; the statement's time moved within
 * the run-to-run noise). */
static void register_finalize(void)
{
    /* `completes` (ex): the payment makes a live intent's count reach its maxExecutions, judged on
     * the intent's row as it was before the statement (which every CTE reads). The intent is then
     * completed, its nextExecution cleared and the completion audited in the same write (the
     * engine's actor then finds it done and only announces it: engine_complete; a write of its own
     * per intent, after a burst of `once` intents, queued the next outcomes behind 10,000
     * single-row updates: executor_bench, engine mode). */
    st_finalize = store_pg_statement(
        "executor_finalize",
        "WITH o AS (SELECT * FROM unnest($2::uuid[], $3::int[], $4::text[]) AS o(i, p, err)),"
        " ex AS (UPDATE executions e SET status = CASE WHEN o.err IS NULL THEN 'confirmed' ELSE"
        " 'failed' END, error = o.err, gas_used = $5, gas_price_wei = $6, block_number = $7,"
        " block_hash = $8, block_time = to_timestamp($9), confirmed_at = now() FROM o, intents i"
        " WHERE e.tx_hash = $1 AND e.intent_id = o.i AND e.period = o.p AND e.status IN ('signed',"
        " 'broadcast') AND i.id = e.intent_id RETURNING e.id, e.intent_id, e.period, e.status,"
        " e.error, i.owner_id, i.name, i.status NOT IN ('cancelled', 'failed', 'completed') AND"
        " i.max_executions IS NOT NULL AND GREATEST(i.execution_count, e.period + 1) >="
        " i.max_executions AS completes),"
        /* every transaction of the nonce (their rows locked by the unit's first statement,
         * executor_supersede_nonce: see store/migrations/009): in flight while a row not decided
         * here is; the winner's block */
        " tx AS (UPDATE executor_txs t SET in_flight = EXISTS (SELECT 1 FROM executions x WHERE"
        " x.tx_hash = t.tx_hash AND x.status IN ('signed', 'broadcast') AND x.id NOT IN (SELECT"
        " id FROM ex)), block_number = CASE WHEN t.tx_hash = $1 THEN GREATEST(t.block_number, $7)"
        " ELSE t.block_number END FROM executor_txs w WHERE w.tx_hash = $1 AND t.executor ="
        " w.executor AND t.nonce = w.nonce),"
        " it AS (UPDATE intents i SET execution_count = GREATEST(i.execution_count, ex.period + 1),"
        " last_execution = GREATEST(i.last_execution, to_timestamp($9)), status = CASE WHEN"
        " ex.completes THEN 'completed' WHEN i.status = 'delayed' THEN 'active' ELSE i.status"
        " END, next_execution = CASE WHEN ex.completes THEN NULL ELSE i.next_execution END,"
        " delay_reason = NULL, updated_at = now() FROM ex WHERE i.id = ex.intent_id AND"
        " ex.status = 'confirmed'),"
        /* audited as the engine's own completion is (engine_complete) */
        " c AS (INSERT INTO audit_log (user_id, actor, action, subject_id, details)"
        " SELECT ex.owner_id, 'engine', 'intent.complete', ex.intent_id,"
        " '{\"reason\":\"schedule_over\"}' FROM ex WHERE ex.status = 'confirmed' AND"
        " ex.completes),"
        " n AS (INSERT INTO notifications (user_id, type, title, message, intent_id)"
        " SELECT ex.owner_id, CASE WHEN ex.status = 'confirmed' THEN 'execution_succeeded' ELSE"
        " 'execution_failed' END, CASE WHEN ex.status = 'confirmed' THEN 'Payment sent' ELSE"
        " 'Payment failed' END, CASE WHEN ex.status = 'confirmed' THEN format('%s: payment %s was"
        " made on chain.', ex.name, ex.period + 1) ELSE format('%s: payment %s failed on chain:"
        " %s', ex.name, ex.period + 1, ex.error) END, ex.intent_id FROM ex"
        " WHERE ex.error IS DISTINCT FROM '" OUT_OF_GAS_ERROR "'"
        " RETURNING intent_id::text, user_id::text, " NOTIFICATION_COLUMNS "),"
        " a AS (INSERT INTO audit_log (user_id, actor, action, subject_id, details)"
        " SELECT ex.owner_id, 'engine', 'execution.' || ex.status, ex.intent_id,"
        " jsonb_build_object('period', ex.period, 'txHash', '0x' || encode($1, 'hex'),"
        " 'blockNumber', $7::bigint, 'error', ex.error) FROM ex)"
        " SELECT * FROM n");
}

/* The statements that store a transaction's rows before it is broadcast. */
static void register_store(void)
{
    /* The raw transaction is stored once per transaction, in the row of its first member (the
     * others get an empty one): a copy per row made storing a batch cost the square of its size.
     * Reconciliation and the follower read it from the one row of the hash that has it.
     * The transaction's executor_txs row (store/migrations/009) is written with them, in
     * flight, when a row was. */
#define INSERT_ROWS(conflict)                                                                      \
    "WITH r AS (INSERT INTO executions (intent_id, period, status, amount, executor, nonce,"       \
    " raw_tx, tx_hash) SELECT m.i, m.p, 'signed', m.a, $4, $5, CASE WHEN m.k = 1 THEN $6::bytea"   \
    " ELSE ''::bytea END, $7 FROM unnest($1::uuid[], $2::int[], $3::numeric[]) WITH ORDINALITY"    \
    " AS m(i, p, a, k)" conflict " RETURNING id),"                                                 \
    " t AS (INSERT INTO executor_txs (tx_hash, executor, nonce, in_flight) SELECT $7, $4, $5,"     \
    " true WHERE EXISTS (SELECT 1 FROM r) ON CONFLICT (tx_hash) DO UPDATE SET in_flight = true)"   \
    " SELECT id::text FROM r"
    st_insert = store_pg_statement("executor_insert", INSERT_ROWS(""));
    /* a replacement carries the same members; one whose period another executor paid meanwhile
     * (the follower marked ours replaced) stays without a row: on chain it fails "wrong count" */
    st_insert_again =
        store_pg_statement("executor_insert_again",
                           INSERT_ROWS(" ON CONFLICT (intent_id, period) WHERE live DO NOTHING"));
    /* after executor_insert_again, in its unit: when the first member's row was the one left
     * out, another row of the transaction keeps the raw transaction */
    st_keep_raw =
        store_pg_statement("executor_keep_raw",
                           "UPDATE executions SET raw_tx = $2 WHERE id = (SELECT id FROM"
                           " executions WHERE tx_hash = $1 ORDER BY id LIMIT 1) AND NOT EXISTS"
                           " (SELECT 1 FROM executions WHERE tx_hash = $1 AND length(raw_tx) > 0)");
#undef INSERT_ROWS
}

void executor_register_statements(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    register_store();
    st_mark_replaced = store_pg_statement(
        "executor_mark_replaced", "UPDATE executions SET status = 'replaced' WHERE tx_hash = $1"
                                  " AND status IN ('signed', 'broadcast') RETURNING id::text");
    st_mark_broadcast = store_pg_statement(
        "executor_mark_broadcast", "UPDATE executions SET status = 'broadcast', broadcast_at ="
                                   " COALESCE(broadcast_at, now()) WHERE tx_hash = $1 AND status ="
                                   " 'signed' RETURNING id::text");
    st_live_of = store_pg_statement(
        "executor_live_of", "SELECT m.i::text, m.p FROM unnest($1::uuid[], $2::int[]) AS m(i, p)"
                            " WHERE EXISTS (SELECT 1 FROM executions e WHERE e.intent_id = m.i"
                            " AND e.period = m.p AND e.live)");
    st_count_hash = store_pg_statement("executor_count_hash",
                                       "SELECT count(*) FROM executions WHERE tx_hash = $1");
    /* the nonce's transactions are read from executor_txs, whose rows of the nonce it also
     * locks (an update that changes nothing) for the rest of the unit: executor_finalize, later in
     * the finalizing unit, decides from the rows whether each is still in flight, and a
     * concurrent statement that puts rows of one back in flight must wait for that or be seen
     * by it (store/migrations/009). Their in_flight is left as it was (true at worst). */
    st_supersede_nonce = store_pg_statement(
        "executor_supersede_nonce",
        "WITH k AS (UPDATE executor_txs SET in_flight = in_flight WHERE executor = $1 AND nonce ="
        " $2 RETURNING tx_hash) UPDATE executions SET status = 'replaced' WHERE tx_hash IN (SELECT"
        " tx_hash FROM k WHERE tx_hash <> $3) AND executor = $1 AND nonce = $2 AND status IN"
        " ('signed', 'broadcast') RETURNING id::text");
    /* every transaction the lane ever stored for a nonce, whatever its rows' status: before a
     * nonce is given up, each of them is asked for a receipt. Looked up through the intents of
     * the batch ($3): a nonce only ever carries one batch (its versions and replacements), and
     * executions has no (executor, nonce) index. */
    st_nonce_hashes = store_pg_statement(
        "executor_nonce_hashes", "SELECT DISTINCT tx_hash FROM executions WHERE intent_id ="
                                 " ANY($3::uuid[]) AND executor = $1 AND nonce = $2 ORDER BY"
                                 " tx_hash LIMIT 16");
    st_revive = store_pg_statement(
        "executor_revive",
        "WITH r AS (UPDATE executions e SET status = 'broadcast' WHERE e.tx_hash = $1 AND"
        " e.status = 'replaced' AND NOT EXISTS (SELECT 1 FROM executions x WHERE x.intent_id ="
        " e.intent_id AND x.period = e.period AND x.live) RETURNING e.id)"
        " UPDATE executor_txs SET in_flight = true WHERE tx_hash = $1 AND EXISTS (SELECT 1 FROM"
        " r)");
    register_finalize();
    st_exec_rows = store_pg_statement(
        "executor_exec_rows", "SELECT " EXECUTION_COLUMNS ", i.owner_id::text FROM " EXECUTION_FROM
                              " WHERE e.tx_hash = $1 AND e.status IN ('confirmed', 'failed')");
    /* the rows a unit just wrote (their ids), for their events; read after the commit, in a
     * unit of their own, so that a failing unit never takes a first PREPARE down with it */
    st_rows_by_id = store_pg_statement(
        "executor_rows_by_id", "SELECT " EXECUTION_COLUMNS ", i.owner_id::text FROM " EXECUTION_FROM
                               " WHERE e.id = ANY($1::uuid[]) ORDER BY e.created_at, e.id");
    st_reconcile = store_pg_statement(
        "executor_reconcile",
        "SELECT e.nonce, e.tx_hash, e.raw_tx, e.status, e.intent_id::text, e.period, "
        "e.amount::text,"
        " i.owner_id::text, i.on_chain_id FROM executor_txs t JOIN executions e ON e.tx_hash ="
        " t.tx_hash JOIN intents i ON i.id = e.intent_id WHERE t.executor = $1 AND t.nonce IN"
        " (SELECT f.nonce FROM executor_txs f WHERE f.executor = $1 AND f.in_flight AND EXISTS"
        " (SELECT 1 FROM executions x WHERE x.tx_hash = f.tx_hash AND x.status IN ('signed',"
        " 'broadcast'))) AND e.executor = $1 AND e.nonce = t.nonce ORDER BY e.nonce,"
        " e.created_at, e.tx_hash");
    chain_follower_register_statements();
}

/* ---- helpers ---- */

void executor__bytea(char *out, const uint8_t *bytes, size_t n)
{
    out[0] = '\\';
    out[1] = 'x';
    chain_hex_encode(out + 2, 2 * n + 1, bytes, n, 0);
}

bool executor__bytea_read(const char *text, uint8_t *out, size_t n)
{
    return text != NULL && text[0] == '\\' && text[1] == 'x' &&
           chain_hex_decode_exact(out, n, text + 2, strlen(text + 2), 0) == CHAIN_OK;
}

void executor__revert_reason(const uint8_t *data, size_t len, char *out, size_t cap)
{
    chain_abi_revert_t r;
    if (chain_abi_decode_revert(data, len, &r) != CHAIN_OK) {
        snprintf(out, cap, "reverted with undecodable data");
        return;
    }
    switch (r.kind) {
    case CHAIN_ABI_REVERT_ERROR: {
        size_t n = r.message_len < cap - 1 ? r.message_len : cap - 1;
        for (size_t i = 0; i != n; ++i) /* printable ASCII only: it reaches users and logs */
            out[i] = r.message[i] >= 0x20 && r.message[i] < 0x7f ? (char)r.message[i] : '?';
        out[n] = '\0';
        break;
    }
    case CHAIN_ABI_REVERT_PANIC:
        snprintf(out, cap, "panic 0x%llx", (unsigned long long)r.panic_code.limb[0]);
        break;
    case CHAIN_ABI_REVERT_CUSTOM:
        snprintf(out, cap, "custom error 0x%02x%02x%02x%02x", r.selector[0], r.selector[1],
                 r.selector[2], r.selector[3]);
        break;
    default:
        snprintf(out, cap, "reverted without a reason");
    }
}

bool executor__outcome_event(const executor_pool_t *pool, const chain_rpc_log_t *log,
                             chain_abi_event_t *ev)
{
    return chain_addr_eq(&log->address, &pool->c.registry) &&
           chain_abi_decode_event(ev, (const uint8_t(*)[32])log->topics, log->num_topics, log->data,
                                  log->data_len) == CHAIN_OK &&
           ev->kind != CHAIN_ABI_EVENT_KIND_REVOKED;
}

void executor__publish_executions(executor_pool_t *pool, const PGresult *res)
{
    for (int row = 0; row != PQntuples(res); ++row) {
        json_t *obj = execution_to_json(res, row, 0, pool->c.tokens, pool->c.num_tokens);
        if (obj == NULL)
            continue;
        /* execution.signed | broadcast | confirmed | failed, as the row says. api.md has no
         * event for a replaced row: like a failed one it will never pay, so it goes out as
         * execution.failed, its object saying "replaced" (the replacement's own row follows as
         * execution.signed), so that sockets and read caches drop the old state at once. */
        const char *status = PQgetvalue(res, row, 3);
        char type[32];
        snprintf(type, sizeof(type), "execution.%s",
                 strcmp(status, "replaced") == 0 ? "failed" : status);
        events_publish(pool->c.events, PQgetvalue(res, row, EXECUTION_COLUMN_COUNT), type, obj, 0);
    }
}

void executor__publish_notifications(executor_pool_t *pool, const PGresult *res)
{
    for (int row = 0; row != PQntuples(res); ++row) {
        json_t *obj = notification_to_json(res, row, 2);
        if (obj != NULL)
            notifications_publish_created(pool->c.events, PQgetvalue(res, row, 1), obj);
    }
}

void executor__pool_trace(executor_pool_t *pool, executor_trace_event_t *events, uint32_t cap)
{
    pool->trace.events = events;
    pool->trace.cap = cap;
}

/* Records event `kind` of slot `slot` of lane `l` when a trace was asked for. */
static void trace(const lane_t *l, int kind, int slot, uint32_t n)
{
    executor_pool_t *pool = l->pool;
    if (pool->trace.events == NULL)
        return;
    uint32_t i = atomic_fetch_add(&pool->trace.n, 1);
    if (i >= pool->trace.cap)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    pool->trace.events[i] = (executor_trace_event_t){.at_us = (uint64_t)ts.tv_sec * 1000000 +
                                                              (uint64_t)ts.tv_nsec / 1000,
                                                     .n = n,
                                                     .kind = (uint8_t)kind,
                                                     .lane = (uint8_t)l->index,
                                                     .slot = (uint8_t)slot};
}

static uint64_t tag_of(int kind, int slot, uint32_t gen)
{
    return ((uint64_t)kind << 56) | ((uint64_t)(slot & 0xff) << 32) | gen;
}

static lane_tx_t *tx_of_tag(lane_t *l, uint64_t tag)
{
    int slot = (int)((tag >> 32) & 0xff);
    if (slot >= EXECUTOR_LANE_TXS_MAX)
        return NULL;
    lane_tx_t *tx = &l->txs[slot];
    return tx->state != TX_FREE && tx->gen == (uint32_t)tag ? tx : NULL;
}

static int slot_of(lane_t *l, lane_tx_t *tx)
{
    return (int)(tx - l->txs);
}

static void backoff(lane_tx_t *tx)
{
    tx->retry_ms = tx->retry_ms == 0 ? RETRY_MIN_MS : tx->retry_ms * 2;
    if (tx->retry_ms > RETRY_MAX_MS)
        tx->retry_ms = RETRY_MAX_MS;
    tx->retry_at_ms = rt_now_ms() + tx->retry_ms / 2 + (uint64_t)rand() % (tx->retry_ms / 2 + 1);
}

/* ---- the hashes the lanes follow (executor__pool_follows) ---- */

/* The place of `hash` in the table, or of the empty place where it would go. Locked. */
static size_t follow_place(const executor_pool_t *pool, const uint8_t hash[32])
{
    uint64_t h;
    memcpy(&h, hash, sizeof(h)); /* a keccak hash: its bytes are already uniform */
    size_t mask = pool->follow.cap - 1, i = (size_t)h & mask;
    /* bounded: the table is never more than half full (executor_pool_create) */
    while (pool->follow.entries[i].refs != 0 && memcmp(pool->follow.entries[i].hash, hash, 32) != 0)
        i = (i + 1) & mask;
    return i;
}

bool executor__pool_follows(executor_pool_t *pool, const uint8_t hash[32])
{
    pthread_mutex_lock(&pool->follow.lock);
    bool found = pool->follow.entries[follow_place(pool, hash)].refs != 0;
    pthread_mutex_unlock(&pool->follow.lock);
    return found;
}

static void follow_add(executor_pool_t *pool, const uint8_t hash[32])
{
    pthread_mutex_lock(&pool->follow.lock);
    executor_follow_entry_t *e = &pool->follow.entries[follow_place(pool, hash)];
    memcpy(e->hash, hash, 32);
    ++e->refs;
    pthread_mutex_unlock(&pool->follow.lock);
}

/* Drops one reference to `hash`; the last one empties its place, and the entries after it in
 * the same run move back so that every entry stays reachable from its home place. */
static void follow_remove(executor_pool_t *pool, const uint8_t hash[32])
{
    pthread_mutex_lock(&pool->follow.lock);
    executor_follow_entry_t *t = pool->follow.entries;
    size_t mask = pool->follow.cap - 1, i = follow_place(pool, hash);
    if (t[i].refs != 0 && --t[i].refs == 0) {
        for (size_t j = (i + 1) & mask; t[j].refs != 0; j = (j + 1) & mask) {
            uint64_t h;
            memcpy(&h, t[j].hash, sizeof(h));
            size_t home = (size_t)h & mask;
            /* j's entry may fill the hole at i when its home is not in (i, j] (cyclically) */
            if (((j - home) & mask) >= ((j - i) & mask)) {
                t[i] = t[j];
                t[j].refs = 0;
                i = j;
            }
        }
    }
    pthread_mutex_unlock(&pool->follow.lock);
}

/* The slot's versions not in the follow set yet join it (they are stored). */
static void tx_follow(lane_t *l, lane_tx_t *tx)
{
    for (; tx->followed < tx->nversions; ++tx->followed)
        follow_add(l->pool, tx->versions[tx->followed]);
}

/* The slot follows none of its versions any more (decided, or none of them can be mined). */
static void tx_unfollow(lane_t *l, lane_tx_t *tx)
{
    for (uint32_t v = 0; v != tx->followed; ++v)
        follow_remove(l->pool, tx->versions[v]);
    tx->followed = 0;
}

static void tx_release(lane_t *l, lane_tx_t *tx)
{
    tx_unfollow(l, tx);
    atomic_fetch_sub(&l->pool->in_flight, tx->n);
    free(tx->members);
    free(tx->jobs);
    free(tx->data);
    free(tx->raw);
    free(tx->next_raw);
    uint32_t gen = tx->gen + 1;
    memset(tx, 0, sizeof(*tx));
    tx->gen = gen;
}

/* Text arrays for unnest: {a,b,...}. The caller frees. */
static char *member_array(const lane_tx_t *tx, int which)
{
    size_t cap = 2 + (size_t)tx->n * (which == 3 ? 2 * sizeof(tx->members[0].error) + 4 : 82);
    char *s = malloc(cap), *p = s;
    *p++ = '{';
    for (uint32_t i = 0; i != tx->n; ++i) {
        const lane_member_t *m = &tx->members[i];
        if (i != 0)
            *p++ = ',';
        if (which == 0) {
            p += sprintf(p, "%s", m->intent_id);
        } else if (which == 1) {
            p += sprintf(p, "%u", m->period);
        } else if (which == 2) {
            p += chain_u256_to_dec(&m->amount, p);
        } else if (m->outcome == 1) {
            p += sprintf(p, "NULL");
        } else { /* a quoted element: the reason is printable ASCII; escape " and \ */
            *p++ = '"';
            for (const char *c = m->error; *c != '\0'; ++c) {
                if (*c == '"' || *c == '\\')
                    *p++ = '\\';
                *p++ = *c;
            }
            *p++ = '"';
        }
    }
    *p++ = '}';
    *p = '\0';
    return s;
}

/* ---- pricing, batching and signing ---- */

/* The fees of a new transaction: 2 * base + tip, under the ceiling. False while unknown, or
 * while the base fee alone is above the ceiling (the transaction could not be mined). */
static bool lane_price(lane_t *l, chain_u256_t *tip, chain_u256_t *max_fee)
{
    executor_pool_t *pool = l->pool;
    chain_u256_t base;
    gas_snapshot_t snap;
    if (pool->c.gas != NULL && gas_oracle_read(pool->c.gas, &snap)) {
        base = snap.base_fee_wei;
        *tip = snap.priority_fee_wei;
    } else if (chain_follower_base_fee(pool->follower, &base)) {
        *tip = chain_u256_from_u64(DEFAULT_TIP_WEI);
    } else {
        return false;
    }
    chain_u256_t one = chain_u256_from_u64(1);
    if (chain_u256_is_zero(tip))
        *tip = one;
    chain_u256_mul_small(max_fee, &base, 2);
    chain_u256_add(max_fee, max_fee, tip);
    const chain_u256_t *ceiling = &pool->c.max_fee_ceiling_wei;
    if (!chain_u256_is_zero(ceiling)) {
        if (chain_u256_cmp(&base, ceiling) >= 0)
            return false;
        if (chain_u256_cmp(max_fee, ceiling) > 0)
            *max_fee = *ceiling;
        if (chain_u256_cmp(tip, max_fee) > 0)
            *tip = *max_fee;
    }
    return true;
}

/* `a` raised by 12.5% (rounded up), the least a node takes as a replacement. */
static chain_u256_t bump(const chain_u256_t *a)
{
    chain_u256_t r, eighth = *a;
    chain_u256_divmod_small(&eighth, a, 8);
    chain_u256_add(&r, a, &eighth);
    chain_u256_t one = chain_u256_from_u64(1);
    chain_u256_add(&r, &r, &one);
    return r;
}

/* A nonce handed out but not stored yet (its store failed and waits for a retry). A later one
 * must not be stored before it: if the process died then, the earlier nonce would be known to
 * nobody, and every later transaction would wait behind the gap on chain forever. For the same
 * reason a lane has one store in flight, not two: the later one could commit first, and a store
 * can also end without a row (every member live elsewhere: drop_live_members gives its nonce
 * back). A burst of 10,000 takes 52 stores of 7-15 ms one after the other (0.4-0.85 s in
 * executor_bench); several lanes store side by side (two: 0.32-0.48 s). */
static bool nonce_unstored(const lane_t *l)
{
    for (int i = 0; i != EXECUTOR_LANE_TXS_MAX; ++i)
        if (l->txs[i].state == TX_STORING || (l->txs[i].state == TX_REPLACING && l->txs[i].renonce))
            return true;
    return false;
}

static lane_tx_t *free_slot(lane_t *l)
{
    for (int i = 0; i != EXECUTOR_LANE_TXS_MAX; ++i)
        if (l->txs[i].state == TX_FREE)
            return &l->txs[i];
    return NULL;
}

static executor_job_t *queue_pop(lane_t *l)
{
    executor_job_t *job = &l->queue[l->q_head];
    l->q_head = (l->q_head + 1) % EXECUTOR_LANE_QUEUE_MAX;
    --l->q_len;
    return job;
}

static void queue_push(lane_t *l, const executor_job_t *job)
{
    CHAIN_ASSERT(l->q_len < EXECUTOR_LANE_QUEUE_MAX);
    l->queue[(l->q_head + l->q_len) % EXECUTOR_LANE_QUEUE_MAX] = *job;
    ++l->q_len;
}

/* Takes up to `max` jobs, one per intent (two periods of one intent in one statement would
 * update its row twice); the others go back to the end of the queue. Returns the count. */
static uint32_t take_jobs(lane_t *l, executor_job_t *out, uint32_t max)
{
    uint32_t n = 0, scan = l->q_len;
    for (uint32_t s = 0; s != scan && n != max; ++s) {
        executor_job_t job = *queue_pop(l);
        bool dup = false;
        for (uint32_t i = 0; i != n && !dup; ++i)
            dup = strcmp(out[i].intent_id, job.intent_id) == 0;
        if (dup)
            queue_push(l, &job);
        else
            out[n++] = job;
    }
    return n;
}

/* Signs `tx` (data, gas, fees, nonce set) into (raw, hash). */
static bool sign_tx(lane_t *l, const lane_tx_t *tx, uint64_t nonce, const chain_u256_t *tip,
                    const chain_u256_t *max_fee, uint8_t **raw, size_t *raw_len, uint8_t hash[32])
{
    chain_tx_t t = {.type = CHAIN_TX_EIP1559,
                    .chain_id = l->pool->c.chain_id,
                    .nonce = nonce,
                    .max_priority_fee_per_gas = *tip,
                    .max_fee_per_gas = *max_fee,
                    .gas = tx->gas,
                    .has_to = true,
                    .to = l->pool->c.registry,
                    .data = tx->data,
                    .data_len = tx->data_len};
    size_t cap = chain_tx_raw_size_max(tx->data_len);
    *raw = malloc(cap);
    if (*raw == NULL || chain_tx_sign(&t, l->key, *raw, cap, raw_len, hash) != CHAIN_OK) {
        free(*raw);
        *raw = NULL;
        return false;
    }
    return true;
}

/* Encodes executeBatch for `jobs` into tx->data and fills the members. */
static bool encode_batch(lane_tx_t *tx, const executor_job_t *jobs, uint32_t n, uint64_t member_gas)
{
    chain_abi_execution_t batch[EXECUTOR_BATCH_MAX];
    for (uint32_t i = 0; i != n; ++i)
        batch[i] = (chain_abi_execution_t){&jobs[i].terms, jobs[i].signature, 65, jobs[i].period};
    size_t len;
    if (chain_abi_execute_batch(NULL, 0, &len, batch, n) != CHAIN_OK)
        return false;
    tx->data = malloc(len);
    tx->members = calloc(n, sizeof(*tx->members));
    if (tx->data == NULL || tx->members == NULL ||
        chain_abi_execute_batch(tx->data, len, &tx->data_len, batch, n) != CHAIN_OK)
        return false;
    tx->n = n;
    for (uint32_t i = 0; i != n; ++i) {
        lane_member_t *m = &tx->members[i];
        memcpy(m->intent_id, jobs[i].intent_id, sizeof(m->intent_id));
        memcpy(m->user_id, jobs[i].user_id, sizeof(m->user_id));
        m->intent_id[36] = m->user_id[36] = '\0';
        m->period = jobs[i].period;
        m->amount = jobs[i].terms.amount;
        chain_intent_hash(&jobs[i].terms, m->on_chain_id);
    }
    tx->gas = GAS_PER_BATCH + (uint64_t)n * member_gas;
    return true;
}

/* Reads the rows whose ids the results `res[0..nres)` (one column each, or none) name and
 * publishes them as events, oldest row first (a replaced row before its replacement). */
static void publish_rows(rt_actor_t *self, lane_t *l, const PGresult *const *res, int nres)
{
    int n = 0;
    for (int i = 0; i != nres; ++i)
        n += PQnfields(res[i]) == 1 ? PQntuples(res[i]) : 0;
    if (l->pool->c.events == NULL || n == 0)
        return;
    char *text = malloc((size_t)n * 38 + 3), *p = text;
    *p++ = '{';
    for (int i = 0, k = 0; i != nres; ++i)
        for (int row = 0; PQnfields(res[i]) == 1 && row != PQntuples(res[i]); ++row)
            p += sprintf(p, "%s%.36s", k++ == 0 ? "" : ",", PQgetvalue(res[i], row, 0));
    *p++ = '}';
    *p = '\0';
    const char *params[] = {text};
    store_pg_query(l->pool->c.pg, self, tag_of(K_EVENTS, 0, 0), st_rows_by_id, 1, params);
    free(text);
}

/* ---- storing before broadcasting ---- */

static void lane_send(rt_actor_t *self, lane_t *l, lane_tx_t *tx);

/* Submits [mark replaced | supersede the nonce] + insert of tx's members for (raw, hash). */
static void store_rows(rt_actor_t *self, lane_t *l, lane_tx_t *tx, const uint8_t *raw,
                       size_t raw_len, const uint8_t hash[32], uint64_t nonce, bool again)
{
    char *ids = member_array(tx, 0), *periods = member_array(tx, 1), *amounts = member_array(tx, 2);
    char *raw_text = malloc(2 * raw_len + 3), hash_text[67], old_text[67], nonce_text[24];
    executor__bytea(raw_text, raw, raw_len);
    executor__bytea(hash_text, hash, 32);
    snprintf(nonce_text, sizeof(nonce_text), "%llu", (unsigned long long)nonce);
    const char *ins[] = {ids, periods, amounts, l->addr_text, nonce_text, raw_text, hash_text};
    const char *keep[] = {hash_text, raw_text};
    int stmts[3], nparams[3], k = 0;
    const char *const *params[3];
    char old_nonce[24];
    const char *mark[1], *supersede[3];
    if (again && tx->renonce) { /* every version of the old nonce: none can be mined now */
        snprintf(old_nonce, sizeof(old_nonce), "%llu", (unsigned long long)tx->nonce);
        supersede[0] = l->addr_text, supersede[1] = old_nonce, supersede[2] = hash_text;
        stmts[k] = st_supersede_nonce, nparams[k] = 3, params[k++] = supersede;
    } else if (again) {
        executor__bytea(old_text, tx->versions[tx->cur], 32);
        mark[0] = old_text;
        stmts[k] = st_mark_replaced, nparams[k] = 1, params[k++] = mark;
    }
    stmts[k] = again ? st_insert_again : st_insert, nparams[k] = 7, params[k++] = ins;
    if (again)
        stmts[k] = st_keep_raw, nparams[k] = 2, params[k++] = keep;
    if (!store_pg_transaction(l->pool->c.pg, self, tag_of(K_STORE, slot_of(l, tx), tx->gen), k,
                              stmts, nparams, params)) {
        backoff(tx);
        l->retry_at_ms = tx->retry_at_ms;
    } else {
        l->storing = true;
        trace(l, EXECUTOR_TRACE_STORE_SENT, slot_of(l, tx), tx->n);
    }
    free(ids), free(periods), free(amounts), free(raw_text);
}

/* Stores the version being made: the first one (STORING) or a replacement (REPLACING). */
static void store_current(rt_actor_t *self, lane_t *l, lane_tx_t *tx)
{
    if (tx->state == TX_STORING)
        store_rows(self, l, tx, tx->raw, tx->raw_len, tx->versions[0], tx->nonce, false);
    else
        store_rows(self, l, tx, tx->next_raw, tx->next_raw_len, tx->next_hash, tx->next_nonce,
                   true);
}

/* Forms a new batch from the queue, signs it with the lane's next nonce and stores it. */
static void lane_new_batch(rt_actor_t *self, lane_t *l)
{
    lane_tx_t *tx = free_slot(l);
    chain_u256_t tip, max_fee;
    if (tx == NULL || l->q_len == 0 || nonce_unstored(l) || !lane_price(l, &tip, &max_fee))
        return;
    uint64_t budget = l->pool->c.batch_gas_budget;
    uint64_t max = budget > GAS_PER_BATCH ? (budget - GAS_PER_BATCH) / l->member_gas : 1;
    if (max == 0)
        max = 1;
    if (max > EXECUTOR_BATCH_MAX)
        max = EXECUTOR_BATCH_MAX;
    tx->jobs = malloc(sizeof(executor_job_t) * max);
    uint32_t n = take_jobs(l, tx->jobs, (uint32_t)max);
    atomic_fetch_sub(&l->pool->queued[l->index], n);
    atomic_fetch_add(&l->pool->in_flight, n);
    tx->n = n; /* so that a release gives the in-flight count back */
    tx->state = TX_STORING;
    tx->nonce = l->next_nonce;
    tx->tip = tip, tx->max_fee = max_fee;
    if (!encode_batch(tx, tx->jobs, n, l->member_gas) ||
        !sign_tx(l, tx, tx->nonce, &tip, &max_fee, &tx->raw, &tx->raw_len, tx->versions[0])) {
        rt_log_error("executor", "cannot encode or sign a batch of %u: dropped", n);
        tx_release(l, tx);
        return;
    }
    ++l->next_nonce;
    tx->nversions = 1;
    store_current(self, l, tx);
}

/* Re-encodes a first version without the members whose periods turned out live elsewhere. */
static void drop_live_members(rt_actor_t *self, lane_t *l, lane_tx_t *tx, const PGresult *res)
{
    uint32_t kept = 0, n = tx->n;
    for (uint32_t i = 0; i != n; ++i) {
        bool live = false;
        for (int row = 0; row != PQntuples(res) && !live; ++row)
            live = strcmp(PQgetvalue(res, row, 0), tx->jobs[i].intent_id) == 0 &&
                   (uint32_t)atol(PQgetvalue(res, row, 1)) == tx->jobs[i].period;
        if (!live)
            tx->jobs[kept++] = tx->jobs[i];
    }
    rt_log_info("executor", "%u of %u jobs already have a live execution: not signed again",
                n - kept, n);
    atomic_fetch_sub(&l->pool->in_flight, n - kept);
    free(tx->members), free(tx->data), free(tx->raw);
    tx->members = NULL, tx->data = NULL, tx->raw = NULL, tx->n = kept;
    if (kept == 0 || !encode_batch(tx, tx->jobs, kept, l->member_gas) ||
        !sign_tx(l, tx, tx->nonce, &tx->tip, &tx->max_fee, &tx->raw, &tx->raw_len,
                 tx->versions[0])) {
        /* the nonce stays unused: the next batch must take it */
        l->next_nonce = tx->nonce;
        tx_release(l, tx);
        return;
    }
    store_current(self, l, tx);
}

/* The version being stored is committed: it becomes the current one, and goes out. */
static void stored(rt_actor_t *self, lane_t *l, lane_tx_t *tx)
{
    if (tx->state == TX_REPLACING) {
        if (tx->renonce) {
            tx_unfollow(l, tx); /* done when it was decided; the old nonce's versions go */
            tx->nversions = 0;
            tx->renonce = tx->nonce_used = tx->doubt = false;
        }
        tx->cur = tx->nversions++;
        memcpy(tx->versions[tx->cur], tx->next_hash, 32);
        free(tx->raw);
        tx->raw = tx->next_raw, tx->raw_len = tx->next_raw_len, tx->next_raw = NULL;
        tx->nonce = tx->next_nonce, tx->tip = tx->next_tip, tx->max_fee = tx->next_max_fee;
    }
    tx_follow(l, tx);
    free(tx->jobs);
    tx->jobs = NULL;
    tx->state = TX_SENDING;
    tx->retry_ms = 0;
    /* the next batch's store first: the database works on it while this one's request is built
     * and sent (the raw transaction's JSON text took the lane 1-2 ms per batch of 199, one batch
     * after the other in a burst) */
    if (!l->storing && l->phase == PHASE_READY && rt_now_ms() >= l->retry_at_ms)
        lane_new_batch(self, l);
    tx->sent_ms = tx->resent_ms = rt_now_ms();
    lane_send(self, l, tx);
}

static void on_store_reply(rt_actor_t *self, lane_t *l, lane_tx_t *tx, int kind,
                           const store_pg_result_t *r)
{
    if (kind == K_STORE) {
        l->storing = false;
        trace(l, EXECUTOR_TRACE_STORED, slot_of(l, tx), (uint32_t)r->status);
    }
    if (kind == K_STORE && r->status == STORE_PG_OK) {
        publish_rows(self, l, (const PGresult *const *)r->results, (int)r->nresults);
        stored(self, l, tx);
    } else if (kind == K_STORE && r->status == STORE_PG_ERROR && tx->state == TX_STORING &&
               strcmp(r->sqlstate, "23505") == 0) {
        char *ids = member_array(tx, 0), *periods = member_array(tx, 1);
        const char *params[] = {ids, periods};
        l->storing = store_pg_query(l->pool->c.pg, self, tag_of(K_LIVE, slot_of(l, tx), tx->gen),
                                    st_live_of, 2, params);
        free(ids), free(periods);
    } else if (kind == K_STORE) { /* it may have committed (a lost connection): look */
        char hash_text[67];
        executor__bytea(hash_text, tx->state == TX_STORING ? tx->versions[0] : tx->next_hash, 32);
        const char *params[] = {hash_text};
        rt_log_warn("executor", "storing a transaction failed (%s %s): checking",
                    store_pg_status_name(r->status), r->message);
        l->storing = store_pg_query(l->pool->c.pg, self, tag_of(K_COUNT, slot_of(l, tx), tx->gen),
                                    st_count_hash, 1, params);
        if (!l->storing)
            backoff(tx);
    } else if (kind == K_LIVE) {
        l->storing = false;
        if (r->status == STORE_PG_OK)
            drop_live_members(self, l, tx, r->results[0]);
        else
            backoff(tx); /* the tick stores it again */
    } else if (kind == K_COUNT) {
        l->storing = false;
        if (r->status == STORE_PG_OK && atol(PQgetvalue(r->results[0], 0, 0)) > 0)
            stored(self, l, tx);
        else
            backoff(tx);
    }
}

/* ---- broadcasting ---- */

static void lane_send(rt_actor_t *self, lane_t *l, lane_tx_t *tx)
{
    chain_rpc_call_t call = chain_rpc_eth_send_raw_transaction(tx->raw, tx->raw_len);
    if (chain_rpc_send(self, l->pool->c.rpc, &call, 1, 0,
                       tag_of(K_SEND, slot_of(l, tx), tx->gen)) == CHAIN_RPC_OK) {
        tx->busy = true;
        trace(l, EXECUTOR_TRACE_SEND_SENT, slot_of(l, tx), tx->n);
    } else
        backoff(tx);
}

static void mark_broadcast(rt_actor_t *self, lane_t *l, lane_tx_t *tx)
{
    char hash_text[67];
    executor__bytea(hash_text, tx->versions[tx->cur], 32);
    const char *params[] = {hash_text};
    /* best effort: a row left `signed` is re-sent and followed the same way after a restart */
    store_pg_query(l->pool->c.pg, self, tag_of(K_MARK, 0, 0), st_mark_broadcast, 1, params);
}

static void lane_resync(lane_t *l)
{
    if (l->phase == PHASE_READY)
        l->phase = PHASE_SYNC;
}

static void on_send_reply(rt_actor_t *self, lane_t *l, lane_tx_t *tx, const chain_rpc_reply_t *r,
                          bool resend)
{
    tx->busy = false;
    int err = r->error != CHAIN_RPC_OK ? r->error : r->items[0].error;
    if (resend) { /* only "nonce too low" tells something: mined, by us or someone else */
        if (err == CHAIN_RPC_ERR_NONCE_TOO_LOW && tx->state == TX_PENDING) {
            tx->nonce_used = true;
            lane_resync(l);
        }
        return;
    }
    if (tx->state != TX_SENDING)
        return;
    trace(l, EXECUTOR_TRACE_SENT, slot_of(l, tx), (uint32_t)-err);
    switch (err) {
    case CHAIN_RPC_OK:
    case CHAIN_RPC_ERR_ALREADY_KNOWN:
    case CHAIN_RPC_ERR_REPLACEMENT_UNDERPRICED: /* a version of ours with this nonce is pending */
        tx->state = TX_PENDING;
        tx->retry_ms = 0;
        mark_broadcast(self, l, tx);
        break;
    case CHAIN_RPC_ERR_NONCE_TOO_LOW: /* mined: by one of our versions, or by someone else */
        tx->state = TX_PENDING;
        tx->nonce_used = true;
        lane_resync(l);
        break;
    case CHAIN_RPC_ERR_NONCE_TOO_HIGH:
        lane_resync(l);
        backoff(tx);
        break;
    default:
        rt_log_warn("executor", "broadcast of nonce %llu failed: %s (%s)",
                    (unsigned long long)tx->nonce, chain_rpc_strerror(err),
                    r->count != 0 ? chain_rpc_reply_message(r, 0) : "");
        backoff(tx);
    }
}

/* Re-signs a pending transaction: a higher fee on the same nonce, or (renonce) the lane's next
 * nonce when another transaction took this one. */
static void lane_replace(rt_actor_t *self, lane_t *l, lane_tx_t *tx)
{
    chain_u256_t tip, max_fee;
    bool priced = lane_price(l, &tip, &max_fee);
    tx->next_nonce = tx->renonce ? l->next_nonce : tx->nonce;
    if (!tx->renonce) {
        chain_u256_t min_tip = bump(&tx->tip), min_max = bump(&tx->max_fee);
        const chain_u256_t *ceiling = &l->pool->c.max_fee_ceiling_wei;
        if (!chain_u256_is_zero(ceiling) && chain_u256_cmp(&min_max, ceiling) > 0) {
            tx->state = TX_SENDING; /* cannot outbid within the ceiling: send it again */
            tx->sent_ms = rt_now_ms();
            lane_send(self, l, tx);
            return;
        }
        if (!priced || chain_u256_cmp(&tip, &min_tip) < 0)
            tip = min_tip;
        if (!priced || chain_u256_cmp(&max_fee, &min_max) < 0)
            max_fee = min_max;
        if (chain_u256_cmp(&max_fee, &tip) < 0)
            max_fee = tip;
    } else if (!priced) {
        tip = tx->tip, max_fee = tx->max_fee;
    }
    tx->next_tip = tip, tx->next_max_fee = max_fee;
    free(tx->next_raw);
    if (!sign_tx(l, tx, tx->next_nonce, &tip, &max_fee, &tx->next_raw, &tx->next_raw_len,
                 tx->next_hash))
        return;
    if (tx->renonce)
        ++l->next_nonce;
    rt_log_info("executor", "%s nonce %llu (%u executions) as nonce %llu",
                tx->renonce ? "moving" : "replacing", (unsigned long long)tx->nonce, tx->n,
                (unsigned long long)tx->next_nonce);
    tx->state = TX_REPLACING;
    store_current(self, l, tx);
}

/* ---- receipts and outcomes ---- */

/* Poll `p` answered or failed: the slots it asked about (still in the same use) may be asked
 * again, and the poll is free. */
static void poll_done(lane_t *l, uint32_t p)
{
    for (uint32_t i = POLL_FIXED; i < l->polls[p].n; ++i) {
        lane_tx_t *tx = &l->txs[l->polls[p].map[i].slot];
        if (tx->gen == l->polls[p].map[i].gen)
            tx->asked = false;
    }
    l->polls[p].n = 0;
    --l->polls_inflight;
}

/* Sends poll `p`: the head, the nonce count and the receipts of transactions in flight that no
 * other poll asks about, up to POLL_LOGS_MAX executions. True when some were left out for that
 * bound (another poll should take them). */
static bool poll_send(rt_actor_t *self, lane_t *l, uint32_t p)
{
    chain_rpc_call_t calls[CHAIN_RPC_MAX_BATCH];
    uint32_t n = 0, logs = 0;
    uint32_t logs_max =
        chain_follower_head(l->pool->follower) < l->head ? POLL_LOGS_BEHIND : POLL_LOGS_MAX;
    bool more = false;
    calls[n++] = chain_rpc_eth_block_number();
    /* a nonce below this count is used; by one of ours only if one of its receipts is there,
     * which a node may serve a moment after it counts the nonce (doubt_nonce) */
    calls[n++] = chain_rpc_eth_get_transaction_count(&l->addr, chain_rpc_block_tag("latest"));
    /* read with the receipts, so that those mined in it are recorded without another round
     * trip (on a busy node, that read waited behind the other polls for up to 450 ms) */
    uint32_t conf = l->pool->c.confirmations;
    calls[n++] = chain_rpc_eth_get_block_by_number(
        chain_rpc_block_number(l->head + 1 >= conf ? l->head + 1 - conf : 0));
    l->poll_first = (l->poll_first + 1) % EXECUTOR_LANE_TXS_MAX;
    for (int k = 0; k != EXECUTOR_LANE_TXS_MAX; ++k) {
        int s = (int)((l->poll_first + (uint32_t)k) % EXECUTOR_LANE_TXS_MAX);
        lane_tx_t *tx = &l->txs[s];
        if ((tx->state != TX_PENDING && tx->state != TX_MINED) || tx->renonce || tx->asked ||
            (tx->polled_head >= l->head && tx->polled_head != 0 && !tx->nonce_used))
            continue;
        if (n + tx->nversions > CHAIN_RPC_MAX_BATCH || (logs != 0 && logs + tx->n > logs_max)) {
            more = true;
            continue;
        }
        logs += tx->n;
        tx->asked = true;
        for (uint32_t v = 0; v != tx->nversions; ++v) {
            l->polls[p].map[n].slot = (uint8_t)s, l->polls[p].map[n].version = (uint8_t)v;
            l->polls[p].map[n].gen = tx->gen;
            calls[n++] = chain_rpc_eth_get_transaction_receipt(tx->versions[v]);
        }
    }
    if (n == POLL_FIXED) {
        for (uint32_t i = 0; i != POLL_FIXED; ++i)
            json_decref(calls[i].params);
        return false;
    }
    l->polls[p].n = n;
    l->polls[p].epoch = l->epoch;
    ++l->polls_inflight;
    trace(l, EXECUTOR_TRACE_POLL_SENT, (int)p, n);
    if (chain_rpc_send(self, l->pool->c.rpc, calls, n, 0, tag_of(K_POLL, (int)p, 0)) !=
        CHAIN_RPC_OK) {
        poll_done(l, p);
        return false;
    }
    return more;
}

/*
 * Polls for receipts. A receipt can only appear with a new block, so a transaction's receipt is
 * asked once per head (or again while the chain counts its nonce but serves no receipt yet), and
 * polls without a new head come every poll_ms: polling back to back took the node's time from
 * mining. Up to POLLS_MAX polls are in flight, each about other transactions, so that the
 * receipts of a block full of ours come back in parallel and the first are recorded early.
 */
static void lane_poll(rt_actor_t *self, lane_t *l)
{
    l->poll_at_ms = rt_now_ms() + l->pool->c.poll_ms;
    l->poll_head = l->head;
    bool more = true;
    for (uint32_t p = 0; p != POLLS_MAX && more; ++p)
        if (l->polls[p].n == 0)
            more = poll_send(self, l, p);
    if (more)
        l->poll_at_ms = 0; /* the rest as soon as a poll answers */
}

/* Reads each member's outcome from the receipt's registry logs. */
static void read_outcomes(lane_t *l, lane_tx_t *tx, const chain_rpc_receipt_t *rc)
{
    /* a call that runs out of gas keeps 1/64 of it, and each later member 1/64 of the rest:
     * a batch left with less than 1/64 of its limit ran out, and its failures without a
     * reason are that (nothing was paid: a failed member's revert undoes it) */
    bool starved = tx->gas != 0 && rc->gas_used * 64 >= tx->gas * 63;
    for (uint32_t i = 0; i != tx->n; ++i) {
        tx->members[i].outcome = 2;
        snprintf(tx->members[i].error, sizeof(tx->members[i].error), "%s",
                 starved       ? OUT_OF_GAS_ERROR
                 : rc->success ? "no outcome in the receipt"
                               : "the transaction reverted");
    }
    for (size_t k = 0; k != rc->logs.count; ++k) {
        chain_abi_event_t ev;
        if (!executor__outcome_event(l->pool, &rc->logs.items[k], &ev))
            continue;
        for (uint32_t i = 0; i != tx->n; ++i) {
            lane_member_t *m = &tx->members[i];
            if (memcmp(m->on_chain_id, ev.intent_id, 32) != 0 || m->period != ev.count)
                continue;
            if (ev.kind == CHAIN_ABI_EVENT_KIND_EXECUTED) {
                m->outcome = 1;
                m->error[0] = '\0';
            } else if (starved && ev.reason_len == 0) {
                snprintf(m->error, sizeof(m->error), OUT_OF_GAS_ERROR);
            } else {
                executor__revert_reason(ev.reason, ev.reason_len, m->error, sizeof(m->error));
            }
        }
    }
}

/* Raises the gas the lane declares per execution to 1.5x what this receipt shows (twice what
 * the transaction declared, after running out), so that the next batches fit what the token
 * costs. */
static void learn_gas(lane_t *l, const lane_tx_t *tx)
{
    bool ran_out = false;
    for (uint32_t i = 0; i != tx->n && !ran_out; ++i)
        ran_out = strcmp(tx->members[i].error, OUT_OF_GAS_ERROR) == 0;
    /* a small batch's figure is mostly the transaction's own cost (21k, the first touch of the
     * registry's and the token's storage): only a larger one tells the cost of one execution */
    if (tx->n == 0 || (tx->n < LEARN_MEMBERS_MIN && !ran_out))
        return;
    uint64_t own = tx->gas_used < 30000 ? tx->gas_used : 30000;
    uint64_t want = (tx->gas_used - own) / tx->n * 3 / 2;
    uint64_t declared = tx->gas > GAS_PER_BATCH ? (tx->gas - GAS_PER_BATCH) / tx->n : 0;
    if (ran_out && want < 2 * declared)
        want = 2 * declared;
    if (want > GAS_PER_EXECUTION_MAX)
        want = GAS_PER_EXECUTION_MAX;
    if (want > l->member_gas) {
        rt_log_info("executor", "lane %d: declaring %llu gas per execution (was %llu)", l->index,
                    (unsigned long long)want, (unsigned long long)l->member_gas);
        l->member_gas = want;
    }
}

static void tx_mined(lane_tx_t *tx, int version, const chain_rpc_receipt_t *rc, lane_t *l)
{
    bool same = tx->state == TX_MINED && tx->mined_version == version &&
                memcmp(tx->mined_block_hash, rc->block_hash, 32) == 0;
    if (same)
        return;
    tx->state = TX_MINED;
    tx->mined_version = version;
    tx->mined_block = rc->block_number;
    memcpy(tx->mined_block_hash, rc->block_hash, 32);
    tx->gas_used = rc->gas_used;
    tx->gas_price = rc->has_effective_gas_price ? rc->effective_gas_price : tx->max_fee;
    tx->reverted = !rc->success;
    read_outcomes(l, tx, rc);
    learn_gas(l, tx);
}

static void finalize(rt_actor_t *self, lane_t *l, lane_tx_t *tx);

/* Whether mined tx's outcome can be recorded now, `head` being the lane's: no read of it under
 * way, its block CONFIRMATIONS deep at `head`, and the follower has read the headers that far
 * too (so the header of tx's block as well): only then is a reorg of that block noticed and tx
 * checked again. A lane that recorded an outcome in a block the follower never saw (the lane
 * learns of heads on its own too) would miss a reorg that took the block away before the
 * follower's next look. The follower announces each new head (EXECUTOR_MSG_HEAD), which
 * finalizes what waited. (confirmations is at least 1: executor_pool_create.) */
static bool ready_to_record(const lane_t *l, const lane_tx_t *tx, uint64_t head)
{
    uint64_t deep_at = tx->mined_block + l->pool->c.confirmations - 1;
    return !tx->busy && head >= deep_at && chain_follower_head(l->pool->follower) >= deep_at;
}

static void lane_learn_head(lane_t *l, uint64_t head);

/*
 * Reads the block tx was mined in (its time, and that it is still canonical), then records the
 * outcome. The transactions of one block share one read while the head stays where it was, and
 * wait for a read of their block already in flight instead of sending their own: when the head
 * moved in the middle of a burst's tail, each of its transactions read the block for itself
 * (executor_bench, due right after a block: 38 reads of one block, up to 14 at once, ~76 ms
 * each, beside the receipt polls at the same node).
 */
static void request_block(rt_actor_t *self, lane_t *l, lane_tx_t *tx)
{
    if (l->blk.number == tx->mined_block && l->blk.head == l->head && l->head != 0 &&
        memcmp(l->blk.hash, tx->mined_block_hash, 32) == 0) {
        tx->block_time_s = l->blk.time_s;
        tx->state = TX_FINALIZING;
        finalize(self, l, tx);
        return;
    }
    if (l->blk_read.corr != 0 && l->blk_read.number == tx->mined_block &&
        memcmp(l->blk_read.hash, tx->mined_block_hash, 32) == 0) {
        tx->busy = tx->awaits_block = true;
        tx->state = TX_FINALIZING;
        return;
    }
    uint64_t corr = tag_of(K_BLOCK, slot_of(l, tx), tx->gen);
    chain_rpc_call_t call =
        chain_rpc_eth_get_block_by_number(chain_rpc_block_number(tx->mined_block));
    if (chain_rpc_send(self, l->pool->c.rpc, &call, 1, 0, corr) != CHAIN_RPC_OK) {
        tx->polled_head = 0;
        return;
    }
    trace(l, EXECUTOR_TRACE_BLOCK_SENT, slot_of(l, tx), 0);
    tx->busy = true;
    tx->state = TX_FINALIZING;
    if (l->blk_read.corr == 0) {
        l->blk_read.corr = corr, l->blk_read.number = tx->mined_block;
        l->blk_read.epoch = l->epoch;
        memcpy(l->blk_read.hash, tx->mined_block_hash, 32);
    }
}

/*
 * The chain counts tx's nonce as used and no version of ours has a receipt. Either another
 * transaction took the nonce, or one of ours was mined and the node does not serve its receipt
 * yet (a node may count a nonce before it serves the receipts of the block that used it), or
 * the one mined is a transaction of ours this slot does not follow (stored by an earlier run).
 * Moving the executions to a new nonce in the last two cases would pay their periods twice on
 * chain, so the nonce moves only when certain: RENONCE_BLOCKS blocks after the first poll that
 * saw it so (or RENONCE_WAIT_MS after it, when no blocks come), every hash the database holds
 * for the nonce is asked for its receipt (on_nonce_hashes, on_verify_reply).
 */
static void doubt_nonce(rt_actor_t *self, lane_t *l, lane_tx_t *tx, uint64_t head)
{
    uint64_t now = rt_now_ms();
    if (!tx->doubt) {
        tx->doubt = true;
        tx->doubt_head = head;
        tx->doubt_ms = now;
        return;
    }
    if (tx->busy ||
        (l->head < tx->doubt_head + RENONCE_BLOCKS && now - tx->doubt_ms < RENONCE_WAIT_MS))
        return;
    char nonce[24], *ids = member_array(tx, 0);
    snprintf(nonce, sizeof(nonce), "%llu", (unsigned long long)tx->nonce);
    const char *params[] = {l->addr_text, nonce, ids};
    tx->busy = store_pg_query(l->pool->c.pg, self, tag_of(K_HASHES, slot_of(l, tx), tx->gen),
                              st_nonce_hashes, 3, params);
    free(ids);
}

/* One polled slot: `found` is the version with a receipt (-1: none). */
static void poll_slot(rt_actor_t *self, lane_t *l, lane_tx_t *tx, int found,
                      const chain_rpc_receipt_t *rc, uint64_t head, uint64_t mined_count)
{
    if (found >= 0) {
        if (tx->doubt) /* what a move would have paid twice */
            rt_log_info("executor", "nonce %llu: ours, its receipt came %llu ms after its count",
                        (unsigned long long)tx->nonce,
                        (unsigned long long)(rt_now_ms() - tx->doubt_ms));
        tx->doubt = false;
        tx_mined(tx, found, rc, l);
        if (ready_to_record(l, tx, head))
            request_block(self, l, tx);
    } else if (tx->state == TX_MINED) { /* reorged out: it goes back to the node */
        rt_log_warn("executor", "nonce %llu left the chain (reorg): sending it again",
                    (unsigned long long)tx->nonce);
        tx->state = TX_SENDING;
        tx->retry_at_ms = 0;
    } else if (tx->nonce_used && mined_count > tx->nonce) {
        doubt_nonce(self, l, tx, head);
    } else if (tx->nonce_used) { /* a false alarm: not used after all */
        tx->nonce_used = tx->doubt = false;
    } else if (!tx->busy && rt_now_ms() - tx->resent_ms >= RESEND_MS) {
        /* nodes drop transactions (anvil drops nonce N+1 when N did not fit a block): the same
         * bytes again are harmless, "already known" when it still has them */
        tx->resent_ms = rt_now_ms();
        chain_rpc_call_t call = chain_rpc_eth_send_raw_transaction(tx->raw, tx->raw_len);
        tx->busy = chain_rpc_send(self, l->pool->c.rpc, &call, 1, 0,
                                  tag_of(K_RESEND, slot_of(l, tx), tx->gen)) == CHAIN_RPC_OK;
    }
}

/* Every hash stored for the doubtful nonce: those this slot does not follow join its versions
 * (appended: the indices of polls in flight stay valid), then all are asked for receipts, after
 * the count, in a request sent only now, RENONCE_BLOCKS blocks after the doubt began. */
static void on_nonce_hashes(rt_actor_t *self, lane_t *l, lane_tx_t *tx, const store_pg_result_t *r)
{
    tx->busy = false;
    if (r->status != STORE_PG_OK || tx->state != TX_PENDING || !tx->doubt || tx->renonce)
        return; /* the next poll asks again */
    const PGresult *res = r->results[0];
    for (int row = 0; row != PQntuples(res); ++row) {
        uint8_t hash[32];
        bool known = false;
        if (!executor__bytea_read(PQgetvalue(res, row, 0), hash, 32))
            continue;
        for (uint32_t v = 0; v != tx->nversions && !known; ++v)
            known = memcmp(tx->versions[v], hash, 32) == 0;
        if (known)
            continue;
        if (tx->nversions == TX_HASHES_MAX) { /* cannot be sure: stay, and say so */
            rt_log_error("executor", "nonce %llu has more than %d stored transactions: not moved",
                         (unsigned long long)tx->nonce, TX_HASHES_MAX);
            return;
        }
        memcpy(tx->versions[tx->nversions++], hash, 32);
    }
    tx_follow(l, tx); /* stored by an earlier run or version: the slot follows them now */
    chain_rpc_call_t calls[1 + TX_HASHES_MAX];
    uint32_t n = 0;
    calls[n++] = chain_rpc_eth_get_transaction_count(&l->addr, chain_rpc_block_tag("latest"));
    for (uint32_t v = 0; v != tx->nversions; ++v)
        calls[n++] = chain_rpc_eth_get_transaction_receipt(tx->versions[v]);
    tx->busy = chain_rpc_send(self, l->pool->c.rpc, calls, n, 0,
                              tag_of(K_VERIFY, slot_of(l, tx), tx->gen)) == CHAIN_RPC_OK;
}

/* The receipts of every stored hash of the doubtful nonce: one of them mined it (the slot goes
 * on as mined), or none did and the nonce is someone else's (the executions move). */
static void on_verify_reply(rt_actor_t *self, lane_t *l, lane_tx_t *tx, const chain_rpc_reply_t *r)
{
    tx->busy = false;
    uint64_t count;
    size_t len = 0;
    const char *json = r->error == CHAIN_RPC_OK ? chain_rpc_reply_result(r, 0, &len) : NULL;
    if (tx->state != TX_PENDING || !tx->doubt || tx->renonce || json == NULL ||
        r->count != 1 + tx->nversions || chain_rpc_result_u64(json, len, &count) != CHAIN_OK)
        return; /* the next poll asks again */
    int found = -1;
    chain_rpc_receipt_t rc, kept;
    bool complete = true;
    for (uint32_t v = 0; v != tx->nversions; ++v) {
        bool got = false;
        json = chain_rpc_reply_result(r, 1 + v, &len);
        if (r->items[1 + v].error != CHAIN_RPC_OK || json == NULL ||
            chain_rpc_result_receipt_scan(json, len, &rc, &got) != CHAIN_OK)
            complete = false;
        else if (got && found < 0)
            found = (int)v, kept = rc;
        else if (got)
            chain_rpc_receipt_free(&rc);
    }
    if (found >= 0) {
        poll_slot(self, l, tx, found, &kept, l->head, count);
        chain_rpc_receipt_free(&kept);
    } else if (complete && count <= tx->nonce) { /* not used after all (a reorg) */
        tx->nonce_used = tx->doubt = false;
    } else if (complete) {
        rt_log_warn("executor",
                    "nonce %llu was used by a transaction not ours (none of %u stored has a"
                    " receipt): its %u executions move",
                    (unsigned long long)tx->nonce, tx->nversions, tx->n);
        tx->renonce = true;
        tx_unfollow(l, tx); /* none of them can be mined: their logs are not the lane's */
    }
}

/* The header a poll read beside the receipts: the lane's block for finalizations while the head
 * stays at the poll's `head` (request_block). */
static void poll_header(lane_t *l, uint32_t p, const chain_rpc_reply_t *r, uint64_t head)
{
    chain_rpc_block_header_t h;
    bool found = false;
    size_t len;
    const char *json =
        r->items[2].error == CHAIN_RPC_OK ? chain_rpc_reply_result(r, 2, &len) : NULL;
    if (json == NULL || chain_rpc_result_block_header(json, len, &h, &found) != CHAIN_OK ||
        !found || head != l->head || l->polls[p].epoch != l->epoch)
        return;
    l->blk.number = h.number, l->blk.head = head, l->blk.time_s = (int64_t)h.timestamp;
    memcpy(l->blk.hash, h.hash, 32);
}

static void on_poll_reply(rt_actor_t *self, lane_t *l, uint32_t p, const chain_rpc_reply_t *r)
{
    uint64_t head, mined_count;
    size_t len, len2;
    const char *json, *json2;
    if (p >= POLLS_MAX || l->polls[p].n == 0)
        return;
    trace(l, EXECUTOR_TRACE_POLLED, (int)p, l->polls[p].n);
    if (r->error != CHAIN_RPC_OK || r->count != l->polls[p].n ||
        (json = chain_rpc_reply_result(r, 0, &len)) == NULL ||
        chain_rpc_result_u64(json, len, &head) != CHAIN_OK ||
        (json2 = chain_rpc_reply_result(r, 1, &len2)) == NULL ||
        chain_rpc_result_u64(json2, len2, &mined_count) != CHAIN_OK) {
        poll_done(l, p);
        return;
    }
    lane_learn_head(l, head);
    poll_header(l, p, r, head);
    const lane_poll_call_t *map = l->polls[p].map;
    for (uint32_t i = POLL_FIXED; i != r->count;) {
        int slot = map[i].slot, found = -1;
        chain_rpc_receipt_t rc, kept;
        bool complete = true;
        for (; i != r->count && map[i].slot == slot; ++i) {
            bool got = false;
            json = chain_rpc_reply_result(r, i, &len);
            if (r->items[i].error != CHAIN_RPC_OK || json == NULL ||
                chain_rpc_result_receipt_scan(json, len, &rc, &got) != CHAIN_OK) {
                complete = false;
                continue;
            }
            if (got && found < 0) {
                found = map[i].version;
                kept = rc;
            } else if (got) {
                chain_rpc_receipt_free(&rc);
            }
        }
        lane_tx_t *tx = &l->txs[slot];
        /* no receipt while the chain counts the nonce: the node may serve it a moment later */
        if (tx->gen == map[i - 1].gen && complete && (found >= 0 || mined_count <= tx->nonce))
            tx->polled_head = head;
        if (tx->gen == map[i - 1].gen && (tx->state == TX_PENDING || tx->state == TX_MINED) &&
            (complete || found >= 0))
            poll_slot(self, l, tx, found, found >= 0 ? &kept : NULL, head, mined_count);
        if (found >= 0)
            chain_rpc_receipt_free(&kept);
    }
    trace(l, EXECUTOR_TRACE_POLL_PARSED, (int)p, r->count);
    poll_done(l, p);
}

/* The header `h` of tx's block was read (NULL: not, or not to be used): its outcome is
 * recorded when the block is still the one tx was mined in. */
static void block_read(rt_actor_t *self, lane_t *l, lane_tx_t *tx,
                       const chain_rpc_block_header_t *h)
{
    tx->busy = tx->awaits_block = false;
    if (h == NULL || memcmp(h->hash, tx->mined_block_hash, 32) != 0) {
        tx->state = TX_MINED; /* not canonical (any more): the next poll looks again */
        tx->polled_head = 0;
        return;
    }
    tx->block_time_s = (int64_t)h->timestamp;
    l->blk.number = tx->mined_block, l->blk.head = l->head, l->blk.time_s = tx->block_time_s;
    memcpy(l->blk.hash, tx->mined_block_hash, 32);
    finalize(self, l, tx);
}

/* A block read answered: for its slot (`tx`, NULL when the slot moved on) and, when it is the
 * read others wait for, for those too (none of them is left waiting, whatever the answer). */
static void on_block_reply(rt_actor_t *self, lane_t *l, uint64_t corr, lane_tx_t *tx,
                           const chain_rpc_reply_t *r)
{
    chain_rpc_block_header_t h;
    bool found = false, shared = corr == l->blk_read.corr;
    size_t len;
    const char *json = r->error == CHAIN_RPC_OK ? chain_rpc_reply_result(r, 0, &len) : NULL;
    bool ok = json != NULL && chain_rpc_result_block_header(json, len, &h, &found) == CHAIN_OK &&
              found && (!shared || l->blk_read.epoch == l->epoch);
    trace(l, EXECUTOR_TRACE_BLOCK_READ, (int)((corr >> 32) & 0xff), 0);
    if (shared)
        l->blk_read.corr = 0;
    if (tx != NULL && tx->state == TX_FINALIZING && tx->busy && !tx->awaits_block)
        block_read(self, l, tx, ok ? &h : NULL);
    for (int s = 0; s != EXECUTOR_LANE_TXS_MAX && shared; ++s)
        if (l->txs[s].awaits_block)
            block_read(self, l, &l->txs[s], ok ? &h : NULL);
}

/* Records tx's outcome: its other versions superseded, its rows decided, with the intents'
 * counts, notifications and audit rows, in one unit. The units of a block's transactions go out
 * as their receipts are read, not one after the other (up to ~25 in flight in executor_bench's
 * tail, over the lane's worker's connections); the database's work on them, ~10 ms per unit of
 * ~192 executions, is most of a 10,000 burst's tail (~0.5 s after the follower saw its block). */
static void finalize(rt_actor_t *self, lane_t *l, lane_tx_t *tx)
{
    const uint8_t *winner = tx->versions[tx->mined_version];
    char win[67], nonce[24], gas_used[24], price[CHAIN_U256_DEC_SIZE], block[24], bhash[67], t[24];
    executor__bytea(win, winner, 32);
    executor__bytea(bhash, tx->mined_block_hash, 32);
    snprintf(nonce, sizeof(nonce), "%llu", (unsigned long long)tx->nonce);
    snprintf(gas_used, sizeof(gas_used), "%llu", (unsigned long long)tx->gas_used);
    snprintf(block, sizeof(block), "%llu", (unsigned long long)tx->mined_block);
    snprintf(t, sizeof(t), "%lld", (long long)tx->block_time_s);
    chain_u256_to_dec(&tx->gas_price, price);
    char *ids = member_array(tx, 0), *periods = member_array(tx, 1), *errors = member_array(tx, 3);
    const char *supersede[] = {l->addr_text, nonce, win}, *revive[] = {win};
    const char *fin[] = {win, ids, periods, errors, gas_used, price, block, bhash, t};
    /* with live events, the unit also reads the rows it decided (their execution objects): no
     * query of their own after the commit */
    int stmts[] = {st_supersede_nonce, st_revive, st_finalize, st_exec_rows};
    int nparams[] = {3, 1, 9, 1};
    const char *const *params[] = {supersede, revive, fin, revive};
    if (store_pg_transaction(l->pool->c.pg, self, tag_of(K_FINAL, slot_of(l, tx), tx->gen),
                             l->pool->c.events != NULL ? 4 : 3, stmts, nparams, params)) {
        tx->busy = true;
        trace(l, EXECUTOR_TRACE_FINAL_SENT, slot_of(l, tx), tx->n);
    } else {
        tx->state = TX_MINED, tx->polled_head = 0;
    }
    free(ids), free(periods), free(errors);
}

static int member_cmp(const void *a, const void *b)
{
    return strcmp((*(const lane_member_t *const *)a)->intent_id,
                  (*(const lane_member_t *const *)b)->intent_id);
}

/* tx's members sorted by intent id (one member per intent: take_jobs), for member_of; NULL when
 * out of memory. The caller frees. */
static const lane_member_t **members_by_intent(const lane_tx_t *tx)
{
    const lane_member_t **sorted = malloc(sizeof(*sorted) * (tx->n + 1));
    if (sorted == NULL)
        return NULL;
    for (uint32_t i = 0; i != tx->n; ++i)
        sorted[i] = &tx->members[i];
    qsort(sorted, tx->n, sizeof(*sorted), member_cmp);
    return sorted;
}

/* The member of `intent_id` (a search of `sorted`: a scan per row made a unit's replies cost
 * the square of the batch's size), or NULL. */
static const lane_member_t *member_of(const lane_tx_t *tx, const lane_member_t **sorted,
                                      const char *intent_id)
{
    if (sorted == NULL) { /* out of memory: the scan */
        for (uint32_t i = 0; i != tx->n; ++i)
            if (strcmp(tx->members[i].intent_id, intent_id) == 0)
                return &tx->members[i];
        return NULL;
    }
    lane_member_t key;
    const lane_member_t *k = &key, *const * found;
    snprintf(key.intent_id, sizeof(key.intent_id), "%s", intent_id);
    found = bsearch(&k, sorted, tx->n, sizeof(*sorted), member_cmp);
    return found != NULL ? *found : NULL;
}

/* The outcome is committed: tell the engine and the users, free the slot. */
static void on_final_reply(rt_actor_t *self, lane_t *l, lane_tx_t *tx, const store_pg_result_t *r)
{
    tx->busy = false;
    trace(l, EXECUTOR_TRACE_FINALIZED, slot_of(l, tx), (uint32_t)r->status);
    if (r->status != STORE_PG_OK) {
        rt_log_warn("executor", "recording nonce %llu failed (%s %s): retrying",
                    (unsigned long long)tx->nonce, store_pg_status_name(r->status), r->message);
        tx->state = TX_MINED;
        tx->polled_head = 0; /* polled again without waiting for a block */
        return;
    }
    executor_pool_t *pool = l->pool;
    const PGresult *n = r->results[2];
    const lane_member_t **sorted = members_by_intent(tx);
    for (int row = 0; row != PQntuples(n); ++row) {
        const lane_member_t *m = member_of(tx, sorted, PQgetvalue(n, row, 0));
        if (m == NULL)
            continue;
        executor_outcome_t o = {.period = m->period,
                                .status = m->outcome == 1 ? EXECUTOR_CONFIRMED : EXECUTOR_FAILED,
                                .block_number = tx->mined_block,
                                .block_time_s = tx->block_time_s,
                                .by_us = true};
        memcpy(o.intent_id, m->intent_id, 37);
        snprintf(o.user_id, sizeof(o.user_id), "%s", PQgetvalue(n, row, 1));
        snprintf(o.error, sizeof(o.error), "%s", m->error);
        memcpy(o.tx_hash, tx->versions[tx->mined_version], 32);
        if (pool->c.on_outcome != NULL)
            pool->c.on_outcome(pool->c.on_outcome_ctx, &o);
    }
    free(sorted);
    publish_rows(self, l, (const PGresult *const *)r->results, 1); /* other versions: replaced */
    if (pool->c.events != NULL && r->nresults > 3)
        executor__publish_executions(pool, r->results[3]);
    executor__publish_notifications(pool, n);
    tx_release(l, tx);
}

/* ---- start-up reconciliation and the nonce ---- */

/* The members of a reconciled transaction: the live rows of its current version. */
static void reconcile_members(lane_tx_t *tx, const PGresult *res, int first, int end,
                              const uint8_t live_hash[32])
{
    for (int row = first; row != end; ++row) {
        uint8_t hash[32];
        const char *st = PQgetvalue(res, row, 3);
        if ((strcmp(st, "signed") != 0 && strcmp(st, "broadcast") != 0) ||
            !executor__bytea_read(PQgetvalue(res, row, 1), hash, 32) ||
            memcmp(hash, live_hash, 32) != 0)
            continue;
        lane_member_t *m = &tx->members[tx->n++];
        snprintf(m->intent_id, sizeof(m->intent_id), "%s", PQgetvalue(res, row, 4));
        m->period = (uint32_t)atol(PQgetvalue(res, row, 5));
        const char *amount = PQgetvalue(res, row, 6);
        chain_u256_from_dec(&m->amount, amount, strlen(amount));
        snprintf(m->user_id, sizeof(m->user_id), "%s", PQgetvalue(res, row, 7));
        executor__bytea_read(PQgetvalue(res, row, 8), m->on_chain_id, 32);
    }
}

/* Rebuilds one in-flight transaction from its rows [first, end) (one nonce, all versions). */
static void reconcile_nonce(lane_t *l, const PGresult *res, int first, int end)
{
    lane_tx_t *tx = free_slot(l);
    if (tx == NULL) {
        rt_log_error("executor", "more in-flight nonces than slots: later ones wait for a restart");
        return;
    }
    int live = -1;
    uint32_t members = 0;
    for (int row = first; row != end; ++row) {
        uint8_t hash[32];
        const char *st = PQgetvalue(res, row, 3);
        if (!executor__bytea_read(PQgetvalue(res, row, 1), hash, 32))
            continue;
        bool known = false;
        for (uint32_t v = 0; v != tx->nversions && !known; ++v)
            known = memcmp(tx->versions[v], hash, 32) == 0;
        if (!known && tx->nversions < TX_HASHES_MAX)
            memcpy(tx->versions[tx->nversions++], hash, 32);
        if (strcmp(st, "signed") == 0 || strcmp(st, "broadcast") == 0) {
            live = row;
            ++members;
        }
    }
    /* the live version's raw transaction (bytea text, "\\x" + hex): in one of its rows
     * (executor_insert's comment) */
    const char *hex = NULL;
    for (int row = first; row != end && live >= 0 && hex == NULL; ++row)
        if (strcmp(PQgetvalue(res, row, 1), PQgetvalue(res, live, 1)) == 0 &&
            strlen(PQgetvalue(res, row, 2)) > 2)
            hex = PQgetvalue(res, row, 2) + 2;
    size_t hex_len = hex != NULL ? strlen(hex) : 0;
    tx->raw = malloc(hex_len / 2 + 1);
    tx->members = calloc(members + 1, sizeof(*tx->members));
    chain_tx_t t;
    chain_sig_t sig;
    if (hex == NULL || tx->raw == NULL || tx->members == NULL ||
        chain_hex_decode(tx->raw, hex_len / 2 + 1, &tx->raw_len, hex, hex_len, 0) != CHAIN_OK ||
        chain_tx_decode(&t, &sig, tx->raw, tx->raw_len) != CHAIN_OK) {
        rt_log_error("executor", "an in-flight row's raw transaction is unreadable");
        free(tx->raw), free(tx->members);
        memset(tx, 0, sizeof(*tx));
        return;
    }
    tx->nonce = t.nonce, tx->tip = t.max_priority_fee_per_gas, tx->max_fee = t.max_fee_per_gas;
    tx->gas = t.gas;
    tx->data = malloc(t.data_len);
    memcpy(tx->data, t.data, t.data_len);
    tx->data_len = t.data_len;
    /* the live version is the current one, the one sent again byte for byte */
    uint8_t live_hash[32];
    chain_tx_hash(tx->raw, tx->raw_len, live_hash);
    for (tx->cur = 0; tx->cur != tx->nversions && memcmp(tx->versions[tx->cur], live_hash, 32) != 0;
         ++tx->cur)
        ;
    if (tx->cur == tx->nversions) { /* beyond TX_HASHES_MAX others: it takes the last place */
        tx->cur = tx->nversions == TX_HASHES_MAX ? TX_HASHES_MAX - 1 : tx->nversions++;
        memcpy(tx->versions[tx->cur], live_hash, 32);
    }
    reconcile_members(tx, res, first, end, live_hash);
    tx_follow(l, tx);
    atomic_fetch_add(&l->pool->in_flight, tx->n);
    tx->state = TX_SENDING;
    tx->sent_ms = rt_now_ms();
    tx->retry_at_ms = 0;
}

/* The end of the run of rows from `first` on that share its nonce (column 0): the reconcile and
 * adopt queries return rows ordered by nonce, one run per nonce. */
static int nonce_run_end(const PGresult *res, int first, int rows)
{
    int end = first + 1;
    while (end < rows && strcmp(PQgetvalue(res, end, 0), PQgetvalue(res, first, 0)) == 0)
        ++end;
    return end;
}

static void on_reconcile_reply(lane_t *l, const store_pg_result_t *r)
{
    l->op_inflight = false;
    if (r->status != STORE_PG_OK) {
        l->retry_at_ms = rt_now_ms() + RETRY_MAX_MS / 4;
        return;
    }
    const PGresult *res = r->results[0];
    int rows = PQntuples(res);
    for (int first = 0, end; first < rows; first = end) {
        end = nonce_run_end(res, first, rows);
        reconcile_nonce(l, res, first, end);
    }
    if (rows != 0)
        rt_log_info("executor", "lane %d: %d in-flight rows from an earlier run, sent again",
                    l->index, rows);
    l->phase = PHASE_SYNC;
}

/* Whether a slot holds `nonce` (its own, or the one a move is storing). */
static bool nonce_held(const lane_t *l, uint64_t nonce)
{
    for (int s = 0; s != EXECUTOR_LANE_TXS_MAX; ++s) {
        const lane_tx_t *tx = &l->txs[s];
        if (tx->state != TX_FREE &&
            (tx->nonce == nonce || (tx->state == TX_REPLACING && tx->next_nonce == nonce)))
            return true;
    }
    return false;
}

/*
 * A decided transaction of ours that a deep reorg took off the chain has its rows put back in
 * flight by the follower (follower_unmine), and no slot follows them: should another
 * transaction (ours or not) have taken its nonce on the new chain, nothing would ever mine it.
 * The lane reads its in-flight rows again, as at start, and takes each nonce that no slot holds
 * into a slot of its own: sent again, then followed like any other, so that "nonce too low" and
 * doubt_nonce decide, certain first that none of the nonce's stored transactions was mined,
 * whether it is mined after all or its executions move to a new nonce (the rows replaced).
 */
static void lane_adopt(rt_actor_t *self, lane_t *l)
{
    const char *params[] = {l->addr_text};
    l->op_inflight =
        store_pg_query(l->pool->c.pg, self, tag_of(K_ADOPT, 0, 0), st_reconcile, 1, params);
    if (l->op_inflight)
        l->adopt_due = false;
}

static void on_adopt_reply(lane_t *l, const store_pg_result_t *r)
{
    l->op_inflight = false;
    if (r->status != STORE_PG_OK) {
        l->adopt_due = true; /* the next step asks again */
        return;
    }
    const PGresult *res = r->results[0];
    int rows = PQntuples(res);
    for (int first = 0, end; first < rows; first = end) {
        end = nonce_run_end(res, first, rows);
        uint64_t nonce = strtoull(PQgetvalue(res, first, 0), NULL, 10);
        if (nonce_held(l, nonce))
            continue;
        rt_log_warn("executor", "lane %d: nonce %llu is in flight again (a reorg): followed",
                    l->index, (unsigned long long)nonce);
        reconcile_nonce(l, res, first, end);
        if (nonce_held(l, nonce) && nonce >= l->next_nonce) /* a slot owns it (on_sync_reply) */
            l->next_nonce = nonce + 1;
    }
}

static void on_sync_reply(lane_t *l, const chain_rpc_reply_t *r)
{
    l->op_inflight = false;
    uint64_t pending;
    size_t len;
    const char *json = r->error == CHAIN_RPC_OK ? chain_rpc_reply_result(r, 0, &len) : NULL;
    if (json == NULL || chain_rpc_result_u64(json, len, &pending) != CHAIN_OK) {
        l->retry_at_ms = rt_now_ms() + RETRY_MIN_MS * 4;
        return;
    }
    /* our own transactions that the node dropped still own their nonces */
    for (int s = 0; s != EXECUTOR_LANE_TXS_MAX; ++s) {
        const lane_tx_t *tx = &l->txs[s];
        if (tx->state != TX_FREE && tx->nversions != 0 && !tx->renonce && tx->nonce >= pending)
            pending = tx->nonce + 1;
        if (tx->state == TX_REPLACING && tx->next_nonce >= pending)
            pending = tx->next_nonce + 1;
    }
    l->next_nonce = pending;
    l->phase = PHASE_READY;
}

static void lane_phase_step(rt_actor_t *self, lane_t *l)
{
    if (l->op_inflight || rt_now_ms() < l->retry_at_ms)
        return;
    if (l->phase == PHASE_RECONCILE) {
        const char *params[] = {l->addr_text};
        l->op_inflight =
            store_pg_query(l->pool->c.pg, self, tag_of(K_RECONCILE, 0, 0), st_reconcile, 1, params);
    } else if (l->phase == PHASE_SYNC) {
        chain_rpc_call_t call =
            chain_rpc_eth_get_transaction_count(&l->addr, chain_rpc_block_tag("pending"));
        l->op_inflight =
            chain_rpc_send(self, l->pool->c.rpc, &call, 1, 0, tag_of(K_SYNC, 0, 0)) == CHAIN_RPC_OK;
    }
}

/* ---- the lane actor ---- */

/* Whether a block is awaited: a transaction sent and not mined yet, or not deep enough. */
static bool lane_awaits_block(const lane_t *l)
{
    for (int s = 0; s != EXECUTOR_LANE_TXS_MAX; ++s)
        if (l->txs[s].state == TX_PENDING || l->txs[s].state == TX_MINED)
            return true;
    return false;
}

/* A head the lane read itself (a probe or a receipt poll). Newer than the follower's while a
 * block is awaited, the follower is asked to poll now: the outcomes wait until it has seen their
 * block (ready_to_record), which its own poll would find up to poll_ms later. */
static void lane_learn_head(lane_t *l, uint64_t head)
{
    if (head > l->head)
        l->head = head;
    if (head > chain_follower_head(l->pool->follower) && lane_awaits_block(l))
        chain_follower_poke(l->pool->follower, head);
}

static uint64_t probe_ms(const lane_t *l)
{
    uint64_t ms = l->pool->c.poll_ms / PROBES_PER_POLL;
    return ms < PROBE_MIN_MS ? PROBE_MIN_MS : ms;
}

/* Asks for the head alone (one cheap call): a new one starts a receipt poll at once (lane_step). */
static void lane_probe(rt_actor_t *self, lane_t *l)
{
    l->probe_at_ms = rt_now_ms() + probe_ms(l);
    chain_rpc_call_t call = chain_rpc_eth_block_number();
    l->probing =
        chain_rpc_send(self, l->pool->c.rpc, &call, 1, 0, tag_of(K_HEAD, 0, 0)) == CHAIN_RPC_OK;
}

static void on_probe_reply(lane_t *l, const chain_rpc_reply_t *r)
{
    uint64_t head;
    size_t len;
    const char *json = r->error == CHAIN_RPC_OK ? chain_rpc_reply_result(r, 0, &len) : NULL;
    l->probing = false;
    if (json != NULL && chain_rpc_result_u64(json, len, &head) == CHAIN_OK)
        lane_learn_head(l, head);
}

/* The follower saw a new head: what was mined deep enough and waited for it is recorded. */
static void lane_finalize_seen(rt_actor_t *self, lane_t *l)
{
    for (int s = 0; s != EXECUTOR_LANE_TXS_MAX; ++s) {
        lane_tx_t *tx = &l->txs[s];
        if (tx->state == TX_MINED && ready_to_record(l, tx, l->head))
            request_block(self, l, tx);
    }
}

/* Starts what is due: stores to retry, re-signings, a new batch (one store at a time), sends to
 * retry, and a receipt poll. */
static void lane_step(rt_actor_t *self, lane_t *l)
{
    uint64_t now = rt_now_ms();
    if (l->phase != PHASE_READY) {
        lane_phase_step(self, l);
        if (l->phase != PHASE_READY)
            return;
    }
    uint32_t replace_ms = l->pool->c.replace_after_ms;
    for (int s = 0; s != EXECUTOR_LANE_TXS_MAX && !l->storing; ++s) {
        lane_tx_t *tx = &l->txs[s];
        if ((tx->state == TX_STORING || tx->state == TX_REPLACING) && now >= tx->retry_at_ms)
            store_current(self, l, tx);
        else if (tx->state == TX_PENDING && tx->renonce)
            lane_replace(self, l, tx);
        else if (tx->state == TX_PENDING && !tx->nonce_used && tx->nversions < TX_VERSIONS_MAX &&
                 now - tx->sent_ms >= replace_ms)
            lane_replace(self, l, tx);
        else if (tx->state == TX_PENDING && !tx->nonce_used && now - tx->sent_ms >= replace_ms) {
            tx->sent_ms = now; /* out of versions: keep the newest one in front of the node */
            tx->state = TX_SENDING;
        }
    }
    if (l->adopt_due && !l->op_inflight)
        lane_adopt(self, l);
    if (!l->storing && now >= l->retry_at_ms)
        lane_new_batch(self, l);
    for (int s = 0; s != EXECUTOR_LANE_TXS_MAX; ++s) {
        lane_tx_t *tx = &l->txs[s];
        if (tx->state == TX_SENDING && !tx->busy && now >= tx->retry_at_ms)
            lane_send(self, l, tx);
    }
    if (l->polls_inflight < POLLS_MAX && (now >= l->poll_at_ms || l->head > l->poll_head))
        lane_poll(self, l);
    else if (!l->probing && now >= l->probe_at_ms && lane_awaits_block(l))
        lane_probe(self, l);
}

static void lane_on_reply(rt_actor_t *self, lane_t *l, rt_msg_t *msg)
{
    int kind = (int)(msg->corr >> 56);
    lane_tx_t *tx = tx_of_tag(l, msg->corr);
    if (msg->type == STORE_PG_MSG_RESULT) {
        const store_pg_result_t *r = rt_msg_payload(msg);
        if (kind == K_RECONCILE)
            on_reconcile_reply(l, r);
        else if (kind == K_ADOPT)
            on_adopt_reply(l, r);
        else if (kind == K_MARK && r->status == STORE_PG_OK)
            publish_rows(self, l, (const PGresult *const *)r->results, 1);
        else if (kind == K_EVENTS && r->status == STORE_PG_OK)
            executor__publish_executions(l->pool, r->results[0]);
        else if (kind == K_FINAL && tx != NULL)
            on_final_reply(self, l, tx, r);
        else if ((kind == K_STORE || kind == K_LIVE || kind == K_COUNT) && tx != NULL)
            on_store_reply(self, l, tx, kind, r);
        else if (kind == K_HASHES && tx != NULL)
            on_nonce_hashes(self, l, tx, r);
        else if (kind == K_STORE || kind == K_LIVE || kind == K_COUNT)
            l->storing = false;
        return;
    }
    const chain_rpc_reply_t *r = chain_rpc_reply(msg);
    if (kind == K_SYNC)
        on_sync_reply(l, r);
    else if (kind == K_POLL)
        on_poll_reply(self, l, (uint32_t)((msg->corr >> 32) & 0xff), r);
    else if ((kind == K_SEND || kind == K_RESEND) && tx != NULL)
        on_send_reply(self, l, tx, r, kind == K_RESEND);
    else if (kind == K_BLOCK)
        on_block_reply(self, l, msg->corr, tx, r);
    else if (kind == K_VERIFY && tx != NULL)
        on_verify_reply(self, l, tx, r);
    else if (kind == K_HEAD)
        on_probe_reply(l, r);
}

static void lane_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    lane_t *l = *(lane_t **)rt_actor_state(self);
    switch (msg->type) {
    case EXECUTOR_MSG_JOB:
        queue_push(l, rt_msg_payload(msg));
        if (l->phase == PHASE_READY && !l->storing)
            lane_new_batch(self, l);
        return;
    case EXECUTOR_MSG_HEAD:
    case EXECUTOR_MSG_REORG:
        l->head = msg->corr > l->head || msg->type == EXECUTOR_MSG_REORG ? msg->corr : l->head;
        if (msg->type == EXECUTOR_MSG_REORG) { /* blocks read so far may be gone */
            ++l->epoch;
            memset(&l->blk, 0, sizeof(l->blk));
        } else {
            trace(l, EXECUTOR_TRACE_HEAD, 0, (uint32_t)msg->corr);
            lane_finalize_seen(self, l);
        }
        if (l->polls_inflight < POLLS_MAX)
            lane_poll(self, l);
        return;
    case EXECUTOR_MSG_ADOPT:
        l->adopt_due = true; /* at the next step, once the lane is ready */
        return;
    case RT_MSG_TIMER: /* more often while a block is awaited: the head probes */
        lane_step(self, l);
        rt_actor_timer_start(self, &l->tick,
                             lane_awaits_block(l) ? probe_ms(l) : l->pool->c.poll_ms, 0);
        return;
    case STORE_PG_MSG_RESULT:
    case CHAIN_RPC_MSG_REPLY:
        lane_on_reply(self, l, msg);
        lane_step(self, l);
        return;
    case RT_MSG_STOP:
        rt_actor_timer_cancel(self, &l->tick);
        return;
    }
}

/* ---- the pool ---- */

executor_pool_t *executor_pool_create(const executor_config_t *c)
{
    if (c->rpc == NULL || c->pg == NULL || c->num_keys == 0 || c->chain_id == 0)
        return NULL;
    executor_pool_t *pool = calloc(1, sizeof(*pool));
    if (pool == NULL)
        return NULL;
    pool->c = *c;
    if (pool->c.confirmations == 0)
        pool->c.confirmations = 1;
    if (pool->c.batch_gas_budget == 0)
        pool->c.batch_gas_budget = 8000000;
    if (pool->c.replace_after_ms == 0)
        pool->c.replace_after_ms = 30000;
    if (pool->c.poll_ms == 0)
        pool->c.poll_ms = 500;
    pool->num_lanes = c->num_keys;
    pool->lanes = calloc(c->num_keys, sizeof(*pool->lanes));
    pool->queued = calloc(c->num_keys, sizeof(*pool->queued));
    pool->lane_states = calloc(c->num_keys, sizeof(*pool->lane_states));
    pool->follower = chain_follower_create(pool);
    size_t most = c->num_keys * EXECUTOR_LANE_TXS_MAX * TX_HASHES_MAX;
    for (pool->follow.cap = 64; pool->follow.cap < 2 * most; pool->follow.cap *= 2)
        ;
    pool->follow.entries = calloc(pool->follow.cap, sizeof(*pool->follow.entries));
    pthread_mutex_init(&pool->follow.lock, NULL);
    if (pool->lanes == NULL || pool->queued == NULL || pool->lane_states == NULL ||
        pool->follower == NULL || pool->follow.entries == NULL) {
        executor_pool_free(pool);
        return NULL;
    }
    return pool;
}

void executor_pool_start(executor_pool_t *pool, rt_runtime_t *rt)
{
    pool->rt = rt;
    for (size_t i = 0; i != pool->num_lanes; ++i) {
        /* from the last worker down: the follower lives on worker 0, and when a burst is mined
         * both read every execution's log at once (the lane its receipts, the follower the
         * registry's logs), each taking its worker's time for hundreds of milliseconds */
        int worker = rt->num_workers - 1 - (int)(i % (size_t)rt->num_workers);
        rt_actor_t *a = rt_actor_spawn(rt, worker, lane_behaviour, sizeof(lane_t *));
        lane_t *l = calloc(1, sizeof(*l));
        CHAIN_ASSERT(l != NULL);
        l->queue = malloc(sizeof(executor_job_t) * EXECUTOR_LANE_QUEUE_MAX);
        CHAIN_ASSERT(l->queue != NULL);
        l->pool = pool;
        l->index = (int)i;
        l->key = pool->c.keys[i];
        l->addr = *chain_key_address(l->key);
        executor__bytea(l->addr_text, l->addr.bytes, 20);
        l->phase = PHASE_RECONCILE;
        l->member_gas =
            pool->c.gas_per_execution != 0 ? pool->c.gas_per_execution : GAS_PER_EXECUTION;
        *(lane_t **)rt_actor_state(a) = l;
        pool->lane_states[i] = l;
        pool->lanes[i] = a;
        rt_actor_send(a, rt_msg_new(RT_MSG_TIMER, 0)); /* the first step, which arms the tick */
    }
    chain_follower_start(pool->follower, rt);
}

bool executor_submit(executor_pool_t *pool, const executor_job_t *job)
{
    if (pool->rt == NULL)
        return false;
    unsigned start = atomic_fetch_add(&pool->next_lane, 1);
    for (size_t k = 0; k != pool->num_lanes; ++k) {
        size_t i = (start + k) % pool->num_lanes;
        if (atomic_fetch_add(&pool->queued[i], 1) >= EXECUTOR_LANE_QUEUE_MAX) {
            atomic_fetch_sub(&pool->queued[i], 1);
            continue;
        }
        rt_msg_t *msg = rt_msg_new(EXECUTOR_MSG_JOB, sizeof(*job));
        memcpy(rt_msg_payload(msg), job, sizeof(*job));
        rt_actor_send(pool->lanes[i], msg);
        return true;
    }
    return false;
}

void executor__pool_broadcast(executor_pool_t *pool, uint32_t type, uint64_t value)
{
    for (size_t i = 0; i != pool->num_lanes; ++i)
        if (pool->lanes[i] != NULL) {
            rt_msg_t *msg = rt_msg_new(type, 0);
            msg->corr = value;
            rt_actor_send(pool->lanes[i], msg);
        }
}

uint64_t executor_pool_pending(executor_pool_t *pool)
{
    uint64_t n = atomic_load(&pool->in_flight);
    for (size_t i = 0; i != pool->num_lanes; ++i)
        n += atomic_load(&pool->queued[i]);
    return n;
}

uint64_t executor_pool_head(executor_pool_t *pool)
{
    return chain_follower_head(pool->follower);
}

uint64_t executor_pool_reorgs(executor_pool_t *pool)
{
    return chain_follower_reorgs(pool->follower);
}

void executor_pool_stop(executor_pool_t *pool)
{
    for (size_t i = 0; i != pool->num_lanes; ++i)
        if (pool->lanes[i] != NULL) {
            rt_actor_t *a = pool->lanes[i];
            pool->lanes[i] = NULL;
            rt_actor_send_stop(a);
            rt_actor_release(a);
        }
    if (pool->follower != NULL)
        chain_follower_stop(pool->follower);
}

void executor_pool_free(executor_pool_t *pool)
{
    if (pool == NULL)
        return;
    for (size_t i = 0; i != pool->num_lanes && pool->lane_states != NULL; ++i) {
        lane_t *l = pool->lane_states[i];
        if (l == NULL)
            continue;
        for (int s = 0; s != EXECUTOR_LANE_TXS_MAX; ++s)
            if (l->txs[s].state != TX_FREE)
                tx_release(l, &l->txs[s]);
        free(l->queue);
        free(l);
    }
    free(pool->lane_states);
    chain_follower_free(pool->follower);
    free(pool->lanes);
    free((void *)pool->queued);
    free(pool->follow.entries);
    pthread_mutex_destroy(&pool->follow.lock);
    free(pool);
}
