#include <stdlib.h>
#include <string.h>
#include "chain/keccak.h"
#include "chain/rlp.h"
#include "chain/tx.h"

/* the fields of a type 2 and of a legacy signed transaction */
#define CHAIN__TX_1559_FIELDS 12
#define CHAIN__TX_LEGACY_FIELDS 9

/* checks what encoding needs of `tx`, before anything is written */
static int chain__tx_check(const chain_tx_t *tx)
{
    CHAIN_ASSERT(tx != NULL);
    CHAIN_ASSERT(tx->data != NULL || tx->data_len == 0);
    if (tx->type == CHAIN_TX_EIP1559)
        return CHAIN_OK;
    CHAIN_ASSERT(tx->type == CHAIN_TX_LEGACY);
    if (tx->chain_id == 0)
        return CHAIN_ERR_UNSUPPORTED;
    if (tx->chain_id > CHAIN_TX_LEGACY_CHAIN_ID_MAX)
        return CHAIN_ERR_OVERFLOW;
    return CHAIN_OK;
}

/* the fields common to both forms, from `to` through `data` */
static void chain__tx_put_call(chain_rlp_writer_t *w, const chain_tx_t *tx)
{
    chain_rlp_put_u64(w, tx->gas);
    chain_rlp_put_bytes(w, tx->to.bytes, tx->has_to ? CHAIN_ADDR_LEN : 0);
    chain_rlp_put_u256(w, &tx->value);
    chain_rlp_put_bytes(w, tx->data, tx->data_len);
}

/* r and s are RLP integers: minimal big-endian, leading zero bytes dropped */
static void chain__tx_put_rs(chain_rlp_writer_t *w, const chain_sig_t *sig)
{
    chain_u256_t r, s;
    chain_u256_from_be(&r, sig->r);
    chain_u256_from_be(&s, sig->s);
    chain_rlp_put_u256(w, &r);
    chain_rlp_put_u256(w, &s);
}

/* writes the whole transaction; `sig` NULL for the signing payload */
static int chain__tx_encode(const chain_tx_t *tx, const chain_sig_t *sig, uint8_t *buf, size_t cap,
                            size_t *len)
{
    int ret = chain__tx_check(tx);
    if (ret != CHAIN_OK)
        return ret;
    CHAIN_ASSERT(sig == NULL || sig->recid <= 1);
    bool typed = tx->type == CHAIN_TX_EIP1559;
    /* the type byte goes first, then the list (EIP-2718) */
    if (typed && buf != NULL && cap == 0)
        return CHAIN_ERR_SHORT_BUFFER;
    if (typed && buf != NULL)
        buf[0] = CHAIN_TX_EIP1559;
    size_t skip = typed ? 1 : 0;
    chain_rlp_writer_t w;
    chain_rlp_writer_init(&w, buf != NULL ? buf + skip : NULL, cap - (buf != NULL ? skip : 0));
    chain_rlp_list_begin(&w);
    if (typed) {
        chain_rlp_put_u64(&w, tx->chain_id);
        chain_rlp_put_u64(&w, tx->nonce);
        chain_rlp_put_u256(&w, &tx->max_priority_fee_per_gas);
        chain_rlp_put_u256(&w, &tx->max_fee_per_gas);
        chain__tx_put_call(&w, tx);
        chain_rlp_list_begin(&w); /* the access list, empty */
        chain_rlp_list_end(&w);
        if (sig != NULL) {
            chain_rlp_put_u64(&w, sig->recid);
            chain__tx_put_rs(&w, sig);
        }
    } else {
        chain_rlp_put_u64(&w, tx->nonce);
        chain_rlp_put_u256(&w, &tx->gas_price);
        chain__tx_put_call(&w, tx);
        if (sig != NULL) {
            chain_rlp_put_u64(&w, tx->chain_id * 2 + 35 + sig->recid);
            chain__tx_put_rs(&w, sig);
        } else {
            /* EIP-155: the signing payload ends with chainId, 0, 0 */
            chain_rlp_put_u64(&w, tx->chain_id);
            chain_rlp_put_u64(&w, 0);
            chain_rlp_put_u64(&w, 0);
        }
    }
    chain_rlp_list_end(&w);
    size_t n;
    if ((ret = chain_rlp_writer_finish(&w, &n)) != CHAIN_OK)
        return ret;
    *len = n + skip;
    return CHAIN_OK;
}

int chain_tx_encode_unsigned(const chain_tx_t *tx, uint8_t *buf, size_t cap, size_t *len)
{
    CHAIN_ASSERT(len != NULL);
    return chain__tx_encode(tx, NULL, buf, cap, len);
}

int chain_tx_encode_signed(const chain_tx_t *tx, const chain_sig_t *sig, uint8_t *buf, size_t cap,
                           size_t *len)
{
    CHAIN_ASSERT(sig != NULL && len != NULL);
    return chain__tx_encode(tx, sig, buf, cap, len);
}

