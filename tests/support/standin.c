#include "standin.h"
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256
#define MAX_PATHS 64
#define MAX_REQUEST 65536

typedef struct st_conn_t {
    pthread_t thread;
    int fd;
    unsigned serial;
    standin_t *server;
} conn_t;

typedef struct st_listener_t {
    standin_t *server;
    int fd; /* -1: not open */
    pthread_t thread;
} listener_t;

struct st_standin_t {
    listener_t listeners[2]; /* 127.0.0.1, and ::1 on the same port when the host has it */
    uint16_t port;
    atomic_bool stopping;
    pthread_mutex_t mutex;
    conn_t conns[MAX_CONNS];
    unsigned num_conns;
    struct {
        char path[256];
        unsigned count;
    } paths[MAX_PATHS];
    unsigned num_paths;
};

static void die(const char *what)
{
    fprintf(stderr, "standin: %s: %s\n", what, strerror(errno));
    abort();
}

static void send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len != 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* the client went away: nothing to do */
        p += n;
        len -= (size_t)n;
    }
}

static void respond(int fd, int status, const char *extra_headers, const char *body, size_t len)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nContent-Type: text/plain\r\n%s\r\n",
                     status, len, extra_headers);
    send_all(fd, head, (size_t)n);
    send_all(fd, body, len);
}

static void count_path(standin_t *s, const char *path)
{
    pthread_mutex_lock(&s->mutex);
    unsigned i = 0;
    while (i != s->num_paths && strcmp(s->paths[i].path, path) != 0)
        ++i;
    if (i == s->num_paths && s->num_paths != MAX_PATHS) {
        snprintf(s->paths[i].path, sizeof(s->paths[i].path), "%s", path);
        ++s->num_paths;
    }
    if (i != MAX_PATHS)
        ++s->paths[i].count;
    pthread_mutex_unlock(&s->mutex);
}

static void sleep_ms(standin_t *s, long ms)
{
    struct timespec step = {0, 10 * 1000000};
    for (long waited = 0; waited < ms && !atomic_load(&s->stopping); waited += 10)
        nanosleep(&step, NULL);
}

/* ---- JSON-RPC scenarios, with anvil 1.7.1's own error texts ---- */

/* Error("boom"): the selector, the offset 0x20, the length 4 and "boom", in 32-byte words */
static const char boom_revert_data[] =
    "0x08c379a0"
    "0000000000000000000000000000000000000000000000000000000000000020"
    "0000000000000000000000000000000000000000000000000000000000000004"
    "626f6f6d00000000000000000000000000000000000000000000000000000000";

/* The member that answers one call in `scenario` (a "result" or an "error"), or NULL. */
static json_t *scenario_member(const char *scenario, const char **key)
{
    *key = "error";
    if (strcmp(scenario, "nonce_too_low") == 0)
        return json_pack("{s:i,s:s}", "code", -32003, "message", "nonce too low");
    if (strcmp(scenario, "replacement_underpriced") == 0)
        return json_pack("{s:i,s:s}", "code", -32003, "message",
                         "replacement transaction underpriced");
    if (strcmp(scenario, "insufficient_funds") == 0)
        return json_pack("{s:i,s:s}", "code", -32003, "message",
                         "Insufficient funds for gas * price + value");
    if (strcmp(scenario, "already_known") == 0)
        return json_pack("{s:i,s:s}", "code", -32003, "message", "transaction already imported");
    if (strcmp(scenario, "reverted") == 0)
        return json_pack("{s:i,s:s,s:s}", "code", 3, "message", "execution reverted: boom", "data",
                         boom_revert_data);
    if (strcmp(scenario, "rate_limited") == 0)
        return json_pack("{s:i,s:s}", "code", -32005, "message",
                         "project ID request rate exceeded");
    *key = "result";
    if (strcmp(scenario, "ok") == 0)
        return json_string("0x7a69");
    return NULL;
}

static json_t *rpc_answer(const char *scenario, json_t *call)
{
    const char *key;
    json_t *member = scenario_member(scenario, &key);
    json_t *id = json_object_get(call, "id");
    json_t *answer = json_pack("{s:s,s:O}", "jsonrpc", "2.0", "id", id != NULL ? id : json_null());
    if (member != NULL)
        json_object_set_new(answer, key, member);
    return answer;
}

