/* The API's read cache (actors/api_cache.c) through real HTTP against the intentd binary and a
 * real PostgreSQL (and Redis for two processes). That an answer came from the cache is shown
 * without timing: the row is changed behind the server's back (db_exec), and the old answer
 * keeps coming until an invalidation (an API change, an event, local or from another process)
 * or the TTL; then the new one does. Also: a hit is byte for byte the answer with the same
 * headers, one user never gets another's entry, and API_CACHE_TTL_MS=0 turns it off. The TTL
 * follows the Redis subscription: API_CACHE_TTL_SUBSCRIBED_MS while the other processes' events
 * surely arrive, API_CACHE_TTL_MS while Redis is down, and a new start when it is back. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include "chain/abi.h"
#include "chain/eip712.h"
#include "chain/hex.h"
#include "chain/key.h"
#include "support/api_server.h"
#include "support/ws_client.h"

#define REGISTRY "0x5FbDB2315678afecb367f032d93F642f64180aa3"
#define USDC "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
#define RECIPIENT "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
#define SALT "0x5555555555555555555555555555555555555555555555555555555555555555"
#define LONG_TTL "API_CACHE_TTL_MS=600000" /* only an invalidation can refresh within a test */

static char body[65536];

/* One worker, no rate limits, entries that live 1.5 s: the TTL's own tests. */
static const char *short_ttl_env[] = {"INTENT_CONTRACT_ADDRESS=" REGISTRY,
                                      "USDC_ADDRESS=" USDC,
                                      "API_RATE_LIMIT=0",
                                      "USER_RATE_LIMIT=0",
                                      "WORKERS=1",
                                      "API_CACHE_TTL_MS=1500",
                                      NULL};

static const char *str(json_t *obj, const char *name)
{
    return json_string_value(json_object_get(obj, name));
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* GET `path` as `token`, asserting 200; the body stays in `body`. */
static void get_ok(const char *path, const char *token)
{
    int status = http("GET", path, token, NULL, NULL, body, sizeof(body));
    cr_assert_eq(status, 200, "GET %s: %d %s", path, status, body);
}

/* The `name` of the intent GET `path` answers now (a static copy). */
static const char *name_of(const char *path, const char *token)
{
    static char name[128];
    get_ok(path, token);
    json_t *j = json_loads(body, 0, NULL);
    cr_assert_not_null(j, "%s", body);
    snprintf(name, sizeof(name), "%s", str(j, "name"));
    json_decref(j);
    return name;
}

/* Creates a daily 100.5 USDC intent from 2030-01-01T09:00:00Z with SALT; its id into `id`. */
static void create_salted(const char *token, const char *name, const char *salt, char id[37])
{
    char json[512];
    snprintf(json, sizeof(json),
             "{\"name\":\"%s\",\"recipient\":\"" RECIPIENT "\",\"token\":\"USDC\","
             "\"amount\":\"100.5\",\"frequency\":\"daily\",\"salt\":\"%s\","
             "\"startAt\":\"2030-01-01T09:00:00Z\"}",
             name, salt);
    int status = http("POST", "/api/intents", token, NULL, json, body, sizeof(body));
    cr_assert_eq(status, 201, "%s", body);
    json_t *j = json_loads(body, 0, NULL);
    snprintf(id, 37, "%s", str(j, "id"));
    json_decref(j);
}

static void create(const char *token, const char *name, char id[37])
{
    create_salted(token, name, SALT, id);
}

/* KEY_A's EIP-712 signature over the terms create() makes. */
static void sign_created_terms(char out[133])
{
    chain_key_t *owner = key(KEY_A);
    chain_intent_t terms = {.owner = *chain_key_address(owner),
                            .amount = chain_u256_from_u64(100500000),
                            .min_interval = 86400 - 300,
                            .valid_after = 1893488400,
                            .valid_until = CHAIN_INTENT_NO_END,
                            .max_executions = 0};
    chain_addr_parse(&terms.token, USDC, strlen(USDC));
    chain_addr_parse(&terms.recipient, RECIPIENT, strlen(RECIPIENT));
    chain_hex_decode_exact(terms.salt, sizeof(terms.salt), SALT, strlen(SALT),
                           CHAIN_HEX_0X_OPTIONAL);
    chain_key_free(owner);
    sign_intent_terms(KEY_A, &terms, REGISTRY, out);
}

/* Renames the intent in the database only: no API call, no event. */
static void rename_behind_back(const char *id, const char *name)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "UPDATE intents SET name = '%s' WHERE id = '%s'", name, id);
    db_exec(db_url, sql);
}

/* Publishes an event of the token's user through POST /api/test/events on the current port. */
static void publish_event(const char *token)
{
    char reply[256];
    int status =
        http("POST", "/api/test/events", token, NULL,
             "{\"type\":\"intent.updated\",\"data\":{\"probe\":true}}", reply, sizeof(reply));
    cr_assert_eq(status, 202, "%s", reply);
}

static long long metric(const char *name);

/* Waits (polling, bounded) until counter or gauge `name` on the current port reads `value`. */
static bool wait_metric(const char *name, long long value, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    while (metric(name) != value) {
        if (mono_ms() >= deadline)
            return false;
        usleep(20000);
    }
    return true;
}

static void intent_path(char *out, size_t cap, const char *id)
{
    snprintf(out, cap, "/api/intents/%s", id);
}

/* Signs in as KEY_A and creates the intent "first": the session token, its id and its path. */
static void first_intent(char *token, size_t token_cap, char *id, char *path, size_t path_cap)
{
    session(KEY_A, token, token_cap);
    create(token, "first", id);
    intent_path(path, path_cap, id);
}

