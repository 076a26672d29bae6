/* The notifications endpoints and the weekly summary, through real HTTP and WebSockets against
 * the intentd binary and a real PostgreSQL (and Redis for the summary's several processes):
 * listing newest first with the unread filter and a cursor that returns each item once, marking
 * one and all read, another user's notifications invisible (404), bad parameters refused; and a
 * weekly summary created once per user with activity even with two processes running the same
 * week, counted right, and pushed as notification.created to a socket on a third process. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "actors/weekly_summary.h"
#include "chain/rfc3339.h"
#include "support/api_server.h"
#include "support/ws_client.h"

#define USDC "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"

static char body[65536];

static json_t *get_json(const char *path, const char *token, int expect)
{
    int status = http("GET", path, token, NULL, NULL, body, sizeof(body));
    cr_assert_eq(status, expect, "GET %s: %d %s", path, status, body);
    json_t *j = json_loads(body, 0, NULL);
    cr_assert_not_null(j, "%s", body);
    return j;
}

static void user_id_of(const char *token, char out[37])
{
    json_t *p = get_json("/api/user/profile", token, 200);
    snprintf(out, 37, "%s", json_string_value(json_object_get(p, "id")));
    json_decref(p);
}

/* Inserts `n` notifications for `user`, the i-th `i` minutes old, titled "<prefix><i>". */
static void insert_notifications(const char *user, const char *prefix, int n)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO notifications (user_id, type, title, message, created_at)"
             " SELECT '%s', 'execution_succeeded', '%s' || i, 'paid', now() - i * interval '1 min'"
             " FROM generate_series(0, %d) i",
             user, prefix, n - 1);
    db_exec(db_url, sql);
}

static const char *title_at(json_t *list, size_t i)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(list, "items"), i), "title"));
}

Test(notifications, list_read_and_read_all_per_user, .timeout = 60, .fini = ws_kill_leftovers)
{
    const char *env[] = {"API_RATE_LIMIT=0", "USER_RATE_LIMIT=0", NULL};
    start_server_env(env);
    char token_a[4096], token_b[4096], user_a[37], user_b[37];
    session(KEY_A, token_a, sizeof(token_a));
    session(KEY_B, token_b, sizeof(token_b));
    user_id_of(token_a, user_a);
    user_id_of(token_b, user_b);
    insert_notifications(user_a, "a", 5);
    insert_notifications(user_b, "b", 2);

    /* newest first, the object's fields, pages of 2 that return each item once */
    json_t *list = get_json("/api/notifications", token_a, 200);
    cr_assert_eq(json_array_size(json_object_get(list, "items")), 5);
    cr_assert_str_eq(title_at(list, 0), "a0");
    cr_assert_str_eq(title_at(list, 4), "a4");
    json_t *first = json_array_get(json_object_get(list, "items"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(first, "type")), "execution_succeeded");
    cr_assert_str_eq(json_string_value(json_object_get(first, "message")), "paid");
    cr_assert(json_is_false(json_object_get(first, "read")));
    cr_assert_not_null(json_string_value(json_object_get(first, "createdAt")));
    cr_assert(json_is_null(json_object_get(list, "nextCursor")));
    char a1_id[64];
    snprintf(a1_id, sizeof(a1_id), "%s",
             json_string_value(
                 json_object_get(json_array_get(json_object_get(list, "items"), 1), "id")));
    json_decref(list);
    char path[256], seen[64] = "";
    const char *cursor = NULL;
    json_t *page = NULL;
    for (int p = 0; p != 3; ++p) {
        snprintf(path, sizeof(path), "/api/notifications?limit=2%s%s", cursor ? "&cursor=" : "",
                 cursor ? cursor : "");
        json_t *next = get_json(path, token_a, 200);
        for (size_t i = 0; i != json_array_size(json_object_get(next, "items")); ++i)
            strcat(seen, title_at(next, i));
        json_decref(page);
        page = next;
        cursor = json_string_value(json_object_get(page, "nextCursor"));
    }
    cr_assert_str_eq(seen, "a0a1a2a3a4");
    cr_assert_null(cursor);
    json_decref(page);

    /* marking one read: answered read, gone from the unread list; twice changes nothing */
    snprintf(path, sizeof(path), "/api/notifications/%s/read", a1_id);
    cr_assert_eq(http("POST", path, token_b, NULL, NULL, body, sizeof(body)), 404, "%s", body);
    cr_assert_eq(http("POST", path, token_a, NULL, NULL, body, sizeof(body)), 200, "%s", body);
    cr_assert_not_null(strstr(body, "\"read\":true"), "%s", body);
    cr_assert_eq(http("POST", path, token_a, NULL, NULL, body, sizeof(body)), 200, "%s", body);
    cr_assert_eq(
        http("POST", "/api/notifications/not-a-uuid/read", token_a, NULL, NULL, body, sizeof(body)),
        404);
    json_t *unread = get_json("/api/notifications?unread=true", token_a, 200);
    cr_assert_eq(json_array_size(json_object_get(unread, "items")), 4);
    cr_assert_str_eq(title_at(unread, 1), "a2");
    json_decref(unread);

    /* B sees only its own, and A's read-all leaves B's unread */
    json_t *b_list = get_json("/api/notifications", token_b, 200);
    cr_assert_eq(json_array_size(json_object_get(b_list, "items")), 2);
    cr_assert_str_eq(title_at(b_list, 0), "b0");
    json_decref(b_list);
    cr_assert_eq(
        http("POST", "/api/notifications/read-all", token_a, NULL, NULL, body, sizeof(body)), 200,
        "%s", body);
    cr_assert_not_null(strstr(body, "\"updated\":4"), "%s", body);
    unread = get_json("/api/notifications?unread=true", token_a, 200);
    cr_assert_eq(json_array_size(json_object_get(unread, "items")), 0);
    json_decref(unread);
    unread = get_json("/api/notifications?unread=true", token_b, 200);
    cr_assert_eq(json_array_size(json_object_get(unread, "items")), 2);
    json_decref(unread);

    /* bad input is a problem naming the field; no token is 401 */
    json_t *bad = get_json("/api/notifications?limit=0", token_a, 400);
    cr_assert_not_null(strstr(body, "\"field\":\"limit\""), "%s", body);
    json_decref(bad);
    bad = get_json("/api/notifications?unread=maybe", token_a, 400);
    cr_assert_not_null(strstr(body, "\"field\":\"unread\""), "%s", body);
    json_decref(bad);
    bad = get_json("/api/notifications?cursor=zzz", token_a, 400);
    json_decref(bad);
    cr_assert_eq(http("GET", "/api/notifications", NULL, NULL, NULL, body, sizeof(body)), 401);
    stop_server();
}

