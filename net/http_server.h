/*
 * The HTTP server: one h2o context per worker, on the worker's own thread.
 *
 * net_http_waiter() is the runtime waiter (runtime/worker.h) that makes each worker sleep in
 * h2o_evloop_run instead of poll(2): the worker's wake eventfd is registered with h2o as a
 * socket it only watches (H2O_SOCKET_FLAG_DONT_READ), so one epoll_wait covers HTTP sockets,
 * ring completions and cross-worker wake-ups. Every worker opens its own listening socket on
 * the same address with SO_REUSEPORT, and the kernel spreads connections over them.
 *
 * Routes are registered before the runtime starts and are read-only afterwards. net/ knows
 * nothing of intents: the domain registers its own handlers.
 *
 * A program that only needs the outbound client (net/http_client.h) creates the server with
 * port 0: every worker still runs an h2o loop, but nothing listens.
 */
#ifndef NET_HTTP_SERVER_H
#define NET_HTTP_SERVER_H

#include <h2o.h>
#include <stdbool.h>
#include <stdint.h>
#include "net/http_util.h"
#include "runtime/worker.h"

typedef struct st_net_http_server_t net_http_server_t;

/** A request handler: return 0 when it answered (or will answer), -1 to pass (404). */
typedef int (*net_http_handler_fn)(h2o_req_t *req, void *data);

/** Creates the server configuration; nothing listens until the runtime starts. Port 0: never
 * listen, only run an h2o loop on every worker (for the outbound HTTP client). */
net_http_server_t *net_http_create(const char *bind_address, uint16_t port);
/** Registers `handler` for requests whose path starts with `path`. Before start only. */
void net_http_route(net_http_server_t *server, const char *path, net_http_handler_fn handler,
                    void *data);
/** CORS for the errors h2o answers before any handler runs (a body over the size limit), which
 * are otherwise answered as the router answers its own problems: the router's `cors`, borrowed,
 * read-only, outliving the server. Before start only. */
void net_http_set_cors(net_http_server_t *server, const net_http_cors_t *cors);
/** The runtime waiter that runs this server on every worker. */
rt_waiter_t *net_http_waiter(net_http_server_t *server);
/** The calling worker's h2o event loop, or NULL when not on a worker running this waiter. Its
 * callbacks run on this same thread, inside the waiter's wait. */
h2o_loop_t *net_http_worker_loop(void);
/** Frees the configuration, after the runtime has stopped. */
void net_http_free(net_http_server_t *server);

/** Runs a copy of `src` (method, path, query and headers, not its body) through the server's
 * handlers again, from this worker's loop soon after the call, detached from any client: the
 * copy's answer passes its response hooks (net_http_hook_response) and prefilters as usual and is
 * then dropped. Used to renew a cached answer in the background while the client that prompted
 * it is answered from the cache. The copy is given up after a deadline (5 s) like a request
 * whose client left. False when not on a worker of this server or when too many replays (256)
 * are under way on it. */
bool net_http_replay(h2o_req_t *src);
/** True for a request that net_http_replay made (not a client's). */
bool net_http_is_replay(h2o_req_t *req);

/** Answers with `status` and a body (copied into the request's pool). */
void net_http_respond(h2o_req_t *req, int status, const char *reason, const char *content_type,
                      const char *body, size_t body_len);

#endif
