/* HS256 session tokens: a vector computed independently (Python's hmac), round trip, tampering,
 * the clock, forged headers (none, HS512, extra or duplicated members), rotation, strict
 * base64url, size limits, and secrets that never reach an error message. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <criterion/criterion.h>
#include <string.h>
#include "net/jwt.h"

static const char secret_a[] = "0123456789abcdef0123456789abcdef";
static const char secret_b[] = "fedcba9876543210fedcba9876543210-rotated";
static const int64_t t0 = 1790000000;

/* python3: hmac.new(secret_a, header.payload, sha256), base64url without padding; payload
 * {"sub":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed","iat":1790000000,"exp":1790086400,
 *  "jti":"abcDEF-_0123456789xyz1"} */
static const char vector[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIweDVhQWViNjA1M0YzRTk0QzliOUEwOWYzMzY2OTQzNUU3RWYxQmVBZWQiLCJpYXQiOjE3OTAwMDAwMDAs"
    "ImV4cCI6MTc5MDA4NjQwMCwianRpIjoiYWJjREVGLV8wMTIzNDU2Nzg5eHl6MSJ9."
    "WUu0xOd0Xe7BmP8UcVaz3OSCuktorlOjaYUB0bXzQHM";

static net_jwt_keys_t *keys(const char *current, const char *previous)
{
    char err[128];
    net_jwt_keys_t *k = net_jwt_keys_load(current, previous, err, sizeof(err));
    cr_assert_not_null(k, "%s", err);
    return k;
}

static size_t sign(net_jwt_keys_t *k, int64_t iat, int64_t exp, char *out, size_t cap)
{
    net_jwt_sign_t c = {.sub = "user-1", .iat = iat, .exp = exp};
    size_t n = net_jwt_sign(k, &c, out, cap);
    cr_assert_gt(n, 0);
    cr_assert_eq(strlen(out), n);
    return n;
}

static net_jwt_result_t verify(net_jwt_keys_t *k, const char *token, int64_t now)
{
    net_jwt_claims_t claims;
    net_jwt_result_t r = net_jwt_verify(k, token, strlen(token), now, &claims);
    if (r == NET_JWT_OK)
        net_jwt_claims_dispose(&claims);
    else
        cr_assert_null(claims.payload, "a refused token left a payload");
    return r;
}

/* Builds header.payload.signature from raw JSON texts, signed with HMAC-SHA256 by `secret`: the
 * way an attacker who knows the format (not the secret, unless we give it) builds tokens. */
static void forge(const char *header, const char *payload, const char *secret, char *out)
{
    size_t n = net_jwt_b64url_encode((const uint8_t *)header, strlen(header), out);
    out[n++] = '.';
    n += net_jwt_b64url_encode((const uint8_t *)payload, strlen(payload), out + n);
    uint8_t mac[32];
    Hmac h;
    cr_assert_eq(wc_HmacInit(&h, NULL, INVALID_DEVID), 0);
    cr_assert_eq(wc_HmacSetKey(&h, WC_SHA256, (const byte *)secret, (word32)strlen(secret)), 0);
    cr_assert_eq(wc_HmacUpdate(&h, (const byte *)out, (word32)n), 0);
    cr_assert_eq(wc_HmacFinal(&h, mac), 0);
    wc_HmacFree(&h);
    out[n++] = '.';
    net_jwt_b64url_encode(mac, sizeof(mac), out + n);
}

static const char good_payload[] =
    "{\"sub\":\"u\",\"iat\":1790000000,\"exp\":1790003600,\"jti\":\"j\"}";

Test(net_jwt, matches_an_independently_computed_vector)
{
    net_jwt_keys_t *k = keys(secret_a, NULL);
    char out[1024];
    net_jwt_sign_t c = {.sub = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
                        .iat = t0,
                        .exp = t0 + 86400,
                        .jti = "abcDEF-_0123456789xyz1"};
    size_t n = net_jwt_sign(k, &c, out, sizeof(out));
    cr_assert_eq(n, strlen(vector));
    cr_assert_str_eq(out, vector);
    net_jwt_claims_t claims;
    cr_assert_eq(net_jwt_verify(k, vector, strlen(vector), t0 + 10, &claims), NET_JWT_OK);
    cr_assert_str_eq(claims.sub, c.sub);
    cr_assert_str_eq(claims.jti, c.jti);
    cr_assert_eq(claims.iat, t0);
    cr_assert_eq(claims.exp, t0 + 86400);
    cr_assert_not(claims.signed_with_previous);
    net_jwt_claims_dispose(&claims);
    net_jwt_claims_dispose(&claims); /* twice is harmless */
    net_jwt_keys_free(k);
}

Test(net_jwt, round_trip_with_random_jti_and_custom_claims)
{
    net_jwt_keys_t *k = keys(secret_a, NULL);
    net_jwt_claim_t extra[] = {{"address", "0xabc"}, {"role", "user"}};
    net_jwt_sign_t c = {.sub = "user-42",
                        .iat = t0,
                        .exp = t0 + 3600,
                        .nbf = t0 - 5,
                        .extra = extra,
                        .extra_count = 2};
    char t1[1024], t2[1024];
    cr_assert_gt(net_jwt_sign(k, &c, t1, sizeof(t1)), 0);
    cr_assert_gt(net_jwt_sign(k, &c, t2, sizeof(t2)), 0);
    cr_assert_str_neq(t1, t2, "two tokens share a jti");
    net_jwt_claims_t claims;
    cr_assert_eq(net_jwt_verify(k, t1, strlen(t1), t0 + 1, &claims), NET_JWT_OK);
    cr_assert_eq(strlen(claims.jti), NET_JWT_JTI_LEN);
    cr_assert_eq(
        strspn(claims.jti, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        NET_JWT_JTI_LEN);
    cr_assert_eq(claims.nbf, t0 - 5);
    cr_assert_str_eq(net_jwt_claim(&claims, "address"), "0xabc");
    cr_assert_str_eq(net_jwt_claim(&claims, "role"), "user");
    cr_assert_null(net_jwt_claim(&claims, "missing"));
    net_jwt_claims_dispose(&claims);
    net_jwt_keys_free(k);
}

Test(net_jwt, any_changed_character_is_refused)
{
    net_jwt_keys_t *k = keys(secret_a, NULL);
    char token[1024];
    size_t n = sign(k, t0, t0 + 3600, token, sizeof(token));
    for (size_t i = 0; i != n; ++i) {
        char saved = token[i];
        /* swap within the alphabet so that most changes still decode */
        token[i] = saved == 'A' ? 'B' : saved == '.' ? 'x' : 'A';
        cr_assert_neq(verify(k, token, t0), NET_JWT_OK, "character %zu changed, still accepted", i);
        token[i] = saved;
    }
    cr_assert_eq(verify(k, token, t0), NET_JWT_OK);
    /* payload swapped for another validly encoded one: the signature no longer matches */
    char forged[1024];
    forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", good_payload, "not-the-secret-not-the-secret-!!",
          forged);
    cr_assert_eq(verify(k, forged, t0), NET_JWT_BAD_SIGNATURE);
    net_jwt_keys_free(k);
}

Test(net_jwt, clock_exp_nbf_iat_with_skew)
{
    net_jwt_keys_t *k = keys(secret_a, NULL);
    char token[1024];
    sign(k, t0, t0 + 600, token, sizeof(token));
    cr_assert_eq(verify(k, token, t0 + 600 + NET_JWT_SKEW_S - 1), NET_JWT_OK);
    cr_assert_eq(verify(k, token, t0 + 600 + NET_JWT_SKEW_S), NET_JWT_EXPIRED);
    cr_assert_eq(verify(k, token, t0 + 86400), NET_JWT_EXPIRED);
    /* issued in the future beyond the skew */
    cr_assert_eq(verify(k, token, t0 - NET_JWT_SKEW_S), NET_JWT_OK);
    cr_assert_eq(verify(k, token, t0 - NET_JWT_SKEW_S - 1), NET_JWT_NOT_YET_VALID);
    /* nbf in the future */
    net_jwt_sign_t c = {.sub = "u", .iat = t0, .exp = t0 + 3600, .nbf = t0 + 300};
    cr_assert_gt(net_jwt_sign(k, &c, token, sizeof(token)), 0);
    cr_assert_eq(verify(k, token, t0), NET_JWT_NOT_YET_VALID);
    cr_assert_eq(verify(k, token, t0 + 300 - NET_JWT_SKEW_S), NET_JWT_OK);
    /* extreme claims do not overflow anything */
    char forged[1024];
    forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
          "{\"sub\":\"u\",\"iat\":-9223372036854775808,\"exp\":9223372036854775807,\"jti\":\"j\","
          "\"nbf\":-9223372036854775808}",
          secret_a, forged);
    cr_assert_eq(verify(k, forged, t0), NET_JWT_OK);
    net_jwt_keys_free(k);
}

