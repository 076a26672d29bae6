#include <string.h>
#include "chain/rlp.h"

/* headers below this payload length are one byte; from it on, 1 + the length's own bytes */
#define CHAIN__RLP_SHORT_MAX 55
#define CHAIN__RLP_STRING 0x80
#define CHAIN__RLP_LIST 0xc0
/* one type byte and up to 8 length bytes */
#define CHAIN__RLP_HEADER_MAX 9

/* bytes in the minimal big-endian form of v > 0 */
static unsigned chain__rlp_be_len(uint64_t v)
{
    CHAIN_ASSERT(v != 0);
    return (64 - (unsigned)__builtin_clzll(v) + 7) / 8;
}

/* writes the header of a string (base 0x80) or list (base 0xc0) payload of `len` bytes */
static size_t chain__rlp_header(uint8_t out[CHAIN__RLP_HEADER_MAX], uint8_t base, size_t len)
{
    if (len <= CHAIN__RLP_SHORT_MAX) {
        out[0] = (uint8_t)(base + len);
        return 1;
    }
    unsigned n = chain__rlp_be_len(len);
    out[0] = (uint8_t)(base + CHAIN__RLP_SHORT_MAX + n);
    for (unsigned i = 0; i != n; ++i)
        out[1 + i] = (uint8_t)((uint64_t)len >> (8 * (n - 1 - i)));
    return 1 + n;
}

/* the one place that grows the output, so the capacity check is in one place too */
static void chain__rlp_append(chain_rlp_writer_t *w, const void *data, size_t len)
{
    if (w->err != CHAIN_OK)
        return;
    if (len > w->cap - w->len) {
        w->err = CHAIN_ERR_SHORT_BUFFER;
        return;
    }
    if (w->buf != NULL && len != 0)
        memcpy(w->buf + w->len, data, len);
    w->len += len;
}

void chain_rlp_writer_init(chain_rlp_writer_t *w, uint8_t *buf, size_t cap)
{
    CHAIN_ASSERT(w != NULL);
    w->buf = buf;
    w->cap = buf == NULL ? SIZE_MAX : cap;
    w->len = 0;
    w->depth = 0;
    w->err = CHAIN_OK;
}

void chain_rlp_put_bytes(chain_rlp_writer_t *w, const void *data, size_t len)
{
    CHAIN_ASSERT(data != NULL || len == 0);
    const uint8_t *p = data;
    if (len == 1 && p[0] < CHAIN__RLP_STRING) {
        chain__rlp_append(w, p, 1);
        return;
    }
    uint8_t hdr[CHAIN__RLP_HEADER_MAX];
    chain__rlp_append(w, hdr, chain__rlp_header(hdr, CHAIN__RLP_STRING, len));
    chain__rlp_append(w, p, len);
}

