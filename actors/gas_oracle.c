/*
 * The gas oracle (see gas_oracle.h).
 *
 * One actor refreshes; any thread reads. A refresh is one JSON-RPC batch of three reads: the
 * latest block (its number, and its base fee when the node has no fee history), eth_feeHistory
 * over the last GAS_HISTORY_BLOCKS blocks (the next block's base fee, and the GAS_PERCENTILE-th
 * percentile tip of each block) and eth_maxPriorityFeePerGas (the node's own suggestion, used
 * when the history holds no transaction to learn a tip from). Only when both of those fail does
 * a second request ask eth_gasPrice, whose excess over the base fee is then the tip (nodes
 * without EIP-1559 support answer only that).
 *
 * The snapshot is published through a sequence lock rather than a mutex: the engine reads it
 * for every intent it evaluates, on every worker, and a seqlock's readers only load (no shared
 * cache line is written, no reader waits for another, the single writer never waits for
 * readers). A reader retries only while the writer is between its stores, a few nanoseconds
 * once per refresh; the retries are bounded, and a reader that runs out of them (the writer
 * preempted mid-update) answers "no snapshot" once rather than spin.
 */
#include "actors/gas_oracle.h"
#include <assert.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "runtime/log.h"

/* blocks of fee history a refresh looks at, and the percentile of their tips it takes */
#define GAS_HISTORY_BLOCKS 10
#define GAS_PERCENTILE 50.0
/* a failed refresh is tried again after this long (or refresh_ms, if shorter) */
#define GAS_RETRY_MS 1000
/* a snapshot older than this many refresh periods is not answered */
#define GAS_STALE_PERIODS 3
/* bound on a reader's retries while the writer updates */
#define GAS_READ_TRIES 1024
/* bound on gas_oracle_stop's wait for gas_oracle_on_head calls in progress */
#define GAS_STOP_TRIES 1000000
/* the deadline of one refresh request (retries included) */
#define GAS_CALL_TIMEOUT_MS 5000

/* the oracle's own message, and the tags of its RPC requests; the actor's types are
 * RT_MSG_USER + 0x600.. so that a stray one is recognisable */
enum { GAS__MSG_KICK = RT_MSG_USER + 0x600 };
enum { GAS__TAG_FEES = 1, GAS__TAG_GAS_PRICE = 2 };

/* snapshot words: base fee limbs, priority fee limbs, block, updated (unix ms), monotonic ms */
enum { GAS__W_BASE = 0, GAS__W_PRIO = 4, GAS__W_BLOCK = 8, GAS__W_UNIX = 9, GAS__W_MONO = 10 };
#define GAS__WORDS 11

struct st_gas_oracle_t {
    gas_oracle_config_t config;
    rt_actor_t *actor;         /* the spawn reference, dropped by gas_oracle_stop */
    _Atomic bool stopping;     /* set by gas_oracle_stop: no more kicks */
    _Atomic bool kick_pending; /* a kick message is on its way: further heads coalesce */
    _Atomic uint32_t kickers;  /* threads inside gas_oracle_on_head, which stop waits out */
    /* the seqlock: odd while the writer updates `words` */
    _Atomic uint64_t seq;
    _Atomic uint64_t words[GAS__WORDS];
};

/* the actor's state */
typedef struct st_gas__actor_t {
    gas_oracle_t *oracle;
    rt_actor_timer_t timer;
    bool in_flight;            /* a refresh request is out */
    bool again;                /* a kick came while it was: refresh once more when it ends */
    bool failing;              /* the last refresh failed (logged once per outage) */
    chain_u256_t base_fee_wei; /* kept between the two requests of a fallback refresh */
    uint64_t block_number;
} gas__actor_t;

static uint64_t gas__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int64_t gas__unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the seqlock (one writer: the actor) ---- */

