/*
 * The outbound HTTP/1.1 client: actors send requests and get each response back as a message.
 *
 * It runs on the worker's own h2o loop (net/http_server.h; port 0 there when nothing needs to
 * listen), with h2o 2.2.5's h2o_http1client over one h2o_socketpool per worker and endpoint, so
 * connections are kept alive and reused without locks. As with runtime/io.h, an actor asks from
 * its own behaviour and the completion arrives later, on its home worker, as a
 * NET_HTTP_MSG_RESPONSE message carrying net_http_response_t.
 *
 * Every request gets exactly one response message, unless net_http_request refuses it at once
 * (and then none). Everything is bounded: at most `max_connections` requests in flight per worker
 * and endpoint, at most `max_waiting` more queued behind them (then NET_HTTP_ERR_BUSY), a
 * response body cap, and a connect deadline and a total deadline per request, kept in a min-heap
 * behind one timerfd per worker so that any mix of timeouts costs one wake-up each.
 *
 * Endpoints are registered before the runtime starts. https endpoints go through wolfSSL
 * (net/tls_client.h, since h2o 2.2.5's client speaks TLS only through OpenSSL) with the same
 * queueing, limits, deadlines and response message; the connect deadline then covers the TLS
 * handshake too. The server's certificate must chain to a CA in `ca_file` and name the URL's
 * host; only TLS 1.2 and later are spoken.
 *
 * No pipelining (h2o's client does not do it): one request per connection at a time.
 */
#ifndef NET_HTTP_CLIENT_H
#define NET_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "runtime/actor.h"
#include "runtime/worker.h"

/** Message type of a completed request; the payload is net_http_response_t, corr is the tag.
 * net/ uses types 0x4e00-0x4eff. */
#define NET_HTTP_MSG_RESPONSE 0x4e01
/** Most endpoints one client can hold. */
#define NET_HTTP_MAX_ENDPOINTS 16
/** Most extra headers per request. */
#define NET_HTTP_MAX_HEADERS 16

/** Result codes. Synchronous refusals come back from net_http_request; the others arrive in the
 * response's `error`. An HTTP status (404, 429, 500...) is not an error at this layer. */
typedef enum en_net_http_err_t {
    NET_HTTP_OK = 0,
    NET_HTTP_ERR_INVALID = -1,         /* bad argument: unknown endpoint, CR/LF in a header... */
    NET_HTTP_ERR_BUSY = -2,            /* the endpoint's queue on this worker is full */
    NET_HTTP_ERR_SHUTDOWN = -3,        /* the runtime is draining */
    NET_HTTP_ERR_CONNECT = -4,         /* refused, unreachable, reset or unresolvable: not sent */
    NET_HTTP_ERR_CONNECT_TIMEOUT = -5, /* no connection within the connect timeout: not sent */
    NET_HTTP_ERR_TIMEOUT = -6,         /* no complete response within the total timeout */
    NET_HTTP_ERR_CLOSED = -7,          /* the peer closed before the response was complete */
    NET_HTTP_ERR_BAD_RESPONSE = -8,    /* not HTTP/1.x, or a malformed head or chunk */
    NET_HTTP_ERR_TOO_LARGE = -9,       /* the body exceeds max_response_bytes */
    NET_HTTP_ERR_UNSUPPORTED = -10,    /* a scheme other than http and https */
    NET_HTTP_ERR_NO_MEMORY = -11,
    NET_HTTP_ERR_TLS = -12, /* https: the handshake failed (certificate untrusted or for another
                               host, no common protocol) or the TLS stream broke; not sent when
                               it happened in the handshake (see maybe_sent) */
} net_http_err_t;

/** Limits and defaults; a zero field takes the default shown. */
typedef struct st_net_http_client_config_t {
    uint32_t max_connections;    /* per worker and endpoint (8) */
    uint32_t max_waiting;        /* queued behind them, per worker and endpoint (64) */
    uint32_t max_request_bytes;  /* request body (1 MiB) */
    uint32_t max_response_bytes; /* response body (8 MiB) */
    uint32_t connect_timeout_ms; /* default per request (3000) */
    uint32_t timeout_ms;         /* default total per request, queueing included (10000) */
    uint32_t max_timeout_ms;     /* per-request timeouts are clamped to this (120000) */
    uint32_t idle_timeout_ms;    /* an idle kept-alive connection is closed after this (20000) */
    /* PEM file of the CAs trusted for https, read when the first https endpoint is added
     * (NULL: the system bundle, /etc/ssl/certs/ca-certificates.crt) */
    const char *ca_file;
} net_http_client_config_t;

