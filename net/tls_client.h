/*
 * The https half of net/http_client: one HTTP/1.1 exchange at a time over a wolfSSL connection,
 * with kept-alive connections per worker and endpoint. Only net/http_client.c uses it; the
 * queueing, deadlines and the response message stay there, so https behaves like http.
 *
 * A connection is an h2o socket (the endpoint's h2o_socketpool connects it and resolves names on
 * h2o's resolver threads; the socket is never returned to that pool) with a WOLFSSL on top
 * whose I/O callbacks read the ciphertext h2o buffered and queue what wolfSSL writes for
 * h2o_socket_write. Responses are framed with the picohttpparser inside libh2o: Content-Length,
 * chunked, or until close. Certificates are verified against a CA file, with the host name
 * checked and sent as SNI; TLS 1.2 and later only.
 */
#ifndef NET_TLS_CLIENT_H
#define NET_TLS_CLIENT_H

#include <h2o.h>
#include <h2o/socketpool.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* libh2o-evloop exports picohttpparser (phr_parse_response, phr_decode_chunked) but Debian
 * ships no picohttpparser.h; these are the declarations of the version bundled with h2o 2.2.5
 * (deps/picohttpparser). */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
struct phr_chunked_decoder {
    size_t bytes_left_in_chunk;
    char consume_trailer;
    char _hex_count;
    char _state;
};
int phr_parse_response(const char *buf, size_t len, int *minor_version, int *status,
                       const char **msg, size_t *msg_len, struct phr_header *headers,
                       size_t *num_headers, size_t last_len);
ssize_t phr_decode_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *bufsz);

/** The wolfSSL context shared by every worker (read-only once created). */
typedef struct st_net_tls_ctx_t net_tls_ctx_t;
/** One TLS connection; while an exchange runs it belongs to that exchange. */
typedef struct st_net_tls_conn_t net_tls_conn_t;

/** Creates the context, trusting the CA certificates in `ca_file` (PEM; NULL: the system
 * bundle). NULL with a reason in `err` on failure. */
net_tls_ctx_t *net_tls_ctx_create(const char *ca_file, char *err, size_t err_size);
void net_tls_ctx_free(net_tls_ctx_t *ctx);

/** An endpoint's TLS connections on one worker. The fields are private. */
typedef struct st_net_tls_pool_t {
    net_tls_ctx_t *ctx;
    h2o_loop_t *loop;
    h2o_socketpool_t *tcp; /* connects; sockets never go back to it */
    h2o_multithread_receiver_t *getaddr_receiver;
    const char *host;
    bool named;
    uint32_t max_idle;
    uint32_t num_idle;
    h2o_linklist_t idle; /* kept-alive connections, most recently used last */
    h2o_timeout_t idle_timeout;
} net_tls_pool_t;

/** How an exchange reports to its owner. Callbacks never run inside net_tls_request except
 * on_sent and (on failure) on_done when an idle connection is reused. */
typedef struct st_net_tls_callbacks_t {
    /* the connection is up and verified: the request is being written (maybe_sent from now) */
    void (*on_sent)(void *data);
    /* the response head; NET_HTTP_OK to go on, else the error to end with */
    int (*on_head)(void *data, int status, const struct phr_header *headers, size_t num_headers);
    /* body bytes; NET_HTTP_OK to go on, else the error to end with */
    int (*on_body)(void *data, const char *bytes, size_t len);
    /* the end (a net_http_err_t); the exchange is over and its slot must be forgotten */
    void (*on_done)(void *data, int error, bool maybe_sent);
} net_tls_callbacks_t;

/** Sets up `pool` for `host` (kept, not copied) over `tcp`. Keeps up to `max_idle` connections
 * idle for at most `idle_timeout_ms`. */
void net_tls_pool_init(net_tls_pool_t *pool, net_tls_ctx_t *ctx, h2o_loop_t *loop,
                       h2o_socketpool_t *tcp, h2o_multithread_receiver_t *getaddr_receiver,
                       const char *host, bool named, uint32_t max_idle, uint32_t idle_timeout_ms);
/** Closes the idle connections and frees what wolfSSL keeps for this thread; on the worker's
 * thread, after its exchanges ended or were cancelled. */
void net_tls_pool_dispose(net_tls_pool_t *pool);

/**
 * Sends the request in `bufs` (kept, not copied, until on_done) on an idle connection, else on
 * a new one, and stores the exchange in `*slot` before any callback runs. Returns true when a
 * name lookup was started on h2o's resolver (it answers even if cancelled).
 */
bool net_tls_request(net_tls_conn_t **slot, net_tls_pool_t *pool, const h2o_iovec_t *bufs,
                     size_t num_bufs, bool method_is_head, const net_tls_callbacks_t *cb,
                     void *data);
/** Abandons an exchange: closes its connection; no callback follows. */
void net_tls_cancel(net_tls_conn_t *conn);

#endif
