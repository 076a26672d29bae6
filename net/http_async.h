/*
 * Answering an HTTP request later, from an actor.
 *
 * An API handler that needs the database or the chain cannot answer inside its h2o callback.
 * It begins an async call: a short-lived actor on the same worker that owns the request while
 * replies (store_pg, chain_rpc, Redis) come back to it as messages, and a continuation that
 * runs for each reply. Because the actor and h2o share the worker's thread, the continuation
 * may use the h2o request directly.
 *
 * If the client goes away first, h2o frees the request; the call learns it through a dispose
 * hook on the request's memory pool, net_http_async_req() then returns NULL, and the
 * continuation should just clean up and end. Every call ends with net_http_async_end, which
 * stops the actor; replies still in flight are then dropped and freed by the runtime.
 */
#ifndef NET_HTTP_ASYNC_H
#define NET_HTTP_ASYNC_H

#include <h2o.h>
#include <stdbool.h>
#include <stddef.h>
#include "runtime/actor.h"

typedef struct st_net_http_async_t net_http_async_t;

/** Runs for each message the call's actor receives (a reply it asked for). */
typedef void (*net_http_async_fn)(net_http_async_t *call, rt_msg_t *msg);

/** Starts a call for `req` on the calling worker, with `state_size` zeroed bytes of state.
 * Must be called from an h2o handler (on a worker). */
net_http_async_t *net_http_async_begin(h2o_req_t *req, net_http_async_fn on_message,
                                       size_t state_size);
/** The actor to pass as `self` when asking for replies. */
rt_actor_t *net_http_async_actor(net_http_async_t *call);
/** The call's state area. */
void *net_http_async_state(net_http_async_t *call);
/** The request, or NULL when the client has gone away (h2o freed it). */
h2o_req_t *net_http_async_req(net_http_async_t *call);
/** Ends the call: the actor stops after the current message. Call exactly once, from the
 * continuation (or from the handler if nothing was sent). */
void net_http_async_end(net_http_async_t *call);

#endif
