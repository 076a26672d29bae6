#include <wolfssl/options.h> /* first: it sets the macros the other wolfSSL headers depend on */
#include <wolfssl/wolfcrypt/hmac.h>
#include "net/jwt.h"
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#define MAC_BYTES 32
#define MAC_B64_LEN 43 /* 32 bytes in base64url without padding */
#define HEADER_MAX_BYTES 128
#define PAYLOAD_MAX_BYTES (NET_JWT_MAX_LEN / 4 * 3)
/* {"alg":"HS256","typ":"JWT"}: the only header we write, and the only one we accept */
static const char header_b64[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

struct st_net_jwt_keys_t {
    uint8_t current[NET_JWT_MAX_SECRET];
    size_t current_len;
    uint8_t previous[NET_JWT_MAX_SECRET];
    size_t previous_len; /* 0: no rotation under way */
};

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t net_jwt_b64url_encode(const uint8_t *in, size_t len, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url_alphabet[v >> 18];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (len - i == 1) {
        out[o++] = b64url_alphabet[in[i] >> 2];
        out[o++] = b64url_alphabet[(in[i] & 3) << 4];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];
        out[o++] = b64url_alphabet[v >> 10];
        out[o++] = b64url_alphabet[v >> 4 & 63];
        out[o++] = b64url_alphabet[(v & 15) << 2];
    }
    out[o] = '\0';
    return o;
}

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '-' ? 62 : c == '_' ? 63 : -1; /* '+', '/', '=' and the rest: refused */
}

bool net_jwt_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t rem = len % 4, need = len / 4 * 3 + (rem == 0 ? 0 : rem - 1);
    if (rem == 1 || need > cap)
        return false;
    uint32_t acc = 0;
    size_t o = 0;
    for (size_t i = 0; i != len; ++i) {
        int v = b64url_value(in[i]);
        if (v < 0)
            return false;
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            out[o++] = (uint8_t)(acc >> 16);
            out[o++] = (uint8_t)(acc >> 8);
            out[o++] = (uint8_t)acc;
            acc = 0;
        }
    }
    /* a short last group: the bits past the last byte must be zero, so that each byte string
     * has exactly one encoding (otherwise a token could be altered without touching its MAC) */
    if (rem == 2) {
        if ((acc & 15) != 0)
            return false;
        out[o++] = (uint8_t)(acc >> 4);
    } else if (rem == 3) {
        if ((acc & 3) != 0)
            return false;
        out[o++] = (uint8_t)(acc >> 10);
        out[o++] = (uint8_t)(acc >> 2);
    }
    assert(o == need);
    *out_len = o;
    return true;
}

static bool load_secret(const char *s, const char *name, uint8_t *dst, size_t *len, char *err,
                        size_t err_size)
{
    size_t n = strlen(s);
    if (n < NET_JWT_MIN_SECRET || n > NET_JWT_MAX_SECRET) {
        snprintf(err, err_size, "%s must be %d to %d bytes long", name, NET_JWT_MIN_SECRET,
                 NET_JWT_MAX_SECRET);
        return false;
    }
    memcpy(dst, s, n);
    *len = n;
    return true;
}

net_jwt_keys_t *net_jwt_keys_load(const char *current, const char *previous, char *err,
                                  size_t err_size)
{
    if (current == NULL || current[0] == '\0') {
        snprintf(err, err_size, "JWT_SECRET is not set");
        return NULL;
    }
    long page = sysconf(_SC_PAGESIZE);
    assert(page > 0 && (size_t)page >= sizeof(net_jwt_keys_t));
    /* its own page, so that it can be locked in memory and left out of core dumps */
    net_jwt_keys_t *keys =
        mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (keys == MAP_FAILED) {
        snprintf(err, err_size, "cannot allocate memory for the JWT secrets");
        return NULL;
    }
    madvise(keys, (size_t)page, MADV_DONTDUMP);
    mlock(keys, (size_t)page); /* best effort: RLIMIT_MEMLOCK may be 0 for unprivileged users */
    if (!load_secret(current, "JWT_SECRET", keys->current, &keys->current_len, err, err_size) ||
        (previous != NULL && previous[0] != '\0' &&
         !load_secret(previous, "JWT_SECRET_PREVIOUS", keys->previous, &keys->previous_len, err,
                      err_size))) {
        net_jwt_keys_free(keys);
        return NULL;
    }
    return keys;
}

void net_jwt_keys_free(net_jwt_keys_t *keys)
{
    if (keys == NULL)
        return;
    long page = sysconf(_SC_PAGESIZE);
    explicit_bzero(keys, sizeof(*keys)); /* not optimised away, unlike memset */
    munlock(keys, (size_t)page);
    munmap(keys, (size_t)page);
}

static bool hmac_sha256(const uint8_t *key, size_t key_len, const char *msg, size_t len,
                        uint8_t mac[MAC_BYTES])
{
    Hmac hmac;
    int ret = wc_HmacInit(&hmac, NULL, INVALID_DEVID);
    if (ret == 0)
        ret = wc_HmacSetKey(&hmac, WC_SHA256, key, (word32)key_len);
    if (ret == 0)
        ret = wc_HmacUpdate(&hmac, (const byte *)msg, (word32)len);
    if (ret == 0)
        ret = wc_HmacFinal(&hmac, mac);
    wc_HmacFree(&hmac);
    explicit_bzero(&hmac, sizeof(hmac)); /* it holds the key, padded */
    return ret == 0;
}

