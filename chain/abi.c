#include <string.h>
#include "chain/abi.h"
#include "chain/keccak.h"

/* words in the head of execute's arguments, and of each executeBatch member: the intent's
 * nine, the offset of the signature, the count */
#define CHAIN__ABI_INTENT_WORDS 9
#define CHAIN__ABI_EXEC_HEAD (CHAIN__ABI_INTENT_WORDS + 2)

/* ---- the writer: sticky errors, NULL buffer measures ---- */

typedef struct st_chain__abi_w_t {
    uint8_t *buf;
    size_t cap;
    size_t len;
    int err;
} chain__abi_w_t;

static chain__abi_w_t chain__abi_w(uint8_t *buf, size_t cap)
{
    chain__abi_w_t w = {buf, buf == NULL ? SIZE_MAX : cap, 0, CHAIN_OK};
    return w;
}

/* appends `n` bytes of `data`, or `n` zeros when `data` is NULL */
static void chain__abi_put(chain__abi_w_t *w, const void *data, size_t n)
{
    if (w->err != CHAIN_OK)
        return;
    if (n > w->cap - w->len) {
        w->err = CHAIN_ERR_SHORT_BUFFER;
        return;
    }
    if (w->buf != NULL && n != 0) {
        if (data != NULL)
            memcpy(w->buf + w->len, data, n);
        else
            memset(w->buf + w->len, 0, n);
    }
    w->len += n;
}

static void chain__abi_put_selector(chain__abi_w_t *w, const char *signature)
{
    uint8_t sel[CHAIN_ABI_SELECTOR_LEN];
    chain_abi_selector(signature, sel);
    chain__abi_put(w, sel, sizeof(sel));
}

static void chain__abi_put_address(chain__abi_w_t *w, const chain_addr_t *a)
{
    CHAIN_ASSERT(a != NULL);
    chain__abi_put(w, NULL, CHAIN_ABI_WORD - CHAIN_ADDR_LEN);
    chain__abi_put(w, a->bytes, CHAIN_ADDR_LEN);
}

static void chain__abi_put_u256(chain__abi_w_t *w, const chain_u256_t *v)
{
    CHAIN_ASSERT(v != NULL);
    uint8_t word[CHAIN_ABI_WORD];
    chain_u256_to_be(v, word);
    chain__abi_put(w, word, sizeof(word));
}

static void chain__abi_put_u64(chain__abi_w_t *w, uint64_t v)
{
    chain_u256_t u = chain_u256_from_u64(v);
    chain__abi_put_u256(w, &u);
}

/* the PaymentIntent tuple: static, so its members sit in place, one word each */
static void chain__abi_put_intent(chain__abi_w_t *w, const chain_intent_t *in)
{
    CHAIN_ASSERT(in != NULL);
    chain__abi_put_address(w, &in->owner);
    chain__abi_put_address(w, &in->token);
    chain__abi_put_address(w, &in->recipient);
    chain__abi_put_u256(w, &in->amount);
    chain__abi_put_u64(w, in->min_interval);
    chain__abi_put_u64(w, in->valid_after);
    chain__abi_put_u64(w, in->valid_until);
    chain__abi_put_u64(w, in->max_executions);
    chain__abi_put(w, in->salt, sizeof(in->salt));
}

static size_t chain__abi_padded(size_t n)
{
    return (n + CHAIN_ABI_WORD - 1) / CHAIN_ABI_WORD * CHAIN_ABI_WORD;
}

/* the tail of a `bytes` value: its length, then its bytes zero-padded to whole words */
static void chain__abi_put_dyn_bytes(chain__abi_w_t *w, const uint8_t *data, size_t n)
{
    CHAIN_ASSERT(data != NULL || n == 0);
    chain__abi_put_u64(w, n);
    chain__abi_put(w, data, n);
    chain__abi_put(w, NULL, chain__abi_padded(n) - n);
}

/* intent, signature and count, as execute's arguments and as each Execution tuple */
static void chain__abi_put_execution(chain__abi_w_t *w, const chain_intent_t *intent,
                                     const uint8_t *sig, size_t sig_len, uint32_t count)
{
    chain__abi_put_intent(w, intent);
    /* offsets count from the start of the enclosing tuple: the signature follows the head */
    chain__abi_put_u64(w, CHAIN__ABI_EXEC_HEAD * CHAIN_ABI_WORD);
    chain__abi_put_u64(w, count);
    chain__abi_put_dyn_bytes(w, sig, sig_len);
}

