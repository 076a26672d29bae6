/*
 * The live stream announces the user's own changes made through the API (shared/api.md, "Live
 * updates"): with a socket open, a create (pending a signature, and signed at once), a
 * signature, a patch, a pause, a resume and a cancel each bring exactly one frame
 * (intent.created or intent.updated) whose data is the intent object GET /api/intents/:id
 * answers next (without the newest executions GET adds); a
 * repeat, a refused change (409, 422) and another user's changes bring none. Run with the engine
 * (the intent's actor announces, in order with its own events) and without it (no RPC_URL and no
 * key: the API announces). Real HTTP and WebSockets against the intentd binary; a marker event
 * (POST /api/test/events) closes each stream, so a frame too many is seen, without waiting.
 * With the engine, also while the database refuses its row reads for a while: a change and a
 * delay are announced once the reads succeed again, also across a re-plan meanwhile. And with an
 * engine of bounded room (ENGINE_MAX_INTENTS): what it cannot schedule is refused (503,
 * "engine_full") before anything is stored, also when many creates race for the last room.
 */
#include <assert.h>
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "chain/eip712.h"
#include "chain/hex.h"
#include "chain/rfc3339.h"
#include "support/engine_env.h"
#include "support/ws_client.h"

#define FRAME_MS 15000   /* an event on its way (bounded wait, margin for ASan) */
#define AMOUNT 10000000u /* 10 USDC in base units */

static char token_a[4096], token_b[4096], answer[65536];

/* The create body of a daily intent from `start_at` with salt `salt_byte`, signed or not. */
static void create_body(char *out, size_t cap, int64_t start_at, uint8_t salt_byte, bool signed_)
{
    char start_text[CHAIN_RFC3339_SIZE], salt[67], sig[133] = "", sig_field[160] = "";
    chain_rfc3339_format(start_at, start_text);
    snprintf(salt, sizeof(salt), "0x");
    for (int i = 0; i != 32; ++i)
        snprintf(salt + 2 + 2 * i, 3, "%02x", salt_byte);
    if (signed_) {
        engine_sign_daily(KEY_A, start_at, AMOUNT, salt_byte, sig);
        snprintf(sig_field, sizeof(sig_field), ",\"signature\":\"%s\"", sig);
    }
    snprintf(out, cap,
             "{\"name\":\"rent\",\"recipient\":\"%s\",\"token\":\"USDC\",\"amount\":\"10\","
             "\"frequency\":\"daily\",\"startAt\":\"%s\",\"salt\":\"%s\"%s}",
             ENGINE_RECIPIENT, start_text, salt, sig_field);
}

static ws_client_t *open_socket(const char *token)
{
    char auth[4200], err[512];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    const char *headers[] = {auth, NULL};
    int status;
    ws_client_t *c = ws_connect(port, "/api/ws", headers, 0, &status, err, sizeof(err));
    cr_assert_not_null(c, "upgrade refused: %d %s", status, err);
    return c;
}

/* The next frame must be one event of `type` for intent `id` whose data equals the GET that
 * follows; returns that intent (decref it). */
static json_t *expect_intent_event(ws_client_t *c, const char *type, const char *id,
                                   const char *what)
{
    ws_frame_t f;
    uint16_t code = 0;
    int r = ws_next_text(c, &f, FRAME_MS, &code);
    cr_assert_eq(r, 1, "%s: no %s event (read %d, close %u)", what, type, r, code);
    json_t *e = json_loads(f.data, 0, NULL);
    cr_assert_not_null(e, "not JSON: %s", f.data);
    cr_assert_str_eq(json_string_value(json_object_get(e, "type")), type, "%s: %s", what, f.data);
    json_t *data = json_object_get(e, "data");
    cr_assert_str_eq(json_string_value(json_object_get(data, "id")), id, "%s: %s", what, f.data);
    json_t *got = engine_get_intent(token_a, id);
    json_t *object = json_deep_copy(got); /* the intent object: GET's without its "executions" */
    json_object_del(object, "executions");
    cr_assert(json_equal(data, object), "%s: the event's data is not the GET answer:\n%s\n%s", what,
              f.data, json_dumps(object, JSON_SORT_KEYS | JSON_COMPACT));
    json_decref(object);
    json_decref(e);
    ws_frame_dispose(&f);
    return got;
}

