/* See rpc_proxy.h. */
#include "rpc_proxy.h"
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 64
#define MAX_MESSAGE (4 << 20) /* a request or an answer */

typedef struct st_proxy_conn_t {
    rpc_proxy_t *proxy;
    pthread_t thread;
    int fd; /* set before its thread starts */
} proxy_conn_t;

struct st_rpc_proxy_t {
    uint16_t node_port, port;
    uint64_t max_blocks;
    int listen_fd;
    pthread_t acceptor;
    atomic_bool stopping;
    pthread_mutex_t mutex;
    proxy_conn_t conns[MAX_CONNS];
    unsigned num_conns;
    rpc_proxy_stats_t stats;
};

static void die(const char *what)
{
    fprintf(stderr, "rpc_proxy: %s: %s\n", what, strerror(errno));
    abort();
}

static bool send_all(int fd, const char *p, size_t len)
{
    while (len != 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        p += n, len -= (size_t)n;
    }
    return true;
}

/* Reads one HTTP message (headers and a Content-Length body, or everything up to the end when
 * `to_eof`) into `buf`; returns the body (NUL-terminated) and its length, or NULL. */
static char *read_message(int fd, char *buf, size_t cap, bool to_eof, size_t *body_len)
{
    size_t have = 0;
    for (;;) { /* bounded by cap */
        buf[have] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end != NULL) {
            const char *cl = strcasestr(buf, "\r\ncontent-length:");
            size_t want = cl != NULL && cl < end ? strtoull(cl + 17, NULL, 10) : 0;
            size_t got = have - (size_t)(end + 4 - buf);
            if ((!to_eof || cl != NULL) && got >= want) {
                *body_len = want;
                end[4 + want] = '\0';
                return end + 4;
            }
        }
        if (have + 1 == cap)
            return NULL;
        ssize_t n = recv(fd, buf + have, cap - 1 - have, 0);
        if (n <= 0)
            return NULL;
        have += (size_t)n;
    }
}

/* Sends `body` to the node and returns its answer's body (free it), or NULL. */
static char *ask_node(rpc_proxy_t *p, const char *body)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(p->node_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char *buf = malloc(MAX_MESSAGE), head[256], *answer = NULL;
    size_t len;
    snprintf(head, sizeof(head),
             "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n",
             strlen(body));
    if (fd >= 0 && buf != NULL && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        send_all(fd, head, strlen(head)) && send_all(fd, body, strlen(body))) {
        const char *b = read_message(fd, buf, MAX_MESSAGE, true, &len);
        answer = b != NULL ? strdup(b) : NULL;
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    return answer;
}

static bool quantity(json_t *v, uint64_t *out)
{
    const char *s = json_string_value(v);
    if (s == NULL || strncmp(s, "0x", 2) != 0)
        return false;
    *out = strtoull(s + 2, NULL, 16);
    return true;
}

/* Whether `call` is an eth_getLogs too wide to let through; records the ones let through. */
static bool refuse(rpc_proxy_t *p, json_t *call)
{
    if (strcmp(json_string_value(json_object_get(call, "method")) ?: "", "eth_getLogs") != 0)
        return false;
    json_t *filter = json_array_get(json_object_get(call, "params"), 0);
    uint64_t from, to;
    bool ranged = quantity(json_object_get(filter, "fromBlock"), &from) &&
                  quantity(json_object_get(filter, "toBlock"), &to) && to >= from;
    bool wide = !ranged || to - from + 1 > p->max_blocks;
    pthread_mutex_lock(&p->mutex);
    if (wide) {
        ++p->stats.refused;
    } else {
        ++p->stats.forwarded;
        if (to - from + 1 > p->stats.widest)
            p->stats.widest = to - from + 1;
        if (json_array_size(json_object_get(filter, "topics")) >= 2) {
            ++p->stats.filtered;
            if (from < p->stats.filtered_lowest)
                p->stats.filtered_lowest = from;
        }
    }
    pthread_mutex_unlock(&p->mutex);
    return wide;
}

static json_t *refusal(rpc_proxy_t *p, json_t *call)
{
    char message[128];
    snprintf(message, sizeof(message), "block range too large: at most %llu blocks per query",
             (unsigned long long)p->max_blocks);
    return json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id",
                     json_object_get(call, "id") ?: json_null(), "error", "code", -32602, "message",
                     message);
}

