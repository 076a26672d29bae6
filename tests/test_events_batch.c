/*
 * Live updates between intentd processes when events come in bursts (actors/events.c,
 * "Batches"): a hub publishes the events of one loop turn in one PUBLISH, and the other
 * processes take the batch apart. Two intentd processes (A with one worker, so that a burst's
 * events surely reach its hub in one turn; B with two) on one Redis, without the engine (no
 * RPC_URL: the API announces creates itself, as in the write benchmark):
 *  - concurrent creates of two users through A, then concurrent renames: every socket of the
 *    user, on A and on B, gets each intent's intent.created with the create's answer as data,
 *    then its intent.updated, and nothing else; what A published on Redis decodes (by this
 *    test's own reading of the format) into exactly those events;
 *  - a burst larger than one PUBLISH (POST /api/test/events with count): fewer publications
 *    than events, more than one, every event on B once;
 *  - batches and lone events written by hand as another process would (and a damaged batch):
 *    delivered in order with their data, the damaged part dropped;
 *  - Redis stopped and started again under both processes: A's events reach B again.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "chain/rfc3339.h"
#include "support/engine_env.h"
#include "support/ws_client.h"

#define FRAME_MS 15000 /* an event on its way (bounded wait, margin for ASan) */
#define CHANNEL "intentd:events"
#define ORIGIN_LEN 16
#define MAX_CREATES 32
#define MAX_RECORDS 512

static char token_a[4096], token_b[4096], answer[65536];
static char env_registry[80], env_usdc[80], env_redis[128];
static int port_a, port_b;
static pid_t pid_b;

/* ---- processes and sockets ---- */

static const char *redis_url(void)
{
    const char *url = getenv("REDIS_URL");
    cr_assert_not_null(url, "REDIS_URL is not set: run the tests through scripts/test.sh");
    return url;
}

/* A (this test's server, one worker) and B (two workers) on the Redis at `url`. */
static void start_both(const char *url)
{
    snprintf(env_registry, sizeof(env_registry), "INTENT_CONTRACT_ADDRESS=%s", engine_registry);
    snprintf(env_usdc, sizeof(env_usdc), "USDC_ADDRESS=%s", engine_usdc);
    snprintf(env_redis, sizeof(env_redis), "REDIS_URL=%s", url);
    const char *env_a[] = {
        env_registry,        env_usdc,    env_redis, "EVENTS_TEST_ENDPOINT=1", "API_RATE_LIMIT=0",
        "USER_RATE_LIMIT=0", "WORKERS=1", NULL};
    start_server_env(env_a); /* no RPC_URL, no key: no engine */
    port_a = port;
    port_b = free_port();
    const char *env_b[] = {env_registry,
                           env_usdc,
                           env_redis,
                           "EVENTS_TEST_ENDPOINT=1",
                           "API_RATE_LIMIT=0",
                           "USER_RATE_LIMIT=0",
                           "JWT_SECRET=" JWT_SECRET,
                           "DATA_ENCRYPTION_KEY=" DATA_KEY,
                           NULL};
    pid_b = ws_start_intentd(INTENTD_BIN, port_b, db_url, env_b, "/tmp/intentd-test-batch.log");
    cr_assert_gt(pid_b, 0, "the second intentd did not start");
}

/* Waits (bounded) until the process on `on_port` has let go of every socket the test closed:
 * a socket actor still alive at exit would keep its hub (a leak ASan reports). */
static void wait_no_sockets(int on_port)
{
    static char metrics[1 << 16];
    for (int i = 0; i != 1000; ++i, usleep(10000)) {
        port = on_port;
        int status = http("GET", "/metrics", NULL, NULL, NULL, metrics, sizeof(metrics));
        port = port_a;
        if (status == 200 && strstr(metrics, "\nintentd_ws_sockets_open 0\n") != NULL)
            return;
    }
    const char *open = strstr(metrics, "\nintentd_ws_sockets_open ");
    cr_assert_fail("the sockets on port %d (A: %d) were not closed: %.40s", on_port, port_a,
                   open != NULL ? open + 1 : "(no gauge)");
}