static int chain__abi_finish(chain__abi_w_t *w, size_t *len)
{
    CHAIN_ASSERT(len != NULL);
    if (w->err != CHAIN_OK)
        return w->err;
    *len = w->len;
    return CHAIN_OK;
}

void chain_abi_selector(const char *signature, uint8_t out[CHAIN_ABI_SELECTOR_LEN])
{
    CHAIN_ASSERT(signature != NULL && out != NULL);
    uint8_t hash[CHAIN_KECCAK256_LEN];
    chain_keccak256(signature, strlen(signature), hash);
    memcpy(out, hash, CHAIN_ABI_SELECTOR_LEN);
}

void chain_abi_topic(const char *signature, uint8_t out[CHAIN_ABI_WORD])
{
    CHAIN_ASSERT(signature != NULL && out != NULL);
    chain_keccak256(signature, strlen(signature), out);
}

/* ---- call data ---- */

/* a call whose arguments are up to two addresses and a uint256 (any may be NULL) */
static int chain__abi_simple(uint8_t *out, size_t cap, size_t *len, const char *signature,
                             const chain_addr_t *a1, const chain_addr_t *a2, const chain_u256_t *v)
{
    chain__abi_w_t w = chain__abi_w(out, cap);
    chain__abi_put_selector(&w, signature);
    if (a1 != NULL)
        chain__abi_put_address(&w, a1);
    if (a2 != NULL)
        chain__abi_put_address(&w, a2);
    if (v != NULL)
        chain__abi_put_u256(&w, v);
    return chain__abi_finish(&w, len);
}

int chain_abi_balance_of(uint8_t *out, size_t cap, size_t *len, const chain_addr_t *owner)
{
    CHAIN_ASSERT(owner != NULL);
    return chain__abi_simple(out, cap, len, CHAIN_ABI_SIG_BALANCE_OF, owner, NULL, NULL);
}

int chain_abi_allowance(uint8_t *out, size_t cap, size_t *len, const chain_addr_t *owner,
                        const chain_addr_t *spender)
{
    CHAIN_ASSERT(owner != NULL && spender != NULL);
    return chain__abi_simple(out, cap, len, CHAIN_ABI_SIG_ALLOWANCE, owner, spender, NULL);
}

int chain_abi_decimals(uint8_t *out, size_t cap, size_t *len)
{
    return chain__abi_simple(out, cap, len, CHAIN_ABI_SIG_DECIMALS, NULL, NULL, NULL);
}

int chain_abi_symbol(uint8_t *out, size_t cap, size_t *len)
{
    return chain__abi_simple(out, cap, len, CHAIN_ABI_SIG_SYMBOL, NULL, NULL, NULL);
}

int chain_abi_approve(uint8_t *out, size_t cap, size_t *len, const chain_addr_t *spender,
                      const chain_u256_t *amount)
{
    CHAIN_ASSERT(spender != NULL && amount != NULL);
    return chain__abi_simple(out, cap, len, CHAIN_ABI_SIG_APPROVE, spender, NULL, amount);
}

int chain_abi_transfer(uint8_t *out, size_t cap, size_t *len, const chain_addr_t *to,
                       const chain_u256_t *amount)
{
    CHAIN_ASSERT(to != NULL && amount != NULL);
    return chain__abi_simple(out, cap, len, CHAIN_ABI_SIG_TRANSFER, to, NULL, amount);
}

int chain_abi_execute(uint8_t *out, size_t cap, size_t *len, const chain_intent_t *intent,
                      const uint8_t *sig, size_t sig_len, uint32_t count)
{
    if (sig_len > CHAIN_ABI_SIG_MAX)
        return CHAIN_ERR_LENGTH;
    chain__abi_w_t w = chain__abi_w(out, cap);
    chain__abi_put_selector(&w, CHAIN_ABI_SIG_EXECUTE);
    chain__abi_put_execution(&w, intent, sig, sig_len, count);
    return chain__abi_finish(&w, len);
}

/* the encoded size of one Execution tuple: head, signature length word, padded signature */
static size_t chain__abi_execution_size(const chain_abi_execution_t *e)
{
    return (CHAIN__ABI_EXEC_HEAD + 1) * CHAIN_ABI_WORD + chain__abi_padded(e->sig_len);
}

