#include "store/redis.h"
#include <assert.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "runtime/io.h"
#include "runtime/log.h"

enum { REDIS_MSG_START = RT_MSG_USER - 30, REDIS_MSG_COMMAND, REDIS_MSG_SUBSCRIBE };
enum { TAG_POLL_IN = 1, TAG_POLL_OUT, TAG_RECONNECT };

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define MAX_OUTSTANDING 4096
#define MAX_CHANNELS 32

typedef struct st_redis_target_t {
    char host[128];
    int port;
    int db;
    char password[128];
} redis_target_t;

/* REDIS_MSG_COMMAND payload: argc, lengths, then the argument bytes. */
typedef struct st_command_t {
    uint32_t argc;
    uint32_t len[STORE_REDIS_MAX_ARGS];
    char data[];
} command_t;

typedef struct st_subscription_t {
    char channel[64];
    rt_actor_t *target; /* holds a reference */
} subscription_t;

typedef struct st_redis_conn_t {
    store_redis_t *owner;
    rt_actor_t *self;
    redisAsyncContext *ac;
    bool connected, reading, writing;
    _Atomic int up; /* read by other threads */
    uint32_t generation;
    rt_io_op_t poll_in, poll_out;
    uint64_t backoff_ms;
    rt_actor_timer_t reconnect_timer;
    uint32_t outstanding;
    bool is_subscriber;
    subscription_t subs[MAX_CHANNELS];
    int nsubs;
} redis_conn_t;

struct st_store_redis_t {
    rt_runtime_t *rt;
    redis_target_t target;
    rt_actor_t **conns; /* one per worker */
    rt_actor_t *subscriber;
    _Atomic int stopped; /* connection actors that have closed, for a synchronous free */
};

/* ---- parsing redis://[:password@]host[:port][/db] ---- */

static bool parse_url(const char *url, redis_target_t *t)
{
    memset(t, 0, sizeof(*t));
    t->port = 6379;
    if (strncmp(url, "redis://", 8) != 0)
        return false;
    const char *p = url + 8, *at = strchr(p, '@');
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon != NULL ? colon + 1 : p;
        if ((size_t)(at - pw) >= sizeof(t->password))
            return false;
        memcpy(t->password, pw, (size_t)(at - pw));
        p = at + 1;
    }
    size_t host_len = strcspn(p, ":/");
    if (host_len == 0 || host_len >= sizeof(t->host))
        return false;
    memcpy(t->host, p, host_len);
    p += host_len;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port <= 0 || port > 65535)
            return false;
        t->port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1] != '\0') {
        char *end;
        long db = strtol(p + 1, &end, 10);
        if (*end != '\0' || db < 0 || db > 1000)
            return false;
        t->db = (int)db;
    }
    return true;
}

/* ---- replies ---- */

static size_t text_size(const redisReply *r)
{
    size_t size = r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
                          r->type == REDIS_REPLY_ERROR
                      ? r->len + 1
                      : 0;
    if (r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i != r->elements && i != STORE_REDIS_MAX_ELEMENTS; ++i)
            size += text_size(r->element[i]);
    return size;
}

static store_redis_type_t type_of(const redisReply *r)
{
    switch (r->type) {
    case REDIS_REPLY_INTEGER:
        return STORE_REDIS_INTEGER;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        return STORE_REDIS_STRING;
    case REDIS_REPLY_ARRAY:
        return STORE_REDIS_ARRAY;
    default:
        return STORE_REDIS_NIL;
    }
}

/* Copies a hiredis reply (freed by hiredis after the callback) into a message. */
static rt_msg_t *reply_message(store_redis_status_t status, const redisReply *r)
{
    size_t text = r != NULL ? text_size(r) : 0;
    rt_msg_t *msg = rt_msg_new(STORE_REDIS_MSG_REPLY, sizeof(store_redis_reply_t) + text);
    store_redis_reply_t *out = rt_msg_payload(msg);
    out->status = status;
    if (r == NULL)
        return msg;
    out->type = type_of(r);
    out->integer = r->integer;
    if (r->type == REDIS_REPLY_ERROR)
        out->status = STORE_REDIS_ERROR;
    size_t pos = 0;
    if (out->type == STORE_REDIS_STRING) {
        memcpy(out->text, r->str, r->len);
        out->str_len = (uint32_t)r->len;
        pos = r->len + 1;
    }
    for (size_t i = 0;
         r->type == REDIS_REPLY_ARRAY && i != r->elements && i != STORE_REDIS_MAX_ELEMENTS; ++i) {
        const redisReply *e = r->element[i];
        store_redis_element_t *el = &out->elements[out->nelements++];
        el->type = type_of(e);
        el->integer = e->integer;
        if (el->type == STORE_REDIS_STRING) {
            memcpy(out->text + pos, e->str, e->len);
            el->str_offset = (uint32_t)pos;
            el->str_len = (uint32_t)e->len;
            pos += e->len + 1;
        }
    }
    return msg;
}

