/* GET /api/ws through real sockets against the intentd binary: the three ways of passing the
 * token and 401 before any upgrade, events reaching every socket of their user (several users,
 * one user with several sockets) in order and nowhere else, token expiry (4001), a slow consumer
 * closed (1013) without harming the others, malformed frames (1002) and oversized messages
 * (1009) refused, keepalive closing a silent peer, the shutdown closing sockets (1001), and an
 * event produced in one intentd process reaching a socket of another through Redis exactly
 * once. Events are produced through the test-only POST /api/test/events. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/random.h>
#include <time.h>
#include "net/jwt.h"
#include "support/api_server.h"
#include "support/ws_client.h"

static char body[65536];

static const char *const base_env[] = {"EVENTS_TEST_ENDPOINT=1", "API_RATE_LIMIT=0",
                                       "USER_RATE_LIMIT=0", NULL};

/* A session token for a fresh random user id, expiring in `ttl_s`. */
static void mint(char *token, size_t cap, int64_t ttl_s, char user_id[37])
{
    uint8_t r[16];
    cr_assert_eq(getrandom(r, sizeof(r), 0), (ssize_t)sizeof(r));
    r[6] = (uint8_t)((r[6] & 0x0f) | 0x40);
    r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
    snprintf(user_id, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
    char err[128];
    net_jwt_keys_t *keys = net_jwt_keys_load(JWT_SECRET, NULL, err, sizeof(err));
    cr_assert_not_null(keys, "%s", err);
    int64_t now = (int64_t)time(NULL);
    net_jwt_claim_t extra[] = {{"wal", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}};
    net_jwt_sign_t claims = {
        .sub = user_id, .iat = now, .exp = now + ttl_s, .extra = extra, .extra_count = 1};
    cr_assert_gt(net_jwt_sign(keys, &claims, token, cap), 0);
    net_jwt_keys_free(keys);
}

/* A socket authenticated by header. */
static ws_client_t *open_socket(const char *token)
{
    char auth[4200];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    const char *headers[] = {auth, NULL};
    int status;
    ws_client_t *c = ws_connect(port, "/api/ws", headers, 0, &status, body, sizeof(body));
    cr_assert_not_null(c, "upgrade refused: %d %s", status, body);
    return c;
}

/* Publishes `count` events of `type` with data {"seq": i, "tag": tag, "pad": pad} to the
 * token's user. */
static void publish(const char *token, const char *type, const char *tag, int count, size_t pad_len)
{
    char *pad = malloc(pad_len + 1);
    memset(pad, 'x', pad_len);
    pad[pad_len] = '\0';
    char *payload = malloc(pad_len + 256);
    snprintf(payload, pad_len + 256,
             "{\"type\":\"%s\",\"count\":%d,\"data\":{\"tag\":\"%s\",\"pad\":\"%s\"}}", type, count,
             tag, pad);
    int status = http("POST", "/api/test/events", token, NULL, payload, body, sizeof(body));
    cr_assert_eq(status, 202, "publish: %d %s", status, body);
    free(payload);
    free(pad);
}

/* Reads the next event and checks its type and tag; returns its data's "tag". */
static void expect_event(ws_client_t *c, const char *type, const char *tag)
{
    ws_frame_t f;
    uint16_t code = 0;
    int r = ws_next_text(c, &f, 15000, &code);
    cr_assert_eq(r, 1, "no event %s/%s (read %d, close %u)", type, tag, r, code);
    json_t *e = json_loads(f.data, 0, NULL);
    cr_assert_not_null(e, "not JSON: %s", f.data);
    cr_assert_str_eq(json_string_value(json_object_get(e, "type")), type);
    cr_assert_not_null(json_string_value(json_object_get(e, "at")));
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(e, "data"), "tag")), tag,
                     "got %s", f.data);
    json_decref(e);
    ws_frame_dispose(&f);
}

/* Reads until the connection closes; returns the close code (0: ended without a close frame)
 * and counts the text frames seen on the way. */
static uint16_t read_until_closed(ws_client_t *c, int *texts)
{
    ws_frame_t f;
    for (int i = 0; i != 100000; ++i) {
        int r = ws_read_frame(c, &f, 20000);
        cr_assert_neq(r, 0, "the socket was not closed");
        if (r < 0)
            return 0;
        uint16_t code = f.close_code;
        int op = f.opcode;
        ws_frame_dispose(&f);
        if (op == 8)
            return code;
        if (op == 1 && texts != NULL)
            ++*texts;
    }
    cr_assert_fail("endless stream");
    return 0;
}

