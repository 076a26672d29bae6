/*
 * The baseline for HTTP figures: a bare libh2o server with nothing but h2o, answering every
 * request with the same body and headers as intentd's /healthz. One thread per worker, each
 * with its own evloop and an SO_REUSEPORT listener, which is the shape intentd has minus the
 * io_uring bridge and the actor runtime, so the ratio between the two is their cost.
 *
 * usage: h2o_hello PORT WORKERS   (runs until SIGTERM/SIGINT)
 */
#include <arpa/inet.h>
#include <h2o.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static h2o_globalconf_t config;
static int port;

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    static const char body[] = "{\"status\":\"ok\"}";
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = sizeof(body) - 1;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    h2o_send_inline(req, body, sizeof(body) - 1);
    return 0;
}

typedef struct {
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
} thread_ctx_t;

static void on_accept(h2o_socket_t *listener, const char *err)
{
    thread_ctx_t *tc = listener->data;
    h2o_socket_t *sock;
    if (err != NULL)
        return;
    while ((sock = h2o_evloop_socket_accept(listener)) != NULL)
        h2o_accept(&tc->accept_ctx, sock);
}

static void *run(void *arg)
{
    thread_ctx_t *tc = calloc(1, sizeof(*tc));
    h2o_context_init(&tc->ctx, h2o_evloop_create(), &config);
    tc->accept_ctx.ctx = &tc->ctx;
    tc->accept_ctx.hosts = config.hosts;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), on = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, SOMAXCONN) != 0) {
        perror("h2o_hello: listen");
        exit(1);
    }
    h2o_socket_t *listener = h2o_evloop_socket_create(tc->ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    listener->data = tc;
    h2o_socket_read_start(listener, on_accept);
    for (;;)
        h2o_evloop_run(tc->ctx.loop, INT32_MAX);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s PORT WORKERS\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    int workers = atoi(argv[2]);
    signal(SIGPIPE, SIG_IGN);
    h2o_config_init(&config);
    h2o_hostconf_t *host =
        h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_create_handler(path, sizeof(h2o_handler_t))->on_req = on_req;
    pthread_t threads[64];
    for (int i = 0; i < workers && i < 64; ++i)
        pthread_create(&threads[i], NULL, run, NULL);
    pause(); /* SIGTERM's default action ends the process */
    return 0;
}
