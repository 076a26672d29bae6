/*
 * The engine: one io_uring, `connections` keep-alive HTTP/1.1 connections with one request in
 * flight each, responses framed with the picohttpparser inside libh2o (Content-Length or
 * chunked). Every connection goes connect -> (send -> recv...)* with exactly one ring operation
 * outstanding, so a connection's state is all there is to know about it.
 *
 * Open loop: arrivals are generated at their intended times (start + n / rate) into a bounded
 * backlog that idle connections drain; a task's latency runs from its intended time to its last
 * response, so the generator's own queueing counts against the server, as it would for users.
 * Closed loop: an idle connection starts its next task at once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "bench/loadgen.h"
#include "net/tls_client.h" /* picohttpparser's declarations */

#define LG_OUT_CAP 16384
#define LG_IN_CAP_MAX (4u << 20)  /* a response bigger than this fails its task */
#define LG_BACKLOG_MAX (1u << 21) /* open-loop arrivals waiting for a connection */
#define LG_TICK_NS 100000000ull   /* timeline slot and timeout scan period: 100 ms */
#define LG_DRAIN_NS 3000000000ull /* after the end, wait this long for answers in flight */
#define LG_RECONNECT_NS 100000000ull
#define LG_IDLE_REOPEN_NS 5000000000ull /* h2o closes idle keep-alive connections at 10 s */
#define LG_PACE_NS 100000ull /* the tick that bounds how late a due arrival is sent (see loop) */
#ifndef IORING_TIMEOUT_MULTISHOT
#define IORING_TIMEOUT_MULTISHOT (1U << 6) /* Linux 6.4; liburing 2.3's header predates it */
#endif

enum { OP_CONNECT = 1, OP_SEND, OP_RECV, OP_TICK };
enum { TICK_OFF, TICK_ARMED, TICK_UNSUPPORTED };
enum { CS_DOWN, CS_CONNECTING, CS_IDLE, CS_BUSY };

typedef struct st_conn_t {
    int fd, state;
    uint64_t retry_at_ns;
    uint64_t idle_since_ns;
    bool in_idle_queue;
    /* the task */
    lg_kind_t kind;
    int step;
    uint32_t user;
    uint64_t intended_ns, deadline_ns;
    /* request */
    char *out;
    size_t out_len, out_sent;
    /* response */
    char *in;
    size_t in_len, in_cap, head_len, body_len;
    long long content_length; /* -1: chunked */
    int status;
    bool close_after;
    struct phr_chunked_decoder chunked;
} conn_t;

typedef struct st_engine_t {
    struct io_uring ring;
    lg_world_t *w;
    const lg_run_t *run;
    lg_result_t *res;
    conn_t *conns;
    uint64_t rng;
    uint64_t start_ns, warm_ns, end_ns;
    uint64_t *backlog; /* ring buffer of intended times */
    size_t bl_head, bl_len;
    size_t next_setup, next_rawtx, next_body;
    uint32_t *signed_in; /* users with a session */
    size_t num_signed_in;
    uint32_t mix_total;
    size_t busy;
    bool stopping;
    uint32_t *idle; /* FIFO of idle connections: the longest idle is used first */
    size_t idle_head, idle_len;
    uint64_t cut_ns; /* when a pool ran out (0: it did not) */
    uint64_t next_progress_ns;
    bool ring_ok;
    bool machine_from, machine_to;    /* the measured window's CPU readings are taken */
    int tick;                         /* TICK_*: the multishot pacing timeout's state */
    struct __kernel_timespec tick_ts; /* its period, read by the kernel at submission */
} engine_t;

uint64_t lg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *lg_kind_name(lg_kind_t k)
{
    static const char *const names[LG_NUM_KINDS] = {"hello",  "get",    "list",
                                                    "create", "signin", "rawtx"};
    return k < LG_NUM_KINDS ? names[k] : "?";
}

static uint64_t rnd(engine_t *e)
{
    e->rng ^= e->rng << 13;
    e->rng ^= e->rng >> 7;
    e->rng ^= e->rng << 17;
    return e->rng;
}

static uint64_t udata(const engine_t *e, const conn_t *c, int op)
{
    return (uint64_t)(c - e->conns) << 8 | (uint64_t)op;
}

static struct io_uring_sqe *sqe(engine_t *e)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&e->ring);
    if (s == NULL) { /* the SQ is sized for every connection, so this only flushes */
        io_uring_submit(&e->ring);
        s = io_uring_get_sqe(&e->ring);
    }
    return s;
}