static void stop_both(void)
{
    wait_no_sockets(port_a);
    wait_no_sockets(port_b);
    cr_assert(ws_stop_intentd(pid_b), "the second intentd did not exit cleanly");
    pid_b = 0;
    port = port_a;
    stop_server();
}

static ws_client_t *open_socket(int on_port, const char *token)
{
    char auth[4200], err[512];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    const char *headers[] = {auth, NULL};
    int status;
    ws_client_t *c = ws_connect(on_port, "/api/ws", headers, 0, &status, err, sizeof(err));
    cr_assert_not_null(c, "upgrade refused: %d %s", status, err);
    return c;
}

/* POST /api/test/events on `on_port`: `count` events of `type` with data {"tag","pad"}. */
static void publish(int on_port, const char *token, const char *type, const char *tag, int count,
                    size_t pad_len)
{
    char pad[2048], payload[4096];
    cr_assert_lt(pad_len, sizeof(pad));
    memset(pad, 'p', pad_len);
    pad[pad_len] = '\0';
    snprintf(payload, sizeof(payload),
             "{\"type\":\"%s\",\"count\":%d,\"data\":{\"tag\":\"%s\",\"pad\":\"%s\"}}", type, count,
             tag, pad);
    port = on_port;
    int status = http("POST", "/api/test/events", token, NULL, payload, answer, sizeof(answer));
    port = port_a;
    cr_assert_eq(status, 202, "publish: %d %s", status, answer);
}

/* The next text frame as JSON (decref it); fails when none comes in time. */
static json_t *next_event(ws_client_t *c, const char *what)
{
    ws_frame_t f;
    uint16_t code = 0;
    int r = ws_next_text(c, &f, FRAME_MS, &code);
    cr_assert_eq(r, 1, "%s: no frame (read %d, close %u)", what, r, code);
    json_t *e = json_loads(f.data, 0, NULL);
    cr_assert_not_null(e, "%s: not JSON: %s", what, f.data);
    ws_frame_dispose(&f);
    return e;
}

static const char *tag_of(const json_t *e)
{
    const char *tag = json_string_value(json_object_get(json_object_get(e, "data"), "tag"));
    return tag != NULL ? tag : "";
}

/* Publishes a marker on `on_port`; the next frame of each of the `n` sockets (of the token's
 * user) must be it: nothing else came. */
static void expect_marker_next_on(ws_client_t *const *c, int n, int on_port, const char *token,
                                  const char *tag)
{
    publish(on_port, token, "notification.created", tag, 1, 0);
    for (int i = 0; i != n; ++i) {
        json_t *e = next_event(c[i], tag);
        cr_assert_str_eq(tag_of(e), tag, "socket %d: a frame before the marker %s: %s", i, tag,
                         json_dumps(e, JSON_COMPACT));
        json_decref(e);
    }
}

static void expect_marker_next(ws_client_t *c, int on_port, const char *token, const char *tag)
{
    expect_marker_next_on(&c, 1, on_port, token, tag);
}

/* Reads `c` (bounded) until the frame tagged `tag`, skipping what comes before it. */
static void skip_to(ws_client_t *c, const char *tag)
{
    for (int k = 0; k != 200; ++k) {
        json_t *e = next_event(c, tag);
        bool found = strcmp(tag_of(e), tag) == 0;
        json_decref(e);
        if (found)
            return;
    }
    cr_assert_fail("no %s", tag);
}

/* Waits (bounded) until the socket `heard` (on the other process) gets a probe published on
 * `on_port`: the other process's subscription is up. The socket `local` gets each probe at
 * once. Then both sockets are read up to a marker, so that they hold nothing old. */
static void wait_heard(int on_port, const char *token, ws_client_t *local, ws_client_t *heard)
{
    for (int i = 0; i != 100; ++i) {
        char tag[32];
        snprintf(tag, sizeof(tag), "probe%d", i);
        publish(on_port, token, "intent.updated", tag, 1, 0);
        json_decref(next_event(local, tag));
        ws_frame_t f;
        if (ws_next_text(heard, &f, 200, NULL) != 1)
            continue;
        ws_frame_dispose(&f);
        publish(on_port, token, "notification.created", "heard", 1, 0);
        skip_to(local, "heard");
        skip_to(heard, "heard"); /* probes that came late, then the marker */
        return;
    }
    cr_assert_fail("the other process never received the events");
}

