/* The execution object (actors/execution_model.h) from rows built in memory, and
 * GET /api/user/history through real HTTP against the intentd binary and a real PostgreSQL:
 * only the user's own executions, newest first, every one exactly once across pages. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>
#include "actors/execution_model.h"
#include "support/api_server.h"

#define REGISTRY "0x5FbDB2315678afecb367f032d93F642f64180aa3"
#define USDC "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
#define RECIPIENT "0x90F79bf6EB2c4f870365E785982E1f101E93b906"

static const char *const env[] = {"INTENT_CONTRACT_ADDRESS=" REGISTRY, "USDC_ADDRESS=" USDC, NULL};

static char body[65536];

static const char *str(json_t *obj, const char *name)
{
    return json_string_value(json_object_get(obj, name));
}

/* ---- execution_to_json on rows made in memory ---- */

/* A result of EXECUTION_COLUMN_COUNT text columns after `first` leading ones, one row of
 * `values` (NULL: SQL null). */
static PGresult *make_row(int first, const char *const values[EXECUTION_COLUMN_COUNT])
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    int n = first + EXECUTION_COLUMN_COUNT;
    PGresAttDesc attrs[EXECUTION_COLUMN_COUNT + 4];
    memset(attrs, 0, sizeof(attrs));
    for (int i = 0; i != n; ++i) {
        attrs[i].name = "c";
        attrs[i].typid = 25; /* text */
        attrs[i].typlen = -1;
        attrs[i].atttypmod = -1;
    }
    cr_assert(PQsetResultAttrs(res, n, attrs));
    for (int i = 0; i != first; ++i)
        cr_assert(PQsetvalue(res, 0, i, "lead", 4));
    for (int i = 0; i != EXECUTION_COLUMN_COUNT; ++i)
        cr_assert(PQsetvalue(res, 0, first + i, (char *)values[i],
                             values[i] == NULL ? -1 : (int)strlen(values[i])));
    return res;
}

static const char *const confirmed[EXECUTION_COLUMN_COUNT] = {
    "6f1c1c0e-1111-4a4a-8b8b-000000000001",
    "6f1c1c0e-2222-4a4a-8b8b-000000000002",
    "3",
    "confirmed",
    "ab00000000000000000000000000000000000000000000000000000000000001",
    "100500000",
    "21000",
    "1500000001",
    "12",
    NULL,
    "1893488400",
    "1893488412",
    "e7f1725e7734ce288f8367e1bb143e90bb3f0512",
    "1893488400123456",
};

static intent_token_t usdc(void)
{
    intent_token_t t = {.decimals = 6, .symbol = "USDC"};
    cr_assert_eq(chain_addr_parse(&t.address, USDC, strlen(USDC)), CHAIN_OK);
    return t;
}

Test(execution_model, confirmed_row_has_every_field_in_api_form)
{
    intent_token_t token = usdc();
    PGresult *res = make_row(2, confirmed);
    json_t *e = execution_to_json(res, 0, 2, &token, 1);
    cr_assert_not_null(e);
    char *text = json_dumps(e, JSON_COMPACT);
    cr_assert_str_eq(text,
                     "{\"id\":\"6f1c1c0e-1111-4a4a-8b8b-000000000001\","
                     "\"intentId\":\"6f1c1c0e-2222-4a4a-8b8b-000000000002\",\"period\":3,"
                     "\"status\":\"confirmed\",\"txHash\":"
                     "\"0xab00000000000000000000000000000000000000000000000000000000000001\","
                     "\"amount\":\"100.5\",\"gasUsed\":21000,\"gasPriceGwei\":\"1.500000001\","
                     "\"blockNumber\":12,\"error\":null,\"createdAt\":\"2030-01-01T09:00:00Z\","
                     "\"confirmedAt\":\"2030-01-01T09:00:12Z\"}");
    free(text);
    json_decref(e);
    PQclear(res);
}

Test(execution_model, absent_values_are_null_and_errors_shown)
{
    intent_token_t token = usdc();
    const char *v[EXECUTION_COLUMN_COUNT];
    memcpy(v, confirmed, sizeof(v));
    v[3] = "failed";
    v[6] = v[7] = v[8] = v[11] = NULL;
    v[9] = "execution reverted: allowance";
    PGresult *res = make_row(0, v);
    json_t *e = execution_to_json(res, 0, 0, &token, 1);
    cr_assert_not_null(e);
    cr_assert(json_is_null(json_object_get(e, "gasUsed")));
    cr_assert(json_is_null(json_object_get(e, "gasPriceGwei")));
    cr_assert(json_is_null(json_object_get(e, "blockNumber")));
    cr_assert(json_is_null(json_object_get(e, "confirmedAt")));
    cr_assert_str_eq(str(e, "error"), "execution reverted: allowance");
    cr_assert_str_eq(str(e, "status"), "failed");
    json_decref(e);
    PQclear(res);
}

