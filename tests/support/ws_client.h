/*
 * A small blocking WebSocket client for tests (RFC 6455 framing written out here, so that tests
 * can also send what a library would refuse to: unmasked frames, bad opcodes, oversized
 * messages), and a helper that starts more intentd processes on the test's database.
 */
#ifndef TESTS_SUPPORT_WS_CLIENT_H
#define TESTS_SUPPORT_WS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WS_FRAME_MAX (4u << 20) /* the largest frame the client reads */

typedef struct st_ws_client_t {
    int fd;
    size_t len;        /* bytes buffered in buf */
    uint8_t *buf;      /* WS_FRAME_MAX + 16 */
    char protocol[64]; /* the Sec-WebSocket-Protocol the server chose ("" for none) */
} ws_client_t;

typedef struct st_ws_frame_t {
    int opcode; /* 1 text, 2 binary, 8 close, 9 ping, 10 pong */
    bool fin;
    size_t len;
    char *data;          /* NUL-terminated copy; free with ws_frame_dispose */
    uint16_t close_code; /* for close frames (0 when absent) */
} ws_frame_t;

/** Connects to 127.0.0.1:`port` and sends the handshake for `path` with extra header lines
 * (each "Name: value", NULL-terminated list, may be NULL). Returns the client on 101;
 * otherwise NULL with the status in *status (0: no connection) and the body in `body`. A
 * receive buffer of `rcvbuf` bytes is asked for when > 0 (a slow reader). */
ws_client_t *ws_connect(int port, const char *path, const char *const *headers, int rcvbuf,
                        int *status, char *body, size_t cap);
/** Sends one frame, masked unless `unmasked`. Returns false when the write failed. */
bool ws_send_frame(ws_client_t *c, int opcode, bool fin, const void *data, size_t len,
                   bool unmasked);
/** Reads one frame, waiting up to `timeout_ms`: 1 read, 0 timed out, -1 the connection ended. */
int ws_read_frame(ws_client_t *c, ws_frame_t *f, int timeout_ms);
/** Reads frames until a text frame (answering pings with pongs): 1, 0 timed out, -1 ended or a
 * close frame came (then *close_code holds its code when not NULL). */
int ws_next_text(ws_client_t *c, ws_frame_t *f, int timeout_ms, uint16_t *close_code);
/** Frees a frame's data. */
void ws_frame_dispose(ws_frame_t *f);
/** Closes the connection and frees the client. NULL is ignored. */
void ws_client_free(ws_client_t *c);

/** Starts one more intentd on `database_url` at `port` with extra "NAME=value" environment
 * (NULL-terminated, may be NULL), its output appended to `log_path`; returns its pid once
 * /readyz answers 200 (/healthz without a database), -1 if it does not. */
pid_t ws_start_intentd(const char *bin, int port, const char *database_url, const char *const *env,
                       const char *log_path);
/** Starts a redis-server of the test's own on 127.0.0.1:`port` (no persistence, none of the
 * test's file descriptors), answering PING when this returns; asserts. */
void ws_redis_start(int port);
/** Stops the Redis ws_redis_start started, if it runs. */
void ws_redis_stop(void);
/** True when `path` contains `needle`, waiting (polling) up to `timeout_ms`. */
bool ws_file_contains(const char *path, const char *needle, int timeout_ms);
/** Forks and executes intentd as ws_start_intentd does, without waiting. */
pid_t ws_spawn_intentd(const char *bin, int port, const char *database_url, const char *const *env,
                       const char *log_path);
/** True once 127.0.0.1:`port` answers GET /healthz with 200 (polls up to 10 s). */
bool ws_wait_healthy(int port);
/** True once 127.0.0.1:`port` answers GET /readyz with 200: its API has its stores (polls up to
 * 10 s). */
bool ws_wait_ready(int port);
/** For a test's .fini: kills (SIGKILL) every intentd ws_spawn_intentd started and
 * ws_stop_intentd has not stopped, and kill_leftover_server's one. */
void ws_kill_leftovers(void);
/** SIGTERM, waits; true when it exited 0. */
bool ws_stop_intentd(pid_t pid);

#endif
