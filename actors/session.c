/*
 * The session actor (one per user with open sockets) and the socket actor (one per socket, on
 * the worker that accepted it). See actors/session.h for who runs where.
 */
#include "actors/session.h"
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "net/problem.h"
#include "net/websocket.h"
#include "runtime/log.h"
#include "runtime/worker.h"

/* A hard cap on sockets per user, whatever the configuration says (session state is fixed). */
#define SESSION_MAX_SOCKETS 64

enum { SOCKET_MSG_START = SESSION_MSG_CLOSE + 1 };
enum { TAG_TICK = 1, TAG_EXPIRY, TAG_GRACE };

/* ---- the session: one user's sockets ---- */

typedef struct st_session_socket_t {
    rt_actor_t *actor; /* holds a reference */
    bool closing;      /* told to close: send it nothing more */
} session_socket_t;

typedef struct st_session_state_t {
    events_t *events;
    uint32_t nsockets;
    session_socket_t sockets[SESSION_MAX_SOCKETS];
    char user_id[SESSION_USER_ID_SIZE];
} session_state_t;

size_t session_state_size(void)
{
    return sizeof(session_state_t);
}

void session_init(rt_actor_t *session, events_t *events, const char *user_id)
{
    session_state_t *st = rt_actor_state(session);
    st->events = events;
    snprintf(st->user_id, sizeof(st->user_id), "%s", user_id);
    events__count(events, EVENTS_STAT_SESSIONS, 1);
}

static void dispose_frame_msg(rt_msg_t *msg)
{
    session_frame_msg_t *f = rt_msg_payload(msg);
    session_frame_release(f->frame);
    f->frame = NULL;
}

/* Hands the frame to every socket. A socket whose mailbox already holds its bound of frames is
 * not keeping up: it is told to close rather than queued for. */
static void session_fan_out(session_state_t *st, session_frame_t *frame)
{
    uint32_t bound = events_config(st->events)->queue_max_frames;
    for (uint32_t i = 0; i != st->nsockets; ++i) {
        session_socket_t *s = &st->sockets[i];
        if (s->closing)
            continue;
        rt_msg_t *msg = rt_msg_new(SESSION_MSG_FRAME, sizeof(session_frame_msg_t));
        session_frame_retain(frame);
        ((session_frame_msg_t *)rt_msg_payload(msg))->frame = frame;
        msg->dispose = dispose_frame_msg;
        if (!rt_actor_try_send(s->actor, msg, bound)) {
            rt_msg_free(msg);
            s->closing = true;
            events__count(st->events, EVENTS_STAT_SLOW, 1);
            rt_actor_send(s->actor, session_close_msg(1013, "slow consumer: too many events"));
        }
    }
}

static void session_attach(session_state_t *st, rt_actor_t *socket)
{
    uint32_t max = events_config(st->events)->max_sockets_per_user;
    if (max > SESSION_MAX_SOCKETS)
        max = SESSION_MAX_SOCKETS;
    if (st->nsockets >= max) {
        rt_actor_send(socket, session_close_msg(1008, "too many sockets for this user"));
        return;
    }
    rt_actor_retain(socket);
    st->sockets[st->nsockets++] = (session_socket_t){.actor = socket};
}

static void session_detach(session_state_t *st, rt_actor_t *socket)
{
    for (uint32_t i = 0; i != st->nsockets; ++i) {
        if (st->sockets[i].actor == socket) {
            rt_actor_release(socket);
            st->sockets[i] = st->sockets[--st->nsockets];
            return;
        }
    }
}

void session_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    session_state_t *st = rt_actor_state(self);
    switch (msg->type) {
    case SESSION_MSG_EVENT:
        session_fan_out(st, ((session_event_t *)rt_msg_payload(msg))->frame);
        break;
    case SESSION_MSG_ATTACH:
        session_attach(st, ((session_member_t *)rt_msg_payload(msg))->socket);
        break;
    case SESSION_MSG_DETACH:
        session_detach(st, ((session_member_t *)rt_msg_payload(msg))->socket);
        break;
    case RT_MSG_STOP: /* the last socket left, or the process is stopping: close what is left */
        for (uint32_t i = 0; i != st->nsockets; ++i) {
            rt_actor_send(st->sockets[i].actor, session_close_msg(1001, "server going away"));
            rt_actor_release(st->sockets[i].actor);
        }
        st->nsockets = 0;
        events__count(st->events, EVENTS_STAT_SESSIONS, -1);
        break;
    default:
        break;
    }
}

/* ---- the socket: one WebSocket, on the worker that accepted it ---- */

typedef struct st_socket_state_t {
    events_t *events;
    net_ws_t *ws;    /* NULL once the connection is gone */
    rt_actor_t *hub; /* holds a reference */
    int64_t exp_s;   /* the token's expiry */
    rt_actor_timer_t tick, expiry, grace;
    bool grace_armed;
    char user_id[SESSION_USER_ID_SIZE];
} socket_state_t;

static void dispose_member(rt_msg_t *msg)
{
    session_member_t *m = rt_msg_payload(msg);
    if (m->socket != NULL)
        rt_actor_release(m->socket);
    m->socket = NULL;
}

static rt_msg_t *member_msg(uint32_t type, rt_actor_t *socket, const char *user_id)
{
    rt_msg_t *msg = rt_msg_new(type, sizeof(session_member_t));
    session_member_t *m = rt_msg_payload(msg);
    rt_actor_retain(socket);
    m->socket = socket;
    snprintf(m->user_id, sizeof(m->user_id), "%s", user_id);
    msg->dispose = dispose_member;
    return msg;
}