/* Publishes a marker event to the token's user; the socket's next frame must be it. */
static void expect_marker_next(ws_client_t *c, const char *token, const char *tag)
{
    char payload[256];
    snprintf(payload, sizeof(payload),
             "{\"type\":\"notification.created\",\"count\":1,\"data\":{\"tag\":\"%s\"}}", tag);
    cr_assert_eq(http("POST", "/api/test/events", token, NULL, payload, answer, sizeof(answer)),
                 202, "%s", answer);
    ws_frame_t f;
    cr_assert_eq(ws_next_text(c, &f, FRAME_MS, NULL), 1, "no marker %s", tag);
    json_t *e = json_loads(f.data, 0, NULL);
    const char *got = json_string_value(json_object_get(json_object_get(e, "data"), "tag"));
    cr_assert(got != NULL && strcmp(got, tag) == 0, "a frame before the marker %s: %s", tag,
              f.data);
    json_decref(e);
    ws_frame_dispose(&f);
}

static int call(const char *method, const char *id, const char *suffix, const char *payload)
{
    char path[160];
    snprintf(path, sizeof(path), "/api/intents/%s%s", id, suffix);
    return http(method, path, token_a, NULL, payload, answer, sizeof(answer));
}

static void expect_status(const json_t *intent, const char *status)
{
    cr_assert_str_eq(json_string_value(json_object_get(intent, "status")), status);
}

/* The whole sequence, on a server already started with or without the engine. */
static void run_sequence(bool engine)
{
    session(KEY_A, token_a, sizeof(token_a));
    session(KEY_B, token_b, sizeof(token_b));
    ws_client_t *a = open_socket(token_a), *b = open_socket(token_b);
    int64_t start = (int64_t)time(NULL) + 7 * 86400; /* never due during the test */
    char body[4096], id[37], sig[133], payload[256];

    /* created pending a signature */
    create_body(body, sizeof(body), start, 0x11, false);
    cr_assert_eq(http("POST", "/api/intents", token_a, NULL, body, answer, sizeof(answer)), 201,
                 "%s", answer);
    json_t *created = json_loads(answer, 0, NULL);
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(created, "id")));
    json_decref(created);
    json_t *in = expect_intent_event(a, "intent.created", id, "create (pending)");
    expect_status(in, "pending_signature");
    json_decref(in);

    /* signed, renamed, paused (twice: the repeat says nothing), resumed */
    engine_sign_daily(KEY_A, start, AMOUNT, 0x11, sig);
    snprintf(payload, sizeof(payload), "{\"signature\":\"%s\"}", sig);
    cr_assert_eq(call("POST", id, "/signature", payload), 200, "%s", answer);
    in = expect_intent_event(a, "intent.updated", id, "signature");
    expect_status(in, "active");
    json_decref(in);
    cr_assert_eq(call("PATCH", id, "", "{\"name\":\"rent, renamed\"}"), 200, "%s", answer);
    in = expect_intent_event(a, "intent.updated", id, "patch");
    cr_assert_str_eq(json_string_value(json_object_get(in, "name")), "rent, renamed");
    json_decref(in);
    cr_assert_eq(call("POST", id, "/pause", NULL), 200, "%s", answer);
    in = expect_intent_event(a, "intent.updated", id, "pause");
    expect_status(in, "paused");
    json_decref(in);
    cr_assert_eq(call("POST", id, "/pause", NULL), 200, "%s", answer);            /* a repeat */
    cr_assert_eq(call("PATCH", id, "", "{\"amount\":\"0\"}"), 422, "%s", answer); /* refused */
    /* a nextExecution the engine does not agree with (as after a crash mid-write): with the
     * engine, the resumed actor's plan writes its own, and that write's event is the resume's
     * one event, not a second */
    char sql[256];
    snprintf(sql, sizeof(sql),
             "UPDATE intents SET next_execution = next_execution + interval '1 hour'"
             " WHERE id = '%s'",
             id);
    db_exec(db_url, sql);
    cr_assert_eq(call("POST", id, "/resume", NULL), 200, "%s", answer);
    in = expect_intent_event(a, "intent.updated", id, "resume");
    expect_status(in, "active");
    cr_assert_str_eq(json_string_value(json_object_get(in, "nextExecution")),
                     engine_time_text(engine ? start : start + 3600));
    json_decref(in);

    /* cancelled: announced (with the engine, by an actor that then leaves); a change refused
     * after it says nothing */
    cr_assert_eq(call("DELETE", id, "", NULL), 200, "%s", answer);
    in = expect_intent_event(a, "intent.updated", id, "cancel");
    expect_status(in, "cancelled");
    json_decref(in);
    cr_assert_eq(call("POST", id, "/resume", NULL), 409, "%s", answer);

    /* created signed, active at once */
    create_body(body, sizeof(body), start, 0x22, true);
    cr_assert_eq(http("POST", "/api/intents", token_a, NULL, body, answer, sizeof(answer)), 201,
                 "%s", answer);
    created = json_loads(answer, 0, NULL);
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(created, "id")));
    json_decref(created);
    in = expect_intent_event(a, "intent.created", id, "create (signed)");
    expect_status(in, "active");
    json_decref(in);

    /* nothing more for A (no second event of any change, none for the repeat or the refusals),
     * and nothing at all for B */
    expect_marker_next(a, token_a, "end-a");
    expect_marker_next(b, token_b, "end-b");
    ws_client_free(a);
    ws_client_free(b);
}