/** One extra request header. */
typedef struct st_net_http_header_t {
    const char *name;
    const char *value;
} net_http_header_t;

/** A request; everything is copied by net_http_request, so it may live on the stack. */
typedef struct st_net_http_request_t {
    int endpoint;                     /* from net_http_client_add_endpoint */
    const char *method;               /* NULL: POST with a body, GET without */
    const char *path;                 /* appended to the endpoint URL's path; NULL: nothing */
    const char *content_type;         /* NULL: application/json when there is a body */
    const void *body;                 /* may be NULL when body_len is 0 */
    size_t body_len;                  /* at most max_request_bytes */
    const net_http_header_t *headers; /* extra headers, at most NET_HTTP_MAX_HEADERS */
    size_t num_headers;
    uint32_t connect_timeout_ms; /* 0: the client's default */
    uint32_t timeout_ms;         /* total, from this call to the last body byte; 0: default */
} net_http_request_t;

/** Payload of NET_HTTP_MSG_RESPONSE. The body follows the struct, NUL-terminated. */
typedef struct st_net_http_response_t {
    uint64_t id;             /* as net_http_request returned it */
    uint64_t tag;            /* as the actor passed it */
    int32_t error;           /* NET_HTTP_OK or a net_http_err_t */
    int32_t status;          /* HTTP status when a response head arrived, else 0 */
    uint32_t retry_after_ms; /* from a Retry-After in seconds (capped at an hour), else 0 */
    uint32_t elapsed_ms;     /* from net_http_request to completion */
    /* false only when the request provably never left this process (it waited in the queue,
     * or its connection was never established): the only failures safe to retry blindly for a
     * request that is not idempotent */
    bool maybe_sent;
    uint32_t body_len;
    char body[]; /* body_len bytes and a NUL */
} net_http_response_t;

/** The response carried by a NET_HTTP_MSG_RESPONSE message. */
static inline net_http_response_t *net_http_response(rt_msg_t *msg);

typedef struct st_net_http_client_t net_http_client_t;

/** Creates a client with `config` (NULL: all defaults). Before the runtime starts. */
net_http_client_t *net_http_client_create(const net_http_client_config_t *config);
/** Registers the endpoint at `url` ("http[s]://host[:port][/base/path]"; host is an IPv4 literal
 * or a name, resolved by h2o's resolver threads; for https, a name the certificate must match).
 * Returns its index (>= 0), or a negative net_http_err_t with a reason in `err`. Before the runtime
 * starts. */
int net_http_client_add_endpoint(net_http_client_t *client, const char *url, char *err,
                                 size_t err_size);
/** Wraps `inner` (which must be net_http_waiter's) into the waiter that also runs this client
 * on every worker: shutdown then waits for requests in flight, and the client is torn down on
 * each worker's thread. Pass the result as rt_config_t.waiter. */
rt_waiter_t *net_http_client_waiter(net_http_client_t *client, rt_waiter_t *inner);
/** Frees the client, after rt_runtime_join_and_free. */
void net_http_client_free(net_http_client_t *client);

/**
 * Starts `req` on behalf of `self`, from self's own behaviour. Returns NET_HTTP_OK and sets
 * `*id` (if not NULL): one NET_HTTP_MSG_RESPONSE with `tag` will follow. Otherwise returns
 * NET_HTTP_ERR_INVALID, _BUSY, _SHUTDOWN or _NO_MEMORY, and no message will come. O(log n) in
 * the requests in flight on this worker.
 */
int net_http_request(rt_actor_t *self, net_http_client_t *client, const net_http_request_t *req,
                     uint64_t tag, uint64_t *id);

/** A short English description of a net_http_err_t, for logs; never NULL. */
const char *net_http_strerror(int err);

/** Per-client counters summed over workers (for /metrics and tests). */
typedef struct st_net_http_client_stats_t {
    uint64_t requests;     /* accepted by net_http_request */
    uint64_t refused_busy; /* NET_HTTP_ERR_BUSY */
    uint64_t completed_ok; /* a whole response arrived */
    uint64_t failed;       /* any other completion */
    uint64_t timeouts;     /* NET_HTTP_ERR_TIMEOUT and _CONNECT_TIMEOUT */
} net_http_client_stats_t;

/** Reads the counters (relaxed; from any thread). */
void net_http_client_stats(net_http_client_t *client, net_http_client_stats_t *stats);

/* inline definitions */

static inline net_http_response_t *net_http_response(rt_msg_t *msg)
{
    return (net_http_response_t *)rt_msg_payload(msg);
}

#endif
