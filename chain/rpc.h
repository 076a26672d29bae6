/*
 * The JSON-RPC 2.0 client of the EVM node(s), over net/'s HTTP client.
 *
 * An actor sends one call or a batch with chain_rpc_send and gets one CHAIN_RPC_MSG_REPLY back
 * (corr = its tag), carrying chain_rpc_reply_t: per call, the JSON text of the result or the
 * node's error, classified (chain/rpc_codec.h). Builders and result readers are in rpc_codec.h.
 *
 * Each worker has one call actor that owns the calls made from that worker: it sends them,
 * fails over between the configured endpoints in order, retries with exponential backoff and
 * jitter, and answers. Endpoints have a circuit breaker, shared by all workers: after
 * `breaker_failures` consecutive failures (transport errors, HTTP 429 or 5xx, -32005, answers
 * that are not JSON-RPC) it opens and the endpoint is skipped for `breaker_cooldown_ms`; then
 * one call probes it (half-open), and the outcome closes or re-opens it. A node's JSON-RPC error
 * (nonce too low, reverted...) is an answer, so it counts as a success for the breaker.
 *
 * Retrying is safe only for reads (chain_rpc_method_is_read; a batch is a read when every call
 * in it is). Anything else, eth_sendRawTransaction above all, is sent again only when every
 * earlier attempt provably never left this process: the connection was refused or never
 * established, the local queue refused it, or its endpoint's breaker was open. After a timeout,
 * a reset or an HTTP error the node may have the transaction, so the reply says maybe_sent and
 * the caller decides (re-sending the same signed bytes is harmless: the node answers "already
 * known" or "nonce too low", which chain_rpc_classify recognises).
 *
 * Bounds: at most `max_calls` calls in flight per worker (then CHAIN_RPC_ERR_BUSY at once), at
 * most `max_attempts` HTTP attempts per call, and each call ends by its deadline.
 */
#ifndef CHAIN_RPC_H
#define CHAIN_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "chain/rpc_codec.h"
#include "net/http_client.h"
#include "runtime/actor.h"
#include "runtime/worker.h"

/** Message type of a reply; the payload is chain_rpc_reply_t, corr the caller's tag. chain/
 * uses types 0x4300-0x43ff. */
#define CHAIN_RPC_MSG_REPLY 0x4301
/** Most endpoints. */
#define CHAIN_RPC_MAX_ENDPOINTS 8
/** Most calls in one batch. */
#define CHAIN_RPC_MAX_BATCH 100
/** Largest request body (the HTTP client must allow at least this much). */
#define CHAIN_RPC_MAX_REQUEST_BYTES (512u * 1024u)

/** Settings; a zero field takes the default shown. */
typedef struct st_chain_rpc_config_t {
    const char *const *urls; /* http:// or https:// URLs, in order of preference */
    size_t num_urls;
    uint32_t call_timeout_ms;     /* deadline of a call, retries included (15000) */
    uint32_t attempt_timeout_ms;  /* of one HTTP attempt (5000) */
    uint32_t connect_timeout_ms;  /* of one connection (2000) */
    uint32_t max_attempts;        /* HTTP attempts per call, failovers included (4) */
    uint32_t backoff_base_ms;     /* first backoff (100); doubles per round up to the max */
    uint32_t backoff_max_ms;      /* (2000) */
    uint32_t breaker_failures;    /* consecutive failures that open a breaker (5) */
    uint32_t breaker_cooldown_ms; /* open time before the half-open probe (10000) */
    uint32_t max_calls;           /* in flight per worker (256) */
} chain_rpc_config_t;

typedef struct st_chain_rpc_t chain_rpc_t;

/** Creates the client and registers its endpoints with `http`. Before the runtime starts.
 * NULL with a reason in `err` on a bad URL (see net/http_client.h). */
chain_rpc_t *chain_rpc_create(const chain_rpc_config_t *config, net_http_client_t *http, char *err,
                              size_t err_size);
/** Spawns the call actor of every worker of `rt` (started or not). */
void chain_rpc_start(chain_rpc_t *rpc, rt_runtime_t *rt);
/** Asks the call actors to stop: pending calls are answered CHAIN_RPC_ERR_SHUTDOWN and later
 * sends are refused. Any thread; call before rt_runtime_shutdown. */
void chain_rpc_stop(chain_rpc_t *rpc);
/** Frees the client, after rt_runtime_join_and_free. */
void chain_rpc_free(chain_rpc_t *rpc);

/**
 * Sends `n` calls (1: a single call; more: a batch of at most CHAIN_RPC_MAX_BATCH), from self's
 * own behaviour, with a deadline of `timeout_ms` (0: the configured call timeout). The calls'
 * params are consumed whatever the outcome. Returns CHAIN_RPC_OK, and one CHAIN_RPC_MSG_REPLY
 * with corr = `tag` will follow; or CHAIN_RPC_ERR_BUSY, _SHUTDOWN or _INVALID, and none will.
 */
int chain_rpc_send(rt_actor_t *self, chain_rpc_t *rpc, chain_rpc_call_t *calls, size_t n,
                   uint32_t timeout_ms, uint64_t tag);

/** The outcome of one call of a reply. Offsets are into the reply's text, NUL-terminated. */
typedef struct st_chain_rpc_item_t {
    int32_t error;        /* CHAIN_RPC_OK or a chain_rpc_err_t */
    int32_t code;         /* the node's JSON-RPC error code, 0 when none */
    uint32_t result_off;  /* JSON text of "result" (OK only) */
    uint32_t result_len;  /* 0 when there is none */
    uint32_t message_off; /* the node's error message, or why the call failed */
    uint32_t message_len; /* 0 when there is none */
    uint32_t data_off;    /* JSON text of the error's "data" (revert data) */
    uint32_t data_len;    /* 0 when there is none */
} chain_rpc_item_t;