Test(ws_api_events, the_users_changes_are_announced_by_the_engine, .timeout = 240,
     .fini = engine_teardown)
{
    engine_chain_start(NULL);
    const char *env[] = {"EVENTS_TEST_ENDPOINT=1", NULL};
    engine_server_start(env);
    run_sequence(true);
    stop_server();
}

Test(ws_api_events, without_the_engine_the_api_announces_them, .timeout = 240,
     .fini = engine_teardown)
{
    engine_chain_start(NULL); /* for the registry's and the token's addresses only */
    static char registry[80], usdc[80];
    snprintf(registry, sizeof(registry), "INTENT_CONTRACT_ADDRESS=%s", engine_registry);
    snprintf(usdc, sizeof(usdc), "USDC_ADDRESS=%s", engine_usdc);
    const char *env[] = {
        registry, usdc, "EVENTS_TEST_ENDPOINT=1", "API_RATE_LIMIT=0", "USER_RATE_LIMIT=0", NULL};
    start_server_env(env); /* no RPC_URL, no PRIVATE_KEY: no engine */
    run_sequence(false);
    stop_server();
}

/* ---- announcements while the database refuses the engine's row reads ----
 *
 * Every read of an intent's row (the engine's engine_get: its change, its events) goes through
 * `executions`; the test swaps that table for a view whose rows come from a function that counts
 * the attempt (a sequence: not rolled back with the error) and raises, so each read fails while
 * everything else the engine writes still works. */

static void refuse_reads(void)
{
    db_exec(db_url, "CREATE SEQUENCE IF NOT EXISTS refused_reads;"
                    " ALTER TABLE executions RENAME TO executions_held;"
                    " CREATE OR REPLACE FUNCTION refuse_read() RETURNS SETOF executions_held"
                    "   LANGUAGE plpgsql VOLATILE AS $$BEGIN PERFORM nextval('refused_reads');"
                    "   RAISE EXCEPTION 'reads refused by the test'; END$$;"
                    " CREATE VIEW executions AS SELECT * FROM refuse_read()");
}

