#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include "chain/hex.h"
#include "chain/rlp.h"

#define LOREM "Lorem ipsum dolor sit amet, consectetur adipisicing elit"

/* finishes `w` and compares its output with the hex string `want` */
static void assert_encoded(chain_rlp_writer_t *w, const char *want)
{
    size_t len;
    cr_assert_eq(chain_rlp_writer_finish(w, &len), CHAIN_OK);
    char got[1024];
    cr_assert_eq(chain_hex_encode(got, sizeof(got), w->buf, len, 0), CHAIN_OK);
    cr_assert_str_eq(got, want);
}

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n;
    cr_assert_eq(chain_hex_decode(out, cap, &n, s, strlen(s), 0), CHAIN_OK, "%s", s);
    return n;
}

/* decodes hex `s` (copied to an exact-size heap buffer, so ASan sees any over-read) */
static int decode_hex(const char *s, chain_rlp_item_t *top)
{
    uint8_t tmp[512];
    size_t n = unhex(s, tmp, sizeof(tmp));
    uint8_t *exact = malloc(n == 0 ? 1 : n);
    cr_assert_not_null(exact);
    memcpy(exact, tmp, n);
    chain_rlp_item_t item;
    int ret = chain_rlp_decode(exact, n, &item);
    free(exact);
    if (top != NULL && ret == CHAIN_OK)
        *top = item; /* pointers inside are dangling: only flags and lengths are usable */
    return ret;
}

Test(chain_rlp, encode_wiki_strings_and_integers)
{
    uint8_t buf[128];
    chain_rlp_writer_t w;
    const struct {
        const char *bytes; /* NULL: encode `integer` instead */
        size_t len;
        uint64_t integer;
        const char *want;
    } cases[] = {
        {"dog", 3, 0, "83646f67"}, {"", 0, 0, "80"},
        {"\x00", 1, 0, "00"},      {"\x80", 1, 0, "8180"},
        {NULL, 0, 0, "80"},        {NULL, 0, 15, "0f"},
        {NULL, 0, 1024, "820400"}, {NULL, 0, 0x7f, "7f"},
        {NULL, 0, 0x80, "8180"},   {NULL, 0, UINT64_MAX, "88ffffffffffffffff"},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        chain_rlp_writer_init(&w, buf, sizeof(buf));
        if (cases[i].bytes == NULL)
            chain_rlp_put_u64(&w, cases[i].integer);
        else
            chain_rlp_put_bytes(&w, cases[i].bytes, cases[i].len);
        assert_encoded(&w, cases[i].want);
    }
}

Test(chain_rlp, encode_wiki_56_byte_string_uses_long_form)
{
    uint8_t buf[128];
    chain_rlp_writer_t w;
    chain_rlp_writer_init(&w, buf, sizeof(buf));
    chain_rlp_put_bytes(&w, LOREM, 56);
    size_t len;
    cr_assert_eq(chain_rlp_writer_finish(&w, &len), CHAIN_OK);
    cr_assert_eq(len, 58);
    cr_assert_eq(buf[0], 0xb8);
    cr_assert_eq(buf[1], 0x38);
    cr_assert_eq(memcmp(buf + 2, LOREM, 56), 0);
    /* one byte shorter stays in the short form */
    chain_rlp_writer_init(&w, buf, sizeof(buf));
    chain_rlp_put_bytes(&w, LOREM, 55);
    cr_assert_eq(chain_rlp_writer_finish(&w, &len), CHAIN_OK);
    cr_assert_eq(len, 56);
    cr_assert_eq(buf[0], 0xb7);
}