/* ---- what goes through Redis, read by this test ---- */

typedef struct st_record_t {
    char user[64];
    char *frame; /* NUL-terminated copy */
} record_t;

typedef struct st_watch_t {
    redisContext *sub;
    int publications, batches;
    size_t largest;
    record_t records[MAX_RECORDS];
    int nrecords;
} watch_t;

static redisContext *redis_connect(const char *url)
{
    char host[64];
    int rport = 0;
    cr_assert_eq(sscanf(url, "redis://%63[^:]:%d", host, &rport), 2, "REDIS_URL %s", url);
    redisContext *c = redisConnect(host, rport);
    cr_assert(c != NULL && c->err == 0, "cannot connect to Redis at %s", url);
    return c;
}

static void watch_start(watch_t *w, const char *url)
{
    memset(w, 0, sizeof(*w));
    w->sub = redis_connect(url);
    redisReply *r = redisCommand(w->sub, "SUBSCRIBE " CHANNEL);
    cr_assert(r != NULL && r->type == REDIS_REPLY_ARRAY, "SUBSCRIBE failed");
    freeReplyObject(r);
}

/* Splits one publication of `origin` into records: "<origin> <user> <frame>" or "<origin>*"
 * and "\n<user> <len> <frame>" each. */
static void watch_take(watch_t *w, const char *p, size_t len, const char *origin)
{
    const char *end = p + len;
    cr_assert_gt(len, ORIGIN_LEN + 1);
    if (memcmp(p, origin, ORIGIN_LEN) != 0)
        return;
    ++w->publications;
    if (len > w->largest)
        w->largest = len;
    bool batch = p[ORIGIN_LEN] == '*';
    cr_assert(batch || p[ORIGIN_LEN] == ' ', "neither format: %.40s", p);
    w->batches += batch;
    p += ORIGIN_LEN + 1;
    int in_this = 0;
    while (p != end) {
        cr_assert_lt(w->nrecords, MAX_RECORDS);
        record_t *rec = &w->records[w->nrecords++];
        size_t flen;
        if (batch) {
            cr_assert_eq(*p, '\n', "a batch record must start with a newline");
            ++p;
        }
        const char *space = memchr(p, ' ', (size_t)(end - p));
        cr_assert_not_null(space);
        cr_assert_lt((size_t)(space - p), sizeof(rec->user));
        memcpy(rec->user, p, (size_t)(space - p));
        rec->user[space - p] = '\0';
        p = space + 1;
        if (batch) {
            char *after;
            flen = strtoul(p, &after, 10);
            cr_assert(after != p && *after == ' ', "no length in a batch record");
            p = after + 1;
            cr_assert_leq(flen, (size_t)(end - p), "a record longer than its batch");
        } else {
            flen = (size_t)(end - p);
        }
        rec->frame = strndup(p, flen);
        p += flen;
        ++in_this;
    }
    cr_assert(batch ? in_this >= 2 : in_this == 1, "a batch of %d", in_this);
}

/* Reads publications until `want` records of A's origin are in, or the deadline. The origin is
 * learnt from the first publication whose records belong to one of `users`. */
static void watch_until(watch_t *w, int want, char origin[ORIGIN_LEN + 1])
{
    struct timeval tv = {.tv_sec = 1};
    redisSetTimeout(w->sub, tv);
    time_t deadline = time(NULL) + FRAME_MS / 1000;
    while (w->nrecords < want && time(NULL) < deadline) {
        redisReply *r = NULL;
        if (redisGetReply(w->sub, (void **)&r) != REDIS_OK) {
            w->sub->err = 0; /* a timeout: try again until the deadline */
            continue;
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
            strcmp(r->element[0]->str, "message") == 0) {
            const redisReply *m = r->element[2];
            if (origin[0] == '\0' && m->len > ORIGIN_LEN)
                memcpy(origin, m->str, ORIGIN_LEN);
            watch_take(w, m->str, m->len, origin);
        }
        freeReplyObject(r);
    }
}

