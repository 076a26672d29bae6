#include "actors/weekly_summary.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "actors/notification_model.h"
#include "chain/address.h"
#include "chain/rfc3339.h"
#include "chain/u256.h"
#include "runtime/log.h"

#define PAGE_USERS 100      /* users summarised per page */
#define RETRY_DELAY_MS 5000 /* after a database failure */
#define MAX_ATTEMPTS 12     /* failures of one run before it is given up (logged) */
#define WEEK_S (7 * 86400)
#define CATCH_UP_S 86400 /* a start this long after Monday 09:00 still sends that week */
#define MESSAGE_SIZE 1024
#define STOP_WAIT_MS 2000

enum { MSG_RUN = RT_MSG_USER + 0x780 };
enum { TAG_SCHEDULE = 1, TAG_RETRY };
enum { COL_USER, COL_EXECUTED, COL_FAILED, COL_DELAYED, COL_TOKEN, COL_AMOUNT };

static int st_page, st_insert;

void weekly_summary_register_statements(void)
{
    /* A page of users with activity in [end - 7 days, end) and no summary for it yet, with their
     * counts and one row per token of volume (token NULL when nothing was confirmed). */
    st_page = store_pg_statement(
        "weekly_summary_page",
        "WITH b AS (SELECT to_timestamp($1::bigint) AS e,"
        "   to_timestamp($1::bigint) - interval '7 days' AS s),"
        " ex AS (SELECT i.owner_id AS user_id, x.status, x.amount, i.token"
        "   FROM executions x JOIN intents i ON i.id = x.intent_id, b"
        "   WHERE x.created_at >= b.s AND x.created_at < b.e"
        "   AND x.status IN ('confirmed', 'failed')),"
        " dl AS (SELECT n.user_id, count(*) AS delayed FROM notifications n, b"
        "   WHERE n.type = 'execution_delayed' AND n.created_at >= b.s AND n.created_at < b.e"
        "   GROUP BY n.user_id),"
        " active AS (SELECT a.user_id FROM (SELECT user_id FROM ex UNION SELECT user_id FROM dl) a"
        "   WHERE ($2::uuid IS NULL OR a.user_id > $2::uuid) AND NOT EXISTS (SELECT 1"
        "     FROM weekly_summaries w, b WHERE w.user_id = a.user_id AND w.week_end = b.e)"
        "   ORDER BY a.user_id LIMIT $3::int),"
        " counts AS (SELECT user_id, count(*) FILTER (WHERE status = 'confirmed') AS executed,"
        "   count(*) FILTER (WHERE status = 'failed') AS failed FROM ex GROUP BY user_id),"
        " vol AS (SELECT user_id, encode(token, 'hex') AS token, sum(amount)::text AS amount"
        "   FROM ex WHERE status = 'confirmed' GROUP BY user_id, token)"
        " SELECT a.user_id::text, coalesce(c.executed, 0), coalesce(c.failed, 0),"
        "   coalesce(d.delayed, 0), v.token, v.amount"
        " FROM active a LEFT JOIN counts c USING (user_id) LEFT JOIN dl d USING (user_id)"
        " LEFT JOIN vol v USING (user_id) ORDER BY a.user_id, v.token");
    /* The claim and the notification in one statement (one transaction): a second process's
     * claim conflicts, inserts nothing, and so creates no notification. */
    st_insert = store_pg_statement(
        "weekly_summary_insert",
        "WITH claim AS (INSERT INTO weekly_summaries (user_id, week_end, notification_id)"
        "   VALUES ($1::uuid, to_timestamp($2::bigint), gen_random_uuid())"
        "   ON CONFLICT DO NOTHING RETURNING user_id, notification_id),"
        " n AS (INSERT INTO notifications (id, user_id, type, title, message)"
        "   SELECT notification_id, user_id, 'weekly_summary', $3, $4 FROM claim RETURNING *)"
        " SELECT " NOTIFICATION_COLUMNS " FROM n");
}

struct st_weekly_summary_t {
    rt_actor_t *actor;
    store_pg_t *pg;
    events_t *events;
    const intent_token_t *tokens;
    size_t num_tokens;
    _Atomic uint64_t created;
    _Atomic int stopped;
};

