#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include "chain/rlp.h"
#include "chain/tx.h"
#include "test_chain_fixtures.h"

/* EIP-155's worked example, with the values the EIP gives */
#define EIP155_KEY "0x4646464646464646464646464646464646464646464646464646464646464646"
#define EIP155_SIGNING_DATA                                                                        \
    "0xec098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a764000080018080"
#define EIP155_SIGNING_HASH "0xdaf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53"
#define EIP155_RAW                                                                                 \
    "0xf86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a0" \
    "28ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb70330"   \
    "4b3800ccf555c9f3dc64214b297fb1966a3b6d83"
#define EIP155_TX_HASH "0x33469b22e9f636356c4160a87eb19df52b7412e8eac32a4a55ffe88ea8350788"
#define EIP155_FROM "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F"

static chain_tx_t eip155_tx(void)
{
    chain_tx_t tx;
    memset(&tx, 0, sizeof(tx));
    tx.type = CHAIN_TX_LEGACY;
    tx.chain_id = 1;
    tx.nonce = 9;
    tx.gas_price = chain_u256_from_u64(20000000000);
    tx.gas = 21000;
    tx.has_to = true;
    tx.to = fx_addr_str("0x3535353535353535353535353535353535353535");
    tx.value = chain_u256_from_u64(1000000000000000000);
    return tx;
}

static chain_key_t *load_key(const char *hex)
{
    chain_key_t *key;
    cr_assert_eq(chain_key_from_hex(&key, hex, strlen(hex)), CHAIN_OK);
    return key;
}

/* a heap copy of hex bytes, exactly sized so that ASan catches a read past the end */
static uint8_t *hex_dup(const char *hex, size_t *len)
{
    size_t cap = strlen(hex) / 2 + 1;
    uint8_t *buf = malloc(cap);
    cr_assert_not_null(buf);
    *len = fx_hex(hex, buf, cap);
    return buf;
}

Test(chain_tx, eip155_example)
{
    chain_tx_t tx = eip155_tx();
    uint8_t buf[256], hash[32];
    size_t len;
    char hex[600];
    cr_assert_eq(chain_tx_encode_unsigned(&tx, buf, sizeof(buf), &len), CHAIN_OK);
    cr_assert_str_eq(fx_to_hex(hex, buf, len), EIP155_SIGNING_DATA);
    cr_assert_eq(chain_tx_signing_hash(&tx, hash), CHAIN_OK);
    cr_assert_str_eq(fx_to_hex(hex, hash, 32), EIP155_SIGNING_HASH);

    chain_key_t *key = load_key(EIP155_KEY);
    cr_assert_eq(chain_tx_sign(&tx, key, buf, sizeof(buf), &len, hash), CHAIN_OK);
    cr_assert_str_eq(fx_to_hex(hex, buf, len), EIP155_RAW);
    cr_assert_str_eq(fx_to_hex(hex, hash, 32), EIP155_TX_HASH);
    chain_key_free(key);

    chain_tx_t back;
    chain_sig_t sig;
    chain_addr_t from, want = fx_addr_str(EIP155_FROM);
    cr_assert_eq(chain_tx_decode(&back, &sig, buf, len), CHAIN_OK);
    cr_assert_eq(back.chain_id, 1);
    cr_assert_eq(back.nonce, 9);
    cr_assert_eq(sig.recid, 0);
    cr_assert_eq(chain_tx_recover_sender(&from, &back, &sig), CHAIN_OK);
    cr_assert(chain_addr_eq(&from, &want));
}

static chain_tx_t fx_tx(json_t *o)
{
    chain_tx_t tx;
    memset(&tx, 0, sizeof(tx));
    json_t *type = fx_get(o, "type");
    tx.type = json_integer_value(type) == 2 ? CHAIN_TX_EIP1559 : CHAIN_TX_LEGACY;
    tx.chain_id = fx_u64(o, "chainId");
    tx.nonce = fx_u64(o, "nonce");
    tx.gas = fx_u64(o, "gasLimit");
    tx.value = fx_u256(o, "value");
    if (tx.type == CHAIN_TX_EIP1559) {
        tx.max_priority_fee_per_gas = fx_u256(o, "maxPriorityFeePerGas");
        tx.max_fee_per_gas = fx_u256(o, "maxFeePerGas");
    } else {
        tx.gas_price = fx_u256(o, "gasPrice");
    }
    json_t *to = fx_get(o, "to");
    tx.has_to = json_is_string(to);
    if (tx.has_to)
        tx.to = fx_addr(o, "to");
    return tx;
}