/* ---- connections ---- */

static void conn_open(engine_t *e, conn_t *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (c->fd < 0 || setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        c->state = CS_DOWN;
        c->retry_at_ns = lg_now_ns() + LG_RECONNECT_NS;
        return;
    }
    static struct sockaddr_in addr;
    addr.sin_family = AF_INET;
    addr.sin_port = htons(e->run->port);
    inet_pton(AF_INET, e->run->host, &addr.sin_addr);
    struct io_uring_sqe *s = sqe(e);
    io_uring_prep_connect(s, c->fd, (struct sockaddr *)&addr, sizeof(addr));
    io_uring_sqe_set_data64(s, udata(e, c, OP_CONNECT));
    c->state = CS_CONNECTING;
}

static void conn_send(engine_t *e, conn_t *c)
{
    struct io_uring_sqe *s = sqe(e);
    io_uring_prep_send(s, c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, udata(e, c, OP_SEND));
}

static void conn_recv(engine_t *e, conn_t *c)
{
    if (c->in_cap - c->in_len < 4096 && c->in_cap < LG_IN_CAP_MAX) {
        c->in_cap *= 2;
        c->in = realloc(c->in, c->in_cap);
        if (c->in == NULL)
            abort(); /* a load generator out of memory has nothing left to measure */
    }
    struct io_uring_sqe *s = sqe(e);
    io_uring_prep_recv(s, c->fd, c->in + c->in_len, c->in_cap - c->in_len - 1, 0);
    io_uring_sqe_set_data64(s, udata(e, c, OP_RECV));
}

/* ---- accounting ---- */

static bool measured(const engine_t *e, uint64_t intended_ns)
{
    if (e->run->num_setup > 0)
        return true;
    return intended_ns >= e->warm_ns && intended_ns < e->end_ns;
}

static void account(engine_t *e, conn_t *c, int status)
{
    uint64_t now = lg_now_ns();
    if (!measured(e, c->intended_ns))
        return;
    lg_stats_t *st = &e->res->kinds[c->kind];
    bool ok = status >= 200 && status < 300;
    ++st->status[status >= 100 && status < 600 ? status / 100 : 0];
    if (ok) {
        ++st->ok;
        st->ok_bytes += c->head_len + c->body_len;
        lg_hist_record(&st->hist, (now - c->intended_ns) / 1000);
    } else {
        ++st->errors;
    }
    if (e->res->timeline != NULL && now >= e->warm_ns) {
        size_t slot = (size_t)((now - e->warm_ns) / LG_TICK_NS);
        if (slot < e->res->timeline_len) {
            uint64_t us = (now - c->intended_ns) / 1000;
            if (ok)
                ++e->res->timeline[slot];
            else
                ++e->res->timeline_err[slot];
            if (ok && us > e->res->timeline_max_us[slot])
                e->res->timeline_max_us[slot] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
        }
    }
}

