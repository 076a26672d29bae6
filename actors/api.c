#include "actors/api.h"
#include <arpa/inet.h>
#include <assert.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include "chain/eip191.h"
#include "chain/hex.h"
#include "chain/rfc3339.h"
#include "chain/siwe.h"
#include "net/http_async.h"
#include "net/http_util.h"
#include "net/json.h"
#include "net/problem.h"
#include "runtime/log.h"

#include "actors/api_guard.h"
#include "actors/api_internal.h"

/* ---- statements ---- */

/* The user object's columns, in the order user_json reads them. */
#define USER_COLUMNS                                                                               \
    "id::text, encode(wallet_address, 'hex'), telegram_id, encode(email, 'hex'),"                  \
    " extract(epoch FROM created_at)::bigint, extract(epoch FROM last_active)::bigint"

static int st_nonce_insert, st_sign_in, st_audit, st_profile_touch, st_profile_email;

void api_register_statements(void)
{
    st_nonce_insert = store_pg_statement(
        "nonce_insert", "INSERT INTO auth_nonces (nonce, wallet_address, issued_at, expires_at)"
                        " VALUES ($1, decode($2, 'hex'), to_timestamp($3), to_timestamp($4))");
    /* One statement, so one implicit transaction: the nonce is spent, the user created or
     * touched and the sign-in audited together, or none of it happens. No row back means the
     * nonce was unknown, spent, expired or issued for another address. */
    st_sign_in = store_pg_statement(
        "sign_in", "WITH spent AS (UPDATE auth_nonces SET used_at = now()"
                   "   WHERE nonce = $1 AND wallet_address = decode($2, 'hex') AND used_at IS NULL"
                   "   AND expires_at > now() RETURNING wallet_address),"
                   " u AS (INSERT INTO users (wallet_address) SELECT wallet_address FROM spent"
                   "   ON CONFLICT (wallet_address) DO UPDATE SET last_active = now() RETURNING *),"
                   " a AS (INSERT INTO audit_log (user_id, actor, action, subject_id, remote_ip)"
                   "   SELECT id, 'user', 'auth.sign_in', id, $3::inet FROM u)"
                   " SELECT " USER_COLUMNS " FROM u");
    st_audit = store_pg_statement(
        "audit",
        "INSERT INTO audit_log (user_id, actor, action, remote_ip, details)"
        " VALUES ($1::uuid, 'user', $2, $3::inet, jsonb_build_object('reason', $4::text))");
    st_profile_touch =
        store_pg_statement("profile_touch", "UPDATE users SET last_active = now() WHERE id = $1"
                                            " RETURNING " USER_COLUMNS);
    st_profile_email = store_pg_statement(
        "profile_email",
        "WITH u AS (UPDATE users SET email = decode($2, 'hex'), email_hash = decode($3, 'hex'),"
        "   last_active = now() WHERE id = $1 RETURNING *),"
        " a AS (INSERT INTO audit_log (user_id, actor, action, subject_id, remote_ip)"
        "   SELECT id, 'user', 'user.update_profile', id, $4::inet FROM u)"
        " SELECT " USER_COLUMNS " FROM u");
    api__intents_register_statements();
    api__guard_register_statements();
    api__history_register_statements();
    api__notifications_register_statements();
    api__account_register_statements();
}

/* ---- small helpers ---- */

store_pg_t *api__pool(api_t *api)
{
    return atomic_load_explicit(&api->pg, memory_order_acquire);
}

/* Dotted-quad text of an IPv4 address. glibc's inet_ntop goes through sprintf, and this runs for
 * every request (the IP rate limit's key). */
static void format_ipv4(const struct in_addr *addr, char out[INET_ADDRSTRLEN])
{
    const uint8_t *b = (const uint8_t *)&addr->s_addr; /* network order: first octet first */
    char *p = out;
    for (int i = 0; i != 4; ++i) {
        if (b[i] >= 100)
            *p++ = (char)('0' + b[i] / 100);
        if (b[i] >= 10)
            *p++ = (char)('0' + b[i] / 10 % 10);
        *p++ = (char)('0' + b[i] % 10);
        *p++ = i != 3 ? '.' : '\0';
    }
}