static void assert_tx_eq(const chain_tx_t *a, const chain_tx_t *b, size_t i)
{
    cr_assert_eq(a->type, b->type, "tx %zu", i);
    cr_assert_eq(a->chain_id, b->chain_id, "tx %zu", i);
    cr_assert_eq(a->nonce, b->nonce, "tx %zu", i);
    cr_assert_eq(a->gas, b->gas, "tx %zu", i);
    cr_assert_eq(chain_u256_cmp(&a->value, &b->value), 0, "tx %zu", i);
    cr_assert_eq(chain_u256_cmp(&a->gas_price, &b->gas_price), 0, "tx %zu", i);
    cr_assert_eq(chain_u256_cmp(&a->max_fee_per_gas, &b->max_fee_per_gas), 0, "tx %zu", i);
    cr_assert_eq(chain_u256_cmp(&a->max_priority_fee_per_gas, &b->max_priority_fee_per_gas), 0);
    cr_assert_eq(a->has_to, b->has_to, "tx %zu", i);
    cr_assert(!a->has_to || chain_addr_eq(&a->to, &b->to), "tx %zu", i);
    cr_assert_eq(a->data_len, b->data_len, "tx %zu", i);
    cr_assert(a->data_len == 0 || memcmp(a->data, b->data, a->data_len) == 0, "tx %zu", i);
}

Test(chain_tx, ethers_transactions)
{
    json_t *root = fx_load();
    json_t *v;
    size_t i;
    json_array_foreach(fx_get(root, "transactions"), i, v)
    {
        json_t *o = fx_get(v, "tx");
        chain_tx_t tx = fx_tx(o);
        uint8_t data[512];
        tx.data_len = fx_hex(fx_str(o, "data"), data, sizeof(data));
        tx.data = data;

        size_t cap = chain_tx_raw_size_max(tx.data_len), len;
        uint8_t *buf = malloc(cap), hash[32];
        char *hex = malloc(2 * cap + 3);
        cr_assert_eq(chain_tx_encode_unsigned(&tx, buf, cap, &len), CHAIN_OK);
        cr_assert_str_eq(fx_to_hex(hex, buf, len), fx_str(v, "unsignedSerialized"), "tx %zu", i);
        cr_assert_eq(chain_tx_signing_hash(&tx, hash), CHAIN_OK);
        cr_assert_str_eq(fx_to_hex(hex, hash, 32), fx_str(v, "signingHash"), "tx %zu", i);

        chain_key_t *key = load_key(fx_str(v, "privateKey"));
        cr_assert_eq(chain_tx_sign(&tx, key, buf, cap, &len, hash), CHAIN_OK);
        cr_assert_str_eq(fx_to_hex(hex, buf, len), fx_str(v, "raw"), "tx %zu", i);
        cr_assert_str_eq(fx_to_hex(hex, hash, 32), fx_str(v, "hash"), "tx %zu", i);
        chain_key_free(key);

        /* decode ethers' bytes: same fields, the sender, and the same bytes when re-encoded */
        size_t raw_len;
        uint8_t *raw = hex_dup(fx_str(v, "raw"), &raw_len);
        chain_tx_t back;
        chain_sig_t sig;
        cr_assert_eq(chain_tx_decode(&back, &sig, raw, raw_len), CHAIN_OK, "tx %zu", i);
        assert_tx_eq(&back, &tx, i);
        chain_addr_t from, want = fx_addr(v, "from");
        cr_assert_eq(chain_tx_recover_sender(&from, &back, &sig), CHAIN_OK);
        cr_assert(chain_addr_eq(&from, &want), "tx %zu", i);
        cr_assert_eq(chain_tx_encode_signed(&back, &sig, buf, cap, &len), CHAIN_OK);
        cr_assert_eq(len, raw_len);
        cr_assert_arr_eq(buf, raw, len, "tx %zu", i);
        free(raw);
        free(buf);
        free(hex);
    }
    json_decref(root);
}

