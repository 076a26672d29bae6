#include "net/http_client.h"
#include <errno.h>
#include <h2o.h>
#include <h2o/http1client.h>
#include <h2o/socketpool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include "net/http_server.h"
#include "net/tls_client.h"
#include "runtime/log.h"

/* Assertions that stay on in release builds: a broken invariant here means a request whose
 * owner never hears back, or a freed request still reachable from h2o. */
#define HC_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (__builtin_expect(!(cond), 0))                                                          \
            rt_log_fatal("http_client", "assertion failed: %s (%s:%d)", #cond, __FILE__,           \
                         __LINE__);                                                                \
    } while (0)

#define RETRY_AFTER_MAX_MS (3600u * 1000u)
#define INITIAL_BODY_CAP 4096

enum { REQ_WAITING, REQ_CONNECTING, REQ_SENT };

typedef struct st_endpoint_conf_t {
    char *host;      /* NUL-terminated, as in the URL */
    uint16_t port;   /* resolved default included */
    char *authority; /* the Host header */
    char *path;      /* the URL's path and query, "/" at least */
    bool named;      /* not an IPv4 literal: h2o resolves it on its resolver threads */
    bool tls;        /* https: net/tls_client.c speaks it over connections `pool` makes */
} endpoint_conf_t;

typedef struct st_client_worker_t client_worker_t;

/* An endpoint's state on one worker. */
typedef struct st_endpoint_t {
    const endpoint_conf_t *conf;
    h2o_socketpool_t pool;
    net_tls_pool_t tls;   /* when conf->tls */
    uint32_t active;      /* requests connecting or sent */
    uint32_t num_waiting; /* requests in `waiting` */
    h2o_linklist_t waiting;
} endpoint_t;

typedef struct st_request_t {
    client_worker_t *cw;
    endpoint_t *ep;
    rt_actor_t *actor; /* holds a reference until the response is sent */
    uint64_t id, tag;
    h2o_http1client_t *h2o; /* while h2o holds the request (connecting or sent) */
    net_tls_conn_t *tls;    /* the same for an https endpoint */
    h2o_linklist_t link;    /* in ep->waiting while REQ_WAITING */
    uint32_t heap_index;
    uint8_t state;
    bool method_is_head;
    uint32_t connect_timeout_ms;
    uint64_t started_ms, connect_deadline_ms, deadline_ms;
    int32_t status;
    uint32_t retry_after_ms;
    h2o_iovec_t reqbufs[2]; /* head, body: point into the same allocation */
    char *body;             /* the response body so far */
    size_t body_len, body_cap;
} request_t;

struct st_client_worker_t {
    net_http_client_t *client;
    void *inner_ctx;
    h2o_loop_t *loop;
    h2o_http1client_ctx_t ctx;
    h2o_timeout_t io_timeout;   /* h2o's own inactivity timeout: a safety net behind ours */
    h2o_timeout_t kick_timeout; /* zero duration: runs `pump` at the next loop turn */
    h2o_timeout_entry_t kick_entry;
    h2o_multithread_queue_t *queue; /* for h2o's resolver; NULL when no endpoint is a name */
    h2o_multithread_receiver_t getaddr_receiver;
    uint64_t lookups_started, lookups_done;
    h2o_socket_t *deadline_sock; /* a timerfd armed for the earliest deadline in `heap` */
    uint64_t armed_ms;           /* what the timerfd is set to, UINT64_MAX when disarmed */
    request_t **heap;            /* min-heap of every request held, by request_key */
    uint32_t heap_size, heap_cap;
    uint64_t next_id;
    bool draining;
    bool connect_cb_ran; /* see start_request */
    bool keep_for_resolver;
    _Atomic uint64_t stat_requests, stat_busy, stat_ok, stat_failed, stat_timeouts;
    endpoint_t endpoints[];
};

