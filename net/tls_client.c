#include "net/tls_client.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "net/http_client.h"
#include "net/tls_wolf.h"
#include "runtime/log.h"

#define SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"
#define MAX_HEAD_BYTES (64u * 1024u) /* a response head larger than this is refused */
#define MAX_RESPONSE_HEADERS 100
#define READ_CHUNK 16384

struct st_net_tls_ctx_t {
    tls_wolf_ctx_t *wolf;
};

enum { PHASE_HEAD, PHASE_LENGTH, PHASE_CHUNKED, PHASE_UNTIL_CLOSE };

/* A growable byte buffer. */
typedef struct st_bytes_t {
    char *base;
    size_t len, cap;
} bytes_t;

struct st_net_tls_conn_t {
    net_tls_pool_t *pool;
    h2o_socketpool_connect_request_t *connect_req; /* while the TCP connection is being made */
    h2o_socket_t *sock;
    tls_wolf_t *tls;
    h2o_linklist_t idle_link; /* in pool->idle while idle */
    h2o_timeout_entry_t idle_entry;
    /* the exchange, while one runs (cb != NULL) */
    const net_tls_callbacks_t *cb;
    void *data;
    const h2o_iovec_t *bufs;
    size_t num_bufs;
    bool method_is_head;
    bool handshaken, sent, eof, keep_alive, failed_io;
    int phase;
    size_t remaining; /* PHASE_LENGTH */
    struct phr_chunked_decoder chunked;
    bytes_t head;    /* the plaintext response head so far */
    bytes_t out;     /* ciphertext wolfSSL wrote, waiting for the socket */
    bytes_t writing; /* ciphertext h2o is writing */
};

/* ---- the context ---- */

static int io_recv(void *arg, char *buf, size_t size);
static int io_send(void *arg, const char *buf, size_t len);

net_tls_ctx_t *net_tls_ctx_create(const char *ca_file, char *err, size_t err_size)
{
    net_tls_ctx_t *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    ctx->wolf = tls_wolf_ctx_new(ca_file != NULL ? ca_file : SYSTEM_CA_FILE, io_recv, io_send, err,
                                 err_size);
    if (ctx->wolf == NULL) {
        free(ctx);
        return NULL;
    }
    return ctx;
}

void net_tls_ctx_free(net_tls_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    tls_wolf_ctx_free(ctx->wolf);
    free(ctx);
}

/* ---- buffers and wolfSSL's I/O ---- */

static bool bytes_append(bytes_t *b, const char *src, size_t len)
{
    if (len > b->cap - b->len) {
        size_t cap = b->cap != 0 ? b->cap : 4096;
        while (cap < b->len + len)
            cap *= 2;
        char *base = realloc(b->base, cap);
        if (base == NULL)
            return false;
        b->base = base;
        b->cap = cap;
    }
    memcpy(b->base + b->len, src, len);
    b->len += len;
    return true;
}

/* Ciphertext in: what h2o read from the socket. */
static int io_recv(void *arg, char *buf, size_t size)
{
    net_tls_conn_t *conn = arg;
    h2o_buffer_t *in = conn->sock->input;
    if (in->size == 0)
        return conn->eof || conn->failed_io ? TLS_WOLF_CLOSED : TLS_WOLF_WANT_READ;
    size_t n = in->size < size ? in->size : size;
    memcpy(buf, in->bytes, n);
    h2o_buffer_consume(&conn->sock->input, n);
    return (int)n;
}

/* Ciphertext out: queued, then written by flush. */
static int io_send(void *arg, const char *buf, size_t len)
{
    net_tls_conn_t *conn = arg;
    if (conn->failed_io || !bytes_append(&conn->out, buf, len))
        return TLS_WOLF_CLOSED;
    return (int)len;
}

static void flush(net_tls_conn_t *conn);