/* A failed connection: its task fails, and the connection is opened again. */
static void conn_fail(engine_t *e, conn_t *c)
{
    if (c->state == CS_CONNECTING)
        ++e->res->connect_failures;
    if (c->state == CS_BUSY) {
        account(e, c, 0);
        --e->busy;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = CS_DOWN;
    c->retry_at_ns = lg_now_ns() + LG_RECONNECT_NS;
}

/* ---- tasks: what each kind sends, and what it does with the answers ---- */

static lg_kind_t pick_kind(engine_t *e)
{
    uint64_t r = rnd(e) % (e->mix_total > 0 ? e->mix_total : 1);
    for (int k = 0; k != LG_NUM_KINDS; ++k) {
        if (r < e->run->mix[k])
            return (lg_kind_t)k;
        r -= e->run->mix[k];
    }
    return LG_HELLO;
}

/* A random signed-in user (with intents when asked); UINT32_MAX when there is none. */
static uint32_t pick_user(engine_t *e, bool with_intents)
{
    for (int tries = 0; e->num_signed_in > 0 && tries != 16; ++tries) {
        uint32_t u = e->signed_in[rnd(e) % e->num_signed_in];
        if (!with_intents || e->w->users[u].num_intents > 0)
            return u;
    }
    return UINT32_MAX;
}

/* Appends `len` bytes at *n when they fit; false (and *n past the end) when they do not. */
static bool out_put(char *out, size_t *n, const char *s, size_t len)
{
    if (len >= LG_OUT_CAP - *n) {
        *n = LG_OUT_CAP;
        return false;
    }
    memcpy(out + *n, s, len);
    *n += len;
    return true;
}

#define OUT_LIT(out, n, lit) out_put(out, n, lit, sizeof(lit) - 1)

/* Writes the request into the connection's buffer and sends it. False when it does not fit.
 * Pieces are copied rather than formatted: snprintf's format walk was the generator's largest
 * cost in user space at 90k requests/s. */
static bool send_request(engine_t *e, conn_t *c, const char *method, const char *path,
                         const char *token, const char *body)
{
    size_t n = 0, body_len = body != NULL ? strlen(body) : 0;
    char len_str[24];
    size_t len_str_len = (size_t)snprintf(len_str, sizeof(len_str), "%zu", body_len);
    bool ok = out_put(c->out, &n, method, strlen(method)) && OUT_LIT(c->out, &n, " ") &&
              out_put(c->out, &n, path, strlen(path)) &&
              OUT_LIT(c->out, &n, " HTTP/1.1\r\nHost: localhost\r\n");
    /* as a browser asks the API; a node's JSON-RPC client is no browser */
    const char *coding = c->kind != LG_RAWTX ? e->run->accept_encoding : NULL;
    if (ok && coding != NULL && coding[0] != '\0')
        ok = OUT_LIT(c->out, &n, "Accept-Encoding: ") &&
             out_put(c->out, &n, coding, strlen(coding)) && OUT_LIT(c->out, &n, "\r\n");
    if (ok && token != NULL)
        ok = OUT_LIT(c->out, &n, "Authorization: Bearer ") &&
             out_put(c->out, &n, token, strlen(token)) && OUT_LIT(c->out, &n, "\r\n");
    if (ok && body != NULL)
        ok = OUT_LIT(c->out, &n, "Content-Type: application/json\r\nContent-Length: ") &&
             out_put(c->out, &n, len_str, len_str_len) && OUT_LIT(c->out, &n, "\r\n\r\n") &&
             out_put(c->out, &n, body, body_len);
    else if (ok)
        ok = OUT_LIT(c->out, &n, "\r\n");
    if (!ok)
        return false;
    c->out_len = n;
    c->out_sent = 0;
    c->in_len = c->head_len = c->body_len = 0;
    c->content_length = 0;
    c->status = 0;
    c->close_after = false;
    memset(&c->chunked, 0, sizeof(c->chunked));
    c->deadline_ns = lg_now_ns() + (uint64_t)e->run->timeout_ms * 1000000ull;
    conn_send(e, c);
    return true;
}

static bool begin_create(engine_t *e, conn_t *c, uint32_t user)
{
    char *body = NULL;
    bool pooled = user == UINT32_MAX && e->next_body < e->run->num_bodies;
    if (pooled) {
        const lg_body_t *b = &e->run->bodies[e->next_body++];
        user = b->user;
        body = b->body; /* owned by the run */
    } else {
        if (user == UINT32_MAX)
            user = pick_user(e, false);
        if (user == UINT32_MAX)
            return false;
        body = lg_create_body(e->w, &e->w->users[user]);
        ++e->res->signed_inline;
    }
    c->user = user;
    bool ok =
        body != NULL && send_request(e, c, "POST", "/api/intents", e->w->users[user].token, body);
    if (!pooled)
        free(body);
    return ok;
}

static bool begin_rawtx(engine_t *e, conn_t *c)
{
    if (e->next_rawtx == e->run->num_raw_txs) {
        /* the pool is used up: the run ends here, and its rate is over the time it had */
        if (!e->stopping)
            e->cut_ns = lg_now_ns();
        e->stopping = true;
        return false;
    }
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_sendRawTransaction\","
             "\"params\":[\"%s\"]}",
             e->run->raw_txs[e->next_rawtx++]);
    return send_request(e, c, "POST", "/", NULL, body);
}

