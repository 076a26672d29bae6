/* AES-256-GCM for sensitive columns: round trip, wrong key / label / tampered bytes refused,
 * malformed keys refused, blind index stable and keyed. */
#include <criterion/criterion.h>
#include <string.h>
#include "store/crypto.h"

static const char key_a[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char key_b[] = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

static store_crypto_key_t *load(const char *hex)
{
    char err[128];
    store_crypto_key_t *k = store_crypto_key_load(hex, err, sizeof(err));
    cr_assert_not_null(k, "%s", err);
    return k;
}

Test(store_crypto, round_trip_and_fresh_nonce_each_time)
{
    store_crypto_key_t *k = load(key_a);
    const char *email = "alice@example.com";
    uint8_t s1[128], s2[128], plain[128];
    size_t n1 =
        store_crypto_seal(k, "users.email", (const uint8_t *)email, strlen(email), s1, sizeof(s1));
    size_t n2 =
        store_crypto_seal(k, "users.email", (const uint8_t *)email, strlen(email), s2, sizeof(s2));
    cr_assert_eq(n1, strlen(email) + STORE_CRYPTO_OVERHEAD);
    cr_assert_eq(n1, n2);
    cr_assert_neq(memcmp(s1, s2, n1), 0, "two seals of one value are identical: nonce reused");
    cr_assert_null(memmem(s1, n1, "alice", 5), "plaintext visible in the sealed value");
    size_t len = 0;
    cr_assert(store_crypto_open(k, "users.email", s1, n1, plain, sizeof(plain), &len));
    cr_assert_eq(len, strlen(email));
    cr_assert_eq(memcmp(plain, email, len), 0);
    store_crypto_key_free(k);
}

Test(store_crypto, wrong_key_label_or_any_changed_byte_is_refused)
{
    store_crypto_key_t *a = load(key_a), *b = load(key_b);
    uint8_t sealed[64], plain[64];
    size_t len, n = store_crypto_seal(a, "users.email", (const uint8_t *)"x@y.z", 5, sealed,
                                      sizeof(sealed));
    cr_assert_gt(n, 0);
    cr_assert_not(store_crypto_open(b, "users.email", sealed, n, plain, sizeof(plain), &len),
                  "a wrong key decrypted");
    cr_assert_not(
        store_crypto_open(a, "users.telegram_chat", sealed, n, plain, sizeof(plain), &len),
        "a value moved to another column decrypted");
    for (size_t i = 0; i != n; ++i) {
        sealed[i] ^= 0x01;
        cr_assert_not(store_crypto_open(a, "users.email", sealed, n, plain, sizeof(plain), &len),
                      "byte %zu changed and still accepted", i);
        sealed[i] ^= 0x01;
    }
    cr_assert_not(store_crypto_open(a, "users.email", sealed, n - 1, plain, sizeof(plain), &len));
    cr_assert(store_crypto_open(a, "users.email", sealed, n, plain, sizeof(plain), &len));
    store_crypto_key_free(a);
    store_crypto_key_free(b);
}

Test(store_crypto, malformed_keys_are_refused)
{
    char err[128];
    cr_assert_null(store_crypto_key_load("abcd", err, sizeof(err)));
    cr_assert_null(store_crypto_key_load(NULL, err, sizeof(err)));
    char bad[65];
    memcpy(bad, key_a, 65);
    bad[10] = 'g';
    cr_assert_null(store_crypto_key_load(bad, err, sizeof(err)));
    cr_assert_not_null(strstr(err, "64 hex digits"));
}

Test(store_crypto, blind_index_is_stable_per_key_and_label)
{
    store_crypto_key_t *a = load(key_a), *b = load(key_b);
    uint8_t i1[32], i2[32], i3[32], i4[32];
    store_crypto_blind_index(a, "users.email", (const uint8_t *)"a@b.c", 5, i1);
    store_crypto_blind_index(a, "users.email", (const uint8_t *)"a@b.c", 5, i2);
    store_crypto_blind_index(b, "users.email", (const uint8_t *)"a@b.c", 5, i3);
    store_crypto_blind_index(a, "users.other", (const uint8_t *)"a@b.c", 5, i4);
    cr_assert_eq(memcmp(i1, i2, 32), 0);
    cr_assert_neq(memcmp(i1, i3, 32), 0);
    cr_assert_neq(memcmp(i1, i4, 32), 0);
    store_crypto_key_free(a);
    store_crypto_key_free(b);
}
