/*
 * Helpers shared by the chain/ tests that read tests/fixtures/ethers_vectors.json, the vectors
 * tests/fixtures/generate.mjs made with ethers v6. Every helper fails the current test (rather
 * than returning an error) when the fixture is not what it should be.
 */
#ifndef TEST_CHAIN_FIXTURES_H
#define TEST_CHAIN_FIXTURES_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>
#include "chain/address.h"
#include "chain/eip712.h"
#include "chain/hex.h"
#include "chain/u256.h"

#ifndef FIXTURES_DIR
#error "FIXTURES_DIR must name the tests/fixtures directory (a compile definition)"
#endif

#define FX_VECTORS_PATH FIXTURES_DIR "/ethers_vectors.json"

/** The whole fixture file (a new reference); fails the test when it does not load. */
static inline json_t *fx_load(void)
{
    json_error_t err;
    json_t *root = json_load_file(FX_VECTORS_PATH, 0, &err);
    cr_assert_not_null(root, "%s:%d: %s", FX_VECTORS_PATH, err.line, err.text);
    return root;
}

/** obj[key], which must exist. */
static inline json_t *fx_get(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    cr_assert_not_null(v, "fixture lacks \"%s\"", key);
    return v;
}

/** obj[key] as a string. */
static inline const char *fx_str(json_t *obj, const char *key)
{
    json_t *v = fx_get(obj, key);
    cr_assert(json_is_string(v), "fixture \"%s\" is not a string", key);
    return json_string_value(v);
}

/** Decodes "0x..." hex into `out` (`cap` bytes); returns the byte count. */
static inline size_t fx_hex(const char *s, uint8_t *out, size_t cap)
{
    size_t n;
    int ret = chain_hex_decode(out, cap, &n, s, strlen(s), CHAIN_HEX_0X_REQUIRED);
    cr_assert_eq(ret, CHAIN_OK, "fixture hex %.40s...: %s", s, chain_err_str(ret));
    return n;
}

/** Decodes "0x..." hex of exactly `len` bytes. */
static inline void fx_hex_exact(const char *s, uint8_t *out, size_t len)
{
    cr_assert_eq(fx_hex(s, out, len), len, "fixture hex %.40s... is not %zu bytes", s, len);
}

/** `len` bytes as "0x" + lowercase hex into `out` (2 * len + 3 bytes). */
static inline const char *fx_to_hex(char *out, const void *data, size_t len)
{
    int ret = chain_hex_encode(out, 2 * len + 3, data, len, CHAIN_HEX_0X);
    cr_assert_eq(ret, CHAIN_OK);
    return out;
}

/** A decimal string obj[key] as a uint64. */
static inline uint64_t fx_u64(json_t *obj, const char *key)
{
    chain_u256_t v;
    const char *s = fx_str(obj, key);
    cr_assert_eq(chain_u256_from_dec(&v, s, strlen(s)), CHAIN_OK, "%s", s);
    cr_assert(v.limb[1] == 0 && v.limb[2] == 0 && v.limb[3] == 0, "%s", s);
    return v.limb[0];
}

/** A decimal string obj[key] as a u256. */
static inline chain_u256_t fx_u256(json_t *obj, const char *key)
{
    chain_u256_t v;
    const char *s = fx_str(obj, key);
    cr_assert_eq(chain_u256_from_dec(&v, s, strlen(s)), CHAIN_OK, "%s", s);
    return v;
}

/** An address string. */
static inline chain_addr_t fx_addr_str(const char *s)
{
    chain_addr_t a;
    cr_assert_eq(chain_addr_parse(&a, s, strlen(s)), CHAIN_OK, "%s", s);
    return a;
}

/** obj[key] as an address. */
static inline chain_addr_t fx_addr(json_t *obj, const char *key)
{
    return fx_addr_str(fx_str(obj, key));
}

/** A fixture intent object {"owner", ..., "salt"}. */
static inline chain_intent_t fx_intent(json_t *o)
{
    chain_intent_t in;
    memset(&in, 0, sizeof(in));
    in.owner = fx_addr(o, "owner");
    in.token = fx_addr(o, "token");
    in.recipient = fx_addr(o, "recipient");
    in.amount = fx_u256(o, "amount");
    in.min_interval = fx_u64(o, "minInterval");
    in.valid_after = fx_u64(o, "validAfter");
    in.valid_until = fx_u64(o, "validUntil");
    uint64_t max = fx_u64(o, "maxExecutions");
    cr_assert(max <= UINT32_MAX);
    in.max_executions = (uint32_t)max;
    fx_hex_exact(fx_str(o, "salt"), in.salt, sizeof(in.salt));
    return in;
}

#endif