/* Sends the first request of a task of `kind` for `user` (UINT32_MAX: a random one). */
static bool begin_request(engine_t *e, conn_t *c, lg_kind_t kind, uint32_t user)
{
    char path[128], body[128];
    switch (kind) {
    case LG_HELLO:
        return send_request(e, c, "GET", e->run->hello_path, NULL, NULL);
    case LG_GET:
    case LG_LIST:
        if (user == UINT32_MAX && (user = pick_user(e, kind == LG_GET)) == UINT32_MAX)
            return false;
        c->user = user;
        lg_user_t *u = &e->w->users[user];
        if (kind == LG_GET)
            snprintf(path, sizeof(path), "/api/intents/%s", u->intent_ids[rnd(e) % u->num_intents]);
        else
            snprintf(path, sizeof(path), "/api/intents?limit=20");
        return send_request(e, c, "GET", path, u->token, NULL);
    case LG_CREATE:
        return begin_create(e, c, user);
    case LG_SIGNIN:
        c->user = user != UINT32_MAX ? user : (uint32_t)(rnd(e) % e->w->num_users);
        snprintf(body, sizeof(body), "{\"address\":\"%s\"}", e->w->users[c->user].address_str);
        return send_request(e, c, "POST", "/api/auth/nonce", NULL, body);
    case LG_RAWTX:
        return begin_rawtx(e, c);
    default:
        return false;
    }
}

static void task_begin(engine_t *e, conn_t *c, lg_kind_t kind, uint32_t user, uint64_t intended)
{
    uint64_t now = lg_now_ns();
    c->kind = kind;
    c->step = 0;
    c->intended_ns = intended;
    c->state = CS_BUSY;
    ++e->busy;
    if (measured(e, intended) && now > intended && (now - intended) / 1000 > e->res->late_max_us)
        e->res->late_max_us = (now - intended) / 1000;
    if (e->run->rate_per_s > 0 && measured(e, intended))
        lg_hist_record(&e->res->send_late, now > intended ? (now - intended) / 1000 : 0);
    if (!begin_request(e, c, kind, user)) {
        /* nothing to send (no users, pool used up): not the server's failure */
        ++e->res->dropped;
        --e->busy;
        c->state = CS_IDLE;
    }
}

static json_t *body_json(const conn_t *c)
{
    return json_loadb(c->in + c->head_len, c->body_len, 0, NULL);
}

/* The signed nonce goes back as the sign-in; the session is kept. */
static bool signin_step(engine_t *e, conn_t *c)
{
    lg_user_t *u = &e->w->users[c->user];
    json_t *j = body_json(c);
    bool sent = false;
    if (c->step == 0) {
        char *body = lg_signin_body(u, json_string_value(json_object_get(j, "message")) ?: "");
        c->step = 1;
        sent = body != NULL && send_request(e, c, "POST", "/api/auth/wallet", NULL, body);
        free(body);
        if (!sent)
            c->status = 0;
    } else if (json_string_value(json_object_get(j, "token")) != NULL) {
        free(u->token);
        u->token = strdup(json_string_value(json_object_get(j, "token")));
    }
    json_decref(j);
    return sent;
}

/* Called with a complete answer: true when the task sent its next request. */
static bool task_step(engine_t *e, conn_t *c)
{
    bool ok = c->status >= 200 && c->status < 300;
    if (c->kind == LG_SIGNIN && ok)
        return signin_step(e, c);
    if (c->kind == LG_CREATE && ok && e->run->num_setup > 0) {
        lg_user_t *u = &e->w->users[c->user];
        json_t *j = body_json(c);
        const char *id = json_string_value(json_object_get(j, "id"));
        if (id != NULL && u->num_intents < LG_USER_INTENTS_MAX)
            snprintf(u->intent_ids[u->num_intents++], sizeof(u->intent_ids[0]), "%s", id);
        json_decref(j);
    }
    /* a create's answer carries the new intent's id: a search for it rather than a parse, since
     * the generator checks the answer's shape (the API tests check the rest) */
    if (c->kind == LG_CREATE && ok && e->run->num_setup == 0 &&
        memmem(c->in + c->head_len, c->body_len, "\"id\":\"", 6) == NULL)
        c->status = 0;
    /* a JSON-RPC error comes with 200: it is a refused transaction all the same */
    if (c->kind == LG_RAWTX && ok && memmem(c->in + c->head_len, c->body_len, "\"error\"", 7))
        c->status = 0;
    return false;
}

