#include "net/http_server.h"
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "net/json.h"
#include "net/problem.h"
#include "runtime/log.h"

#define MAX_ROUTES 64
#define REPLAYS_MAX 256 /* replays a worker runs at once (net_http_replay) */
#define REPLAY_TIMEOUT_MS 5000

typedef struct st_route_handler_t {
    h2o_handler_t super;
    net_http_handler_fn fn;
    void *data;
} route_handler_t;

struct st_net_http_server_t {
    h2o_globalconf_t globalconf;
    h2o_hostconf_t *hostconf;
    const net_http_cors_t *cors; /* for h2o's own errors (net_http_set_cors); NULL: none */
    struct sockaddr_in address;
    rt_waiter_t waiter;
};

/* Per-worker state, owned by the worker's thread. */
typedef struct st_worker_http_t {
    net_http_server_t *server;
    rt_worker_t *worker;
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    h2o_socket_t *wake_sock;
    uint64_t requests_in_flight;
    uint32_t replays;              /* made by net_http_replay and not yet disposed */
    h2o_timeout_t replay_deadline; /* REPLAY_TIMEOUT_MS */
} worker_http_t;

/* A replay (net_http_replay): a copy of a request, on a stand-in connection of the worker's
 * context, whose answer goes nowhere. */
typedef struct st_replay_t {
    h2o_conn_t conn;
    h2o_req_t req;
    h2o_ostream_t sink; /* the end of the answer's chain, where a client's socket would be */
    worker_http_t *wh;
    h2o_timeout_entry_t start, proceed, done, deadline;
    struct sockaddr_storage peer, sock; /* the original client's, for the handlers that ask */
    socklen_t peer_len, sock_len;
} replay_t;

/* Turns h2o's own error answers into the API's problems (see on_setup_error_ostream). */
typedef struct st_error_filter_t {
    h2o_filter_t super;
    net_http_server_t *server;
} error_filter_t;

/* Sends the problem in place of h2o's text/plain body. */
typedef struct st_problem_ostream_t {
    h2o_ostream_t super;
    h2o_iovec_t body;
} problem_ostream_t;

static __thread worker_http_t *current_http;

/* Runs when a request's memory pool is released, i.e. when the request is over, whether the
 * handler answered at once or later. Used to know when a draining worker is idle. */
static void on_request_done(void *unused)
{
    assert(current_http != NULL && current_http->requests_in_flight > 0);
    --current_http->requests_in_flight;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    route_handler_t *route = (route_handler_t *)self;
    worker_http_t *wh = current_http;
    if (!net_http_is_replay(req)) /* a replay is no client's request */
        atomic_fetch_add_explicit(&wh->worker->metrics.http_requests, 1, memory_order_relaxed);
    ++wh->requests_in_flight;
    h2o_mem_alloc_shared(&req->pool, 1, on_request_done);
    return route->fn(req, route->data);
}

static void problem_ostream_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs,
                                 size_t bufcnt, h2o_send_state_t state)
{
    problem_ostream_t *os = (problem_ostream_t *)self;
    /* h2o's body comes in one final send; a HEAD answer has none, and gets none */
    h2o_iovec_t body = bufcnt != 0 ? os->body : h2o_iovec_init(NULL, 0);
    os->body = h2o_iovec_init(NULL, 0); /* sent once, whatever h2o does next */
    h2o_ostream_send_next(self, req, &body, body.len != 0, state);
}

/* h2o answers some errors itself before any handler runs: above all a body over
 * max_request_entity_size (413, by its Content-Length at once or while a chunked body arrives),
 * also a broken Content-Length or chunked encoding (400). Those go out through
 * h2o_send_error_generic on the host's fallback path (the request has no path yet), as
 * text/plain without the headers the router gives every answer. This filter sits on that path
 * only: every request that reaches a handler is bound to a registered path ("/" catches all),
 * so ordinary answers never meet it. It swaps the answer for the problem the API promises, with
 * the security headers, a request id, CORS and the router's reason phrase; the status and the
 * connection's fate (h2o closes it after a 413, having stopped reading) stay h2o's. */