void api__peer_ip(h2o_req_t *req, char out[INET6_ADDRSTRLEN])
{
    struct sockaddr_storage ss;
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    out[0] = '\0';
    if (len != 0 && ss.ss_family == AF_INET)
        format_ipv4(&((struct sockaddr_in *)&ss)->sin_addr, out);
    else if (len != 0 && ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, INET6_ADDRSTRLEN);
    if (out[0] == '\0')
        strcpy(out, "0.0.0.0");
}

json_t *api__time_json(int64_t unix_s)
{
    char buf[CHAIN_RFC3339_SIZE];
    return chain_rfc3339_format(unix_s, buf) == CHAIN_OK ? json_string(buf) : json_null();
}

/* 16 characters from [A-Za-z0-9]: EIP-4361 wants at least 8 alphanumerics; 95 bits here. */
static bool random_nonce(char out[17])
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    uint8_t bytes[16];
    if (getrandom(bytes, sizeof(bytes), 0) != sizeof(bytes))
        return false;
    for (int i = 0; i != 16; ++i)
        out[i] = alphabet[bytes[i] % 62]; /* 256 % 62 bias is negligible for a nonce */
    out[16] = '\0';
    return true;
}

/* The user object of api.md from a row of USER_COLUMNS. */
static json_t *user_json(api_t *api, const PGresult *res, int row)
{
    chain_addr_t wallet;
    char wallet_str[CHAIN_ADDR_STR_SIZE], hex[43];
    snprintf(hex, sizeof(hex), "0x%s", PQgetvalue(res, row, 1));
    if (chain_addr_parse(&wallet, hex, strlen(hex)) == CHAIN_OK)
        chain_addr_format(&wallet, wallet_str);
    else
        snprintf(wallet_str, sizeof(wallet_str), "%s", hex);
    json_t *email = json_null();
    if (!PQgetisnull(res, row, 3) && api->config.data_key != NULL) {
        const char *sealed_hex = PQgetvalue(res, row, 3);
        uint8_t sealed[512], plain[512];
        size_t sealed_len, plain_len;
        if (chain_hex_decode(sealed, sizeof(sealed), &sealed_len, sealed_hex, strlen(sealed_hex),
                             0) == CHAIN_OK &&
            store_crypto_open(api->config.data_key, "users.email", sealed, sealed_len, plain,
                              sizeof(plain), &plain_len))
            email = json_stringn((const char *)plain, plain_len);
    }
    return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "id", PQgetvalue(res, row, 0),
                     "walletAddress", wallet_str, "telegramId",
                     PQgetisnull(res, row, 2) ? json_null()
                                              : json_integer(atoll(PQgetvalue(res, row, 2))),
                     "email", email, "createdAt", api__time_json(atoll(PQgetvalue(res, row, 4))),
                     "lastActive", api__time_json(atoll(PQgetvalue(res, row, 5))));
}

/* Answers a database failure: busy or down is 503, anything else a 500 without details. */
void api__answer_store_failure(h2o_req_t *req, const store_pg_result_t *r)
{
    if (r->status == STORE_PG_ERROR) {
        rt_log_error("api", "database error %s: %s", r->sqlstate, r->message);
        net_problem_internal(req);
    } else {
        net_problem_unavailable(req, 1);
    }
}

/* ---- audit of refused authorisations (fire and forget) ---- */

static void ignore_reply(net_http_async_t *call, rt_msg_t *msg)
{
}

/* Records a refused authorisation. The insert's answer is not awaited: the call ends at once
 * and its reply is dropped. A full queue drops the row and says so in the log. */
void api__audit_refusal(api_t *api, h2o_req_t *req, const char *user_id, const char *action,
                        const char *reason)
{
    store_pg_t *pg = api__pool(api);
    if (pg == NULL)
        return;
    char ip[INET6_ADDRSTRLEN];
    api__peer_ip(req, ip);
    net_http_async_t *call = net_http_async_begin(req, ignore_reply, 0);
    const char *params[] = {user_id, action, ip, reason};
    if (!store_pg_query(pg, net_http_async_actor(call), 0, st_audit, 4, params))
        rt_log_warn("api", "audit row dropped (database busy): %s %s", action, reason);
    net_http_async_end(call);
}

/* ---- authentication ---- */

_Static_assert(sizeof(api_user_t) <= API_CACHE_TOKEN_VALUE_MAX, "a user fits a token's value");