/* Frames the answer in c->in: 1 complete, 0 more bytes needed, -1 malformed or too large. */
static int parse_head(conn_t *c)
{
    struct phr_header hdrs[32];
    size_t num_hdrs = 32, msg_len;
    int minor, status;
    const char *msg;
    int r =
        phr_parse_response(c->in, c->in_len, &minor, &status, &msg, &msg_len, hdrs, &num_hdrs, 0);
    if (r == -2)
        return 0;
    if (r < 0)
        return -1;
    c->head_len = (size_t)r;
    c->status = status;
    c->close_after = minor == 0;
    bool framed = status == 204 || status == 304;
    for (size_t i = 0; i != num_hdrs; ++i) {
        const struct phr_header *h = &hdrs[i];
        if (h->name_len == 14 && strncasecmp(h->name, "content-length", 14) == 0) {
            c->content_length = strtoll(h->value, NULL, 10);
            framed = true;
        } else if (h->name_len == 17 && strncasecmp(h->name, "transfer-encoding", 17) == 0) {
            c->content_length = -1;
            framed = true;
        } else if (h->name_len == 10 && strncasecmp(h->name, "connection", 10) == 0) {
            c->close_after = h->value_len == 5 && strncasecmp(h->value, "close", 5) == 0;
        }
    }
    return framed ? 1 : -1; /* read-until-close bodies are not something our servers send */
}

static int parse_response(conn_t *c)
{
    if (c->head_len == 0) {
        int r = parse_head(c);
        if (r <= 0)
            return r;
    }
    if (c->content_length >= 0) {
        if (c->in_len - c->head_len < (size_t)c->content_length)
            return 0;
        c->body_len = (size_t)c->content_length;
        return 1;
    }
    size_t size = c->in_len - c->head_len - c->body_len;
    ssize_t r = phr_decode_chunked(&c->chunked, c->in + c->head_len + c->body_len, &size);
    c->body_len += size;
    c->in_len = c->head_len + c->body_len;
    return r == -1 ? -1 : r == -2 ? 0 : 1;
}

/* ---- scheduling ---- */

static bool open_loop(const engine_t *e)
{
    return e->run->rate_per_s > 0 && e->run->num_setup == 0;
}

static void dispatch(engine_t *e, conn_t *c)
{
    if (c->state != CS_IDLE)
        return;
    /* nothing new starts after the end, not even between two looks at the clock: a task sent
     * then would change the server without being counted. But an open loop's arrivals that fell
     * due before the end and wait for a free connection are part of the measured window: they
     * still go out, their latency counted from when they were due (left unsent, they were
     * reported as unanswered: a few at the end of every run at 70k/s) */
    if (e->run->num_setup == 0 && lg_now_ns() >= e->end_ns)
        e->stopping = true;
    if (e->stopping && !(open_loop(e) && e->bl_len > 0))
        return;
    if (e->run->num_setup > 0) {
        if (e->next_setup < e->run->num_setup) {
            size_t i = e->next_setup++;
            task_begin(e, c, e->run->setup_kinds[i], (uint32_t)(i % e->w->num_users), lg_now_ns());
        }
    } else if (e->run->rate_per_s <= 0) {
        task_begin(e, c, pick_kind(e), UINT32_MAX, lg_now_ns());
    } else if (e->bl_len > 0) {
        uint64_t intended = e->backlog[e->bl_head];
        e->bl_head = (e->bl_head + 1) % LG_BACKLOG_MAX;
        --e->bl_len;
        task_begin(e, c, pick_kind(e), UINT32_MAX, intended);
    }
    if (c->state != CS_IDLE)
        return;
    c->idle_since_ns = lg_now_ns();
    if (open_loop(e) && !c->in_idle_queue) {
        /* at most one entry per connection, so `connections` entries always suffice */
        c->in_idle_queue = true;
        e->idle[(e->idle_head + e->idle_len++) % e->run->connections] = (uint32_t)(c - e->conns);
    }
}

/* Open loop: the backlog goes to the connections idle the longest, so that every connection
 * stays in use (h2o closes one idle for 10 s, and a request sent just then would fail). */
static void drain_backlog(engine_t *e)
{
    while (e->bl_len > 0 && e->idle_len > 0) {
        conn_t *c = &e->conns[e->idle[e->idle_head]];
        e->idle_head = (e->idle_head + 1) % e->run->connections;
        --e->idle_len;
        c->in_idle_queue = false;
        dispatch(e, c); /* no-op unless it is still idle */
    }
}