struct st_net_http_client_t {
    net_http_client_config_t config;
    endpoint_conf_t endpoints[NET_HTTP_MAX_ENDPOINTS];
    int num_endpoints;
    bool has_named;
    net_tls_ctx_t *tls_ctx; /* made with the first https endpoint */
    rt_waiter_t waiter;
    rt_waiter_t *inner;
    client_worker_t *workers[RT_MAX_WORKERS];
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *net_http_strerror(int err)
{
    switch (err) {
    case NET_HTTP_OK:
        return "ok";
    case NET_HTTP_ERR_INVALID:
        return "invalid request";
    case NET_HTTP_ERR_BUSY:
        return "busy: too many requests waiting for this endpoint";
    case NET_HTTP_ERR_SHUTDOWN:
        return "shutting down";
    case NET_HTTP_ERR_CONNECT:
        return "could not connect (refused, unreachable or unresolvable)";
    case NET_HTTP_ERR_CONNECT_TIMEOUT:
        return "connect timed out";
    case NET_HTTP_ERR_TIMEOUT:
        return "timed out";
    case NET_HTTP_ERR_CLOSED:
        return "connection closed before the response was complete";
    case NET_HTTP_ERR_BAD_RESPONSE:
        return "malformed HTTP response";
    case NET_HTTP_ERR_TOO_LARGE:
        return "response body too large";
    case NET_HTTP_ERR_UNSUPPORTED:
        return "unsupported URL scheme";
    case NET_HTTP_ERR_NO_MEMORY:
        return "out of memory";
    case NET_HTTP_ERR_TLS:
        return "TLS failed: certificate not trusted or not for this host, or no common protocol";
    default:
        return "unknown error";
    }
}

/* ---- configuration (before the runtime starts) ---- */

static uint32_t or_default(uint32_t value, uint32_t fallback)
{
    return value != 0 ? value : fallback;
}

net_http_client_t *net_http_client_create(const net_http_client_config_t *config)
{
    net_http_client_t *client = calloc(1, sizeof(*client));
    if (client == NULL)
        return NULL;
    net_http_client_config_t c = config != NULL ? *config : (net_http_client_config_t){0};
    c.max_connections = or_default(c.max_connections, 8);
    c.max_waiting = or_default(c.max_waiting, 64);
    c.max_request_bytes = or_default(c.max_request_bytes, 1u << 20);
    c.max_response_bytes = or_default(c.max_response_bytes, 8u << 20);
    c.max_timeout_ms = or_default(c.max_timeout_ms, 120000);
    c.connect_timeout_ms = or_default(c.connect_timeout_ms, 3000);
    c.timeout_ms = or_default(c.timeout_ms, 10000);
    c.idle_timeout_ms = or_default(c.idle_timeout_ms, 20000);
    if (c.connect_timeout_ms > c.max_timeout_ms)
        c.connect_timeout_ms = c.max_timeout_ms;
    if (c.timeout_ms > c.max_timeout_ms)
        c.timeout_ms = c.max_timeout_ms;
    client->config = c;
    return client;
}

static char *dup_iovec(h2o_iovec_t v)
{
    char *s = malloc(v.len + 1);
    if (s != NULL) {
        memcpy(s, v.base, v.len);
        s[v.len] = '\0';
    }
    return s;
}

static void free_endpoint_conf(endpoint_conf_t *conf)
{
    free(conf->host);
    free(conf->authority);
    free(conf->path);
}

int net_http_client_add_endpoint(net_http_client_t *client, const char *url, char *err,
                                 size_t err_size)
{
    HC_ASSERT(client != NULL && url != NULL);
    h2o_url_t parsed;
    if (client->num_endpoints == NET_HTTP_MAX_ENDPOINTS) {
        snprintf(err, err_size, "too many endpoints (at most %d)", NET_HTTP_MAX_ENDPOINTS);
        return NET_HTTP_ERR_INVALID;
    }
    bool tls = strncmp(url, "https://", 8) == 0;
    if (h2o_url_parse(url, strlen(url), &parsed) != 0 ||
        parsed.scheme != (tls ? &H2O_URL_SCHEME_HTTPS : &H2O_URL_SCHEME_HTTP) ||
        parsed.host.len == 0 || h2o_url_host_is_unix_path(parsed.host)) {
        snprintf(err, err_size, "%s: not an http(s)://host[:port][/path] URL", url);
        return tls || strncmp(url, "http://", 7) == 0 ? NET_HTTP_ERR_INVALID
                                                      : NET_HTTP_ERR_UNSUPPORTED;
    }
    if (tls && client->tls_ctx == NULL) {
        client->tls_ctx = net_tls_ctx_create(client->config.ca_file, err, err_size);
        if (client->tls_ctx == NULL)
            return NET_HTTP_ERR_INVALID;
    }
    endpoint_conf_t *conf = &client->endpoints[client->num_endpoints];
    struct in_addr unused;
    conf->host = dup_iovec(parsed.host);
    conf->authority = dup_iovec(parsed.authority);
    conf->path = dup_iovec(parsed.path.len != 0 ? parsed.path : h2o_iovec_init(H2O_STRLIT("/")));
    conf->port = h2o_url_get_port(&parsed);
    conf->named = h2o_hostinfo_aton(parsed.host, &unused) != 0;
    conf->tls = tls;
    if (conf->host == NULL || conf->authority == NULL || conf->path == NULL) {
        free_endpoint_conf(conf);
        snprintf(err, err_size, "out of memory");
        return NET_HTTP_ERR_NO_MEMORY;
    }
    client->has_named |= conf->named;
    return client->num_endpoints++;
}

void net_http_client_free(net_http_client_t *client)
{
    if (client == NULL)
        return;
    for (int i = 0; i != RT_MAX_WORKERS; ++i) {
        client_worker_t *cw = client->workers[i];
        /* a worker whose resolver might still answer keeps its receiver alive: see dispose */
        if (cw != NULL && !cw->keep_for_resolver) {
            free(cw->heap);
            free(cw);
        }
    }
    for (int i = 0; i != client->num_endpoints; ++i)
        free_endpoint_conf(&client->endpoints[i]);
    net_tls_ctx_free(client->tls_ctx);
    free(client);
}

void net_http_client_stats(net_http_client_t *client, net_http_client_stats_t *stats)
{
    memset(stats, 0, sizeof(*stats));
    for (int i = 0; i != RT_MAX_WORKERS; ++i) {
        client_worker_t *cw = client->workers[i];
        if (cw == NULL)
            continue;
        stats->requests += atomic_load_explicit(&cw->stat_requests, memory_order_relaxed);
        stats->refused_busy += atomic_load_explicit(&cw->stat_busy, memory_order_relaxed);
        stats->completed_ok += atomic_load_explicit(&cw->stat_ok, memory_order_relaxed);
        stats->failed += atomic_load_explicit(&cw->stat_failed, memory_order_relaxed);
        stats->timeouts += atomic_load_explicit(&cw->stat_timeouts, memory_order_relaxed);
    }
}

static void count(_Atomic uint64_t *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

/* ---- deadlines: a binary min-heap of requests behind one timerfd ---- */

/* When the request must be looked at: its connect deadline while connecting (if earlier), else
 * its total deadline. */
static uint64_t request_key(const request_t *r)
{
    if (r->state == REQ_CONNECTING && r->connect_deadline_ms < r->deadline_ms)
        return r->connect_deadline_ms;
    return r->deadline_ms;
}

static void heap_swap(client_worker_t *cw, uint32_t a, uint32_t b)
{
    request_t *t = cw->heap[a];
    cw->heap[a] = cw->heap[b];
    cw->heap[b] = t;
    cw->heap[a]->heap_index = a;
    cw->heap[b]->heap_index = b;
}

/* Restores the heap order around index `i` after its key changed. O(log n). */
static void heap_fix(client_worker_t *cw, uint32_t i)
{
    while (i > 0 && request_key(cw->heap[(i - 1) / 2]) > request_key(cw->heap[i])) {
        heap_swap(cw, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    for (;;) {
        uint32_t smallest = i, l = 2 * i + 1, r = 2 * i + 2;
        if (l < cw->heap_size && request_key(cw->heap[l]) < request_key(cw->heap[smallest]))
            smallest = l;
        if (r < cw->heap_size && request_key(cw->heap[r]) < request_key(cw->heap[smallest]))
            smallest = r;
        if (smallest == i)
            return;
        heap_swap(cw, i, smallest);
        i = smallest;
    }
}

static void heap_push(client_worker_t *cw, request_t *r)
{
    HC_ASSERT(cw->heap_size < cw->heap_cap); /* admission control bounds the requests held */
    r->heap_index = cw->heap_size;
    cw->heap[cw->heap_size++] = r;
    heap_fix(cw, r->heap_index);
}

static void heap_remove(client_worker_t *cw, request_t *r)
{
    uint32_t i = r->heap_index;
    HC_ASSERT(i < cw->heap_size && cw->heap[i] == r);
    if (i != cw->heap_size - 1) {
        heap_swap(cw, i, cw->heap_size - 1);
        --cw->heap_size;
        heap_fix(cw, i);
    } else {
        --cw->heap_size;
    }
}

/* Arms the timerfd for the earliest deadline when that is sooner than what it is set to. A
 * later top is left alone: the early wake-up finds nothing due and re-arms, which costs less
 * than a timerfd_settime on every request. */
static void arm_deadline(client_worker_t *cw)
{
    if (cw->heap_size == 0)
        return;
    uint64_t due_ms = request_key(cw->heap[0]);
    if (due_ms >= cw->armed_ms)
        return;
    struct itimerspec its = {0};
    its.it_value.tv_sec = (time_t)(due_ms / 1000);
    its.it_value.tv_nsec = (long)(due_ms % 1000) * 1000000 + 1; /* never 0: that disarms */
    int ret = timerfd_settime(h2o_socket_get_fd(cw->deadline_sock), TFD_TIMER_ABSTIME, &its, NULL);
    HC_ASSERT(ret == 0);
    cw->armed_ms = due_ms;
}

/* ---- completion ---- */

static void kick(client_worker_t *cw)
{
    if (!h2o_timeout_is_linked(&cw->kick_entry))
        h2o_timeout_link(cw->loop, &cw->kick_timeout, &cw->kick_entry);
}

static void count_completion(client_worker_t *cw, int error)
{
    if (error == NET_HTTP_OK)
        count(&cw->stat_ok);
    else
        count(&cw->stat_failed);
    if (error == NET_HTTP_ERR_TIMEOUT || error == NET_HTTP_ERR_CONNECT_TIMEOUT)
        count(&cw->stat_timeouts);
}

/* Sends the response to the actor that asked and frees the request. h2o must no longer hold it
 * (r->h2o == NULL): either h2o reported the end, or we cancelled it first. */
static void finish(request_t *r, int error, bool maybe_sent)
{
    client_worker_t *cw = r->cw;
    HC_ASSERT(r->h2o == NULL && r->tls == NULL);
    heap_remove(cw, r);
    if (r->state != REQ_WAITING) {
        HC_ASSERT(r->ep->active > 0);
        --r->ep->active;
        kick(cw); /* a connection is free: start who waits, once h2o has pooled the socket */
    }
    size_t body_len = error == NET_HTTP_OK ? r->body_len : 0;
    rt_msg_t *msg = rt_msg_new(NET_HTTP_MSG_RESPONSE, sizeof(net_http_response_t) + body_len + 1);
    net_http_response_t *resp = net_http_response(msg);
    resp->id = r->id;
    resp->tag = r->tag;
    resp->error = error;
    resp->status = r->status;
    resp->retry_after_ms = r->retry_after_ms;
    resp->elapsed_ms = (uint32_t)(now_ms() - r->started_ms);
    resp->maybe_sent = maybe_sent;
    resp->body_len = (uint32_t)body_len;
    if (body_len != 0)
        memcpy(resp->body, r->body, body_len);
    resp->body[body_len] = '\0';
    msg->corr = r->tag;
    count_completion(cw, error);
    rt_actor_send(r->actor, msg);
    rt_actor_release(r->actor);
    free(r->body);
    free(r);
}

/* ---- h2o callbacks: connect, head, body ---- */

/* Maps h2o's error strings (lib/common/http1client.c) after the connection was made. */
static int classify_io_error(const char *errstr)
{
    if (strcmp(errstr, "I/O timeout") == 0)
        return NET_HTTP_ERR_TIMEOUT;
    if (strncmp(errstr, "I/O error", 9) == 0)
        return NET_HTTP_ERR_CLOSED;
    return NET_HTTP_ERR_BAD_RESPONSE; /* "failed to parse...", "invalid content-length"... */
}

/* Appends to the body; NET_HTTP_ERR_TOO_LARGE past the cap (the buffer grows by doubling, up to
 * the cap, unless Content-Length sized it already). */
static int append_body(request_t *r, const char *bytes, size_t len)
{
    size_t max = r->cw->client->config.max_response_bytes;
    if (len == 0) /* an empty body: nothing to keep, and memcpy may not take NULL */
        return NET_HTTP_OK;
    if (len > max - r->body_len)
        return NET_HTTP_ERR_TOO_LARGE;
    if (r->body_len + len > r->body_cap) {
        size_t cap = r->body_cap != 0 ? r->body_cap : INITIAL_BODY_CAP;
        while (cap < r->body_len + len)
            cap *= 2;
        if (cap > max)
            cap = max;
        char *body = realloc(r->body, cap);
        if (body == NULL)
            return NET_HTTP_ERR_NO_MEMORY;
        r->body = body;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, bytes, len);
    r->body_len += len;
    return NET_HTTP_OK;
}

static int on_body(h2o_http1client_t *client, const char *errstr)
{
    request_t *r = client->data;
    h2o_buffer_t *in = client->sock->input;
    int error = append_body(r, in->bytes, in->size);
    h2o_buffer_consume(&client->sock->input, in->size);
    if (errstr != NULL && errstr != h2o_http1client_error_is_eos)
        error = classify_io_error(errstr);
    if (errstr == NULL && error == NET_HTTP_OK)
        return 0;  /* more to come */
    r->h2o = NULL; /* h2o closes (or pools, after a whole body) the connection when we return */
    finish(r, error, true);
    return -1;
}

/* Reads a header we act on: Content-Length (refuse early when too large, size the buffer) or
 * Retry-After (seconds). Returns false when the announced body is too large. */
static bool read_head_field(request_t *r, h2o_iovec_t name, h2o_iovec_t v)
{
    size_t max = r->cw->client->config.max_response_bytes;
    if (h2o_lcstris(name.base, name.len, H2O_STRLIT("content-length"))) {
        size_t len = h2o_strtosize(v.base, v.len);
        if (len != SIZE_MAX && len > max)
            return false;
        if (len != SIZE_MAX && len != 0 && r->body == NULL) {
            r->body = malloc(len);
            r->body_cap = r->body != NULL ? len : 0;
        }
    } else if (h2o_lcstris(name.base, name.len, H2O_STRLIT("retry-after"))) {
        size_t seconds = h2o_strtosize(v.base, v.len); /* an HTTP-date is ignored */
        if (seconds != SIZE_MAX)
            r->retry_after_ms =
                seconds > RETRY_AFTER_MAX_MS / 1000 ? RETRY_AFTER_MAX_MS : (uint32_t)seconds * 1000;
    }
    return true;
}

static bool read_head_fields(request_t *r, h2o_header_t *headers, size_t num_headers)
{
    for (size_t i = 0; i != num_headers; ++i)
        if (!read_head_field(r, *headers[i].name, headers[i].value))
            return false;
    return true;
}

static h2o_http1client_body_cb on_head(h2o_http1client_t *client, const char *errstr,
                                       int minor_version, int status, h2o_iovec_t msg,
                                       h2o_header_t *headers, size_t num_headers, int rlen)
{
    request_t *r = client->data;
    if (errstr != NULL && errstr != h2o_http1client_error_is_eos) {
        r->h2o = NULL;
        finish(r, classify_io_error(errstr), true);
        return NULL;
    }
    r->status = status;
    if (!read_head_fields(r, headers, num_headers)) {
        r->h2o = NULL; /* returning NULL makes h2o close the connection */
        finish(r, NET_HTTP_ERR_TOO_LARGE, true);
        return NULL;
    }
    if (errstr == h2o_http1client_error_is_eos) { /* no body (HEAD, 204, 304) */
        r->h2o = NULL;
        finish(r, NET_HTTP_OK, true);
        return NULL;
    }
    return on_body;
}

static h2o_http1client_head_cb on_connect(h2o_http1client_t *client, const char *errstr,
                                          h2o_iovec_t **reqbufs, size_t *reqbufcnt,
                                          int *method_is_head)
{
    request_t *r = client->data;
    client_worker_t *cw = r->cw;
    cw->connect_cb_ran = true;
    if (errstr != NULL) {
        r->h2o = NULL;
        bool timed_out = strcmp(errstr, "connection timeout") == 0;
        finish(r, timed_out ? NET_HTTP_ERR_CONNECT_TIMEOUT : NET_HTTP_ERR_CONNECT, false);
        return NULL;
    }
    r->state = REQ_SENT;
    heap_fix(cw, r->heap_index); /* the key moves from the connect deadline to the total one */
    *reqbufs = r->reqbufs;
    *reqbufcnt = r->reqbufs[1].len != 0 ? 2 : 1;
    *method_is_head = r->method_is_head;
    return on_head;
}

/* ---- net/tls_client callbacks: the same steps for an https endpoint ---- */

static void on_tls_sent(void *data)
{
    request_t *r = data;
    r->state = REQ_SENT;
    heap_fix(r->cw, r->heap_index); /* the key moves from the connect deadline to the total one */
}

static int on_tls_head(void *data, int status, const struct phr_header *headers, size_t num_headers)
{
    request_t *r = data;
    r->status = status;
    for (size_t i = 0; i != num_headers; ++i)
        if (!read_head_field(r, h2o_iovec_init(headers[i].name, headers[i].name_len),
                             h2o_iovec_init(headers[i].value, headers[i].value_len)))
            return NET_HTTP_ERR_TOO_LARGE;
    return NET_HTTP_OK;
}

static int on_tls_body(void *data, const char *bytes, size_t len)
{
    return append_body(data, bytes, len);
}

static void on_tls_done(void *data, int error, bool maybe_sent)
{
    request_t *r = data;
    r->tls = NULL;
    finish(r, error, maybe_sent);
}

static const net_tls_callbacks_t tls_callbacks = {on_tls_sent, on_tls_head, on_tls_body,
                                                  on_tls_done};

/* ---- starting requests ---- */

/* Hands a waiting request to h2o. Runs inside the h2o loop only (from the kick timeout), so that
 * h2o's callbacks, which may run before h2o_http1client_connect_with_pool returns (a pooled
 * connection), never run inside an actor's behaviour. */
static void start_request(request_t *r, uint64_t now)
{
    client_worker_t *cw = r->cw;
    endpoint_t *ep = r->ep;
    r->state = REQ_CONNECTING;
    r->connect_deadline_ms = now + r->connect_timeout_ms;
    heap_fix(cw, r->heap_index);
    ++ep->active;
    if (ep->conf->tls) { /* `r` may be gone after this call too */
        if (net_tls_request(&r->tls, &ep->tls, r->reqbufs, r->reqbufs[1].len != 0 ? 2 : 1,
                            r->method_is_head, &tls_callbacks, r))
            ++cw->lookups_started;
        return;
    }
    cw->connect_cb_ran = false;
    h2o_http1client_connect_with_pool(&r->h2o, r, &cw->ctx, &ep->pool, on_connect);
    /* `r` may be gone now. A new connection to a named host begins with a lookup on h2o's
     * resolver thread, which answers through our receiver even if cancelled: count them so
     * that dispose knows whether the receiver may be freed. */
    if (!cw->connect_cb_ran && ep->conf->named)
        ++cw->lookups_started;
}

/* Starts waiting requests while the endpoint has free connections. Bounded by max_connections
 * per endpoint. */
static void pump(client_worker_t *cw)
{
    uint64_t now = now_ms();
    for (int i = 0; i != cw->client->num_endpoints; ++i) {
        endpoint_t *ep = &cw->endpoints[i];
        while (ep->num_waiting != 0 && ep->active < cw->client->config.max_connections) {
            request_t *r = H2O_STRUCT_FROM_MEMBER(request_t, link, ep->waiting.next);
            h2o_linklist_unlink(&r->link);
            --ep->num_waiting;
            start_request(r, now);
        }
    }
    arm_deadline(cw);
}

static void on_kick(h2o_timeout_entry_t *entry)
{
    client_worker_t *cw = H2O_STRUCT_FROM_MEMBER(client_worker_t, kick_entry, entry);
    pump(cw);
}

/* Takes `r` back from h2o or from net/tls_client, which then call nothing more. */
static void cancel_transport(request_t *r)
{
    if (r->tls != NULL)
        net_tls_cancel(r->tls);
    else
        h2o_http1client_cancel(r->h2o);
    r->h2o = NULL;
    r->tls = NULL;
}

/* Gives up on `r` at its deadline, wherever it is. */
static void expire(request_t *r, uint64_t now)
{
    switch (r->state) {
    case REQ_WAITING:
        h2o_linklist_unlink(&r->link);
        --r->ep->num_waiting;
        finish(r, NET_HTTP_ERR_TIMEOUT, false);
        break;
    case REQ_CONNECTING:
        cancel_transport(r);
        finish(r,
               now >= r->connect_deadline_ms ? NET_HTTP_ERR_CONNECT_TIMEOUT : NET_HTTP_ERR_TIMEOUT,
               false);
        break;
    default:
        cancel_transport(r);
        finish(r, NET_HTTP_ERR_TIMEOUT, true);
        break;
    }
}

static void on_deadline(h2o_socket_t *sock, const char *err)
{
    client_worker_t *cw = sock->data;
    uint64_t expirations;
    while (read(h2o_socket_get_fd(sock), &expirations, sizeof(expirations)) > 0)
        ;
    uint64_t now = now_ms();
    cw->armed_ms = UINT64_MAX;
    /* bounded by the requests held, each expiring once */
    while (cw->heap_size != 0 && request_key(cw->heap[0]) <= now)
        expire(cw->heap[0], now);
    arm_deadline(cw);
}

/* ---- admission: validating and copying a request ---- */

/* Writes into `dst`, or only counts when `dst` is NULL, so the head is sized, then written. */
typedef struct st_appender_t {
    char *dst;
    size_t len;
} appender_t;

static void append(appender_t *a, const char *s, size_t len)
{
    if (a->dst != NULL)
        memcpy(a->dst + a->len, s, len);
    a->len += len;
}

static void append_str(appender_t *a, const char *s)
{
    append(a, s, strlen(s));
}

static bool is_token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_token(const char *s, size_t max_len)
{
    size_t len = strlen(s);
    for (size_t i = 0; i != len; ++i)
        if (!is_token_char(s[i]))
            return false;
    return len != 0 && len <= max_len;
}

/* A header value (`is_value`: spaces and tabs allowed) or a path: no CR, LF or other control
 * byte, which would let a caller's data forge headers or a second request on a shared
 * connection. */
static bool is_safe_text(const char *s, bool is_value)
{
    for (; *s != '\0'; ++s) {
        unsigned char c = (unsigned char)*s;
        bool ok = c > ' ' ? c != 0x7f : is_value && (c == ' ' || c == '\t');
        if (!ok)
            return false;
    }
    return true;
}

/* Headers that frame the message are ours to write. */
static bool is_reserved_header(const char *name)
{
    static const char *const reserved[] = {"host", "content-length", "transfer-encoding",
                                           "connection"};
    for (size_t i = 0; i != sizeof(reserved) / sizeof(reserved[0]); ++i)
        if (strcasecmp(name, reserved[i]) == 0)
            return true;
    return false;
}

static bool request_is_valid(const net_http_client_t *client, const net_http_request_t *req)
{
    if (req->endpoint < 0 || req->endpoint >= client->num_endpoints)
        return false;
    if (req->body_len > client->config.max_request_bytes || (req->body_len != 0 && !req->body))
        return false;
    if (req->method != NULL && !is_token(req->method, 16))
        return false;
    if (req->path != NULL && (req->path[0] != '/' || !is_safe_text(req->path, false)))
        return false;
    if (req->content_type != NULL && !is_safe_text(req->content_type, true))
        return false;
    if (req->num_headers > NET_HTTP_MAX_HEADERS || (req->num_headers != 0 && !req->headers))
        return false;
    for (size_t i = 0; i != req->num_headers; ++i) {
        const net_http_header_t *h = &req->headers[i];
        if (!is_token(h->name, 256) || is_reserved_header(h->name) || !is_safe_text(h->value, true))
            return false;
    }
    return true;
}

static const char *request_method(const net_http_request_t *req)
{
    return req->method != NULL ? req->method : req->body_len != 0 ? "POST" : "GET";
}

static void write_head(appender_t *a, const net_http_request_t *req, const endpoint_conf_t *conf)
{
    const char *method = request_method(req);
    append_str(a, method);
    append(a, " ", 1);
    if (req->path == NULL) {
        append_str(a, conf->path);
    } else {
        size_t base_len = strlen(conf->path);
        append(a, conf->path, conf->path[base_len - 1] == '/' ? base_len - 1 : base_len);
        append_str(a, req->path);
    }
    append_str(a, " HTTP/1.1\r\nHost: ");
    append_str(a, conf->authority);
    append_str(a, "\r\nUser-Agent: intentd\r\n");
    if (req->body_len != 0 || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)) {
        char length[48];
        snprintf(length, sizeof(length), "Content-Length: %zu\r\n", req->body_len);
        append_str(a, length);
    }
    if (req->body_len != 0) {
        append_str(a, "Content-Type: ");
        append_str(a, req->content_type != NULL ? req->content_type : "application/json");
        append_str(a, "\r\n");
    }
    for (size_t i = 0; i != req->num_headers; ++i) {
        append_str(a, req->headers[i].name);
        append_str(a, ": ");
        append_str(a, req->headers[i].value);
        append_str(a, "\r\n");
    }
    append_str(a, "\r\n");
}

static uint32_t clamp_timeout(uint32_t value, uint32_t fallback, uint32_t max)
{
    if (value == 0)
        return fallback;
    return value > max ? max : value;
}

/* Allocates the request with its head and body copied after it, in one block. */
static request_t *new_request(client_worker_t *cw, endpoint_t *ep, const net_http_request_t *req)
{
    appender_t sizer = {NULL, 0};
    write_head(&sizer, req, ep->conf);
    request_t *r = calloc(1, sizeof(*r) + sizer.len + req->body_len);
    if (r == NULL)
        return NULL;
    appender_t writer = {(char *)(r + 1), 0};
    write_head(&writer, req, ep->conf);
    HC_ASSERT(writer.len == sizer.len);
    r->reqbufs[0] = h2o_iovec_init(writer.dst, writer.len);
    r->reqbufs[1] = h2o_iovec_init(writer.dst + writer.len, req->body_len);
    if (req->body_len != 0)
        memcpy(r->reqbufs[1].base, req->body, req->body_len);
    const net_http_client_config_t *c = &cw->client->config;
    r->cw = cw;
    r->ep = ep;
    r->method_is_head = strcmp(request_method(req), "HEAD") == 0;
    r->connect_timeout_ms =
        clamp_timeout(req->connect_timeout_ms, c->connect_timeout_ms, c->max_timeout_ms);
    r->started_ms = now_ms();
    r->deadline_ms =
        r->started_ms + clamp_timeout(req->timeout_ms, c->timeout_ms, c->max_timeout_ms);
    return r;
}

int net_http_request(rt_actor_t *self, net_http_client_t *client, const net_http_request_t *req,
                     uint64_t tag, uint64_t *id)
{
    rt_worker_t *w = rt_worker_current();
    HC_ASSERT(w != NULL && w->id == self->home && req != NULL);
    client_worker_t *cw = client->workers[w->id];
    HC_ASSERT(cw != NULL); /* the client's waiter (net_http_client_waiter) runs this worker */
    if (cw->draining)
        return NET_HTTP_ERR_SHUTDOWN;
    if (!request_is_valid(client, req))
        return NET_HTTP_ERR_INVALID;
    endpoint_t *ep = &cw->endpoints[req->endpoint];
    if (ep->active + ep->num_waiting >=
        client->config.max_connections + client->config.max_waiting) {
        count(&cw->stat_busy);
        return NET_HTTP_ERR_BUSY;
    }
    request_t *r = new_request(cw, ep, req);
    if (r == NULL)
        return NET_HTTP_ERR_NO_MEMORY;
    rt_actor_retain(self);
    r->actor = self;
    r->id = ++cw->next_id;
    r->tag = tag;
    r->state = REQ_WAITING;
    h2o_linklist_insert(&ep->waiting, &r->link);
    ++ep->num_waiting;
    heap_push(cw, r);
    kick(cw); /* h2o takes it at the loop's next turn, outside this behaviour */
    count(&cw->stat_requests);
    if (id != NULL)
        *id = r->id;
    return NET_HTTP_OK;
}

/* ---- the waiter: the client's life on each worker ---- */

/* Counts the resolver's answers before h2o handles them; see start_request. */
static void on_getaddr_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    client_worker_t *cw = H2O_STRUCT_FROM_MEMBER(client_worker_t, getaddr_receiver, receiver);
    for (h2o_linklist_t *n = messages->next; n != messages; n = n->next)
        ++cw->lookups_done;
    h2o_hostinfo_getaddr_receiver(receiver, messages);
}

static void setup_worker(client_worker_t *cw, h2o_loop_t *loop, int timer_fd)
{
    net_http_client_t *client = cw->client;
    cw->loop = loop;
    /* h2o's inactivity timeout only backs ours up, so it is longer than any of ours */
    h2o_timeout_init(loop, &cw->io_timeout, (uint64_t)client->config.max_timeout_ms + 1000);
    cw->ctx.loop = loop;
    cw->ctx.io_timeout = &cw->io_timeout;
    if (client->has_named) {
        cw->queue = h2o_multithread_create_queue(loop);
        h2o_multithread_register_receiver(cw->queue, &cw->getaddr_receiver, on_getaddr_messages);
        cw->ctx.getaddr_receiver = &cw->getaddr_receiver;
    }
    h2o_timeout_init(loop, &cw->kick_timeout, 0);
    cw->kick_entry.cb = on_kick;
    cw->deadline_sock = h2o_evloop_socket_create(loop, timer_fd, H2O_SOCKET_FLAG_DONT_READ);
    cw->deadline_sock->data = cw;
    h2o_socket_read_start(cw->deadline_sock, on_deadline);
    cw->armed_ms = UINT64_MAX;
    for (int i = 0; i != client->num_endpoints; ++i) {
        endpoint_t *ep = &cw->endpoints[i];
        const endpoint_conf_t *conf = &client->endpoints[i];
        ep->conf = conf;
        h2o_socketpool_init_by_hostport(&ep->pool, h2o_iovec_init(conf->host, strlen(conf->host)),
                                        conf->port, 0, client->config.max_connections);
        h2o_socketpool_set_timeout(&ep->pool, loop, client->config.idle_timeout_ms);
        if (conf->tls)
            net_tls_pool_init(&ep->tls, client->tls_ctx, loop, &ep->pool, cw->ctx.getaddr_receiver,
                              conf->host, conf->named, client->config.max_connections,
                              client->config.idle_timeout_ms);
        h2o_linklist_init_anchor(&ep->waiting);
    }
}

static void *client_waiter_init(rt_worker_t *worker, int wake_fd, void *data)
{
    net_http_client_t *client = data;
    void *inner_ctx = client->inner->init(worker, wake_fd, client->inner->data);
    if (inner_ctx == NULL)
        return NULL;
    h2o_loop_t *loop = net_http_worker_loop();
    HC_ASSERT(loop != NULL); /* the inner waiter must be net_http_waiter's */
    size_t n = (size_t)client->num_endpoints;
    client_worker_t *cw = calloc(1, sizeof(*cw) + n * sizeof(endpoint_t));
    int timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    uint32_t cap = (uint32_t)n * (client->config.max_connections + client->config.max_waiting);
    request_t **heap = calloc(cap != 0 ? cap : 1, sizeof(*heap));
    if (cw == NULL || timer_fd < 0 || heap == NULL) {
        rt_log_error("http_client", "worker %d: set-up failed: %s", worker->id, strerror(errno));
        free(cw);
        free(heap);
        if (timer_fd >= 0)
            close(timer_fd);
        client->inner->dispose(inner_ctx);
        return NULL;
    }
    cw->client = client;
    cw->inner_ctx = inner_ctx;
    cw->heap = heap;
    cw->heap_cap = cap;
    setup_worker(cw, loop, timer_fd);
    client->workers[worker->id] = cw;
    return cw;
}

static void client_waiter_wait(void *ctx, int timeout_ms)
{
    client_worker_t *cw = ctx;
    cw->client->inner->wait(cw->inner_ctx, timeout_ms);
}

static void client_waiter_begin_drain(void *ctx)
{
    client_worker_t *cw = ctx;
    cw->draining = true; /* requests in flight may finish; new ones are refused */
    cw->client->inner->begin_drain(cw->inner_ctx);
}

static bool client_waiter_is_idle(void *ctx)
{
    client_worker_t *cw = ctx;
    return cw->heap_size == 0 && cw->client->inner->is_idle(cw->inner_ctx);
}

/* Drops `r` without a response: the worker is exiting and its run queue is already gone, so a
 * message could never be handled (and would leak). */
static void abandon(request_t *r)
{
    client_worker_t *cw = r->cw;
    if (r->state == REQ_WAITING) {
        h2o_linklist_unlink(&r->link);
        --r->ep->num_waiting;
    } else {
        cancel_transport(r);
        --r->ep->active;
    }
    heap_remove(cw, r);
    rt_actor_release(r->actor);
    free(r->body);
    free(r);
}

static void client_waiter_dispose(void *ctx)
{
    client_worker_t *cw = ctx;
    while (cw->heap_size != 0) /* bounded: each pass removes one */
        abandon(cw->heap[0]);
    for (int i = 0; i != cw->client->num_endpoints; ++i) {
        if (cw->endpoints[i].conf->tls)
            net_tls_pool_dispose(&cw->endpoints[i].tls);
        h2o_socketpool_dispose(&cw->endpoints[i].pool);
    }
    h2o_timeout_unlink(&cw->kick_entry);
    h2o_timeout_dispose(cw->loop, &cw->kick_timeout);
    h2o_timeout_dispose(cw->loop, &cw->io_timeout);
    h2o_socket_read_stop(cw->deadline_sock);
    h2o_socket_close(cw->deadline_sock);
    if (cw->queue != NULL) {
        /* h2o's resolver answers a lookup even after it was cancelled; while one may still be
         * out, the receiver must stay valid, so this worker's state is then never freed */
        if (cw->lookups_started == cw->lookups_done) {
            h2o_multithread_unregister_receiver(cw->queue, &cw->getaddr_receiver);
            h2o_multithread_destroy_queue(cw->queue);
        } else {
            cw->keep_for_resolver = true;
            rt_log_warn("http_client", "a name lookup is still out at shutdown; keeping its state");
        }
    }
    cw->client->inner->dispose(cw->inner_ctx);
}

rt_waiter_t *net_http_client_waiter(net_http_client_t *client, rt_waiter_t *inner)
{
    HC_ASSERT(client != NULL && inner != NULL && client->inner == NULL);
    client->inner = inner;
    client->waiter =
        (rt_waiter_t){client_waiter_init,    client_waiter_wait,    client_waiter_begin_drain,
                      client_waiter_is_idle, client_waiter_dispose, client};
    return &client->waiter;
}