/* The WebSocket is gone (h2o's callback, on this worker): the actor cleans up and stops. */
static void socket_closed(void *data)
{
    rt_actor_t *self = data;
    socket_state_t *st = rt_actor_state(self);
    st->ws = NULL;
    rt_actor_send_stop(self);
}

/* A close was started: a peer that does not finish it within the grace period is dropped. */
static void socket_closing(rt_actor_t *self, socket_state_t *st)
{
    if (st->ws == NULL || st->grace_armed)
        return;
    st->grace_armed = true;
    rt_actor_timer_start(self, &st->grace, events_config(st->events)->close_grace_ms, TAG_GRACE);
}

static void socket_close(rt_actor_t *self, socket_state_t *st, uint16_t code, const char *reason)
{
    if (st->ws == NULL)
        return;
    net_ws_close(st->ws, code, reason);
    socket_closing(self, st);
}

static void socket_on_timer(rt_actor_t *self, socket_state_t *st, uint64_t tag)
{
    if (st->ws == NULL)
        return;
    if (tag == TAG_GRACE) {
        if (!net_ws_abort(st->ws)) /* not upgraded yet: once more after the grace period */
            rt_actor_timer_start(self, &st->grace, events_config(st->events)->close_grace_ms,
                                 TAG_GRACE);
    } else if (tag == TAG_EXPIRY) {
        socket_close(self, st, 4001, "token expired");
    } else if (tag == TAG_TICK) {
        net_ws_tick(st->ws, rt_now_ms());
        if (st->ws != NULL && net_ws_is_closing(st->ws))
            socket_closing(self, st);
        else if (st->ws != NULL)
            rt_actor_timer_start(self, &st->tick, events_config(st->events)->ping_interval_ms,
                                 TAG_TICK);
    }
}

static void socket_on_start(rt_actor_t *self, socket_state_t *st)
{
    const events_config_t *c = events_config(st->events);
    int64_t left_s = st->exp_s - (int64_t)time(NULL);
    rt_actor_timer_start(self, &st->tick, c->ping_interval_ms, TAG_TICK);
    rt_actor_timer_start(self, &st->expiry, left_s > 0 ? (uint64_t)left_s * 1000 : 0, TAG_EXPIRY);
}

static void socket_on_frame(rt_actor_t *self, socket_state_t *st, session_frame_t *frame)
{
    if (st->ws == NULL)
        return;
    switch (net_ws_send_text(st->ws, frame->text, frame->len)) {
    case NET_WS_SENT:
        events__count(st->events, EVENTS_STAT_DELIVERED, 1);
        break;
    case NET_WS_OVERFLOW:
        events__count(st->events, EVENTS_STAT_SLOW, 1);
        socket_closing(self, st);
        break;
    case NET_WS_CLOSED:
        break;
    }
}

static void socket_behaviour(rt_actor_t *self, rt_msg_t *msg)
{
    socket_state_t *st = rt_actor_state(self);
    switch (msg->type) {
    case SOCKET_MSG_START:
        socket_on_start(self, st);
        break;
    case SESSION_MSG_FRAME:
        socket_on_frame(self, st, ((session_frame_msg_t *)rt_msg_payload(msg))->frame);
        break;
    case SESSION_MSG_CLOSE: {
        session_close_t *c = rt_msg_payload(msg);
        socket_close(self, st, c->code, c->reason);
        break;
    }
    case RT_MSG_TIMER:
        socket_on_timer(self, st, msg->corr);
        break;
    case RT_MSG_STOP: /* the connection is gone (socket_closed) */
        rt_actor_timer_cancel(self, &st->tick);
        rt_actor_timer_cancel(self, &st->expiry);
        rt_actor_timer_cancel(self, &st->grace);
        rt_actor_send(st->hub, member_msg(SESSION_MSG_DETACH, self, st->user_id));
        rt_actor_release(st->hub);
        events__count(st->events, EVENTS_STAT_SOCKETS, -1);
        break;
    default:
        break;
    }
}

void session_accept(events_t *events, h2o_req_t *req, const char *client_key,
                    const char *subprotocol, const char *user_id, int64_t exp_s)
{
    rt_actor_t *hub = events__hub_of(events, user_id);
    rt_worker_t *worker = rt_worker_current();
    if (hub == NULL || worker == NULL) {
        net_problem_unavailable(req, 5);
        return;
    }
    const events_config_t *c = events_config(events);
    rt_actor_t *self =
        rt_actor_spawn(worker->rt, worker->id, socket_behaviour, sizeof(socket_state_t));
    socket_state_t *st = rt_actor_state(self);
    st->events = events;
    rt_actor_retain(hub);
    st->hub = hub;
    st->exp_s = exp_s;
    snprintf(st->user_id, sizeof(st->user_id), "%s", user_id);
    events__count(events, EVENTS_STAT_SOCKETS, 1);
    net_ws_config_t config = {.queue_max_frames = c->queue_max_frames,
                              .queue_max_bytes = c->queue_max_bytes,
                              .max_message_bytes = c->max_message_bytes,
                              .ping_interval_ms = c->ping_interval_ms,
                              .idle_timeout_ms = c->idle_timeout_ms};
    /* Attached before the 101 is written: an event published after the client saw the 101 is
     * queued at the hub behind the attach, so it reaches this socket. The start message (the
     * timers) goes before the upgrade: if that fails at once, the stop comes after it. */
    rt_actor_send(hub, member_msg(SESSION_MSG_ATTACH, self, st->user_id));
    rt_actor_send(self, rt_msg_new(SOCKET_MSG_START, 0));
    st->ws = net_ws_upgrade(req, client_key, subprotocol, &config, socket_closed, self);
    rt_actor_release(self);
}