Test(chain_tx, refuses_what_it_cannot_sign)
{
    chain_tx_t tx = eip155_tx();
    uint8_t buf[256], hash[32];
    size_t len;
    tx.chain_id = 0;
    cr_assert_eq(chain_tx_encode_unsigned(&tx, buf, sizeof(buf), &len), CHAIN_ERR_UNSUPPORTED);
    cr_assert_eq(chain_tx_signing_hash(&tx, hash), CHAIN_ERR_UNSUPPORTED);
    tx.chain_id = CHAIN_TX_LEGACY_CHAIN_ID_MAX + 1;
    cr_assert_eq(chain_tx_signing_hash(&tx, hash), CHAIN_ERR_OVERFLOW);
    tx.chain_id = CHAIN_TX_LEGACY_CHAIN_ID_MAX;
    cr_assert_eq(chain_tx_signing_hash(&tx, hash), CHAIN_OK);

    tx = eip155_tx();
    chain_key_t *key = load_key(EIP155_KEY);
    for (size_t cap = 0; cap != 110; ++cap) /* the signed form is 110 bytes */
        cr_assert_eq(chain_tx_sign(&tx, key, buf, cap, &len, NULL), CHAIN_ERR_SHORT_BUFFER);
    cr_assert_eq(chain_tx_sign(&tx, key, buf, 110, &len, NULL), CHAIN_OK);
    tx.type = CHAIN_TX_EIP1559;
    cr_assert_eq(chain_tx_sign(&tx, key, buf, 0, &len, NULL), CHAIN_ERR_SHORT_BUFFER);
    chain_key_free(key);
}

/* the first 1559 fixture, decoded and re-encoded with one field changed by `edit` */
typedef void (*edit_fn)(chain_rlp_writer_t *w, int field, const chain_rlp_item_t *item);

static int decode_edited(edit_fn edit)
{
    json_t *root = fx_load();
    json_t *v = json_array_get(fx_get(root, "transactions"), 3);
    size_t raw_len;
    uint8_t *raw = hex_dup(fx_str(v, "raw"), &raw_len);
    json_decref(root);
    cr_assert_eq(raw[0], 2);
    chain_rlp_item_t top, item;
    chain_rlp_iter_t it;
    cr_assert_eq(chain_rlp_decode(raw + 1, raw_len - 1, &top), CHAIN_OK);
    cr_assert_eq(chain_rlp_iter_init(&it, &top), CHAIN_OK);
    uint8_t out[512];
    out[0] = 2;
    chain_rlp_writer_t w;
    chain_rlp_writer_init(&w, out + 1, sizeof(out) - 1);
    chain_rlp_list_begin(&w);
    for (int field = 0; chain_rlp_iter_next(&it, &item) == CHAIN_OK; ++field)
        edit(&w, field, &item);
    edit(&w, -1, NULL); /* a chance to append */
    chain_rlp_list_end(&w);
    size_t len;
    cr_assert_eq(chain_rlp_writer_finish(&w, &len), CHAIN_OK);
    free(raw);
    uint8_t *exact = malloc(len + 1);
    memcpy(exact, out, len + 1);
    chain_tx_t tx;
    chain_sig_t sig;
    int ret = chain_tx_decode(&tx, &sig, exact, len + 1);
    free(exact);
    return ret;
}

static void keep(chain_rlp_writer_t *w, const chain_rlp_item_t *item)
{
    /* re-emit the item as it was: header and payload are contiguous in the input */
    const uint8_t *start = item->payload + item->payload_len - item->encoded_len;
    chain_rlp_put_raw(w, start, item->encoded_len);
}

