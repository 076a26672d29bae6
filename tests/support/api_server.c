/* See api_server.h. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "api_server.h"
#include "chain/eip191.h"
#include "chain/hex.h"

pid_t server_pid;
int port;
char db_name[64], db_url[512];

/* ---- plumbing: a database, the server, HTTP ---- */

PGconn *connect_db(const char *url)
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

void db_exec(const char *url, const char *sql)
{
    PGconn *pg = connect_db(url);
    PGresult *res = PQexec(pg, sql);
    cr_assert(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(res));
    PQclear(res);
    PQfinish(pg);
}

char *db_value(const char *sql)
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

int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    bind(fd, (struct sockaddr *)&addr, sizeof(addr));
    getsockname(fd, (struct sockaddr *)&addr, &len);
    close(fd);
    return ntohs(addr.sin_port);
}

/* One request; returns the status and puts the body in `body` (Connection: close). Its buffers
 * are the calling thread's, so that tests may send requests from several threads at once. */
int http(const char *method, const char *path, const char *auth, const char *content_type,
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
    static __thread char req[16384];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n%s%s%s"
                     "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, auth != NULL ? "Authorization: Bearer " : "",
                     auth != NULL ? auth : "", auth != NULL ? "\r\n" : "",
                     content_type != NULL ? content_type : "application/json",
                     payload != NULL ? strlen(payload) : 0, payload != NULL ? payload : "");
    if (write(fd, req, (size_t)n) != n) { /* no assertion: it may run on a thread of the test's */
        close(fd);
        body[0] = '\0';
        return 0;
    }
    static __thread char resp[65536];
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

void start_server_env(const char *const *env)
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
    restart_server_env(env);
}

void restart_server_env(const char *const *env)
{
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
        for (size_t i = 0; env != NULL && env[i] != NULL; ++i)
            putenv((char *)env[i]);
        execl(INTENTD_BIN, INTENTD_BIN, (char *)NULL);
        _exit(127);
    }
    char body[256];
    for (int tries = 0; tries != 1000; ++tries, usleep(10000))
        if (http("GET", "/readyz", NULL, NULL, NULL, body, sizeof(body)) == 200)
            return;
    cr_assert_fail("intentd did not become ready");
}

/* After every test, passed or failed: no server may outlive its test. */
void kill_leftover_server(void)
{
    if (server_pid > 0 && kill(server_pid, SIGKILL) == 0)
        waitpid(server_pid, NULL, 0);
    server_pid = 0;
}

void stop_server(void)
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

chain_key_t *key(const char *hex)
{
    chain_key_t *k;
    cr_assert_eq(chain_key_from_hex(&k, hex, strlen(hex)), CHAIN_OK);
    return k;
}

void address_of(const char *key_hex, char out[CHAIN_ADDR_STR_SIZE])
{
    chain_key_t *k = key(key_hex);
    chain_addr_format(chain_key_address(k), out);
    chain_key_free(k);
}

/* personal_sign of `message`, as a 0x hex string */
void sign(const char *key_hex, const char *message, char out[133])
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
void sign_intent_terms(const char *signer_hex, const chain_intent_t *terms, const char *registry,
                       char out[133])
{
    chain_addr_t registry_addr;
    cr_assert_eq(chain_addr_parse(&registry_addr, registry, strlen(registry)), CHAIN_OK);
    chain_eip712_domain_t domain;
    chain_intent_domain(&domain, 31337, &registry_addr);
    uint8_t digest[32], bytes[CHAIN_SIG_LEN];
    chain_intent_digest(&domain, terms, digest);
    chain_key_t *k = key(signer_hex);
    chain_sig_t sig;
    chain_key_sign(k, digest, &sig);
    chain_key_free(k);
    chain_sig_serialize(&sig, bytes);
    chain_hex_encode(out, 133, bytes, sizeof(bytes), CHAIN_HEX_0X);
}

json_t *get_nonce(const char *address)
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
int sign_in(const char *message, const char *signature, char *body, size_t cap)
{
    json_t *j = json_pack("{s:s, s:s}", "message", message, "signature", signature);
    char *payload = json_dumps(j, 0);
    int status = http("POST", "/api/auth/wallet", NULL, NULL, payload, body, cap);
    free(payload);
    json_decref(j);
    return status;
}

void start_server(void)
{
    start_server_env(NULL);
}

void session(const char *key_hex, char *token, size_t cap)
{
    char addr[CHAIN_ADDR_STR_SIZE], sig[133], body[16384];
    address_of(key_hex, addr);
    json_t *nonce = get_nonce(addr);
    const char *message = json_string_value(json_object_get(nonce, "message"));
    sign(key_hex, message, sig);
    cr_assert_eq(sign_in(message, sig, body, sizeof(body)), 200, "%s", body);
    json_t *s = json_loads(body, 0, NULL);
    snprintf(token, cap, "%s", json_string_value(json_object_get(s, "token")));
    json_decref(s);
    json_decref(nonce);
}