static void on_setup_error_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    net_http_server_t *server = ((error_filter_t *)self)->server;
    int status = req->res.status;
    /* statuses the API has a problem type for (400, 413; 5xx): h2o's others, such as a 417
     * for an unknown Expect, are no answer of the API and stay as h2o words them */
    if (status >= 400 && strcmp(net_problem_type(status), "about:blank") != 0) {
        char detail[96];
        net_json_too_large_detail(detail, sizeof(detail), NET_JSON_BODY_LIMIT_DEFAULT);
        req->res.reason = net_http_reason(status); /* the router's phrase: "Content Too Large" */
        net_http_add_security_headers(req);
        h2o_iovec_t body = net_problem_render(
            req, &(net_problem_t){.status = status, .detail = status == 413 ? detail : NULL});
        if (server->cors != NULL)
            net_http_cors_add_headers(server->cors, req);
        if (body.base != NULL) {
            h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE,
                           H2O_STRLIT(NET_PROBLEM_CONTENT_TYPE), 1);
            req->res.content_length = body.len;
            problem_ostream_t *os = (problem_ostream_t *)h2o_add_ostream(req, sizeof(*os), slot);
            os->super.do_send = problem_ostream_send;
            os->body = body;
            slot = &os->super.next;
        }
    }
    h2o_setup_next_ostream(req, slot);
}

static void register_error_filter(net_http_server_t *server)
{
    error_filter_t *filter =
        (error_filter_t *)h2o_create_filter(&server->hostconf->fallback_path, sizeof(*filter));
    filter->super.on_setup_ostream = on_setup_error_ostream;
    filter->server = server;
}

net_http_server_t *net_http_create(const char *bind_address, uint16_t port)
{
    net_http_server_t *server = calloc(1, sizeof(*server));
    if (server == NULL)
        return NULL;
    server->address.sin_family = AF_INET;
    server->address.sin_port = htons(port);
    if (inet_pton(AF_INET, bind_address, &server->address.sin_addr) != 1) {
        rt_log_error("http", "BIND_ADDRESS '%s' is not an IPv4 address", bind_address);
        free(server);
        return NULL;
    }
    h2o_config_init(&server->globalconf);
    server->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("intentd"));
    /* h2o buffers up to 1 GiB of request body by default before a handler sees it: the API
     * takes at most NET_JSON_BODY_LIMIT_DEFAULT, so h2o refuses larger bodies (413) while they
     * arrive. One byte more than the limit, because h2o 2.2.5 refuses a chunked body that
     * reaches max_request_entity_size (>=) but a Content-Length only above it (>): so a chunked
     * body of exactly the limit passes, and a Content-Length of limit + 1 reaches the handler,
     * whose net_json_read answers the same 413. */
    server->globalconf.max_request_entity_size = NET_JSON_BODY_LIMIT_DEFAULT + 1;
    server->hostconf =
        h2o_config_register_host(&server->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    register_error_filter(server);
    return server;
}

void net_http_set_cors(net_http_server_t *server, const net_http_cors_t *cors)
{
    server->cors = cors;
}

void net_http_route(net_http_server_t *server, const char *path, net_http_handler_fn handler,
                    void *data)
{
    h2o_pathconf_t *pathconf = h2o_config_register_path(server->hostconf, path, 0);
    route_handler_t *route = (route_handler_t *)h2o_create_handler(pathconf, sizeof(*route));
    route->super.on_req = on_req;
    route->fn = handler;
    route->data = data;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    worker_http_t *wh = listener->data;
    if (err != NULL)
        return;
    /* bounded: accept what is queued now, up to a batch, so one loop turn stays short */
    for (int i = 0; i != 64; ++i) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            break;
        h2o_accept(&wh->accept_ctx, sock);
    }
}

static void on_wake(h2o_socket_t *sock, const char *err)
{
    uint64_t value;
    while (read(h2o_socket_get_fd(sock), &value, sizeof(value)) == sizeof(value))
        ;
}

