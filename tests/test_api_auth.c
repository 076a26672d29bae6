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

#ifndef INTENTD_BIN
#error "INTENTD_BIN must name the intentd binary"
#endif

#define JWT_SECRET "test-secret-of-at-least-thirty-two-bytes!"
#define DATA_KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
/* anvil's public dev keys 1 and 2 */
#define KEY_A "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
#define KEY_B "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"

static pid_t server_pid;
static int port;
static char db_name[64], db_url[512];

/* ---- plumbing: a database, the server, HTTP ---- */

static PGconn *connect_db(const char *url)
{
    PGconn *pg = PQconnectdb(url);
    for (int tries = 0; PQstatus(pg) != CONNECTION_OK && tries != 100; ++tries) {
        PQfinish(pg);
        usleep(100000);
        pg = PQconnectdb(url);
    }
    cr_assert_eq(PQstatus(pg), CONNECTION_OK, "%s", PQerrorMessage(pg));
    return pg;
}

static void db_exec(const char *url, const char *sql)
{
    PGconn *pg = connect_db(url);
    PGresult *res = PQexec(pg, sql);
    cr_assert(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(res));
    PQclear(res);
    PQfinish(pg);
}

static char *db_value(const char *sql)
{
    static char value[1024];
    PGconn *pg = connect_db(db_url);
    PGresult *res = PQexec(pg, sql);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(res));
    snprintf(value, sizeof(value), "%s", PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    PQfinish(pg);
    return value;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    bind(fd, (struct sockaddr *)&addr, sizeof(addr));
    getsockname(fd, (struct sockaddr *)&addr, &len);
    close(fd);
    return ntohs(addr.sin_port);
}

/* One request; returns the status and puts the body in `body` (Connection: close). */
static int http(const char *method, const char *path, const char *auth, const char *content_type,
                const char *payload, char *body, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        close(fd); /* not listening yet: the caller retries */
        body[0] = '\0';
        return 0;
    }
    static char req[16384];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n%s%s%s"
                     "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, auth != NULL ? "Authorization: Bearer " : "",
                     auth != NULL ? auth : "", auth != NULL ? "\r\n" : "",
                     content_type != NULL ? content_type : "application/json",
                     payload != NULL ? strlen(payload) : 0, payload != NULL ? payload : "");
    cr_assert_eq(write(fd, req, (size_t)n), n);
    static char resp[65536];
    size_t len = 0;
    ssize_t r;
    while (len + 1 < sizeof(resp) && (r = read(fd, resp + len, sizeof(resp) - 1 - len)) > 0)
        len += (size_t)r;
    resp[len] = '\0';
    close(fd);
    int status = 0;
    sscanf(resp, "HTTP/1.1 %d", &status);
    const char *start = strstr(resp, "\r\n\r\n");
    snprintf(body, cap, "%s", start != NULL ? start + 4 : "");
    return status;
}

static void start_server(void)
{
    static int counter;
    const char *base = getenv("DATABASE_URL");
    cr_assert_not_null(base, "DATABASE_URL is not set: run the tests through scripts/test.sh");
    snprintf(db_name, sizeof(db_name), "t_api_%d_%d", (int)getpid(), ++counter);
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db_name);
    db_exec(base, sql);
    PQconninfoOption *opts = PQconninfoParse(base, NULL);
    size_t len = 0;
    for (PQconninfoOption *o = opts; o->keyword != NULL; ++o)
        if (o->val != NULL && strcmp(o->keyword, "dbname") != 0)
            len += (size_t)snprintf(db_url + len, sizeof(db_url) - len, "%s='%s' ", o->keyword,
                                    o->val);
    snprintf(db_url + len, sizeof(db_url) - len, "dbname='%s'", db_name);
    PQconninfoFree(opts);
    port = free_port();
    server_pid = fork();
    if (server_pid == 0) {
        /* both streams away from criterion's pipe, which must close when the test ends */
        int fd = open("/tmp/intentd-test-api.log", O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        char port_str[16];
        snprintf(port_str, sizeof(port_str), "%d", port);
        setenv("PORT", port_str, 1);
        setenv("DATABASE_URL", db_url, 1);
        setenv("JWT_SECRET", JWT_SECRET, 1);
        setenv("DATA_ENCRYPTION_KEY", DATA_KEY, 1);
        setenv("WORKERS", "2", 1);
        unsetenv("REDIS_URL");
        execl(INTENTD_BIN, INTENTD_BIN, (char *)NULL);
        _exit(127);
    }
    char body[256];
    for (int tries = 0; tries != 500; ++tries, usleep(20000))
        if (http("GET", "/readyz", NULL, NULL, NULL, body, sizeof(body)) == 200)
            return;
    cr_assert_fail("intentd did not become ready");
}

/* After every test, passed or failed: no server may outlive its test. */
static void kill_leftover_server(void)
{
    if (server_pid > 0 && kill(server_pid, SIGKILL) == 0)
        waitpid(server_pid, NULL, 0);
    server_pid = 0;
}

static void stop_server(void)
{
    kill(server_pid, SIGTERM);
    int status;
    waitpid(server_pid, &status, 0);
    server_pid = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "intentd did not exit cleanly");
    char sql[128];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db_name);
    db_exec(getenv("DATABASE_URL"), sql);
}

/* ---- signing ---- */

static chain_key_t *key(const char *hex)
{
    chain_key_t *k;
    cr_assert_eq(chain_key_from_hex(&k, hex, strlen(hex)), CHAIN_OK);
    return k;
}

static void address_of(const char *key_hex, char out[CHAIN_ADDR_STR_SIZE])
{
    chain_key_t *k = key(key_hex);
    chain_addr_format(chain_key_address(k), out);
    chain_key_free(k);
}

/* personal_sign of `message`, as a 0x hex string */
static void sign(const char *key_hex, const char *message, char out[133])
{
    chain_key_t *k = key(key_hex);
    uint8_t hash[32], bytes[CHAIN_SIG_LEN];
    chain_eip191_hash(message, strlen(message), hash);
    chain_sig_t sig;
    chain_key_sign(k, hash, &sig);
    chain_sig_serialize(&sig, bytes);
    chain_hex_encode(out, 133, bytes, sizeof(bytes), CHAIN_HEX_0X);
    chain_key_free(k);
}

/* Asks for a nonce for `address`; returns the parsed answer (decref it). */
static json_t *get_nonce(const char *address)
{
    char payload[128], body[16384];
    snprintf(payload, sizeof(payload), "{\"address\":\"%s\"}", address);
    int status = http("POST", "/api/auth/nonce", NULL, NULL, payload, body, sizeof(body));
    cr_assert_eq(status, 200, "nonce: %d %s", status, body);
    json_t *j = json_loads(body, 0, NULL);
    cr_assert_not_null(j);
    return j;
}

/* Posts a sign-in; returns the status, the body in `body`. */
static int sign_in(const char *message, const char *signature, char *body, size_t cap)
{
    json_t *j = json_pack("{s:s, s:s}", "message", message, "signature", signature);
    char *payload = json_dumps(j, 0);
    int status = http("POST", "/api/auth/wallet", NULL, NULL, payload, body, cap);
    free(payload);
    json_decref(j);
    return status;
}

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
