/*
 * Ethereum JSON-RPC without I/O: the params of the calls intentd makes, the results they return,
 * and what a node's error means.
 *
 * Builders return a chain_rpc_call_t (method and params) that chain_rpc_send (chain/rpc.h) puts
 * on the wire, alone or in a batch. Result readers take the JSON text of a "result" (as
 * chain_rpc_reply_result gives it) and fill fixed structs: quantities, which nodes send as "0x"
 * hex strings, become uint64_t or chain_u256_t (chain_u256_to_be gives the 32-byte big-endian
 * form); hashes and addresses become bytes. Readers are strict about types, because a field
 * misread near money is worse than a refused answer; they return CHAIN_OK or a chain_err_t:
 * CHAIN_ERR_SYNTAX (not JSON, or a bad hex digit), CHAIN_ERR_TYPE (a field missing or of the
 * wrong JSON type), CHAIN_ERR_LENGTH (a hash or address of the wrong size), CHAIN_ERR_OVERFLOW (a
 * quantity too large for its destination).
 *
 * chain_rpc_classify turns a node's error into one of the classes the engine acts on. Nodes word
 * the same condition differently (geth, anvil, Cronos/ethermint, hosted providers), so it looks
 * at the code first and then at known phrases, case-insensitively.
 */
#ifndef CHAIN_RPC_CODEC_H
#define CHAIN_RPC_CODEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "chain/address.h"
#include "chain/common.h"
#include "chain/u256.h"

/** What happened to a call: CHAIN_RPC_OK or a class the engine acts on. */
typedef enum en_chain_rpc_err_t {
    CHAIN_RPC_OK = 0,
    CHAIN_RPC_ERR_NONCE_TOO_LOW = -1,           /* the nonce is used: that transaction is mined */
    CHAIN_RPC_ERR_NONCE_TOO_HIGH = -2,          /* a gap: an earlier nonce is missing */
    CHAIN_RPC_ERR_REPLACEMENT_UNDERPRICED = -3, /* same nonce pending with a fee not beaten */
    CHAIN_RPC_ERR_UNDERPRICED = -4,             /* fee below the node's minimum or base fee */
    CHAIN_RPC_ERR_INSUFFICIENT_FUNDS = -5,      /* balance below gas * price + value */
    CHAIN_RPC_ERR_ALREADY_KNOWN = -6,           /* the node already has this transaction */
    CHAIN_RPC_ERR_REVERTED = -7,                /* execution reverted: see the revert data */
    CHAIN_RPC_ERR_RATE_LIMITED = -8,            /* HTTP 429, or JSON-RPC -32005 */
    CHAIN_RPC_ERR_NODE = -9,                    /* another JSON-RPC error: see code and message */
    CHAIN_RPC_ERR_UNAVAILABLE = -10,            /* transport: no endpoint gave an answer */
    CHAIN_RPC_ERR_TIMEOUT = -11,                /* the call's deadline passed first */
    CHAIN_RPC_ERR_BAD_RESPONSE = -12,           /* an answer that is not JSON-RPC for this call */
    CHAIN_RPC_ERR_BUSY = -13,                   /* refused here: too many calls in flight */
    CHAIN_RPC_ERR_SHUTDOWN = -14,               /* the client is stopping */
    CHAIN_RPC_ERR_INVALID = -15,                /* bad arguments (a builder ran out of memory...) */
} chain_rpc_err_t;

/** A short English name for a chain_rpc_err_t, for logs; never NULL. */
const char *chain_rpc_strerror(int err);

/**
 * The class of a JSON-RPC error object with `code` and `message` (may be NULL). Known phrases
 * win over codes, since -32000 and -32003 are used for many conditions; unknown errors are
 * CHAIN_RPC_ERR_NODE. For Cronos's "invalid nonce; got N, expected M" the numbers decide between
 * too low and too high. O(length of message).
 */
int chain_rpc_classify(int64_t code, const char *message);

/** A block parameter: a number, or a tag ("latest", "pending", "safe", "finalized",
 * "earliest"). */
typedef struct st_chain_rpc_block_t {
    const char *tag; /* NULL: use number */
    uint64_t number;
} chain_rpc_block_t;

/** The block numbered `number`. */
static inline chain_rpc_block_t chain_rpc_block_number(uint64_t number);
/** The block named by `tag` (a string literal or one that outlives the builder call). */
static inline chain_rpc_block_t chain_rpc_block_tag(const char *tag);

/** One call: a method name (static) and its params, owned until chain_rpc_send consumes them.
 * A builder that runs out of memory returns params == NULL, which chain_rpc_send refuses. */
