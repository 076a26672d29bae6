/* See ws_client.h. */
#include "ws_client.h"
#include <criterion/criterion.h>
#include "api_server.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dial(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool write_all(int fd, const void *p, size_t len)
{
    const char *s = p;
    while (len != 0) {
        ssize_t n = write(fd, s, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        s += n;
        len -= (size_t)n;
    }
    return true;
}

/* Reads more into the buffer, waiting until `deadline_ms`: 1, 0 timeout, -1 end. */
static int fill(ws_client_t *c, int64_t deadline_ms)
{
    int64_t left = deadline_ms - mono_ms();
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (poll(&p, 1, left > 0 ? (int)left : 0) <= 0)
        return 0;
    ssize_t n = read(c->fd, c->buf + c->len, WS_FRAME_MAX + 16 - c->len);
    if (n <= 0)
        return -1;
    c->len += (size_t)n;
    return 1;
}

ws_client_t *ws_connect(int port, const char *path, const char *const *headers, int rcvbuf,
                        int *status, char *body, size_t cap)
{
    *status = 0;
    body[0] = '\0';
    int fd = dial(port, rcvbuf);
    if (fd < 0)
        return NULL;
    char req[16384];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n",
                     path);
    for (size_t i = 0; headers != NULL && headers[i] != NULL; ++i)
        n += snprintf(req + n, sizeof(req) - (size_t)n, "%s\r\n", headers[i]);
    n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
    ws_client_t *c = calloc(1, sizeof(*c));
    c->fd = fd;
    c->buf = malloc(WS_FRAME_MAX + 16);
    if (!write_all(fd, req, (size_t)n)) {
        ws_client_free(c);
        return NULL;
    }
    /* the response head, then (for non-101) the body up to the connection's end or 2 s */
    int64_t deadline = mono_ms() + 10000;
    char *end = NULL;
    while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL)
        if (fill(c, deadline) <= 0) {
            ws_client_free(c);
            return NULL;
        }
    sscanf((char *)c->buf, "HTTP/1.1 %d", status);
    size_t head = (size_t)(end + 4 - (char *)c->buf);
    char *proto = memmem(c->buf, head, "sec-websocket-protocol: ", 24);
    if (proto == NULL)
        proto = memmem(c->buf, head, "Sec-WebSocket-Protocol: ", 24);
    if (proto != NULL)
        sscanf(proto + 24, "%63[^\r\n]", c->protocol);
    if (*status == 101) {
        memmove(c->buf, c->buf + head, c->len - head);
        c->len -= head;
        return c;
    }
    deadline = mono_ms() + 2000;
    while (fill(c, deadline) > 0 && c->len < WS_FRAME_MAX)
        ;
    snprintf(body, cap, "%.*s", (int)(c->len - head), (char *)c->buf + head);
    ws_client_free(c);
    return NULL;
}

bool ws_send_frame(ws_client_t *c, int opcode, bool fin, const void *data, size_t len,
                   bool unmasked)
{
    uint8_t *frame = malloc(len + 14), mask[4];
    size_t h = 0;
    frame[h++] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    uint8_t m = unmasked ? 0 : 0x80;
    if (len < 126) {
        frame[h++] = (uint8_t)(m | len);
    } else if (len < 65536) {
        frame[h++] = m | 126;
        frame[h++] = (uint8_t)(len >> 8);
        frame[h++] = (uint8_t)len;
    } else {
        frame[h++] = m | 127;
        for (int i = 7; i >= 0; --i)
            frame[h++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    if (getrandom(mask, 4, 0) != 4)
        memset(mask, 0x5a, 4);
    if (!unmasked) {
        memcpy(frame + h, mask, 4);
        h += 4;
    }
    for (size_t i = 0; i != len; ++i)
        frame[h + i] = ((const uint8_t *)data)[i] ^ (unmasked ? 0 : mask[i % 4]);
    bool ok = write_all(c->fd, frame, h + len);
    free(frame);
    return ok;
}

/* Parses a whole frame at the start of the buffer; 1 parsed, 0 incomplete. */
static int parse(ws_client_t *c, ws_frame_t *f)
{
    if (c->len < 2)
        return 0;
    size_t h = 2, len = c->buf[1] & 0x7f;
    if (len == 126) {
        if (c->len < 4)
            return 0;
        len = (size_t)c->buf[2] << 8 | c->buf[3];
        h = 4;
    } else if (len == 127) {
        if (c->len < 10)
            return 0;
        len = 0;
        for (int i = 0; i != 8; ++i)
            len = len << 8 | c->buf[2 + i];
        h = 10;
    }
    if (c->len < h + len)
        return 0;
    f->opcode = c->buf[0] & 0x0f;
    f->fin = (c->buf[0] & 0x80) != 0;
    f->len = len;
    f->data = malloc(len + 1);
    memcpy(f->data, c->buf + h, len);
    f->data[len] = '\0';
    f->close_code =
        f->opcode == 8 && len >= 2 ? (uint16_t)((uint8_t)f->data[0] << 8 | (uint8_t)f->data[1]) : 0;
    memmove(c->buf, c->buf + h + len, c->len - h - len);
    c->len -= h + len;
    return 1;
}

int ws_read_frame(ws_client_t *c, ws_frame_t *f, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    memset(f, 0, sizeof(*f));
    for (;;) {
        if (parse(c, f))
            return 1;
        if (c->len >= WS_FRAME_MAX + 16)
            return -1; /* larger than the client takes */
        int r = fill(c, deadline);
        if (r <= 0)
            return r;
    }
}

int ws_next_text(ws_client_t *c, ws_frame_t *f, int timeout_ms, uint16_t *close_code)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - mono_ms();
        int r = ws_read_frame(c, f, left > 0 ? (int)left : 0);
        if (r <= 0)
            return r;
        if (f->opcode == 1)
            return 1;
        if (f->opcode == 9)
            ws_send_frame(c, 10, true, f->data, f->len, false);
        if (f->opcode == 8) {
            if (close_code != NULL)
                *close_code = f->close_code;
            ws_frame_dispose(f);
            return -1;
        }
        ws_frame_dispose(f);
    }
}

