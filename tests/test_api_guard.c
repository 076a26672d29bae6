/* The API's guards through real HTTP against the intentd binary, a real PostgreSQL and Redis:
 * Idempotency-Key (replay of 2xx and 4xx answers, 422 for another body, 409 while running, 5xx
 * not kept, bad keys refused, scoped per user) and rate limits (per IP and per user, 429 with
 * Retry-After and a reset, one count shared by two processes through Redis, each process counting
 * alone when Redis is down). */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "support/api_server.h"

#define REGISTRY "0x5FbDB2315678afecb367f032d93F642f64180aa3"
#define USDC "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
#define RECIPIENT "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
#define INTENT(amount)                                                                             \
    "{\"name\":\"rent\",\"recipient\":\"" RECIPIENT "\",\"token\":\"USDC\",\"amount\":\"" amount   \
    "\",\"frequency\":\"daily\",\"startAt\":\"2030-01-01T09:00:00Z\"}"

static char body[65536], headers[8192];

static void copy_text(char *out, size_t cap, const char *in)
{
    size_t len = strlen(in);
    len = len < cap - 1 ? len : cap - 1;
    memcpy(out, in, len);
    out[len] = '\0';
}

/* One request to 127.0.0.1:`to_port` with extra header lines (each ending in \r\n); the status,
 * the body in `body` and the response headers (lowercased) in `headers`. 0 when nothing listens. */
static int request(int to_port, const char *method, const char *path, const char *token,
                   const char *extra, const char *payload)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)to_port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    body[0] = headers[0] = '\0';
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        close(fd);
        return 0;
    }
    static char req[16384], resp[131072];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n%s%s%s%s"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, token != NULL ? "Authorization: Bearer " : "",
                     token != NULL ? token : "", token != NULL ? "\r\n" : "",
                     extra != NULL ? extra : "", payload != NULL ? strlen(payload) : 0,
                     payload != NULL ? payload : "");
    cr_assert_eq(write(fd, req, (size_t)n), n);
    size_t len = 0;
    ssize_t r;
    while (len + 1 < sizeof(resp) && (r = read(fd, resp + len, sizeof(resp) - 1 - len)) > 0)
        len += (size_t)r;
    resp[len] = '\0';
    close(fd);
    int status = 0;
    sscanf(resp, "HTTP/1.1 %d", &status);
    char *end = strstr(resp, "\r\n\r\n");
    if (end != NULL) {
        copy_text(body, sizeof(body), end + 4);
        *end = '\0';
    }
    copy_text(headers, sizeof(headers), resp);
    for (char *p = headers; *p != '\0'; ++p)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    return status;
}

static int post_keyed(const char *token, const char *key, const char *json)
{
    char extra[512];
    snprintf(extra, sizeof(extra), "Idempotency-Key: %s\r\n", key);
    return request(port, "POST", "/api/intents", token, extra, json);
}

static const char *str(json_t *obj, const char *name)
{
    return json_string_value(json_object_get(obj, name));
}

static bool replayed(void)
{
    return strstr(headers, "\r\nidempotent-replayed: true") != NULL;
}

static const char *const intents_env[] = {"INTENT_CONTRACT_ADDRESS=" REGISTRY, "USDC_ADDRESS=" USDC,
                                          NULL};

Test(api_guard, idempotent_create_replays_the_first_answer_per_user, .timeout = 90,
     .fini = kill_leftover_server)
{
    start_server_env(intents_env);
    char token_a[4096], token_b[4096];
    session(KEY_A, token_a, sizeof(token_a));
    session(KEY_B, token_b, sizeof(token_b));
    cr_assert_eq(post_keyed(token_a, "key-1", INTENT("1")), 201, "%s", body);
    cr_assert(!replayed());
    json_t *first = json_loads(body, 0, NULL);
    cr_assert_not_null(first);
    /* at once: the answer was stored before it was sent */
    cr_assert_eq(post_keyed(token_a, "key-1", INTENT("1")), 201, "%s", body);
    cr_assert(replayed(), "%s", headers);
    cr_assert_not_null(strstr(headers, "\r\ncontent-type: application/json"), "%s", headers);
    json_t *again = json_loads(body, 0, NULL);
    cr_assert_str_eq(str(again, "id"), str(first, "id"));
    cr_assert_str_eq(str(again, "onChainId"), str(first, "onChainId"));
    cr_assert_str_eq(db_value("SELECT count(*) FROM intents"), "1");
    /* the same key with another body */
    cr_assert_eq(post_keyed(token_a, "key-1", INTENT("2")), 422, "%s", body);
    cr_assert_not_null(strstr(body, "\"field\":\"Idempotency-Key\""), "%s", body);
    cr_assert_str_eq(db_value("SELECT count(*) FROM intents"), "1");
    /* keys are the user's own: another user's identical key and body runs */
    cr_assert_eq(post_keyed(token_b, "key-1", INTENT("1")), 201, "%s", body);
    cr_assert(!replayed());
    cr_assert_str_eq(db_value("SELECT count(*) FROM intents"), "2");
    /* a new key runs again */
    cr_assert_eq(post_keyed(token_a, "key-2", INTENT("1")), 201, "%s", body);
    cr_assert_str_eq(db_value("SELECT count(*) FROM intents"), "3");
    cr_assert_str_eq(
        db_value("SELECT count(*) FROM idempotency_keys WHERE state = 'done' AND response_status "
                 "= 201 AND expires_at > now() + interval '23 hours'"),
        "3");
    json_decref(again);
    json_decref(first);
    stop_server();
}