static void on_recv(engine_t *e, conn_t *c, int res)
{
    if (res <= 0) {
        conn_fail(e, c);
        return;
    }
    c->in_len += (size_t)res;
    int done = parse_response(c);
    if (done < 0) {
        conn_fail(e, c);
    } else if (done == 0) {
        if (c->in_len + 1 >= c->in_cap && c->in_cap >= LG_IN_CAP_MAX)
            conn_fail(e, c); /* bounded: a runaway answer fails its task */
        else
            conn_recv(e, c);
    } else if (!task_step(e, c)) {
        /* the task is over: account, then the connection takes the next one */
        account(e, c, c->status);
        --e->busy;
        c->state = CS_IDLE;
        if (c->close_after) {
            close(c->fd);
            c->fd = -1;
            conn_open(e, c);
        } else {
            dispatch(e, c);
        }
    }
}

static void on_cqe(engine_t *e, struct io_uring_cqe *cqe)
{
    uint64_t data = io_uring_cqe_get_data64(cqe);
    conn_t *c = &e->conns[data >> 8];
    switch ((int)(data & 0xff)) {
    case OP_TICK:
        /* -ETIME is a tick; anything else means the kernel cannot repeat timeouts */
        if (cqe->res != -ETIME)
            e->tick = TICK_UNSUPPORTED;
        else if (!(cqe->flags & IORING_CQE_F_MORE))
            e->tick = TICK_OFF; /* it ended: armed again by the loop */
        break;
    case OP_CONNECT:
        if (cqe->res < 0) {
            conn_fail(e, c);
        } else {
            c->state = CS_IDLE;
            dispatch(e, c);
        }
        break;
    case OP_SEND:
        if (cqe->res <= 0) {
            conn_fail(e, c);
        } else if ((c->out_sent += (size_t)cqe->res) < c->out_len) {
            conn_send(e, c);
        } else {
            conn_recv(e, c);
        }
        break;
    case OP_RECV:
        on_recv(e, c, cqe->res);
        break;
    }
}

/* Every 100 ms: requests past their deadline are cut (shutdown makes their pending recv
 * complete, which fails the task), connections that failed are opened again. O(connections). */
static void scan(engine_t *e, uint64_t now)
{
    if (e->run->progress && now >= e->next_progress_ns) {
        uint64_t done = 0;
        for (int k = 0; k != LG_NUM_KINDS; ++k)
            done += e->res->kinds[k].ok + e->res->kinds[k].errors;
        double total_s = e->run->warmup_s + e->run->duration_s;
        fprintf(stderr, "\r\033[K  %s %.0f/%.0f s, %llu answered", e->run->name,
                (double)(now - e->start_ns) / 1e9, total_s, (unsigned long long)done);
        e->next_progress_ns = now + 1000000000ull;
    }
    for (uint32_t i = 0; i != e->run->connections; ++i) {
        conn_t *c = &e->conns[i];
        if (c->state == CS_BUSY && now > c->deadline_ns) {
            shutdown(c->fd, SHUT_RDWR);
            c->deadline_ns = UINT64_MAX;
        } else if (c->state == CS_DOWN && now >= c->retry_at_ns && !e->stopping) {
            conn_open(e, c);
        } else if (c->state == CS_IDLE && now - c->idle_since_ns > LG_IDLE_REOPEN_NS) {
            /* idle for long (a low rate): a fresh connection rather than one h2o may be closing */
            close(c->fd);
            c->fd = -1;
            conn_open(e, c);
        } else if (c->state == CS_IDLE && !c->in_idle_queue) {
            dispatch(e, c);
        }
    }
}

/* Open loop: every arrival due by `now` joins the backlog, then idle connections take them. */
static uint64_t arrivals(engine_t *e, uint64_t now, uint64_t *n)
{
    double period_ns = 1e9 / e->run->rate_per_s;
    uint64_t next = e->start_ns + (uint64_t)((double)*n * period_ns);
    for (; next <= now && next < e->end_ns;
         next = e->start_ns + (uint64_t)((double)*n * period_ns)) {
        ++*n;
        if (e->bl_len == LG_BACKLOG_MAX) {
            ++e->res->dropped;
            continue;
        }
        e->backlog[(e->bl_head + e->bl_len++) % LG_BACKLOG_MAX] = next;
    }
    drain_backlog(e);
    return next;
}

static bool finished(engine_t *e, uint64_t now)
{
    if (e->run->num_setup > 0)
        return e->next_setup == e->run->num_setup && e->busy == 0;
    if (now >= e->end_ns)
        e->stopping = true;
    bool drained = e->busy == 0 && (!open_loop(e) || e->bl_len == 0);
    return e->stopping && (drained || now >= e->end_ns + LG_DRAIN_NS);
}