typedef struct st_chain_rpc_call_t {
    const char *method;
    json_t *params;
} chain_rpc_call_t;

/** A call object for eth_call and eth_estimateGas. */
typedef struct st_chain_rpc_tx_t {
    const chain_addr_t *from; /* NULL: omitted */
    const chain_addr_t *to;   /* NULL: contract creation */
    const uint8_t *data;
    size_t data_len;
    const chain_u256_t *value; /* NULL: omitted */
    uint64_t gas;              /* 0: omitted */
} chain_rpc_tx_t;

/** At most this many addresses or values per topic in a log filter. */
#define CHAIN_RPC_FILTER_MAX 32

/** An eth_getLogs filter: a block range, contract addresses (none: any) and up to four topic
 * positions, each a set of accepted values (count 0: any). */
typedef struct st_chain_rpc_log_filter_t {
    chain_rpc_block_t from_block;
    chain_rpc_block_t to_block;
    const chain_addr_t *addresses;
    size_t num_addresses;
    struct {
        const uint8_t (*values)[32];
        size_t count;
    } topics[4];
    size_t num_topics;
} chain_rpc_log_filter_t;

/** Any method with `params` (an array, stolen; NULL means []). */
chain_rpc_call_t chain_rpc_call(const char *method, json_t *params);
/** eth_chainId */
chain_rpc_call_t chain_rpc_eth_chain_id(void);
/** eth_blockNumber */
chain_rpc_call_t chain_rpc_eth_block_number(void);
/** eth_getBlockByNumber(block, false): the header and transaction hashes. */
chain_rpc_call_t chain_rpc_eth_get_block_by_number(chain_rpc_block_t block);
/** eth_gasPrice */
chain_rpc_call_t chain_rpc_eth_gas_price(void);
/** eth_feeHistory(block_count, newest, percentiles); at most 16 percentiles in [0, 100]. */
chain_rpc_call_t chain_rpc_eth_fee_history(uint32_t block_count, chain_rpc_block_t newest,
                                           const double *percentiles, size_t num_percentiles);
/** eth_maxPriorityFeePerGas */
chain_rpc_call_t chain_rpc_eth_max_priority_fee_per_gas(void);
/** eth_getTransactionCount(address, block): the account's next nonce at that block. */
chain_rpc_call_t chain_rpc_eth_get_transaction_count(const chain_addr_t *address,
                                                     chain_rpc_block_t block);
/** eth_estimateGas(tx) */
chain_rpc_call_t chain_rpc_eth_estimate_gas(const chain_rpc_tx_t *tx);
/** eth_call(tx, block) */
chain_rpc_call_t chain_rpc_eth_call(const chain_rpc_tx_t *tx, chain_rpc_block_t block);
/** eth_sendRawTransaction(raw): never retried blindly, see chain/rpc.h. */
chain_rpc_call_t chain_rpc_eth_send_raw_transaction(const uint8_t *raw, size_t len);
/** eth_getTransactionReceipt(hash) */
chain_rpc_call_t chain_rpc_eth_get_transaction_receipt(const uint8_t hash[32]);
/** eth_getLogs(filter); at most CHAIN_RPC_FILTER_MAX addresses and values per topic. */
chain_rpc_call_t chain_rpc_eth_get_logs(const chain_rpc_log_filter_t *filter);

/** True for methods that only read, which the client may send again after a failure. */
bool chain_rpc_method_is_read(const char *method);

/**
 * Reads a quantity: "0x" and 1 to 16 significant hex digits (leading zeros are tolerated). Not
 * JSON: the bare characters.
 */
int chain_rpc_parse_quantity_u64(const char *s, size_t len, uint64_t *out);
/** Like chain_rpc_parse_quantity_u64, up to 64 significant digits. */
int chain_rpc_parse_quantity_u256(const char *s, size_t len, chain_u256_t *out);

/** A result that is a quantity, as a uint64_t (eth_chainId, eth_blockNumber, nonces, gas). */
int chain_rpc_result_u64(const char *json, size_t len, uint64_t *out);
/** A result that is a quantity, as 256 bits (eth_gasPrice, eth_maxPriorityFeePerGas). */
int chain_rpc_result_u256(const char *json, size_t len, chain_u256_t *out);
/** A result that is data ("0x" + bytes; eth_call): at most `cap` bytes into `dst`. */
int chain_rpc_result_bytes(const char *json, size_t len, uint8_t *dst, size_t cap, size_t *out_len);
/** A result that is a 32-byte hash (eth_sendRawTransaction). */
int chain_rpc_result_hash(const char *json, size_t len, uint8_t hash[32]);