int chain_tx_signing_hash(const chain_tx_t *tx, uint8_t out[CHAIN_TX_HASH_LEN])
{
    CHAIN_ASSERT(out != NULL);
    size_t need;
    int ret = chain_tx_encode_unsigned(tx, NULL, 0, &need);
    if (ret != CHAIN_OK)
        return ret;
    /* the payload holds the whole call data, so its size is the caller's, not ours */
    uint8_t *buf = malloc(need);
    if (buf == NULL)
        return CHAIN_ERR_NOMEM;
    size_t len;
    ret = chain_tx_encode_unsigned(tx, buf, need, &len);
    CHAIN_ASSERT(ret == CHAIN_OK && len == need);
    chain_keccak256(buf, len, out);
    free(buf);
    return CHAIN_OK;
}

int chain_tx_sign(const chain_tx_t *tx, const chain_key_t *key, uint8_t *raw, size_t cap,
                  size_t *raw_len, uint8_t tx_hash[CHAIN_TX_HASH_LEN])
{
    CHAIN_ASSERT(key != NULL && raw != NULL && raw_len != NULL);
    /* the signing payload is never longer than the signed form (v, r, s take at least the
     * room of chainId, 0, 0), so `raw` serves as its scratch space: no allocation */
    size_t len;
    int ret = chain_tx_encode_unsigned(tx, raw, cap, &len);
    if (ret != CHAIN_OK)
        return ret;
    uint8_t hash[CHAIN_TX_HASH_LEN];
    chain_keccak256(raw, len, hash);
    chain_sig_t sig;
    chain_key_sign(key, hash, &sig);
    if ((ret = chain_tx_encode_signed(tx, &sig, raw, cap, &len)) != CHAIN_OK)
        return ret;
    *raw_len = len;
    if (tx_hash != NULL)
        chain_tx_hash(raw, len, tx_hash);
    return CHAIN_OK;
}

void chain_tx_hash(const uint8_t *raw, size_t len, uint8_t out[CHAIN_TX_HASH_LEN])
{
    chain_keccak256(raw, len, out);
}

/* ---- decoding ---- */

/* reads the fields of a transaction list in order; the first error sticks, as in the writer */
typedef struct st_chain__tx_reader_t {
    chain_rlp_iter_t it;
    int err;
} chain__tx_reader_t;

static bool chain__rd_next(chain__tx_reader_t *rd, chain_rlp_item_t *item)
{
    if (rd->err != CHAIN_OK)
        return false;
    int ret = chain_rlp_iter_next(&rd->it, item);
    /* running out of fields is a wrong field count, not an RLP fault */
    rd->err = ret == CHAIN_RLP_END ? CHAIN_ERR_LENGTH : ret;
    return rd->err == CHAIN_OK;
}

static void chain__rd_u64(chain__tx_reader_t *rd, uint64_t *v)
{
    chain_rlp_item_t item;
    if (chain__rd_next(rd, &item))
        rd->err = chain_rlp_item_u64(&item, v);
}

static void chain__rd_u256(chain__tx_reader_t *rd, chain_u256_t *v)
{
    chain_rlp_item_t item;
    if (chain__rd_next(rd, &item))
        rd->err = chain_rlp_item_u256(&item, v);
}

/* gas, to, value, data: the fields both forms share, in this order */
static void chain__rd_call(chain__tx_reader_t *rd, chain_tx_t *tx)
{
    chain__rd_u64(rd, &tx->gas);
    chain_rlp_item_t item;
    if (chain__rd_next(rd, &item)) {
        /* an empty `to` is a contract creation */
        tx->has_to = !item.is_list && item.payload_len != 0;
        rd->err = tx->has_to ? chain_rlp_item_fixed(&item, tx->to.bytes, CHAIN_ADDR_LEN)
                             : (item.is_list ? CHAIN_ERR_TYPE : CHAIN_OK);
    }
    chain__rd_u256(rd, &tx->value);
    if (chain__rd_next(rd, &item))
        rd->err = chain_rlp_item_bytes(&item, &tx->data, &tx->data_len);
}

/* r and s: non-zero integers, s low (Homestead); the caller sets recid */
static void chain__rd_rs(chain__tx_reader_t *rd, chain_sig_t *sig)
{
    chain_u256_t r, s;
    chain__rd_u256(rd, &r);
    chain__rd_u256(rd, &s);
    if (rd->err != CHAIN_OK)
        return;
    if (chain_u256_is_zero(&r) || chain_u256_is_zero(&s)) {
        rd->err = CHAIN_ERR_SIGNATURE;
        return;
    }
    chain_u256_to_be(&r, sig->r);
    chain_u256_to_be(&s, sig->s);
    if (!chain_sig_is_low_s(sig))
        rd->err = CHAIN_ERR_SIGNATURE;
}