/* Why a tick: waiting with a timeout arms and cancels a kernel timer on every turn of the loop,
 * which in a VM costs about a third of the generator's CPU at 38k requests/s (a timer
 * programmed per turn, on cores the server needs). While requests are in flight an answer wakes
 * the loop every few tens of microseconds anyway and the arrivals due then go out, so the loop
 * waits for answers only, and one repeating timeout armed once bounds how late a due arrival can
 * be sent to LG_PACE_NS when answers are slow. Lateness still counts against the server (latency
 * runs from the intended time) and is reported as send_late. With nothing in flight the loop
 * waits for the next arrival exactly, as before. */
static bool ticking(engine_t *e)
{
    if (e->tick == TICK_OFF) {
        struct io_uring_sqe *s = sqe(e);
        /* closed loop: nothing is due between answers, so the tick only runs the scan; waking
         * every 100 us for nothing costs a context switch each (half of the generator's CPU per
         * create at 4-8k creates/s) */
        e->tick_ts = (struct __kernel_timespec){
            .tv_nsec = (long long)(open_loop(e) ? LG_PACE_NS : LG_TICK_NS)};
        io_uring_prep_timeout(s, &e->tick_ts, 0, IORING_TIMEOUT_MULTISHOT);
        io_uring_sqe_set_data64(s, udata(e, e->conns, OP_TICK));
        e->tick = TICK_ARMED;
    }
    return e->tick == TICK_ARMED && e->busy > 0;
}

/* The machine's CPU counters as the measured window opens and closes (the first turn of the
 * loop past each edge: an answer or the tick wakes it within LG_PACE_NS while requests are in
 * flight). A reading that fails leaves that reading empty, which the report shows as unknown. */
static void read_machine(engine_t *e, uint64_t now)
{
    if (e->run->num_setup > 0)
        return;
    if (!e->machine_from && now >= e->warm_ns) {
        e->machine_from = true;
        lg_machine_read(&e->res->machine_from);
    }
    if (!e->machine_to && now >= e->end_ns) {
        e->machine_to = true;
        lg_machine_read(&e->res->machine_to);
    }
}

static void loop(engine_t *e)
{
    uint64_t n = 0, next_arrival = UINT64_MAX, next_scan = 0;
    for (;;) {
        uint64_t now = lg_now_ns();
        read_machine(e, now);
        if (open_loop(e))
            next_arrival = arrivals(e, now, &n);
        if (finished(e, now))
            break;
        if (now >= next_scan) {
            scan(e, now);
            next_scan = now + LG_TICK_NS;
        }
        uint64_t wake = next_arrival < next_scan ? next_arrival : next_scan;
        uint64_t wait_ns = wake > now ? wake - now : 0;
        struct __kernel_timespec ts = {.tv_sec = (long long)(wait_ns / 1000000000ull),
                                       .tv_nsec = (long long)(wait_ns % 1000000000ull)};
        struct io_uring_cqe *cqe;
        int rc;
        if (ticking(e))
            rc = io_uring_submit_and_wait(&e->ring, 1); /* an answer or the tick wakes it */
        else
            rc = io_uring_submit_and_wait_timeout(&e->ring, &cqe, 1, &ts, NULL);
        if (rc < 0 && rc != -ETIME && rc != -EINTR)
            break;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&e->ring, head, cqe)
        {
            on_cqe(e, cqe);
            ++seen;
        }
        io_uring_cq_advance(&e->ring, seen);
    }
}

/* At the end: measured tasks still queued or in flight were never answered; counted apart, so
 * that an overloaded open-loop run cannot look good by answering only what it managed. */
static void count_unanswered(engine_t *e)
{
    for (size_t i = 0; i != e->bl_len; ++i)
        if (measured(e, e->backlog[(e->bl_head + i) % LG_BACKLOG_MAX]))
            ++e->res->unanswered;
    for (uint32_t i = 0; i != e->run->connections; ++i)
        if (e->conns[i].state == CS_BUSY && measured(e, e->conns[i].intended_ns))
            ++e->res->unanswered;
}