Test(net_jwt, header_must_be_exactly_hs256_jwt)
{
    net_jwt_keys_t *k = keys(secret_a, NULL);
    static const char *const bad[] = {
        "{\"alg\":\"none\",\"typ\":\"JWT\"}",
        "{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
        "{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
        "{\"alg\":\"hs256\",\"typ\":\"JWT\"}",
        "{\"typ\":\"JWT\"}",
        "{\"alg\":\"HS256\"}",
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"1\"}",
        "{\"alg\":\"HS256\",\"alg\":\"none\",\"typ\":\"JWT\"}",
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"typ\":\"JWT\"}",
        "{\"alg\":null,\"typ\":\"JWT\"}",
        "[\"HS256\"]",
        "not json",
    };
    char token[1024];
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        /* signed with the real secret: only the header is wrong */
        forge(bad[i], good_payload, secret_a, token);
        cr_assert_eq(verify(k, token, t0), NET_JWT_BAD_HEADER, "header %s accepted", bad[i]);
    }
    /* alg none with an empty signature is not even well-formed */
    forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", good_payload, secret_a, token);
    *(strrchr(token, '.') + 1) = '\0';
    cr_assert_eq(verify(k, token, t0), NET_JWT_MALFORMED);
    /* key order and spacing do not matter */
    forge("{ \"typ\" : \"JWT\", \"alg\" : \"HS256\" }", good_payload, secret_a, token);
    cr_assert_eq(verify(k, token, t0), NET_JWT_OK);
    net_jwt_keys_free(k);
}