Test(execution_model, unknown_token_or_bad_row_is_not_shown)
{
    intent_token_t token = usdc();
    const char *v[EXECUTION_COLUMN_COUNT];
    memcpy(v, confirmed, sizeof(v));
    v[12] = "0000000000000000000000000000000000000001"; /* not in the registry */
    PGresult *res = make_row(0, v);
    cr_assert_null(execution_to_json(res, 0, 0, &token, 1));
    PQclear(res);
    memcpy(v, confirmed, sizeof(v));
    v[5] = "12x"; /* not an amount */
    res = make_row(0, v);
    cr_assert_null(execution_to_json(res, 0, 0, &token, 1));
    cr_assert_null(execution_to_json(res, 1, 0, &token, 1), "no such row");
    cr_assert_null(execution_to_json(res, 0, 1, &token, 1), "columns out of range");
    PQclear(res);
}

/* ---- GET /api/user/history ---- */

static void create_intent(const char *token, const char *name, char id[37])
{
    char json[512];
    snprintf(json, sizeof(json),
             "{\"name\":\"%s\",\"recipient\":\"" RECIPIENT "\",\"token\":\"USDC\","
             "\"amount\":\"2.25\",\"frequency\":\"daily\",\"startAt\":\"2030-01-01T09:00:00Z\"}",
             name);
    cr_assert_eq(http("POST", "/api/intents", token, NULL, json, body, sizeof(body)), 201, "%s",
                 body);
    json_t *intent = json_loads(body, 0, NULL);
    snprintf(id, 37, "%s", str(intent, "id"));
    json_decref(intent);
}

/* Inserts execution `period` of `intent`, created `age_s` seconds ago (distinct ages: order). */
static void add_execution(const char *intent, int period, int age_s)
{
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "INSERT INTO executions (intent_id, period, status, amount, executor, nonce, raw_tx,"
             " tx_hash, created_at) VALUES ('%s', %d, 'broadcast', 2250000,"
             " decode(repeat('ab', 20), 'hex'), %d, '\\x00', decode(lpad(to_hex(%d), 64, '0'),"
             " 'hex'), now() - make_interval(secs => %d))",
             intent, period, period, age_s, age_s);
    db_exec(db_url, sql);
}

Test(api_history, own_executions_newest_first_every_one_once, .timeout = 60,
     .fini = kill_leftover_server)
{
    start_server_env(env);
    char token_a[4096], token_b[4096], a1[37], a2[37], b1[37];
    session(KEY_A, token_a, sizeof(token_a));
    session(KEY_B, token_b, sizeof(token_b));
    create_intent(token_a, "a1", a1);
    create_intent(token_a, "a2", a2);
    create_intent(token_b, "b1", b1);
    enum { N = 7 };
    /* A's executions alternate between its intents; age 10*i: the newest is i = 0 */
    for (int i = 0; i != N; ++i)
        add_execution(i % 2 == 0 ? a1 : a2, i, 10 * (i + 1));
    add_execution(b1, 0, 5); /* B's, newer than all of A's */
    char path[256] = "/api/user/history?limit=3";
    int seen[N] = {0}, total = 0, pages = 0, last_period = -1;
    for (;;) {
        cr_assert_eq(http("GET", path, token_a, NULL, NULL, body, sizeof(body)), 200, "%s", body);
        json_t *page = json_loads(body, 0, NULL), *item;
        size_t k;
        json_array_foreach(json_object_get(page, "items"), k, item)
        {
            const char *intent = str(item, "intentId");
            cr_assert(strcmp(intent, a1) == 0 || strcmp(intent, a2) == 0, "not A's: %s", intent);
            int period = (int)json_integer_value(json_object_get(item, "period"));
            cr_assert(period >= 0 && period < N && !seen[period], "period %d twice", period);
            cr_assert_gt(period, last_period, "not newest first"); /* period i is older with i */
            last_period = period;
            seen[period] = 1;
            cr_assert_str_eq(str(item, "amount"), "2.25");
            cr_assert_str_eq(str(item, "status"), "broadcast");
            ++total;
        }
        ++pages;
        const char *next = str(page, "nextCursor");
        if (next == NULL) {
            json_decref(page);
            break;
        }
        snprintf(path, sizeof(path), "/api/user/history?limit=3&cursor=%s", next);
        json_decref(page);
        cr_assert_lt(pages, 10, "pagination does not end");
    }
    cr_assert_eq(total, N);
    cr_assert_eq(pages, 3);
    /* B sees only B's */
    cr_assert_eq(http("GET", "/api/user/history", token_b, NULL, NULL, body, sizeof(body)), 200);
    json_t *page = json_loads(body, 0, NULL);
    cr_assert_eq(json_array_size(json_object_get(page, "items")), 1, "%s", body);
    cr_assert_str_eq(str(json_array_get(json_object_get(page, "items"), 0), "intentId"), b1);
    cr_assert(json_is_null(json_object_get(page, "nextCursor")));
    json_decref(page);
    /* bad input names its field; no token is 401 */
    cr_assert_eq(
        http("GET", "/api/user/history?limit=201", token_a, NULL, NULL, body, sizeof(body)), 400);
    cr_assert_not_null(strstr(body, "\"field\":\"limit\""), "%s", body);
    cr_assert_eq(
        http("GET", "/api/user/history?cursor=1.x", token_a, NULL, NULL, body, sizeof(body)), 400);
    cr_assert_not_null(strstr(body, "\"field\":\"cursor\""), "%s", body);
    cr_assert_eq(http("GET", "/api/user/history", NULL, NULL, NULL, body, sizeof(body)), 401);
    stop_server();
}
