/*
 * Users' live sockets: the per-user session actor and the per-socket actor.
 *
 * Who runs where. A socket lives on the worker whose h2o loop accepted it, and only that worker
 * touches it: its *socket actor* is homed there and writes frames through h2o's WebSocket
 * support (net/websocket.h). A user's *session actor* holds all of that user's sockets, on any
 * worker, and fans each event out to them by message. Sessions are found through the *hubs* of
 * actors/events.c: one hub per worker, each owning the users whose id hashes to it; a hub
 * creates a user's session when their first socket attaches and stops it when the last one
 * detaches. Every step is one sender to one receiver, so the order of one producer's events
 * (the actor owning an intent) is kept up to each socket.
 *
 * Frames are serialised once per event and shared, reference counted, by every socket that
 * sends them. Each hop is bounded: socket actors take at most queue_max_frames messages
 * (rt_actor_try_send) and their WebSocket queue is bounded in frames and bytes; overflow closes
 * that socket (1013), never grows memory.
 *
 * Internal to actors/events.c, actors/session.c and actors/api_notifications.c.
 */
#ifndef ACTORS_SESSION_H
#define ACTORS_SESSION_H

#include <h2o.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "actors/events.h"
#include "runtime/actor.h"

/** Buffer for a user id (a UUID, or whatever a token's subject holds). */
#define SESSION_USER_ID_SIZE 129

/** A serialised event frame, shared by the sockets that send it. */
typedef struct st_session_frame_t {
    _Atomic uint32_t refs;
    uint32_t len;
    char text[]; /* {"type","at","data"}, not NUL-terminated */
} session_frame_t;

/** Message types between hubs, sessions and sockets. */
enum {
    SESSION_MSG_EVENT = RT_MSG_USER + 0x700, /* session_event_t: to a hub, then to a session */
    SESSION_MSG_ATTACH,                      /* session_member_t: socket -> hub -> session */
    SESSION_MSG_DETACH,                      /* session_member_t: socket -> hub -> session */
    SESSION_MSG_FRAME,                       /* session_frame_msg_t: session -> socket */
    SESSION_MSG_CLOSE,                       /* session_close_t: session -> socket */
};

/** Payload of SESSION_MSG_EVENT; the message's dispose releases `frame`. */
typedef struct st_session_event_t {
    session_frame_t *frame;
    bool from_redis; /* came from another process: deliver, do not publish again */
    char user_id[SESSION_USER_ID_SIZE];
} session_event_t;

/** Payload of SESSION_MSG_ATTACH and SESSION_MSG_DETACH; dispose releases `socket`. */
typedef struct st_session_member_t {
    rt_actor_t *socket;
    char user_id[SESSION_USER_ID_SIZE];
} session_member_t;

/** Payload of SESSION_MSG_FRAME; dispose releases `frame`. */
typedef struct st_session_frame_msg_t {
    session_frame_t *frame;
} session_frame_msg_t;

/** Payload of SESSION_MSG_CLOSE. */
typedef struct st_session_close_t {
    uint16_t code;
    char reason[64];
} session_close_t;

/** A frame holding a copy of `text` (one reference), or NULL when out of memory. */
session_frame_t *session_frame_new(const char *text, size_t len);
/** Adds a reference. Any thread. */
void session_frame_retain(session_frame_t *frame);
/** Drops a reference; the last frees. Any thread. NULL is ignored. */
void session_frame_release(session_frame_t *frame);
/** A SESSION_MSG_EVENT message carrying a new reference to `frame`. */
rt_msg_t *session_event_msg(session_frame_t *frame, const char *user_id, bool from_redis);
/** A SESSION_MSG_CLOSE message. */
rt_msg_t *session_close_msg(uint16_t code, const char *reason);

/** The session actor's behaviour; state is session_state_size() bytes, set up by
 * session_init. */
void session_behaviour(rt_actor_t *self, rt_msg_t *msg);
/** Size of a session actor's state. */
size_t session_state_size(void);
/** Sets up a just-spawned session actor for `user_id` (before any message reaches it). */
void session_init(rt_actor_t *session, events_t *events, const char *user_id);

/** Upgrades `req` (a WebSocket handshake, already authenticated as `user_id` whose token
 * expires at `exp_s`) and attaches the socket to the user's session. `subprotocol` is echoed
 * in Sec-WebSocket-Protocol when not NULL. Answers the request itself (101, or 503). */
void session_accept(events_t *events, h2o_req_t *req, const char *client_key,
                    const char *subprotocol, const char *user_id, int64_t exp_s);

/* provided by actors/events.c for session.c */

/** The hub actor of `user_id`, or NULL when the hubs are not running. */
rt_actor_t *events__hub_of(events_t *events, const char *user_id);
/** Counter updates (relaxed). */
void events__count(events_t *events, int which, int64_t delta);
enum { EVENTS_STAT_DELIVERED, EVENTS_STAT_SOCKETS, EVENTS_STAT_SLOW, EVENTS_STAT_SESSIONS };

#endif