Test(api_cache, a_read_is_served_from_the_cache_until_an_event_invalidates_it, .timeout = 60,
     .fini = kill_leftover_server)
{
    /* one worker: every connection meets the same cache */
    const char *env[] = {"INTENT_CONTRACT_ADDRESS=" REGISTRY,
                         "USDC_ADDRESS=" USDC,
                         "API_RATE_LIMIT=0",
                         "USER_RATE_LIMIT=0",
                         "EVENTS_TEST_ENDPOINT=1",
                         "WORKERS=1",
                         LONG_TTL,
                         NULL};
    start_server_env(env);
    char token[4096], id[37], path[64];
    first_intent(token, sizeof(token), id, path, sizeof(path));
    cr_assert_str_eq(name_of(path, token), "first");
    get_ok("/api/intents?limit=5", token);
    cr_assert_not_null(strstr(body, "\"name\":\"first\""), "%s", body);
    rename_behind_back(id, "second");
    /* the database says "second"; the cached answers still say "first" */
    for (int i = 0; i != 3; ++i)
        cr_assert_str_eq(name_of(path, token), "first", "GET %d was not a cached answer", i);
    get_ok("/api/intents?limit=5", token);
    cr_assert_not_null(strstr(body, "\"name\":\"first\""), "%s", body);
    /* another query string is another entry: read now */
    get_ok("/api/intents?limit=6", token);
    cr_assert_not_null(strstr(body, "\"name\":\"second\""), "%s", body);
    /* any event of the user makes every entry of theirs stale */
    publish_event(token);
    cr_assert_str_eq(name_of(path, token), "second");
    get_ok("/api/intents?limit=5", token);
    cr_assert_not_null(strstr(body, "\"name\":\"second\""), "%s", body);
    stop_server();
}

/* Warms the caches of both workers (connections are spread over them by the kernel, so a few
 * requests each) for the intent and the lists. */
static void warm(const char *path, const char *token)
{
    for (int i = 0; i != 6; ++i) {
        get_ok(path, token);
        get_ok("/api/intents", token);
        get_ok("/api/intents?status=active", token);
    }
}

static const char *status_of(const char *path, const char *token)
{
    static char status[64];
    get_ok(path, token);
    json_t *j = json_loads(body, 0, NULL);
    snprintf(status, sizeof(status), "%s", str(j, "status"));
    json_decref(j);
    return status;
}

/* The number of items of the list at `path`. */
static size_t items_of(const char *path, const char *token)
{
    get_ok(path, token);
    json_t *j = json_loads(body, 0, NULL);
    size_t n = json_array_size(json_object_get(j, "items"));
    json_decref(j);
    return n;
}

static void post_ok(const char *path, const char *token, const char *payload)
{
    int status = http("POST", path, token, NULL, payload, body, sizeof(body));
    cr_assert_eq(status, 200, "POST %s: %d %s", path, status, body);
}

Test(api_cache, every_api_change_is_visible_on_the_very_next_get, .timeout = 90,
     .fini = kill_leftover_server)
{
    const char *env[] = {"INTENT_CONTRACT_ADDRESS=" REGISTRY,
                         "USDC_ADDRESS=" USDC,
                         "API_RATE_LIMIT=0",
                         "USER_RATE_LIMIT=0",
                         LONG_TTL,
                         NULL}; /* two workers: a change on one must reach the other's cache */
    start_server_env(env);
    char token[4096], id[37], path[64], sub[96], sig[133], json[256];
    session(KEY_A, token, sizeof(token));
    for (int i = 0; i != 6; ++i)
        cr_assert_eq(items_of("/api/intents", token), 0);
    create(token, "rent", id); /* create */
    cr_assert_eq(items_of("/api/intents", token), 1);
    intent_path(path, sizeof(path), id);
    warm(path, token);
    cr_assert_eq(items_of("/api/intents?status=active", token), 0);
    sign_created_terms(sig); /* signature */
    snprintf(sub, sizeof(sub), "%s/signature", path);
    snprintf(json, sizeof(json), "{\"signature\":\"%s\"}", sig);
    post_ok(sub, token, json);
    cr_assert_str_eq(status_of(path, token), "active");
    cr_assert_eq(items_of("/api/intents?status=active", token), 1);
    warm(path, token);
    snprintf(sub, sizeof(sub), "%s/pause", path); /* pause */
    post_ok(sub, token, NULL);
    cr_assert_str_eq(status_of(path, token), "paused");
    cr_assert_eq(items_of("/api/intents?status=active", token), 0);
    warm(path, token);
    snprintf(sub, sizeof(sub), "%s/resume", path); /* resume */
    post_ok(sub, token, NULL);
    cr_assert_str_eq(status_of(path, token), "active");
    warm(path, token);
    int status = http("PATCH", path, token, NULL, "{\"name\":\"rent 2\"}", body, sizeof(body));
    cr_assert_eq(status, 200, "%s", body); /* patch */
    cr_assert_str_eq(name_of(path, token), "rent 2");
    get_ok("/api/intents", token);
    cr_assert_not_null(strstr(body, "\"name\":\"rent 2\""), "%s", body);
    warm(path, token);
    status = http("DELETE", path, token, NULL, NULL, body, sizeof(body)); /* cancel */
    cr_assert_eq(status, 200, "%s", body);
    cr_assert_str_eq(status_of(path, token), "cancelled");
    cr_assert_eq(items_of("/api/intents?status=active", token), 0);
    stop_server();
}

/* A second intentd on the test database and the Redis of `redis_env` ("REDIS_URL=..."), with
 * the endpoint that publishes test events: "another process". Its pid (ws_kill_leftovers ends
 * it). */
