#include "net/websocket.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <h2o/websocket.h>
#include "runtime/worker.h"

struct st_net_ws_t {
    h2o_websocket_conn_t *conn;
    net_ws_config_t config;
    net_ws_closed_fn on_closed;
    void *data;
    uint64_t last_rx_ms, last_ping_ms;
    uint32_t depth; /* nesting of our calls into h2o: the end is deferred until it is 0 */
    bool closing;   /* a close frame was queued */
    bool gone;      /* h2o reported the connection closed */
};

/* Frees everything and tells the owner; `ws` is invalid afterwards. */
static void finish(net_ws_t *ws)
{
    h2o_websocket_close(ws->conn);
    net_ws_closed_fn cb = ws->on_closed;
    void *data = ws->data;
    free(ws);
    cb(data);
}

/* h2o ends the connection at once when wslay_event_recv fails, which wslay does on some
 * protocol errors (a fragmented or oversized control frame) after queuing a 1002 close that then
 * never leaves. Unless a write is in flight (frames must not interleave), that close goes out
 * here, best effort, so that the peer learns why. */
static void send_pending_protocol_close(h2o_websocket_conn_t *conn)
{
    if (conn->sock == NULL || h2o_socket_is_writing(conn->sock) ||
        wslay_event_get_close_sent(conn->ws_ctx) || !wslay_event_want_write(conn->ws_ctx))
        return;
    static const uint8_t frame[] = {0x88, 0x02, 1002 >> 8, 1002 & 0xff};
    ssize_t n =
        send(h2o_socket_get_fd(conn->sock), frame, sizeof(frame), MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)n; /* the connection ends either way */
}

static void on_ws_message(h2o_websocket_conn_t *conn, const struct wslay_event_on_msg_recv_arg *arg)
{
    net_ws_t *ws = conn->data;
    if (arg == NULL) {
        send_pending_protocol_close(conn);
        ws->gone = true;
        if (ws->depth == 0)
            finish(ws);
        return;
    }
    /* any frame, a pong above all, proves the peer alive; data messages are not part of the
     * protocol (the server only pushes) and are ignored; wslay answers pings and closes */
    ws->last_rx_ms = rt_now_ms();
}

/* Runs h2o's read/write loop over wslay. Returns false when the connection ended (and `ws` was
 * freed). Before the 101 is written there is no socket yet: frames stay queued in wslay. */
static bool proceed(net_ws_t *ws)
{
    if (ws->conn->sock != NULL && !ws->gone) {
        ++ws->depth;
        h2o_websocket_proceed(ws->conn);
        --ws->depth;
    }
    if (ws->gone && ws->depth == 0) {
        finish(ws);
        return false;
    }
    return true;
}

int net_ws_is_handshake(h2o_req_t *req, const char **client_key)
{
    if (h2o_is_websocket_handshake(req, client_key) != 0)
        return -1;
    return *client_key != NULL ? 1 : 0;
}

net_ws_t *net_ws_upgrade(h2o_req_t *req, const char *client_key, const char *subprotocol,
                         const net_ws_config_t *config, net_ws_closed_fn on_closed, void *data)
{
    net_ws_t *ws = h2o_mem_alloc(sizeof(*ws));
    memset(ws, 0, sizeof(*ws));
    ws->config = *config;
    ws->on_closed = on_closed;
    ws->data = data;
    ws->last_rx_ms = ws->last_ping_ms = rt_now_ms();
    if (subprotocol != NULL)
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("sec-websocket-protocol"),
                              0, NULL, subprotocol, strlen(subprotocol));
    /* h2o may report the end from inside the upgrade (when the 101 cannot be written); the
     * depth defers it until `ws->conn` is set */
    ++ws->depth;
    ws->conn = h2o_upgrade_to_websocket(req, client_key, ws, on_ws_message);
    --ws->depth;
    wslay_event_config_set_max_recv_msg_length(ws->conn->ws_ctx, config->max_message_bytes);
    if (ws->gone) {
        finish(ws);
        return NULL;
    }
    return ws;
}

bool net_ws_is_closing(const net_ws_t *ws)
{
    return ws->closing || wslay_event_get_close_received(ws->conn->ws_ctx) ||
           wslay_event_get_close_sent(ws->conn->ws_ctx);
}

net_ws_send_t net_ws_send_text(net_ws_t *ws, const void *text, size_t len)
{
    if (net_ws_is_closing(ws))
        return NET_WS_CLOSED;
    wslay_event_context_ptr ctx = ws->conn->ws_ctx;
    if (wslay_event_get_queued_msg_count(ctx) >= ws->config.queue_max_frames ||
        wslay_event_get_queued_msg_length(ctx) + len > ws->config.queue_max_bytes) {
        net_ws_close(ws, 1013, "slow consumer: outgoing queue full");
        return NET_WS_OVERFLOW;
    }
    struct wslay_event_msg msg = {WSLAY_TEXT_FRAME, text, len};
    if (wslay_event_queue_msg(ctx, &msg) != 0) {
        net_ws_close(ws, 1011, "cannot queue");
        return NET_WS_CLOSED;
    }
    return proceed(ws) ? NET_WS_SENT : NET_WS_CLOSED;
}

void net_ws_close(net_ws_t *ws, uint16_t code, const char *reason)
{
    if (net_ws_is_closing(ws))
        return;
    ws->closing = true;
    size_t len = strlen(reason);
    wslay_event_queue_close(ws->conn->ws_ctx, code, (const uint8_t *)reason, len > 123 ? 123 : len);
    proceed(ws);
}

bool net_ws_abort(net_ws_t *ws)
{
    assert(ws->depth == 0);
    if (ws->conn->sock == NULL)
        return false; /* the 101 is still being written: h2o owns the connection until then */
    finish(ws);
    return true;
}

void net_ws_tick(net_ws_t *ws, uint64_t now_ms)
{
    if (net_ws_is_closing(ws))
        return;
    if (now_ms - ws->last_rx_ms >= ws->config.idle_timeout_ms) {
        net_ws_close(ws, 1001, "idle: no pong");
        return;
    }
    if (now_ms - ws->last_ping_ms < ws->config.ping_interval_ms)
        return;
    ws->last_ping_ms = now_ms;
    struct wslay_event_msg ping = {WSLAY_PING, (const uint8_t *)"k", 1};
    if (wslay_event_queue_msg(ws->conn->ws_ctx, &ping) == 0)
        proceed(ws);
}