int chain_abi_execute_batch(uint8_t *out, size_t cap, size_t *len,
                            const chain_abi_execution_t *batch, size_t n)
{
    CHAIN_ASSERT(batch != NULL || n == 0);
    if (n > CHAIN_ABI_BATCH_MAX)
        return CHAIN_ERR_LENGTH;
    for (size_t i = 0; i != n; ++i) {
        if (batch[i].sig_len > CHAIN_ABI_SIG_MAX)
            return CHAIN_ERR_LENGTH;
    }
    chain__abi_w_t w = chain__abi_w(out, cap);
    chain__abi_put_selector(&w, CHAIN_ABI_SIG_EXECUTE_BATCH);
    /* the one argument is a dynamic array: its offset, then its length */
    chain__abi_put_u64(&w, CHAIN_ABI_WORD);
    chain__abi_put_u64(&w, n);
    /* Execution holds `bytes`, so it is dynamic: the array's head is one offset per member,
     * counted from just after the length word; the bounds above keep these sums small */
    size_t offset = n * CHAIN_ABI_WORD;
    for (size_t i = 0; i != n; ++i) {
        chain__abi_put_u64(&w, offset);
        offset += chain__abi_execution_size(&batch[i]);
    }
    for (size_t i = 0; i != n; ++i)
        chain__abi_put_execution(&w, batch[i].intent, batch[i].sig, batch[i].sig_len,
                                 batch[i].count);
    return chain__abi_finish(&w, len);
}

int chain_abi_revoke(uint8_t *out, size_t cap, size_t *len, const chain_intent_t *intent)
{
    chain__abi_w_t w = chain__abi_w(out, cap);
    chain__abi_put_selector(&w, CHAIN_ABI_SIG_REVOKE);
    chain__abi_put_intent(&w, intent);
    return chain__abi_finish(&w, len);
}

/* a view taking one bytes32 */
static int chain__abi_by_id(uint8_t *out, size_t cap, size_t *len, const char *signature,
                            const uint8_t id[32])
{
    CHAIN_ASSERT(id != NULL);
    chain__abi_w_t w = chain__abi_w(out, cap);
    chain__abi_put_selector(&w, signature);
    chain__abi_put(&w, id, CHAIN_ABI_WORD);
    return chain__abi_finish(&w, len);
}

int chain_abi_executed_count(uint8_t *out, size_t cap, size_t *len, const uint8_t id[32])
{
    return chain__abi_by_id(out, cap, len, CHAIN_ABI_SIG_EXECUTED_COUNT, id);
}

int chain_abi_last_executed_at(uint8_t *out, size_t cap, size_t *len, const uint8_t id[32])
{
    return chain__abi_by_id(out, cap, len, CHAIN_ABI_SIG_LAST_EXECUTED_AT, id);
}

int chain_abi_revoked(uint8_t *out, size_t cap, size_t *len, const uint8_t id[32])
{
    return chain__abi_by_id(out, cap, len, CHAIN_ABI_SIG_REVOKED, id);
}

/* ---- decoding ---- */

/* the word's value when it fits 64 bits; false when any of its high 24 bytes is set */
static bool chain__abi_word_u64(const uint8_t *word, uint64_t *v)
{
    uint8_t high = 0;
    for (size_t i = 0; i != CHAIN_ABI_WORD - 8; ++i)
        high |= word[i];
    if (high != 0)
        return false;
    uint64_t x = 0;
    for (size_t i = CHAIN_ABI_WORD - 8; i != CHAIN_ABI_WORD; ++i)
        x = x << 8 | word[i];
    *v = x;
    return true;
}

/* an address word: 12 zero bytes, then the address */
static int chain__abi_word_address(const uint8_t *word, chain_addr_t *a)
{
    for (size_t i = 0; i != CHAIN_ABI_WORD - CHAIN_ADDR_LEN; ++i) {
        if (word[i] != 0)
            return CHAIN_ERR_NONCANONICAL;
    }
    memcpy(a->bytes, word + CHAIN_ABI_WORD - CHAIN_ADDR_LEN, CHAIN_ADDR_LEN);
    return CHAIN_OK;
}

/* a uintN word with value at most `max` */
static int chain__abi_word_uint(const uint8_t *word, uint64_t max, uint64_t *v)
{
    uint64_t x;
    if (!chain__abi_word_u64(word, &x) || x > max)
        return CHAIN_ERR_NONCANONICAL;
    *v = x;
    return CHAIN_OK;
}