typedef struct st_summary_state_t {
    weekly_summary_t *owner;
    int64_t running_end_s; /* the run in progress (0: none) */
    int64_t pending_end_s; /* one more asked for meanwhile (0: none) */
    int64_t scheduled_s;   /* the next Monday 09:00 */
    uint32_t attempts, outstanding, run_created;
    bool page_full, page_failed;
    char after_user[INTENT_ID_SIZE];
    char users[PAGE_USERS][INTENT_ID_SIZE]; /* by insert: whom to push the notification to */
    rt_actor_timer_t schedule_timer, retry_timer;
} summary_state_t;

int64_t weekly_summary_next(int64_t now_s)
{
    int64_t days = now_s >= 0 ? now_s / 86400 : (now_s - 86399) / 86400;
    int64_t weekday = ((days + 3) % 7 + 7) % 7; /* 1970-01-01 was a Thursday; Monday is 0 */
    int64_t t = (days - weekday) * 86400 + 9 * 3600;
    return t > now_s ? t : t + WEEK_S;
}

/* ---- composing a summary ---- */

/* "12.5 USDC" for a token of the registry, else base units and the address. */
static void format_volume(weekly_summary_t *ws, const char *token_hex, const char *amount,
                          char *out, size_t cap)
{
    char hex[43];
    snprintf(hex, sizeof(hex), "0x%s", token_hex);
    chain_addr_t addr;
    chain_u256_t v;
    bool parsed = chain_addr_parse(&addr, hex, strlen(hex)) == CHAIN_OK &&
                  chain_u256_from_dec(&v, amount, strlen(amount)) == CHAIN_OK;
    for (size_t i = 0; parsed && i != ws->num_tokens; ++i) {
        if (chain_addr_eq(&ws->tokens[i].address, &addr)) {
            char units[CHAIN_U256_UNITS_SIZE];
            chain_u256_format_units(&v, ws->tokens[i].decimals, units);
            snprintf(out, cap, "%s %s", units, ws->tokens[i].symbol);
            return;
        }
    }
    char shown[CHAIN_ADDR_STR_SIZE] = "";
    if (parsed)
        chain_addr_format(&addr, shown);
    snprintf(out, cap, "%s base units of %s", amount, parsed ? shown : hex);
}

/* Title and message for rows [first, end) of one user. */
static void compose(weekly_summary_t *ws, const PGresult *res, int first, int end, int64_t end_s,
                    char *title, size_t title_cap, char *message, size_t cap)
{
    long executed = atol(PQgetvalue(res, first, COL_EXECUTED));
    long failed = atol(PQgetvalue(res, first, COL_FAILED));
    long delayed = atol(PQgetvalue(res, first, COL_DELAYED));
    char from[CHAIN_RFC3339_SIZE], to[CHAIN_RFC3339_SIZE];
    chain_rfc3339_format(end_s - WEEK_S, from);
    chain_rfc3339_format(end_s, to);
    snprintf(title, title_cap, "Your week: %ld payment%s executed", executed,
             executed == 1 ? "" : "s");
    size_t n = (size_t)snprintf(message, cap,
                                "From %.10s to %.10s: %ld payment%s executed, %ld delayed, %ld "
                                "failed. Volume: ",
                                from, to, executed, executed == 1 ? "" : "s", delayed, failed);
    bool any = false;
    for (int r = first; r != end && n < cap; ++r) {
        if (PQgetisnull(res, r, COL_TOKEN))
            continue;
        char volume[CHAIN_U256_UNITS_SIZE + 80];
        format_volume(ws, PQgetvalue(res, r, COL_TOKEN), PQgetvalue(res, r, COL_AMOUNT), volume,
                      sizeof(volume));
        n += (size_t)snprintf(message + n, cap - n, "%s%s", any ? ", " : "", volume);
        any = true;
    }
    if (n < cap)
        snprintf(message + n, cap - n, "%s.", any ? "" : "none");
}

/* ---- the run: pages of users, one insert each ---- */