Test(api_guard, idempotent_state_changes_and_4xx_answers_are_replayed, .timeout = 90,
     .fini = kill_leftover_server)
{
    start_server_env(intents_env);
    char token[4096], path[128];
    session(KEY_A, token, sizeof(token));
    /* a rule broken (422) is kept and replayed, and creates nothing */
    static const char bad[] = "{\"name\":\"x\",\"recipient\":\"" RECIPIENT "\",\"token\":\"USDC\","
                              "\"amount\":\"0\",\"frequency\":\"daily\","
                              "\"startAt\":\"2030-01-01T09:00:00Z\"}";
    cr_assert_eq(post_keyed(token, "bad", bad), 422, "%s", body);
    cr_assert_eq(post_keyed(token, "bad", bad), 422, "%s", body);
    cr_assert(replayed());
    cr_assert_not_null(strstr(headers, "\r\ncontent-type: application/problem+json"), "%s",
                       headers);
    cr_assert_str_eq(db_value("SELECT count(*) FROM intents"), "0");
    /* pausing a pending intent is 409, kept too; so is a DELETE of an unknown intent (404) */
    cr_assert_eq(request(port, "POST", "/api/intents", token, NULL, INTENT("3")), 201);
    json_t *intent = json_loads(body, 0, NULL);
    snprintf(path, sizeof(path), "/api/intents/%s/pause", str(intent, "id"));
    cr_assert_eq(request(port, "POST", path, token, "Idempotency-Key: p\r\n", NULL), 409, "%s",
                 body);
    cr_assert_eq(request(port, "POST", path, token, "Idempotency-Key: p\r\n", NULL), 409);
    cr_assert(replayed());
    static const char unknown[] = "/api/intents/00000000-0000-4000-8000-000000000000";
    cr_assert_eq(request(port, "DELETE", unknown, token, "Idempotency-Key: d\r\n", NULL), 404, "%s",
                 body);
    cr_assert(!replayed());
    cr_assert_eq(request(port, "DELETE", unknown, token, "Idempotency-Key: d\r\n", NULL), 404);
    cr_assert(replayed());
    /* the same key on another path is another request */
    cr_assert_eq(request(port, "POST", path, token, "Idempotency-Key: d\r\n", NULL), 422);
    json_decref(intent);
    stop_server();
}