static int open_listener(net_http_server_t *server)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int on = 1;
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        bind(fd, (struct sockaddr *)&server->address, sizeof(server->address)) != 0 ||
        listen(fd, SOMAXCONN) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static void *waiter_init(rt_worker_t *worker, int wake_fd, void *data)
{
    net_http_server_t *server = data;
    bool listening = server->address.sin_port != 0; /* port 0: an h2o loop for clients only */
    int listen_fd = listening ? open_listener(server) : -1;
    if (listening && listen_fd < 0) {
        char addr[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &server->address.sin_addr, addr, sizeof(addr));
        rt_log_error("http", "cannot listen on %s:%d: %s", addr, ntohs(server->address.sin_port),
                     strerror(errno));
        return NULL;
    }
    worker_http_t *wh = calloc(1, sizeof(*wh));
    if (wh == NULL) {
        close(listen_fd);
        return NULL;
    }
    wh->server = server;
    wh->worker = worker;
    wh->loop = h2o_evloop_create();
    h2o_context_init(&wh->ctx, wh->loop, &server->globalconf);
    wh->accept_ctx.ctx = &wh->ctx;
    wh->accept_ctx.hosts = server->globalconf.hosts;
    if (listening) {
        wh->listener = h2o_evloop_socket_create(wh->loop, listen_fd, H2O_SOCKET_FLAG_DONT_READ);
        wh->listener->data = wh;
        h2o_socket_read_start(wh->listener, on_accept);
    }
    /* h2o owns (and may close) the fds of its sockets, so it gets its own dup of the eventfd */
    int h2o_wake_fd = dup(wake_fd);
    if (h2o_wake_fd < 0) {
        rt_log_error("http", "dup: %s", strerror(errno));
        return NULL;
    }
    h2o_timeout_init(wh->loop, &wh->replay_deadline, REPLAY_TIMEOUT_MS);
    wh->wake_sock = h2o_evloop_socket_create(wh->loop, h2o_wake_fd, H2O_SOCKET_FLAG_DONT_READ);
    wh->wake_sock->data = wh;
    h2o_socket_read_start(wh->wake_sock, on_wake);
    current_http = wh;
    return wh;
}

static void waiter_wait(void *ctx, int timeout_ms)
{
    worker_http_t *wh = ctx;
    /* Answers sent from actor turns (outside h2o_evloop_run) leave their sockets' write
     * completions pending in the loop, and h2o 2.2.5 runs pending callbacks only after its
     * epoll_wait: the connection reads its next request only then. Waiting the runtime's
     * timeout first stalled keep-alive connections until the next timer or wake-up (the bench
     * saw epoll_wait sleep 216-885 ms with answers pending, and whole seconds of requests late
     * with it), so with callbacks pending the loop only polls. */
    if (wh->loop->_pending_as_server != NULL || wh->loop->_pending_as_client != NULL)
        timeout_ms = 0;
    /* -1 with EINTR is an ordinary wake-up: an io_uring completion's task work interrupted
     * epoll_wait; the completion is reaped on the next loop turn */
    h2o_evloop_run(wh->loop, timeout_ms);
}

static void waiter_begin_drain(void *ctx)
{
    worker_http_t *wh = ctx;
    if (wh->listener != NULL) {
        h2o_socket_read_stop(wh->listener);
        h2o_socket_close(wh->listener);
        wh->listener = NULL;
    }
    /* closes idle keep-alive connections and asks HTTP/2 peers to go away */
    h2o_context_request_shutdown(&wh->ctx);
}

static bool waiter_is_idle(void *ctx)
{
    worker_http_t *wh = ctx;
    return wh->requests_in_flight == 0 && wh->replays == 0;
}

static void waiter_dispose(void *ctx)
{
    worker_http_t *wh = ctx;
    if (wh->listener != NULL)
        h2o_socket_close(wh->listener);
    /* h2o 2.2.5 asserts when a context or loop is destroyed while connections (even idle
     * keep-alive ones) still hold timeouts, and offers no public way to enumerate them; like
     * h2o's own server, we leave the loop to process exit. Its wake socket wraps a dup of the
     * runtime's eventfd (see waiter_init), so nothing the runtime owns is touched. */
    current_http = NULL;
    free(wh);
}

h2o_loop_t *net_http_worker_loop(void)
{
    return current_http != NULL ? current_http->loop : NULL;
}

rt_waiter_t *net_http_waiter(net_http_server_t *server)
{
    server->waiter = (rt_waiter_t){waiter_init,    waiter_wait,    waiter_begin_drain,
                                   waiter_is_idle, waiter_dispose, server};
    return &server->waiter;
}

void net_http_free(net_http_server_t *server)
{
    h2o_config_dispose(&server->globalconf);
    free(server);
}

void net_http_respond(h2o_req_t *req, int status, const char *reason, const char *content_type,
                      const char *body, size_t body_len)
{
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = body_len; /* lets h2o skip chunked encoding */
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type,
                   strlen(content_type));
    h2o_send_inline(req, body, body_len);
}

/* ---- replays ---- */

static socklen_t replay_sockname(h2o_conn_t *conn, struct sockaddr *sa)
{
    replay_t *r = H2O_STRUCT_FROM_MEMBER(replay_t, conn, conn);
    memcpy(sa, &r->sock, r->sock_len);
    return r->sock_len;
}