net_jwt_result_t api__verify_session(api_t *api, const char *token, size_t len, api_user_t *user,
                                     bool *session)
{
    int64_t now = (int64_t)time(NULL);
    *session = true;
    if (api_cache_token_get(api->cache, token, len, now, user, sizeof(*user)))
        return NET_JWT_OK;
    net_jwt_claims_t claims;
    net_jwt_result_t result = net_jwt_verify(api->config.jwt_keys, token, len, now, &claims);
    if (result != NET_JWT_OK)
        return result;
    const char *wallet = net_jwt_claim(&claims, "wal");
    *session =
        wallet != NULL && chain_addr_parse(&user->wallet, wallet, strlen(wallet)) == CHAIN_OK;
    snprintf(user->id, sizeof(user->id), "%s", claims.sub);
    /* the window in which net_jwt_verify accepts it: now - skew < exp, nbf and iat <= now + skew
     * (claims of a token we signed: no overflow) */
    int64_t from = (claims.nbf > claims.iat ? claims.nbf : claims.iat) - NET_JWT_SKEW_S;
    if (*session)
        api_cache_token_put(api->cache, token, len, from, claims.exp + NET_JWT_SKEW_S, user,
                            sizeof(*user));
    net_jwt_claims_dispose(&claims);
    return NET_JWT_OK;
}

bool api__authenticate(api_t *api, h2o_req_t *req, api_user_t *user)
{
    if (api__guard_user(req, user))
        return true; /* the guard verified this request's token a moment ago */
    h2o_iovec_t token;
    if (!net_http_bearer_token(req, &token)) {
        net_problem_unauthorized(req, "a bearer token is required");
        return false;
    }
    bool session;
    net_jwt_result_t result = api__verify_session(api, token.base, token.len, user, &session);
    if (result != NET_JWT_OK) {
        api__audit_refusal(api, req, NULL, "auth.refused", net_jwt_result_str(result));
        net_problem_unauthorized(req, "the token is invalid or expired");
        return false;
    }
    if (!session) { /* signed by us but without the wallet claim: not a session token */
        net_problem_unauthorized(req, "the token is not a session token");
        return false;
    }
    return true;
}

/* ---- POST /api/auth/nonce ---- */

typedef struct st_nonce_call_t {
    char nonce[17];
    int64_t expires_at;
    char message[CHAIN_SIWE_MAX_LEN + 1];
} nonce_call_t;

static void nonce_stored(net_http_async_t *call, rt_msg_t *msg)
{
    h2o_req_t *req = net_http_async_req(call);
    nonce_call_t *st = net_http_async_state(call);
    if (msg->type != STORE_PG_MSG_RESULT)
        return;
    store_pg_result_t *r = rt_msg_payload(msg);
    if (req != NULL && r->status != STORE_PG_OK)
        api__answer_store_failure(req, r);
    else if (req != NULL)
        net_json_send(req, 200,
                      json_pack("{s:s, s:s, s:o}", "nonce", st->nonce, "message", st->message,
                                "expiresAt", api__time_json(st->expires_at)));
    net_http_async_end(call);
}

static int on_nonce(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    api_t *api = data;
    static const net_json_field_t fields[] = {
        {"address", NET_JSON_STRING, NET_JSON_REQUIRED, 64, 0, 0}};
    json_t *body = net_json_read(req, fields, 1);
    if (body == NULL)
        return 0;
    const char *address = net_json_get_string(body, "address");
    chain_addr_t addr;
    int parsed = chain_addr_parse(&addr, address, strlen(address));
    json_decref(body);
    if (parsed != CHAIN_OK) {
        net_json_errors_t errs;
        net_json_errors_init(&errs);
        net_json_errors_add(&errs, "address",
                            parsed == CHAIN_ERR_CHECKSUM ? "mixed-case address with a wrong "
                                                           "EIP-55 checksum"
                                                         : "not a 0x-prefixed 20-byte address");
        return net_problem_bad_request(req, "the address is invalid", &errs);
    }
    store_pg_t *pg = api__pool(api);
    if (pg == NULL)
        return net_problem_unavailable(req, 5);
    net_http_async_t *call = net_http_async_begin(req, nonce_stored, sizeof(nonce_call_t));
    nonce_call_t *st = net_http_async_state(call);
    int64_t now = (int64_t)time(NULL);
    st->expires_at = now + api->config.nonce_ttl_s;
    size_t len;
    chain_siwe_params_t p = {.domain = api->config.siwe_domain,
                             .address = &addr,
                             .statement = "Sign in to FlowPay.",
                             .uri = api->config.siwe_uri,
                             .chain_id = api->config.chain_id,
                             .nonce = st->nonce,
                             .issued_at = now,
                             .has_expiration_time = true,
                             .expiration_time = st->expires_at};
    if (!random_nonce(st->nonce) ||
        chain_siwe_compose(st->message, sizeof(st->message), &len, &p) != CHAIN_OK) {
        net_http_async_end(call);
        return net_problem_internal(req);
    }
    char addr_hex[41], issued[24], expires[24];
    chain_hex_encode(addr_hex, sizeof(addr_hex), addr.bytes, sizeof(addr.bytes), 0);
    snprintf(issued, sizeof(issued), "%lld", (long long)now);
    snprintf(expires, sizeof(expires), "%lld", (long long)st->expires_at);
    const char *params[] = {st->nonce, addr_hex, issued, expires};
    if (!store_pg_query(pg, net_http_async_actor(call), 0, st_nonce_insert, 4, params)) {
        net_http_async_end(call);
        return net_problem_unavailable(req, 1);
    }
    return 0;
}

