/*
 * Session tokens: HS256 JSON Web Tokens (RFC 7519), HMAC-SHA256 by wolfSSL.
 *
 * We only verify tokens we issued, so verification is as narrow as issuing:
 * - three base64url parts without padding, strictly: '=' , '+', '/', whitespace and
 *   non-canonical trailing bits are refused, and the whole token is at most NET_JWT_MAX_LEN;
 * - the header is exactly {"alg":"HS256","typ":"JWT"} (any key order): "none", any other
 *   algorithm, a missing alg, any other member and duplicated keys are refused;
 * - the signature is checked before the payload is parsed, in constant time, with the current
 *   secret and then, during a rotation, the previous one;
 * - the payload has sub (string), iat and exp (integers), jti (string), and optionally nbf
 *   (integer), no duplicated keys; exp, nbf and iat are checked against the caller's `now`
 *   with NET_JWT_SKEW_S of tolerance either way.
 *
 * Secrets. A secret is the raw bytes of its setting (JWT_SECRET, JWT_SECRET_PREVIOUS), at
 * least NET_JWT_MIN_SECRET bytes. They live on their own page, locked when the system lets us,
 * left out of core dumps and wiped on free; this module never logs, and its error strings never
 * contain a secret or a token.
 */
#ifndef NET_JWT_H
#define NET_JWT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_JWT_MIN_SECRET 32  /* bytes: HMAC-SHA256's own output size (RFC 7518 3.2) */
#define NET_JWT_MAX_SECRET 512 /* bytes */
#define NET_JWT_MAX_LEN 4096   /* a whole token, in characters */
#define NET_JWT_MAX_SUB 128    /* bytes of the subject */
#define NET_JWT_MAX_JTI 64     /* bytes of the token id */
#define NET_JWT_MAX_EXTRA 8    /* custom string claims */
#define NET_JWT_SKEW_S 60      /* clock skew tolerated on exp, nbf and iat */
#define NET_JWT_JTI_LEN 22     /* a generated jti: 128 random bits, base64url */

/** The current and the previous secret, on a page of their own (opaque). */
typedef struct st_net_jwt_keys_t net_jwt_keys_t;

/** A custom claim: a string value under a name that is not a registered claim. */
typedef struct st_net_jwt_claim_t {
    const char *name;
    const char *value;
} net_jwt_claim_t;

/** What to sign. */
typedef struct st_net_jwt_sign_t {
    const char *sub; /* required, 1..NET_JWT_MAX_SUB bytes */
    int64_t iat;     /* issued at, unix seconds */
    int64_t exp;     /* expires at, unix seconds, > iat */
    const char *jti; /* NULL: NET_JWT_JTI_LEN characters from 128 random bits */
    int64_t nbf;     /* not before, unix seconds; 0: no nbf claim */
    const net_jwt_claim_t *extra;
    size_t extra_count; /* <= NET_JWT_MAX_EXTRA */
} net_jwt_sign_t;

/** Why a token was refused; only OK is acceptance. */
typedef enum en_net_jwt_result_t {
    NET_JWT_OK,
    NET_JWT_MALFORMED,     /* encoding, size, JSON, or a claim missing or of the wrong type */
    NET_JWT_BAD_HEADER,    /* anything but {"alg":"HS256","typ":"JWT"} */
    NET_JWT_BAD_SIGNATURE, /* neither secret signed it */
    NET_JWT_EXPIRED,       /* now >= exp + skew */
    NET_JWT_NOT_YET_VALID, /* now + skew < nbf, or iat in the future */
} net_jwt_result_t;

/** A verified token's claims. */
typedef struct st_net_jwt_claims_t {
    char sub[NET_JWT_MAX_SUB + 1];
    char jti[NET_JWT_MAX_JTI + 1];
    int64_t iat, exp, nbf;     /* nbf 0 when absent */
    bool signed_with_previous; /* the previous secret matched: reissue the token */
    json_t *payload;           /* all claims, for custom ones; owned: net_jwt_claims_dispose */
} net_jwt_claims_t;

/** Loads the current secret and, during a rotation, the previous one (NULL or empty: none).
 * NULL with `err` set when a secret is missing, shorter than NET_JWT_MIN_SECRET or longer than
 * NET_JWT_MAX_SECRET, or memory cannot be had; `err` never contains the secret. */
net_jwt_keys_t *net_jwt_keys_load(const char *current, const char *previous, char *err,
                                  size_t err_size);
/** Wipes and frees the secrets. */
void net_jwt_keys_free(net_jwt_keys_t *keys);

/** Signs a token with the current secret into `out` (NUL-terminated). Returns its length, or 0
 * when a claim is invalid, a custom claim uses a registered name, the token does not fit in
 * `cap`, or randomness is unavailable. */
size_t net_jwt_sign(const net_jwt_keys_t *keys, const net_jwt_sign_t *claims, char *out,
                    size_t cap);
/** Verifies `token` at unix time `now`. On NET_JWT_OK `out` is filled and owns a payload to
 * dispose; otherwise `out` holds nothing to dispose. */
net_jwt_result_t net_jwt_verify(const net_jwt_keys_t *keys, const char *token, size_t len,
                                int64_t now, net_jwt_claims_t *out);
/** The custom string claim `name` of a verified token, or NULL. */
const char *net_jwt_claim(const net_jwt_claims_t *claims, const char *name);
/** Releases what net_jwt_verify put in `claims`. Safe to call twice. */
void net_jwt_claims_dispose(net_jwt_claims_t *claims);
/** A short name for `result`, for logs ("expired"); never a token or a secret. */
const char *net_jwt_result_str(net_jwt_result_t result);

/** Writes the base64url form (no padding) of `len` bytes into `out` (room for
 * 4 * ceil(len / 3) + 1); returns the length written. */
size_t net_jwt_b64url_encode(const uint8_t *in, size_t len, char *out);
/** Decodes base64url without padding, strictly (alphabet, no '=', canonical last character);
 * returns false when `in` is not that or does not fit in `cap`. */
bool net_jwt_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *out_len);

#endif