static void answer(rt_msg_t *request, store_redis_status_t status, const redisReply *r)
{
    rt_actor_reply(request, reply_message(status, r));
    rt_msg_free(request);
}

/* ---- the event-loop adapter: hiredis asks for read/write interest, the ring delivers ---- */

static uint64_t tag(redis_conn_t *c, int what)
{
    return ((uint64_t)c->generation << 8) | (uint64_t)what;
}

static void arm(redis_conn_t *c)
{
    if (c->ac == NULL)
        return;
    int fd = c->ac->c.fd;
    if (c->reading && c->poll_in == 0)
        c->poll_in = rt_io_poll(c->self, fd, POLLIN, tag(c, TAG_POLL_IN));
    if (c->writing && c->poll_out == 0)
        c->poll_out = rt_io_poll(c->self, fd, POLLOUT, tag(c, TAG_POLL_OUT));
}

static void ev_add_read(void *data)
{
    redis_conn_t *c = data;
    c->reading = true;
    arm(c);
}

static void ev_del_read(void *data)
{
    ((redis_conn_t *)data)->reading = false; /* an outstanding poll is ignored when it fires */
}

static void ev_add_write(void *data)
{
    redis_conn_t *c = data;
    c->writing = true;
    arm(c);
}

static void ev_del_write(void *data)
{
    ((redis_conn_t *)data)->writing = false;
}

static void ev_cleanup(void *data)
{
    redis_conn_t *c = data;
    if (c->poll_in != 0)
        rt_io_cancel(c->self, c->poll_in);
    if (c->poll_out != 0)
        rt_io_cancel(c->self, c->poll_out);
    c->poll_in = c->poll_out = 0;
    c->reading = c->writing = false;
    ++c->generation; /* completions of the old socket are ignored */
}

/* ---- connection life cycle ---- */

static void schedule_reconnect(redis_conn_t *c)
{
    c->backoff_ms = c->backoff_ms == 0 ? BACKOFF_MIN_MS : c->backoff_ms * 2;
    if (c->backoff_ms > BACKOFF_MAX_MS)
        c->backoff_ms = BACKOFF_MAX_MS;
    uint64_t delay = c->backoff_ms / 2 + (uint64_t)random() % (c->backoff_ms / 2 + 1);
    rt_actor_timer_start(c->self, &c->reconnect_timer, delay, TAG_RECONNECT);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    redis_conn_t *c = ac->ev.data;
    if (c->connected && c->owner != NULL)
        rt_log_warn("redis", "connection lost: %s", status == REDIS_OK ? "closed" : ac->errstr);
    c->ac = NULL; /* hiredis frees the context after this returns */
    c->connected = false;
    atomic_store(&c->up, 0);
    if (c->owner != NULL) /* NULL: stopping, no reconnect */
        schedule_reconnect(c);
}

static void subscribe_all(redis_conn_t *c);

static void on_connect(const redisAsyncContext *ac, int status)
{
    redis_conn_t *c = ac->ev.data;
    if (status != REDIS_OK) {
        /* hiredis 0.14 frees the context after a failed connect without calling
         * on_disconnect (it was never connected): retry from here */
        c->ac = NULL;
        if (c->owner != NULL)
            schedule_reconnect(c);
        return;
    }
    c->connected = true;
    atomic_store(&c->up, 1);
    if (c->backoff_ms != 0)
        rt_log_info("redis", "connected again");
    c->backoff_ms = 0;
    if (c->is_subscriber)
        subscribe_all(c);
}

static void connect_now(redis_conn_t *c)
{
    redis_target_t *t = &c->owner->target;
    redisAsyncContext *ac = redisAsyncConnect(t->host, t->port);
    if (ac == NULL || ac->err) {
        if (ac != NULL)
            redisAsyncFree(ac);
        schedule_reconnect(c);
        return;
    }
    c->ac = ac;
    ac->ev.data = c;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* queued now, sent first once connected: hiredis keeps commands in order */
    if (t->password[0] != '\0')
        redisAsyncCommand(ac, NULL, NULL, "AUTH %s", t->password);
    if (t->db != 0)
        redisAsyncCommand(ac, NULL, NULL, "SELECT %d", t->db);
    ev_add_write(c); /* the non-blocking connect completes when the socket is writable */
}