Test(net_jwt, payload_claims_are_typed)
{
    net_jwt_keys_t *k = keys(secret_a, NULL);
    static const char *const bad[] = {
        "{\"iat\":1790000000,\"exp\":1790003600,\"jti\":\"j\"}",              /* no sub */
        "{\"sub\":\"\",\"iat\":1790000000,\"exp\":1790003600,\"jti\":\"j\"}", /* empty sub */
        "{\"sub\":1,\"iat\":1790000000,\"exp\":1790003600,\"jti\":\"j\"}",
        "{\"sub\":\"u\",\"iat\":1790000000,\"jti\":\"j\"}", /* no exp */
        "{\"sub\":\"u\",\"iat\":1790000000,\"exp\":1.7900036e9,\"jti\":\"j\"}",
        "{\"sub\":\"u\",\"iat\":\"1790000000\",\"exp\":1790003600,\"jti\":\"j\"}",
        "{\"sub\":\"u\",\"iat\":1790000000,\"exp\":1790003600}", /* no jti */
        "{\"sub\":\"u\",\"iat\":1790000000,\"exp\":1790003600,\"jti\":\"j\",\"nbf\":true}",
        "{\"sub\":\"u\",\"iat\":1790000000,\"exp\":1790000000,\"jti\":\"j\"}", /* exp == iat */
        "{\"sub\":\"u\",\"sub\":\"admin\",\"iat\":1790000000,\"exp\":1790003600,\"jti\":\"j\"}",
        "[1]",
    };
    char token[2048];
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", bad[i], secret_a, token);
        cr_assert_eq(verify(k, token, t0), NET_JWT_MALFORMED, "payload %s accepted", bad[i]);
    }
    net_jwt_keys_free(k);
}

Test(net_jwt, rotation_accepts_the_previous_secret)
{
    net_jwt_keys_t *old_only = keys(secret_a, NULL), *rotated = keys(secret_b, secret_a),
                   *new_only = keys(secret_b, NULL);
    char old_token[1024], new_token[1024];
    sign(old_only, t0, t0 + 3600, old_token, sizeof(old_token));
    sign(rotated, t0, t0 + 3600, new_token, sizeof(new_token));
    net_jwt_claims_t claims;
    cr_assert_eq(net_jwt_verify(rotated, old_token, strlen(old_token), t0, &claims), NET_JWT_OK);
    cr_assert(claims.signed_with_previous);
    net_jwt_claims_dispose(&claims);
    cr_assert_eq(net_jwt_verify(rotated, new_token, strlen(new_token), t0, &claims), NET_JWT_OK);
    cr_assert_not(claims.signed_with_previous, "signing uses the current secret");
    net_jwt_claims_dispose(&claims);
    cr_assert_eq(verify(new_only, old_token, t0), NET_JWT_BAD_SIGNATURE);
    cr_assert_eq(verify(old_only, new_token, t0), NET_JWT_BAD_SIGNATURE);
    net_jwt_keys_free(old_only);
    net_jwt_keys_free(rotated);
    net_jwt_keys_free(new_only);
}