static pid_t start_other_process(int port_b, const char *redis_env)
{
    const char *env_b[] = {"API_RATE_LIMIT=0",
                           "USER_RATE_LIMIT=0",
                           "EVENTS_TEST_ENDPOINT=1",
                           redis_env,
                           "JWT_SECRET=" JWT_SECRET,
                           "DATA_ENCRYPTION_KEY=" DATA_KEY,
                           NULL};
    pid_t b = ws_start_intentd(INTENTD_BIN, port_b, db_url, env_b, "/tmp/intentd-test-cache.log");
    cr_assert_gt(b, 0, "the second intentd did not start");
    return b;
}

Test(api_cache, an_event_from_another_process_invalidates, .timeout = 120,
     .fini = ws_kill_leftovers)
{
    const char *redis = getenv("REDIS_URL");
    cr_assert_not_null(redis, "REDIS_URL is not set: run the tests through scripts/test.sh");
    static char redis_env[512];
    snprintf(redis_env, sizeof(redis_env), "REDIS_URL=%s", redis);
    const char *env[] = {"INTENT_CONTRACT_ADDRESS=" REGISTRY,
                         "USDC_ADDRESS=" USDC,
                         "API_RATE_LIMIT=0",
                         "USER_RATE_LIMIT=0",
                         "EVENTS_TEST_ENDPOINT=1",
                         "WORKERS=1",
                         LONG_TTL,
                         redis_env,
                         NULL};
    start_server_env(env);
    int port_a = port, port_b = free_port();
    pid_t b = start_other_process(port_b, redis_env);
    /* the subscription coming up makes every entry stale: before the first read */
    cr_assert(wait_metric("intentd_events_subscribed", 1, 20000), "A never subscribed");
    char token[4096], id[37], path[64];
    first_intent(token, sizeof(token), id, path, sizeof(path));
    cr_assert_str_eq(name_of(path, token), "first");
    rename_behind_back(id, "second");
    cr_assert_str_eq(name_of(path, token), "first", "not a cached answer");
    /* an event published in B reaches A through Redis; A's subscription is asynchronous, so
     * publish until A answers afresh (bounded), which only an invalidation can make it do */
    bool fresh = false;
    for (int i = 0; i != 100 && !fresh; ++i) {
        port = port_b;
        publish_event(token);
        port = port_a;
        for (int j = 0; j != 20 && !fresh; ++j, usleep(10000))
            fresh = strcmp(name_of(path, token), "second") == 0;
    }
    cr_assert(fresh, "A kept its cached answer after B's events");
    cr_assert(ws_stop_intentd(b), "the second intentd did not exit cleanly");
    stop_server();
}

Test(api_cache, one_user_never_gets_another_users_entry, .timeout = 60,
     .fini = kill_leftover_server)
{
    const char *env[] = {"INTENT_CONTRACT_ADDRESS=" REGISTRY,
                         "USDC_ADDRESS=" USDC,
                         "API_RATE_LIMIT=0",
                         "USER_RATE_LIMIT=0",
                         "WORKERS=1",
                         LONG_TTL,
                         NULL};
    start_server_env(env);
    char token_a[4096], token_b[4096], id[37], path[64];
    session(KEY_A, token_a, sizeof(token_a));
    session(KEY_B, token_b, sizeof(token_b));
    create(token_a, "mine", id);
    intent_path(path, sizeof(path), id);
    cr_assert_str_eq(name_of(path, token_a), "mine");
    cr_assert_eq(items_of("/api/intents", token_a), 1);
    rename_behind_back(id, "changed");
    cr_assert_str_eq(name_of(path, token_a), "mine", "A's answer is not cached");
    /* the same paths as B: B's own answers */
    cr_assert_eq(http("GET", path, token_b, NULL, NULL, body, sizeof(body)), 404, "%s", body);
    cr_assert_eq(items_of("/api/intents", token_b), 0);
    cr_assert_eq(items_of("/api/intents", token_b), 0);
    /* without a valid token nothing is answered from the cache either */
    cr_assert_eq(http("GET", path, NULL, NULL, NULL, body, sizeof(body)), 401, "%s", body);
    cr_assert_eq(http("GET", path, "x.y.z", NULL, NULL, body, sizeof(body)), 401, "%s", body);
    stop_server();
}

Test(api_cache, ttl_zero_disables_and_a_short_ttl_expires, .timeout = 90,
     .fini = kill_leftover_server)
{
    const char *env[] = {"INTENT_CONTRACT_ADDRESS=" REGISTRY,
                         "USDC_ADDRESS=" USDC,
                         "API_RATE_LIMIT=0",
                         "USER_RATE_LIMIT=0",
                         "WORKERS=1",
                         "API_CACHE_TTL_MS=0",
                         NULL};
    start_server_env(env);
    char token[4096], id[37], path[64];
    first_intent(token, sizeof(token), id, path, sizeof(path));
    cr_assert_str_eq(name_of(path, token), "first");
    rename_behind_back(id, "second");
    cr_assert_str_eq(name_of(path, token), "second", "answered from a disabled cache");
    stop_server();

    start_server_env(short_ttl_env);
    first_intent(token, sizeof(token), id, path, sizeof(path));
    int64_t read_ms = mono_ms();
    cr_assert_str_eq(name_of(path, token), "first");
    rename_behind_back(id, "second");
    const char *name = name_of(path, token);
    if (mono_ms() - read_ms < 1000) /* only then is the entry surely still alive */
        cr_assert_str_eq(name, "first", "not a cached answer");
    /* with no invalidation at all, the TTL ends it (polled with a bounded deadline) */
    int64_t deadline = mono_ms() + 20000;
    while (strcmp(name_of(path, token), "second") != 0 && mono_ms() < deadline)
        usleep(50000);
    cr_assert_str_eq(name_of(path, token), "second", "the entry outlived its TTL");
    stop_server();
}

