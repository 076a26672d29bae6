/*
 * The few wolfSSL calls net/tls_client.c makes, behind plain C types: wolfSSL's OpenSSL
 * compatibility names clash with the OpenSSL headers h2o.h includes, so no file can include
 * both. Only net/tls_client.c uses this.
 */
#ifndef NET_TLS_WOLF_H
#define NET_TLS_WOLF_H

#include <stdbool.h>
#include <stddef.h>

/** Results besides a byte count. */
enum {
    TLS_WOLF_OK = 0,
    TLS_WOLF_WANT_READ = -1, /* more ciphertext is needed */
    TLS_WOLF_CLOSED = -2,    /* the peer closed (with or without close_notify) or the I/O failed */
    TLS_WOLF_FAILED = -3,    /* TLS failed: see tls_wolf_error */
};

/** Ciphertext I/O. recv returns the bytes copied (> 0), TLS_WOLF_WANT_READ or TLS_WOLF_CLOSED;
 * send returns `len` or TLS_WOLF_CLOSED. */
typedef int (*tls_wolf_recv_cb)(void *arg, char *buf, size_t size);
typedef int (*tls_wolf_send_cb)(void *arg, const char *buf, size_t len);

typedef struct st_tls_wolf_ctx_t tls_wolf_ctx_t;
typedef struct st_tls_wolf_t tls_wolf_t;

/** A client context: TLS 1.2+, peers verified against the CAs in `ca_file`. NULL with a reason
 * in `err` on failure. */
tls_wolf_ctx_t *tls_wolf_ctx_new(const char *ca_file, tls_wolf_recv_cb recv, tls_wolf_send_cb send,
                                 char *err, size_t err_size);
void tls_wolf_ctx_free(tls_wolf_ctx_t *ctx);

/** A connection to `host` (its certificate must name it; sent as SNI when `sni`), doing its I/O
 * through the context's callbacks with `io_arg`. NULL on failure. */
tls_wolf_t *tls_wolf_new(tls_wolf_ctx_t *ctx, const char *host, bool sni, void *io_arg);
void tls_wolf_free(tls_wolf_t *t);

/** Advances the handshake: TLS_WOLF_OK when done, else a negative result. */
int tls_wolf_connect(tls_wolf_t *t);
/** Plaintext in: bytes read (> 0) or a negative result. */
int tls_wolf_read(tls_wolf_t *t, char *buf, size_t size);
/** Plaintext out, all of it (the send callback takes everything): TLS_WOLF_OK or negative. */
int tls_wolf_write(tls_wolf_t *t, const char *buf, size_t len);
/** Whether decrypted bytes wait inside wolfSSL. */
bool tls_wolf_pending(tls_wolf_t *t);
/** The last failure, as wolfSSL words it. */
const char *tls_wolf_error(tls_wolf_t *t, char *buf, size_t size);
/** Frees what wolfSSL keeps per thread (the ECC fixed-point cache); on each thread that used
 * TLS, once it is done with it. */
void tls_wolf_thread_done(void);

#endif