/* The answer to a request body: the node's, with the refused calls answered here. */
static char *answer(rpc_proxy_t *p, const char *body)
{
    json_t *req = json_loads(body, 0, NULL);
    if (req == NULL)
        return ask_node(p, body);
    bool batch = json_is_array(req);
    json_t *calls = batch ? json_incref(req) : json_pack("[O]", req), *pass = json_array(),
           *out = json_array(), *call;
    size_t i;
    json_array_foreach(calls, i, call)
    {
        if (refuse(p, call))
            json_array_append_new(out, refusal(p, call));
        else
            json_array_append(pass, call);
    }
    char *text = NULL;
    if (json_array_size(out) == 0) {
        text = ask_node(p, body); /* nothing refused: the request as it came */
    } else {
        if (json_array_size(pass) != 0) {
            char *fwd = json_dumps(pass, JSON_COMPACT);
            char *got = ask_node(p, fwd);
            json_t *answers = got != NULL ? json_loads(got, 0, NULL) : NULL;
            json_array_extend(out, answers);
            json_decref(answers);
            free(fwd), free(got);
        }
        text = json_dumps(batch ? out : json_array_get(out, 0), JSON_COMPACT);
    }
    json_decref(req), json_decref(calls), json_decref(pass), json_decref(out);
    return text;
}

static void *serve(void *arg)
{
    proxy_conn_t *c = arg;
    char *buf = malloc(MAX_MESSAGE);
    size_t len;
    for (const char *body;
         buf != NULL && (body = read_message(c->fd, buf, MAX_MESSAGE, false, &len)) != NULL;) {
        char *reply = answer(c->proxy, body), head[160];
        if (reply == NULL)
            break;
        snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                 strlen(reply));
        bool ok = send_all(c->fd, head, strlen(head)) && send_all(c->fd, reply, strlen(reply));
        free(reply);
        if (!ok)
            break;
    }
    free(buf);
    return NULL;
}

static void *accept_loop(void *arg)
{
    rpc_proxy_t *p = arg;
    while (!atomic_load(&p->stopping)) {
        int fd = accept(p->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&p->mutex);
        if (p->num_conns == MAX_CONNS || atomic_load(&p->stopping)) {
            pthread_mutex_unlock(&p->mutex);
            close(fd);
            continue;
        }
        proxy_conn_t *c = &p->conns[p->num_conns++];
        c->proxy = p;
        c->fd = fd;
        if (pthread_create(&c->thread, NULL, serve, c) != 0)
            die("pthread_create");
        pthread_mutex_unlock(&p->mutex);
    }
    return NULL;
}

rpc_proxy_t *rpc_proxy_start(uint16_t node_port, uint64_t max_blocks)
{
    rpc_proxy_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        die("calloc");
    p->node_port = node_port;
    p->max_blocks = max_blocks;
    p->stats.filtered_lowest = UINT64_MAX;
    pthread_mutex_init(&p->mutex, NULL);
    p->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(a);
    if (p->listen_fd < 0 || bind(p->listen_fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(p->listen_fd, 64) != 0 ||
        getsockname(p->listen_fd, (struct sockaddr *)&a, &alen) != 0)
        die("listen");
    p->port = ntohs(a.sin_port);
    if (pthread_create(&p->acceptor, NULL, accept_loop, p) != 0)
        die("pthread_create");
    return p;
}

uint16_t rpc_proxy_port(rpc_proxy_t *p)
{
    return p->port;
}

void rpc_proxy_stats(rpc_proxy_t *p, rpc_proxy_stats_t *out)
{
    pthread_mutex_lock(&p->mutex);
    *out = p->stats;
    pthread_mutex_unlock(&p->mutex);
}

void rpc_proxy_stop(rpc_proxy_t *p)
{
    atomic_store(&p->stopping, true);
    shutdown(p->listen_fd, SHUT_RDWR); /* wakes accept */
    pthread_join(p->acceptor, NULL);
    close(p->listen_fd);
    for (unsigned i = 0; i != p->num_conns; ++i) {
        shutdown(p->conns[i].fd, SHUT_RDWR); /* wakes recv */
        pthread_join(p->conns[i].thread, NULL);
        close(p->conns[i].fd);
    }
    pthread_mutex_destroy(&p->mutex);
    free(p);
}
