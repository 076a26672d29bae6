#include "chain/rpc_codec.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chain/hex.h"

const char *chain_rpc_strerror(int err)
{
    switch (err) {
    case CHAIN_RPC_OK:
        return "ok";
    case CHAIN_RPC_ERR_NONCE_TOO_LOW:
        return "nonce too low";
    case CHAIN_RPC_ERR_NONCE_TOO_HIGH:
        return "nonce too high";
    case CHAIN_RPC_ERR_REPLACEMENT_UNDERPRICED:
        return "replacement transaction underpriced";
    case CHAIN_RPC_ERR_UNDERPRICED:
        return "transaction underpriced";
    case CHAIN_RPC_ERR_INSUFFICIENT_FUNDS:
        return "insufficient funds";
    case CHAIN_RPC_ERR_ALREADY_KNOWN:
        return "transaction already known";
    case CHAIN_RPC_ERR_REVERTED:
        return "execution reverted";
    case CHAIN_RPC_ERR_RATE_LIMITED:
        return "rate limited";
    case CHAIN_RPC_ERR_NODE:
        return "node error";
    case CHAIN_RPC_ERR_UNAVAILABLE:
        return "no endpoint available";
    case CHAIN_RPC_ERR_TIMEOUT:
        return "timed out";
    case CHAIN_RPC_ERR_BAD_RESPONSE:
        return "malformed JSON-RPC answer";
    case CHAIN_RPC_ERR_BUSY:
        return "busy: too many calls in flight";
    case CHAIN_RPC_ERR_SHUTDOWN:
        return "shutting down";
    case CHAIN_RPC_ERR_INVALID:
        return "invalid call";
    default:
        return "unknown error";
    }
}

/* ---- classifying node errors ---- */

static bool contains(const char *haystack, const char *needle)
{
    return strcasestr(haystack, needle) != NULL;
}

/* Cronos (ethermint) says "invalid nonce; got 5, expected 7: invalid sequence": compare. */
static int classify_sequence(const char *message)
{
    const char *got = strcasestr(message, "got ");
    const char *expected = strcasestr(message, "expected ");
    if (got == NULL || expected == NULL)
        return CHAIN_RPC_ERR_NODE;
    unsigned long long g = strtoull(got + 4, NULL, 10), e = strtoull(expected + 9, NULL, 10);
    return g < e ? CHAIN_RPC_ERR_NONCE_TOO_LOW : CHAIN_RPC_ERR_NONCE_TOO_HIGH;
}

int chain_rpc_classify(int64_t code, const char *message)
{
    static const struct {
        const char *phrase;
        int err;
    } phrases[] = {
        /* the order matters: "replacement transaction underpriced" before "underpriced" */
        {"nonce too low", CHAIN_RPC_ERR_NONCE_TOO_LOW},
        {"nonce too high", CHAIN_RPC_ERR_NONCE_TOO_HIGH},
        {"replacement transaction underpriced", CHAIN_RPC_ERR_REPLACEMENT_UNDERPRICED},
        {"replacement underpriced", CHAIN_RPC_ERR_REPLACEMENT_UNDERPRICED},
        {"insufficient funds", CHAIN_RPC_ERR_INSUFFICIENT_FUNDS},
        {"already known", CHAIN_RPC_ERR_ALREADY_KNOWN},
        {"already imported", CHAIN_RPC_ERR_ALREADY_KNOWN}, /* anvil */
        {"known transaction", CHAIN_RPC_ERR_ALREADY_KNOWN},
        {"tx already in mempool", CHAIN_RPC_ERR_ALREADY_KNOWN}, /* cosmos-sdk */
        {"transaction underpriced", CHAIN_RPC_ERR_UNDERPRICED},
        {"max fee per gas less than block base fee", CHAIN_RPC_ERR_UNDERPRICED},
        {"insufficient fee", CHAIN_RPC_ERR_UNDERPRICED}, /* cosmos-sdk min gas price */
        {"execution reverted", CHAIN_RPC_ERR_REVERTED},
        {"rate limit", CHAIN_RPC_ERR_RATE_LIMITED},
        {"request rate exceeded", CHAIN_RPC_ERR_RATE_LIMITED},
        {"too many requests", CHAIN_RPC_ERR_RATE_LIMITED},
    };
    if (message != NULL) {
        for (size_t i = 0; i != sizeof(phrases) / sizeof(phrases[0]); ++i)
            if (contains(message, phrases[i].phrase))
                return phrases[i].err;
        if (contains(message, "invalid nonce") || contains(message, "invalid sequence"))
            return classify_sequence(message);
    }
    if (code == 3) /* geth and anvil: execution reverted, with the data */
        return CHAIN_RPC_ERR_REVERTED;
    if (code == -32005) /* EIP-1474 "limit exceeded", used by providers for rate limits */
        return CHAIN_RPC_ERR_RATE_LIMITED;
    return CHAIN_RPC_ERR_NODE;
}