static void edit_none(chain_rlp_writer_t *w, int f, const chain_rlp_item_t *it)
{
    if (f >= 0)
        keep(w, it);
}
static void edit_extra(chain_rlp_writer_t *w, int f, const chain_rlp_item_t *it)
{
    if (f >= 0)
        keep(w, it);
    else
        chain_rlp_put_u64(w, 1);
}
static void edit_drop_s(chain_rlp_writer_t *w, int f, const chain_rlp_item_t *it)
{
    if (f >= 0 && f != 11)
        keep(w, it);
}
static void edit_to_19(chain_rlp_writer_t *w, int f, const chain_rlp_item_t *it)
{
    if (f == 5)
        chain_rlp_put_bytes(w, it->payload, 19);
    else if (f >= 0)
        keep(w, it);
}
static void edit_to_list(chain_rlp_writer_t *w, int f, const chain_rlp_item_t *it)
{
    if (f == 5) {
        chain_rlp_list_begin(w);
        chain_rlp_list_end(w);
    } else if (f >= 0)
        keep(w, it);
}
static void edit_nonce_padded(chain_rlp_writer_t *w, int f, const chain_rlp_item_t *it)
{
    static const uint8_t padded[] = {0x00, 0x01};
    if (f == 1)
        chain_rlp_put_bytes(w, padded, sizeof(padded));
    else if (f >= 0)
        keep(w, it);
}
static void edit_access_list(chain_rlp_writer_t *w, int f, const chain_rlp_item_t *it)
{
    if (f == 8) {
        uint8_t addr[20] = {0};
        chain_rlp_list_begin(w);
        chain_rlp_list_begin(w);
        chain_rlp_put_bytes(w, addr, sizeof(addr));
        chain_rlp_list_begin(w);
        chain_rlp_list_end(w);
        chain_rlp_list_end(w);
        chain_rlp_list_end(w);
    } else if (f >= 0)
        keep(w, it);
}
static void edit_access_string(chain_rlp_writer_t *w, int f, const chain_rlp_item_t *it)
{
    if (f == 8)
        chain_rlp_put_u64(w, 0);
    else if (f >= 0)
        keep(w, it);
}
static void edit_parity_2(chain_rlp_writer_t *w, int f, const chain_rlp_item_t *it)
{
    if (f == 9)
        chain_rlp_put_u64(w, 2);
    else if (f >= 0)
        keep(w, it);
}
static void edit_r_zero(chain_rlp_writer_t *w, int f, const chain_rlp_item_t *it)
{
    if (f == 10)
        chain_rlp_put_u64(w, 0);
    else if (f >= 0)
        keep(w, it);
}
static void edit_s_high(chain_rlp_writer_t *w, int f, const chain_rlp_item_t *it)
{
    static const uint8_t high[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe};
    if (f == 11)
        chain_rlp_put_bytes(w, high, sizeof(high));
    else if (f >= 0)
        keep(w, it);
}
static void edit_s_33(chain_rlp_writer_t *w, int f, const chain_rlp_item_t *it)
{
    uint8_t big[33];
    memset(big, 0x11, sizeof(big));
    if (f == 11)
        chain_rlp_put_bytes(w, big, sizeof(big));
    else if (f >= 0)
        keep(w, it);
}

Test(chain_tx, malformed_type2)
{
    cr_assert_eq(decode_edited(edit_none), CHAIN_OK, "the unedited transaction decodes");
    cr_assert_eq(decode_edited(edit_extra), CHAIN_ERR_LENGTH);
    cr_assert_eq(decode_edited(edit_drop_s), CHAIN_ERR_LENGTH);
    cr_assert_eq(decode_edited(edit_to_19), CHAIN_ERR_LENGTH);
    cr_assert_eq(decode_edited(edit_to_list), CHAIN_ERR_TYPE);
    cr_assert_eq(decode_edited(edit_nonce_padded), CHAIN_ERR_NONCANONICAL);
    cr_assert_eq(decode_edited(edit_access_list), CHAIN_ERR_UNSUPPORTED);
    cr_assert_eq(decode_edited(edit_access_string), CHAIN_ERR_TYPE);
    cr_assert_eq(decode_edited(edit_parity_2), CHAIN_ERR_SIGNATURE);
    cr_assert_eq(decode_edited(edit_r_zero), CHAIN_ERR_SIGNATURE);
    cr_assert_eq(decode_edited(edit_s_high), CHAIN_ERR_SIGNATURE);
    cr_assert_eq(decode_edited(edit_s_33), CHAIN_ERR_OVERFLOW);
}

/* the EIP-155 raw transaction with v replaced */
static int decode_legacy_v(uint64_t v)
{
    chain_tx_t tx = eip155_tx();
    chain_sig_t sig;
    memset(&sig, 0, sizeof(sig));
    fx_hex_exact("0x28ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276", sig.r, 32);
    fx_hex_exact("0x67cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83", sig.s, 32);
    /* encode with a chain id that gives the wanted v, or patch v by hand below */
    uint8_t buf[256];
    chain_rlp_writer_t w;
    chain_rlp_writer_init(&w, buf, sizeof(buf));
    chain_rlp_list_begin(&w);
    chain_rlp_put_u64(&w, tx.nonce);
    chain_rlp_put_u256(&w, &tx.gas_price);
    chain_rlp_put_u64(&w, tx.gas);
    chain_rlp_put_bytes(&w, tx.to.bytes, 20);
    chain_rlp_put_u256(&w, &tx.value);
    chain_rlp_put_bytes(&w, NULL, 0);
    chain_rlp_put_u64(&w, v);
    chain_rlp_put_bytes(&w, sig.r, 32);
    chain_rlp_put_bytes(&w, sig.s, 32);
    chain_rlp_list_end(&w);
    size_t len;
    cr_assert_eq(chain_rlp_writer_finish(&w, &len), CHAIN_OK);
    chain_tx_t back;
    return chain_tx_decode(&back, &sig, buf, len);
}