Test(api_guard, idempotency_key_running_expired_and_invalid, .timeout = 90,
     .fini = kill_leftover_server)
{
    start_server_env(intents_env);
    char token[4096], sql[1024], user_id[64];
    session(KEY_A, token, sizeof(token));
    snprintf(user_id, sizeof(user_id), "%s", db_value("SELECT id FROM users"));
    /* a claim still running (another request at work) with this very request: 409 */
    snprintf(sql, sizeof(sql),
             "INSERT INTO idempotency_keys (user_id, key, request_hash, state, expires_at)"
             " VALUES ('%s', 'busy', sha256(convert_to('POST' || chr(10) || '/api/intents' ||"
             " chr(10) || '%s', 'UTF8')), 'running', now() + interval '1 minute'),"
             " ('%s', 'stale', '\\x%064d', 'running', now() - interval '1 second')",
             user_id, INTENT("1"), user_id, 0);
    db_exec(db_url, sql);
    cr_assert_eq(post_keyed(token, "busy", INTENT("1")), 409, "%s", body);
    cr_assert_eq(post_keyed(token, "busy", INTENT("2")), 422, "%s", body);
    /* a claim whose lease ran out is taken over */
    cr_assert_eq(post_keyed(token, "stale", INTENT("1")), 201, "%s", body);
    cr_assert_str_eq(db_value("SELECT state FROM idempotency_keys WHERE key = 'stale'"), "done");
    /* bad keys: 400 naming the header, nothing created */
    char long_key[300];
    memset(long_key, 'k', 256);
    long_key[256] = '\0';
    cr_assert_eq(post_keyed(token, long_key, INTENT("5")), 400, "%s", body);
    cr_assert_not_null(strstr(body, "\"field\":\"Idempotency-Key\""), "%s", body);
    long_key[255] = '\0'; /* 255 is allowed */
    cr_assert_eq(post_keyed(token, long_key, INTENT("5")), 201, "%s", body);
    cr_assert_eq(request(port, "POST", "/api/intents", token,
                         "Idempotency-Key: a\r\nIdempotency-Key: b\r\n", INTENT("6")),
                 400, "%s", body);
    cr_assert_eq(post_keyed(token, "tab\there", INTENT("6")), 400, "%s", body);
    cr_assert_str_eq(db_value("SELECT count(*) FROM intents"), "2");
    /* without a session the key is not looked at: 401 */
    cr_assert_eq(post_keyed(NULL, "busy", INTENT("1")), 401);
    stop_server();
}

Test(api_guard, server_errors_are_not_kept, .timeout = 90, .fini = kill_leftover_server)
{
    start_server(); /* no registry configured: creating an intent answers 503 */
    char token[4096];
    session(KEY_A, token, sizeof(token));
    cr_assert_eq(post_keyed(token, "k", INTENT("1")), 503, "%s", body);
    cr_assert_eq(post_keyed(token, "k", INTENT("1")), 503, "%s", body);
    cr_assert(!replayed(), "a 5xx must not be replayed");
    cr_assert_str_eq(db_value("SELECT count(*) FROM idempotency_keys"), "0");
    stop_server();
}

/* ---- rate limits ---- */

/* Polls `path` until it answers `want`, for at most `deadline_s`; the last status. */
static int poll_until(int to_port, const char *path, int want, int deadline_s)
{
    time_t end = time(NULL) + deadline_s;
    int status = 0;
    while ((status = request(to_port, "GET", path, NULL, NULL, NULL)) != want && time(NULL) <= end)
        usleep(50000);
    return status;
}

static uint32_t retry_after(void)
{
    const char *h = strstr(headers, "\r\nretry-after: ");
    return h != NULL ? (uint32_t)atoi(h + 15) : 0;
}

Test(api_guard, ip_limit_refuses_then_resets_without_redis, .timeout = 90,
     .fini = kill_leftover_server)
{
    /* one worker: without Redis each worker admits its share of the limit */
    static const char *const env[] = {"API_RATE_LIMIT=5", "RATE_LIMIT_WINDOW_S=2", "WORKERS=1",
                                      NULL};
    start_server_env(env);
    /* start at a window's beginning, so that the five fit in one */
    time_t t0 = time(NULL);
    while (time(NULL) == t0 || time(NULL) % 2 != 0)
        usleep(10000);
    for (int i = 0; i != 5; ++i)
        cr_assert_eq(request(port, "GET", "/api/openapi.json", NULL, NULL, NULL), 200, "#%d", i);
    cr_assert_eq(request(port, "GET", "/api/openapi.json", NULL, NULL, NULL), 429, "%s", body);
    cr_assert_not_null(strstr(headers, "\r\ncontent-type: application/problem+json"));
    uint32_t wait_s = retry_after();
    cr_assert(wait_s >= 1 && wait_s <= 2, "Retry-After %u", wait_s);
    /* any API route shares the IP's count; operations are never limited */
    cr_assert_eq(request(port, "POST", "/api/auth/nonce", NULL, NULL, "{}"), 429);
    cr_assert_eq(request(port, "GET", "/healthz", NULL, NULL, NULL), 200);
    cr_assert_eq(request(port, "GET", "/metrics", NULL, NULL, NULL), 200);
    /* the next window admits again */
    cr_assert_eq(poll_until(port, "/api/openapi.json", 200, 5), 200);
    stop_server();
}