static void allow_reads(void)
{
    db_exec(db_url, "DROP VIEW executions; ALTER TABLE executions_held RENAME TO executions");
}

/* Waits until at least `n` reads of `executions` were refused (the engine's row reads, and any
 * other statement on that table). */
static void wait_refused(int n)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT (is_called AND last_value >= %d)::text FROM refused_reads",
             n);
    cr_assert(engine_wait_db(sql, "true", FRAME_MS), "fewer than %d reads refused", n);
}

/* The next frame must be a notification.created of `type`. */
static void expect_notification(ws_client_t *c, const char *type)
{
    ws_frame_t f;
    cr_assert_eq(ws_next_text(c, &f, FRAME_MS, NULL), 1, "no notification %s", type);
    json_t *e = json_loads(f.data, 0, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(e, "type")), "notification.created", "%s",
                     f.data);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(e, "data"), "type")), type,
                     "%s", f.data);
    json_decref(e);
    ws_frame_dispose(&f);
}

/* A chain, intentd with the engine (and `extra`, "NAME=value" or NULL), KEY_A signed in with a
 * socket open. */
static ws_client_t *start_engine_with_socket(const char *extra)
{
    engine_chain_start(NULL);
    const char *env[] = {"EVENTS_TEST_ENDPOINT=1", extra, NULL};
    engine_server_start(env);
    session(KEY_A, token_a, sizeof(token_a));
    return open_socket(token_a);
}

/* POSTs `body`, which must be created (201) and announced on `a`; its id in `id`. */
static void create_expect(const char *body, char id[37], ws_client_t *a)
{
    cr_assert_eq(http("POST", "/api/intents", token_a, NULL, body, answer, sizeof(answer)), 201,
                 "%s", answer);
    json_t *created = json_loads(answer, 0, NULL);
    snprintf(id, 37, "%s", json_string_value(json_object_get(created, "id")));
    json_decref(created);
    json_decref(expect_intent_event(a, "intent.created", id, "create"));
}

/* A change whose row read the database refuses is read again until it can be, and announced
 * once, although a re-plan (a clock move) re-armed the actor's due-time timer meanwhile, which
 * once took the place of the read's retry. */
Test(ws_api_events, a_change_is_announced_after_refused_reads_and_a_re_plan, .timeout = 240,
     .fini = engine_teardown)
{
    ws_client_t *a = start_engine_with_socket(NULL);
    char body[4096], id[37];
    create_body(body, sizeof(body), engine_now() + 7 * 86400, 0x33, true); /* never due here */
    create_expect(body, id, a);

    refuse_reads();
    cr_assert_eq(call("POST", id, "/pause", NULL), 200, "%s", answer);
    wait_refused(2);    /* the change's read, and (likely) its first retry: refused */
    engine_advance(60); /* a re-plan: the actor (waiting for its due time) arms its timer */
    wait_refused(3);    /* still retrying after it */
    allow_reads();
    json_t *in = expect_intent_event(a, "intent.updated", id, "pause after refused reads");
    expect_status(in, "paused");
    json_decref(in);
    expect_marker_next(a, token_a, "end"); /* announced once */
    ws_client_free(a);
    stop_server();
}

/* An event whose row read the database refuses waits, first in its intent's queue, and goes out
 * once the read succeeds: here the intent.delayed of a due intent whose owner has no funds (the
 * delay itself is written; its notification needs no read). */