/* One active intent of `user` in USDC with two confirmed executions (10 and 20 USDC) and one
 * failed, created now, and one delay notification. */
static void insert_activity(const char *user)
{
    char sql[4096];
    snprintf(sql, sizeof(sql),
             "WITH i AS (INSERT INTO intents (owner_id, name, chain_id, recipient, token, amount,"
             "   frequency, start_at, min_interval, salt, on_chain_id, status, signature)"
             " VALUES ('%s', 'rent', 31337, decode(repeat('11', 20), 'hex'),"
             "   decode('%s', 'hex'), 10000000, 'daily', now() - interval '3 days', 86100,"
             "   decode(repeat('22', 32), 'hex'),"
             "   decode(md5(random()::text) || md5(random()::text), 'hex'), 'active',"
             "   decode(repeat('33', 65), 'hex')) RETURNING id),"
             " e AS (INSERT INTO executions (intent_id, period, status, amount, executor, nonce,"
             "   raw_tx, tx_hash, block_number, confirmed_at, error)"
             " SELECT id, p, s, a, decode(repeat('44', 20), 'hex'), p, '\\x01',"
             "   decode(repeat('55', 32), 'hex'), CASE WHEN s = 'confirmed' THEN 1 END,"
             "   CASE WHEN s = 'confirmed' THEN now() END,"
             "   CASE WHEN s = 'failed' THEN 'reverted' END"
             " FROM i, (VALUES (0, 'confirmed', 10000000), (1, 'confirmed', 20000000),"
             "   (2, 'failed', 10000000)) v(p, s, a))"
             " INSERT INTO notifications (user_id, type, title, message)"
             " VALUES ('%s', 'execution_delayed', 'Payment delayed', 'low balance')",
             user, USDC + 2, user);
    db_exec(db_url, sql);
}

static int count_summaries(const char *user)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM notifications WHERE user_id = '%s' AND type = 'weekly_summary'",
             user);
    return atoi(db_value(sql));
}