/* The value of counter `name` on GET /metrics (-1 when absent). */
static long long metric(const char *name)
{
    static char text[65536];
    int status = http("GET", "/metrics", NULL, NULL, NULL, text, sizeof(text));
    cr_assert_eq(status, 200, "/metrics: %d", status);
    size_t len = strlen(name);
    for (const char *line = text; line != NULL && *line != '\0';) {
        if (strncmp(line, name, len) == 0 && line[len] == ' ')
            return atoll(line + len + 1);
        line = strchr(line, '\n');
        line = line != NULL ? line + 1 : NULL;
    }
    return -1;
}

/* An entry read all the time is refreshed ahead of its TTL by one read while the others are still
 * answered from it: the refresh counter moves, the entry never went stale in between (the reads
 * stay hits), and a change made behind the cache's back shows within the TTL. */
Test(api_cache, a_busy_entry_is_refreshed_ahead_of_its_ttl, .timeout = 90,
     .fini = kill_leftover_server)
{
    start_server_env(short_ttl_env);
    char token[4096], id[37], path[64];
    first_intent(token, sizeof(token), id, path, sizeof(path));
    cr_assert_str_eq(name_of(path, token), "first");
    long long refreshes0 = metric("intentd_api_cache_refreshes_total");
    cr_assert_geq(refreshes0, 0, "no refresh counter on /metrics");
    /* read it all the time for up to 20 s: a refresh point lies within the first TTL */
    int64_t deadline = mono_ms() + 20000;
    while (metric("intentd_api_cache_refreshes_total") == refreshes0 && mono_ms() < deadline) {
        cr_assert_str_eq(name_of(path, token), "first");
        usleep(20000);
    }
    cr_assert_gt(metric("intentd_api_cache_refreshes_total"), refreshes0,
                 "a busy entry was never refreshed ahead");
    cr_assert_gt(metric("intentd_api_cache_hits_total"), 0, "reads were not served from cache");
    /* a refresh reads the database: a change behind the cache's back shows without any event */
    rename_behind_back(id, "second");
    deadline = mono_ms() + 20000;
    while (strcmp(name_of(path, token), "second") != 0 && mono_ms() < deadline)
        usleep(20000);
    cr_assert_str_eq(name_of(path, token), "second", "the refreshed entry kept the old row");
    stop_server();
}

/* A refresh runs in the background as a copy of the request that found the entry past its
 * refresh point: every client read is answered from the cache, and the copy is nobody's
 * request, so it does not count against the user's rate limit (USER_RATE_LIMIT=80 admits
 * exactly 80 requests of the user, the create included, however many refreshes ran). */
Test(api_cache, a_refresh_is_not_counted_as_a_request_of_the_user, .timeout = 90,
     .fini = kill_leftover_server)
{
    const char *env[] = {"INTENT_CONTRACT_ADDRESS=" REGISTRY,
                         "USDC_ADDRESS=" USDC,
                         "API_RATE_LIMIT=0",
                         "USER_RATE_LIMIT=80",
                         "WORKERS=1",
                         "API_CACHE_TTL_MS=1000",
                         NULL};
    start_server_env(env);
    char token[4096], id[37], path[64];
    first_intent(token, sizeof(token), id, path, sizeof(path));
    long long refreshes0 = metric("intentd_api_cache_refreshes_total");
    long long misses0 = metric("intentd_api_cache_misses_total");
    int admitted = 1, status = 200; /* the create */
    for (int i = 0; i != 100 && status == 200; ++i) {
        status = http("GET", path, token, NULL, NULL, body, sizeof(body));
        admitted += status == 200;
        usleep(20000); /* ~1.7 s of reads: the first refresh point is within 0.875 s */
    }
    cr_assert_eq(status, 429, "the limit never answered: %d %s", status, body);
    cr_assert_eq(admitted, 80, "%d requests admitted with a limit of 80", admitted);
    long long refreshes = metric("intentd_api_cache_refreshes_total") - refreshes0;
    cr_assert_gt(refreshes, 0, "no refresh ran while the entry was read");
    /* the first read missed; every other read was a hit, the refreshes reading for them */
    cr_assert_eq(metric("intentd_api_cache_misses_total") - misses0, 1 + refreshes,
                 "a client read waited for the database");
    stop_server();
}

/* ---- byte for byte ---- */

/* One raw request; the whole response (status line, headers, body) into `out`. */
/* A connection to the server; `rcvbuf` bytes of receive buffer, or the kernel's when 0. */
static int connect_server(int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf != 0)
        cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    return fd;
}