Test(ws_api_events, a_delay_is_announced_after_refused_reads, .timeout = 240,
     .fini = engine_teardown)
{
    ws_client_t *a = start_engine_with_socket(NULL);
    char body[4096], id[37];
    int64_t start = engine_now() + 600;
    create_body(body, sizeof(body), start, 0x44, true);
    create_expect(body, id, a);

    refuse_reads();
    engine_advance_to(start); /* due: no balance, delayed */
    expect_notification(a, "execution_delayed");
    wait_refused(2); /* the event's read among them (the executor's are refused too) */
    allow_reads();
    json_t *in = expect_intent_event(a, "intent.delayed", id, "delay after refused reads");
    expect_status(in, "delayed");
    json_decref(in);
    expect_marker_next(a, token_a, "end");
    ws_client_free(a);
    stop_server();
}

/* The answer must be 503 with the reason "engine_full". */
static void expect_engine_full(int status, const char *what)
{
    cr_assert_eq(status, 503, "%s: %s", what, answer);
    json_t *p = json_loads(answer, 0, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(p, "reason")), "engine_full", "%s: %s", what,
                     answer);
    json_decref(p);
}

/* How many intents GET /api/intents lists (one page). */
static size_t intents_listed(void)
{
    cr_assert_eq(http("GET", "/api/intents", token_a, NULL, NULL, answer, sizeof(answer)), 200,
                 "%s", answer);
    json_t *list = json_loads(answer, 0, NULL);
    size_t n = json_array_size(json_object_get(list, "items"));
    json_decref(list);
    return n;
}

/* An engine with room for one intent (ENGINE_MAX_INTENTS=1) refuses a second creation (503,
 * "engine_full") before anything is stored: nothing is listed or announced, and the first intent
 * keeps its actor. A signature that makes an intent live needs room too, unless the intent has
 * its actor already (created unsigned in this process); after a restart, whose loader leaves
 * intents pending a signature without an actor, the signature is refused while the engine is
 * full. */
Test(ws_api_events, a_creation_the_full_engine_cannot_take_is_refused, .timeout = 240,
     .fini = engine_teardown)
{
    ws_client_t *a = start_engine_with_socket("ENGINE_MAX_INTENTS=1");
    int64_t start = engine_now() + 7 * 86400;
    char body[4096], pending[37], sig[133], payload[256];
    json_t *created;

    /* created unsigned: it takes the only room, so a second create is refused; its signature
     * needs no more room (its actor exists), and its cancel frees the room */
    char first[37];
    create_body(body, sizeof(body), start, 0x54, false);
    create_expect(body, first, a);
    create_body(body, sizeof(body), start, 0x56, true);
    expect_engine_full(http("POST", "/api/intents", token_a, NULL, body, answer, sizeof(answer)),
                       "a second create");
    cr_assert_eq(intents_listed(), 1, "the refused create was stored");
    expect_marker_next(a, token_a, "refused"); /* and nothing announced */
    cr_assert_eq(http("GET", "/metrics", NULL, NULL, NULL, answer, sizeof(answer)), 200);
    cr_assert(strstr(answer, "\nintentd_engine_intents 1\n") != NULL, "%s", answer);
    cr_assert(strstr(answer, "\nintentd_engine_refused_total 0\n") != NULL, "%s", answer);
    engine_sign_daily(KEY_A, start, AMOUNT, 0x54, sig);
    snprintf(payload, sizeof(payload), "{\"signature\":\"%s\"}", sig);
    cr_assert_eq(call("POST", first, "/signature", payload), 200, "%s", answer);
    json_decref(expect_intent_event(a, "intent.updated", first, "signature"));
    cr_assert_eq(call("DELETE", first, "", NULL), 200, "%s", answer);
    json_decref(expect_intent_event(a, "intent.updated", first, "cancel"));

    /* the next one, unsigned, once the cancelled one's actor has left (refused until then,
     * storing nothing) */
    create_body(body, sizeof(body), start, 0x55, false);
    int status = 0;
    for (int i = 0; i != 300 && (status = http("POST", "/api/intents", token_a, NULL, body, answer,
                                               sizeof(answer))) == 503;
         ++i)
        nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
    cr_assert_eq(status, 201, "%s", answer);
    created = json_loads(answer, 0, NULL);
    snprintf(pending, sizeof(pending), "%s", json_string_value(json_object_get(created, "id")));
    json_decref(created);
    json_decref(expect_intent_event(a, "intent.created", pending, "create (pending)"));
    ws_client_free(a);

    /* after a restart only live intents get actors: the pending one has none, and the room
     * goes to a new one; its signature is then refused, and it stays pending */
    engine_server_kill();
    engine_server_restart();
    a = open_socket(token_a);
    char other[37];
    create_body(body, sizeof(body), start, 0x57, true);
    create_expect(body, other, a);
    engine_sign_daily(KEY_A, start, AMOUNT, 0x55, sig);
    snprintf(payload, sizeof(payload), "{\"signature\":\"%s\"}", sig);
    expect_engine_full(call("POST", pending, "/signature", payload), "a signature");
    json_t *in = engine_get_intent(token_a, pending);
    expect_status(in, "pending_signature");
    json_decref(in);
    expect_marker_next(a, token_a, "end");
    ws_client_free(a);
    stop_server();
}