static void query_page(rt_actor_t *self, summary_state_t *st);
static void finish_run(rt_actor_t *self, summary_state_t *st);

static void begin_run(rt_actor_t *self, summary_state_t *st, int64_t end_s)
{
    if (st->running_end_s != 0) {
        st->pending_end_s = end_s; /* one waits; a later ask replaces it (bounded) */
        return;
    }
    st->running_end_s = end_s;
    st->attempts = st->run_created = 0;
    st->after_user[0] = '\0';
    rt_log_info("weekly_summary", "summarising the week ending at %lld", (long long)end_s);
    query_page(self, st);
}

static void retry_later(rt_actor_t *self, summary_state_t *st, const char *why)
{
    if (++st->attempts >= MAX_ATTEMPTS) {
        rt_log_error("weekly_summary", "giving up the week ending at %lld: %s",
                     (long long)st->running_end_s, why);
        finish_run(self, st);
        return;
    }
    rt_log_warn("weekly_summary", "retrying in %d ms: %s", RETRY_DELAY_MS, why);
    rt_actor_timer_start(self, &st->retry_timer, RETRY_DELAY_MS, TAG_RETRY);
}

static void query_page(rt_actor_t *self, summary_state_t *st)
{
    char end[24], page[16];
    snprintf(end, sizeof(end), "%lld", (long long)st->running_end_s);
    snprintf(page, sizeof(page), "%d", PAGE_USERS);
    const char *params[] = {end, st->after_user[0] != '\0' ? st->after_user : NULL, page};
    st->outstanding = 1;
    if (!store_pg_query(st->owner->pg, self, 0, st_page, 3, params)) {
        st->outstanding = 0;
        retry_later(self, st, "database busy");
    }
}

static void finish_run(rt_actor_t *self, summary_state_t *st)
{
    rt_log_info("weekly_summary", "week ending at %lld summarised: %u created here",
                (long long)st->running_end_s, st->run_created);
    st->running_end_s = 0;
    int64_t next = st->pending_end_s;
    st->pending_end_s = 0;
    if (next != 0)
        begin_run(self, st, next);
}

/* Submits one insert per user of the page. */
static void on_page(rt_actor_t *self, summary_state_t *st, const PGresult *res)
{
    weekly_summary_t *ws = st->owner;
    int n = PQntuples(res), users = 0;
    st->page_failed = false;
    st->outstanding = 0;
    for (int first = 0, end; first < n && users < PAGE_USERS; first = end, ++users) {
        const char *user = PQgetvalue(res, first, COL_USER);
        for (end = first + 1; end < n && strcmp(PQgetvalue(res, end, COL_USER), user) == 0; ++end)
            ;
        char title[128], message[MESSAGE_SIZE], end_s[24];
        compose(ws, res, first, end, st->running_end_s, title, sizeof(title), message,
                sizeof(message));
        snprintf(end_s, sizeof(end_s), "%lld", (long long)st->running_end_s);
        snprintf(st->users[users], INTENT_ID_SIZE, "%s", user);
        snprintf(st->after_user, sizeof(st->after_user), "%s", user);
        const char *params[] = {user, end_s, title, message};
        if (store_pg_query(ws->pg, self, (uint64_t)users + 1, st_insert, 4, params))
            ++st->outstanding;
        else
            st->page_failed = true;
    }
    st->page_full = users == PAGE_USERS;
}

static void after_page(rt_actor_t *self, summary_state_t *st)
{
    if (st->page_failed)
        retry_later(self, st, "a summary could not be stored");
    else if (st->page_full)
        query_page(self, st);
    else
        finish_run(self, st);
}

static void on_result(rt_actor_t *self, summary_state_t *st, rt_msg_t *msg)
{
    store_pg_result_t *r = rt_msg_payload(msg);
    if (st->running_end_s == 0 || st->outstanding == 0)
        return; /* a late answer of a run given up */
    --st->outstanding;
    if (msg->corr == 0) {
        if (r->status != STORE_PG_OK) {
            retry_later(self, st, store_pg_status_name(r->status));
            return;
        }
        on_page(self, st, r->results[0]);
    } else if (r->status != STORE_PG_OK) {
        st->page_failed = true;
    } else if (PQntuples(r->results[0]) == 1 && msg->corr <= PAGE_USERS) {
        atomic_fetch_add(&st->owner->created, 1);
        ++st->run_created;
        notifications_publish_created(st->owner->events, st->users[msg->corr - 1],
                                      notification_to_json(r->results[0], 0, 0));
    }
    if (st->outstanding == 0)
        after_page(self, st);
}