static void watch_end(watch_t *w)
{
    for (int i = 0; i != w->nrecords; ++i)
        free(w->records[i].frame);
    redisFree(w->sub);
    w->sub = NULL;
}

/* ---- concurrent requests ---- */

/* Sends every request at once on its own connection, then reads each answer: returns the
 * statuses in `status` and the bodies (malloc'd) in `bodies`. */
static void burst(const char *method, char paths[][160], char bodies_in[][1024], int n,
                  const char *token, int status[], char *bodies[])
{
    int fds[MAX_CREATES];
    cr_assert_leq(n, MAX_CREATES);
    for (int i = 0; i != n; ++i) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in addr = {.sin_family = AF_INET,
                                   .sin_port = htons((uint16_t)port_a),
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        cr_assert_eq(connect(fds[i], (struct sockaddr *)&addr, sizeof(addr)), 0);
    }
    static char req[8192];
    for (int i = 0; i != n; ++i) {
        int len = snprintf(req, sizeof(req),
                           "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                           "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                           "Content-Length: %zu\r\n\r\n%s",
                           method, paths[i], token, strlen(bodies_in[i]), bodies_in[i]);
        cr_assert_eq(write(fds[i], req, (size_t)len), len);
    }
    for (int i = 0; i != n; ++i) {
        size_t len = 0;
        ssize_t r;
        while (len + 1 < sizeof(answer) &&
               (r = read(fds[i], answer + len, sizeof(answer) - 1 - len)) > 0)
            len += (size_t)r;
        answer[len] = '\0';
        close(fds[i]);
        status[i] = 0;
        sscanf(answer, "HTTP/1.1 %d", &status[i]);
        const char *start = strstr(answer, "\r\n\r\n");
        bodies[i] = strdup(start != NULL ? start + 4 : "");
    }
}

/* `n` creates (pending a signature) through A by the token's user, at once; their answers
 * (decref) in `created`. */
static void create_burst(const char *token, int n, uint8_t salt_base, json_t *created[])
{
    char paths[MAX_CREATES][160], bodies[MAX_CREATES][1024], start_text[CHAIN_RFC3339_SIZE];
    chain_rfc3339_format((int64_t)time(NULL) + 7 * 86400, start_text);
    for (int i = 0; i != n; ++i) {
        snprintf(paths[i], sizeof(paths[i]), "/api/intents");
        char salt[67] = "0x";
        for (int k = 0; k != 32; ++k)
            snprintf(salt + 2 + 2 * k, 3, "%02x", (uint8_t)(salt_base + i + k));
        snprintf(bodies[i], sizeof(bodies[i]),
                 "{\"name\":\"burst %d\",\"recipient\":\"%s\",\"token\":\"USDC\",\"amount\":\"%d\","
                 "\"frequency\":\"daily\",\"startAt\":\"%s\",\"salt\":\"%s\"}",
                 i, ENGINE_RECIPIENT, 10 + i, start_text, salt);
    }
    int status[MAX_CREATES];
    char *answers[MAX_CREATES];
    burst("POST", paths, bodies, n, token, status, answers);
    for (int i = 0; i != n; ++i) {
        cr_assert_eq(status[i], 201, "create %d: %d %s", i, status[i], answers[i]);
        created[i] = json_loads(answers[i], 0, NULL);
        cr_assert_not_null(created[i]);
        free(answers[i]);
    }
}

/* Renames every intent of `created` at once: "renamed <i>". */
static void rename_burst(const char *token, int n, json_t *created[])
{
    char paths[MAX_CREATES][160], bodies[MAX_CREATES][1024];
    for (int i = 0; i != n; ++i) {
        snprintf(paths[i], sizeof(paths[i]), "/api/intents/%s",
                 json_string_value(json_object_get(created[i], "id")));
        snprintf(bodies[i], sizeof(bodies[i]), "{\"name\":\"renamed %d\"}", i);
    }
    int status[MAX_CREATES];
    char *answers[MAX_CREATES];
    burst("PATCH", paths, bodies, n, token, status, answers);
    for (int i = 0; i != n; ++i) {
        cr_assert_eq(status[i], 200, "rename %d: %d %s", i, status[i], answers[i]);
        free(answers[i]);
    }
}