static void gas__publish(gas_oracle_t *o, const gas_snapshot_t *s)
{
    uint64_t seq = atomic_load_explicit(&o->seq, memory_order_relaxed);
    assert((seq & 1) == 0);
    atomic_store_explicit(&o->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* the odd count is seen before any new word */
    uint64_t w[GAS__WORDS];
    memcpy(&w[GAS__W_BASE], s->base_fee_wei.limb, sizeof(s->base_fee_wei.limb));
    memcpy(&w[GAS__W_PRIO], s->priority_fee_wei.limb, sizeof(s->priority_fee_wei.limb));
    w[GAS__W_BLOCK] = s->block_number;
    w[GAS__W_UNIX] = (uint64_t)s->updated_at_ms;
    w[GAS__W_MONO] = gas__mono_ms();
    for (size_t i = 0; i != GAS__WORDS; ++i)
        atomic_store_explicit(&o->words[i], w[i], memory_order_relaxed);
    atomic_store_explicit(&o->seq, seq + 2, memory_order_release);
}

bool gas_oracle_read(gas_oracle_t *oracle, gas_snapshot_t *out)
{
    uint64_t w[GAS__WORDS];
    for (int tries = 0; tries != GAS_READ_TRIES; ++tries) {
        uint64_t before = atomic_load_explicit(&oracle->seq, memory_order_acquire);
        if (before == 0)
            return false; /* nothing published yet */
        if (before & 1)
            continue; /* the writer is between its stores */
        for (size_t i = 0; i != GAS__WORDS; ++i)
            w[i] = atomic_load_explicit(&oracle->words[i], memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire); /* the words are read before the re-check */
        if (atomic_load_explicit(&oracle->seq, memory_order_relaxed) != before)
            continue;
        uint64_t age_ms = gas__mono_ms() - w[GAS__W_MONO];
        if (age_ms > (uint64_t)GAS_STALE_PERIODS * oracle->config.refresh_ms)
            return false; /* the chain has been unreachable for a while: say so */
        memcpy(out->base_fee_wei.limb, &w[GAS__W_BASE], sizeof(out->base_fee_wei.limb));
        memcpy(out->priority_fee_wei.limb, &w[GAS__W_PRIO], sizeof(out->priority_fee_wei.limb));
        out->block_number = w[GAS__W_BLOCK];
        out->updated_at_ms = (int64_t)w[GAS__W_UNIX];
        return true;
    }
    return false;
}

/* ---- reading the node's answers ---- */

/* The median of the blocks' percentile tips, over the blocks that carried transactions (an
 * empty block's tip is 0 and says nothing about what gets included). False when there is none. */
static bool gas__history_tip(const chain_rpc_fee_history_t *fh, chain_u256_t *tip)
{
    chain_u256_t tips[GAS_HISTORY_BLOCKS];
    size_t n = 0;
    for (size_t i = 0; fh->num_percentiles != 0 && i != fh->num_blocks && n != GAS_HISTORY_BLOCKS;
         ++i)
        if (fh->gas_used_ratio[i] > 0)
            tips[n++] = fh->reward[i * fh->num_percentiles];
    if (n == 0)
        return false;
    for (size_t i = 1; i < n; ++i) /* insertion sort: n <= GAS_HISTORY_BLOCKS */
        for (size_t j = i; j != 0 && chain_u256_cmp(&tips[j - 1], &tips[j]) > 0; --j) {
            chain_u256_t t = tips[j];
            tips[j] = tips[j - 1];
            tips[j - 1] = t;
        }
    *tip = tips[n / 2];
    return true;
}

/* The next block's base fee and a tip from the fee history (item 1), when the node has one
 * that covers the latest block. `*has_tip` is false when it taught no tip. */
static bool gas__from_history(const chain_rpc_reply_t *r, uint64_t latest, chain_u256_t *base,
                              chain_u256_t *tip, bool *has_tip)
{
    size_t len;
    const char *json = chain_rpc_reply_result(r, 1, &len);
    chain_rpc_fee_history_t fh;
    if (json == NULL || chain_rpc_result_fee_history(json, len, &fh) != CHAIN_OK)
        return false;
    bool ok = fh.num_blocks != 0 && fh.oldest_block + fh.num_blocks - 1 == latest;
    if (ok) {
        *base = fh.base_fee_per_gas[fh.num_blocks]; /* the last one is the next block's */
        *has_tip = gas__history_tip(&fh, tip);
    }
    chain_rpc_fee_history_free(&fh);
    return ok;
}

/* ---- the actor ---- */

static void gas__send(rt_actor_t *self, gas__actor_t *st, uint64_t tag)
{
    static const double percentiles[] = {GAS_PERCENTILE};
    chain_rpc_call_t calls[3];
    size_t n = 0;
    if (tag == GAS__TAG_FEES) {
        calls[n++] = chain_rpc_eth_get_block_by_number(chain_rpc_block_tag("latest"));
        calls[n++] = chain_rpc_eth_fee_history(GAS_HISTORY_BLOCKS, chain_rpc_block_tag("latest"),
                                               percentiles, 1);
        calls[n++] = chain_rpc_eth_max_priority_fee_per_gas();
    } else {
        calls[n++] = chain_rpc_eth_gas_price();
    }
    int ret = chain_rpc_send(self, st->oracle->config.rpc, calls, n, GAS_CALL_TIMEOUT_MS, tag);
    st->in_flight = ret == CHAIN_RPC_OK;
    if (ret != CHAIN_RPC_OK) { /* busy or stopping: try again later */
        rt_log_debug("gas", "refresh not sent: %s", chain_rpc_strerror(ret));
        rt_actor_timer_start(self, &st->timer, GAS_RETRY_MS, 0);
    }
}

/* Ends a refresh: publishes when it succeeded, and arms the next one. */
static void gas__finish(rt_actor_t *self, gas__actor_t *st, bool ok, const chain_u256_t *tip,
                        const char *why)
{
    gas_oracle_t *o = st->oracle;
    st->in_flight = false;
    if (ok) {
        gas_snapshot_t s = {.base_fee_wei = st->base_fee_wei,
                            .priority_fee_wei = *tip,
                            .block_number = st->block_number,
                            .updated_at_ms = gas__unix_ms()};
        gas__publish(o, &s);
        if (st->failing)
            rt_log_info("gas", "fees readable again at block %llu",
                        (unsigned long long)st->block_number);
    } else if (!st->failing) {
        rt_log_warn("gas", "cannot read the chain's fees: %s", why);
    }
    st->failing = !ok;
    if (st->again) {
        st->again = false;
        gas__send(self, st, GAS__TAG_FEES);
        return;
    }
    uint32_t delay_ms = o->config.refresh_ms;
    if (!ok && delay_ms > GAS_RETRY_MS)
        delay_ms = GAS_RETRY_MS;
    rt_actor_timer_start(self, &st->timer, delay_ms, 0);
}

static void gas__on_fees(rt_actor_t *self, gas__actor_t *st, const chain_rpc_reply_t *r)
{
    size_t len;
    const char *json = r->error == CHAIN_RPC_OK ? chain_rpc_reply_result(r, 0, &len) : NULL;
    chain_rpc_block_header_t head;
    bool found = false;
    if (json == NULL || chain_rpc_result_block_header(json, len, &head, &found) != CHAIN_OK ||
        !found) {
        int err = r->error != CHAIN_RPC_OK ? r->error : r->items[0].error;
        gas__finish(self, st, false, NULL,
                    err != CHAIN_RPC_OK ? chain_rpc_strerror(err) : "no readable latest block");
        return;
    }
    chain_u256_t base = head.has_base_fee ? head.base_fee_per_gas : chain_u256_from_u64(0), tip;
    bool has_tip = false;
    st->block_number = head.number;
    gas__from_history(r, head.number, &base, &tip, &has_tip);
    st->base_fee_wei = base;
    json = has_tip ? NULL : chain_rpc_reply_result(r, 2, &len);
    if (json != NULL && chain_rpc_result_u256(json, len, &tip) == CHAIN_OK)
        has_tip = true;
    if (has_tip)
        gas__finish(self, st, true, &tip, NULL);
    else
        gas__send(self, st, GAS__TAG_GAS_PRICE); /* neither history nor suggestion: legacy */
}

static void gas__on_gas_price(rt_actor_t *self, gas__actor_t *st, const chain_rpc_reply_t *r)
{
    size_t len;
    const char *json = r->error == CHAIN_RPC_OK ? chain_rpc_reply_result(r, 0, &len) : NULL;
    chain_u256_t price, tip = chain_u256_from_u64(0);
    if (json == NULL || chain_rpc_result_u256(json, len, &price) != CHAIN_OK) {
        gas__finish(self, st, false, NULL, "eth_gasPrice failed");
        return;
    }
    if (chain_u256_sub(&tip, &price, &st->base_fee_wei)) /* price below base: no tip */
        tip = chain_u256_from_u64(0);
    gas__finish(self, st, true, &tip, NULL);
}

static void gas__behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    gas__actor_t *st = rt_actor_state(self);
    switch (msg->type) {
    case RT_MSG_STOP:
        rt_actor_timer_cancel(self, &st->timer);
        return;
    case GAS__MSG_KICK:
        /* cleared before refreshing, so a head that arrives from now on kicks again */
        atomic_store(&st->oracle->kick_pending, false);
        __attribute__((fallthrough));
    case RT_MSG_TIMER:
        if (st->in_flight)
            st->again = msg->type == GAS__MSG_KICK || st->again;
        else
            gas__send(self, st, GAS__TAG_FEES);
        return;
    case CHAIN_RPC_MSG_REPLY:
        if (msg->corr == GAS__TAG_FEES)
            gas__on_fees(self, st, chain_rpc_reply(msg));
        else
            gas__on_gas_price(self, st, chain_rpc_reply(msg));
        return;
    default:
        rt_log_warn("gas", "unexpected message type %u", msg->type);
        return;
    }
}