/* The metrics must show `intents` intent actors and no live intent left unscheduled. */
static void expect_engine_metrics(int intents)
{
    char want[64];
    snprintf(want, sizeof(want), "\nintentd_engine_intents %d\n", intents);
    cr_assert_eq(http("GET", "/metrics", NULL, NULL, NULL, answer, sizeof(answer)), 200);
    cr_assert(strstr(answer, want) != NULL, "not %s:\n%s", want + 1, answer);
    cr_assert(strstr(answer, "\nintentd_engine_refused_total 0\n") != NULL, "%s", answer);
}

/* A resume that needs a new actor is refused while the engine is full (503, "engine_full") and
 * changes nothing: the intent stays paused, and nothing is announced. (A paused intent without an
 * actor is what a start-up that found no room for it leaves; made here by hiding it from the
 * loader over a restart, as if pending a signature, while another intent takes the room.) */
Test(ws_api_events, a_resume_the_full_engine_cannot_take_is_refused, .timeout = 240,
     .fini = engine_teardown)
{
    ws_client_t *a = start_engine_with_socket("ENGINE_MAX_INTENTS=1");
    int64_t start = engine_now() + 7 * 86400;
    char body[4096], paused[37], other[37], sql[256];
    create_body(body, sizeof(body), start, 0x58, true);
    create_expect(body, paused, a);
    cr_assert_eq(call("POST", paused, "/pause", NULL), 200, "%s", answer);
    json_decref(expect_intent_event(a, "intent.updated", paused, "pause"));
    ws_client_free(a);

    engine_server_kill();
    snprintf(sql, sizeof(sql), "UPDATE intents SET status = 'pending_signature' WHERE id = '%s'",
             paused);
    db_exec(db_url, sql);
    engine_server_restart();
    a = open_socket(token_a);
    create_body(body, sizeof(body), start, 0x59, true);
    create_expect(body, other, a); /* the only room */
    snprintf(sql, sizeof(sql), "UPDATE intents SET status = 'paused' WHERE id = '%s'", paused);
    db_exec(db_url, sql);

    expect_engine_full(call("POST", paused, "/resume", NULL), "a resume");
    json_t *in = engine_get_intent(token_a, paused);
    expect_status(in, "paused");
    json_decref(in);
    expect_engine_metrics(1);
    expect_marker_next(a, token_a, "end"); /* nothing announced */
    /* the room freed (the other one cancelled, its actor gone), the resume is taken */
    cr_assert_eq(call("DELETE", other, "", NULL), 200, "%s", answer);
    json_decref(expect_intent_event(a, "intent.updated", other, "cancel"));
    int status = 0;
    for (int i = 0; i != 300 && (status = call("POST", paused, "/resume", NULL)) == 503; ++i)
        nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
    cr_assert_eq(status, 200, "%s", answer);
    json_decref(expect_intent_event(a, "intent.updated", paused, "resume"));
    expect_engine_metrics(1);
    ws_client_free(a);
    stop_server();
}