/* Reads 2n frames from `c`: for each intent of `created`, its intent.created (data: the
 * create's answer) and, later, its intent.updated (renamed). */
static void expect_created_then_renamed(ws_client_t *c, int n, json_t *created[], const char *what)
{
    int seen[MAX_CREATES] = {0}; /* 0 none, 1 created, 2 renamed */
    for (int k = 0; k != 2 * n; ++k) {
        json_t *e = next_event(c, what);
        const char *type = json_string_value(json_object_get(e, "type"));
        json_t *data = json_object_get(e, "data");
        const char *id = json_string_value(json_object_get(data, "id"));
        int i = 0;
        while (i != n && (id == NULL ||
                          strcmp(id, json_string_value(json_object_get(created[i], "id"))) != 0))
            ++i;
        cr_assert_lt(i, n, "%s: an event of another intent: %s", what, json_dumps(e, JSON_COMPACT));
        if (seen[i] == 0) {
            cr_assert_str_eq(type, "intent.created", "%s: %s before its creation", what, type);
            cr_assert(json_equal(data, created[i]), "%s: the data is not the create's answer:\n%s",
                      what, json_dumps(e, JSON_COMPACT));
        } else {
            cr_assert_eq(seen[i], 1, "%s: a third event of intent %d", what, i);
            cr_assert_str_eq(type, "intent.updated", "%s: %s twice", what, type);
            char name[32];
            snprintf(name, sizeof(name), "renamed %d", i);
            cr_assert_str_eq(json_string_value(json_object_get(data, "name")), name);
        }
        ++seen[i];
        json_decref(e);
    }
}

/* ---- the tests ---- */

static void teardown(void)
{
    ws_kill_leftovers();
    engine_teardown();
}

Test(events_batch, bursts_of_creates_reach_every_process_in_order_with_their_data, .timeout = 300,
     .fini = teardown)
{
    engine_chain_start(NULL); /* for the registry's and the token's addresses only */
    start_both(redis_url());
    session(KEY_A, token_a, sizeof(token_a));
    session(KEY_B, token_b, sizeof(token_b));
    ws_client_t *a_on_a = open_socket(port_a, token_a), *a_on_b = open_socket(port_b, token_a),
                *b_on_b = open_socket(port_b, token_b);
    wait_heard(port_a, token_a, a_on_a, a_on_b);

    watch_t w;
    watch_start(&w, redis_url());
    char origin[ORIGIN_LEN + 1] = "";
    enum { NA = 16, NB = 8 };
    json_t *created_a[NA], *created_b[NB];
    create_burst(token_a, NA, 0x10, created_a);
    create_burst(token_b, NB, 0x80, created_b);
    rename_burst(token_a, NA, created_a);
    rename_burst(token_b, NB, created_b);
    expect_created_then_renamed(a_on_a, NA, created_a, "a-on-a");
    expect_created_then_renamed(a_on_b, NA, created_a, "a-on-b");
    expect_created_then_renamed(b_on_b, NB, created_b, "b-on-b");
    ws_client_t *both_a[] = {a_on_a, a_on_b};
    expect_marker_next_on(both_a, 2, port_a, token_a, "end-a");
    expect_marker_next(b_on_b, port_a, token_b, "end-b");

    /* what A published: the 2 * (NA + NB) events and the two markers, nothing else */
    int want = 2 * (NA + NB) + 2;
    watch_until(&w, want, origin);
    cr_assert_eq(w.nrecords, want, "A published %d events of %d", w.nrecords, want);
    int creates = 0, updates = 0;
    for (int i = 0; i != w.nrecords; ++i) {
        json_t *e = json_loads(w.records[i].frame, 0, NULL);
        cr_assert_not_null(e, "a record is not JSON: %s", w.records[i].frame);
        const char *type = json_string_value(json_object_get(e, "type"));
        creates += strcmp(type, "intent.created") == 0;
        updates += strcmp(type, "intent.updated") == 0;
        json_decref(e);
    }
    cr_assert_eq(creates, NA + NB);
    cr_assert_eq(updates, NA + NB);
    cr_log_info("%d events in %d publications (%d batches)", w.nrecords, w.publications, w.batches);
    watch_end(&w);
    for (int i = 0; i != NA; ++i)
        json_decref(created_a[i]);
    for (int i = 0; i != NB; ++i)
        json_decref(created_b[i]);
    ws_client_free(a_on_a);
    ws_client_free(a_on_b);
    ws_client_free(b_on_b);
    stop_both();
}

