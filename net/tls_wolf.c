#include <wolfssl/options.h> /* first: it sets the macros the other wolfSSL headers depend on */
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include "net/tls_wolf.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct st_tls_wolf_ctx_t {
    WOLFSSL_CTX *ssl_ctx;
    tls_wolf_recv_cb recv;
    tls_wolf_send_cb send;
};

struct st_tls_wolf_t {
    WOLFSSL *ssl;
    tls_wolf_ctx_t *ctx;
    void *io_arg;
    int last_error;
};

static int io_recv(WOLFSSL *ssl, char *buf, int size, void *arg)
{
    tls_wolf_t *t = arg;
    int ret = t->ctx->recv(t->io_arg, buf, (size_t)size);
    if (ret > 0)
        return ret;
    return ret == TLS_WOLF_WANT_READ ? WOLFSSL_CBIO_ERR_WANT_READ : WOLFSSL_CBIO_ERR_CONN_CLOSE;
}

static int io_send(WOLFSSL *ssl, char *buf, int size, void *arg)
{
    tls_wolf_t *t = arg;
    int ret = t->ctx->send(t->io_arg, buf, (size_t)size);
    return ret == size ? size : WOLFSSL_CBIO_ERR_CONN_CLOSE;
}

tls_wolf_ctx_t *tls_wolf_ctx_new(const char *ca_file, tls_wolf_recv_cb recv, tls_wolf_send_cb send,
                                 char *err, size_t err_size)
{
    tls_wolf_ctx_t *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    if (wolfSSL_Init() != WOLFSSL_SUCCESS) {
        snprintf(err, err_size, "wolfSSL_Init failed");
        free(ctx);
        return NULL;
    }
    ctx->recv = recv;
    ctx->send = send;
    ctx->ssl_ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
    if (ctx->ssl_ctx == NULL ||
        wolfSSL_CTX_SetMinVersion(ctx->ssl_ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS) {
        snprintf(err, err_size, "TLS set-up failed");
        tls_wolf_ctx_free(ctx);
        return NULL;
    }
    if (wolfSSL_CTX_load_verify_locations(ctx->ssl_ctx, ca_file, NULL) != WOLFSSL_SUCCESS) {
        snprintf(err, err_size, "%s: no CA certificate could be loaded", ca_file);
        tls_wolf_ctx_free(ctx);
        return NULL;
    }
    wolfSSL_CTX_set_verify(ctx->ssl_ctx, WOLFSSL_VERIFY_PEER, NULL);
    wolfSSL_CTX_SetIORecv(ctx->ssl_ctx, io_recv);
    wolfSSL_CTX_SetIOSend(ctx->ssl_ctx, io_send);
    return ctx;
}

void tls_wolf_ctx_free(tls_wolf_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    if (ctx->ssl_ctx != NULL)
        wolfSSL_CTX_free(ctx->ssl_ctx);
    wolfSSL_Cleanup();
    free(ctx);
}

tls_wolf_t *tls_wolf_new(tls_wolf_ctx_t *ctx, const char *host, bool sni, void *io_arg)
{
    size_t host_len = strlen(host);
    tls_wolf_t *t = calloc(1, sizeof(*t));
    if (t == NULL || host_len > USHRT_MAX)
        goto Fail;
    t->ctx = ctx;
    t->io_arg = io_arg;
    t->ssl = wolfSSL_new(ctx->ssl_ctx);
    if (t->ssl == NULL)
        goto Fail;
    wolfSSL_SetIOReadCtx(t->ssl, t);
    wolfSSL_SetIOWriteCtx(t->ssl, t);
    if (sni && wolfSSL_UseSNI(t->ssl, WOLFSSL_SNI_HOST_NAME, host, (unsigned short)host_len) !=
                   WOLFSSL_SUCCESS)
        goto Fail;
    if (wolfSSL_check_domain_name(t->ssl, host) != WOLFSSL_SUCCESS)
        goto Fail;
    return t;
Fail:
    tls_wolf_free(t);
    return NULL;
}

void tls_wolf_free(tls_wolf_t *t)
{
    if (t == NULL)
        return;
    if (t->ssl != NULL)
        wolfSSL_free(t->ssl);
    free(t);
}

/* Maps a failed call's result. */
static int classify(tls_wolf_t *t, int ret)
{
    int err = wolfSSL_get_error(t->ssl, ret);
    t->last_error = err;
    switch (err) {
    case WOLFSSL_ERROR_WANT_READ:
        return TLS_WOLF_WANT_READ;
    case WOLFSSL_ERROR_ZERO_RETURN: /* close_notify */
    case SOCKET_PEER_CLOSED_E:
    case SOCKET_ERROR_E:
        return TLS_WOLF_CLOSED;
    default:
        return TLS_WOLF_FAILED;
    }
}

int tls_wolf_connect(tls_wolf_t *t)
{
    int ret = wolfSSL_connect(t->ssl);
    return ret == WOLFSSL_SUCCESS ? TLS_WOLF_OK : classify(t, ret);
}

int tls_wolf_read(tls_wolf_t *t, char *buf, size_t size)
{
    int ret = wolfSSL_read(t->ssl, buf, size > INT_MAX ? INT_MAX : (int)size);
    return ret > 0 ? ret : classify(t, ret);
}

int tls_wolf_write(tls_wolf_t *t, const char *buf, size_t len)
{
    while (len != 0) { /* bounded: each pass writes at least one byte or returns */
        int chunk = len > INT_MAX ? INT_MAX : (int)len;
        int ret = wolfSSL_write(t->ssl, buf, chunk);
        if (ret <= 0)
            return classify(t, ret);
        buf += ret;
        len -= (size_t)ret;
    }
    return TLS_WOLF_OK;
}

bool tls_wolf_pending(tls_wolf_t *t)
{
    return wolfSSL_pending(t->ssl) > 0;
}

const char *tls_wolf_error(tls_wolf_t *t, char *buf, size_t size)
{
    char text[WOLFSSL_MAX_ERROR_SZ];
    wolfSSL_ERR_error_string_n((unsigned long)t->last_error, text, sizeof(text));
    snprintf(buf, size, "%s (%d)", text, t->last_error);
    return buf;
}

void tls_wolf_thread_done(void)
{
#ifdef FP_ECC
    wc_ecc_fp_free(); /* the fixed-point ECC cache is per thread, and verifying filled it */
#endif
}