#define RACE_ROOM 10    /* ENGINE_MAX_INTENTS */
#define RACE_CLIENTS 8  /* connections at once */
#define RACE_CREATES 20 /* creates per client, one after the other */
#define RACE_SALT 0x60  /* the salts' bytes: RACE_SALT up to 0xff, one per create */

typedef struct st_racer_t {
    pthread_barrier_t *start;
    int64_t start_at;
    int first; /* its first create's index */
    int created, full;
    int other_status; /* a create answered neither 201 nor 503 engine_full (0: none) */
    char other[512];
} racer_t;

static void *racer_main(void *arg)
{
    racer_t *r = arg;
    char json[4096], body[2048];
    pthread_barrier_wait(r->start);
    for (int i = 0; i != RACE_CREATES; ++i) {
        create_body(json, sizeof(json), r->start_at, (uint8_t)(RACE_SALT + r->first + i), false);
        int status = http("POST", "/api/intents", token_a, NULL, json, body, sizeof(body));
        json_t *p = status == 503 ? json_loads(body, 0, NULL) : NULL;
        const char *reason = json_string_value(json_object_get(p, "reason"));
        if (status == 201) {
            ++r->created;
        } else if (reason != NULL && strcmp(reason, "engine_full") == 0) {
            ++r->full;
        } else if (r->other_status == 0) {
            r->other_status = status != 0 ? status : -1;
            snprintf(r->other, sizeof(r->other), "%.500s", body);
        }
        json_decref(p);
    }
    return NULL;
}

/* Many creates racing for the engine's room (ENGINE_MAX_INTENTS): each one answered 201 has its
 * actor (it is scheduled), every other one is refused (503, "engine_full") and stores nothing;
 * none is stored and then left without an actor (intentd_engine_refused_total). */
Test(ws_api_events, creates_racing_for_the_last_room_are_stored_only_when_scheduled, .timeout = 240,
     .fini = engine_teardown)
{
    static_assert(RACE_SALT + RACE_CLIENTS * RACE_CREATES <= 0x100, "one salt byte per create");
    char room[40];
    snprintf(room, sizeof(room), "ENGINE_MAX_INTENTS=%d", RACE_ROOM);
    ws_client_free(start_engine_with_socket(room));
    racer_t racers[RACE_CLIENTS];
    pthread_t threads[RACE_CLIENTS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, RACE_CLIENTS);
    int64_t start_at = engine_now() + 7 * 86400;
    for (int i = 0; i != RACE_CLIENTS; ++i) {
        racers[i] = (racer_t){.start = &start, .start_at = start_at, .first = i * RACE_CREATES};
        cr_assert_eq(pthread_create(&threads[i], NULL, racer_main, &racers[i]), 0);
    }
    int created = 0, full = 0;
    for (int i = 0; i != RACE_CLIENTS; ++i) {
        pthread_join(threads[i], NULL);
        created += racers[i].created;
        full += racers[i].full;
    }
    pthread_barrier_destroy(&start);
    for (int i = 0; i != RACE_CLIENTS; ++i)
        cr_assert_eq(racers[i].other_status, 0, "a create answered %d: %s", racers[i].other_status,
                     racers[i].other);
    cr_assert_eq(created, RACE_ROOM, "%d creates answered 201 for room for %d", created, RACE_ROOM);
    cr_assert_eq(full, RACE_CLIENTS * RACE_CREATES - RACE_ROOM);
    const char *stored = db_value("SELECT count(*) FROM intents");
    cr_assert_eq(atoi(stored), created, "%s intents stored, %d answered 201", stored, created);
    expect_engine_metrics(created);
    stop_server();
}