/* ---- commands ---- */

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    redis_conn_t *c = ac->ev.data;
    rt_msg_t *request = privdata;
    assert(c->outstanding > 0);
    --c->outstanding;
    /* NULL: the connection went away before the answer (hiredis flushes callbacks) */
    answer(request, r != NULL ? STORE_REDIS_OK : STORE_REDIS_UNAVAILABLE, r);
}

static void on_command(redis_conn_t *c, rt_msg_t *msg)
{
    rt_msg_keep(msg);
    if (!c->connected || c->ac == NULL) {
        answer(msg, STORE_REDIS_UNAVAILABLE, NULL);
        return;
    }
    if (c->outstanding >= MAX_OUTSTANDING) {
        answer(msg, STORE_REDIS_BUSY, NULL);
        return;
    }
    command_t *cmd = rt_msg_payload(msg);
    const char *argv[STORE_REDIS_MAX_ARGS];
    size_t lens[STORE_REDIS_MAX_ARGS], pos = 0;
    for (uint32_t i = 0; i != cmd->argc; ++i) {
        argv[i] = cmd->data + pos;
        lens[i] = cmd->len[i];
        pos += cmd->len[i];
    }
    if (redisAsyncCommandArgv(c->ac, on_reply, msg, (int)cmd->argc, argv, lens) != REDIS_OK) {
        answer(msg, STORE_REDIS_UNAVAILABLE, NULL);
        return;
    }
    ++c->outstanding;
}

/* ---- pub/sub ---- */

static void on_message(redisAsyncContext *ac, void *r, void *privdata)
{
    redis_conn_t *c = ac->ev.data;
    redisReply *reply = r;
    /* ["message", channel, payload]; subscribe confirmations are ["subscribe", ch, n] */
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        strcmp(reply->element[0]->str, "message") != 0)
        return;
    const redisReply *ch = reply->element[1], *payload = reply->element[2];
    for (int i = 0; i != c->nsubs; ++i) {
        if (strlen(c->subs[i].channel) != ch->len || memcmp(c->subs[i].channel, ch->str, ch->len))
            continue;
        rt_msg_t *msg = rt_msg_new(STORE_REDIS_MSG_PUBLISHED,
                                   sizeof(store_redis_published_t) + ch->len + payload->len + 2);
        store_redis_published_t *p = rt_msg_payload(msg);
        p->channel_len = (uint32_t)ch->len;
        p->message_len = (uint32_t)payload->len;
        memcpy(p->text, ch->str, ch->len);
        memcpy(p->text + ch->len + 1, payload->str, payload->len);
        rt_actor_send(c->subs[i].target, msg);
    }
}

static void subscribe_all(redis_conn_t *c)
{
    for (int i = 0; i != c->nsubs; ++i)
        redisAsyncCommand(c->ac, on_message, NULL, "SUBSCRIBE %s", c->subs[i].channel);
}

static void on_subscribe(redis_conn_t *c, rt_msg_t *msg)
{
    subscription_t *s = rt_msg_payload(msg);
    if (c->nsubs == MAX_CHANNELS) {
        rt_log_error("redis", "too many channels; not subscribing to %s", s->channel);
        rt_actor_release(s->target);
        return;
    }
    c->subs[c->nsubs++] = *s;
    if (c->connected)
        redisAsyncCommand(c->ac, on_message, NULL, "SUBSCRIBE %s", s->channel);
}

/* ---- the connection actor ---- */

static void on_io(redis_conn_t *c, rt_io_result_t *io)
{
    if ((io->tag >> 8) != c->generation || c->ac == NULL)
        return;
    if ((io->tag & 0xff) == TAG_POLL_IN) {
        c->poll_in = 0;
        if (c->reading)
            redisAsyncHandleRead(c->ac); /* may disconnect and free the context */
    } else {
        c->poll_out = 0;
        if (c->writing)
            redisAsyncHandleWrite(c->ac);
    }
    arm(c);
}

static void stop_conn(redis_conn_t *c)
{
    store_redis_t *owner = c->owner;
    rt_actor_timer_cancel(c->self, &c->reconnect_timer);
    c->owner = NULL; /* no reconnect from on_disconnect */
    if (c->ac != NULL)
        redisAsyncFree(c->ac); /* answers outstanding commands with NULL: UNAVAILABLE */
    c->ac = NULL;
    for (int i = 0; i != c->nsubs; ++i)
        rt_actor_release(c->subs[i].target);
    c->nsubs = 0;
    atomic_fetch_add(&owner->stopped, 1);
}

