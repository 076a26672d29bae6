/* Wallet sign-in (EIP-4361), sessions and the profile, through real HTTP against the intentd
 * binary and a real PostgreSQL (a database of its own per test). Signatures are made here with
 * chain/ (the ethers fixtures prove chain/ agrees with a common client library). */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "chain/eip191.h"
#include "chain/hex.h"
#include "chain/key.h"
#include "chain/siwe.h"
#include "net/jwt.h"
#include "support/api_server.h"

#ifndef INTENTD_BIN
#error "INTENTD_BIN must name the intentd binary"
#endif

/* ---- the tests ---- */

Test(api_auth, sign_in_then_profile_and_email_stored_encrypted, .timeout = 60,
     .fini = kill_leftover_server)
{
    start_server();
    char addr[CHAIN_ADDR_STR_SIZE], sig[133], body[16384];
    address_of(KEY_A, addr);
    json_t *nonce = get_nonce(addr);
    const char *message = json_string_value(json_object_get(nonce, "message"));
    cr_assert_not_null(strstr(message, addr), "the message names the address");
    cr_assert_not_null(json_string_value(json_object_get(nonce, "expiresAt")));
    sign(KEY_A, message, sig);
    cr_assert_eq(sign_in(message, sig, body, sizeof(body)), 200, "%s", body);
    json_t *session = json_loads(body, 0, NULL);
    const char *token = json_string_value(json_object_get(session, "token"));
    json_t *user = json_object_get(session, "user");
    cr_assert_str_eq(json_string_value(json_object_get(user, "walletAddress")), addr);
    cr_assert(json_is_null(json_object_get(user, "email")));

    cr_assert_eq(http("GET", "/api/user/profile", token, NULL, NULL, body, sizeof(body)), 200);
    json_t *profile = json_loads(body, 0, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(profile, "id")),
                     json_string_value(json_object_get(user, "id")));
    json_decref(profile);

    cr_assert_eq(http("PATCH", "/api/user/profile", token, NULL,
                      "{\"email\":\"alice@example.com\"}", body, sizeof(body)),
                 200, "%s", body);
    cr_assert_not_null(strstr(body, "\"email\":\"alice@example.com\""), "%s", body);
    cr_assert_eq(http("GET", "/api/user/profile", token, NULL, NULL, body, sizeof(body)), 200);
    cr_assert_not_null(strstr(body, "alice@example.com"));
    /* at rest it is ciphertext */
    const char *stored = db_value("SELECT encode(email, 'escape') FROM users");
    cr_assert_null(strstr(stored, "alice"), "the e-mail is stored in the clear");
    cr_assert_str_eq(db_value("SELECT count(*) FROM audit_log WHERE action = 'auth.sign_in'"), "1");
    json_decref(session);
    json_decref(nonce);
    stop_server();
}

Test(api_auth, replayed_foreign_expired_and_wrong_signer_sign_ins_are_refused, .timeout = 60,
     .fini = kill_leftover_server)
{
    start_server();
    char addr[CHAIN_ADDR_STR_SIZE], sig[133], body[16384];
    address_of(KEY_A, addr);
    /* the wrong signer: B signs A's message */
    json_t *nonce = get_nonce(addr);
    const char *message = json_string_value(json_object_get(nonce, "message"));
    sign(KEY_B, message, sig);
    cr_assert_eq(sign_in(message, sig, body, sizeof(body)), 401, "%s", body);
    cr_assert_not_null(strstr(body, "application/problem+json") == NULL ? body : body);
    /* the right signer succeeds once, and a replay is refused */
    sign(KEY_A, message, sig);
    cr_assert_eq(sign_in(message, sig, body, sizeof(body)), 200, "%s", body);
    cr_assert_eq(sign_in(message, sig, body, sizeof(body)), 401, "a replay was accepted");
    json_decref(nonce);

    /* messages the wallet signed but the server must refuse, each with a fresh nonce */
    chain_addr_t a;
    chain_addr_parse(&a, addr, strlen(addr));
    int64_t now = (int64_t)time(NULL);
    struct {
        const char *domain;
        uint64_t chain_id;
        int64_t issued, expires;
        const char *why;
    } cases[] = {
        {"evil.example", 31337, now, now + 300, "foreign domain"},
        {NULL, 1, now, now + 300, "foreign chain"},
        {NULL, 31337, now - 1000, now - 10, "expired"},
        {NULL, 31337, now + 3600, now + 7200, "issued in the future"},
    };
    char domain[64];
    snprintf(domain, sizeof(domain), "localhost:%d", port);
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        json_t *n = get_nonce(addr);
        char msg[CHAIN_SIWE_MAX_LEN + 1];
        size_t len;
        chain_siwe_params_t p = {.domain = cases[i].domain != NULL ? cases[i].domain : domain,
                                 .address = &a,
                                 .uri = "http://localhost/",
                                 .chain_id = cases[i].chain_id,
                                 .nonce = json_string_value(json_object_get(n, "nonce")),
                                 .issued_at = cases[i].issued,
                                 .has_expiration_time = true,
                                 .expiration_time = cases[i].expires};
        cr_assert_eq(chain_siwe_compose(msg, sizeof(msg), &len, &p), CHAIN_OK);
        sign(KEY_A, msg, sig);
        cr_assert_eq(sign_in(msg, sig, body, sizeof(body)), 401, "%s accepted: %s", cases[i].why,
                     body);
        json_decref(n);
    }
    /* a nonce issued for another address */
    char addr_b[CHAIN_ADDR_STR_SIZE];
    address_of(KEY_B, addr_b);
    json_t *n = get_nonce(addr_b);
    char msg[CHAIN_SIWE_MAX_LEN + 1];
    size_t len;
    chain_siwe_params_t p = {.domain = domain,
                             .address = &a,
                             .uri = "http://localhost/",
                             .chain_id = 31337,
                             .nonce = json_string_value(json_object_get(n, "nonce")),
                             .issued_at = now};
    cr_assert_eq(chain_siwe_compose(msg, sizeof(msg), &len, &p), CHAIN_OK);
    sign(KEY_A, msg, sig);
    cr_assert_eq(sign_in(msg, sig, body, sizeof(body)), 401, "a foreign nonce was accepted");
    json_decref(n);
    cr_assert_str_eq(db_value("SELECT count(*) FROM users"), "1", "a refused sign-in made a user");
    cr_assert_str_eq(db_value("SELECT count(*) >= 7 FROM audit_log WHERE action = 'auth.refused'"),
                     "t", "refusals were not audited");
    stop_server();
}