void ws_frame_dispose(ws_frame_t *f)
{
    free(f->data);
    f->data = NULL;
}

void ws_client_free(ws_client_t *c)
{
    if (c == NULL)
        return;
    close(c->fd);
    free(c->buf);
    free(c);
}

#define MAX_SPAWNED 8
static pid_t spawned[MAX_SPAWNED];

pid_t ws_spawn_intentd(const char *bin, int port, const char *database_url, const char *const *env,
                       const char *log_path)
{
    pid_t pid = fork();
    for (int i = 0; pid > 0 && i != MAX_SPAWNED; ++i)
        if (spawned[i] == 0) {
            spawned[i] = pid;
            break;
        }
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        char port_str[16];
        snprintf(port_str, sizeof(port_str), "%d", port);
        setenv("PORT", port_str, 1);
        if (database_url != NULL)
            setenv("DATABASE_URL", database_url, 1);
        else
            unsetenv("DATABASE_URL");
        setenv("WORKERS", "2", 1);
        for (size_t i = 0; env != NULL && env[i] != NULL; ++i)
            putenv((char *)env[i]);
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* True once 127.0.0.1:`port` answers GET `path` with 200 (polls up to 10 s). */
static bool wait_for_200(int port, const char *path)
{
    char req[128];
    int len =
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    for (int tries = 0; tries != 500; ++tries, usleep(20000)) {
        int fd = dial(port, 0);
        if (fd < 0)
            continue;
        char resp[256] = "";
        bool ok = write_all(fd, req, (size_t)len) && read(fd, resp, sizeof(resp) - 1) > 0 &&
                  strncmp(resp, "HTTP/1.1 200", 12) == 0;
        close(fd);
        if (ok)
            return true;
    }
    return false;
}

bool ws_wait_healthy(int port)
{
    return wait_for_200(port, "/healthz");
}

bool ws_wait_ready(int port)
{
    return wait_for_200(port, "/readyz");
}

pid_t ws_start_intentd(const char *bin, int port, const char *database_url, const char *const *env,
                       const char *log_path)
{
    pid_t pid = ws_spawn_intentd(bin, port, database_url, env, log_path);
    /* with a database, ready: alive is not enough, the API answers 503 until it has its stores
     * (the second process of test_ws got a 503 upgrade so) */
    if (database_url != NULL ? ws_wait_ready(port) : ws_wait_healthy(port))
        return pid;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static pid_t test_redis; /* the test's own redis-server (ws_redis_start), 0: none */

/* True when a Redis on 127.0.0.1:`port` answers PING. */
static bool redis_answers(int port)
{
    int fd = dial(port, 0);
    if (fd < 0)
        return false;
    char reply[16] = "";
    bool ok = write_all(fd, "PING\r\n", 6) && read(fd, reply, sizeof(reply) - 1) > 0 &&
              strncmp(reply, "+PONG", 5) == 0;
    close(fd);
    return ok;
}

void ws_redis_start(int port)
{
    pid_t pid = fork();
    if (pid == 0) {
        /* not the test's sockets: a WebSocket the test closes must close for intentd too */
        for (int fd = 3; fd != 1024; ++fd)
            close(fd);
        int null_fd = open("/dev/null", O_WRONLY);
        dup2(null_fd, STDOUT_FILENO);
        dup2(null_fd, STDERR_FILENO);
        char port_str[16];
        snprintf(port_str, sizeof(port_str), "%d", port);
        execlp("redis-server", "redis-server", "--port", port_str, "--bind", "127.0.0.1", "--save",
               "", "--appendonly", "no", (char *)NULL);
        _exit(127);
    }
    cr_assert_gt(pid, 0);
    test_redis = pid;
    for (int tries = 0; tries != 500; ++tries, usleep(10000))
        if (redis_answers(port))
            return;
    cr_assert_fail("redis-server did not start on port %d", port);
}

void ws_redis_stop(void)
{
    if (test_redis > 0 && kill(test_redis, SIGTERM) == 0)
        waitpid(test_redis, NULL, 0);
    test_redis = 0;
}

void ws_kill_leftovers(void)
{
    for (int i = 0; i != MAX_SPAWNED; ++i)
        if (spawned[i] > 0 && kill(spawned[i], SIGKILL) == 0)
            waitpid(spawned[i], NULL, 0);
    memset(spawned, 0, sizeof(spawned));
    kill_leftover_server();
}

bool ws_stop_intentd(pid_t pid)
{
    for (int i = 0; i != MAX_SPAWNED; ++i)
        if (spawned[i] == pid)
            spawned[i] = 0;
    int status;
    kill(pid, SIGTERM);
    if (waitpid(pid, &status, 0) != pid)
        return false;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

bool ws_file_contains(const char *path, const char *needle, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    static char text[1 << 20];
    do {
        FILE *f = fopen(path, "r");
        size_t n = f != NULL ? fread(text, 1, sizeof(text) - 1, f) : 0;
        if (f != NULL)
            fclose(f);
        text[n] = '\0';
        if (strstr(text, needle) != NULL)
            return true;
        usleep(20000);
    } while (mono_ms() < deadline);
    return false;
}