static void conn_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    redis_conn_t *c = rt_actor_state(self);
    switch (msg->type) {
    case REDIS_MSG_START:
        c->self = self;
        connect_now(c);
        break;
    case REDIS_MSG_COMMAND:
        on_command(c, msg);
        break;
    case REDIS_MSG_SUBSCRIBE:
        on_subscribe(c, msg);
        break;
    case RT_MSG_IO:
        on_io(c, rt_msg_payload(msg));
        break;
    case RT_MSG_TIMER:
        if (c->owner != NULL && c->ac == NULL)
            connect_now(c);
        break;
    case RT_MSG_STOP:
        stop_conn(c);
        break;
    }
}

static rt_actor_t *spawn_conn(store_redis_t *redis, int worker, bool subscriber)
{
    rt_actor_t *a = rt_actor_spawn(redis->rt, worker, conn_behaviour, sizeof(redis_conn_t));
    redis_conn_t *c = rt_actor_state(a);
    c->owner = redis;
    c->is_subscriber = subscriber;
    rt_actor_send(a, rt_msg_new(REDIS_MSG_START, 0));
    return a;
}

store_redis_t *store_redis_create(rt_runtime_t *rt, const char *url, char *err, size_t err_size)
{
    store_redis_t *redis = calloc(1, sizeof(*redis));
    assert(redis != NULL);
    if (url == NULL || !parse_url(url, &redis->target)) {
        snprintf(err, err_size, "REDIS_URL must look like redis://[:password@]host[:port][/db]");
        free(redis);
        return NULL;
    }
    redis->rt = rt;
    redis->conns = calloc((size_t)rt->num_workers, sizeof(rt_actor_t *));
    for (int w = 0; w != rt->num_workers; ++w)
        redis->conns[w] = spawn_conn(redis, w, false);
    redis->subscriber = spawn_conn(redis, 0, true);
    return redis;
}

void store_redis_free(store_redis_t *redis)
{
    int n = redis->rt->num_workers + 1;
    for (int w = 0; w != redis->rt->num_workers; ++w)
        rt_actor_send_stop(redis->conns[w]);
    rt_actor_send_stop(redis->subscriber);
    /* wait (bounded) until every connection has answered its commands and closed */
    for (int waited_ms = 0; atomic_load(&redis->stopped) != n && waited_ms < 10000; ++waited_ms)
        usleep(1000);
    for (int w = 0; w != redis->rt->num_workers; ++w)
        rt_actor_release(redis->conns[w]);
    rt_actor_release(redis->subscriber);
    free(redis->conns);
    free(redis);
}

static bool conn_is_up(rt_actor_t *conn)
{
    return atomic_load_explicit(&((redis_conn_t *)rt_actor_state(conn))->up,
                                memory_order_relaxed) != 0;
}

void store_redis_command(store_redis_t *redis, rt_actor_t *self, uint64_t corr, int argc,
                         const char *const *argv, const size_t *argv_len)
{
    assert(argc > 0 && argc <= STORE_REDIS_MAX_ARGS);
    size_t total = 0;
    for (int i = 0; i != argc; ++i)
        total += argv_len[i];
    rt_msg_t *msg = rt_msg_new(REDIS_MSG_COMMAND, sizeof(command_t) + total);
    command_t *cmd = rt_msg_payload(msg);
    cmd->argc = (uint32_t)argc;
    size_t pos = 0;
    for (int i = 0; i != argc; ++i) {
        cmd->len[i] = (uint32_t)argv_len[i];
        memcpy(cmd->data + pos, argv[i], argv_len[i]);
        pos += argv_len[i];
    }
    rt_worker_t *w = rt_worker_current();
    assert(w != NULL); /* commands are sent by actors */
    rt_actor_t *conn = redis->conns[w->id];
    /* this worker's connection reconnecting: borrow a live one rather than fail the command */
    for (int k = 0; !conn_is_up(conn) && k != redis->rt->num_workers; ++k)
        if (conn_is_up(redis->conns[k]))
            conn = redis->conns[k];
    rt_actor_request(self, conn, msg, corr);
}

void store_redis_subscribe(store_redis_t *redis, const char *channel, rt_actor_t *target)
{
    rt_msg_t *msg = rt_msg_new(REDIS_MSG_SUBSCRIBE, sizeof(subscription_t));
    subscription_t *s = rt_msg_payload(msg);
    snprintf(s->channel, sizeof(s->channel), "%s", channel);
    rt_actor_retain(target);
    s->target = target;
    rt_actor_send(redis->subscriber, msg);
}

bool store_redis_is_connected(store_redis_t *redis)
{
    for (int w = 0; w != redis->rt->num_workers; ++w)
        if (!conn_is_up(redis->conns[w]))
            return false;
    return conn_is_up(redis->subscriber);
}
