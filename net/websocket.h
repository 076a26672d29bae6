/*
 * WebSocket server connections (RFC 6455) on the worker's h2o loop.
 *
 * h2o 2.2.5's helper (h2o/websocket.h) does the handshake answer and runs wslay (framing,
 * masking, UTF-8 of close reasons, automatic pong and close replies) over the upgraded socket;
 * this module adds what a long-lived server push needs on top of it:
 * - a bounded outgoing queue: a send that would exceed `queue_max_frames` or
 *   `queue_max_bytes` closes the connection with 1013 instead of buffering without end;
 * - refusal of oversized client messages (wslay closes with 1009) and malformed frames (1002);
 * - keepalive: net_ws_tick sends a ping every `ping_interval_ms` and closes (1001) a peer that
 *   was silent (no pong, no frame) for `idle_timeout_ms`;
 * - a close with a code and reason, and net_ws_abort to drop a peer that never completes it.
 *
 * A connection belongs to the worker that accepted it: every call here must be made on that
 * worker's thread (its h2o callbacks and actors homed there run on it). The owner learns once,
 * through `on_closed`, that the connection is gone; the net_ws_t is freed right after that
 * callback returns and must not be used again. Nothing here blocks.
 */
#ifndef NET_WEBSOCKET_H
#define NET_WEBSOCKET_H

#include <h2o.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct st_net_ws_t net_ws_t;

/** Limits of one connection. */
typedef struct st_net_ws_config_t {
    uint32_t queue_max_frames;  /* frames waiting to be written */
    uint32_t queue_max_bytes;   /* bytes waiting to be written */
    uint32_t max_message_bytes; /* largest message accepted from the peer */
    uint64_t ping_interval_ms;
    uint64_t idle_timeout_ms;
} net_ws_config_t;

/** Called once when the connection is gone (closed by either side, or failed). */
typedef void (*net_ws_closed_fn)(void *data);

/** What net_ws_send_text did. */
typedef enum en_net_ws_send_t {
    NET_WS_SENT,     /* queued */
    NET_WS_OVERFLOW, /* the queue is full: closing with 1013 (the frame is dropped) */
    NET_WS_CLOSED,   /* closing or closed: dropped */
} net_ws_send_t;

/** 1 when `req` is a WebSocket handshake (`*client_key` then points at its key), 0 when it is
 * not one, -1 when it is a malformed one (a key of the wrong length). */
int net_ws_is_handshake(h2o_req_t *req, const char **client_key);
/** Answers the handshake with 101 (echoing `subprotocol` when not NULL) and returns the
 * connection, which starts once the 101 is written; frames sent before are queued. */
net_ws_t *net_ws_upgrade(h2o_req_t *req, const char *client_key, const char *subprotocol,
                         const net_ws_config_t *config, net_ws_closed_fn on_closed, void *data);
/** Queues a text message. May call `on_closed` before returning (then NET_WS_CLOSED or
 * NET_WS_OVERFLOW, and `ws` is gone). */
net_ws_send_t net_ws_send_text(net_ws_t *ws, const void *text, size_t len);
/** Starts the closing handshake with `code` and `reason` (<= 123 bytes). The connection ends
 * when the peer answers; net_ws_abort ends it sooner. May call `on_closed`. */
void net_ws_close(net_ws_t *ws, uint16_t code, const char *reason);
/** True once a close was sent or received. */
bool net_ws_is_closing(const net_ws_t *ws);
/** Drops the connection now, without waiting, and calls `on_closed`; false (nothing done) while
 * the 101 is still being written, when the caller should try again later. */
bool net_ws_abort(net_ws_t *ws);
/** Keepalive, at `now_ms` (monotonic): pings when due, closes an idle peer. Call about every
 * ping_interval_ms. May call `on_closed`. */
void net_ws_tick(net_ws_t *ws, uint64_t now_ms);

#endif