Test(net_jwt, base64url_is_strict)
{
    uint8_t out[64];
    size_t n;
    cr_assert(net_jwt_b64url_decode("QQ", 2, out, sizeof(out), &n));
    cr_assert_eq(n, 1);
    cr_assert_eq(out[0], 'A');
    cr_assert_not(net_jwt_b64url_decode("QQ==", 4, out, sizeof(out), &n), "padding accepted");
    cr_assert_not(net_jwt_b64url_decode("QR", 2, out, sizeof(out), &n), "non-canonical accepted");
    cr_assert(net_jwt_b64url_decode("QUI", 3, out, sizeof(out), &n));
    cr_assert(n == 2 && memcmp(out, "AB", 2) == 0);
    cr_assert_not(net_jwt_b64url_decode("QUJ", 3, out, sizeof(out), &n), "non-canonical accepted");
    cr_assert_not(net_jwt_b64url_decode("Q", 1, out, sizeof(out), &n));
    cr_assert_not(net_jwt_b64url_decode("a+b/", 4, out, sizeof(out), &n), "standard alphabet");
    cr_assert_not(net_jwt_b64url_decode("ab c", 4, out, sizeof(out), &n));
    cr_assert(net_jwt_b64url_decode("-_-_", 4, out, sizeof(out), &n));
    cr_assert_not(net_jwt_b64url_decode("AAAAAAAA", 8, out, 5, &n), "overflowed the buffer");
    /* a real token with padding or standard characters is refused */
    net_jwt_keys_t *k = keys(secret_a, NULL);
    char token[1024], bad[1100];
    size_t len = sign(k, t0, t0 + 3600, token, sizeof(token));
    snprintf(bad, sizeof(bad), "%s=", token);
    cr_assert_eq(verify(k, bad, t0), NET_JWT_MALFORMED);
    char *dot = strchr(token, '.');
    snprintf(bad, sizeof(bad), "%.*s=%s", (int)(dot - token), token, dot);
    cr_assert_eq(verify(k, bad, t0), NET_JWT_MALFORMED);
    for (size_t i = 0; i != len; ++i)
        if (token[i] == '-' || token[i] == '_') {
            token[i] = token[i] == '-' ? '+' : '/';
            cr_assert_eq(verify(k, token, t0), NET_JWT_MALFORMED);
            break;
        }
    net_jwt_keys_free(k);
}

Test(net_jwt, shape_and_size_limits)
{
    net_jwt_keys_t *k = keys(secret_a, NULL);
    static const char *const bad[] = {"", "a", "a.b", "a.b.c.d", "..", "...", "a..c"};
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i)
        cr_assert_eq(verify(k, bad[i], t0), NET_JWT_MALFORMED, "'%s' accepted", bad[i]);
    static char huge[NET_JWT_MAX_LEN + 2];
    memset(huge, 'A', sizeof(huge) - 1);
    huge[10] = huge[20] = '.';
    cr_assert_eq(verify(k, huge, t0), NET_JWT_MALFORMED);
    /* signing refuses what verifying would refuse */
    char token[NET_JWT_MAX_LEN + 1];
    net_jwt_claim_t reserved[] = {{"exp", "1"}}, dup[] = {{"a", "1"}, {"a", "2"}};
    net_jwt_sign_t c = {.sub = "u", .iat = t0, .exp = t0 + 1};
    cr_assert_gt(net_jwt_sign(k, &c, token, sizeof(token)), 0);
    c.extra = reserved, c.extra_count = 1;
    cr_assert_eq(net_jwt_sign(k, &c, token, sizeof(token)), 0, "a registered name as custom");
    c.extra = dup, c.extra_count = 2;
    cr_assert_eq(net_jwt_sign(k, &c, token, sizeof(token)), 0, "a custom claim twice");
    c.extra_count = 0, c.exp = t0;
    cr_assert_eq(net_jwt_sign(k, &c, token, sizeof(token)), 0, "exp <= iat");
    c.exp = t0 + 1, c.sub = "";
    cr_assert_eq(net_jwt_sign(k, &c, token, sizeof(token)), 0, "empty sub");
    char long_sub[NET_JWT_MAX_SUB + 2];
    memset(long_sub, 'x', sizeof(long_sub) - 1);
    long_sub[sizeof(long_sub) - 1] = '\0';
    c.sub = long_sub;
    cr_assert_eq(net_jwt_sign(k, &c, token, sizeof(token)), 0, "sub too long");
    c.sub = "u";
    cr_assert_eq(net_jwt_sign(k, &c, token, 20), 0, "overflowed the output");
    net_jwt_keys_free(k);
}

Test(net_jwt, secrets_are_checked_and_never_echoed)
{
    char err[256];
    const char *short_secret = "tooshort-secret-value";
    cr_assert_null(net_jwt_keys_load(short_secret, NULL, err, sizeof(err)));
    cr_assert_null(strstr(err, short_secret), "the secret is in the error");
    cr_assert_not_null(strstr(err, "JWT_SECRET"));
    cr_assert_null(net_jwt_keys_load(NULL, NULL, err, sizeof(err)));
    cr_assert_null(net_jwt_keys_load(secret_a, short_secret, err, sizeof(err)));
    cr_assert_null(strstr(err, short_secret));
    cr_assert_not_null(strstr(err, "JWT_SECRET_PREVIOUS"));
    net_jwt_keys_t *k = net_jwt_keys_load(secret_a, "", err, sizeof(err));
    cr_assert_not_null(k, "an empty previous secret means none");
    net_jwt_keys_free(k);
    cr_assert_str_eq(net_jwt_result_str(NET_JWT_EXPIRED), "expired");
}