/* ---- building params ---- */

static json_t *quantity_u64(uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
    return json_string(buf);
}

/* "0x" and the hex digits of `v` without leading zeros ("0x0" for zero). */
static json_t *quantity_u256(const chain_u256_t *v)
{
    uint8_t be[32];
    char hex[2 * 32 + 3];
    chain_u256_to_be(v, be);
    int ret = chain_hex_encode(hex, sizeof(hex), be, sizeof(be), CHAIN_HEX_0X);
    CHAIN_ASSERT(ret == CHAIN_OK);
    size_t skip = 0;
    while (skip != 63 && hex[2 + skip] == '0')
        ++skip;
    memmove(hex + 2, hex + 2 + skip, strlen(hex + 2 + skip) + 1);
    return json_string(hex);
}

static json_t *hex_data(const uint8_t *bytes, size_t len)
{
    size_t size = chain_hex_encoded_size(len, CHAIN_HEX_0X);
    char *hex = malloc(size);
    if (hex == NULL)
        return NULL;
    int ret = chain_hex_encode(hex, size, bytes, len, CHAIN_HEX_0X);
    CHAIN_ASSERT(ret == CHAIN_OK);
    json_t *s = json_string(hex);
    free(hex);
    return s;
}

static json_t *block_param(chain_rpc_block_t block)
{
    return block.tag != NULL ? json_string(block.tag) : quantity_u64(block.number);
}

/* Sets `key` to `value` (stolen); a NULL value (out of memory) poisons the object. */
static bool set(json_t *obj, const char *key, json_t *value)
{
    return value != NULL && json_object_set_new(obj, key, value) == 0;
}

/* Finishes a builder: on any failure the params are NULL, which chain_rpc_send refuses. */
static chain_rpc_call_t finish_call(const char *method, json_t *params, bool ok)
{
    if (!ok) {
        json_decref(params);
        params = NULL;
    }
    chain_rpc_call_t call = {method, params};
    return call;
}

chain_rpc_call_t chain_rpc_call(const char *method, json_t *params)
{
    return finish_call(method, params != NULL ? params : json_array(), true);
}

chain_rpc_call_t chain_rpc_eth_chain_id(void)
{
    return chain_rpc_call("eth_chainId", NULL);
}

chain_rpc_call_t chain_rpc_eth_block_number(void)
{
    return chain_rpc_call("eth_blockNumber", NULL);
}

chain_rpc_call_t chain_rpc_eth_gas_price(void)
{
    return chain_rpc_call("eth_gasPrice", NULL);
}

chain_rpc_call_t chain_rpc_eth_max_priority_fee_per_gas(void)
{
    return chain_rpc_call("eth_maxPriorityFeePerGas", NULL);
}

chain_rpc_call_t chain_rpc_eth_get_block_by_number(chain_rpc_block_t block)
{
    json_t *params = json_pack("[o,b]", block_param(block), 0);
    return finish_call("eth_getBlockByNumber", params, params != NULL);
}

chain_rpc_call_t chain_rpc_eth_fee_history(uint32_t block_count, chain_rpc_block_t newest,
                                           const double *percentiles, size_t num_percentiles)
{
    json_t *list = json_array();
    bool ok = list != NULL && num_percentiles <= CHAIN_RPC_FEE_HISTORY_MAX_PERCENTILES;
    for (size_t i = 0; ok && i != num_percentiles; ++i)
        ok = percentiles[i] >= 0 && percentiles[i] <= 100 &&
             json_array_append_new(list, json_real(percentiles[i])) == 0;
    json_t *params =
        ok ? json_pack("[o,o,O]", quantity_u64(block_count), block_param(newest), list) : NULL;
    json_decref(list);
    return finish_call("eth_feeHistory", params, params != NULL);
}