/* Compares without an early exit, so the time taken says nothing of where a MAC differs. */
static bool equal_ct(const uint8_t *a, const uint8_t *b, size_t len)
{
    volatile uint8_t diff = 0;
    for (size_t i = 0; i != len; ++i)
        diff |= a[i] ^ b[i];
    return diff == 0;
}

static bool is_registered(const char *name)
{
    static const char *const registered[] = {"iss", "sub", "aud", "exp", "nbf", "iat", "jti"};
    for (size_t i = 0; i != sizeof(registered) / sizeof(registered[0]); ++i)
        if (strcmp(name, registered[i]) == 0)
            return true;
    return false;
}

/* The payload object of `c`, or NULL when a claim is invalid (jansson also refuses strings that
 * are not UTF-8). */
static json_t *build_payload(const net_jwt_sign_t *c, const char *jti)
{
    size_t sub_len = c->sub != NULL ? strlen(c->sub) : 0;
    if (sub_len == 0 || sub_len > NET_JWT_MAX_SUB || jti[0] == '\0' ||
        strlen(jti) > NET_JWT_MAX_JTI || c->exp <= c->iat || c->extra_count > NET_JWT_MAX_EXTRA)
        return NULL;
    json_t *p = json_pack("{s:s,s:I,s:I,s:s}", "sub", c->sub, "iat", (json_int_t)c->iat, "exp",
                          (json_int_t)c->exp, "jti", jti);
    if (p != NULL && c->nbf != 0 && json_object_set_new(p, "nbf", json_integer(c->nbf)) != 0)
        goto fail;
    for (size_t i = 0; p != NULL && i != c->extra_count; ++i) {
        const net_jwt_claim_t *x = &c->extra[i];
        if (x->name == NULL || x->value == NULL || is_registered(x->name) ||
            json_object_get(p, x->name) != NULL ||
            json_object_set_new(p, x->name, json_string(x->value)) != 0)
            goto fail;
    }
    return p;
fail:
    json_decref(p);
    return NULL;
}

size_t net_jwt_sign(const net_jwt_keys_t *keys, const net_jwt_sign_t *claims, char *out, size_t cap)
{
    assert(keys->current_len >= NET_JWT_MIN_SECRET);
    char jti[NET_JWT_JTI_LEN + 1];
    if (claims->jti == NULL) {
        uint8_t random[16]; /* 128 bits: collisions are out of reach at any token rate */
        if (getrandom(random, sizeof(random), 0) != sizeof(random))
            return 0;
        net_jwt_b64url_encode(random, sizeof(random), jti);
    }
    json_t *payload = build_payload(claims, claims->jti != NULL ? claims->jti : jti);
    char json[PAYLOAD_MAX_BYTES];
    size_t json_len = payload != NULL ? json_dumpb(payload, json, sizeof(json), JSON_COMPACT) : 0;
    json_decref(payload);
    size_t header_len = sizeof(header_b64) - 1, body_len = (json_len + 2) / 3 * 4;
    size_t total = header_len + 1 + body_len + 1 + MAC_B64_LEN;
    if (json_len == 0 || json_len > sizeof(json) || total > NET_JWT_MAX_LEN || total + 1 > cap)
        return 0;
    memcpy(out, header_b64, header_len);
    out[header_len] = '.';
    size_t len = header_len + 1;
    len += net_jwt_b64url_encode((const uint8_t *)json, json_len, out + len);
    uint8_t mac[MAC_BYTES];
    if (!hmac_sha256(keys->current, keys->current_len, out, len, mac))
        return 0;
    out[len++] = '.';
    len += net_jwt_b64url_encode(mac, sizeof(mac), out + len);
    assert(len <= total && out[len] == '\0');
    return len;
}

/* Parses one decoded JSON part, refusing duplicated keys; NULL unless it is an object. */
static json_t *parse_object(const uint8_t *buf, size_t len)
{
    json_error_t error;
    json_t *v =
        len != 0 ? json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &error) : NULL;
    if (v != NULL && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

static bool header_ok(const uint8_t *buf, size_t len)
{
    json_t *h = parse_object(buf, len);
    bool ok = h != NULL && json_object_size(h) == 2 && json_is_string(json_object_get(h, "alg")) &&
              strcmp(json_string_value(json_object_get(h, "alg")), "HS256") == 0 &&
              json_is_string(json_object_get(h, "typ")) &&
              strcmp(json_string_value(json_object_get(h, "typ")), "JWT") == 0;
    json_decref(h);
    return ok;
}

/* Which secret made `mac` over `signed_part`: 1 the current, 2 the previous, 0 neither. */
static int signer(const net_jwt_keys_t *keys, const char *signed_part, size_t len,
                  const uint8_t mac[MAC_BYTES])
{
    uint8_t expected[MAC_BYTES];
    if (hmac_sha256(keys->current, keys->current_len, signed_part, len, expected) &&
        equal_ct(mac, expected, MAC_BYTES))
        return 1;
    if (keys->previous_len != 0 &&
        hmac_sha256(keys->previous, keys->previous_len, signed_part, len, expected) &&
        equal_ct(mac, expected, MAC_BYTES))
        return 2;
    return 0;
}

/* Copies a string claim of 1..cap-1 bytes; false when absent, not a string or too long. */
static bool string_claim(const json_t *p, const char *name, char *dst, size_t cap)
{
    const json_t *v = json_object_get(p, name);
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= cap)
        return false;
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return true;
}