Test(chain_tx, legacy_v)
{
    cr_assert_eq(decode_legacy_v(37), CHAIN_OK);
    cr_assert_eq(decode_legacy_v(38), CHAIN_OK);
    cr_assert_eq(decode_legacy_v(35), CHAIN_ERR_UNSUPPORTED, "chain id 0 under EIP-155");
    cr_assert_eq(decode_legacy_v(36), CHAIN_ERR_UNSUPPORTED);
    cr_assert_eq(decode_legacy_v(27), CHAIN_ERR_UNSUPPORTED, "pre-EIP-155");
    cr_assert_eq(decode_legacy_v(28), CHAIN_ERR_UNSUPPORTED);
    cr_assert_eq(decode_legacy_v(0), CHAIN_ERR_SIGNATURE);
    cr_assert_eq(decode_legacy_v(1), CHAIN_ERR_SIGNATURE);
    cr_assert_eq(decode_legacy_v(29), CHAIN_ERR_SIGNATURE);
    cr_assert_eq(decode_legacy_v(34), CHAIN_ERR_SIGNATURE);
    cr_assert_eq(decode_legacy_v(UINT64_MAX - 1), CHAIN_OK, "CHAIN_TX_LEGACY_CHAIN_ID_MAX");
    cr_assert_eq(decode_legacy_v(UINT64_MAX), CHAIN_ERR_OVERFLOW, "one above");
}

Test(chain_tx, truncated_and_garbage)
{
    json_t *root = fx_load();
    json_t *v;
    size_t i;
    json_array_foreach(fx_get(root, "transactions"), i, v)
    {
        size_t len;
        uint8_t *raw = hex_dup(fx_str(v, "raw"), &len);
        /* every proper prefix fails, each in a buffer of exactly its size */
        for (size_t n = 0; n != len; ++n) {
            uint8_t *cut = malloc(n + 1);
            memcpy(cut, raw, n);
            chain_tx_t tx;
            chain_sig_t sig;
            int ret = chain_tx_decode(&tx, &sig, n == 0 ? NULL : cut, n);
            cr_assert_neq(ret, CHAIN_OK, "tx %zu cut to %zu bytes", i, n);
            free(cut);
        }
        /* and a byte more is trailing garbage */
        uint8_t *more = malloc(len + 1);
        memcpy(more, raw, len);
        more[len] = 0;
        chain_tx_t tx;
        chain_sig_t sig;
        cr_assert_eq(chain_tx_decode(&tx, &sig, more, len + 1), CHAIN_ERR_TRAILING);
        /* flipping any single byte never crashes, and never decodes to the same sender */
        chain_addr_t want = fx_addr(v, "from");
        for (size_t k = 0; k != len; ++k) {
            memcpy(more, raw, len);
            more[k] ^= 0x5a;
            chain_addr_t from;
            if (chain_tx_decode(&tx, &sig, more, len) == CHAIN_OK &&
                chain_tx_recover_sender(&from, &tx, &sig) == CHAIN_OK)
                cr_assert(!chain_addr_eq(&from, &want), "tx %zu byte %zu", i, k);
        }
        free(more);
        free(raw);
    }
    json_decref(root);

    static const uint8_t types[] = {0x00, 0x01, 0x03, 0x04, 0x7f};
    for (size_t k = 0; k != sizeof(types); ++k) {
        uint8_t raw[2] = {types[k], 0xc0};
        chain_tx_t tx;
        chain_sig_t sig;
        cr_assert_eq(chain_tx_decode(&tx, &sig, raw, 2), CHAIN_ERR_UNSUPPORTED, "type %u",
                     types[k]);
    }
    uint8_t str[] = {0x82, 0x01, 0x02};
    chain_tx_t tx;
    chain_sig_t sig;
    cr_assert_eq(chain_tx_decode(&tx, &sig, str, sizeof(str)), CHAIN_ERR_TYPE);
    uint8_t empty_list[] = {0xc0};
    cr_assert_eq(chain_tx_decode(&tx, &sig, empty_list, 1), CHAIN_ERR_LENGTH);
    uint8_t typed_string[] = {0x02, 0x80};
    cr_assert_eq(chain_tx_decode(&tx, &sig, typed_string, 2), CHAIN_ERR_TYPE);
}