/* ---- POST /api/auth/wallet ---- */

static void signed_in(net_http_async_t *call, rt_msg_t *msg)
{
    h2o_req_t *req = net_http_async_req(call);
    api_t *api = *(api_t **)net_http_async_state(call);
    if (msg->type != STORE_PG_MSG_RESULT)
        return;
    store_pg_result_t *r = rt_msg_payload(msg);
    if (req == NULL) {
        /* the client left; the sign-in happened (or not) all the same */
    } else if (r->status != STORE_PG_OK) {
        api__answer_store_failure(req, r);
    } else if (PQntuples(r->results[0]) != 1) {
        net_http_async_end(call);
        api__audit_refusal(api, req, NULL, "auth.refused",
                           "nonce unknown, used, expired or foreign");
        net_problem_unauthorized(req, "the nonce is unknown, already used or expired");
        return;
    } else {
        int64_t now = (int64_t)time(NULL), exp = now + api->config.session_ttl_s;
        char token[NET_JWT_MAX_LEN + 1], wallet[43];
        snprintf(wallet, sizeof(wallet), "0x%s", PQgetvalue(r->results[0], 0, 1));
        /* the wallet rides in the token, so that endpoints need no query to know it */
        net_jwt_claim_t extra[] = {{"wal", wallet}};
        net_jwt_sign_t claims = {.sub = PQgetvalue(r->results[0], 0, 0),
                                 .iat = now,
                                 .exp = exp,
                                 .extra = extra,
                                 .extra_count = 1};
        if (net_jwt_sign(api->config.jwt_keys, &claims, token, sizeof(token)) == 0)
            net_problem_internal(req);
        else
            net_json_send(req, 200,
                          json_pack("{s:s, s:o, s:o}", "token", token, "expiresAt",
                                    api__time_json(exp), "user", user_json(api, r->results[0], 0)));
    }
    net_http_async_end(call);
}

/* Checks everything about a sign-in that needs no database: the message's form and terms, and
 * that the signature recovers its address. Answers and returns false when one fails. */
static bool check_sign_in(api_t *api, h2o_req_t *req, const char *message, const char *signature,
                          chain_siwe_t *m)
{
    if (chain_siwe_parse(m, message, strlen(message)) != CHAIN_OK) {
        net_json_errors_t errs;
        net_json_errors_init(&errs);
        net_json_errors_add(&errs, "message", "not an EIP-4361 message (field: %s)",
                            m->err_field != NULL ? m->err_field : "message");
        net_problem_bad_request(req, "the message does not parse", &errs);
        return false;
    }
    const char *why = NULL;
    int valid = chain_siwe_validate(m, api->config.siwe_domain, strlen(api->config.siwe_domain),
                                    api->config.chain_id, (int64_t)time(NULL));
    uint8_t sig[CHAIN_SIG_LEN];
    chain_addr_t signer;
    if (valid == CHAIN_ERR_MISMATCH)
        why = "the message is for another domain or chain";
    else if (valid != CHAIN_OK)
        why = "the message is expired or not yet valid";
    else if (chain_hex_decode_exact(sig, sizeof(sig), signature, strlen(signature),
                                    CHAIN_HEX_0X_OPTIONAL) != CHAIN_OK ||
             chain_eip191_recover(&signer, message, strlen(message), sig, 0) != CHAIN_OK ||
             !chain_addr_eq(&signer, &m->address))
        why = "the signature is not the address's";
    if (why == NULL)
        return true;
    api__audit_refusal(api, req, NULL, "auth.refused", why);
    net_problem_unauthorized(req, why);
    return false;
}