/* ---- the schedule ---- */

static void arm_schedule(rt_actor_t *self, summary_state_t *st)
{
    int64_t now = (int64_t)time(NULL), left = st->scheduled_s - now;
    rt_actor_timer_start(self, &st->schedule_timer, left > 0 ? (uint64_t)left * 1000 : 0,
                         TAG_SCHEDULE);
}

static void on_timer(rt_actor_t *self, summary_state_t *st, uint64_t tag)
{
    if (tag == TAG_RETRY) {
        if (st->running_end_s != 0)
            query_page(self, st);
        return;
    }
    if ((int64_t)time(NULL) >= st->scheduled_s) { /* else the wall clock moved: wait on */
        begin_run(self, st, st->scheduled_s);
        st->scheduled_s = weekly_summary_next(st->scheduled_s);
    }
    arm_schedule(self, st);
}

static void summary_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    summary_state_t *st = rt_actor_state(self);
    switch (msg->type) {
    case MSG_RUN:
        if (st->scheduled_s == 0) { /* the first message: set up the schedule */
            int64_t now = (int64_t)time(NULL);
            st->scheduled_s = weekly_summary_next(now);
            arm_schedule(self, st);
        }
        if (msg->corr != 0)
            begin_run(self, st, (int64_t)msg->corr);
        break;
    case STORE_PG_MSG_RESULT:
        on_result(self, st, msg);
        break;
    case RT_MSG_TIMER:
        on_timer(self, st, msg->corr);
        break;
    case RT_MSG_STOP:
        rt_actor_timer_cancel(self, &st->schedule_timer);
        rt_actor_timer_cancel(self, &st->retry_timer);
        atomic_store(&st->owner->stopped, 1);
        break;
    default:
        break;
    }
}

/* ---- life cycle ---- */

void weekly_summary_run(weekly_summary_t *ws, int64_t week_end_s)
{
    rt_msg_t *msg = rt_msg_new(MSG_RUN, 0);
    msg->corr = (uint64_t)week_end_s;
    rt_actor_send(ws->actor, msg);
}

weekly_summary_t *weekly_summary_start(rt_runtime_t *rt, store_pg_t *pg, events_t *events,
                                       const intent_token_t *tokens, size_t num_tokens,
                                       int64_t week_end_s)
{
    weekly_summary_t *ws = calloc(1, sizeof(*ws));
    if (ws == NULL)
        return NULL;
    ws->pg = pg;
    ws->events = events;
    ws->tokens = tokens;
    ws->num_tokens = num_tokens;
    ws->actor = rt_actor_spawn(rt, 0, summary_behaviour, sizeof(summary_state_t));
    ((summary_state_t *)rt_actor_state(ws->actor))->owner = ws;
    int64_t now = (int64_t)time(NULL), last = weekly_summary_next(now) - WEEK_S;
    if (week_end_s <= 0) /* 0 below: only the schedule */
        week_end_s = now - last < CATCH_UP_S ? last : 0;
    weekly_summary_run(ws, week_end_s);
    return ws;
}

uint64_t weekly_summary_created(const weekly_summary_t *ws)
{
    return atomic_load(&((weekly_summary_t *)ws)->created);
}

void weekly_summary_stop(weekly_summary_t *ws)
{
    if (ws == NULL || ws->actor == NULL)
        return;
    rt_actor_send_stop(ws->actor);
    for (int waited_ms = 0; !atomic_load(&ws->stopped) && waited_ms < STOP_WAIT_MS; ++waited_ms)
        usleep(1000);
    rt_actor_release(ws->actor);
    ws->actor = NULL;
}

void weekly_summary_free(weekly_summary_t *ws)
{
    free(ws);
}