/* REDIS_URL of the test services, on database `db` (flushed), for a test of its own. */
static void redis_url_db(int db, char *out, size_t cap)
{
    const char *url = getenv("REDIS_URL");
    cr_assert_not_null(url, "REDIS_URL is not set: run the tests through scripts/test.sh");
    char host[128];
    int redis_port = 0;
    cr_assert_eq(sscanf(url, "redis://%127[^:]:%d", host, &redis_port), 2, "%s", url);
    redisContext *c = redisConnect(host, redis_port);
    cr_assert(c != NULL && c->err == 0);
    redisReply *r = redisCommand(c, "SELECT %d", db);
    freeReplyObject(r);
    r = redisCommand(c, "FLUSHDB");
    cr_assert(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(c);
    snprintf(out, cap, "REDIS_URL=redis://%s:%d/%d", host, redis_port, db);
}

Test(api_guard, user_limit_counts_each_user_through_redis, .timeout = 90,
     .fini = kill_leftover_server)
{
    static char redis_env[256];
    redis_url_db(9, redis_env, sizeof(redis_env));
    const char *const env[] = {redis_env, "API_RATE_LIMIT=0", "USER_RATE_LIMIT=3", NULL};
    start_server_env(env);
    char token_a[4096], token_b[4096];
    session(KEY_A, token_a, sizeof(token_a));
    session(KEY_B, token_b, sizeof(token_b));
    for (int i = 0; i != 3; ++i)
        cr_assert_eq(request(port, "GET", "/api/user/profile", token_a, NULL, NULL), 200, "#%d %s",
                     i, body);
    cr_assert_eq(request(port, "GET", "/api/intents", token_a, NULL, NULL), 429, "%s", body);
    uint32_t wait_s = retry_after();
    cr_assert(wait_s >= 1 && wait_s <= 3600, "Retry-After %u", wait_s);
    /* another user is not affected, nor is a request without a session (IP only) */
    cr_assert_eq(request(port, "GET", "/api/user/profile", token_b, NULL, NULL), 200, "%s", body);
    cr_assert_eq(request(port, "GET", "/api/openapi.json", NULL, NULL, NULL), 200);
    stop_server();
}

/* The EVAL calls Redis has answered so far (INFO commandstats; every database counts). */
static long long redis_evals(redisContext *c)
{
    redisReply *r = redisCommand(c, "INFO commandstats");
    cr_assert(r != NULL && r->type == REDIS_REPLY_STRING);
    const char *at = strstr(r->str, "cmdstat_eval:calls=");
    long long calls = at != NULL ? atoll(at + strlen("cmdstat_eval:calls=")) : 0;
    freeReplyObject(r);
    return calls;
}

/* The count of the only user key in the selected database (0 while there is none). */
static long long redis_user_count(redisContext *c)
{
    redisReply *keys = redisCommand(c, "KEYS intentd:rl:u:*");
    cr_assert(keys != NULL && keys->type == REDIS_REPLY_ARRAY && keys->elements <= 1);
    long long n = 0;
    if (keys->elements == 1) {
        redisReply *v = redisCommand(c, "GET %s", keys->element[0]->str);
        n = v != NULL && v->type == REDIS_REPLY_STRING ? atoll(v->str) : 0;
        freeReplyObject(v);
    }
    freeReplyObject(keys);
    return n;
}

/* Far from a large limit, the admissions reach Redis in batches (an eighth of the slack over
 * the workers: 1000 / 8 / 8 = 15 here), not one command per request, and no more than a batch
 * is ever held back. Bounds that hold whatever the timing: 46 requests are one first increment
 * (the window's first request waits for its own) and 45 admissions pushed 15 or more at a time,
 * so at most 1 + 3 commands; at rest fewer than 15 are unpushed. */
Test(api_guard, a_large_user_limit_reaches_redis_in_batches, .timeout = 90,
     .fini = kill_leftover_server)
{
    static char redis_env[256];
    redis_url_db(11, redis_env, sizeof(redis_env));
    const char *const env[] = {redis_env, "API_RATE_LIMIT=0", "USER_RATE_LIMIT=1000", "WORKERS=1",
                               NULL};
    start_server_env(env);
    char token[4096], host[128];
    session(KEY_A, token, sizeof(token));
    int redis_port = 0;
    sscanf(getenv("REDIS_URL"), "redis://%127[^:]:%d", host, &redis_port);
    redisContext *c = redisConnect(host, redis_port);
    cr_assert(c != NULL && c->err == 0);
    freeReplyObject(redisCommand(c, "SELECT 11"));
    while (time(NULL) % 3600 >= 3590) /* all in one hour's window: a single key */
        usleep(100000);
    long long evals_before = redis_evals(c);
    enum { N = 46 };
    for (int i = 0; i != N; ++i)
        cr_assert_eq(request(port, "GET", "/api/user/profile", token, NULL, NULL), 200, "#%d %s", i,
                     body);
    /* the last push may still be on its way: poll (bounded) for the count to settle */
    long long count = 0;
    for (int i = 0; i != 100 && (count = redis_user_count(c)) < N - 14; ++i)
        usleep(100000);
    cr_assert(count >= N - 14 && count <= N, "Redis counts %lld of %d admissions", count, N);
    long long evals = redis_evals(c) - evals_before;
    cr_assert(evals >= 2 && evals <= 4, "%lld Redis commands for %d requests", evals, N);
    redisFree(c);
    stop_server();
}

/* Starts a second intentd on the test's database with `env`; returns its pid, its port in
 * `*out_port`, once /readyz answers. */
static pid_t start_second(const char *const *env, int *out_port)
{
    int second_port = free_port();
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/tmp/intentd-test-api.log", O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        char port_str[16];
        snprintf(port_str, sizeof(port_str), "%d", second_port);
        setenv("PORT", port_str, 1);
        setenv("DATABASE_URL", db_url, 1);
        setenv("JWT_SECRET", JWT_SECRET, 1);
        setenv("WORKERS", "2", 1);
        for (size_t i = 0; env[i] != NULL; ++i)
            putenv((char *)env[i]);
        execl(INTENTD_BIN, INTENTD_BIN, (char *)NULL);
        _exit(127);
    }
    *out_port = second_port;
    cr_assert_eq(poll_until(second_port, "/readyz", 200, 10), 200, "the second intentd");
    return pid;
}