/*
 * The `bytes`/`string` whose offset is head word `index` of the `len` bytes at `data`: the
 * offset (from `data`) leads to a length word, then that many bytes. Every step is checked
 * against `len` before it is taken; an offset or length above 64 bits is beyond any data.
 */
static int chain__abi_dyn_at(const uint8_t *data, size_t len, size_t index, const uint8_t **s,
                             size_t *s_len)
{
    CHAIN_ASSERT(data != NULL || len == 0);
    if (len / CHAIN_ABI_WORD <= index)
        return CHAIN_ERR_TRUNCATED;
    uint64_t offset, n;
    if (!chain__abi_word_u64(data + index * CHAIN_ABI_WORD, &offset) ||
        offset > len - CHAIN_ABI_WORD)
        return CHAIN_ERR_TRUNCATED;
    const uint8_t *len_word = data + offset;
    size_t left = len - (size_t)offset - CHAIN_ABI_WORD;
    if (!chain__abi_word_u64(len_word, &n) || n > left)
        return CHAIN_ERR_TRUNCATED;
    *s = len_word + CHAIN_ABI_WORD;
    *s_len = (size_t)n;
    return CHAIN_OK;
}

int chain_abi_decode_u256(const uint8_t *data, size_t len, chain_u256_t *v)
{
    CHAIN_ASSERT(v != NULL);
    if (len != CHAIN_ABI_WORD)
        return CHAIN_ERR_LENGTH;
    chain_u256_from_be(v, data);
    return CHAIN_OK;
}

int chain_abi_decode_uint(const uint8_t *data, size_t len, uint64_t max, uint64_t *v)
{
    CHAIN_ASSERT(v != NULL);
    if (len != CHAIN_ABI_WORD)
        return CHAIN_ERR_LENGTH;
    return chain__abi_word_uint(data, max, v);
}

int chain_abi_decode_bool(const uint8_t *data, size_t len, bool *v)
{
    CHAIN_ASSERT(v != NULL);
    uint64_t x;
    int ret = chain_abi_decode_uint(data, len, 1, &x);
    if (ret == CHAIN_OK)
        *v = x == 1;
    return ret;
}

int chain_abi_decode_string(const uint8_t *data, size_t len, const uint8_t **s, size_t *s_len)
{
    CHAIN_ASSERT(s != NULL && s_len != NULL);
    return chain__abi_dyn_at(data, len, 0, s, s_len);
}

int chain_abi_decode_symbol(const uint8_t *data, size_t len, const uint8_t **s, size_t *s_len)
{
    CHAIN_ASSERT(s != NULL && s_len != NULL);
    /* a `string` takes at least two words, so exactly one word can only be a bytes32 */
    if (len == CHAIN_ABI_WORD) {
        const uint8_t *nul = memchr(data, 0, CHAIN_ABI_WORD);
        *s = data;
        *s_len = nul != NULL ? (size_t)(nul - data) : CHAIN_ABI_WORD;
        return CHAIN_OK;
    }
    return chain_abi_decode_string(data, len, s, s_len);
}

int chain_abi_decode_revert(const uint8_t *data, size_t len, chain_abi_revert_t *r)
{
    CHAIN_ASSERT(r != NULL);
    CHAIN_ASSERT(data != NULL || len == 0);
    memset(r, 0, sizeof(*r));
    if (len == 0) {
        r->kind = CHAIN_ABI_REVERT_EMPTY;
        return CHAIN_OK;
    }
    if (len < CHAIN_ABI_SELECTOR_LEN)
        return CHAIN_ERR_LENGTH;
    uint8_t error_sel[CHAIN_ABI_SELECTOR_LEN], panic_sel[CHAIN_ABI_SELECTOR_LEN];
    chain_abi_selector(CHAIN_ABI_SIG_ERROR, error_sel);
    chain_abi_selector(CHAIN_ABI_SIG_PANIC, panic_sel);
    const uint8_t *body = data + CHAIN_ABI_SELECTOR_LEN;
    size_t body_len = len - CHAIN_ABI_SELECTOR_LEN;
    memcpy(r->selector, data, CHAIN_ABI_SELECTOR_LEN);
    if (memcmp(data, error_sel, CHAIN_ABI_SELECTOR_LEN) == 0) {
        r->kind = CHAIN_ABI_REVERT_ERROR;
        return chain_abi_decode_string(body, body_len, &r->message, &r->message_len);
    }
    if (memcmp(data, panic_sel, CHAIN_ABI_SELECTOR_LEN) == 0) {
        r->kind = CHAIN_ABI_REVERT_PANIC;
        return chain_abi_decode_u256(body, body_len, &r->panic_code);
    }
    r->kind = CHAIN_ABI_REVERT_CUSTOM;
    return CHAIN_OK;
}