/* Reads an integer claim; false when present but not an integer, or required and absent. */
static bool int_claim(const json_t *p, const char *name, bool required, int64_t *out)
{
    const json_t *v = json_object_get(p, name);
    *out = 0;
    if (v == NULL)
        return !required;
    if (!json_is_integer(v))
        return false;
    *out = json_integer_value(v);
    return true;
}

/* The registered claims of an authenticated payload, then the clock. */
static net_jwt_result_t check_claims(json_t *payload, int64_t now, net_jwt_claims_t *out)
{
    if (!string_claim(payload, "sub", out->sub, sizeof(out->sub)) ||
        !string_claim(payload, "jti", out->jti, sizeof(out->jti)) ||
        !int_claim(payload, "iat", true, &out->iat) ||
        !int_claim(payload, "exp", true, &out->exp) ||
        !int_claim(payload, "nbf", false, &out->nbf) || out->exp <= out->iat)
        return NET_JWT_MALFORMED;
    /* arithmetic on `now` only: claims may hold any int64 and must not overflow */
    if (now - NET_JWT_SKEW_S >= out->exp)
        return NET_JWT_EXPIRED;
    if (out->nbf > now + NET_JWT_SKEW_S || out->iat > now + NET_JWT_SKEW_S)
        return NET_JWT_NOT_YET_VALID;
    return NET_JWT_OK;
}

net_jwt_result_t net_jwt_verify(const net_jwt_keys_t *keys, const char *token, size_t len,
                                int64_t now, net_jwt_claims_t *out)
{
    assert(keys->current_len >= NET_JWT_MIN_SECRET);
    assert(now > 0 && now < INT64_MAX / 2);
    memset(out, 0, sizeof(*out));
    if (len == 0 || len > NET_JWT_MAX_LEN)
        return NET_JWT_MALFORMED;
    const char *end = token + len, *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 != NULL ? memchr(dot1 + 1, '.', (size_t)(end - dot1 - 1)) : NULL;
    if (dot2 == NULL || memchr(dot2 + 1, '.', (size_t)(end - dot2 - 1)) != NULL)
        return NET_JWT_MALFORMED;
    /* every part must be strict base64url before anything is computed over it */
    uint8_t header_buf[HEADER_MAX_BYTES], payload_buf[PAYLOAD_MAX_BYTES], mac[MAC_BYTES];
    size_t header_len, payload_len, mac_len;
    if (!net_jwt_b64url_decode(token, (size_t)(dot1 - token), header_buf, sizeof(header_buf),
                               &header_len) ||
        !net_jwt_b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), payload_buf,
                               sizeof(payload_buf), &payload_len) ||
        !net_jwt_b64url_decode(dot2 + 1, (size_t)(end - dot2 - 1), mac, sizeof(mac), &mac_len) ||
        mac_len != MAC_BYTES)
        return NET_JWT_MALFORMED;
    if (!header_ok(header_buf, header_len))
        return NET_JWT_BAD_HEADER;
    /* authenticate before parsing what the payload says */
    int which = signer(keys, token, (size_t)(dot2 - token), mac);
    if (which == 0)
        return NET_JWT_BAD_SIGNATURE;
    json_t *payload = parse_object(payload_buf, payload_len);
    net_jwt_result_t result = payload != NULL ? check_claims(payload, now, out) : NET_JWT_MALFORMED;
    if (result != NET_JWT_OK) {
        json_decref(payload);
        memset(out, 0, sizeof(*out));
        return result;
    }
    out->signed_with_previous = which == 2;
    out->payload = payload;
    return NET_JWT_OK;
}

const char *net_jwt_claim(const net_jwt_claims_t *claims, const char *name)
{
    return json_string_value(json_object_get(claims->payload, name));
}

void net_jwt_claims_dispose(net_jwt_claims_t *claims)
{
    json_decref(claims->payload);
    claims->payload = NULL;
}

const char *net_jwt_result_str(net_jwt_result_t result)
{
    switch (result) {
    case NET_JWT_OK:
        return "ok";
    case NET_JWT_MALFORMED:
        return "malformed";
    case NET_JWT_BAD_HEADER:
        return "bad_header";
    case NET_JWT_BAD_SIGNATURE:
        return "bad_signature";
    case NET_JWT_EXPIRED:
        return "expired";
    case NET_JWT_NOT_YET_VALID:
        return "not_yet_valid";
    }
    return "unknown";
}