Test(chain_rlp, encode_wiki_lists)
{
    uint8_t buf[128];
    chain_rlp_writer_t w;

    chain_rlp_writer_init(&w, buf, sizeof(buf));
    chain_rlp_list_begin(&w);
    chain_rlp_put_bytes(&w, "cat", 3);
    chain_rlp_put_bytes(&w, "dog", 3);
    chain_rlp_list_end(&w);
    assert_encoded(&w, "c88363617483646f67");

    chain_rlp_writer_init(&w, buf, sizeof(buf));
    chain_rlp_list_begin(&w);
    chain_rlp_list_end(&w);
    assert_encoded(&w, "c0");

    /* the set-theoretic representation of three: [ [], [[]], [ [], [[]] ] ] */
    chain_rlp_writer_init(&w, buf, sizeof(buf));
    chain_rlp_list_begin(&w);
    chain_rlp_list_begin(&w);
    chain_rlp_list_end(&w);
    chain_rlp_list_begin(&w);
    chain_rlp_list_begin(&w);
    chain_rlp_list_end(&w);
    chain_rlp_list_end(&w);
    chain_rlp_list_begin(&w);
    chain_rlp_list_begin(&w);
    chain_rlp_list_end(&w);
    chain_rlp_list_begin(&w);
    chain_rlp_list_begin(&w);
    chain_rlp_list_end(&w);
    chain_rlp_list_end(&w);
    chain_rlp_list_end(&w);
    chain_rlp_list_end(&w);
    assert_encoded(&w, "c7c0c1c0c3c0c1c0");
}

Test(chain_rlp, encode_long_lists_are_backpatched)
{
    /* [[LOREM]]: inner payload 58 bytes (f83a), outer 60 bytes (f83c); both headers grow */
    uint8_t buf[128];
    chain_rlp_writer_t w;
    chain_rlp_writer_init(&w, buf, sizeof(buf));
    chain_rlp_list_begin(&w);
    chain_rlp_list_begin(&w);
    chain_rlp_put_bytes(&w, LOREM, 56);
    chain_rlp_list_end(&w);
    chain_rlp_put_u64(&w, 1);
    chain_rlp_list_end(&w);
    size_t len;
    cr_assert_eq(chain_rlp_writer_finish(&w, &len), CHAIN_OK);
    cr_assert_eq(len, 2 + 2 + 2 + 56 + 1);
    const uint8_t head[] = {0xf8, 0x3d, 0xf8, 0x3a, 0xb8, 0x38};
    cr_assert_arr_eq(buf, head, sizeof(head));
    cr_assert_eq(memcmp(buf + 6, LOREM, 56), 0);
    cr_assert_eq(buf[62], 0x01);
}