/* Executed: topics intentId, owner, recipient; data token, amount, count */
static int chain__abi_executed(chain_abi_event_t *ev, const uint8_t (*topics)[CHAIN_ABI_WORD],
                               size_t n_topics, const uint8_t *data, size_t len)
{
    if (n_topics != 4 || len != 3 * CHAIN_ABI_WORD)
        return CHAIN_ERR_LENGTH;
    uint64_t count;
    int ret;
    if ((ret = chain__abi_word_address(topics[2], &ev->owner)) != CHAIN_OK ||
        (ret = chain__abi_word_address(topics[3], &ev->recipient)) != CHAIN_OK ||
        (ret = chain__abi_word_address(data, &ev->token)) != CHAIN_OK ||
        (ret = chain__abi_word_uint(data + 2 * CHAIN_ABI_WORD, UINT32_MAX, &count)) != CHAIN_OK)
        return ret;
    chain_u256_from_be(&ev->amount, data + CHAIN_ABI_WORD);
    ev->count = (uint32_t)count;
    return CHAIN_OK;
}

/* ExecutionFailed: topic intentId; data count, reason (bytes) */
static int chain__abi_execution_failed(chain_abi_event_t *ev, size_t n_topics, const uint8_t *data,
                                       size_t len)
{
    if (n_topics != 2 || len < 3 * CHAIN_ABI_WORD)
        return CHAIN_ERR_LENGTH;
    uint64_t count;
    int ret = chain__abi_word_uint(data, UINT32_MAX, &count);
    if (ret != CHAIN_OK)
        return ret;
    ev->count = (uint32_t)count;
    return chain__abi_dyn_at(data, len, 1, &ev->reason, &ev->reason_len);
}

int chain_abi_decode_event(chain_abi_event_t *ev, const uint8_t (*topics)[CHAIN_ABI_WORD],
                           size_t n_topics, const uint8_t *data, size_t len)
{
    CHAIN_ASSERT(ev != NULL);
    CHAIN_ASSERT(topics != NULL || n_topics == 0);
    CHAIN_ASSERT(data != NULL || len == 0);
    if (n_topics == 0)
        return CHAIN_ERR_UNSUPPORTED; /* an anonymous event: none of ours */
    uint8_t executed[CHAIN_ABI_WORD], failed[CHAIN_ABI_WORD], revoked[CHAIN_ABI_WORD];
    chain_abi_topic(CHAIN_ABI_EVENT_EXECUTED, executed);
    chain_abi_topic(CHAIN_ABI_EVENT_EXECUTION_FAILED, failed);
    chain_abi_topic(CHAIN_ABI_EVENT_REVOKED, revoked);
    chain_abi_event_t e;
    memset(&e, 0, sizeof(e));
    int ret;
    if (memcmp(topics[0], executed, CHAIN_ABI_WORD) == 0) {
        e.kind = CHAIN_ABI_EVENT_KIND_EXECUTED;
        ret = chain__abi_executed(&e, topics, n_topics, data, len);
    } else if (memcmp(topics[0], failed, CHAIN_ABI_WORD) == 0) {
        e.kind = CHAIN_ABI_EVENT_KIND_EXECUTION_FAILED;
        ret = chain__abi_execution_failed(&e, n_topics, data, len);
    } else if (memcmp(topics[0], revoked, CHAIN_ABI_WORD) == 0) {
        e.kind = CHAIN_ABI_EVENT_KIND_REVOKED;
        ret = n_topics == 2 && len == 0 ? CHAIN_OK : CHAIN_ERR_LENGTH;
    } else {
        return CHAIN_ERR_UNSUPPORTED;
    }
    if (ret != CHAIN_OK)
        return ret;
    memcpy(e.intent_id, topics[1], CHAIN_ABI_WORD);
    *ev = e;
    return CHAIN_OK;
}