/** The header fields the engine uses. */
typedef struct st_chain_rpc_block_header_t {
    uint64_t number;
    uint8_t hash[32];
    uint8_t parent_hash[32];
    uint64_t timestamp; /* seconds since the epoch */
    bool has_base_fee;  /* false before London */
    chain_u256_t base_fee_per_gas;
} chain_rpc_block_header_t;

/** An eth_getBlockByNumber result; `*found` is false (and CHAIN_OK) when it is null. */
int chain_rpc_result_block_header(const char *json, size_t len, chain_rpc_block_header_t *out,
                                  bool *found);

/** Most blocks and percentiles chain_rpc_result_fee_history accepts. */
#define CHAIN_RPC_FEE_HISTORY_MAX_BLOCKS 1024
#define CHAIN_RPC_FEE_HISTORY_MAX_PERCENTILES 16

/** An eth_feeHistory result. Arrays live in one allocation: chain_rpc_fee_history_free. */
typedef struct st_chain_rpc_fee_history_t {
    uint64_t oldest_block;
    size_t num_blocks;
    size_t num_percentiles;         /* 0 when the node sent no rewards */
    chain_u256_t *base_fee_per_gas; /* num_blocks + 1 (the next block's last) */
    double *gas_used_ratio;         /* num_blocks */
    chain_u256_t *reward;           /* num_blocks * num_percentiles, by block then percentile */
} chain_rpc_fee_history_t;

/** Reads an eth_feeHistory result. */
int chain_rpc_result_fee_history(const char *json, size_t len, chain_rpc_fee_history_t *out);
/** Frees what chain_rpc_result_fee_history allocated. */
void chain_rpc_fee_history_free(chain_rpc_fee_history_t *fh);

/** Most logs one result may hold. */
#define CHAIN_RPC_MAX_LOGS 100000

/** One event log. `data` points into the allocation of the chain_rpc_logs_t holding it. */
typedef struct st_chain_rpc_log_t {
    chain_addr_t address;
    uint8_t topics[4][32];
    size_t num_topics;
    const uint8_t *data;
    size_t data_len;
    uint64_t block_number;
    uint8_t block_hash[32];
    uint8_t tx_hash[32];
    uint64_t tx_index;
    uint64_t log_index;
    bool removed; /* dropped by a reorg */
} chain_rpc_log_t;

/** A list of logs in one allocation: chain_rpc_logs_free. */
typedef struct st_chain_rpc_logs_t {
    chain_rpc_log_t *items;
    size_t count;
} chain_rpc_logs_t;

/** Reads an eth_getLogs result. */
int chain_rpc_result_logs(const char *json, size_t len, chain_rpc_logs_t *out);
/** Frees what chain_rpc_result_logs (or a receipt) allocated. */
void chain_rpc_logs_free(chain_rpc_logs_t *logs);

/** The receipt fields the engine uses. */
typedef struct st_chain_rpc_receipt_t {
    uint8_t tx_hash[32];
    bool success; /* status 0x1 */
    uint64_t block_number;
    uint8_t block_hash[32];
    uint64_t gas_used;
    bool has_effective_gas_price;
    chain_u256_t effective_gas_price;
    bool has_contract_address;
    chain_addr_t contract_address;
    chain_rpc_logs_t logs;
} chain_rpc_receipt_t;

/** An eth_getTransactionReceipt result; `*found` is false (and CHAIN_OK) when it is null (not
 * mined, or unknown). Free with chain_rpc_receipt_free when found. */
int chain_rpc_result_receipt(const char *json, size_t len, chain_rpc_receipt_t *out, bool *found);
/** Frees the receipt's logs. */
void chain_rpc_receipt_free(chain_rpc_receipt_t *receipt);

/**
 * Decodes revert data from a JSON-RPC error's "data" (JSON text): a "0x" string, or an object
 * with such a "data" member (as some nodes nest it). Returns CHAIN_OK with `*out_len` bytes in
 * `dst` (0 for "0x"), CHAIN_ERR_TYPE when there is none, CHAIN_ERR_SHORT_BUFFER above `cap`.
 */
int chain_rpc_revert_data(const char *json, size_t len, uint8_t *dst, size_t cap, size_t *out_len);

/* inline definitions */

static inline chain_rpc_block_t chain_rpc_block_number(uint64_t number)
{
    chain_rpc_block_t b = {NULL, number};
    return b;
}

static inline chain_rpc_block_t chain_rpc_block_tag(const char *tag)
{
    chain_rpc_block_t b = {tag, 0};
    return b;
}

#endif