/* ---- life cycle ---- */

gas_oracle_t *gas_oracle_create(const gas_oracle_config_t *config)
{
    assert(config->rpc != NULL);
    gas_oracle_t *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return NULL;
    o->config = *config;
    if (o->config.refresh_ms == 0)
        o->config.refresh_ms = 30000;
    return o;
}

void gas_oracle_start(gas_oracle_t *oracle, rt_runtime_t *rt)
{
    assert(oracle->actor == NULL);
    oracle->actor = rt_actor_spawn(rt, -1, gas__behaviour, sizeof(gas__actor_t));
    gas__actor_t *st = rt_actor_state(oracle->actor);
    st->oracle = oracle; /* before the first message, which publishes it to the worker */
    gas_oracle_on_head(oracle, 0);
}

/* The chain follower reports heads from its own worker, possibly while main stops the oracle:
 * `kickers` (sequentially consistent with `stopping`) tells gas_oracle_stop when no thread can
 * still be about to send to the actor it is releasing. */
void gas_oracle_on_head(gas_oracle_t *oracle, uint64_t block_number)
{
    (void)block_number; /* the refresh reads the latest block itself */
    atomic_fetch_add(&oracle->kickers, 1);
    if (!atomic_load(&oracle->stopping) && oracle->actor != NULL &&
        !atomic_exchange(&oracle->kick_pending, true)) /* else one is already on its way */
        rt_actor_send(oracle->actor, rt_msg_new(GAS__MSG_KICK, 0));
    atomic_fetch_sub(&oracle->kickers, 1);
}

void gas_oracle_stop(gas_oracle_t *oracle)
{
    if (oracle == NULL || oracle->actor == NULL)
        return;
    atomic_store(&oracle->stopping, true);
    /* a head reported from now on sees `stopping`; wait out those already inside (a few
     * instructions each). Off-worker (main), so yielding here stalls no actor. */
    for (int tries = 0; atomic_load(&oracle->kickers) != 0; ++tries) {
        if (tries == GAS_STOP_TRIES) {
            rt_log_warn("gas", "a head report did not finish: the actor is left to exit");
            return; /* keeping our reference is harmless at shutdown; freeing could crash */
        }
        sched_yield();
    }
    rt_actor_send_stop(oracle->actor);
    rt_actor_release(oracle->actor);
}

void gas_oracle_free(gas_oracle_t *oracle)
{
    free(oracle);
}
