#include "net/http_async.h"
#include <assert.h>
#include "runtime/worker.h"

struct st_net_http_async_t {
    rt_actor_t *actor;
    h2o_req_t *req; /* NULL once h2o has freed it */
    net_http_async_fn on_message;
    bool in_behaviour, ended;
    /* the caller's state follows, 8-byte aligned like every actor's state */
};

/* The request's pool is being released: the request is over (answered and sent, or the client
 * left). The slot's reference keeps the actor's memory valid until this point. */
static void on_request_disposed(void *slot)
{
    net_http_async_t *call = *(net_http_async_t **)slot;
    call->req = NULL;
    rt_actor_release(call->actor);
}

static void behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    net_http_async_t *call = rt_actor_state(self);
    if (msg->type == RT_MSG_STOP || call->ended)
        return;
    call->in_behaviour = true;
    call->on_message(call, msg);
    call->in_behaviour = false;
}

net_http_async_t *net_http_async_begin(h2o_req_t *req, net_http_async_fn on_message,
                                       size_t state_size)
{
    rt_worker_t *w = rt_worker_current();
    assert(w != NULL && on_message != NULL);
    rt_actor_t *actor =
        rt_actor_spawn(w->rt, w->id, behaviour, sizeof(net_http_async_t) + state_size);
    net_http_async_t *call = rt_actor_state(actor);
    call->actor = actor;
    call->req = req;
    call->on_message = on_message;
    /* the reference rt_actor_spawn gave us now belongs to the request's pool */
    net_http_async_t **slot = h2o_mem_alloc_shared(&req->pool, sizeof(*slot), on_request_disposed);
    *slot = call;
    return call;
}

rt_actor_t *net_http_async_actor(net_http_async_t *call)
{
    return call->actor;
}

void *net_http_async_state(net_http_async_t *call)
{
    return call + 1;
}

h2o_req_t *net_http_async_req(net_http_async_t *call)
{
    return call->req;
}

void net_http_async_end(net_http_async_t *call)
{
    assert(!call->ended);
    call->ended = true;
    if (call->in_behaviour)
        rt_actor_stop(call->actor);
    else
        rt_actor_send_stop(call->actor);
}