static socklen_t replay_peername(h2o_conn_t *conn, struct sockaddr *sa)
{
    replay_t *r = H2O_STRUCT_FROM_MEMBER(replay_t, conn, conn);
    memcpy(sa, &r->peer, r->peer_len);
    return r->peer_len;
}

static h2o_socket_t *replay_socket(h2o_conn_t *conn)
{
    return NULL;
}

static const h2o_conn_callbacks_t replay_callbacks = {
    .get_sockname = replay_sockname, .get_peername = replay_peername, .get_socket = replay_socket};

bool net_http_is_replay(h2o_req_t *req)
{
    return req->conn != NULL && req->conn->callbacks == &replay_callbacks;
}

/* The end of a replay: the request's pool is released (its dispose hooks run: an async call
 * still waiting learns that its request is gone, as when a client leaves), then the replay. */
static void replay_dispose(replay_t *r)
{
    h2o_timeout_entry_t *entries[] = {&r->start, &r->proceed, &r->done, &r->deadline};
    for (size_t i = 0; i != sizeof(entries) / sizeof(entries[0]); ++i)
        if (h2o_timeout_is_linked(entries[i]))
            h2o_timeout_unlink(entries[i]);
    h2o_dispose_request(&r->req);
    --r->wh->replays;
    free(r);
}

static void replay_on_done(h2o_timeout_entry_t *entry)
{
    replay_dispose(H2O_STRUCT_FROM_MEMBER(replay_t, done, entry));
}

/* The answer took too long (the database is stuck, say): given up like a client that left. */
static void replay_on_deadline(h2o_timeout_entry_t *entry)
{
    replay_dispose(H2O_STRUCT_FROM_MEMBER(replay_t, deadline, entry));
}

static void replay_on_proceed(h2o_timeout_entry_t *entry)
{
    replay_t *r = H2O_STRUCT_FROM_MEMBER(replay_t, proceed, entry);
    h2o_proceed_response(&r->req);
}

/* Where the answer's bytes would go to the client: asks for the next part of a streamed answer
 * (from the loop, not from inside the generator's own send), and ends the replay after the last,
 * also from the loop: the handler may still use the request after its h2o_send returns. */
static void replay_sink_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                             h2o_send_state_t state)
{
    replay_t *r = H2O_STRUCT_FROM_MEMBER(replay_t, sink, self);
    h2o_timeout_entry_t *next = h2o_send_state_is_in_progress(state) ? &r->proceed : &r->done;
    if (!h2o_timeout_is_linked(next))
        h2o_timeout_link(r->wh->loop, &r->wh->ctx.zero_timeout, next);
}

static void replay_on_start(h2o_timeout_entry_t *entry)
{
    replay_t *r = H2O_STRUCT_FROM_MEMBER(replay_t, start, entry);
    h2o_timeout_link(r->wh->loop, &r->wh->replay_deadline, &r->deadline);
    h2o_process_request(&r->req);
}

bool net_http_replay(h2o_req_t *src)
{
    worker_http_t *wh = current_http;
    if (wh == NULL || src->conn->ctx != &wh->ctx || wh->replays == REPLAYS_MAX)
        return false;
    replay_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return false;
    r->wh = wh;
    r->conn = (h2o_conn_t){.ctx = &wh->ctx,
                           .hosts = wh->accept_ctx.hosts,
                           .connected_at = src->conn->connected_at,
                           .id = src->conn->id,
                           .callbacks = &replay_callbacks};
    r->peer_len = src->conn->callbacks->get_peername(src->conn, (struct sockaddr *)&r->peer);
    r->sock_len = src->conn->callbacks->get_sockname(src->conn, (struct sockaddr *)&r->sock);
    h2o_init_request(&r->req, &r->conn, src); /* copies the method, path and headers */
    r->req.entity = h2o_iovec_init(NULL, 0);  /* the body stays the client's: never replayed */
    r->sink.do_send = replay_sink_send;
    r->req._ostr_top = &r->sink;
    r->start.cb = replay_on_start;
    r->proceed.cb = replay_on_proceed;
    r->done.cb = replay_on_done;
    r->deadline.cb = replay_on_deadline;
    /* from the loop: the caller is inside the original request's handler */
    h2o_timeout_link(wh->loop, &wh->ctx.zero_timeout, &r->start);
    ++wh->replays;
    return true;
}