static size_t raw(const char *method, const char *path, const char *token, const char *extra,
                  char *out, size_t cap)
{
    int fd = connect_server(0);
    char req[8192];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                     "Authorization: Bearer %s\r\n%s\r\n",
                     method, path, token, extra);
    cr_assert_eq(write(fd, req, (size_t)n), n);
    size_t len = 0;
    ssize_t r;
    while (len + 1 < cap && (r = read(fd, out + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    out[len] = '\0';
    close(fd);
    return len;
}

/* The response without the headers that differ per request by design (Date, X-Request-Id; and
 * Content-Length unless `with_length`), header names lowercased, into `out`. */
static void comparable(const char *response, bool with_length, char *out, size_t cap)
{
    size_t n = 0;
    const char *end = strstr(response, "\r\n\r\n");
    cr_assert_not_null(end, "no header end: %s", response);
    for (const char *line = response; line < end;) {
        const char *eol = strstr(line, "\r\n");
        size_t len = (size_t)(eol - line);
        bool skip = strncasecmp(line, "date:", 5) == 0 ||
                    strncasecmp(line, "x-request-id:", 13) == 0 ||
                    (!with_length && strncasecmp(line, "content-length:", 15) == 0);
        if (!skip) {
            const char *colon = memchr(line, ':', len);
            for (size_t i = 0; i != len && n + 2 < cap; ++i)
                out[n++] = colon != NULL && line + i < colon ? (char)tolower(line[i]) : line[i];
            out[n++] = '\n';
        }
        line = eol + 2;
    }
    snprintf(out + n, cap - n, "%s", end + 4);
}

/* One worker, no rate limits, the test events endpoint, an allowed origin and entries that only
 * an invalidation ends: the tests of what an answer looks like. */
static const char *answer_env[] = {"INTENT_CONTRACT_ADDRESS=" REGISTRY,
                                   "USDC_ADDRESS=" USDC,
                                   "API_RATE_LIMIT=0",
                                   "USER_RATE_LIMIT=0",
                                   "EVENTS_TEST_ENDPOINT=1",
                                   "CORS_ORIGINS=https://app.example",
                                   "WORKERS=1",
                                   LONG_TTL,
                                   NULL};

Test(api_cache, a_hit_is_the_same_answer_with_the_same_headers, .timeout = 60,
     .fini = kill_leftover_server)
{
    start_server_env(answer_env);
    char token[4096], id[37], path[64];
    static char miss[65536], hit[65536], fresh[65536], a[65536], b[65536];
    first_intent(token, sizeof(token), id, path, sizeof(path));
    const char *origin = "Origin: https://app.example\r\n";
    raw("GET", path, token, origin, miss, sizeof(miss));
    rename_behind_back(id, "second");
    raw("GET", path, token, origin, hit, sizeof(hit));
    cr_assert_not_null(strstr(hit, "\"name\":\"first\""), "not a cached answer: %s", hit);
    comparable(miss, true, a, sizeof(a));
    comparable(hit, true, b, sizeof(b));
    cr_assert_str_eq(b, a, "the cached answer differs");
    cr_assert_not_null(strstr(b, "access-control-allow-origin: https://app.example"), "%s", b);
    cr_assert_not_null(strstr(b, "content-type: application/json"), "%s", b);
    cr_assert(strcasestr(hit, "\r\nx-request-id: ") != NULL, "%s", hit);
    /* HEAD from the cache: the headers of the GET, no body */
    raw("HEAD", path, token, origin, fresh, sizeof(fresh));
    comparable(fresh, true, b, sizeof(b));
    char *body_at = strstr(a, "{");
    cr_assert_not_null(body_at);
    *body_at = '\0';
    cr_assert_str_eq(b, a, "HEAD differs from GET");
    /* an answer computed afresh has the same headers as the hit had */
    publish_event(token);
    raw("GET", path, token, origin, fresh, sizeof(fresh));
    cr_assert_not_null(strstr(fresh, "\"name\":\"second\""), "%s", fresh);
    comparable(fresh, false, a, sizeof(a));
    comparable(hit, false, b, sizeof(b));
    *strstr(a, "{") = '\0';
    *strstr(b, "{") = '\0';
    cr_assert_str_eq(b, a, "headers of a hit and a miss differ");
    stop_server();
}

/* A response raw() read, split: its header block (NUL-terminated in place, lowercased names
 * kept as sent) and its body's bytes. */
typedef struct {
    char *head;
    const char *body;
    size_t body_len;
} split_t;

static split_t split(char *response, size_t len)
{
    char *end = memmem(response, len, "\r\n\r\n", 4);
    cr_assert_not_null(end, "no header end: %.*s", (int)len, response);
    *end = '\0';
    return (split_t){response, end + 4, len - (size_t)(end + 4 - response)};
}

/* The value of header `name` in `head` (a static copy), or NULL. */
static const char *header_value(const char *head, const char *name)
{
    static char value[512];
    size_t n = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, name, n) == 0 && line[2 + n] == ':') {
            const char *v = line + 3 + n, *eol = strstr(v, "\r\n");
            size_t len = eol != NULL ? (size_t)(eol - v) : strlen(v);
            snprintf(value, sizeof(value), "%.*s", (int)len, v);
            return value + strspn(value, " ");
        }
    }
    return NULL;
}

/* Inflates a gzip member into `out` (NUL-terminated); its length. */
static size_t gunzip(const char *in, size_t len, char *out, size_t cap)
{
    z_stream z = {0};
    cr_assert_eq(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)(cap - 1);
    int rc = inflate(&z, Z_FINISH);
    cr_assert_eq(rc, Z_STREAM_END, "not one whole gzip member: %d", rc);
    cr_assert_eq(z.avail_in, 0, "bytes after the gzip member");
    size_t n = cap - 1 - z.avail_out;
    out[n] = '\0';
    inflateEnd(&z);
    return n;
}

/* A hit goes out gzip-coded exactly when the request's Accept-Encoding accepts gzip and the body
 * is large enough to be worth it; the coded bytes inflate to the very body the identity answer
 * carries; every answer of a cached route says Vary: Accept-Encoding, a miss's included; a
 * HEAD's Content-Length is that of the coding its GET would get. */