/** Payload of CHAIN_RPC_MSG_REPLY: `count` items, then their text. */
typedef struct st_chain_rpc_reply_t {
    int32_t error;     /* OK when a node answered (see each item), else why none did; then
                        * every item carries the same error */
    uint32_t count;    /* calls, in the order they were sent */
    uint32_t attempts; /* HTTP attempts made */
    int32_t endpoint;  /* index (in config.urls) of the last endpoint tried, -1 if none */
    bool maybe_sent;   /* the request may have reached a node (matters for failed writes) */
    uint32_t text_len;
    chain_rpc_item_t items[];
} chain_rpc_reply_t;

/**
 * Reads an eth_getTransactionReceipt result as chain_rpc_result_receipt does, with the same
 * outcome for every text, but with the answer's scanner instead of a parse tree: a receipt of a
 * 200-execution batch holds 400 logs (~0.3 MB), which jansson builds object by object. Text the
 * scan does not take (null, escapes in the fields read, a duplicate field, a field missing or
 * malformed) is left to chain_rpc_result_receipt, whose verdict it returns. As the answer
 * scanner, numbers are not range-checked and nesting is bounded (only fields that are not read
 * can hold either).
 */
int chain_rpc_result_receipt_scan(const char *json, size_t len, chain_rpc_receipt_t *out,
                                  bool *found);

/**
 * Reads an eth_getLogs result as chain_rpc_result_logs does, with the same outcome for every
 * text, but with the scanner of chain_rpc_result_receipt_scan (the same log fields, read the same
 * way): the follower's read of a block holding 10,000 executions is ~10,000 logs (~7.5 MB), which
 * jansson builds object by object. Text the scan does not take (escapes in the fields read, a
 * duplicate field, a field missing or malformed, nesting deeper than the scanner's bound, and any
 * number, since jansson refuses those out of its range) is left to chain_rpc_result_logs, whose
 * verdict it returns. Free `out` with chain_rpc_logs_free.
 */
int chain_rpc_result_logs_scan(const char *json, size_t len, chain_rpc_logs_t *out);

/**
 * Whether every transaction of an eth_getBlockByNumber result read with full = false (its
 * "transactions" member: hashes) satisfies `pred`, called on each in order until one does not;
 * true for a block without transactions. False as well for anything else: null, a malformed or
 * doubled member, escapes in a hash, text that is not JSON. The follower passes over the
 * registry's logs of blocks whose transactions are all its lanes' (chain_follower.h).
 */
bool chain_rpc_result_block_txs_all(const char *json, size_t len,
                                    bool (*pred)(void *ctx, const uint8_t hash[32]), void *ctx);

/** Breaker states, for metrics and tests. */
typedef enum en_chain_rpc_breaker_t {
    CHAIN_RPC_BREAKER_CLOSED,
    CHAIN_RPC_BREAKER_OPEN,
    CHAIN_RPC_BREAKER_HALF_OPEN,
} chain_rpc_breaker_t;

/** The state of endpoint `i`'s breaker now. Any thread. */
chain_rpc_breaker_t chain_rpc_breaker_state(chain_rpc_t *rpc, size_t i);

/** The reply carried by a CHAIN_RPC_MSG_REPLY message. */
static inline chain_rpc_reply_t *chain_rpc_reply(rt_msg_t *msg);
/** Item `i`'s result as JSON text (length in `*len`), or NULL when it failed. */
static inline const char *chain_rpc_reply_result(const chain_rpc_reply_t *r, size_t i, size_t *len);
/** Item `i`'s error message ("" when none). */
static inline const char *chain_rpc_reply_message(const chain_rpc_reply_t *r, size_t i);
/** Decodes item `i`'s revert data (see chain_rpc_revert_data); for CHAIN_RPC_ERR_REVERTED, the
 * bytes to hand to chain/abi (Error(string), custom errors). */
static inline int chain_rpc_reply_revert_data(const chain_rpc_reply_t *r, size_t i, uint8_t *dst,
                                              size_t cap, size_t *out_len);

/* inline definitions */

static inline const char *chain_rpc__text(const chain_rpc_reply_t *r)
{
    return (const char *)&r->items[r->count];
}

static inline chain_rpc_reply_t *chain_rpc_reply(rt_msg_t *msg)
{
    return (chain_rpc_reply_t *)rt_msg_payload(msg);
}

static inline const char *chain_rpc_reply_result(const chain_rpc_reply_t *r, size_t i, size_t *len)
{
    CHAIN_ASSERT(i < r->count);
    *len = r->items[i].result_len;
    return r->items[i].result_len != 0 ? chain_rpc__text(r) + r->items[i].result_off : NULL;
}

static inline const char *chain_rpc_reply_message(const chain_rpc_reply_t *r, size_t i)
{
    CHAIN_ASSERT(i < r->count);
    return r->items[i].message_len != 0 ? chain_rpc__text(r) + r->items[i].message_off : "";
}

static inline int chain_rpc_reply_revert_data(const chain_rpc_reply_t *r, size_t i, uint8_t *dst,
                                              size_t cap, size_t *out_len)
{
    CHAIN_ASSERT(i < r->count);
    const char *data = r->items[i].data_len != 0 ? chain_rpc__text(r) + r->items[i].data_off : NULL;
    return chain_rpc_revert_data(data, r->items[i].data_len, dst, cap, out_len);
}

#endif