static int on_wallet(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    api_t *api = data;
    static const net_json_field_t fields[] = {
        {"message", NET_JSON_STRING, NET_JSON_REQUIRED, CHAIN_SIWE_MAX_LEN, 0, 0},
        {"signature", NET_JSON_STRING, NET_JSON_REQUIRED, 140, 0, 0}};
    json_t *body = net_json_read(req, fields, 2);
    if (body == NULL)
        return 0;
    chain_siwe_t m;
    const char *message = net_json_get_string(body, "message");
    bool ok = check_sign_in(api, req, message, net_json_get_string(body, "signature"), &m);
    char nonce[65] = "", addr_hex[41], ip[INET6_ADDRSTRLEN];
    if (ok)
        snprintf(nonce, sizeof(nonce), "%.*s", (int)m.nonce.len, m.nonce.ptr);
    json_decref(body); /* m's spans point into the message: used above, not after */
    store_pg_t *pg = api__pool(api);
    if (!ok)
        return 0;
    if (pg == NULL)
        return net_problem_unavailable(req, 5);
    chain_hex_encode(addr_hex, sizeof(addr_hex), m.address.bytes, sizeof(m.address.bytes), 0);
    api__peer_ip(req, ip);
    net_http_async_t *call = net_http_async_begin(req, signed_in, sizeof(api_t *));
    *(api_t **)net_http_async_state(call) = api;
    const char *params[] = {nonce, addr_hex, ip};
    if (!store_pg_query(pg, net_http_async_actor(call), 0, st_sign_in, 3, params)) {
        net_http_async_end(call);
        return net_problem_unavailable(req, 1);
    }
    return 0;
}

/* ---- GET and PATCH /api/user/profile ---- */

static void profile_answered(net_http_async_t *call, rt_msg_t *msg)
{
    h2o_req_t *req = net_http_async_req(call);
    api_t *api = *(api_t **)net_http_async_state(call);
    if (msg->type != STORE_PG_MSG_RESULT)
        return;
    store_pg_result_t *r = rt_msg_payload(msg);
    if (req != NULL && r->status != STORE_PG_OK)
        api__answer_store_failure(req, r);
    else if (req != NULL && PQntuples(r->results[0]) != 1)
        net_problem_unauthorized(req, "the session's user does not exist"); /* deleted user */
    else if (req != NULL)
        net_json_send(req, 200, user_json(api, r->results[0], 0));
    net_http_async_end(call);
}

/* Starts the profile query `statement` with `params` for an authenticated request. */
static int run_profile_query(api_t *api, h2o_req_t *req, int statement, int nparams,
                             const char *const *params)
{
    store_pg_t *pg = api__pool(api);
    if (pg == NULL)
        return net_problem_unavailable(req, 5);
    net_http_async_t *call = net_http_async_begin(req, profile_answered, sizeof(api_t *));
    *(api_t **)net_http_async_state(call) = api;
    if (!store_pg_query(pg, net_http_async_actor(call), 0, statement, nparams, params)) {
        net_http_async_end(call);
        return net_problem_unavailable(req, 1);
    }
    return 0;
}

static int on_profile_get(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    api_t *api = data;
    api_user_t user;
    if (!api__authenticate(api, req, &user))
        return 0;
    const char *params[] = {user.id};
    return run_profile_query(api, req, st_profile_touch, 1, params);
}

/* A plausible address: one '@', something before it, a dot after it, no spaces, <= 254. */
static bool email_plausible(const char *s)
{
    const char *at = strchr(s, '@');
    size_t len = strlen(s);
    return len <= 254 && at != NULL && at != s && strchr(at + 1, '@') == NULL &&
           strchr(at + 1, '.') != NULL && s[len - 1] != '.' && strpbrk(s, " \t\r\n") == NULL;
}