Test(api_cache, a_hit_is_gzip_coded_when_the_client_accepts_it, .timeout = 60,
     .fini = kill_leftover_server)
{
    start_server_env(answer_env);
    char token[4096], id[37], path[64];
    static char plain[65536], coded[65536], other[65536], inflated[65536];
    first_intent(token, sizeof(token), id, path, sizeof(path));
    const char *browser = "Origin: https://app.example\r\nAccept-Encoding: gzip, deflate, br\r\n";
    const char *paths[] = {path, "/api/intents", "/api/intents?status=pending_signature"};
    for (size_t i = 0; i != sizeof(paths) / sizeof(paths[0]); ++i) {
        /* the miss, then the identity hit it filled */
        size_t n = raw("GET", paths[i], token, browser, plain, sizeof(plain));
        split_t miss = split(plain, n);
        cr_assert(strncmp(miss.head, "HTTP/1.1 200", 12) == 0, "%s", miss.head);
        cr_assert_not_null(header_value(miss.head, "vary"), "%s", miss.head);
        cr_assert(strcasestr(header_value(miss.head, "vary"), "accept-encoding") != NULL,
                  "a miss's Vary: %s", miss.head);
        cr_assert(miss.body_len >= 1024, "%s: %zu bytes, too small to be coded", paths[i],
                  miss.body_len);
        cr_assert_null(header_value(miss.head, "content-encoding"), "%s", miss.head);
        n = raw("GET", paths[i], token, browser, coded, sizeof(coded));
        split_t hit = split(coded, n);
        cr_assert_str_eq(header_value(hit.head, "content-encoding"), "gzip", "%s", hit.head);
        const char *vary = header_value(hit.head, "vary");
        cr_assert(vary != NULL && strcasestr(vary, "accept-encoding") != NULL &&
                      strcasestr(vary, "origin") != NULL,
                  "%s", hit.head);
        cr_assert_eq(strtoull(header_value(hit.head, "content-length"), NULL, 10), hit.body_len);
        cr_assert(hit.body_len < miss.body_len / 2, "%zu coded against %zu", hit.body_len,
                  miss.body_len);
        size_t len = gunzip(hit.body, hit.body_len, inflated, sizeof(inflated));
        cr_assert_eq(len, miss.body_len);
        cr_assert(memcmp(inflated, miss.body, len) == 0, "the coding inflates to another body");
        /* no Accept-Encoding, gzip refused by weight, or only other codings: the identity */
        const char *identity[] = {"", "Accept-Encoding: gzip;q=0, *\r\n",
                                  "Accept-Encoding: br, identity\r\n"};
        for (size_t k = 0; k != sizeof(identity) / sizeof(identity[0]); ++k) {
            n = raw("GET", paths[i], token, identity[k], other, sizeof(other));
            split_t o = split(other, n);
            cr_assert_null(header_value(o.head, "content-encoding"), "'%s': %s", identity[k],
                           o.head);
            cr_assert(strcasestr(header_value(o.head, "vary"), "accept-encoding") != NULL);
            cr_assert(o.body_len == miss.body_len && memcmp(o.body, miss.body, o.body_len) == 0,
                      "'%s': another body", identity[k]);
        }
        /* HEAD: the coded answer's headers, no body */
        n = raw("HEAD", paths[i], token, "Accept-Encoding: gzip\r\n", other, sizeof(other));
        split_t head = split(other, n);
        cr_assert_str_eq(header_value(head.head, "content-encoding"), "gzip", "%s", head.head);
        cr_assert_eq(strtoull(header_value(head.head, "content-length"), NULL, 10), hit.body_len);
        cr_assert_eq(head.body_len, 0);
    }
    /* a small body (an empty list) is kept in the identity coding only */
    raw("GET", "/api/intents?status=paused", token, browser, plain, sizeof(plain));
    size_t n = raw("GET", "/api/intents?status=paused", token, browser, coded, sizeof(coded));
    split_t small = split(coded, n);
    cr_assert_null(header_value(small.head, "content-encoding"), "%s", small.head);
    cr_assert(strcasestr(header_value(small.head, "vary"), "accept-encoding") != NULL);
    cr_assert(small.body_len < 1024 && strstr(small.body, "\"items\":[]") != NULL, "%s",
              small.body);
    stop_server();
}

/* ---- verified tokens ---- */

Test(api_cache, a_tampered_copy_of_a_verified_token_is_refused, .timeout = 60,
     .fini = kill_leftover_server)
{
    const char *env[] = {"API_RATE_LIMIT=0", "USER_RATE_LIMIT=0", "WORKERS=1", NULL};
    start_server_env(env);
    char token[4096], bad[4200];
    session(KEY_A, token, sizeof(token));
    get_ok("/api/intents", token); /* verified, and kept */
    get_ok("/api/intents", token); /* compared */
    size_t len = strlen(token);
    const char *dot = strrchr(token, '.');
    cr_assert_not_null(dot);
    /* same length, one character off: at the end (the signature), in the payload, first */
    size_t at[] = {len - 2, (size_t)(dot - token) - 3, 0};
    for (size_t i = 0; i != sizeof(at) / sizeof(at[0]); ++i) {
        snprintf(bad, sizeof(bad), "%s", token);
        bad[at[i]] = bad[at[i]] == 'A' ? 'B' : 'A';
        int status = http("GET", "/api/intents", bad, NULL, NULL, body, sizeof(body));
        cr_assert_eq(status, 401, "variant %zu: %d %s", i, status, body);
    }
    /* a prefix or an extension of it is not it either */
    snprintf(bad, sizeof(bad), "%.*s", (int)len - 1, token);
    cr_assert_eq(http("GET", "/api/intents", bad, NULL, NULL, body, sizeof(body)), 401);
    snprintf(bad, sizeof(bad), "%sA", token);
    cr_assert_eq(http("GET", "/api/intents", bad, NULL, NULL, body, sizeof(body)), 401);
    get_ok("/api/intents", token);
    /* the peer's address as the audit log records it (formatted without inet_ntop) */
    cr_assert_str_eq(
        db_value("SELECT host(remote_ip) FROM audit_log WHERE action = 'auth.sign_in' LIMIT 1"),
        "127.0.0.1");
    stop_server();
}

/* ---- answers sent straight from the cache's memory ---- */

/* The client of a connection that sends many requests at once and reads nothing for a while. */
typedef struct st_pipeline_t {
    int fd;
    const char *request; /* sent `count` times */
    size_t request_len;
    int count;
} pipeline_t;