Test(ws, token_required_before_upgrade_and_three_ways_to_pass_it, .timeout = 60,
     .fini = ws_kill_leftovers)
{
    start_server_env(base_env);
    char token[4096], user[37];
    mint(token, sizeof(token), 3600, user);
    int status;
    /* none, garbage, and another secret's token: 401 problem, no upgrade */
    cr_assert_null(ws_connect(port, "/api/ws", NULL, 0, &status, body, sizeof(body)));
    cr_assert_eq(status, 401);
    cr_assert_not_null(strstr(body, "\"status\":401"), "%s", body);
    const char *bad[] = {"Authorization: Bearer abc.def.ghi", NULL};
    cr_assert_null(ws_connect(port, "/api/ws", bad, 0, &status, body, sizeof(body)));
    cr_assert_eq(status, 401);
    cr_assert_null(ws_connect(port, "/api/ws?token=nope", NULL, 0, &status, body, sizeof(body)));
    cr_assert_eq(status, 401);
    /* a plain GET is not a handshake */
    cr_assert_eq(http("GET", "/api/ws", token, NULL, NULL, body, sizeof(body)), 400);

    ws_client_t *by_header = open_socket(token);
    char proto[4200], path[4200];
    snprintf(proto, sizeof(proto), "Sec-WebSocket-Protocol: bearer, %s", token);
    const char *proto_headers[] = {proto, NULL};
    ws_client_t *by_protocol =
        ws_connect(port, "/api/ws", proto_headers, 0, &status, body, sizeof(body));
    cr_assert_not_null(by_protocol, "%d %s", status, body);
    cr_assert_str_eq(by_protocol->protocol, "bearer");
    snprintf(path, sizeof(path), "/api/ws?token=%s", token);
    ws_client_t *by_query = ws_connect(port, path, NULL, 0, &status, body, sizeof(body));
    cr_assert_not_null(by_query, "%d %s", status, body);

    /* a token in the header with "bearer" offered alone: the subprotocol is still chosen */
    char auth[4200];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    const char *both[] = {auth, "Sec-WebSocket-Protocol: bearer", NULL};
    ws_client_t *offered = ws_connect(port, "/api/ws", both, 0, &status, body, sizeof(body));
    cr_assert_not_null(offered, "%d %s", status, body);
    cr_assert_str_eq(offered->protocol, "bearer");
    ws_client_free(offered);

    publish(token, "intent.updated", "hello", 1, 0);
    expect_event(by_header, "intent.updated", "hello");
    expect_event(by_protocol, "intent.updated", "hello");
    expect_event(by_query, "intent.updated", "hello");
    ws_client_free(by_header);
    ws_client_free(by_protocol);
    ws_client_free(by_query);
    stop_server();
}

Test(ws, events_reach_every_socket_of_their_user_in_order_and_no_other, .timeout = 120,
     .fini = ws_kill_leftovers)
{
    start_server_env(base_env);
    char token_a[4096], token_b[4096], user_a[37], user_b[37];
    mint(token_a, sizeof(token_a), 3600, user_a);
    mint(token_b, sizeof(token_b), 3600, user_b);
    ws_client_t *a[3], *b = open_socket(token_b);
    for (int i = 0; i != 3; ++i)
        a[i] = open_socket(token_a);
    /* 50 events for A, one request each (as a producer would), then one for B */
    for (int i = 0; i != 50; ++i) {
        char tag[16];
        snprintf(tag, sizeof(tag), "a%d", i);
        publish(token_a, "execution.broadcast", tag, 1, 0);
    }
    publish(token_b, "intent.created", "b0", 1, 0);
    for (int s = 0; s != 3; ++s)
        for (int i = 0; i != 50; ++i) {
            char tag[16];
            snprintf(tag, sizeof(tag), "a%d", i);
            expect_event(a[s], "execution.broadcast", tag);
        }
    /* B's first event is its own: none of A's reached it */
    expect_event(b, "intent.created", "b0");
    /* a socket that leaves does not disturb the others */
    ws_client_free(a[0]);
    publish(token_a, "execution.confirmed", "after", 1, 0);
    expect_event(a[1], "execution.confirmed", "after");
    expect_event(a[2], "execution.confirmed", "after");
    ws_client_free(a[1]);
    ws_client_free(a[2]);
    ws_client_free(b);
    stop_server();
}

Test(ws, expired_token_closes_the_socket_with_4001, .timeout = 60, .fini = ws_kill_leftovers)
{
    start_server_env(base_env);
    char token[4096], user[37];
    mint(token, sizeof(token), 2, user); /* valid now, expires in 2 s */
    ws_client_t *c = open_socket(token);
    cr_assert_eq(read_until_closed(c, NULL), 4001);
    ws_client_free(c);
    stop_server();
}