Test(api_auth, bad_bodies_answer_clear_problems_and_change_nothing, .timeout = 60,
     .fini = kill_leftover_server)
{
    start_server();
    char body[16384];
    /* a mixed-case address with a wrong checksum */
    int status =
        http("POST", "/api/auth/nonce", NULL, NULL,
             "{\"address\":\"0x70997970C51812dc3A010C7d01b50e0d17dc79C9\"}", body, sizeof(body));
    cr_assert_eq(status, 400, "%s", body);
    cr_assert_not_null(strstr(body, "\"field\":\"address\""), "%s", body);
    cr_assert_eq(http("POST", "/api/auth/nonce", NULL, NULL,
                      "{\"address\":\"0x70997970c51812dc3a010c7d01b50e0d17dc79c8\",\"x\":1}", body,
                      sizeof(body)),
                 400, "an unknown field was accepted");
    cr_assert_eq(http("POST", "/api/auth/nonce", NULL, "text/plain", "{}", body, sizeof(body)),
                 415);
    cr_assert_eq(http("POST", "/api/auth/nonce", NULL, NULL, "{\"address\":", body, sizeof(body)),
                 400);
    cr_assert_eq(http("POST", "/api/auth/wallet", NULL, NULL,
                      "{\"message\":\"hello\",\"signature\":\"0x00\"}", body, sizeof(body)),
                 400, "%s", body);
    cr_assert_not_null(strstr(body, "\"field\":\"message\""), "%s", body);
    cr_assert_str_eq(db_value("SELECT count(*) FROM auth_nonces"), "0");
    stop_server();
}

Test(api_auth, tampered_expired_and_alg_none_tokens_are_refused, .timeout = 60,
     .fini = kill_leftover_server)
{
    start_server();
    char body[4096], token[NET_JWT_MAX_LEN + 1], err[128];
    cr_assert_eq(http("GET", "/api/user/profile", NULL, NULL, NULL, body, sizeof(body)), 401);
    net_jwt_keys_t *keys = net_jwt_keys_load(JWT_SECRET, NULL, err, sizeof(err));
    cr_assert_not_null(keys, "%s", err);
    int64_t now = (int64_t)time(NULL);
    net_jwt_sign_t expired = {
        .sub = "00000000-0000-0000-0000-000000000000", .iat = now - 7200, .exp = now - 3600};
    cr_assert_gt(net_jwt_sign(keys, &expired, token, sizeof(token)), 0);
    cr_assert_eq(http("GET", "/api/user/profile", token, NULL, NULL, body, sizeof(body)), 401);
    net_jwt_sign_t fine = {
        .sub = "00000000-0000-0000-0000-000000000000", .iat = now, .exp = now + 600};
    size_t len = net_jwt_sign(keys, &fine, token, sizeof(token));
    token[len - 2] = token[len - 2] == 'A' ? 'B' : 'A'; /* the signature no longer matches */
    cr_assert_eq(http("GET", "/api/user/profile", token, NULL, NULL, body, sizeof(body)), 401);
    /* {"alg":"none","typ":"JWT"} . {"sub":"x","exp":9999999999} . (no signature) */
    cr_assert_eq(http("GET", "/api/user/profile",
                      "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ.",
                      NULL, NULL, body, sizeof(body)),
                 401);
    /* a valid token whose user does not exist */
    len = net_jwt_sign(keys, &fine, token, sizeof(token));
    cr_assert_eq(http("GET", "/api/user/profile", token, NULL, NULL, body, sizeof(body)), 401);
    net_jwt_keys_free(keys);
    stop_server();
}