static void *send_pipeline(void *arg)
{
    pipeline_t *p = arg;
    for (int i = 0; i != p->count; ++i)
        for (size_t sent = 0; sent != p->request_len;) {
            ssize_t n = write(p->fd, p->request + sent, p->request_len - sent);
            if (n <= 0)
                return NULL; /* the reader asserts the answers */
            sent += (size_t)n;
        }
    return NULL;
}

/* Reads one answer of the pipeline into `out` (its body) and returns the status. */
static int read_answer(int fd, char *buf, size_t cap, size_t *buffered, char *out, size_t out_cap)
{
    for (;;) {
        buf[*buffered] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        const char *cl = end != NULL ? strcasestr(buf, "\r\ncontent-length: ") : NULL;
        if (end != NULL) {
            cr_assert(cl != NULL && cl < end, "no content-length: %.200s", buf);
            size_t head = (size_t)(end + 4 - buf), len = strtoul(cl + 18, NULL, 10);
            if (*buffered >= head + len) {
                cr_assert_lt(len, out_cap);
                memcpy(out, end + 4, len);
                out[len] = '\0';
                int status = atoi(buf + 9);
                memmove(buf, buf + head + len, *buffered - head - len);
                *buffered -= head + len;
                return status;
            }
        }
        cr_assert_lt(*buffered + 1, cap, "an answer larger than the buffer");
        ssize_t n = read(fd, buf + *buffered, cap - 1 - *buffered);
        cr_assert_gt(n, 0, "the connection ended early");
        *buffered += (size_t)n;
    }
}

/* A hit's body goes out from the cache's own memory, not a copy: while a client is slow to read
 * it, the cache fills up with other answers many times over (a 64 KiB budget, ~150 fills of
 * ~1 KiB), and every answer it then reads is still the list it asked for, byte for byte. */
Test(api_cache, an_answer_a_slow_client_reads_is_not_overwritten_by_later_fills, .timeout = 120,
     .fini = kill_leftover_server)
{
    const char *env[] = {"INTENT_CONTRACT_ADDRESS=" REGISTRY,
                         "USDC_ADDRESS=" USDC,
                         "API_RATE_LIMIT=0",
                         "USER_RATE_LIMIT=0",
                         "WORKERS=1",
                         "API_CACHE_MAX_BYTES=65536",
                         LONG_TTL,
                         NULL};
    start_server_env(env);
    char token[4096], id[37], path[64];
    first_intent(token, sizeof(token), id, path, sizeof(path));
    for (int i = 0; i != 3; ++i) {
        char salt[67];
        snprintf(salt, sizeof(salt), "0x%064d", i + 1);
        create_salted(token, "more", salt, id);
    }
    static char expected[65536], got[65536], buf[262144];
    get_ok("/api/intents", token); /* the miss that fills the entry */
    snprintf(expected, sizeof(expected), "%s", body);
    cr_assert_gt(strlen(expected), 3000, "a list too small to span segments: %s", expected);
    long long hits0 = metric("intentd_api_cache_hits_total");

    /* a client with a tiny receive window asks for the list many times over without reading:
     * ~12 MB of answers, more than the kernel's buffers hold, so h2o keeps one waiting */
    int fd = connect_server(4096);
    char request[4600];
    int request_len = snprintf(request, sizeof(request),
                               "GET /api/intents HTTP/1.1\r\nHost: localhost\r\n"
                               "Authorization: Bearer %s\r\n\r\n",
                               token);
    pipeline_t p = {fd, request, (size_t)request_len, 2500};
    pthread_t writer;
    cr_assert_eq(pthread_create(&writer, NULL, send_pipeline, &p), 0);
    /* until the pipeline's answers stop: at least one hit went out and the count stands still
     * over 20 polls (the server waits for the client to read) */
    long long hits = hits0, last = -1;
    int64_t deadline = mono_ms() + 30000;
    for (int still = 0; still != 20 && mono_ms() < deadline;) {
        hits = metric("intentd_api_cache_hits_total");
        still = hits == last && hits > hits0 ? still + 1 : 0;
        last = hits;
    }
    cr_assert_lt(hits - hits0, p.count, "the slow client was never kept waiting");

    /* meanwhile, other answers fill the cache and lap its memory many times */
    char other[128];
    long long misses0 = metric("intentd_api_cache_misses_total");
    for (int i = 0; i != 150; ++i) {
        snprintf(other, sizeof(other), "%s?fill=%d", path, i);
        get_ok(other, token);
    }
    cr_assert_geq(metric("intentd_api_cache_misses_total") - misses0, 150, "not read afresh");
    /* stored: the last one is a hit now (and the arena, ~61 KiB, was lapped twice over) */
    long long hits1 = metric("intentd_api_cache_hits_total");
    get_ok(other, token);
    cr_assert_eq(metric("intentd_api_cache_hits_total"), hits1 + 1, "the fills were not stored");

    size_t buffered = 0;
    for (int i = 0; i != p.count; ++i) {
        cr_assert_eq(read_answer(fd, buf, sizeof(buf), &buffered, got, sizeof(got)), 200,
                     "answer %d: %s", i, got);
        cr_assert_str_eq(got, expected, "answer %d of the slow client changed", i);
    }
    pthread_join(writer, NULL);
    close(fd);
    stop_server();
}

/* ---- the TTL by subscription state ---- */

static void kill_redis_and_servers(void)
{
    ws_kill_leftovers();
    ws_redis_stop();
}

/* Subscribed, an answer outlives the short TTL (hits, no miss); another process's event shows
 * at once; with Redis stopped, the short TTL ends even an entry filled under the long one; with
 * Redis back, an entry filled meanwhile is not served (the events of the gap were lost). The
 * long TTL is 10 minutes: within the test, only an event or the short TTL can end an entry. */