Test(notifications, weekly_summary_once_with_two_processes_and_pushed, .timeout = 180,
     .fini = ws_kill_leftovers)
{
    const char *redis = getenv("REDIS_URL");
    cr_assert_not_null(redis, "REDIS_URL is not set: run the tests through scripts/test.sh");
    static char redis_env[512], at_env[64];
    snprintf(redis_env, sizeof(redis_env), "REDIS_URL=%s", redis);
    const char *env[] = {"API_RATE_LIMIT=0",   "USER_RATE_LIMIT=0", "EVENTS_TEST_ENDPOINT=1",
                         "USDC_ADDRESS=" USDC, redis_env,           NULL};
    start_server_env(env);
    char token_a[4096], token_b[4096], user_a[37], user_b[37];
    session(KEY_A, token_a, sizeof(token_a));
    session(KEY_B, token_b, sizeof(token_b));
    user_id_of(token_a, user_a);
    user_id_of(token_b, user_b); /* B has no activity: no summary */
    insert_activity(user_a);
    char auth[4200];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token_a);
    const char *headers[] = {auth, NULL};
    int status;
    ws_client_t *sock = ws_connect(port, "/api/ws", headers, 0, &status, body, sizeof(body));
    cr_assert_not_null(sock, "%d %s", status, body);

    /* two more processes summarise the week ending in a minute, at the same time */
    char at[CHAIN_RFC3339_SIZE];
    chain_rfc3339_format((int64_t)time(NULL) + 60, at);
    snprintf(at_env, sizeof(at_env), "WEEKLY_SUMMARY_AT=%s", at);
    const char *env2[] = {"USDC_ADDRESS=" USDC,
                          redis_env,
                          at_env,
                          "JWT_SECRET=" JWT_SECRET,
                          "DATA_ENCRYPTION_KEY=" DATA_KEY,
                          NULL};
    char log1[128], log2[128];
    snprintf(log1, sizeof(log1), "/tmp/intentd-test-summary-%d-1.log", (int)getpid());
    snprintf(log2, sizeof(log2), "/tmp/intentd-test-summary-%d-2.log", (int)getpid());
    unlink(log1);
    unlink(log2);
    int port1 = free_port(), port2 = free_port();
    pid_t p1 = ws_spawn_intentd(INTENTD_BIN, port1, db_url, env2, log1);
    pid_t p2 = ws_spawn_intentd(INTENTD_BIN, port2, db_url, env2, log2);
    cr_assert(ws_wait_ready(port1) && ws_wait_ready(port2), "the summary processes did not start");
    /* both runs end (each logs it), whichever created the summary */
    cr_assert(ws_file_contains(log1, "summarised", 60000), "process 1 did not finish its run");
    cr_assert(ws_file_contains(log2, "summarised", 60000), "process 2 did not finish its run");
    cr_assert(ws_stop_intentd(p1));
    cr_assert(ws_stop_intentd(p2));
    unlink(log1);
    unlink(log2);
    cr_assert_eq(count_summaries(user_a), 1);
    cr_assert_eq(count_summaries(user_b), 0);

    /* its content, through the API */
    json_t *list = get_json("/api/notifications?unread=true", token_a, 200);
    json_t *summary = NULL, *items = json_object_get(list, "items");
    for (size_t i = 0; i != json_array_size(items); ++i)
        if (strcmp(json_string_value(json_object_get(json_array_get(items, i), "type")),
                   "weekly_summary") == 0)
            summary = json_array_get(items, i);
    cr_assert_not_null(summary);
    const char *message = json_string_value(json_object_get(summary, "message"));
    cr_assert_not_null(strstr(message, "2 payments executed, 1 delayed, 1 failed"), "%s", message);
    cr_assert_not_null(strstr(message, "30 USDC"), "%s", message);

    /* pushed once to A's socket on the first process (through Redis), before a later marker */
    cr_assert_eq(http("POST", "/api/test/events", token_a, NULL,
                      "{\"type\":\"intent.updated\",\"data\":{\"tag\":\"marker\"}}", body,
                      sizeof(body)),
                 202);
    int pushed = 0;
    for (bool marker = false; !marker;) {
        ws_frame_t f;
        cr_assert_eq(ws_next_text(sock, &f, 15000, NULL), 1, "the marker did not arrive");
        json_t *e = json_loads(f.data, 0, NULL);
        const char *type = json_string_value(json_object_get(e, "type"));
        if (strcmp(type, "notification.created") == 0) {
            ++pushed;
            cr_assert_str_eq(json_string_value(json_object_get(json_object_get(e, "data"), "id")),
                             json_string_value(json_object_get(summary, "id")));
        }
        marker = strcmp(type, "intent.updated") == 0;
        json_decref(e);
        ws_frame_dispose(&f);
    }
    cr_assert_eq(pushed, 1);
    json_decref(list);
    ws_client_free(sock);
    stop_server();
}

static int64_t at(const char *rfc3339)
{
    int64_t t;
    uint32_t frac;
    cr_assert_eq(chain_rfc3339_parse(rfc3339, strlen(rfc3339), &t, &frac), CHAIN_OK);
    return t;
}

Test(notifications, weekly_summary_runs_on_mondays_at_nine_utc)
{
    cr_assert_eq(weekly_summary_next(at("2026-11-21T04:00:00Z")), at("2026-11-23T09:00:00Z"));
    cr_assert_eq(weekly_summary_next(at("2026-11-23T08:59:59Z")), at("2026-11-23T09:00:00Z"));
    cr_assert_eq(weekly_summary_next(at("2026-11-23T09:00:00Z")), at("2026-11-30T09:00:00Z"));
    cr_assert_eq(weekly_summary_next(at("2026-11-29T23:59:59Z")), at("2026-11-30T09:00:00Z"));
    cr_assert_eq(weekly_summary_next(at("1970-01-01T00:00:00Z")), at("1970-01-05T09:00:00Z"));
}