Test(ws, slow_consumer_is_closed_and_others_carry_on, .timeout = 180, .fini = ws_kill_leftovers)
{
    const char *env[] = {"EVENTS_TEST_ENDPOINT=1", "API_RATE_LIMIT=0", "USER_RATE_LIMIT=0",
                         "WS_QUEUE_MAX_BYTES=65536", NULL};
    start_server_env(env);
    char token[4096], other[4096], user[37], user_o[37];
    mint(token, sizeof(token), 3600, user);
    mint(other, sizeof(other), 3600, user_o);
    char auth[4200];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    const char *headers[] = {auth, NULL};
    int status;
    /* a tiny receive buffer, and nothing read while 2000 events of 8 KiB (16 MiB) go out */
    ws_client_t *slow = ws_connect(port, "/api/ws", headers, 4096, &status, body, sizeof(body));
    cr_assert_not_null(slow);
    ws_client_t *fine = open_socket(other);
    publish(token, "execution.signed", "flood", 2000, 8192);
    int texts = 0;
    uint16_t code = read_until_closed(slow, &texts);
    cr_assert(code == 1013 || code == 0, "closed with %u", code);
    cr_assert_lt(texts, 2000, "every event was queued for a client that did not read");
    ws_client_free(slow);
    /* the process is fine, and so is another user's socket */
    publish(other, "intent.updated", "still-here", 1, 0);
    expect_event(fine, "intent.updated", "still-here");
    ws_client_free(fine);
    stop_server();
}

/* Sends a frame and expects the server to close with `expected`. */
static void expect_refused(const char *token, int opcode, bool fin, size_t len, bool unmasked,
                           uint16_t expected)
{
    ws_client_t *c = open_socket(token);
    char *data = malloc(len + 1);
    memset(data, 'y', len);
    ws_send_frame(c, opcode, fin, data, len, unmasked);
    free(data);
    uint16_t code = read_until_closed(c, NULL);
    cr_assert_eq(code, expected, "opcode %d len %zu: closed with %u", opcode, len, code);
    ws_client_free(c);
}

Test(ws, malformed_frames_and_oversized_messages_are_refused, .timeout = 90,
     .fini = ws_kill_leftovers)
{
    start_server_env(base_env);
    char token[4096], user[37];
    mint(token, sizeof(token), 3600, user);
    expect_refused(token, 1, true, 10, true, 1002);         /* unmasked client frame */
    expect_refused(token, 3, true, 10, false, 1002);        /* reserved opcode */
    expect_refused(token, 9, false, 10, false, 1002);       /* fragmented control frame */
    expect_refused(token, 1, true, 70 * 1024, false, 1009); /* > 64 KiB message */
    /* a small text message is ignored, and the socket stays usable; a ping is answered */
    ws_client_t *c = open_socket(token);
    cr_assert(ws_send_frame(c, 1, true, "hi", 2, false));
    cr_assert(ws_send_frame(c, 9, true, "p", 1, false));
    ws_frame_t f;
    cr_assert_eq(ws_read_frame(c, &f, 10000), 1);
    cr_assert_eq(f.opcode, 10);
    cr_assert_str_eq(f.data, "p");
    ws_frame_dispose(&f);
    publish(token, "intent.updated", "ok", 1, 0);
    expect_event(c, "intent.updated", "ok");
    ws_client_free(c);
    stop_server();
}

Test(ws, keepalive_pings_and_closes_a_silent_peer, .timeout = 60, .fini = ws_kill_leftovers)
{
    const char *env[] = {"EVENTS_TEST_ENDPOINT=1",  "API_RATE_LIMIT=0",        "USER_RATE_LIMIT=0",
                         "WS_PING_INTERVAL_MS=200", "WS_IDLE_TIMEOUT_MS=1000", NULL};
    start_server_env(env);
    char token[4096], user[37];
    mint(token, sizeof(token), 3600, user);
    ws_client_t *silent = open_socket(token), *alive = open_socket(token);
    /* the silent peer never answers: closed as idle; the other answers pings meanwhile */
    ws_frame_t f;
    int pings = 0;
    uint16_t code = 0;
    for (int i = 0; i != 10000 && code == 0; ++i) {
        int r = ws_read_frame(silent, &f, 20000);
        cr_assert_eq(r, 1, "the silent socket was not closed");
        if (f.opcode == 9)
            ++pings;
        if (f.opcode == 8)
            code = f.close_code;
        ws_frame_dispose(&f);
        /* keep the other one alive */
        while (ws_read_frame(alive, &f, 0) == 1) {
            if (f.opcode == 9)
                ws_send_frame(alive, 10, true, f.data, f.len, false);
            ws_frame_dispose(&f);
        }
    }
    cr_assert_eq(code, 1001);
    cr_assert_geq(pings, 1);
    publish(token, "intent.updated", "alive", 1, 0);
    expect_event(alive, "intent.updated", "alive");
    ws_client_free(silent);
    ws_client_free(alive);
    stop_server();
}