static void on_written(h2o_socket_t *sock, const char *err)
{
    net_tls_conn_t *conn = sock->data;
    conn->writing.len = 0;
    if (err != NULL) {
        conn->failed_io = true; /* seen by the next read or write */
        return;
    }
    flush(conn);
}

/* Hands the queued ciphertext to h2o unless a write is under way (on_written calls again). */
static void flush(net_tls_conn_t *conn)
{
    if (conn->writing.len != 0 || conn->out.len == 0 || conn->failed_io)
        return;
    bytes_t t = conn->writing;
    conn->writing = conn->out;
    conn->out = t;
    h2o_iovec_t buf = h2o_iovec_init(conn->writing.base, conn->writing.len);
    h2o_socket_write(conn->sock, &buf, 1, on_written);
}

/* ---- connections ---- */

static void close_conn(net_tls_conn_t *conn)
{
    if (conn->connect_req != NULL)
        h2o_socketpool_cancel_connect(conn->connect_req);
    if (h2o_linklist_is_linked(&conn->idle_link)) {
        h2o_linklist_unlink(&conn->idle_link);
        --conn->pool->num_idle;
    }
    if (h2o_timeout_is_linked(&conn->idle_entry))
        h2o_timeout_unlink(&conn->idle_entry);
    tls_wolf_free(conn->tls);
    if (conn->sock != NULL)
        h2o_socket_close(conn->sock);
    /* closing disposes of h2o's write at once (h2o keeps no copy, and calls no callback) */
    free(conn->head.base);
    free(conn->out.base);
    free(conn->writing.base);
    free(conn);
}

static void on_idle_timeout(h2o_timeout_entry_t *entry)
{
    close_conn(H2O_STRUCT_FROM_MEMBER(net_tls_conn_t, idle_entry, entry));
}

/* Ends the exchange: the connection goes idle when it can carry another, else it is closed;
 * then the owner hears. */
static void complete(net_tls_conn_t *conn, int error)
{
    const net_tls_callbacks_t *cb = conn->cb;
    void *data = conn->data;
    bool maybe_sent = conn->sent;
    net_tls_pool_t *pool = conn->pool;
    conn->cb = NULL;
    conn->data = NULL;
    conn->bufs = NULL;
    bool reusable = error == NET_HTTP_OK && conn->keep_alive && !conn->eof && !conn->failed_io &&
                    conn->head.len == 0 && !tls_wolf_pending(conn->tls) &&
                    pool->num_idle < pool->max_idle;
    if (reusable) {
        h2o_linklist_insert(&pool->idle, &conn->idle_link);
        ++pool->num_idle;
        h2o_timeout_link(pool->loop, &pool->idle_timeout, &conn->idle_entry);
    } else {
        close_conn(conn);
    }
    cb->on_done(data, error, maybe_sent);
}

static void log_tls_error(net_tls_conn_t *conn, const char *what)
{
    char text[128];
    rt_log_warn("tls_client", "%s: %s: %s", conn->pool->host, what,
                tls_wolf_error(conn->tls, text, sizeof(text)));
}

/* ---- the response ---- */

static bool has_token(const char *value, size_t len, const char *token)
{
    size_t tlen = strlen(token);
    for (size_t i = 0; i + tlen <= len; ++i)
        if (strncasecmp(value + i, token, tlen) == 0)
            return true;
    return false;
}

/* Body bytes in the current phase. Returns false when the exchange completed (and `conn` may be
 * gone). `bytes` may be decoded in place. */