chain_rpc_call_t chain_rpc_eth_get_transaction_count(const chain_addr_t *address,
                                                     chain_rpc_block_t block)
{
    json_t *params =
        json_pack("[o,o]", hex_data(address->bytes, CHAIN_ADDR_LEN), block_param(block));
    return finish_call("eth_getTransactionCount", params, params != NULL);
}

static json_t *tx_object(const chain_rpc_tx_t *tx)
{
    json_t *obj = json_object();
    bool ok = obj != NULL;
    if (ok && tx->from != NULL)
        ok = set(obj, "from", hex_data(tx->from->bytes, CHAIN_ADDR_LEN));
    if (ok && tx->to != NULL)
        ok = set(obj, "to", hex_data(tx->to->bytes, CHAIN_ADDR_LEN));
    if (ok && tx->data_len != 0)
        ok = set(obj, "data", hex_data(tx->data, tx->data_len));
    if (ok && tx->value != NULL)
        ok = set(obj, "value", quantity_u256(tx->value));
    if (ok && tx->gas != 0)
        ok = set(obj, "gas", quantity_u64(tx->gas));
    if (!ok) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

chain_rpc_call_t chain_rpc_eth_estimate_gas(const chain_rpc_tx_t *tx)
{
    json_t *params = json_pack("[o]", tx_object(tx));
    return finish_call("eth_estimateGas", params, params != NULL);
}

chain_rpc_call_t chain_rpc_eth_call(const chain_rpc_tx_t *tx, chain_rpc_block_t block)
{
    json_t *params = json_pack("[o,o]", tx_object(tx), block_param(block));
    return finish_call("eth_call", params, params != NULL);
}

chain_rpc_call_t chain_rpc_eth_send_raw_transaction(const uint8_t *raw, size_t len)
{
    json_t *params = json_pack("[o]", hex_data(raw, len));
    return finish_call("eth_sendRawTransaction", params, params != NULL);
}

chain_rpc_call_t chain_rpc_eth_get_transaction_receipt(const uint8_t hash[32])
{
    json_t *params = json_pack("[o]", hex_data(hash, 32));
    return finish_call("eth_getTransactionReceipt", params, params != NULL);
}

/* One topic position: null for any, the value alone, or the list of accepted values. */
static json_t *topic_param(const uint8_t (*values)[32], size_t count)
{
    if (count == 0)
        return json_null();
    if (count == 1)
        return hex_data(values[0], 32);
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i != count; ++i)
        if (json_array_append_new(list, hex_data(values[i], 32)) != 0) {
            json_decref(list);
            list = NULL;
        }
    return list;
}

chain_rpc_call_t chain_rpc_eth_get_logs(const chain_rpc_log_filter_t *filter)
{
    json_t *obj = json_object();
    bool ok = obj != NULL && filter->num_addresses <= CHAIN_RPC_FILTER_MAX &&
              filter->num_topics <= 4 && set(obj, "fromBlock", block_param(filter->from_block)) &&
              set(obj, "toBlock", block_param(filter->to_block));
    if (ok && filter->num_addresses != 0) {
        json_t *list = json_array();
        ok = set(obj, "address", list);
        for (size_t i = 0; ok && i != filter->num_addresses; ++i)
            ok = json_array_append_new(list, hex_data(filter->addresses[i].bytes, 20)) == 0;
    }
    if (ok && filter->num_topics != 0) {
        json_t *topics = json_array();
        ok = set(obj, "topics", topics);
        for (size_t i = 0; ok && i != filter->num_topics; ++i)
            ok = filter->topics[i].count <= CHAIN_RPC_FILTER_MAX &&
                 json_array_append_new(
                     topics, topic_param(filter->topics[i].values, filter->topics[i].count)) == 0;
    }
    json_t *params = ok ? json_pack("[O]", obj) : NULL;
    json_decref(obj);
    return finish_call("eth_getLogs", params, params != NULL);
}