Test(api_cache, the_ttl_follows_the_subscription_to_the_other_processes_events, .timeout = 150,
     .fini = kill_redis_and_servers)
{
    int redis_port = free_port();
    ws_redis_start(redis_port);
    static char redis_env[64];
    snprintf(redis_env, sizeof(redis_env), "REDIS_URL=redis://127.0.0.1:%d/0", redis_port);
    const char *env[] = {"INTENT_CONTRACT_ADDRESS=" REGISTRY,
                         "USDC_ADDRESS=" USDC,
                         "API_RATE_LIMIT=0",
                         "USER_RATE_LIMIT=0",
                         "WORKERS=1",
                         "API_CACHE_TTL_MS=300",
                         "API_CACHE_TTL_SUBSCRIBED_MS=600000",
                         redis_env,
                         NULL};
    start_server_env(env);
    int port_a = port, port_b = free_port();
    pid_t b = start_other_process(port_b, redis_env);
    port = port_b; /* B publishes only once its connections are up */
    cr_assert(wait_metric("intentd_events_subscribed", 1, 20000), "B never subscribed");
    port = port_a;
    cr_assert(wait_metric("intentd_events_subscribed", 1, 20000), "A never subscribed");
    long long resubscribed = metric("intentd_events_resubscribed_total");
    cr_assert_eq(resubscribed, 1);

    /* subscribed: read, change the row behind the server's back, wait out the short TTL */
    char token[4096], id[37], path[64];
    first_intent(token, sizeof(token), id, path, sizeof(path));
    cr_assert_str_eq(name_of(path, token), "first");
    int64_t filled_ms = mono_ms();
    rename_behind_back(id, "second");
    while (mono_ms() - filled_ms < 3 * 300)
        usleep(50000);
    long long hits0 = metric("intentd_api_cache_hits_total");
    long long misses0 = metric("intentd_api_cache_misses_total");
    cr_assert_str_eq(name_of(path, token), "first", "the short TTL ended it while subscribed");
    cr_assert_eq(metric("intentd_api_cache_hits_total"), hits0 + 1, "not a hit");
    cr_assert_eq(metric("intentd_api_cache_misses_total"), misses0, "the database was read");

    /* another process's event through Redis: A answers afresh at once (delivery is
     * asynchronous, hence the bounded polling; the TTL cannot do it in 10 minutes) */
    port = port_b;
    publish_event(token);
    port = port_a;
    int64_t deadline = mono_ms() + 10000;
    while (strcmp(name_of(path, token), "second") != 0 && mono_ms() < deadline)
        usleep(10000);
    cr_assert_str_eq(name_of(path, token), "second", "B's event did not reach A's cache");

    /* Redis stopped: the entry filled under the long TTL ends within the short one */
    ws_redis_stop();
    cr_assert(wait_metric("intentd_events_subscribed", 0, 20000), "A did not see Redis go");
    rename_behind_back(id, "third");
    deadline = mono_ms() + 20000;
    while (strcmp(name_of(path, token), "third") != 0 && mono_ms() < deadline)
        usleep(20000);
    cr_assert_str_eq(name_of(path, token), "third", "the long TTL held with Redis down");

    /* Redis back: the entry filled while it was down ("third", current under any TTL) is not
     * served any more: the first read after the subscription came up misses */
    rename_behind_back(id, "fourth");
    ws_redis_start(redis_port);
    cr_assert(wait_metric("intentd_events_resubscribed_total", resubscribed + 1, 20000),
              "A did not subscribe again");
    long long misses1 = metric("intentd_api_cache_misses_total");
    cr_assert_str_eq(name_of(path, token), "fourth", "an entry of the gap was served");
    cr_assert_eq(metric("intentd_api_cache_misses_total"), misses1 + 1, "not a miss");
    cr_assert_str_eq(name_of(path, token), "fourth");
    cr_assert_eq(metric("intentd_api_cache_misses_total"), misses1 + 1, "not stored again");

    cr_assert(ws_stop_intentd(b), "the second intentd did not exit cleanly");
    stop_server();
    ws_redis_stop();
}

/* Subscribed, nothing announces a change made in SQL: the long TTL (3 s here, refreshed ahead
 * within it) is what shows it. */
Test(api_cache, subscribed_a_change_behind_the_servers_back_shows_within_the_long_ttl,
     .timeout = 90, .fini = kill_leftover_server)
{
    const char *redis = getenv("REDIS_URL");
    cr_assert_not_null(redis, "REDIS_URL is not set: run the tests through scripts/test.sh");
    static char redis_env[512];
    snprintf(redis_env, sizeof(redis_env), "REDIS_URL=%s", redis);
    const char *env[] = {"INTENT_CONTRACT_ADDRESS=" REGISTRY,
                         "USDC_ADDRESS=" USDC,
                         "API_RATE_LIMIT=0",
                         "USER_RATE_LIMIT=0",
                         "WORKERS=1",
                         "API_CACHE_TTL_MS=200",
                         "API_CACHE_TTL_SUBSCRIBED_MS=3000",
                         redis_env,
                         NULL};
    start_server_env(env);
    cr_assert(wait_metric("intentd_events_subscribed", 1, 20000), "never subscribed");
    char token[4096], id[37], path[64];
    first_intent(token, sizeof(token), id, path, sizeof(path));
    cr_assert_str_eq(name_of(path, token), "first");
    rename_behind_back(id, "second");
    int64_t deadline = mono_ms() + 30000;
    while (strcmp(name_of(path, token), "second") != 0 && mono_ms() < deadline)
        usleep(50000);
    cr_assert_str_eq(name_of(path, token), "second", "the entry outlived the long TTL");
    cr_assert_eq(metric("intentd_events_subscribed"), 1, "the subscription went down meanwhile");
    stop_server();
}