static void serve_rpc(int fd, const char *scenario, const char *body, size_t len)
{
    if (strcmp(scenario, "http500") == 0) {
        respond(fd, 500, "", "internal error", 14);
        return;
    }
    if (strcmp(scenario, "http429") == 0) {
        respond(fd, 429, "Retry-After: 1\r\n", "Too Many Requests", 17);
        return;
    }
    if (strcmp(scenario, "garbage") == 0) {
        respond(fd, 200, "", "not json", 8);
        return;
    }
    json_t *request = json_loadb(body, len, 0, NULL);
    json_t *reply;
    if (json_is_array(request)) {
        reply = json_array();
        size_t i;
        json_t *call;
        json_array_foreach(request, i, call)
            json_array_append_new(reply, rpc_answer(scenario, call));
    } else {
        reply = rpc_answer(scenario, request);
    }
    char *text = json_dumps(reply, JSON_COMPACT);
    respond(fd, 200, "", text, strlen(text));
    free(text);
    json_decref(reply);
    json_decref(request);
}

/* ---- one request ---- */

static const char *chunked_reply = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   "5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n";

/* Answers one request; returns false when the connection must close. */
static bool serve(conn_t *c, const char *path, const char *body, size_t len)
{
    char buf[128];
    if (strcmp(path, "/echo") == 0) {
        snprintf(buf, sizeof(buf), "X-Conn: %u\r\n", c->serial);
        respond(c->fd, 200, buf, body, len);
    } else if (strcmp(path, "/conn") == 0) {
        int n = snprintf(buf, sizeof(buf), "%u", c->serial);
        respond(c->fd, 200, "", buf, (size_t)n);
    } else if (strncmp(path, "/slow/", 6) == 0) {
        sleep_ms(c->server, atol(path + 6));
        respond(c->fd, 200, "", "slow", 4);
    } else if (strcmp(path, "/drop") == 0) {
        return false;
    } else if (strncmp(path, "/status/", 8) == 0) {
        int status = atoi(path + 8);
        int n = snprintf(buf, sizeof(buf), "status %d", status);
        respond(c->fd, status, status == 429 ? "Retry-After: 2\r\n" : "", buf, (size_t)n);
    } else if (strcmp(path, "/midbody") == 0) {
        const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789";
        send_all(c->fd, head, strlen(head));
        return false;
    } else if (strncmp(path, "/big/", 5) == 0) {
        size_t n = (size_t)atol(path + 5);
        char *big = malloc(n + 1);
        memset(big, 'x', n);
        respond(c->fd, 200, "", big, n);
        free(big);
    } else if (strcmp(path, "/chunked") == 0) {
        send_all(c->fd, chunked_reply, strlen(chunked_reply));
    } else if (strcmp(path, "/garbage") == 0) {
        send_all(c->fd, "THIS IS NOT HTTP\r\n\r\n", 20);
        return false;
    } else if (strcmp(path, "/close") == 0) {
        respond(c->fd, 200, "Connection: close\r\n", "bye", 3);
        return false;
    } else if (strncmp(path, "/rpc/", 5) == 0) {
        serve_rpc(c->fd, path + 5, body, len);
    } else {
        respond(c->fd, 404, "", "not found", 9);
    }
    return true;
}

/* ---- the connection loop: parse requests, one at a time ---- */

static size_t content_length(const char *head)
{
    for (const char *p = strchr(head, '\n'); p != NULL; p = strchr(p + 1, '\n'))
        if (strncasecmp(p + 1, "content-length:", 15) == 0)
            return (size_t)atol(p + 16);
    return 0;
}

/* Reads until `buf` holds at least `want` bytes; false when the peer closed. */
static bool fill(int fd, char *buf, size_t *have, size_t want)
{
    while (*have < want) {
        ssize_t n = recv(fd, buf + *have, MAX_REQUEST - *have, 0);
        if (n <= 0)
            return false;
        *have += (size_t)n;
    }
    return true;
}

static void *conn_main(void *arg)
{
    conn_t *c = arg;
    char *buf = malloc(MAX_REQUEST + 1);
    size_t have = 0;
    for (;;) {
        char *end;
        while (buf[have] = '\0', (end = strstr(buf, "\r\n\r\n")) == NULL)
            if (have == MAX_REQUEST || !fill(c->fd, buf, &have, have + 1))
                goto Close;
        *end = '\0';
        size_t head_len = (size_t)(end - buf) + 4, body_len = content_length(buf);
        if (head_len + body_len > MAX_REQUEST || !fill(c->fd, buf, &have, head_len + body_len))
            goto Close;
        char method[16], path[256];
        if (sscanf(buf, "%15s %255s", method, path) != 2)
            goto Close;
        count_path(c->server, path);
        if (!serve(c, path, buf + head_len, body_len))
            goto Close;
        memmove(buf, buf + head_len + body_len, have - head_len - body_len);
        have -= head_len + body_len;
    }
Close:
    shutdown(c->fd, SHUT_RDWR);
    free(buf);
    return NULL;
}