Test(chain_rlp, encode_u256_minimal)
{
    uint8_t buf[64];
    chain_rlp_writer_t w;
    chain_u256_t v = chain_u256_from_u64(1024);
    chain_rlp_writer_init(&w, buf, sizeof(buf));
    chain_rlp_put_u256(&w, &v);
    assert_encoded(&w, "820400");
    v = chain_u256_from_u64(0);
    chain_rlp_writer_init(&w, buf, sizeof(buf));
    chain_rlp_put_u256(&w, &v);
    assert_encoded(&w, "80");
    chain_u256_t max = {{UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX}};
    chain_rlp_writer_init(&w, buf, sizeof(buf));
    chain_rlp_put_u256(&w, &max);
    assert_encoded(&w, "a0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
}

/* writes a fixed structure with long and short parts; used for measuring and capacity tests */
static void write_sample(chain_rlp_writer_t *w)
{
    chain_rlp_list_begin(w);
    chain_rlp_put_u64(w, 9);
    chain_rlp_put_bytes(w, LOREM, 56);
    chain_rlp_list_begin(w);
    chain_rlp_put_bytes(w, "cat", 3);
    chain_rlp_list_end(w);
    chain_rlp_list_end(w);
}

Test(chain_rlp, measuring_and_short_buffers)
{
    chain_rlp_writer_t w;
    size_t measured, len;
    chain_rlp_writer_init(&w, NULL, 0);
    write_sample(&w);
    cr_assert_eq(chain_rlp_writer_finish(&w, &measured), CHAIN_OK);
    cr_assert_eq(measured, 2 + 1 + 58 + 5);
    uint8_t buf[128];
    for (size_t cap = 0; cap < measured; ++cap) {
        chain_rlp_writer_init(&w, buf, cap);
        write_sample(&w);
        cr_assert_eq(chain_rlp_writer_finish(&w, &len), CHAIN_ERR_SHORT_BUFFER, "cap %zu", cap);
    }
    chain_rlp_writer_init(&w, buf, measured);
    write_sample(&w);
    cr_assert_eq(chain_rlp_writer_finish(&w, &len), CHAIN_OK);
    cr_assert_eq(len, measured);
    chain_rlp_item_t top;
    cr_assert_eq(chain_rlp_decode(buf, len, &top), CHAIN_OK);
}

Test(chain_rlp, writer_state_errors)
{
    uint8_t buf[64];
    chain_rlp_writer_t w;
    size_t len;
    chain_rlp_writer_init(&w, buf, sizeof(buf));
    chain_rlp_list_end(&w);
    cr_assert_eq(chain_rlp_writer_finish(&w, &len), CHAIN_ERR_STATE);
    chain_rlp_writer_init(&w, buf, sizeof(buf));
    chain_rlp_list_begin(&w);
    cr_assert_eq(chain_rlp_writer_finish(&w, &len), CHAIN_ERR_STATE);
    chain_rlp_writer_init(&w, buf, sizeof(buf));
    for (int i = 0; i != CHAIN_RLP_MAX_DEPTH; ++i)
        chain_rlp_list_begin(&w);
    cr_assert_eq(w.err, CHAIN_OK);
    chain_rlp_list_begin(&w);
    cr_assert_eq(chain_rlp_writer_finish(&w, &len), CHAIN_ERR_DEPTH);
}

Test(chain_rlp, decode_wiki_list_and_iterate)
{
    uint8_t buf[64];
    size_t n = unhex("c88363617483646f67", buf, sizeof(buf));
    chain_rlp_item_t top, it;
    cr_assert_eq(chain_rlp_decode(buf, n, &top), CHAIN_OK);
    cr_assert(top.is_list);
    cr_assert_eq(top.payload_len, 8);
    chain_rlp_iter_t iter;
    cr_assert_eq(chain_rlp_iter_init(&iter, &top), CHAIN_OK);
    const char *want[] = {"cat", "dog"};
    for (int i = 0; i != 2; ++i) {
        cr_assert_eq(chain_rlp_iter_next(&iter, &it), CHAIN_OK);
        const uint8_t *p;
        size_t len;
        cr_assert_eq(chain_rlp_item_bytes(&it, &p, &len), CHAIN_OK);
        cr_assert_eq(len, 3);
        cr_assert_eq(memcmp(p, want[i], 3), 0);
        cr_assert_eq(it.depth, 1);
    }
    cr_assert_eq(chain_rlp_iter_next(&iter, &it), CHAIN_RLP_END);
    cr_assert_eq(chain_rlp_iter_init(&iter, &it), CHAIN_ERR_TYPE, "a string is not a list");
}

Test(chain_rlp, decode_wiki_scalars)
{
    uint8_t buf[128];
    chain_rlp_item_t top;
    uint64_t v = 99;
    const struct {
        const char *hex;
        uint64_t want;
    } ints[] = {
        {"80", 0}, {"0f", 15}, {"820400", 1024}, {"8180", 128}, {"88ffffffffffffffff", UINT64_MAX}};
    for (size_t i = 0; i != sizeof(ints) / sizeof(ints[0]); ++i) {
        size_t n = unhex(ints[i].hex, buf, sizeof(buf));
        cr_assert_eq(chain_rlp_decode(buf, n, &top), CHAIN_OK, "%s", ints[i].hex);
        cr_assert_eq(chain_rlp_item_u64(&top, &v), CHAIN_OK, "%s", ints[i].hex);
        cr_assert_eq(v, ints[i].want, "%s", ints[i].hex);
    }
    size_t n = unhex("c0", buf, sizeof(buf));
    cr_assert_eq(chain_rlp_decode(buf, n, &top), CHAIN_OK);
    cr_assert(top.is_list);
    cr_assert_eq(top.payload_len, 0);
    cr_assert_eq(chain_rlp_item_u64(&top, &v), CHAIN_ERR_TYPE);

    buf[0] = 0xb8;
    buf[1] = 0x38;
    memcpy(buf + 2, LOREM, 56);
    cr_assert_eq(chain_rlp_decode(buf, 58, &top), CHAIN_OK);
    cr_assert_not(top.is_list);
    cr_assert_eq(top.payload_len, 56);
    cr_assert_eq(memcmp(top.payload, LOREM, 56), 0);
}

Test(chain_rlp, decode_set_theoretic_three)
{
    uint8_t buf[16];
    size_t n = unhex("c7c0c1c0c3c0c1c0", buf, sizeof(buf));
    chain_rlp_item_t top, it;
    cr_assert_eq(chain_rlp_decode(buf, n, &top), CHAIN_OK);
    chain_rlp_iter_t iter;
    chain_rlp_iter_init(&iter, &top);
    const size_t want_payload[] = {0, 1, 3};
    for (int i = 0; i != 3; ++i) {
        cr_assert_eq(chain_rlp_iter_next(&iter, &it), CHAIN_OK);
        cr_assert(it.is_list);
        cr_assert_eq(it.payload_len, want_payload[i]);
    }
    cr_assert_eq(chain_rlp_iter_next(&iter, &it), CHAIN_RLP_END);
}

Test(chain_rlp, decode_integer_rules)
{
    uint8_t buf[64];
    chain_rlp_item_t top;
    uint64_t v;
    chain_u256_t big;
    /* 0x00 as a single byte is a valid string but not a canonical integer */
    size_t n = unhex("00", buf, sizeof(buf));
    cr_assert_eq(chain_rlp_decode(buf, n, &top), CHAIN_OK);
    cr_assert_eq(chain_rlp_item_u64(&top, &v), CHAIN_ERR_NONCANONICAL);
    n = unhex("820001", buf, sizeof(buf));
    cr_assert_eq(chain_rlp_decode(buf, n, &top), CHAIN_OK);
    cr_assert_eq(chain_rlp_item_u64(&top, &v), CHAIN_ERR_NONCANONICAL);
    cr_assert_eq(chain_rlp_item_u256(&top, &big), CHAIN_ERR_NONCANONICAL);
    n = unhex("89010000000000000000", buf, sizeof(buf));
    cr_assert_eq(chain_rlp_decode(buf, n, &top), CHAIN_OK);
    cr_assert_eq(chain_rlp_item_u64(&top, &v), CHAIN_ERR_OVERFLOW);
    cr_assert_eq(chain_rlp_item_u256(&top, &big), CHAIN_OK);
    cr_assert_eq(big.limb[1], 1);
    cr_assert_eq(big.limb[0], 0);
    /* 33 bytes is too much for a u256 */
    buf[0] = 0xa1;
    memset(buf + 1, 0xff, 33);
    cr_assert_eq(chain_rlp_decode(buf, 34, &top), CHAIN_OK);
    cr_assert_eq(chain_rlp_item_u256(&top, &big), CHAIN_ERR_OVERFLOW);
    uint8_t addr[20];
    cr_assert_eq(chain_rlp_item_fixed(&top, addr, 20), CHAIN_ERR_LENGTH);
}

Test(chain_rlp, decode_rejects_malformed)
{
    const struct {
        const char *hex;
        int err;
    } cases[] = {
        {"", CHAIN_ERR_TRUNCATED},
        {"8105", CHAIN_ERR_NONCANONICAL},           /* single byte < 0x80 wrapped */
        {"8100", CHAIN_ERR_NONCANONICAL},           /* same, for zero */
        {"817f", CHAIN_ERR_NONCANONICAL},           /* same, at the edge */
        {"b80568656c6c6f", CHAIN_ERR_NONCANONICAL}, /* long form for a 5-byte string */
        {"b837", CHAIN_ERR_NONCANONICAL},           /* long form for 55 */
        {"b800", CHAIN_ERR_NONCANONICAL},           /* length with a leading zero */
        {"f800", CHAIN_ERR_NONCANONICAL},           /* the same for lists */
        {"f80180", CHAIN_ERR_NONCANONICAL},         /* long-form list of 1 byte */
        {"c3b80100", CHAIN_ERR_NONCANONICAL},       /* nested non-canonical */
        {"c28105", CHAIN_ERR_NONCANONICAL},
        {"83646f", CHAIN_ERR_TRUNCATED}, /* "dog" missing a byte */
        {"81", CHAIN_ERR_TRUNCATED},
        {"b8", CHAIN_ERR_TRUNCATED},                 /* length byte missing */
        {"b9ff", CHAIN_ERR_TRUNCATED},               /* one of two length bytes */
        {"b9ffff", CHAIN_ERR_TRUNCATED},             /* 65535 claimed, none given */
        {"bfffffffffffffffff", CHAIN_ERR_TRUNCATED}, /* 2^64-1 claimed */
        {"bf7fffffffffffffff00", CHAIN_ERR_TRUNCATED},
        {"ffffffffffffffffff", CHAIN_ERR_TRUNCATED},
        {"c883636174836467", CHAIN_ERR_TRUNCATED}, /* list shorter than it says */
        {"c3836466", CHAIN_ERR_TRUNCATED},         /* inner item runs past its list */
        {"c2c3c0", CHAIN_ERR_TRUNCATED},           /* inner list runs past its list */
        {"c18080", CHAIN_ERR_TRAILING},
        {"8080", CHAIN_ERR_TRAILING},
        {"0000", CHAIN_ERR_TRAILING},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i)
        cr_assert_eq(decode_hex(cases[i].hex, NULL), cases[i].err, "\"%s\"", cases[i].hex);
}

Test(chain_rlp, decode_rejects_long_form_defects_at_56)
{
    uint8_t buf[64];
    chain_rlp_item_t top;
    /* b9 0038: 56 with a leading zero length byte */
    buf[0] = 0xb9;
    buf[1] = 0x00;
    buf[2] = 0x38;
    memcpy(buf + 3, LOREM, 56);
    cr_assert_eq(chain_rlp_decode(buf, 59, &top), CHAIN_ERR_NONCANONICAL);
    /* b8 38 with 10 bytes of the 56 */
    buf[0] = 0xb8;
    buf[1] = 0x38;
    memcpy(buf + 2, LOREM, 56);
    cr_assert_eq(chain_rlp_decode(buf, 12, &top), CHAIN_ERR_TRUNCATED);
    cr_assert_eq(chain_rlp_decode(buf, 57, &top), CHAIN_ERR_TRUNCATED);
    cr_assert_eq(chain_rlp_decode(buf, 58, &top), CHAIN_OK);
}

/* k lists nested in each other, innermost empty: c(k-1) ... c1 c0 */
static size_t nested_lists(uint8_t *buf, size_t k)
{
    for (size_t i = 0; i != k; ++i)
        buf[i] = (uint8_t)(0xc0 + (k - 1 - i));
    return k;
}

Test(chain_rlp, decode_nesting_depth_is_bounded)
{
    uint8_t buf[64];
    chain_rlp_item_t top;
    size_t n = nested_lists(buf, CHAIN_RLP_MAX_DEPTH);
    cr_assert_eq(chain_rlp_decode(buf, n, &top), CHAIN_OK);
    n = nested_lists(buf, CHAIN_RLP_MAX_DEPTH + 1);
    cr_assert_eq(chain_rlp_decode(buf, n, &top), CHAIN_ERR_DEPTH);
    n = nested_lists(buf, 50);
    cr_assert_eq(chain_rlp_decode(buf, n, &top), CHAIN_ERR_DEPTH);

    /* the iterator enforces the same bound on unvalidated input */
    n = nested_lists(buf, CHAIN_RLP_MAX_DEPTH + 1);
    cr_assert_eq(chain_rlp_decode_header(buf, n, &top), CHAIN_OK);
    chain_rlp_item_t cur = top, next;
    int ret = CHAIN_OK;
    for (int level = 0; level != CHAIN_RLP_MAX_DEPTH + 1 && ret == CHAIN_OK; ++level) {
        chain_rlp_iter_t it;
        cr_assert_eq(chain_rlp_iter_init(&it, &cur), CHAIN_OK);
        ret = chain_rlp_iter_next(&it, &next);
        cur = next;
    }
    cr_assert_eq(ret, CHAIN_ERR_DEPTH);
}

Test(chain_rlp, iterator_reports_errors_in_unvalidated_input)
{
    uint8_t buf[16];
    size_t n = unhex("c4838081", buf, sizeof(buf)); /* the list claims 4 bytes, has 3 */
    chain_rlp_item_t top, it;
    cr_assert_eq(chain_rlp_decode_header(buf, n, &top), CHAIN_ERR_TRUNCATED);
    n = unhex("c3818005", buf, sizeof(buf)); /* 81 80, then 05 */
    cr_assert_eq(chain_rlp_decode_header(buf, n, &top), CHAIN_OK);
    chain_rlp_iter_t iter;
    chain_rlp_iter_init(&iter, &top);
    cr_assert_eq(chain_rlp_iter_next(&iter, &it), CHAIN_OK);
    cr_assert_eq(chain_rlp_iter_next(&iter, &it), CHAIN_OK);
    cr_assert_eq(chain_rlp_iter_next(&iter, &it), CHAIN_RLP_END);
    n = unhex("c2810a", buf, sizeof(buf));
    cr_assert_eq(chain_rlp_decode_header(buf, n, &top), CHAIN_OK);
    chain_rlp_iter_init(&iter, &top);
    cr_assert_eq(chain_rlp_iter_next(&iter, &it), CHAIN_ERR_NONCANONICAL);
}

/* ---- randomized: fixed seed, bounded iterations ---- */

static uint64_t next_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

/* writes `item` again from its decoded form; recursion is bounded by CHAIN_RLP_MAX_DEPTH */
static void reencode(chain_rlp_writer_t *w, const chain_rlp_item_t *item)
{
    if (!item->is_list) {
        chain_rlp_put_bytes(w, item->payload, item->payload_len);
        return;
    }
    cr_assert_leq(item->depth, CHAIN_RLP_MAX_DEPTH);
    chain_rlp_iter_t iter;
    chain_rlp_item_t child;
    int ret;
    cr_assert_eq(chain_rlp_iter_init(&iter, item), CHAIN_OK);
    chain_rlp_list_begin(w);
    while ((ret = chain_rlp_iter_next(&iter, &child)) == CHAIN_OK)
        reencode(w, &child);
    cr_assert_eq(ret, CHAIN_RLP_END, "a validated list failed to iterate: %d", ret);
    chain_rlp_list_end(w);
}

/*
 * Decodes `len` bytes from an exact-size heap copy (so ASan catches any over-read). Whatever
 * it answers must be a known code; when it accepts, the input must be canonical, so encoding
 * the decoded tree must give back the very same bytes.
 */
static int check_decode(const uint8_t *data, size_t len)
{
    uint8_t *exact = malloc(len == 0 ? 1 : len);
    cr_assert_not_null(exact);
    memcpy(exact, data, len);
    chain_rlp_item_t top;
    int ret = chain_rlp_decode(exact, len, &top);
    cr_assert(ret == CHAIN_OK || (ret <= CHAIN_ERR_TRUNCATED && ret >= CHAIN_ERR_TRAILING),
              "unexpected code %d", ret);
    if (ret == CHAIN_OK) {
        uint8_t *again = malloc(len);
        chain_rlp_writer_t w;
        size_t n;
        chain_rlp_writer_init(&w, again, len);
        reencode(&w, &top);
        cr_assert_eq(chain_rlp_writer_finish(&w, &n), CHAIN_OK);
        cr_assert_eq(n, len);
        cr_assert_arr_eq(again, exact, len);
        free(again);
    }
    free(exact);
    return ret;
}

/* bytes near the RLP type boundaries come up often, so random input reaches every branch */
static uint8_t random_byte(uint64_t *seed)
{
    static const uint8_t edges[] = {0x00, 0x01, 0x37, 0x38, 0x7f, 0x80, 0x81, 0xb7, 0xb8,
                                    0xb9, 0xbf, 0xc0, 0xc1, 0xf7, 0xf8, 0xf9, 0xff};
    uint64_t r = next_rand(seed);
    if (r % 2 == 0)
        return edges[(r >> 8) % sizeof(edges)];
    return (uint8_t)(r >> 16);
}

Test(chain_rlp, fuzz_random_bytes_never_crash)
{
    uint64_t seed = 0x2545f4914f6cdd1dull;
    uint8_t buf[48];
    int accepted = 0;
    for (int i = 0; i != 200000; ++i) {
        size_t len = next_rand(&seed) % (sizeof(buf) + 1);
        for (size_t k = 0; k != len; ++k)
            buf[k] = random_byte(&seed);
        accepted += check_decode(buf, len) == CHAIN_OK;
    }
    /* the generator must exercise the accepting path too, or the round trip proves nothing */
    cr_assert_gt(accepted, 1000);
}

/* writes a random tree of at most `depth_left` more levels */
static void random_tree(chain_rlp_writer_t *w, uint64_t *seed, unsigned depth_left)
{
    static const uint8_t filler[80] = {0x41, 0x00, 0x7f, 0x80, 0xff};
    unsigned items = next_rand(seed) % 5;
    for (unsigned i = 0; i != items; ++i) {
        uint64_t r = next_rand(seed);
        if (depth_left != 0 && r % 3 == 0) {
            chain_rlp_list_begin(w);
            random_tree(w, seed, depth_left - 1);
            chain_rlp_list_end(w);
        } else if (r % 3 == 1) {
            chain_rlp_put_u64(w, next_rand(seed) >> (r >> 8) % 64);
        } else {
            size_t len = (r >> 8) % sizeof(filler);
            chain_rlp_put_bytes(w, filler + (len == 1 ? (r >> 16) % 5 : 0), len);
        }
    }
}

Test(chain_rlp, fuzz_round_trip_and_mutations)
{
    uint64_t seed = 0x853c49e6748fea9bull;
    static uint8_t buf[1 << 16];
    for (int i = 0; i != 3000; ++i) {
        chain_rlp_writer_t w;
        size_t len;
        chain_rlp_writer_init(&w, buf, sizeof(buf));
        chain_rlp_list_begin(&w);
        random_tree(&w, &seed, 5);
        chain_rlp_list_end(&w);
        cr_assert_eq(chain_rlp_writer_finish(&w, &len), CHAIN_OK);
        cr_assert_eq(check_decode(buf, len), CHAIN_OK);
        /* one changed byte, and one cut: must never crash, and may rarely still be valid */
        size_t at = next_rand(&seed) % len;
        uint8_t saved = buf[at];
        buf[at] = random_byte(&seed);
        check_decode(buf, len);
        buf[at] = saved;
        cr_assert_neq(check_decode(buf, at), CHAIN_OK, "a strict prefix decoded");
    }
}
