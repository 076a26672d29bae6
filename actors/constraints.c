/*
 * The chain reads behind the balance and allowance constraints: one reader actor per worker.
 *
 * Intents that come due together (a million schedules hold many such moments) would each make
 * two eth_calls; the reader takes their requests, merges the ones for the same (owner, token),
 * and sends them as JSON-RPC batches of up to READ_PAIRS_PER_BATCH pairs (two calls each) a
 * millisecond after the first request arrives, so a burst becomes a few round trips. A request
 * may also ask for the registry's executedCount of its intent (an intent actor does once after a
 * start-up, to notice executions the database lacks); that call rides in the same batch. A request
 * may ask for that count alone (the actor reads it ahead of its due time). Every request gets
 * exactly one ENGINE_MSG_FACTS answer: the figures, "unavailable" (the chain did not answer: the
 * intent is delayed as chain_unavailable), or "busy" (more waiting than the bound allows: asked
 * again shortly, nothing recorded).
 */
#include <string.h>
#include "actors/engine_internal.h"
#include "chain/abi.h"
#include "runtime/log.h"

#define READ_PAIRS_PER_BATCH (CHAIN_RPC_MAX_BATCH / 2)
/* requests held per worker, waiting or in flight: a due second's burst comes to each worker's
 * reader at once (10,000 intents due together are ~5,000 per worker on two), and what is beyond
 * the bound is answered "busy" and asked again later, which put 1,808 of such a burst's intents
 * a second behind the rest when the bound was 4,096 (executor_bench, engine mode). 24 bytes a
 * request: 384 KiB per worker. */
#define READ_MAX_PENDING 16384
#define READ_MAX_BATCHES 8 /* batches in flight per worker */
#define READ_FLUSH_MS 1    /* how long the first request waits for company */
#define READ_TIMEOUT_MS 5000

typedef struct st_read_pair_t {
    chain_addr_t owner, token;
} read_pair_t;

typedef struct st_read_batch_t {
    bool busy;
    size_t num_waiters;           /* the requests it answers (several may share a pair) */
    size_t num_pairs, num_counts; /* 2 calls per pair, then 1 per count: CHAIN_RPC_MAX_BATCH */
    read_pair_t pairs[READ_PAIRS_PER_BATCH];
    uint8_t counts[CHAIN_RPC_MAX_BATCH][32]; /* onChainIds whose executedCount is read */
} read_batch_t;

typedef struct st_read_waiter_t {
    rt_msg_t *request; /* NULL: free */
    int batch;         /* -1: not sent yet */
    int pair;          /* -1: none (a count alone) */
    int count;         /* its executedCount's index among the batch's counts; -1: not asked */
} read_waiter_t;

typedef struct st_reader_t {
    engine_t *engine;
    rt_actor_timer_t flush;
    bool flush_armed;
    size_t num_waiting, num_unsent; /* held; of those, not in a batch yet */
    read_waiter_t waiters[READ_MAX_PENDING];
    read_batch_t batches[READ_MAX_BATCHES];
} reader_t;

const size_t engine__reader_state_size = sizeof(reader_t);

void engine__reader_init(rt_actor_t *self, engine_t *e)
{
    reader_t *r = rt_actor_state(self);
    r->engine = e;
    for (size_t i = 0; i != READ_MAX_PENDING; ++i)
        r->waiters[i].batch = -1;
}

static void answer(rt_msg_t *request, const engine_facts_t *f)
{
    rt_msg_t *reply = rt_msg_new(ENGINE_MSG_FACTS, sizeof(*f));
    memcpy(rt_msg_payload(reply), f, sizeof(*f));
    rt_actor_reply(request, reply);
    rt_msg_free(request);
}

/* Reads the executedCount answered as item `item` of `reply`. */
static bool read_count(const chain_rpc_reply_t *reply, size_t item, uint64_t *out)
{
    uint8_t buf[64];
    size_t len, tlen;
    const char *text = chain_rpc_reply_result(reply, item, &tlen);
    return text != NULL && chain_rpc_result_bytes(text, tlen, buf, sizeof(buf), &len) == CHAIN_OK &&
           chain_abi_decode_uint(buf, len, UINT32_MAX, out) == CHAIN_OK;
}

static int find_pair(const read_batch_t *b, const engine_read_t *q)
{
    for (size_t i = 0; i != b->num_pairs; ++i)
        if (chain_addr_eq(&b->pairs[i].owner, &q->owner) &&
            chain_addr_eq(&b->pairs[i].token, &q->token))
            return (int)i;
    return -1;
}

static bool send_batch(rt_actor_t *self, int bi)
{
    reader_t *r = rt_actor_state(self);
    read_batch_t *b = &r->batches[bi];
    chain_rpc_call_t calls[CHAIN_RPC_MAX_BATCH];
    size_t n = 0;
    for (size_t i = 0; i != b->num_pairs; ++i) {
        uint8_t data[100];
        size_t len;
        chain_rpc_tx_t tx = {.to = &b->pairs[i].token, .data = data};
        chain_abi_balance_of(data, sizeof(data), &len, &b->pairs[i].owner);
        tx.data_len = len;
        calls[n++] = chain_rpc_eth_call(&tx, chain_rpc_block_tag("latest"));
        chain_abi_allowance(data, sizeof(data), &len, &b->pairs[i].owner,
                            &r->engine->config.registry);
        tx.data_len = len;
        calls[n++] = chain_rpc_eth_call(&tx, chain_rpc_block_tag("latest"));
    }
    for (size_t i = 0; i != b->num_counts; ++i) {
        uint8_t data[40];
        size_t len;
        chain_abi_executed_count(data, sizeof(data), &len, b->counts[i]);
        chain_rpc_tx_t tx = {.to = &r->engine->config.registry, .data = data, .data_len = len};
        calls[n++] = chain_rpc_eth_call(&tx, chain_rpc_block_tag("latest"));
    }
    return chain_rpc_send(self, r->engine->config.rpc, calls, n, READ_TIMEOUT_MS, (uint64_t)bi) ==
           CHAIN_RPC_OK;
}