Test(events_batch, a_burst_larger_than_one_publication_is_split_and_arrives_whole, .timeout = 300,
     .fini = teardown)
{
    engine_chain_start(NULL);
    start_both(redis_url());
    session(KEY_A, token_a, sizeof(token_a));
    ws_client_t *on_a = open_socket(port_a, token_a), *on_b = open_socket(port_b, token_a);
    wait_heard(port_a, token_a, on_a, on_b);
    watch_t w;
    watch_start(&w, redis_url());
    char origin[ORIGIN_LEN + 1] = "";
    /* 60 events of ~1.1 kB in one request: A's one worker queues them all before its hub runs,
     * so they go out in batches, more than one for 32 kB per PUBLISH */
    enum { N = 60 };
    publish(port_a, token_a, "execution.confirmed", "burst", N, 1000);
    for (int s = 0; s != 2; ++s)
        for (int i = 0; i != N; ++i) {
            json_t *e = next_event(s == 0 ? on_a : on_b, "burst");
            cr_assert_str_eq(tag_of(e), "burst", "socket %d, event %d: %s", s, i,
                             json_dumps(e, JSON_COMPACT));
            cr_assert_eq(
                strlen(json_string_value(json_object_get(json_object_get(e, "data"), "pad"))),
                1000);
            json_decref(e);
        }
    ws_client_t *both[] = {on_a, on_b};
    expect_marker_next_on(both, 2, port_a, token_a, "end");
    watch_until(&w, N + 1, origin);
    cr_assert_eq(w.nrecords, N + 1);
    cr_assert_lt(w.publications, N, "%d events in %d publications: not batched", N, w.publications);
    cr_assert_geq(w.batches, 2, "%d batches: not split", w.batches);
    cr_assert_lt(w.largest, 64u << 10, "a publication of %zu bytes", w.largest);
    watch_end(&w);
    ws_client_free(on_a);
    ws_client_free(on_b);
    stop_both();
}

/* PUBLISH of `len` bytes on the events' channel, as another process would. */
static void inject(redisContext *c, const char *payload, size_t len)
{
    redisReply *r = redisCommand(c, "PUBLISH " CHANNEL " %b", payload, len);
    cr_assert(r != NULL && r->type == REDIS_REPLY_INTEGER, "PUBLISH failed");
    freeReplyObject(r);
}

static void expect_tag(ws_client_t *c, const char *tag)
{
    json_t *e = next_event(c, tag);
    cr_assert_str_eq(tag_of(e), tag, "got %s", json_dumps(e, JSON_COMPACT));
    json_decref(e);
}