bool chain_rpc_method_is_read(const char *method)
{
    static const char *const reads[] = {
        "eth_chainId",
        "eth_blockNumber",
        "eth_getBlockByNumber",
        "eth_getBlockByHash",
        "eth_gasPrice",
        "eth_feeHistory",
        "eth_maxPriorityFeePerGas",
        "eth_getTransactionCount",
        "eth_estimateGas",
        "eth_call",
        "eth_getTransactionReceipt",
        "eth_getTransactionByHash",
        "eth_getLogs",
        "eth_getBalance",
        "eth_getCode",
        "eth_getStorageAt",
        "eth_syncing",
        "net_version",
        "web3_clientVersion",
    };
    for (size_t i = 0; i != sizeof(reads) / sizeof(reads[0]); ++i)
        if (strcmp(method, reads[i]) == 0)
            return true;
    return false;
}

/* ---- reading results ---- */

static int parse_quantity(const char *s, size_t len, uint8_t be[32], size_t max_digits)
{
    if (len < 3 || s[0] != '0' || s[1] != 'x')
        return len == 0 ? CHAIN_ERR_LENGTH : CHAIN_ERR_SYNTAX;
    s += 2;
    len -= 2;
    for (size_t i = 0; i != len; ++i)
        if (chain_hex_digit(s[i]) < 0)
            return CHAIN_ERR_SYNTAX;
    while (len > 1 && s[0] == '0') { /* tolerated, though EIP-1474 forbids them */
        ++s;
        --len;
    }
    if (len > max_digits)
        return CHAIN_ERR_OVERFLOW;
    memset(be, 0, 32);
    for (size_t i = 0; i != len; ++i) { /* the last digit is the low nibble of be[31] */
        size_t nibble = len - 1 - i;
        be[31 - nibble / 2] |= (uint8_t)(chain_hex_digit(s[i]) << (4 * (nibble % 2)));
    }
    return CHAIN_OK;
}

int chain_rpc_parse_quantity_u64(const char *s, size_t len, uint64_t *out)
{
    uint8_t be[32];
    int ret = parse_quantity(s, len, be, 16);
    if (ret != CHAIN_OK)
        return ret;
    uint64_t v = 0;
    for (int i = 24; i != 32; ++i)
        v = v << 8 | be[i];
    *out = v;
    return CHAIN_OK;
}

int chain_rpc_parse_quantity_u256(const char *s, size_t len, chain_u256_t *out)
{
    uint8_t be[32];
    int ret = parse_quantity(s, len, be, 64);
    if (ret == CHAIN_OK)
        chain_u256_from_be(out, be);
    return ret;
}

/* Field readers over a jansson value; a missing field is NULL and reads as CHAIN_ERR_TYPE. */
static int json_u64(const json_t *v, uint64_t *out)
{
    if (!json_is_string(v))
        return CHAIN_ERR_TYPE;
    return chain_rpc_parse_quantity_u64(json_string_value(v), json_string_length(v), out);
}

static int json_u256(const json_t *v, chain_u256_t *out)
{
    if (!json_is_string(v))
        return CHAIN_ERR_TYPE;
    return chain_rpc_parse_quantity_u256(json_string_value(v), json_string_length(v), out);
}

static int json_fixed(const json_t *v, uint8_t *dst, size_t len)
{
    if (!json_is_string(v))
        return CHAIN_ERR_TYPE;
    return chain_hex_decode_exact(dst, len, json_string_value(v), json_string_length(v),
                                  CHAIN_HEX_0X_REQUIRED);
}

/* Parses `json` (any JSON value, as a result may be a bare string or null). */
static json_t *load(const char *json, size_t len)
{
    return json_loadb(json, len, JSON_DECODE_ANY, NULL);
}

int chain_rpc_result_u64(const char *json, size_t len, uint64_t *out)
{
    json_t *v = load(json, len);
    int ret = v != NULL ? json_u64(v, out) : CHAIN_ERR_SYNTAX;
    json_decref(v);
    return ret;
}

int chain_rpc_result_u256(const char *json, size_t len, chain_u256_t *out)
{
    json_t *v = load(json, len);
    int ret = v != NULL ? json_u256(v, out) : CHAIN_ERR_SYNTAX;
    json_decref(v);
    return ret;
}