static bool engine_init(engine_t *e, lg_world_t *w, const lg_run_t *run, lg_result_t *res)
{
    *e = (engine_t){.w = w, .run = run, .res = res, .rng = w->seed * 2654435761u + 1};
    unsigned entries = 64;
    while (entries < 2 * run->connections + 8)
        entries *= 2;
    /* completions run as task work in this thread's own io_uring_enter rather than through
     * reschedule interrupts and a locked list per answer (one thread uses the ring); older
     * kernels take the next best setup */
    static const unsigned flags[] = {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
                                     IORING_SETUP_COOP_TASKRUN, 0};
    int rc = -1;
    for (size_t i = 0; rc != 0 && i != sizeof(flags) / sizeof(flags[0]); ++i)
        rc = io_uring_queue_init(entries, &e->ring, flags[i]);
    if (rc != 0)
        return false;
    e->ring_ok = true;
    e->conns = calloc(run->connections, sizeof(*e->conns));
    e->signed_in = calloc(w->num_users + 1, sizeof(*e->signed_in));
    e->idle = calloc(run->connections, sizeof(*e->idle));
    if (run->rate_per_s > 0)
        e->backlog = malloc(LG_BACKLOG_MAX * sizeof(*e->backlog));
    if (e->conns == NULL || e->signed_in == NULL || e->idle == NULL ||
        (run->rate_per_s > 0 && e->backlog == NULL))
        return false;
    for (size_t i = 0; i != w->num_users; ++i)
        if (w->users[i].token != NULL)
            e->signed_in[e->num_signed_in++] = (uint32_t)i;
    for (int k = 0; k != LG_NUM_KINDS; ++k)
        e->mix_total += run->mix[k];
    for (uint32_t i = 0; i != run->connections; ++i) {
        conn_t *c = &e->conns[i];
        c->fd = -1;
        c->out = malloc(LG_OUT_CAP);
        c->in_cap = 16384;
        c->in = malloc(c->in_cap);
        if (c->out == NULL || c->in == NULL)
            return false;
    }
    return true;
}

static void engine_free(engine_t *e)
{
    for (uint32_t i = 0; e->conns != NULL && i != e->run->connections; ++i) {
        if (e->conns[i].fd >= 0)
            close(e->conns[i].fd);
        free(e->conns[i].out);
        free(e->conns[i].in);
    }
    free(e->conns);
    free(e->signed_in);
    free(e->idle);
    free(e->backlog);
    if (e->ring_ok)
        io_uring_queue_exit(&e->ring);
}

/* The process's CPU time so far: the generator shares the server's cores, so what it uses is
 * reported with its figures. */
static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

bool lg_engine_run(lg_world_t *w, const lg_run_t *run, lg_result_t *res)
{
    engine_t e;
    memset(res, 0, sizeof(*res));
    if (!engine_init(&e, w, run, res)) {
        fprintf(stderr, "loadgen: cannot set up the ring or the connections' memory\n");
        engine_free(&e);
        return false;
    }
    if (run->num_setup == 0) {
        res->timeline_len = (size_t)(run->duration_s * 1e9 / (double)LG_TICK_NS + 0.5);
        res->timeline = calloc(res->timeline_len, sizeof(uint32_t));
        res->timeline_err = calloc(res->timeline_len, sizeof(uint32_t));
        res->timeline_max_us = calloc(res->timeline_len, sizeof(uint32_t));
        if (res->timeline == NULL || res->timeline_err == NULL || res->timeline_max_us == NULL)
            res->timeline_len = 0; /* no timeline rather than no run */
    }
    e.start_ns = lg_now_ns();
    e.warm_ns = e.start_ns + (uint64_t)(run->warmup_s * 1e9);
    e.end_ns = e.warm_ns + (uint64_t)(run->duration_s * 1e9);
    double cpu0_s = cpu_seconds();
    for (uint32_t i = 0; i != run->connections; ++i)
        conn_open(&e, &e.conns[i]);
    loop(&e);
    if (run->num_setup == 0 && !e.machine_to) /* it ended early: a pool ran out */
        lg_machine_read(&res->machine_to);
    res->cpu_s = cpu_seconds() - cpu0_s;
    count_unanswered(&e);
    uint64_t stop_ns = lg_now_ns();
    if (run->progress)
        fprintf(stderr, "\r\033[K");
    res->measured_s = run->duration_s;
    if (run->num_setup > 0)
        res->measured_s = (double)(stop_ns - e.start_ns) / 1e9;
    else if (e.cut_ns != 0 && e.cut_ns < e.end_ns)
        res->measured_s = e.cut_ns > e.warm_ns ? (double)(e.cut_ns - e.warm_ns) / 1e9 : 1e-9;
    engine_free(&e);
    return true;
}