void chain_rlp_put_u64(chain_rlp_writer_t *w, uint64_t v)
{
    uint8_t be[8];
    unsigned n = v == 0 ? 0 : chain__rlp_be_len(v);
    for (unsigned i = 0; i != n; ++i)
        be[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    chain_rlp_put_bytes(w, be, n);
}

void chain_rlp_put_u256(chain_rlp_writer_t *w, const chain_u256_t *v)
{
    uint8_t be[32];
    chain_u256_to_be(v, be);
    unsigned n = chain_u256_byte_len(v);
    chain_rlp_put_bytes(w, be + 32 - n, n);
}

void chain_rlp_put_raw(chain_rlp_writer_t *w, const void *encoded, size_t len)
{
    CHAIN_ASSERT(encoded != NULL || len == 0);
    chain__rlp_append(w, encoded, len);
}

void chain_rlp_list_begin(chain_rlp_writer_t *w)
{
    if (w->err != CHAIN_OK)
        return;
    if (w->depth == CHAIN_RLP_MAX_DEPTH) {
        w->err = CHAIN_ERR_DEPTH;
        return;
    }
    /* the placeholder is the short-form header; list_end widens it when needed */
    uint8_t placeholder = CHAIN__RLP_LIST;
    chain__rlp_append(w, &placeholder, 1);
    if (w->err == CHAIN_OK)
        w->open[w->depth++] = w->len;
}

void chain_rlp_list_end(chain_rlp_writer_t *w)
{
    if (w->err != CHAIN_OK)
        return;
    if (w->depth == 0) {
        w->err = CHAIN_ERR_STATE;
        return;
    }
    size_t start = w->open[--w->depth];
    CHAIN_ASSERT(start >= 1 && start <= w->len);
    size_t payload_len = w->len - start;
    uint8_t hdr[CHAIN__RLP_HEADER_MAX];
    size_t hdr_len = chain__rlp_header(hdr, CHAIN__RLP_LIST, payload_len);
    size_t extra = hdr_len - 1;
    if (extra > w->cap - w->len) {
        w->err = CHAIN_ERR_SHORT_BUFFER;
        return;
    }
    if (w->buf != NULL) {
        memmove(w->buf + start + extra, w->buf + start, payload_len);
        memcpy(w->buf + start - 1, hdr, hdr_len);
    }
    w->len += extra;
}

int chain_rlp_writer_finish(chain_rlp_writer_t *w, size_t *len)
{
    CHAIN_ASSERT(len != NULL);
    if (w->err != CHAIN_OK)
        return w->err;
    if (w->depth != 0)
        return CHAIN_ERR_STATE;
    *len = w->len;
    return CHAIN_OK;
}

/*
 * Reads the `n` (1..8) length bytes of a long-form header, which must be minimal: no leading
 * zero byte, and a value that the short form could not express.
 */
static int chain__rlp_long_len(const uint8_t *p, size_t avail, unsigned n, size_t *len)
{
    CHAIN_ASSERT(n >= 1 && n <= 8);
    if (n > avail)
        return CHAIN_ERR_TRUNCATED;
    if (p[0] == 0)
        return CHAIN_ERR_NONCANONICAL;
    uint64_t v = 0;
    for (unsigned i = 0; i != n; ++i)
        v = v << 8 | p[i];
    if (v <= CHAIN__RLP_SHORT_MAX)
        return CHAIN_ERR_NONCANONICAL;
    /* anything that does not fit a size_t cannot fit in the input either */
    if (v > SIZE_MAX)
        return CHAIN_ERR_TRUNCATED;
    *len = (size_t)v;
    return CHAIN_OK;
}

int chain_rlp_decode_header(const uint8_t *src, size_t len, chain_rlp_item_t *item)
{
    CHAIN_ASSERT(item != NULL);
    CHAIN_ASSERT(src != NULL || len == 0);
    if (len == 0)
        return CHAIN_ERR_TRUNCATED;
    uint8_t b = src[0];
    bool is_list = b >= CHAIN__RLP_LIST;
    uint8_t base = is_list ? CHAIN__RLP_LIST : CHAIN__RLP_STRING;
    size_t hdr_len = 1, payload_len;
    if (b < CHAIN__RLP_STRING) {
        hdr_len = 0; /* the byte is its own payload */
        payload_len = 1;
    } else if (b <= base + CHAIN__RLP_SHORT_MAX) {
        payload_len = b - base;
    } else {
        unsigned n = b - base - CHAIN__RLP_SHORT_MAX;
        int ret = chain__rlp_long_len(src + 1, len - 1, n, &payload_len);
        if (ret != CHAIN_OK)
            return ret;
        hdr_len = 1 + n;
    }
    CHAIN_ASSERT(hdr_len <= len);
    if (payload_len > len - hdr_len)
        return CHAIN_ERR_TRUNCATED;
    /* a lone byte below 0x80 must stand for itself, not be wrapped as 0x81 xx */
    if (!is_list && hdr_len == 1 && payload_len == 1 && src[1] < CHAIN__RLP_STRING)
        return CHAIN_ERR_NONCANONICAL;
    item->payload = src + hdr_len;
    item->payload_len = payload_len;
    item->encoded_len = hdr_len + payload_len;
    item->is_list = is_list;
    item->depth = 0;
    return CHAIN_OK;
}

/*
 * Checks every item nested in `list`, iteratively: `end` is a stack of where each open list
 * stops. Each round reads one header (at least one byte) or closes one list, so there are at
 * most 2 * payload_len + 1 rounds.
 */
static int chain__rlp_validate_list(const chain_rlp_item_t *list)
{
    const uint8_t *end[CHAIN_RLP_MAX_DEPTH];
    unsigned depth = 1;
    end[0] = list->payload + list->payload_len;
    const uint8_t *pos = list->payload;
    size_t rounds_max = 2 * list->payload_len + 1;
    for (size_t round = 0; round <= rounds_max; ++round) {
        if (pos == end[depth - 1]) {
            if (--depth == 0)
                return CHAIN_OK;
            continue;
        }
        chain_rlp_item_t it;
        int ret = chain_rlp_decode_header(pos, (size_t)(end[depth - 1] - pos), &it);
        if (ret != CHAIN_OK)
            return ret;
        if (!it.is_list) {
            pos += it.encoded_len;
            continue;
        }
        if (depth == CHAIN_RLP_MAX_DEPTH)
            return CHAIN_ERR_DEPTH;
        end[depth++] = it.payload + it.payload_len;
        pos = it.payload;
    }
    CHAIN_ASSERT(!"RLP validation did not terminate within its bound");
    return CHAIN_ERR_STATE;
}

int chain_rlp_decode(const uint8_t *src, size_t len, chain_rlp_item_t *top)
{
    chain_rlp_item_t item;
    int ret = chain_rlp_decode_header(src, len, &item);
    if (ret != CHAIN_OK)
        return ret;
    if (item.encoded_len != len)
        return CHAIN_ERR_TRAILING;
    if (item.is_list && (ret = chain__rlp_validate_list(&item)) != CHAIN_OK)
        return ret;
    *top = item;
    return CHAIN_OK;
}

int chain_rlp_iter_init(chain_rlp_iter_t *it, const chain_rlp_item_t *list)
{
    CHAIN_ASSERT(it != NULL && list != NULL);
    if (!list->is_list)
        return CHAIN_ERR_TYPE;
    it->pos = list->payload;
    it->left = list->payload_len;
    it->depth = list->depth + 1;
    return CHAIN_OK;
}

int chain_rlp_iter_next(chain_rlp_iter_t *it, chain_rlp_item_t *item)
{
    if (it->left == 0)
        return CHAIN_RLP_END;
    int ret = chain_rlp_decode_header(it->pos, it->left, item);
    if (ret != CHAIN_OK)
        return ret;
    /* a list here opens list number depth + 1 */
    if (item->is_list && it->depth >= CHAIN_RLP_MAX_DEPTH)
        return CHAIN_ERR_DEPTH;
    item->depth = it->depth;
    CHAIN_ASSERT(item->encoded_len <= it->left);
    it->pos += item->encoded_len;
    it->left -= item->encoded_len;
    return CHAIN_OK;
}

int chain_rlp_item_bytes(const chain_rlp_item_t *item, const uint8_t **data, size_t *len)
{
    if (item->is_list)
        return CHAIN_ERR_TYPE;
    *data = item->payload;
    *len = item->payload_len;
    return CHAIN_OK;
}

int chain_rlp_item_fixed(const chain_rlp_item_t *item, uint8_t *dst, size_t len)
{
    if (item->is_list)
        return CHAIN_ERR_TYPE;
    if (item->payload_len != len)
        return CHAIN_ERR_LENGTH;
    memcpy(dst, item->payload, len);
    return CHAIN_OK;
}

/* the integer rules shared by u64 and u256: a string, minimal, at most `max_len` bytes */
static int chain__rlp_check_int(const chain_rlp_item_t *item, size_t max_len)
{
    if (item->is_list)
        return CHAIN_ERR_TYPE;
    if (item->payload_len != 0 && item->payload[0] == 0)
        return CHAIN_ERR_NONCANONICAL;
    if (item->payload_len > max_len)
        return CHAIN_ERR_OVERFLOW;
    return CHAIN_OK;
}

int chain_rlp_item_u64(const chain_rlp_item_t *item, uint64_t *v)
{
    int ret = chain__rlp_check_int(item, 8);
    if (ret != CHAIN_OK)
        return ret;
    uint64_t x = 0;
    for (size_t i = 0; i != item->payload_len; ++i)
        x = x << 8 | item->payload[i];
    *v = x;
    return CHAIN_OK;
}

int chain_rlp_item_u256(const chain_rlp_item_t *item, chain_u256_t *v)
{
    int ret = chain__rlp_check_int(item, 32);
    if (ret != CHAIN_OK)
        return ret;
    return chain_u256_from_be_var(v, item->payload, item->payload_len);
}