static pid_t second_pid;

/* Waits (at most 10 s) until the minute's window has 50 s left at least, so that a test's few
 * requests all count in one window. */
static void away_from_minute_boundary(void)
{
    while (time(NULL) % 60 >= 50)
        usleep(100000);
}

static void kill_both(void)
{
    if (second_pid > 0 && kill(second_pid, SIGKILL) == 0)
        waitpid(second_pid, NULL, 0);
    second_pid = 0;
    kill_leftover_server();
}

Test(api_guard, two_processes_share_the_ip_count_through_redis, .timeout = 90, .fini = kill_both)
{
    static char redis_env[256];
    redis_url_db(10, redis_env, sizeof(redis_env));
    const char *const env[] = {redis_env, "API_RATE_LIMIT=6", NULL};
    start_server_env(env);
    int second_port;
    second_pid = start_second(env, &second_port);
    /* the readiness polls are not limited: the window's count starts here */
    away_from_minute_boundary();
    int admitted = 0, refused = 0;
    for (int i = 0; i != 12; ++i) {
        int status =
            request(i % 2 == 0 ? port : second_port, "GET", "/api/openapi.json", NULL, NULL, NULL);
        cr_assert(status == 200 || status == 429, "%d %s", status, body);
        admitted += status == 200;
        refused += status == 429;
    }
    cr_assert(admitted == 6 && refused == 6, "admitted %d of 12 with a shared limit of 6",
              admitted);
    kill(second_pid, SIGTERM);
    int status;
    waitpid(second_pid, &status, 0);
    second_pid = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the second intentd did not exit 0");
    stop_server();
}

Test(api_guard, each_process_counts_alone_when_redis_is_down, .timeout = 90,
     .fini = kill_leftover_server)
{
    char dead[64];
    snprintf(dead, sizeof(dead), "REDIS_URL=redis://127.0.0.1:%d/0", free_port());
    const char *const env[] = {dead, "API_RATE_LIMIT=5", "WORKERS=1", NULL};
    start_server_env(env);
    away_from_minute_boundary();
    int admitted = 0;
    for (int i = 0; i != 8; ++i)
        admitted += request(port, "GET", "/api/openapi.json", NULL, NULL, NULL) == 200;
    cr_assert_eq(admitted, 5, "admitted %d of 8 with a limit of 5", admitted);
    cr_assert_eq(request(port, "GET", "/api/openapi.json", NULL, NULL, NULL), 429, "%s", body);
    stop_server();
}