Test(events_batch, batches_of_another_process_are_delivered_in_order_and_damage_is_dropped,
     .timeout = 300, .fini = teardown)
{
    engine_chain_start(NULL);
    start_both(redis_url());
    session(KEY_A, token_a, sizeof(token_a));
    char user[64];
    {
        json_t *claims = NULL;
        port = port_b;
        cr_assert_eq(http("GET", "/api/user/profile", token_a, NULL, NULL, answer, sizeof(answer)),
                     200, "%s", answer);
        port = port_a;
        claims = json_loads(answer, 0, NULL);
        const char *id = json_string_value(json_object_get(claims, "id"));
        cr_assert_not_null(id, "%s", answer);
        snprintf(user, sizeof(user), "%s", id);
        json_decref(claims);
    }
    ws_client_t *on_b = open_socket(port_b, token_a);
    redisContext *pub = redis_connect(redis_url());
    const char *origin = "0123456789abcdef"; /* nobody's */
    char payload[4096];
    /* lone events in the first format until B hears them (its subscription is asynchronous) */
    bool heard = false;
    for (int i = 0; i != 100 && !heard; ++i) {
        int n =
            snprintf(payload, sizeof(payload),
                     "%s %s {\"type\":\"intent.updated\",\"at\":\"x\",\"data\":{\"tag\":\"p%d\"}}",
                     origin, user, i);
        inject(pub, payload, (size_t)n);
        ws_frame_t f;
        if (ws_next_text(on_b, &f, 200, NULL) == 1) {
            heard = true;
            ws_frame_dispose(&f);
        }
    }
    cr_assert(heard, "B never received the injected events");
    int n = snprintf(
        payload, sizeof(payload),
        "%s %s {\"type\":\"notification.created\",\"at\":\"x\",\"data\":{\"tag\":\"drain\"}}",
        origin, user);
    inject(pub, payload, (size_t)n);
    skip_to(on_b, "drain"); /* late probes, then the marker */

    /* a batch of three for this user, one for someone else between, in order */
    const char *frames[] = {
        "{\"type\":\"intent.created\",\"at\":\"x\",\"data\":{\"tag\":\"b1\"}}",
        "{\"type\":\"intent.updated\",\n\"at\":\"x\",\"data\":{\"tag\":\"b2\"}}",
        "{\"type\":\"intent.updated\",\"at\":\"x\",\"data\":{\"tag\":\"b3 with spaces\\n\"}}"};
    n = snprintf(payload, sizeof(payload), "%s*\n%s %zu %s\n%s %zu %s\n%s %zu %s\n%s %zu %s",
                 origin, user, strlen(frames[0]), frames[0], "someone-else", strlen(frames[1]),
                 frames[1], user, strlen(frames[1]), frames[1], user, strlen(frames[2]), frames[2]);
    inject(pub, payload, (size_t)n);
    expect_tag(on_b, "b1");
    expect_tag(on_b, "b2");
    expect_tag(on_b, "b3 with spaces\n");
    /* a damaged batch: the record before the damage is delivered, nothing after it */
    n = snprintf(payload, sizeof(payload), "%s*\n%s %zu %s\n%s 99999 %s\n%s %zu %s", origin, user,
                 strlen(frames[0]), frames[0], user, frames[1], user, strlen(frames[2]), frames[2]);
    inject(pub, payload, (size_t)n);
    expect_tag(on_b, "b1");
    /* our own origin's publications are not delivered twice: A's marker comes once */
    expect_marker_next(on_b, port_a, token_a, "end");
    redisFree(pub);
    ws_client_free(on_b);
    stop_both();
}

/* ---- Redis stopped and started again ---- */

static void teardown_redis(void)
{
    teardown();
    ws_redis_stop();
}

Test(events_batch, after_redis_comes_back_bursts_reach_the_other_process_again, .timeout = 300,
     .fini = teardown_redis)
{
    engine_chain_start(NULL);
    int redis_port = free_port();
    ws_redis_start(redis_port);
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", redis_port);
    start_both(url);
    session(KEY_A, token_a, sizeof(token_a));
    ws_client_t *on_a = open_socket(port_a, token_a), *on_b = open_socket(port_b, token_a);
    wait_heard(port_a, token_a, on_a, on_b);
    /* down: A's sockets still get A's events at once */
    ws_redis_stop();
    publish(port_a, token_a, "execution.confirmed", "while-down", 5, 10);
    for (int i = 0; i != 5; ++i)
        expect_tag(on_a, "while-down");
    /* back: once B hears A again, a burst arrives whole */
    ws_redis_start(redis_port);
    wait_heard(port_a, token_a, on_a, on_b);
    publish(port_a, token_a, "execution.confirmed", "after", 20, 100);
    for (int i = 0; i != 20; ++i) {
        expect_tag(on_a, "after");
        expect_tag(on_b, "after");
    }
    ws_client_t *both[] = {on_a, on_b};
    expect_marker_next_on(both, 2, port_a, token_a, "end");
    ws_client_free(on_a);
    ws_client_free(on_b);
    stop_both();
}