static int on_profile_patch(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    api_t *api = data;
    api_user_t user;
    if (!api__authenticate(api, req, &user))
        return 0;
    static const net_json_field_t fields[] = {
        {"email", NET_JSON_STRING, NET_JSON_REQUIRED | NET_JSON_NULLABLE, 254, 0, 0}};
    json_t *body = net_json_read(req, fields, 1);
    if (body == NULL)
        return 0;
    const char *email = net_json_get_string(body, "email"); /* NULL: clear it */
    char sealed_hex[2 * (254 + STORE_CRYPTO_OVERHEAD) + 1] = "", index_hex[65] = "";
    int status = 0;
    if (email != NULL && !email_plausible(email)) {
        net_json_errors_t errs;
        net_json_errors_init(&errs);
        net_json_errors_add(&errs, "email", "not an e-mail address");
        status = net_problem_bad_request(req, "the e-mail address is invalid", &errs);
    } else if (email != NULL && api->config.data_key == NULL) {
        status = net_problem_unavailable(req, 60); /* DATA_ENCRYPTION_KEY is not configured */
    } else if (email != NULL) {
        uint8_t sealed[254 + STORE_CRYPTO_OVERHEAD], index[32];
        size_t n = store_crypto_seal(api->config.data_key, "users.email", (const uint8_t *)email,
                                     strlen(email), sealed, sizeof(sealed));
        store_crypto_blind_index(api->config.data_key, "users.email", (const uint8_t *)email,
                                 strlen(email), index);
        chain_hex_encode(sealed_hex, sizeof(sealed_hex), sealed, n, 0);
        chain_hex_encode(index_hex, sizeof(index_hex), index, sizeof(index), 0);
    }
    json_decref(body);
    if (status != 0 || (email != NULL && sealed_hex[0] == '\0'))
        return 0;
    char ip[INET6_ADDRSTRLEN];
    api__peer_ip(req, ip);
    const char *params[] = {user.id, email != NULL ? sealed_hex : NULL,
                            email != NULL ? index_hex : NULL, ip};
    return run_profile_query(api, req, st_profile_email, 4, params);
}

/* ---- life cycle ---- */

void api__add_routes(api_t *api, net_router_t *router, const api_route_t *routes, size_t n)
{
    for (size_t i = 0; i != n; ++i) {
        const char *err =
            api__guard_add_route(api, router, routes[i].method, routes[i].path, routes[i].fn);
        if (err != NULL)
            rt_log_fatal("api", "route %s %s: %s", routes[i].method, routes[i].path, err);
    }
}

api_t *api_create(const api_config_t *config, store_pg_t *pg, net_router_t *router)
{
    api_t *api = calloc(1, sizeof(*api));
    assert(api != NULL && config->jwt_keys != NULL);
    api->config = *config;
    atomic_store(&api->pg, pg);
    api__guard_init(api);
    api->cache = api_cache_create(config->cache_ttl_ms, config->cache_ttl_subscribed_ms,
                                  config->cache_max_bytes);
    if (api->cache == NULL)
        rt_log_fatal("api", "out of memory creating the read cache");
    if (config->cache_ttl_ms != 0 && config->events != NULL) { /* a user's events bump theirs */
        events_set_user_hook(config->events, api_cache_on_event, api->cache);
        events_set_subscription_hook(config->events, api_cache_on_subscription, api->cache);
    }
    static const api_route_t routes[] = {
        {"POST", "/api/auth/nonce", on_nonce},
        {"POST", "/api/auth/wallet", on_wallet},
        {"GET", "/api/user/profile", on_profile_get},
        {"PATCH", "/api/user/profile", on_profile_patch},
    };
    api__add_routes(api, router, routes, sizeof(routes) / sizeof(routes[0]));
    api__intents_routes(api, router);
    api__openapi_routes(api, router);
    api__history_routes(api, router);
    api__notifications_routes(api, router);
    api__account_routes(api, router);
    return api;
}

void api_attach_store(api_t *api, store_pg_t *pg)
{
    atomic_store_explicit(&api->pg, pg, memory_order_release);
}

void api_attach_redis(api_t *api, store_redis_t *redis)
{
    atomic_store_explicit(&api->redis, redis, memory_order_release);
}

bool api_get_cache_stats(api_t *api, api_cache_stats_t *out)
{
    if (api->cache == NULL)
        return false;
    api_cache_get_stats(api->cache, out);
    return true;
}

void api_free(api_t *api)
{
    api__guard_dispose(api);
    if (api->config.cache_ttl_ms != 0 && api->config.events != NULL) {
        events_set_user_hook(api->config.events, NULL, NULL);
        events_set_subscription_hook(api->config.events, NULL, NULL);
    }
    api_cache_free(api->cache);
    free(api);
}