/* Answers every waiter of batch `bi` (figures from `reply`, or unavailable when NULL). */
static void finish_batch(rt_actor_t *self, int bi, const chain_rpc_reply_t *reply)
{
    reader_t *r = rt_actor_state(self);
    /* the scan ends with the batch's last waiter: with a burst held, most of the array is others'
     */
    size_t left = r->batches[bi].num_waiters;
    for (size_t i = 0; i != READ_MAX_PENDING && left != 0; ++i) {
        read_waiter_t *w = &r->waiters[i];
        if (w->request == NULL || w->batch != bi)
            continue;
        --left;
        engine_facts_t f = {.available = false};
        if (reply != NULL && reply->error == CHAIN_RPC_OK) {
            uint8_t buf[64];
            size_t len[2] = {0, 0}, tlen;
            const char *text;
            int ok = 0;
            for (int k = 0; k != 2 && w->pair >= 0; ++k) {
                size_t item = (size_t)w->pair * 2 + (size_t)k;
                text = chain_rpc_reply_result(reply, item, &tlen);
                if (text != NULL &&
                    chain_rpc_result_bytes(text, tlen, buf, sizeof(buf), &len[k]) == CHAIN_OK &&
                    chain_abi_decode_u256(buf, len[k], k == 0 ? &f.balance : &f.allowance) ==
                        CHAIN_OK)
                    ++ok;
            }
            f.has_count =
                w->count >= 0 && read_count(reply, r->batches[bi].num_pairs * 2 + (size_t)w->count,
                                            &f.executed_count);
            f.available = w->pair >= 0 ? ok == 2 : f.has_count;
        }
        answer(w->request, &f);
        w->request = NULL;
        w->batch = -1;
        --r->num_waiting;
    }
    r->batches[bi].busy = false;
    r->batches[bi].num_pairs = r->batches[bi].num_counts = r->batches[bi].num_waiters = 0;
}

/* Puts every unsent waiter into batches while batches are free. O(waiters * pairs); a scan
 * ends once no waiter is left unsent. */
static void flush(rt_actor_t *self)
{
    reader_t *r = rt_actor_state(self);
    for (int bi = 0; bi != READ_MAX_BATCHES; ++bi) {
        read_batch_t *b = &r->batches[bi];
        if (b->busy)
            continue;
        for (size_t i = 0; i != READ_MAX_PENDING && r->num_unsent != 0; ++i) {
            read_waiter_t *w = &r->waiters[i];
            if (w->request == NULL || w->batch != -1)
                continue;
            engine_read_t *q = rt_msg_payload(w->request);
            int p = q->count_only ? -1 : find_pair(b, q);
            bool new_pair = !q->count_only && p < 0;
            size_t calls = 2 * b->num_pairs + b->num_counts + (new_pair ? 2 : 0) + q->want_count;
            if (calls > CHAIN_RPC_MAX_BATCH)
                continue;
            if (new_pair) {
                p = (int)b->num_pairs++;
                b->pairs[p].owner = q->owner;
                b->pairs[p].token = q->token;
            }
            w->batch = bi;
            w->pair = p;
            w->count = -1;
            --r->num_unsent;
            ++b->num_waiters;
            if (q->want_count) {
                w->count = (int)b->num_counts;
                memcpy(b->counts[b->num_counts++], q->on_chain_id, 32);
            }
        }
        if (b->num_waiters == 0)
            return; /* nothing left to send */
        b->busy = true;
        if (!send_batch(self, bi))
            finish_batch(self, bi, NULL);
    }
}

static void on_request(rt_actor_t *self, rt_msg_t *msg)
{
    reader_t *r = rt_actor_state(self);
    if (r->num_waiting == READ_MAX_PENDING) {
        engine_facts_t f = {.busy = true};
        rt_msg_keep(msg);
        answer(msg, &f);
        return;
    }
    for (size_t i = 0; i != READ_MAX_PENDING; ++i)
        if (r->waiters[i].request == NULL) {
            rt_msg_keep(msg);
            r->waiters[i].request = msg;
            r->waiters[i].batch = -1;
            ++r->num_waiting;
            ++r->num_unsent;
            break;
        }
    if (!r->flush_armed) {
        r->flush_armed = true;
        rt_actor_timer_start(self, &r->flush, READ_FLUSH_MS, 0);
    }
}

void engine__reader_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    reader_t *r = rt_actor_state(self);
    switch (msg->type) {
    case ENGINE_MSG_READ:
        on_request(self, msg);
        break;
    case RT_MSG_TIMER:
        r->flush_armed = false;
        flush(self);
        break;
    case CHAIN_RPC_MSG_REPLY:
        if (msg->corr < READ_MAX_BATCHES && r->batches[msg->corr].busy) {
            finish_batch(self, (int)msg->corr, chain_rpc_reply(msg));
            flush(self);
        }
        break;
    case RT_MSG_STOP:
        rt_actor_timer_cancel(self, &r->flush);
        for (size_t i = 0; i != READ_MAX_PENDING; ++i)
            if (r->waiters[i].request != NULL) {
                rt_msg_free(r->waiters[i].request);
                r->waiters[i].request = NULL;
            }
        break;
    }
}