int chain_rpc_result_bytes(const char *json, size_t len, uint8_t *dst, size_t cap, size_t *out_len)
{
    json_t *v = load(json, len);
    int ret = v == NULL ? CHAIN_ERR_SYNTAX : !json_is_string(v) ? CHAIN_ERR_TYPE : CHAIN_OK;
    if (ret == CHAIN_OK)
        ret = chain_hex_decode(dst, cap, out_len, json_string_value(v), json_string_length(v),
                               CHAIN_HEX_0X_REQUIRED);
    json_decref(v);
    return ret;
}

int chain_rpc_result_hash(const char *json, size_t len, uint8_t hash[32])
{
    json_t *v = load(json, len);
    int ret = v != NULL ? json_fixed(v, hash, 32) : CHAIN_ERR_SYNTAX;
    json_decref(v);
    return ret;
}

/* Runs `fn` on `json`'s value unless it is null (then *found = false). */
static int with_object(const char *json, size_t len, bool *found, void *out,
                       int (*fn)(const json_t *obj, void *out))
{
    json_t *v = load(json, len);
    int ret = CHAIN_OK;
    *found = false;
    if (v == NULL) {
        ret = CHAIN_ERR_SYNTAX;
    } else if (!json_is_null(v)) {
        ret = json_is_object(v) ? fn(v, out) : CHAIN_ERR_TYPE;
        *found = ret == CHAIN_OK;
    }
    json_decref(v);
    return ret;
}

static int read_header(const json_t *obj, void *out)
{
    chain_rpc_block_header_t *h = out;
    int ret;
    memset(h, 0, sizeof(*h));
    if ((ret = json_u64(json_object_get(obj, "number"), &h->number)) != CHAIN_OK ||
        (ret = json_fixed(json_object_get(obj, "hash"), h->hash, 32)) != CHAIN_OK ||
        (ret = json_fixed(json_object_get(obj, "parentHash"), h->parent_hash, 32)) != CHAIN_OK ||
        (ret = json_u64(json_object_get(obj, "timestamp"), &h->timestamp)) != CHAIN_OK)
        return ret;
    json_t *base_fee = json_object_get(obj, "baseFeePerGas");
    h->has_base_fee = base_fee != NULL && !json_is_null(base_fee);
    return h->has_base_fee ? json_u256(base_fee, &h->base_fee_per_gas) : CHAIN_OK;
}

int chain_rpc_result_block_header(const char *json, size_t len, chain_rpc_block_header_t *out,
                                  bool *found)
{
    return with_object(json, len, found, out, read_header);
}

/* Checks the shape of a fee history before anything is allocated; sets the counts. */
static int fee_history_shape(const json_t *obj, size_t *blocks, size_t *percentiles)
{
    json_t *base = json_object_get(obj, "baseFeePerGas"),
           *ratio = json_object_get(obj, "gasUsedRatio");
    json_t *reward = json_object_get(obj, "reward");
    if (!json_is_array(base) || !json_is_array(ratio))
        return CHAIN_ERR_TYPE;
    size_t n = json_array_size(ratio), p = 0;
    if (n > CHAIN_RPC_FEE_HISTORY_MAX_BLOCKS || json_array_size(base) != n + 1)
        return CHAIN_ERR_LENGTH;
    if (reward != NULL && !json_is_null(reward)) {
        if (!json_is_array(reward) || json_array_size(reward) != n)
            return CHAIN_ERR_TYPE;
        p = n != 0 ? json_array_size(json_array_get(reward, 0)) : 0;
        if (p > CHAIN_RPC_FEE_HISTORY_MAX_PERCENTILES)
            return CHAIN_ERR_LENGTH;
        for (size_t i = 0; i != n; ++i)
            if (!json_is_array(json_array_get(reward, i)) ||
                json_array_size(json_array_get(reward, i)) != p)
                return CHAIN_ERR_TYPE;
    }
    *blocks = n;
    *percentiles = p;
    return CHAIN_OK;
}