static void *accept_main(void *arg)
{
    listener_t *l = arg;
    standin_t *s = l->server;
    while (!atomic_load(&s->stopping)) {
        int fd = accept(l->fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break; /* shut down by standin_stop */
        }
        pthread_mutex_lock(&s->mutex);
        if (s->num_conns == MAX_CONNS || atomic_load(&s->stopping)) {
            pthread_mutex_unlock(&s->mutex);
            close(fd);
            continue;
        }
        int on = 1; /* answers go out in two writes: do not let Nagle hold the second */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
        conn_t *c = &s->conns[s->num_conns];
        *c = (conn_t){.fd = fd, .serial = s->num_conns + 1, .server = s};
        if (pthread_create(&c->thread, NULL, conn_main, c) != 0)
            die("pthread_create");
        ++s->num_conns;
        pthread_mutex_unlock(&s->mutex);
    }
    return NULL;
}

static int loopback_socket(uint16_t *port, int backlog)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        (backlog >= 0 && listen(fd, backlog) != 0) ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0)
        die("loopback socket");
    *port = ntohs(addr.sin_port);
    return fd;
}

/* ::1 on `port`, so that "localhost" works wherever the resolver puts it; -1 when the host has
 * no IPv6 loopback or the port is taken there. */
static int loopback6_socket(uint16_t port)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 addr = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    addr.sin6_addr = in6addr_loopback;
    if (fd >= 0 && (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, 64) != 0)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

standin_t *standin_start(void)
{
    standin_t *s = calloc(1, sizeof(*s));
    pthread_mutex_init(&s->mutex, NULL);
    s->listeners[0].fd = loopback_socket(&s->port, 64);
    s->listeners[1].fd = loopback6_socket(s->port);
    for (int i = 0; i != 2; ++i) {
        s->listeners[i].server = s;
        if (s->listeners[i].fd >= 0 &&
            pthread_create(&s->listeners[i].thread, NULL, accept_main, &s->listeners[i]) != 0)
            die("pthread_create");
    }
    return s;
}

uint16_t standin_port(standin_t *s)
{
    return s->port;
}

unsigned standin_connections(standin_t *s)
{
    pthread_mutex_lock(&s->mutex);
    unsigned n = s->num_conns;
    pthread_mutex_unlock(&s->mutex);
    return n;
}

unsigned standin_requests(standin_t *s, const char *prefix)
{
    unsigned n = 0;
    pthread_mutex_lock(&s->mutex);
    for (unsigned i = 0; i != s->num_paths; ++i)
        if (strncmp(s->paths[i].path, prefix, strlen(prefix)) == 0)
            n += s->paths[i].count;
    pthread_mutex_unlock(&s->mutex);
    return n;
}

void standin_stop(standin_t *s)
{
    atomic_store(&s->stopping, true);
    for (int i = 0; i != 2; ++i) {
        if (s->listeners[i].fd < 0)
            continue;
        shutdown(s->listeners[i].fd, SHUT_RDWR); /* wakes accept() */
        pthread_join(s->listeners[i].thread, NULL);
        close(s->listeners[i].fd);
    }
    for (unsigned i = 0; i != s->num_conns; ++i) {
        shutdown(s->conns[i].fd, SHUT_RDWR); /* wakes recv() */
        pthread_join(s->conns[i].thread, NULL);
        close(s->conns[i].fd);
    }
    pthread_mutex_destroy(&s->mutex);
    free(s);
}

uint16_t blackhole_open(int fds[4])
{
    uint16_t port;
    fds[0] = loopback_socket(&port, 0);
    struct sockaddr_in addr = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    /* fill the accept queue (backlog 0 holds one); later SYNs are dropped and connect hangs */
    for (int i = 1; i != 4; ++i) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        connect(fds[i], (struct sockaddr *)&addr, sizeof(addr));
    }
    struct timespec settle = {0, 100 * 1000000};
    nanosleep(&settle, NULL);
    return port;
}

void blackhole_close(int fds[4])
{
    for (int i = 0; i != 4; ++i)
        close(fds[i]);
}

uint16_t refusing_port_open(int *fd)
{
    uint16_t port;
    *fd = loopback_socket(&port, -1);
    return port;
}