Test(ws, shutdown_closes_sockets_with_1001, .timeout = 60, .fini = ws_kill_leftovers)
{
    start_server_env(base_env);
    char token[4096], user[37];
    mint(token, sizeof(token), 3600, user);
    ws_client_t *c = open_socket(token);
    publish(token, "intent.updated", "before", 1, 0);
    expect_event(c, "intent.updated", "before");
    kill(server_pid, SIGTERM);
    cr_assert_eq(read_until_closed(c, NULL), 1001);
    ws_client_free(c);
    stop_server(); /* asserts exit 0 */
}

Test(ws, an_event_reaches_sockets_in_other_processes_once_through_redis, .timeout = 120,
     .fini = ws_kill_leftovers)
{
    const char *redis = getenv("REDIS_URL");
    cr_assert_not_null(redis, "REDIS_URL is not set: run the tests through scripts/test.sh");
    static char redis_env[512];
    snprintf(redis_env, sizeof(redis_env), "REDIS_URL=%s", redis);
    const char *env[] = {"EVENTS_TEST_ENDPOINT=1", "API_RATE_LIMIT=0", "USER_RATE_LIMIT=0",
                         redis_env, NULL};
    start_server_env(env);
    int port_a = port, port_b = free_port();
    const char *env_b[] = {"EVENTS_TEST_ENDPOINT=1",
                           "API_RATE_LIMIT=0",
                           "USER_RATE_LIMIT=0",
                           redis_env,
                           "JWT_SECRET=" JWT_SECRET,
                           "DATA_ENCRYPTION_KEY=" DATA_KEY,
                           NULL};
    pid_t b = ws_start_intentd(INTENTD_BIN, port_b, db_url, env_b, "/tmp/intentd-test-ws.log");
    cr_assert_gt(b, 0, "the second intentd did not start");
    char token[4096], user[37];
    mint(token, sizeof(token), 3600, user);
    ws_client_t *on_a = open_socket(token);
    port = port_b;
    ws_client_t *on_b1 = open_socket(token), *on_b2 = open_socket(token);
    /* the subscription is asynchronous: wait (bounded) until B hears A, by probing */
    bool heard = false;
    port = port_a;
    for (int i = 0; i != 100 && !heard; ++i) {
        char tag[16];
        snprintf(tag, sizeof(tag), "probe%d", i);
        publish(token, "intent.updated", tag, 1, 0);
        expect_event(on_a, "intent.updated", tag);
        ws_frame_t f;
        if (ws_next_text(on_b1, &f, 200, NULL) == 1) {
            heard = strstr(f.data, tag) != NULL;
            ws_frame_dispose(&f);
        }
    }
    cr_assert(heard, "process B never received A's events");
    /* 20 events and a marker on A: every socket sees each once, in order (probes B got late
     * may come first) */
    for (int i = 0; i != 20; ++i) {
        char tag[16];
        snprintf(tag, sizeof(tag), "x%d", i);
        publish(token, "execution.confirmed", tag, 1, 0);
    }
    publish(token, "notification.created", "marker", 1, 0);
    ws_client_t *all[] = {on_a, on_b1, on_b2};
    for (int s = 0; s != 3; ++s) {
        ws_frame_t f;
        int next = 0;
        bool marker = false;
        while (!marker) {
            cr_assert_eq(ws_next_text(all[s], &f, 15000, NULL), 1, "socket %d: missing events", s);
            json_t *e = json_loads(f.data, 0, NULL);
            const char *tag = json_string_value(json_object_get(json_object_get(e, "data"), "tag"));
            if (strcmp(tag, "marker") == 0) {
                marker = true;
            } else if (tag[0] == 'x') {
                char want[16];
                snprintf(want, sizeof(want), "x%d", next++);
                cr_assert_str_eq(tag, want, "socket %d: out of order or twice", s);
            } else {
                cr_assert(strncmp(tag, "probe", 5) == 0 && next == 0, "socket %d: %s", s, tag);
            }
            json_decref(e);
            ws_frame_dispose(&f);
        }
        cr_assert_eq(next, 20, "socket %d got %d of 20", s, next);
    }
    /* then one on B: it is the next frame everywhere, so nothing came twice (A ignored its own
     * publications coming back from Redis, which would have arrived before B's) */
    port = port_b;
    publish(token, "intent.updated", "from-b", 1, 0);
    port = port_a;
    for (int s = 0; s != 3; ++s)
        expect_event(all[s], "intent.updated", "from-b");
    ws_client_free(on_a);
    ws_client_free(on_b1);
    ws_client_free(on_b2);
    cr_assert(ws_stop_intentd(b), "the second intentd did not exit cleanly");
    stop_server();
}