static bool feed_body(net_tls_conn_t *conn, char *bytes, size_t len)
{
    int error = NET_HTTP_OK;
    switch (conn->phase) {
    case PHASE_LENGTH: {
        size_t n = len < conn->remaining ? len : conn->remaining;
        if (n != 0)
            error = conn->cb->on_body(conn->data, bytes, n);
        conn->remaining -= n;
        if (error != NET_HTTP_OK || conn->remaining == 0) {
            if (len != n)
                conn->keep_alive = false; /* bytes past the body: do not trust the connection */
            complete(conn, error);
            return false;
        }
        return true;
    }
    case PHASE_CHUNKED: {
        size_t decoded = len;
        ssize_t ret = phr_decode_chunked(&conn->chunked, bytes, &decoded);
        if (ret == -1) {
            complete(conn, NET_HTTP_ERR_BAD_RESPONSE);
            return false;
        }
        if (decoded != 0)
            error = conn->cb->on_body(conn->data, bytes, decoded);
        if (error != NET_HTTP_OK || ret >= 0) {
            if (ret > 0)
                conn->keep_alive = false;
            complete(conn, error);
            return false;
        }
        return true;
    }
    default: /* PHASE_UNTIL_CLOSE */
        if (len != 0)
            error = conn->cb->on_body(conn->data, bytes, len);
        if (error != NET_HTTP_OK) {
            complete(conn, error);
            return false;
        }
        return true;
    }
}

/* Parses the head in conn->head; then frames the body. Returns false when the exchange
 * completed. */
static bool parse_head(net_tls_conn_t *conn)
{
    for (;;) { /* bounded by MAX_HEAD_BYTES: each pass drops a 1xx head */
        struct phr_header headers[MAX_RESPONSE_HEADERS];
        size_t num_headers = MAX_RESPONSE_HEADERS;
        int minor, status;
        const char *msg;
        size_t msg_len;
        int ret = phr_parse_response(conn->head.base, conn->head.len, &minor, &status, &msg,
                                     &msg_len, headers, &num_headers, 0);
        if (ret == -2) {
            if (conn->head.len < MAX_HEAD_BYTES)
                return true;
            complete(conn, NET_HTTP_ERR_BAD_RESPONSE);
            return false;
        }
        if (ret < 0) {
            complete(conn, NET_HTTP_ERR_BAD_RESPONSE);
            return false;
        }
        size_t head_len = (size_t)ret;
        if (status >= 100 && status < 200) { /* interim (100 Continue, 103): skip */
            memmove(conn->head.base, conn->head.base + head_len, conn->head.len - head_len);
            conn->head.len -= head_len;
            continue;
        }
        bool chunked = false, has_length = false;
        size_t length = 0;
        conn->keep_alive = minor >= 1;
        for (size_t i = 0; i != num_headers; ++i) {
            const struct phr_header *h = &headers[i];
            if (h->name_len == 10 && strncasecmp(h->name, "connection", 10) == 0) {
                if (has_token(h->value, h->value_len, "close"))
                    conn->keep_alive = false;
            } else if (h->name_len == 17 && strncasecmp(h->name, "transfer-encoding", 17) == 0) {
                chunked = has_token(h->value, h->value_len, "chunked");
            } else if (h->name_len == 14 && strncasecmp(h->name, "content-length", 14) == 0) {
                size_t v = h2o_strtosize(h->value, h->value_len);
                if (v == SIZE_MAX || (has_length && v != length)) {
                    complete(conn, NET_HTTP_ERR_BAD_RESPONSE);
                    return false;
                }
                has_length = true;
                length = v;
            }
        }
        int error = conn->cb->on_head(conn->data, status, headers, num_headers);
        if (error != NET_HTTP_OK) {
            conn->keep_alive = false;
            complete(conn, error);
            return false;
        }
        /* what follows the head is body: move it out of the head buffer */
        size_t rest_len = conn->head.len - head_len;
        char *rest = conn->head.base + head_len;
        conn->head.len = 0;
        if (conn->method_is_head || status == 204 || status == 304 ||
            (!chunked && has_length && length == 0)) {
            if (rest_len != 0)
                conn->keep_alive = false;
            complete(conn, NET_HTTP_OK);
            return false;
        }
        if (chunked) {
            conn->phase = PHASE_CHUNKED;
            memset(&conn->chunked, 0, sizeof(conn->chunked));
            conn->chunked.consume_trailer = 1;
        } else if (has_length) {
            conn->phase = PHASE_LENGTH;
            conn->remaining = length;
        } else {
            conn->phase = PHASE_UNTIL_CLOSE;
            conn->keep_alive = false;
        }
        return feed_body(conn, rest, rest_len);
    }
}