static int fill_fee_history(const json_t *obj, chain_rpc_fee_history_t *fh)
{
    json_t *base = json_object_get(obj, "baseFeePerGas"),
           *ratio = json_object_get(obj, "gasUsedRatio");
    json_t *reward = json_object_get(obj, "reward");
    int ret = json_u64(json_object_get(obj, "oldestBlock"), &fh->oldest_block);
    for (size_t i = 0; ret == CHAIN_OK && i != fh->num_blocks + 1; ++i)
        ret = json_u256(json_array_get(base, i), &fh->base_fee_per_gas[i]);
    for (size_t i = 0; ret == CHAIN_OK && i != fh->num_blocks; ++i) {
        json_t *r = json_array_get(ratio, i);
        ret = json_is_number(r) ? CHAIN_OK : CHAIN_ERR_TYPE;
        fh->gas_used_ratio[i] = json_number_value(r);
        for (size_t j = 0; ret == CHAIN_OK && j != fh->num_percentiles; ++j)
            ret = json_u256(json_array_get(json_array_get(reward, i), j),
                            &fh->reward[i * fh->num_percentiles + j]);
    }
    return ret;
}

int chain_rpc_result_fee_history(const char *json, size_t len, chain_rpc_fee_history_t *out)
{
    memset(out, 0, sizeof(*out));
    json_t *v = load(json, len);
    size_t n = 0, p = 0;
    int ret = v == NULL ? CHAIN_ERR_SYNTAX : !json_is_object(v) ? CHAIN_ERR_TYPE : CHAIN_OK;
    if (ret == CHAIN_OK)
        ret = fee_history_shape(v, &n, &p);
    if (ret == CHAIN_OK) {
        /* one block: base fees, rewards, then ratios (all 8-byte aligned) */
        size_t words = n + 1 + n * p;
        void *block = malloc(words * sizeof(chain_u256_t) + n * sizeof(double) + 1);
        CHAIN_ASSERT(block != NULL);
        out->num_blocks = n;
        out->num_percentiles = p;
        out->base_fee_per_gas = block;
        out->reward = p != 0 ? out->base_fee_per_gas + n + 1 : NULL;
        out->gas_used_ratio = (double *)(out->base_fee_per_gas + words);
        ret = fill_fee_history(v, out);
    }
    json_decref(v);
    if (ret != CHAIN_OK)
        chain_rpc_fee_history_free(out);
    return ret;
}

void chain_rpc_fee_history_free(chain_rpc_fee_history_t *fh)
{
    free(fh->base_fee_per_gas);
    memset(fh, 0, sizeof(*fh));
}

/* The byte length of a log's "data" ("0x" + even digits), checked for shape only. */
static int log_data_size(const json_t *log, size_t *size)
{
    json_t *data = json_object_get(log, "data");
    if (!json_is_object(log) || !json_is_string(data))
        return CHAIN_ERR_TYPE;
    size_t len = json_string_length(data);
    if (len < 2 || len % 2 != 0)
        return CHAIN_ERR_LENGTH;
    *size = (len - 2) / 2;
    return CHAIN_OK;
}

static int read_log(const json_t *obj, chain_rpc_log_t *log, uint8_t *data, size_t data_cap)
{
    json_t *topics = json_object_get(obj, "topics"), *removed = json_object_get(obj, "removed");
    json_t *d = json_object_get(obj, "data");
    int ret;
    if (!json_is_array(topics) || json_array_size(topics) > 4)
        return CHAIN_ERR_TYPE;
    log->num_topics = json_array_size(topics);
    for (size_t i = 0; i != log->num_topics; ++i)
        if ((ret = json_fixed(json_array_get(topics, i), log->topics[i], 32)) != CHAIN_OK)
            return ret;
    if ((ret = json_fixed(json_object_get(obj, "address"), log->address.bytes, 20)) != CHAIN_OK ||
        (ret = json_u64(json_object_get(obj, "blockNumber"), &log->block_number)) != CHAIN_OK ||
        (ret = json_fixed(json_object_get(obj, "blockHash"), log->block_hash, 32)) != CHAIN_OK ||
        (ret = json_fixed(json_object_get(obj, "transactionHash"), log->tx_hash, 32)) != CHAIN_OK ||
        (ret = json_u64(json_object_get(obj, "transactionIndex"), &log->tx_index)) != CHAIN_OK ||
        (ret = json_u64(json_object_get(obj, "logIndex"), &log->log_index)) != CHAIN_OK)
        return ret;
    log->removed = json_is_true(removed);
    log->data = data;
    return chain_hex_decode(data, data_cap, &log->data_len, json_string_value(d),
                            json_string_length(d), CHAIN_HEX_0X_REQUIRED);
}