/* ends reading: every field was there, and no more */
static int chain__rd_finish(chain__tx_reader_t *rd)
{
    if (rd->err != CHAIN_OK)
        return rd->err;
    chain_rlp_item_t extra;
    return chain_rlp_iter_next(&rd->it, &extra) == CHAIN_RLP_END ? CHAIN_OK : CHAIN_ERR_LENGTH;
}

static int chain__tx_decode_1559(chain_tx_t *tx, chain_sig_t *sig, chain__tx_reader_t *rd)
{
    tx->type = CHAIN_TX_EIP1559;
    chain__rd_u64(rd, &tx->chain_id);
    chain__rd_u64(rd, &tx->nonce);
    chain__rd_u256(rd, &tx->max_priority_fee_per_gas);
    chain__rd_u256(rd, &tx->max_fee_per_gas);
    chain__rd_call(rd, tx);
    chain_rlp_item_t item;
    if (chain__rd_next(rd, &item) && (!item.is_list || item.payload_len != 0))
        rd->err = item.is_list ? CHAIN_ERR_UNSUPPORTED : CHAIN_ERR_TYPE;
    uint64_t y_parity = 0;
    chain__rd_u64(rd, &y_parity);
    if (rd->err == CHAIN_OK && y_parity > 1)
        rd->err = CHAIN_ERR_SIGNATURE;
    sig->recid = (uint8_t)y_parity;
    chain__rd_rs(rd, sig);
    return chain__rd_finish(rd);
}

static int chain__tx_decode_legacy(chain_tx_t *tx, chain_sig_t *sig, chain__tx_reader_t *rd)
{
    tx->type = CHAIN_TX_LEGACY;
    chain__rd_u64(rd, &tx->nonce);
    chain__rd_u256(rd, &tx->gas_price);
    chain__rd_call(rd, tx);
    uint64_t v = 0;
    chain__rd_u64(rd, &v);
    if (rd->err == CHAIN_OK) {
        /* 27 and 28 are signatures from before EIP-155, valid on every chain: the engine
         * never makes one, and whoever sends one is not to be trusted with replay */
        if (v == 27 || v == 28) {
            rd->err = CHAIN_ERR_UNSUPPORTED;
        } else if (v >= 35) {
            tx->chain_id = (v - 35) / 2;
            sig->recid = (uint8_t)((v - 35) % 2);
            /* the chain ids chain_tx_encode_unsigned takes, so that what decodes re-encodes */
            if (tx->chain_id == 0)
                rd->err = CHAIN_ERR_UNSUPPORTED;
            else if (tx->chain_id > CHAIN_TX_LEGACY_CHAIN_ID_MAX)
                rd->err = CHAIN_ERR_OVERFLOW;
        } else {
            rd->err = CHAIN_ERR_SIGNATURE;
        }
    }
    chain__rd_rs(rd, sig);
    return chain__rd_finish(rd);
}

int chain_tx_decode(chain_tx_t *tx, chain_sig_t *sig, const uint8_t *raw, size_t len)
{
    CHAIN_ASSERT(tx != NULL && sig != NULL);
    CHAIN_ASSERT(raw != NULL || len == 0);
    if (len == 0)
        return CHAIN_ERR_TRUNCATED;
    /* EIP-2718: a first byte below 0x80 is a type; from 0xc0 on, a legacy RLP list */
    bool typed = raw[0] < 0x80;
    if (typed && raw[0] != CHAIN_TX_EIP1559)
        return CHAIN_ERR_UNSUPPORTED;
    if (!typed && raw[0] < 0xc0)
        return CHAIN_ERR_TYPE;
    chain_rlp_item_t top;
    size_t skip = typed ? 1 : 0;
    int ret = chain_rlp_decode(raw + skip, len - skip, &top);
    if (ret != CHAIN_OK)
        return ret;
    chain__tx_reader_t rd = {.err = CHAIN_OK};
    if ((ret = chain_rlp_iter_init(&rd.it, &top)) != CHAIN_OK)
        return ret;
    chain_tx_t t = {0};
    chain_sig_t s;
    memset(&s, 0, sizeof(s));
    ret = typed ? chain__tx_decode_1559(&t, &s, &rd) : chain__tx_decode_legacy(&t, &s, &rd);
    if (ret != CHAIN_OK)
        return ret;
    *tx = t;
    *sig = s;
    return CHAIN_OK;
}

int chain_tx_recover_sender(chain_addr_t *from, const chain_tx_t *tx, const chain_sig_t *sig)
{
    CHAIN_ASSERT(from != NULL && sig != NULL);
    uint8_t hash[CHAIN_TX_HASH_LEN];
    int ret = chain_tx_signing_hash(tx, hash);
    if (ret != CHAIN_OK)
        return ret;
    return chain_secp_recover(from, hash, sig);
}