/* Plaintext in. Returns false when the exchange completed. */
static bool feed(net_tls_conn_t *conn, char *bytes, size_t len)
{
    if (conn->phase != PHASE_HEAD)
        return feed_body(conn, bytes, len);
    if (conn->head.len + len > MAX_HEAD_BYTES + READ_CHUNK ||
        !bytes_append(&conn->head, bytes, len)) {
        complete(conn, NET_HTTP_ERR_BAD_RESPONSE);
        return false;
    }
    return parse_head(conn);
}

/* The peer closed (or reset): the end of an until-close body, else a failure. */
static void on_closed(net_tls_conn_t *conn)
{
    conn->keep_alive = false;
    if (conn->phase == PHASE_UNTIL_CLOSE)
        complete(conn, NET_HTTP_OK);
    else
        complete(conn, NET_HTTP_ERR_CLOSED);
}

/* ---- driving the connection ---- */

static void write_request(net_tls_conn_t *conn)
{
    conn->sent = true;
    conn->cb->on_sent(conn->data);
    for (size_t i = 0; i != conn->num_bufs; ++i) {
        int ret = tls_wolf_write(conn->tls, conn->bufs[i].base, conn->bufs[i].len);
        if (ret != TLS_WOLF_OK) {
            if (ret == TLS_WOLF_FAILED)
                log_tls_error(conn, "write failed");
            complete(conn, ret == TLS_WOLF_FAILED ? NET_HTTP_ERR_TLS : NET_HTTP_ERR_CLOSED);
            return;
        }
    }
    flush(conn);
}

/* Reads and handles what arrived for the exchange. */
static void drive(net_tls_conn_t *conn)
{
    if (!conn->handshaken) {
        int ret = tls_wolf_connect(conn->tls);
        flush(conn);
        if (ret == TLS_WOLF_WANT_READ && !conn->failed_io)
            return;
        if (ret == TLS_WOLF_FAILED) {
            log_tls_error(conn, "TLS handshake failed");
            complete(conn, NET_HTTP_ERR_TLS);
            return;
        }
        if (ret != TLS_WOLF_OK) {
            complete(conn, NET_HTTP_ERR_CONNECT);
            return;
        }
        conn->handshaken = true;
        write_request(conn);
        return; /* the response comes with a later read */
    }
    /* bounded: each pass consumes input h2o buffered, a bounded amount per event */
    for (;;) {
        char buf[READ_CHUNK];
        int ret = tls_wolf_read(conn->tls, buf, sizeof(buf));
        if (ret > 0) {
            if (!feed(conn, buf, (size_t)ret))
                return;
            continue;
        }
        flush(conn); /* wolfSSL may answer post-handshake messages */
        if (ret == TLS_WOLF_WANT_READ && !conn->failed_io)
            return;
        if (ret == TLS_WOLF_FAILED) {
            log_tls_error(conn, "read failed");
            conn->keep_alive = false;
            complete(conn, NET_HTTP_ERR_TLS);
        } else {
            on_closed(conn);
        }
        return;
    }
}

/* An idle connection became readable: a post-handshake message is fine, anything else (data,
 * an alert, the close) ends it. */
static void on_idle_read(net_tls_conn_t *conn)
{
    char byte;
    int ret = tls_wolf_read(conn->tls, &byte, 1);
    flush(conn);
    if (ret == TLS_WOLF_WANT_READ && !conn->eof && !conn->failed_io)
        return;
    close_conn(conn);
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    net_tls_conn_t *conn = sock->data;
    if (err != NULL) {
        conn->eof = true;
        h2o_socket_read_stop(sock);
    }
    if (conn->cb == NULL)
        on_idle_read(conn);
    else
        drive(conn);
}