/* Reads a JSON array of logs into one allocation: the items, then every log's data. */
static int read_logs(const json_t *list, chain_rpc_logs_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_array(list))
        return CHAIN_ERR_TYPE;
    size_t n = json_array_size(list), total = 0, size = 0;
    if (n > CHAIN_RPC_MAX_LOGS)
        return CHAIN_ERR_LENGTH;
    for (size_t i = 0; i != n; ++i) {
        int ret = log_data_size(json_array_get(list, i), &size);
        if (ret != CHAIN_OK)
            return ret;
        total += size;
    }
    out->items = calloc(1, n * sizeof(chain_rpc_log_t) + total + 1);
    CHAIN_ASSERT(out->items != NULL);
    uint8_t *data = (uint8_t *)(out->items + n);
    for (size_t i = 0; i != n; ++i) {
        int ret = log_data_size(json_array_get(list, i), &size);
        if (ret == CHAIN_OK)
            ret = read_log(json_array_get(list, i), &out->items[i], data, size);
        if (ret != CHAIN_OK) {
            chain_rpc_logs_free(out);
            return ret;
        }
        data += size;
    }
    out->count = n;
    return CHAIN_OK;
}

int chain_rpc_result_logs(const char *json, size_t len, chain_rpc_logs_t *out)
{
    json_t *v = load(json, len);
    int ret = v != NULL ? read_logs(v, out) : CHAIN_ERR_SYNTAX;
    if (v == NULL)
        memset(out, 0, sizeof(*out));
    json_decref(v);
    return ret;
}

void chain_rpc_logs_free(chain_rpc_logs_t *logs)
{
    free(logs->items);
    logs->items = NULL;
    logs->count = 0;
}

static int read_receipt(const json_t *obj, void *out)
{
    chain_rpc_receipt_t *r = out;
    uint64_t status;
    int ret;
    memset(r, 0, sizeof(*r));
    if ((ret = json_fixed(json_object_get(obj, "transactionHash"), r->tx_hash, 32)) != CHAIN_OK ||
        (ret = json_u64(json_object_get(obj, "status"), &status)) != CHAIN_OK ||
        (ret = json_u64(json_object_get(obj, "blockNumber"), &r->block_number)) != CHAIN_OK ||
        (ret = json_fixed(json_object_get(obj, "blockHash"), r->block_hash, 32)) != CHAIN_OK ||
        (ret = json_u64(json_object_get(obj, "gasUsed"), &r->gas_used)) != CHAIN_OK)
        return ret;
    r->success = status == 1;
    json_t *price = json_object_get(obj, "effectiveGasPrice");
    json_t *contract = json_object_get(obj, "contractAddress");
    r->has_effective_gas_price = price != NULL && !json_is_null(price);
    if (r->has_effective_gas_price && (ret = json_u256(price, &r->effective_gas_price)) != CHAIN_OK)
        return ret;
    r->has_contract_address = contract != NULL && !json_is_null(contract);
    if (r->has_contract_address &&
        (ret = json_fixed(contract, r->contract_address.bytes, 20)) != CHAIN_OK)
        return ret;
    return read_logs(json_object_get(obj, "logs"), &r->logs);
}

int chain_rpc_result_receipt(const char *json, size_t len, chain_rpc_receipt_t *out, bool *found)
{
    return with_object(json, len, found, out, read_receipt);
}

void chain_rpc_receipt_free(chain_rpc_receipt_t *receipt)
{
    chain_rpc_logs_free(&receipt->logs);
}

int chain_rpc_revert_data(const char *json, size_t len, uint8_t *dst, size_t cap, size_t *out_len)
{
    *out_len = 0;
    if (json == NULL || len == 0)
        return CHAIN_ERR_TYPE;
    json_t *v = load(json, len);
    json_t *data = json_is_object(v) ? json_object_get(v, "data") : v;
    int ret = v == NULL ? CHAIN_ERR_SYNTAX : !json_is_string(data) ? CHAIN_ERR_TYPE : CHAIN_OK;
    if (ret == CHAIN_OK)
        ret = chain_hex_decode(dst, cap, out_len, json_string_value(data), json_string_length(data),
                               CHAIN_HEX_0X_REQUIRED);
    json_decref(v);
    return ret;
}