static void on_tcp_connected(h2o_socket_t *sock, const char *errstr, void *data)
{
    net_tls_conn_t *conn = data;
    net_tls_pool_t *pool = conn->pool;
    conn->connect_req = NULL;
    if (errstr != NULL) {
        complete(conn, NET_HTTP_ERR_CONNECT);
        return;
    }
    conn->sock = sock;
    sock->data = conn;
    conn->tls = tls_wolf_new(pool->ctx->wolf, pool->host, pool->named, conn);
    if (conn->tls == NULL) {
        complete(conn, NET_HTTP_ERR_NO_MEMORY);
        return;
    }
    h2o_socket_read_start(sock, on_read);
    drive(conn); /* sends the ClientHello */
}

/* ---- the pool ---- */

void net_tls_pool_init(net_tls_pool_t *pool, net_tls_ctx_t *ctx, h2o_loop_t *loop,
                       h2o_socketpool_t *tcp, h2o_multithread_receiver_t *getaddr_receiver,
                       const char *host, bool named, uint32_t max_idle, uint32_t idle_timeout_ms)
{
    *pool = (net_tls_pool_t){.ctx = ctx,
                             .loop = loop,
                             .tcp = tcp,
                             .getaddr_receiver = getaddr_receiver,
                             .host = host,
                             .named = named,
                             .max_idle = max_idle};
    h2o_linklist_init_anchor(&pool->idle);
    h2o_timeout_init(loop, &pool->idle_timeout, idle_timeout_ms);
}

void net_tls_pool_dispose(net_tls_pool_t *pool)
{
    while (!h2o_linklist_is_empty(&pool->idle)) /* bounded by max_idle */
        close_conn(H2O_STRUCT_FROM_MEMBER(net_tls_conn_t, idle_link, pool->idle.next));
    h2o_timeout_dispose(pool->loop, &pool->idle_timeout);
    tls_wolf_thread_done(); /* this runs on the worker's thread, which is done with TLS */
}

bool net_tls_request(net_tls_conn_t **slot, net_tls_pool_t *pool, const h2o_iovec_t *bufs,
                     size_t num_bufs, bool method_is_head, const net_tls_callbacks_t *cb,
                     void *data)
{
    net_tls_conn_t *conn = NULL;
    bool reused = !h2o_linklist_is_empty(&pool->idle);
    if (reused) { /* the most recently used: the least likely to have been closed by the peer */
        conn = H2O_STRUCT_FROM_MEMBER(net_tls_conn_t, idle_link, pool->idle.prev);
        h2o_linklist_unlink(&conn->idle_link);
        --pool->num_idle;
        h2o_timeout_unlink(&conn->idle_entry);
    } else {
        conn = calloc(1, sizeof(*conn));
        if (conn == NULL) {
            *slot = NULL;
            cb->on_done(data, NET_HTTP_ERR_NO_MEMORY, false);
            return false;
        }
        conn->pool = pool;
        conn->idle_entry.cb = on_idle_timeout;
    }
    *slot = conn;
    conn->cb = cb;
    conn->data = data;
    conn->bufs = bufs;
    conn->num_bufs = num_bufs;
    conn->method_is_head = method_is_head;
    conn->sent = false;
    conn->phase = PHASE_HEAD;
    conn->head.len = 0;
    if (reused) {
        write_request(conn);
        return false;
    }
    h2o_socketpool_connect(&conn->connect_req, pool->tcp, pool->loop, pool->getaddr_receiver,
                           on_tcp_connected, conn);
    /* a named host is always resolved first, so the callback has not run yet */
    return pool->named;
}

void net_tls_cancel(net_tls_conn_t *conn)
{
    conn->cb = NULL;
    close_conn(conn);
}
